/* Entry of /admin/units: the unit tree (add, rename, move, delete) and boundaries drawn with terra-draw.
 *
 * Every change goes to /api/v1/units; the server checks and repairs boundaries and says what
 * it changed, and this page shows that. terra-draw and its MapLibre adapter are the vendor
 * UMD builds (window.terraDraw, window.terraDrawMaplibreGlAdapter), like MapLibre itself.
 */
import { getJson, sendJson, request } from "./api.js";
import { lang, roleName, t } from "./i18n.js";
import { createMap } from "./map.js";
import { button, el } from "./ui.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const { TerraDraw, TerraDrawPolygonMode, TerraDrawSelectMode } = window.terraDraw;
const { TerraDrawMapLibreGLAdapter } = window.terraDrawMaplibreGlAdapter;
const numbers = new Intl.NumberFormat(lang === "zh_CN" ? "zh-CN" : "en-GB", { maximumFractionDigits: 1 });

const tree = document.getElementById("unit-tree");
const status = document.getElementById("units-status");
const notes = document.getElementById("units-notes");
const hint = document.getElementById("draw-hint");
const moveForm = document.getElementById("unit-move");
const buttons = {
  drawNew: document.getElementById("draw-new"),
  drawEdit: document.getElementById("draw-edit"),
  save: document.getElementById("draw-save"),
  cancel: document.getElementById("draw-cancel"),
};

const people = {
  panel: document.getElementById("grid-people"),
  status: document.getElementById("grid-people-status"),
  list: document.getElementById("grid-people-list"),
  search: document.getElementById("grid-people-search"),
  q: document.getElementById("grid-people-q"),
  found: document.getElementById("grid-people-found"),
};
document.getElementById("grid-people-title").textContent = t("units.people");
document.getElementById("grid-people-q-label").textContent = t("units.people_q");
document.getElementById("grid-people-search-button").textContent = t("units.people_search");
people.q.placeholder = t("units.people_q");

const units = new Map(); // id -> {id, name, kind, parent_id, geometry, children}
let selectedId = null;
let editing = false;

const base = createMap(settings, "units-map");
const { map, project, unproject } = base;
let draw = null;

function kindName(kind) {
  return t(`kind.${kind}`);
}

function areaText(m2) {
  if (m2 == null) return t("units.no_boundary");
  return m2 >= 1e6 ? t("units.area_km2", { n: numbers.format(m2 / 1e6) }) : t("units.area", { n: numbers.format(Math.round(m2)) });
}

function say(state, text) {
  status.hidden = false;
  status.dataset.state = state;
  status.textContent = text;
}

/** Return a geometry's rings mapped through `convert` (project or unproject). */
function mapGeometry(geometry, convert) {
  const ring = (coords) => coords.map((c) => convert(c[0], c[1]));
  if (geometry.type === "Polygon") return { type: "Polygon", coordinates: geometry.coordinates.map(ring) };
  return { type: "MultiPolygon", coordinates: geometry.coordinates.map((poly) => poly.map(ring)) };
}

/** Return the depth-first order of the tree: [unit, depth] pairs. */
function ordered() {
  const out = [];
  const visit = (unit, depth) => {
    out.push([unit, depth]);
    for (const child of unit.children) visit(child, depth + 1);
  };
  for (const unit of units.values()) if (!units.has(unit.parent_id)) visit(unit, 0);
  return out;
}

function parentOptions(select, exclude) {
  select.replaceChildren();
  if (settings.user.unit_id == null) select.append(new Option(t("units.top"), ""));
  for (const [unit, depth] of ordered()) {
    if (exclude && base.unitSubtree(unit).has(exclude)) continue;
    select.append(new Option(`${"\u3000".repeat(depth)}${unit.name} · ${kindName(unit.kind)}`, String(unit.id)));
  }
}

