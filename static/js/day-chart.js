/* The speed and accuracy chart of a person's day (Apache ECharts, /static/vendor).
 *
 * ECharts' ES module build runs under the pages' Content-Security-Policy: it needs no eval,
 * and the tooltip's text is formatted here, so no inline style attribute reaches the DOM.
 */
import * as echarts from "../vendor/echarts.esm.min.js";
import { t } from "./i18n.js";

const SPEED_COLOR = "#1f7ae0";
const ACCURACY_COLOR = "#e67e22";
const HIGHLIGHT = { color: "rgba(231, 76, 60, 0.15)" };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Create the chart in `container`; `formatTime(ms)` words an axis or tooltip time. */
export function createDayChart(container, formatTime) {
  const chart = echarts.init(container, null, { renderer: "canvas" });
  new ResizeObserver(() => chart.resize()).observe(container);

  /** Draw a day's series ({t: epoch s, speed: m/s, accuracy: m}); nulls leave gaps. */
  function show(series) {
    const times = series.t.map((s) => s * 1000);
    const speed = times.map((ms, i) => [ms, series.speed[i] == null ? null : Math.round(series.speed[i] * 36) / 10]);
    const accuracy = times.map((ms, i) => [ms, series.accuracy[i]]);
    chart.setOption(
      {
        animation: false,
        grid: { left: 48, right: 48, top: 32, bottom: 28 },
        legend: { top: 0, data: [t("day.speed"), t("day.accuracy")] },
        tooltip: {
          trigger: "axis",
          formatter: (items) => {
            if (!items.length) return "";
            const lines = [escapeHtml(formatTime(items[0].value[0]))];
            for (const item of items) {
              const value = item.value[1];
              lines.push(`${escapeHtml(item.seriesName)}: ${value == null ? t("none") : escapeHtml(value)}`);
            }
            return lines.join("<br>");
          },
        },
        xAxis: { type: "time", axisLabel: { formatter: (ms) => formatTime(ms).slice(0, 5) } },
        yAxis: [
          { type: "value", name: "km/h", min: 0, splitLine: { lineStyle: { color: "#eef1f4" } } },
          { type: "value", name: "m", min: 0, splitLine: { show: false } },
        ],
        dataZoom: [{ type: "inside", xAxisIndex: 0 }],
        series: [
          {
            id: "speed", name: t("day.speed"), type: "line", yAxisIndex: 0, data: speed,
            showSymbol: false, connectNulls: false, lineStyle: { width: 1.5 }, color: SPEED_COLOR,
            markArea: { silent: true, itemStyle: HIGHLIGHT, data: [] },
          },
          {
            id: "accuracy", name: t("day.accuracy"), type: "line", yAxisIndex: 1, data: accuracy,
            showSymbol: false, connectNulls: false, lineStyle: { width: 1 }, color: ACCURACY_COLOR,
          },
        ],
      },
      { notMerge: true },
    );
  }

  /** Shade the time range [fromMs, toMs] of a stop or trip; null clears it. */
  function highlight(range) {
    const data = range ? [[{ xAxis: range[0] }, { xAxis: range[1] }]] : [];
    chart.setOption({ series: [{ id: "speed", markArea: { silent: true, itemStyle: HIGHLIGHT, data } }] });
  }

  /** Return what is drawn: each series' id and number of points, and the shaded range. */
  function drawn() {
    const option = chart.getOption();
    const speed = option.series.find((s) => s.id === "speed");
    const area = speed?.markArea?.data?.[0];
    return {
      series: option.series.map((s) => ({ id: s.id, name: s.name, points: s.data.length })),
      highlighted: area ? [area[0].xAxis, area[1].xAxis] : null,
    };
  }

  return { chart, show, highlight, drawn };
}
