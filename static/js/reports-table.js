/* The reports page's table: the columns of each report, sorting by any column, drill-down links.
 *
 * Each column reads a fact of a row (seconds, metres, ISO times) and words it here; sorting
 * uses the fact, not the text, so 9 min sorts before 10 min.
 */
import { lang, roleName, t } from "./i18n.js";
import { el } from "./ui.js";

const locale = lang === "zh_CN" ? "zh-CN" : "en-GB";
const number = (digits) => new Intl.NumberFormat(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits });
const fixed = { 0: number(0), 1: number(1), 2: number(2) };

/** Return a number with `digits` decimals, or a dash for none. */
export function num(value, digits = 1) {
  return value == null ? "–" : fixed[digits].format(value);
}

const hours = (s) => (s == null ? null : s / 3600);
const minutes = (s) => (s == null ? null : s / 60);

function clockIn(zone) {
  const format = new Intl.DateTimeFormat(locale, { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return (iso) => (iso ? format.format(new Date(iso)) : "–");
}

function link(href, key) {
  const a = el("a", "reports-link", t(key));
  a.href = href;
  return a;
}

function replayUrl(from, to, people) {
  return `/replay?${new URLSearchParams({ from, to, people: people.join(",") })}`;
}

/** Return the columns of a report: {key, label, sort(row), text(row) or cell(row, actions)}. */
export function columnsFor(report, settings) {
  const clock = clockIn(settings.time_zone);
  if (report === "person-days") {
    return [
      { key: "date", label: "reports.col.date", sort: (r) => r.date, text: (r) => r.date },
      { key: "name", label: "reports.col.name", sort: (r) => r.name, text: (r) => r.name },
      { key: "role", label: "reports.col.role", sort: (r) => r.role, text: (r) => roleName(r.role) },
      { key: "grid", label: "reports.col.grid", sort: (r) => r.grid_name || "", text: (r) => r.grid_name || "–" },
      { key: "duty", label: "reports.col.duty_h", sort: (r) => r.duty_s, text: (r) => num(hours(r.duty_s), 2), numeric: true },
      { key: "first", label: "reports.col.first_fix", sort: (r) => r.first_fix || "", text: (r) => clock(r.first_fix) },
      { key: "last", label: "reports.col.last_fix", sort: (r) => r.last_fix || "", text: (r) => clock(r.last_fix) },
      { key: "distance", label: "reports.col.distance_km", sort: (r) => r.distance_m, text: (r) => num(r.distance_m / 1000, 2), numeric: true },
      { key: "inside", label: "reports.col.inside_h", sort: (r) => r.inside_s ?? -1, text: (r) => num(hours(r.inside_s), 2), numeric: true },
      { key: "outside", label: "reports.col.outside_min", sort: (r) => r.outside_s ?? -1, text: (r) => num(minutes(r.outside_s), 0), numeric: true },
      { key: "absence", label: "reports.col.absence_min", sort: (r) => r.longest_absence_s ?? -1, text: (r) => num(minutes(r.longest_absence_s), 0), numeric: true },
      { key: "stops", label: "reports.col.stops", sort: (r) => r.stops, text: (r) => String(r.stops), numeric: true },
      { key: "overlong", label: "reports.col.overlong", sort: (r) => r.overlong_stops, text: (r) => String(r.overlong_stops), numeric: true },
      { key: "lost", label: "reports.col.lost_min", sort: (r) => r.lost_s, text: (r) => num(minutes(r.lost_s), 0), numeric: true },
      { key: "alerts", label: "reports.col.alerts", sort: (r) => r.alerts, text: (r) => String(r.alerts), numeric: true },
      { key: "tasks", label: "reports.col.tasks", sort: (r) => r.tasks_assigned, text: (r) => `${r.tasks_assigned} / ${r.tasks_accepted} / ${r.tasks_done}` },
      { key: "accept", label: "reports.col.accept_min", sort: (r) => r.accept_s_avg ?? -1, text: (r) => num(minutes(r.accept_s_avg), 1), numeric: true },
      {
        key: "links", label: "reports.col.links", cell: (r) => {
          const cell = el("span", "reports-links");
          cell.append(link(`/people/${r.person_id}/day?date=${r.date}`, "reports.day_link"));
          if (r.first_fix) cell.append(link(replayUrl(r.day_start, r.day_end, [r.person_id]), "reports.replay_link"));
          return cell;
        },
      },
    ];
  }
  if (report === "grid-days") {
    return [
      { key: "date", label: "reports.col.date", sort: (r) => r.date, text: (r) => r.date },
      { key: "grid", label: "reports.col.grid_name", sort: (r) => r.name, text: (r) => r.name },
      { key: "coverage", label: "reports.col.coverage_pct", sort: (r) => r.coverage_pct ?? -1, text: (r) => num(r.coverage_pct, 1), numeric: true },
      { key: "patrolled", label: "reports.col.patrolled_h", sort: (r) => r.covered_s, text: (r) => num(hours(r.covered_s), 2), numeric: true },
      { key: "hours", label: "reports.col.covered_hours", sort: (r) => r.covered_hours, text: (r) => String(r.covered_hours), numeric: true },
      { key: "uncovered", label: "reports.col.uncovered_h", sort: (r) => r.uncovered_s, text: (r) => num(hours(r.uncovered_s), 2), numeric: true },
      {
        key: "people", label: "reports.col.people", sort: (r) => r.people.length,
        text: (r) => r.people.map((p) => `${p.name} ${num(p.inside_s / 60, 0)}`).join(", ") || "–",
      },
      {
        key: "links", label: "reports.col.links", cell: (r, actions) => {
          const cell = el("span", "reports-links");
          const show = el("button", "reports-link link-button", t("reports.coverage_link"));
          show.type = "button";
          show.addEventListener("click", () => actions.showCoverage(r));
          cell.append(show);
          if (r.people.length) cell.append(link(replayUrl(r.day_start, r.day_end, r.people.map((p) => p.person_id)), "reports.replay_link"));
          return cell;
        },
      },
    ];
  }
  return [
    { key: "period", label: "reports.col.period", sort: (r) => r.from, text: (r) => (r.from === r.to ? r.from : `${r.from} – ${r.to}`) },
    { key: "kind", label: "reports.col.kind", sort: (r) => r.kind, text: (r) => t(`reports.kind.${r.kind}`) },
    { key: "name", label: "reports.col.name", sort: (r) => r.name, text: (r) => r.name },
    { key: "duty", label: "reports.col.duty_h", sort: (r) => r.duty_h ?? -1, text: (r) => num(r.duty_h, 2), numeric: true },
    { key: "coverage", label: "reports.col.coverage_pct", sort: (r) => r.coverage_pct ?? -1, text: (r) => num(r.coverage_pct, 1), numeric: true },
    { key: "outside", label: "reports.col.outside_min", sort: (r) => r.off_post_min ?? -1, text: (r) => num(r.off_post_min, 0), numeric: true },
    { key: "score", label: "reports.col.score", sort: (r) => r.score, text: (r) => `${num(r.score, 0)} / ${num(r.max_score, 0)}`, numeric: true },
    { key: "result", label: "reports.col.result", sort: (r) => (r.passed ? 1 : 0), cell: (r) => el("span", r.passed ? "badge-pass" : "badge-fail", t(r.passed ? "reports.pass" : "reports.fail")) },
    {
      key: "reasons", label: "reports.col.reasons", sort: (r) => r.reasons.length,
      text: (r) => r.checks.filter((c) => !c.met).map((c) => t(`reports.reason.${c.rule}`, { actual: num(c.actual, 1), required: num(c.required, 1) })).join("; "),
    },
    {
      key: "links", label: "reports.col.links", cell: (r) => {
        const cell = el("span", "reports-links");
        if (r.kind === "person") cell.append(link(`/people/${r.id}/day?date=${r.from}`, "reports.day_link"));
        return cell;
      },
    },
  ];
}

/** Create the sortable table in `table`; `actions` holds what link buttons do. */
export function createTable(table, actions) {
  const head = table.querySelector("thead");
  const body = table.querySelector("tbody");
  let columns = [];
  let rows = [];
  let sortKey = null;
  let ascending = true;

  function render() {
    const column = columns.find((c) => c.key === sortKey);
    const shown = column
      ? [...rows].sort((a, b) => {
          const x = column.sort(a);
          const y = column.sort(b);
          const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), locale);
          return ascending ? order : -order;
        })
      : rows;
    head.replaceChildren();
    const tr = el("tr");
    for (const c of columns) {
      const th = el("th", c.numeric ? "numeric" : "");
      th.scope = "col";
      th.dataset.key = c.key;
      if (c.sort) {
        const sortButton = el("button", "sort-button", t(c.label));
        sortButton.type = "button";
        sortButton.addEventListener("click", () => {
          ascending = sortKey === c.key ? !ascending : true;
          sortKey = c.key;
          render();
        });
        th.append(sortButton);
        th.setAttribute("aria-sort", sortKey === c.key ? (ascending ? "ascending" : "descending") : "none");
      } else {
        th.textContent = t(c.label);
      }
      tr.append(th);
    }
    head.append(tr);
    body.replaceChildren(
      ...shown.map((row) => {
        const line = el("tr");
        for (const c of columns) {
          const td = el("td", c.numeric ? "numeric" : "");
          if (c.cell) td.append(c.cell(row, actions));
          else td.textContent = c.text(row);
          line.append(td);
        }
        return line;
      }),
    );
  }

  /** Show rows under columns, keeping the sort when the columns stay. */
  function show(newColumns, newRows) {
    if (!newColumns.some((c) => c.key === sortKey)) sortKey = null;
    columns = newColumns;
    rows = newRows;
    render();
  }

  return { show };
}