function renderTree() {
  tree.replaceChildren();
  const rows = ordered();
  if (!rows.length) tree.append(el("li", "muted", t("units.no_units")));
  for (const [unit, depth] of rows) {
    const item = el("li", unit.id === selectedId ? "selected" : null);
    item.dataset.unitId = unit.id;
    item.style.paddingLeft = `${depth * 16}px`;
    const label = button("unit-name", unit.name, () => select(unit.id));
    item.append(label, el("span", "kind", kindName(unit.kind)), el("span", "area muted small", unit.area_m2 != null || !unit.geometry ? areaText(unit.area_m2) : ""));
    const actions = el("span", "unit-actions");
    actions.append(
      button("unit-rename", t("units.rename"), () => rename(unit)),
      button("unit-move-open", t("units.move"), () => openMove(unit, item)),
      button("unit-delete", t("units.delete"), () => remove(unit)),
    );
    item.append(actions);
    tree.append(item);
  }
  parentOptions(document.getElementById("unit-add-parent"));
}

function drawBoundaries() {
  const features = [...units.values()]
    .filter((u) => u.geometry)
    .map((u) => ({ type: "Feature", properties: { id: u.id, kind: u.kind }, geometry: mapGeometry(u.geometry, project) }));
  map.getSource("admin-units").setData({ type: "FeatureCollection", features });
  map.setFilter("admin-units-selected", ["==", ["get", "id"], selectedId ?? -1]);
}

async function load() {
  const collection = await getJson("/api/v1/units");
  units.clear();
  for (const f of collection.features) {
    const p = f.properties;
    units.set(p.unit_id, {
      id: p.unit_id, name: p.name, kind: p.kind, parent_id: p.parent_id, geometry: f.geometry, area_m2: null, children: [],
      policy: { tracking_policy: p.tracking_policy, duty_hours: p.duty_hours, live_shows_off_duty: p.live_shows_off_duty },
    });
  }
  for (const unit of units.values()) units.get(unit.parent_id)?.children.push(unit);
  if (selectedId != null && !units.has(selectedId)) selectedId = null;
  renderTree();
  drawBoundaries();
  updateToolbar();
  if (units.get(selectedId)?.kind !== "grid") people.panel.hidden = true;
}

function fitAll() {
  const bounds = new base.maplibregl.LngLatBounds();
  for (const unit of units.values()) base.extendBounds(bounds, unit.geometry);
  if (!bounds.isEmpty()) map.fitBounds(bounds, { padding: 40, duration: 0, maxZoom: 16 });
}

function select(id) {
  if (editing) stopDrawing();
  selectedId = id;
  const unit = units.get(id);
  document.getElementById("units-selected").textContent = `${unit.name} · ${kindName(unit.kind)}`;
  for (const item of tree.querySelectorAll("li[data-unit-id]")) item.classList.toggle("selected", Number(item.dataset.unitId) === id);
  drawBoundaries();
  if (unit.geometry) {
    const bounds = new base.maplibregl.LngLatBounds();
    base.extendBounds(bounds, unit.geometry);
    map.fitBounds(bounds, { padding: 60, duration: 0, maxZoom: 17 });
  }
  hint.textContent = "";
  updateToolbar();
  showPeople();
  showPolicy(unit);
}

// --- the unit's tracking policy (docs/privacy.md) ---------------------------------
const policyForm = document.getElementById("unit-policy");

function showPolicy(unit) {
  policyForm.hidden = !unit;
  if (!unit) return;
  const { tracking_policy: kind, duty_hours: hours, live_shows_off_duty: live } = unit.policy;
  document.getElementById("unit-policy-kind").value = kind || "";
  document.getElementById("unit-policy-hours").value = hours || "";
  document.getElementById("unit-policy-live").value = live === null || live === undefined ? "" : String(live);
  document.getElementById("unit-policy-status").textContent = "";
  showPolicyHours();
}

function showPolicyHours() {
  document.getElementById("unit-policy-hours-label").hidden = document.getElementById("unit-policy-kind").value !== "duty_hours";
}

