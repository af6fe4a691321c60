/* What every administration page needs: its settings, the units in scope, small formatters. */
import { getJson } from "./api.js";
import { lang, t } from "./i18n.js";

/** The page's settings: the account and the person roles of this deployment. */
export const settings = JSON.parse(document.getElementById("settings").textContent);
const locale = lang === "zh_CN" ? "zh-CN" : "en-GB";

/** Return the units in scope as [{id, name, kind, parent_id, depth}] in tree order. */
export async function loadUnits() {
  const answer = await getJson("/api/v1/units");
  const units = answer.features.map((f) => ({
    id: f.properties.unit_id,
    name: f.properties.name,
    kind: f.properties.kind,
    parent_id: f.properties.parent_id,
  }));
  const byId = new Map(units.map((u) => [u.id, u]));
  const children = new Map();
  for (const unit of units) {
    const parent = byId.has(unit.parent_id) ? unit.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(unit);
  }
  const ordered = [];
  const walk = (parent, depth) => {
    const list = (children.get(parent) || []).sort((a, b) => a.name.localeCompare(b.name, locale));
    for (const unit of list) {
      ordered.push({ ...unit, depth });
      walk(unit.id, depth + 1);
    }
  };
  walk(null, 0);
  return ordered;
}

/** Fill a <select> with units (indented by depth) after its first `keep` options. */
export function fillUnits(select, units, { keep = 1, onlyGrids = false } = {}) {
  while (select.options.length > keep) select.remove(keep);
  for (const unit of units) {
    if (onlyGrids && unit.kind !== "grid") continue;
    const option = document.createElement("option");
    option.value = String(unit.id);
    option.textContent = `${"\u3000".repeat(onlyGrids ? 0 : unit.depth)}${unit.name}`;
    select.append(option);
  }
}

/** Return a <select> option of a value and a label. */
export function option(value, label) {
  const node = document.createElement("option");
  node.value = value;
  node.textContent = label;
  return node;
}

/** Return an ISO time as a date and a clock time in the page's language, or "—". */
export function dateTime(iso) {
  if (!iso) return t("none");
  return new Date(iso).toLocaleString(locale, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
}

/** Show a message in a <p> (or hide it when `text` is empty). */
export function say(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

/** Return a staff role's name in the page's language. */
export function staffRole(role) {
  return t(`staff.${role}`);
}
