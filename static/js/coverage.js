/* Grid coverage: grids tinted by who is on duty inside, and the grid panel. */
import { getJson } from "./api.js";
import { ageText, roleName, t } from "./i18n.js";
import { el, showTab } from "./ui.js";

/** Follow the coverage of the grids in scope; a click on a grid opens its panel. */
export function createCoverage(base, people) {
  const { map, units } = base;
  let coverage = new Map(); // grid id -> {unit_id, name, inside, assigned, on_duty_inside, state}
  let selectedGridId = null;

  async function refresh() {
    let answer;
    try {
      answer = await getJson("/api/v1/coverage");
    } catch {
      return;
    }
    let uncovered = 0;
    coverage = new Map();
    for (const grid of answer.grids) {
      const state = grid.on_duty_inside > 0 ? "covered" : "uncovered";
      if (state === "uncovered") uncovered += 1;
      grid.state = state;
      coverage.set(grid.unit_id, grid);
      map.setFeatureState({ source: "units", id: grid.unit_id }, { coverage: state });
      base.setUnitLabel(grid.unit_id, {
        coverage: state,
        badge: state === "uncovered" ? t("coverage.uncovered") : t("coverage.on_duty", { n: grid.on_duty_inside }),
      });
    }
    const summary = document.getElementById("coverage-summary");
    summary.textContent = answer.grids.length
      ? t("coverage.summary", { n: answer.grids.length, u: uncovered })
      : t("coverage.no_grids");
    summary.dataset.uncovered = uncovered;
    document.body.dataset.coverageAt = String(Date.now());
    if (selectedGridId !== null) loadGrid(selectedGridId);
  }

  async function loadGrid(gridId) {
    const answer = await getJson(`/api/v1/units/${gridId}/people`);
    if (selectedGridId === gridId) renderGrid(gridId, answer);
  }

  function selectGrid(gridId) {
    selectedGridId = gridId;
    map.setFilter("units-selected", ["==", ["get", "id"], gridId === null ? -1 : gridId]);
    showTab("grid");
    if (gridId !== null) loadGrid(gridId);
  }

  function renderGrid(gridId, answer) {
    const box = document.getElementById("grid-detail");
    box.replaceChildren();
    box.dataset.unit = gridId;
    const head = el("div", "panel-head");
    head.append(el("h3", null, units.get(gridId)?.name ?? `#${gridId}`));
    const state = answer.on_duty > 0 ? "covered" : "uncovered";
    head.append(el("span", `pill pill-${state}`, t(`coverage.${state}`)));
    box.append(head);
    const stats = el("div", "mini-stats");
    for (const [key, value, label] of [
      ["on_duty", answer.on_duty, t("grid.on_duty_inside")],
      ["inside", answer.inside, t("grid.inside")],
      ["assigned", answer.assigned, t("grid.assigned")],
    ]) {
      const stat = el("div", "mini-stat");
      stat.dataset.stat = key;
      stat.append(el("strong", null, value), el("span", null, label));
      stats.append(stat);
    }
    box.append(stats);
    if (!answer.people.length) {
      box.append(el("p", "muted empty", t("grid.nobody")));
      return;
    }
    const list = el("ul", "people-list");
    for (const p of answer.people) {
      const li = el("li");
      li.dataset.person = p.person_id;
      const dot = el("span", "role-dot");
      dot.style.background = p.on_duty ? "#27ae60" : "#a3aab2";
      const main = el("div", "grow");
      main.append(el("div", "name", p.name));
      main.append(el("div", "muted small", roleName(p.role) + (p.ts ? ` · ${ageText(Date.parse(p.ts))}` : "")));
      const tags = el("div", "tags");
      if (p.inside) tags.append(el("span", "tag tag-inside", t("grid.tag_inside")));
      if (p.assigned) tags.append(el("span", "tag", t("grid.tag_assigned")));
      tags.append(el("span", `tag ${p.on_duty ? "tag-on" : "tag-off"}`, p.on_duty ? t("popup.on_duty") : t("popup.off_duty")));
      li.append(dot, main, tags);
      li.addEventListener("click", () => {
        const known = people.people.get(p.person_id);
        if (!known) return;
        people.selectPerson(p.person_id);
        base.flyTo(known.lon, known.lat);
      });
      list.append(li);
    }
    box.append(list);
  }

  people.hooks.gridClick = selectGrid;

  return {
    refresh,
    coverage() {
      const out = {};
      for (const [id, grid] of coverage) out[id] = { state: grid.state, on_duty_inside: grid.on_duty_inside };
      return out;
    },
    gridState: (id) => map.getFeatureState({ source: "units", id }).coverage || null,
    unitLabel: (id) => units.get(id)?.label ?? null,
  };
}