async function savePolicy(event) {
  event.preventDefault();
  const unit = units.get(selectedId);
  if (!unit) return;
  const kind = document.getElementById("unit-policy-kind").value || null;
  const live = document.getElementById("unit-policy-live").value;
  const body = {
    tracking_policy: kind,
    duty_hours: kind === "duty_hours" ? document.getElementById("unit-policy-hours").value.trim() : null,
    live_shows_off_duty: live === "" ? null : live === "true",
  };
  const status = document.getElementById("unit-policy-status");
  const response = await request("PUT", `/api/v1/units/${unit.id}/tracking-policy`, body);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    status.textContent = t("units.failed", { error: answer.message || answer.error || response.status });
    document.body.dataset.policySaved = "error";
    return;
  }
  unit.policy = {
    tracking_policy: answer.tracking_policy ?? null,
    duty_hours: body.duty_hours,
    live_shows_off_duty: answer.live_shows_off_duty ?? null,
  };
  status.textContent = t("units.policy_saved", { name: unit.name });
  document.body.dataset.policySaved = String(Date.now());
}

policyForm.addEventListener("submit", savePolicy);
document.getElementById("unit-policy-kind").addEventListener("change", showPolicyHours);

function updateToolbar() {
  const unit = units.get(selectedId);
  buttons.drawNew.disabled = !unit || !draw;
  buttons.drawEdit.disabled = !unit || !unit.geometry || !draw;
  buttons.save.disabled = !editing;
  buttons.cancel.disabled = !editing;
  if (!unit && !editing) hint.textContent = t("units.choose");
}

function startDrawing(withExisting) {
  const unit = units.get(selectedId);
  draw.clear();
  editing = true;
  notes.hidden = true;
  if (withExisting && unit.geometry) {
    const projected = mapGeometry(unit.geometry, project);
    const polygons = projected.type === "Polygon" ? [projected.coordinates] : projected.coordinates;
    draw.addFeatures(polygons.map((coordinates) => ({
      id: draw.getFeatureId(),
      type: "Feature",
      geometry: { type: "Polygon", coordinates },
      properties: { mode: "polygon" },
    })));
    draw.setMode("select");
    hint.textContent = t("units.editing", { name: unit.name });
  } else {
    draw.setMode("polygon");
    hint.textContent = t("units.drawing", { name: unit.name });
  }
  document.body.dataset.drawMode = draw.getMode();
  updateToolbar();
}

function stopDrawing() {
  draw.clear();
  draw.setMode("static");
  editing = false;
  document.body.dataset.drawMode = "static";
  hint.textContent = "";
  updateToolbar();
}

/** Return the polygons terra-draw holds, as one WGS-84 Polygon or MultiPolygon (or null). */
function drawnBoundary() {
  const polygons = draw.getSnapshot()
    .filter((f) => f.geometry.type === "Polygon" && !f.properties.currentlyDrawing)
    .map((f) => mapGeometry(f.geometry, unproject).coordinates);
  if (!polygons.length) return null;
  return polygons.length === 1 ? { type: "Polygon", coordinates: polygons[0] } : { type: "MultiPolygon", coordinates: polygons };
}

function showNotes(answer) {
  notes.replaceChildren();
  const { repair, overlaps } = answer;
  if (repair) {
    notes.append(el("p", "repair-note", t("units.repaired", {
      reason: repair.reason, parts: repair.parts,
      before: numbers.format(Math.round(repair.area_before_m2)), after: numbers.format(Math.round(repair.area_after_m2)),
    })));
  }
  for (const overlap of overlaps || []) {
    const note = el("p", "overlap-note", t("units.overlap", { name: overlap.name, n: numbers.format(Math.round(overlap.area_m2)) }));
    note.dataset.unitId = overlap.unit_id;
    notes.append(note);
  }
  notes.hidden = !notes.children.length;
}

