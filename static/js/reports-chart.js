/* The reports page's charts (Apache ECharts from /static/vendor, as on a person's day).
 *
 * One bar chart per report: hours on duty, in and out of the grid per person; coverage %
 * per grid; the score of each person and grid. And the hours of a grid's day with
 * someone on duty inside. Tooltips are formatted here, so no inline style reaches the DOM.
 */
import * as echarts from "../vendor/echarts.esm.min.js";
import { t } from "./i18n.js";

const MAX_BARS = 40;
const COLORS = ["#1f7ae0", "#27ae60", "#e67e22", "#8e44ad"];

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function tooltip(items) {
  if (!items.length) return "";
  const lines = [escapeHtml(items[0].name)];
  for (const item of items) lines.push(`${escapeHtml(item.seriesName)}: ${escapeHtml(item.value)}`);
  return lines.join("<br>");
}

function sumBy(rows, key, value) {
  const out = new Map();
  for (const row of rows) out.set(key(row), (out.get(key(row)) || 0) + value(row));
  return out;
}

const round = (x, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Return the categories and series a report's chart shows. */
export function chartData(report, rows) {
  if (report === "person-days") {
    const duty = sumBy(rows, (r) => r.name, (r) => r.duty_s / 3600);
    const inside = sumBy(rows, (r) => r.name, (r) => (r.inside_s || 0) / 3600);
    const outside = sumBy(rows, (r) => r.name, (r) => (r.outside_s || 0) / 3600);
    const names = [...duty.keys()].sort((a, b) => duty.get(b) - duty.get(a)).slice(0, MAX_BARS);
    return {
      categories: names,
      unit: "h",
      series: [
        { name: t("reports.chart.duty"), data: names.map((n) => round(duty.get(n))) },
        { name: t("reports.chart.inside"), data: names.map((n) => round(inside.get(n))) },
        { name: t("reports.chart.outside"), data: names.map((n) => round(outside.get(n))) },
      ],
    };
  }
  if (report === "grid-days") {
    const days = new Set(rows.map((r) => r.date)).size || 1;
    const coverage = sumBy(rows, (r) => r.name, (r) => (r.coverage_pct || 0) / days);
    const names = [...coverage.keys()].sort((a, b) => coverage.get(a) - coverage.get(b)).slice(0, MAX_BARS);
    return {
      categories: names,
      unit: "%",
      max: 100,
      series: [{ name: t("reports.chart.coverage"), data: names.map((n) => round(coverage.get(n), 1)) }],
    };
  }
  const shown = rows.slice(0, MAX_BARS);
  return {
    categories: shown.map((r) => `${r.name} ${r.from}`),
    unit: "",
    series: [{ name: t("reports.chart.score"), data: shown.map((r) => r.score) }],
  };
}

function barOption(data) {
  return {
    animation: false,
    color: COLORS,
    grid: { left: 48, right: 16, top: 32, bottom: 72 },
    legend: { top: 0, data: data.series.map((s) => s.name) },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, formatter: tooltip },
    xAxis: { type: "category", data: data.categories, axisLabel: { rotate: 40, interval: 0 } },
    yAxis: { type: "value", name: data.unit, min: 0, max: data.max },
    series: data.series.map((s) => ({ ...s, id: s.name, type: "bar", barMaxWidth: 48 })),
  };
}

/** Create a chart in `container`; return show(report, rows), hours(row) and drawn(). */
export function createReportChart(container) {
  const chart = echarts.init(container, null, { renderer: "canvas" });
  new ResizeObserver(() => chart.resize()).observe(container);

  function show(report, rows) {
    chart.setOption(barOption(chartData(report, rows)), { notMerge: true });
  }

  /** Draw a grid-day's minutes with someone on duty inside, hour by hour. */
  function hours(row) {
    const categories = row.hourly_covered_s.map((_, h) => `${String(h).padStart(2, "0")}`);
    chart.setOption(
      barOption({
        categories,
        unit: "min",
        max: 60,
        series: [{ name: t("reports.chart.hours"), data: row.hourly_covered_s.map((s) => round(s / 60, 0)) }],
      }),
      { notMerge: true },
    );
  }

  /** Return what is drawn: each series' name and number of bars. */
  function drawn() {
    const option = chart.getOption();
    return { categories: option.xAxis[0].data.length, series: option.series.map((s) => ({ name: s.name, points: s.data.length })) };
  }

  return { chart, show, hours, drawn };
}
