/* Entry of the patrol reports page (/reports): choose a unit, a period and a report; see a
 * sortable table, a chart, a grid-day's coverage on the map; download CSV or Excel; print.
 *
 * The server decides scope: the unit list holds only units the account sees, and the API
 * refuses any other. The URL keeps the choice, so a report can be shared or bookmarked.
 */
import { getJson } from "./api.js";
import { lang, t } from "./i18n.js";
import { createReportChart } from "./reports-chart.js";
import { createCoverageMap } from "./reports-coverage.js";
import { columnsFor, createTable, num } from "./reports-table.js";
import { el } from "./ui.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const $ = (id) => document.getElementById(id);
const REPORTS = ["person-days", "grid-days", "assessment"];

const chart = createReportChart($("reports-chart"));
const hoursChart = createReportChart($("reports-hours"));
const coverageMap = createCoverageMap(settings, "map");
let current = null; // {report, query, rows}

const table = createTable($("reports-table"), {
  showCoverage: (row) => showCoverage(row),
});

/** Return a YYYY-MM-DD day moved by `days`. */
function shiftDay(day, days) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

function setStatus(state, text) {
  $("reports-status").textContent = text;
  document.body.dataset.reportState = state;
}

function choice() {
  const report = $("reports-kind").value;
  const query = new URLSearchParams({ from: $("reports-from").value, to: $("reports-to").value });
  if ($("reports-unit").value) query.set("unit_id", $("reports-unit").value);
  if (report === "assessment") query.set("period", $("reports-period").value);
  return { report, query };
}

function syncPeriodField() {
  $("reports-period-field").hidden = $("reports-kind").value !== "assessment";
}

async function fillUnits(selected) {
  const select = $("reports-unit");
  const collection = await getJson("/api/v1/units");
  const units = new Map(collection.features.map((f) => [f.properties.unit_id, { ...f.properties, children: [] }]));
  const roots = [];
  for (const unit of units.values()) (units.get(unit.parent_id)?.children || roots).push(unit);
  const options = [];
  if (settings.user.unit_id == null) options.push(new Option(t("reports.all_units"), ""));
  const walk = (unit, depth) => {
    options.push(new Option(`${"\u3000".repeat(depth)}${unit.name}`, String(unit.unit_id)));
    for (const child of unit.children) walk(child, depth + 1);
  };
  for (const root of roots) walk(root, 0);
  select.replaceChildren(...options);
  const fallback = settings.user.unit_id == null ? "" : String(settings.user.unit_id);
  select.value = selected && units.has(Number(selected)) ? selected : fallback;
}

async function load() {
  const { report, query } = choice();
  const url = `/api/v1/reports/${report}`;
  for (const format of ["csv", "xlsx"]) $(`reports-${format}`).href = `${url}.${format}?${query}`;
  const page = new URLSearchParams(query);
  page.set("report", report);
  window.history.replaceState(null, "", `/reports?${page}`);
  $("reports-heading").textContent = `${$("reports-kind").selectedOptions[0].textContent} · ${$("reports-unit").selectedOptions[0]?.textContent.trim() || ""} · ${query.get("from")} – ${query.get("to")}`;
  $("reports-coverage").hidden = true;
  setStatus("loading", t("reports.loading"));
  try {
    const response = await fetch(`${url}?${query}`, { credentials: "same-origin" });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.message || answer.error || `HTTP ${response.status}`);
    current = { report, query, rows: answer.rows };
    table.show(columnsFor(report, settings), answer.rows);
    chart.show(report, answer.rows);
    $("reports-chart").dataset.bars = String(chart.drawn().categories);
    setStatus("ready", answer.rows.length ? t("reports.loaded", { n: answer.rows.length }) : t("reports.empty"));
  } catch (error) {
    setStatus("failed", t("reports.failed", { error: error.message }));
  }
}

async function showCoverage(row) {
  const section = $("reports-coverage");
  section.hidden = false;
  $("reports-coverage-title").textContent = t("reports.coverage_title", {
    grid: row.name, date: row.date, pct: num(row.coverage_pct, 1), radius: num(settings.radius_m, 0),
  });
  hoursChart.hours(row);
  const clock = new Intl.DateTimeFormat(lang === "zh_CN" ? "zh-CN" : "en-GB", { timeZone: settings.time_zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const periods = row.uncovered.map(([a, b]) => `${clock.format(new Date(a))}–${clock.format(new Date(b))}`);
  $("reports-uncovered").textContent = periods.length ? t("reports.uncovered", { periods: periods.join(", ") }) : t("reports.no_uncovered");
  const unitId = current?.query.get("unit_id") ?? null;
  try {
    const picture = await coverageMap.show(row.grid_id, row.date, unitId);
    section.dataset.coveragePct = String(picture.coverage_pct);
    section.dataset.shaded = picture.covered ? "yes" : "no";
  } catch (error) {
    setStatus("failed", t("reports.failed", { error: error.message }));
  }
  section.scrollIntoView({ block: "nearest" });
}

async function fillDaily() {
  const list = $("reports-daily");
  try {
    const { reports } = await getJson("/api/v1/reports/daily");
    if (!reports.length) {
      list.replaceChildren(el("li", "muted", t("reports.no_daily")));
      return;
    }
    list.replaceChildren(
      ...reports.map((r) => {
        const item = el("li");
        const a = el("a", "", `${r.date} · ${r.unit_name}`);
        a.href = r.url;
        a.download = "";
        item.append(a, el("span", "muted small", ` ${num(r.bytes / 1024, 0)} KB`));
        return item;
      }),
    );
  } catch {
    list.replaceChildren();
  }
}

async function start() {
  const query = new URLSearchParams(window.location.search);
  const yesterday = shiftDay(settings.today, -1);
  $("reports-from").value = query.get("from") || yesterday;
  $("reports-to").value = query.get("to") || query.get("from") || yesterday;
  if (REPORTS.includes(query.get("report"))) $("reports-kind").value = query.get("report");
  if (["day", "week", "month"].includes(query.get("period"))) $("reports-period").value = query.get("period");
  syncPeriodField();
  $("reports-kind").addEventListener("change", syncPeriodField);
  $("reports-print").addEventListener("click", () => window.print());
  $("reports-form").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  fillDaily();
  await fillUnits(query.get("unit_id"));
  await load();
}

start();