async function save() {
  const unit = units.get(selectedId);
  const boundary = drawnBoundary();
  if (!boundary) {
    say("error", t("units.nothing_drawn"));
    return;
  }
  buttons.save.disabled = true;
  try {
    const answer = await sendJson("PATCH", `/api/v1/units/${unit.id}`, { boundary });
    stopDrawing();
    say("ok", t("units.saved", { name: unit.name }));
    await load();
    units.get(unit.id).area_m2 = answer.unit.area_m2;
    renderTree();
    showNotes(answer);
    document.body.dataset.saved = String(Number(document.body.dataset.saved || 0) + 1);
  } catch (error) {
    say("error", t("units.failed", { error: error.message }));
    buttons.save.disabled = false;
  }
}

async function rename(unit) {
  const name = window.prompt(t("units.new_name", { name: unit.name }), unit.name);
  if (name == null || name === unit.name) return;
  await change(unit, { name });
}

function openMove(unit, item) {
  parentOptions(document.getElementById("unit-move-parent"), unit.id);
  document.getElementById("unit-move-parent").value = unit.parent_id == null ? "" : String(unit.parent_id);
  moveForm.dataset.unitId = unit.id;
  moveForm.hidden = false;
  item.append(moveForm);
}

async function change(unit, body) {
  try {
    const answer = await sendJson("PATCH", `/api/v1/units/${unit.id}`, body);
    say("ok", t("units.saved", { name: answer.unit.name }));
    await load();
  } catch (error) {
    say("error", t("units.failed", { error: error.message }));
  }
}

async function remove(unit) {
  if (!window.confirm(t("units.confirm_delete", { name: unit.name }))) return;
  const response = await request("DELETE", `/api/v1/units/${unit.id}`);
  if (response.ok) {
    say("ok", t("units.deleted", { name: unit.name }));
    await load();
    return;
  }
  const answer = await response.json().catch(() => ({}));
  say("error", t("units.failed", { error: answer.message || answer.error || `HTTP ${response.status}` }));
}

/* The grid's patrol people: who has it as their patrol grid (GET /api/v1/units/<id>/people,
 * the `assigned` ones; /api/v1/people has no patrol-grid filter), removed or added with
 * PATCH /api/v1/people/<id> {"patrol_unit_id"}. The server checks role and scope. */

/** Return a GET's JSON; reject with the server's `message` (else `error`). */
async function fetchJson(url) {
  const response = await request("GET", url);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.message || answer.error || `HTTP ${response.status}`);
  return answer;
}

function sayPeople(state, text) {
  people.status.hidden = false;
  people.status.dataset.state = state;
  people.status.textContent = text;
}

/** Show the panel for the selected unit when it is a grid, else hide it. */
function showPeople() {
  const unit = units.get(selectedId);
  people.panel.hidden = unit?.kind !== "grid";
  people.status.hidden = true;
  people.found.replaceChildren();
  people.q.value = "";
  if (!people.panel.hidden) loadPeople(unit);
}

async function loadPeople(unit) {
  people.panel.dataset.state = "loading";
  people.panel.dataset.unitId = unit.id;
  try {
    const answer = await fetchJson(`/api/v1/units/${unit.id}/people`);
    if (selectedId !== unit.id) return; // another unit was chosen meanwhile
    renderPeople(unit, answer.people.filter((p) => p.assigned === true));
  } catch (error) {
    if (selectedId !== unit.id) return;
    people.list.replaceChildren();
    sayPeople("error", error.message);
  }
  people.panel.dataset.state = "ready";
}

function renderPeople(unit, assigned) {
  people.list.replaceChildren();
  if (!assigned.length) people.list.append(el("li", "muted", t("units.people_none")));
  for (const person of assigned) {
    const item = el("li");
    item.dataset.personId = person.person_id;
    item.append(
      el("span", "person-name", person.name),
      el("span", "muted small", roleName(person.role)),
      button("person-remove", t("units.people_remove"), () => assign(unit, person.person_id, person.name, null)),
    );
    people.list.append(item);
  }
}

/** Set a person's patrol grid (`gridId` null clears it), then show the grid's people again. */
async function assign(unit, personId, name, gridId) {
  try {
    await sendJson("PATCH", `/api/v1/people/${personId}`, { patrol_unit_id: gridId });
    if (selectedId !== unit.id) return;
    sayPeople("ok", t(gridId == null ? "units.people_removed" : "units.people_added", { name, grid: unit.name }));
    if (gridId != null) people.found.replaceChildren();
    await loadPeople(unit);
  } catch (error) {
    sayPeople("error", t("units.failed", { error: error.message }));
  }
}

people.search.addEventListener("submit", async (event) => {
  event.preventDefault();
  const unit = units.get(selectedId);
  const q = people.q.value.trim();
  if (!unit || !q) return;
  people.search.dataset.state = "searching";
  try {
    const answer = await fetchJson(`/api/v1/people?${new URLSearchParams({ q, active: "true", per_page: "20" })}`);
    if (selectedId !== unit.id) return;
    people.found.replaceChildren();
    if (!answer.people.length) people.found.append(el("li", "muted", t("units.people_no_match")));
    for (const person of answer.people) {
      const item = el("li");
      item.dataset.personId = person.id;
      const here = person.patrol_unit_id === unit.id;
      item.append(
        el("span", "person-name", person.name),
        el("span", "muted small", [person.phone, person.patrol_unit_name].filter(Boolean).join(" · ")),
      );
      if (here) item.append(el("span", "muted small", t("units.people_here")));
      else item.append(button("person-add", t("units.people_add"), () => assign(unit, person.id, person.name, unit.id)));
      people.found.append(item);
    }
  } catch (error) {
    sayPeople("error", error.message);
  } finally {
    people.search.dataset.state = "done";
  }
});

moveForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const unit = units.get(Number(moveForm.dataset.unitId));
  const value = document.getElementById("unit-move-parent").value;
  moveForm.hidden = true;
  document.body.append(moveForm);
  await change(unit, { parent_id: value === "" ? null : Number(value) });
});
document.getElementById("unit-move-cancel").addEventListener("click", () => {
  moveForm.hidden = true;
  document.body.append(moveForm);
});

document.getElementById("unit-add").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = document.getElementById("unit-add-name").value;
  const parent = document.getElementById("unit-add-parent").value;
  const body = { name, kind: document.getElementById("unit-add-kind").value, parent_id: parent === "" ? null : Number(parent) };
  try {
    const answer = await sendJson("POST", "/api/v1/units", body);
    say("ok", t("units.created", { name: answer.unit.name }));
    document.getElementById("unit-add-name").value = "";
    await load();
    select(answer.unit.id);
  } catch (error) {
    say("error", t("units.failed", { error: error.message }));
  }
});

buttons.drawNew.addEventListener("click", () => startDrawing(false));
buttons.drawEdit.addEventListener("click", () => startDrawing(true));
buttons.save.addEventListener("click", save);
buttons.cancel.addEventListener("click", stopDrawing);

base.ready.then(async () => {
  map.addSource("admin-units", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "admin-units-fill", type: "fill", source: "admin-units", paint: { "fill-color": "#2d7dd2", "fill-opacity": 0.08 } });
  map.addLayer({ id: "admin-units-line", type: "line", source: "admin-units", paint: { "line-color": "#2d6fb0", "line-width": 1.5 } });
  map.addLayer({
    id: "admin-units-selected", type: "line", source: "admin-units",
    filter: ["==", ["get", "id"], -1], paint: { "line-color": "#0e3a5b", "line-width": 3 },
  });
  draw = new TerraDraw({
    adapter: new TerraDrawMapLibreGLAdapter({ map }),
    modes: [
      new TerraDrawPolygonMode(),
      new TerraDrawSelectMode({
        flags: { polygon: { feature: { draggable: true, coordinates: { midpoints: true, draggable: true, deletable: true } } } },
      }),
    ],
  });
  draw.start();
  await load();
  fitAll();
  // A handle for the browser tests: the map (to project clicks) and the drawing.
  window.__adminUnits = { map, draw, units };
  document.body.dataset.ready = "1";
});
