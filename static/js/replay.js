/* The replay page: everyone of a unit (or chosen people) scrubbed through a past range.
 *
 * GET /api/v1/replay gives columnar fixes per person; every animation frame the people
 * and their fading tails at time t are computed (replay-track.js) and handed to two
 * GeoJSON sources. "Who was near" asks GET /api/v1/near around a clicked point and t.
 * The URL's query holds the state (range, t, scope, speed, limits) so it can be shared.
 */
import { getJson } from "./api.js";
import { clock, distanceText, roleName, t as tr } from "./i18n.js";
import { createMap } from "./map.js";
import { roleColorer } from "./people.js";
import { circleRing, lastFixIndex, positionAt, tailParts } from "./replay-track.js";
import { el } from "./ui.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const $ = (id) => document.getElementById(id);
const SPEEDS = [1, 10, 60, 600];
const TAIL_BUCKETS = 5;
const DEFAULT_RANGE_S = 2 * 3600;
const EMPTY = { type: "FeatureCollection", features: [] };

const base = createMap(settings, "map");
const { map, project, unproject } = base;
const state = {
  from: null, // Date
  to: null,
  t: 0, // seconds since `from`
  unitId: null,
  personIds: null, // array of ids, or null
  speed: 60,
  gapMin: 5,
  tailMin: 10,
  playing: false,
};
let tracks = []; // [{person_id, name, role, t, lon, lat, color}]
let selectedId = null;
let drawn = new Map(); // person id -> [lon, lat] WGS-84 as drawn at the last frame
let dirty = true;
let lastFrameMs = null;
let urlTimer = null;
let nearPicking = false;
let nearPoint = null;
// The live map's colours, so a person looks the same on both maps.
const roleColor = roleColorer();

// --- the URL ----------------------------------------------------------------------
function readUrl() {
  const query = new URLSearchParams(window.location.search);
  const to = query.get("to") ? new Date(query.get("to")) : new Date();
  const from = query.get("from") ? new Date(query.get("from")) : new Date(to.getTime() - DEFAULT_RANGE_S * 1000);
  state.from = Number.isNaN(from.getTime()) ? new Date(Date.now() - DEFAULT_RANGE_S * 1000) : from;
  state.to = Number.isNaN(to.getTime()) ? new Date() : to;
  state.t = Math.max(0, Number(query.get("t")) || 0);
  state.unitId = query.get("unit") ? Number(query.get("unit")) : null;
  const people = (query.get("people") || "").split(",").map(Number).filter((n) => Number.isInteger(n) && n > 0);
  state.personIds = people.length ? people : null;
  const speed = Number(query.get("speed"));
  if (SPEEDS.includes(speed)) state.speed = speed;
  if (Number(query.get("gap")) > 0) state.gapMin = Number(query.get("gap"));
  if (Number(query.get("tail")) >= 0 && query.has("tail")) state.tailMin = Number(query.get("tail"));
}

function writeUrl() {
  const query = new URLSearchParams();
  query.set("from", state.from.toISOString());
  query.set("to", state.to.toISOString());
  query.set("t", String(Math.round(state.t)));
  if (state.personIds) query.set("people", state.personIds.join(","));
  else if (state.unitId !== null) query.set("unit", String(state.unitId));
  query.set("speed", String(state.speed));
  query.set("gap", String(state.gapMin));
  query.set("tail", String(state.tailMin));
  window.history.replaceState(null, "", `${window.location.pathname}?${query}`);
}

function scheduleUrl() {
  if (urlTimer) return;
  urlTimer = setTimeout(() => {
    urlTimer = null;
    writeUrl();
  }, 250);
}

// --- the controls -----------------------------------------------------------------
/** Return a Date as the value of a datetime-local input, in the browser's time zone. */
function localValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function fillControls() {
  $("replay-from").value = localValue(state.from);
  $("replay-to").value = localValue(state.to);
  $("replay-people").value = state.personIds ? state.personIds.join(",") : "";
  $("replay-unit").value = state.unitId === null ? "" : String(state.unitId);
  $("replay-speed").value = String(state.speed);
  $("replay-gap").value = String(state.gapMin);
  $("replay-tail").value = String(state.tailMin);
}

function durationS() {
  return Math.max(1, Math.round((state.to - state.from) / 1000));
}

async function loadUnits() {
  const collection = await getJson("/api/v1/units");
  base.showUnits(collection);
  const select = $("replay-unit");
  const units = collection.features.map((f) => f.properties);
  for (const unit of units) {
    const option = el("option", null, unit.name);
    option.value = String(unit.unit_id);
    select.append(option);
  }
  if (state.unitId === null && !state.personIds) {
    const own = units.find((u) => u.unit_id === settings.user.unit_id);
    const top = own || units.find((u) => !units.some((p) => p.unit_id === u.parent_id));
    if (top) state.unitId = top.unit_id;
  }
}

/** Fetch the replay for the state's range and scope; draw it at the state's t. */
async function loadReplay() {
  const query = new URLSearchParams({ from: state.from.toISOString(), to: state.to.toISOString() });
  if (state.personIds) query.set("person_ids", state.personIds.join(","));
  else if (state.unitId !== null) query.set("unit_id", String(state.unitId));
  else {
    setStatus(tr("replay.choose_scope"));
    return;
  }
  setStatus(tr("replay.loading"));
  document.body.dataset.replayLoaded = "";
  let answer;
  try {
    answer = await getJson(`/api/v1/replay?${query}`);
  } catch (error) {
    setStatus(tr("replay.failed", { error: error.message }));
    return;
  }
  tracks = answer.people.map((p) => ({ ...p, color: roleColor(p.role) }));
  const fixes = tracks.reduce((n, p) => n + p.t.length, 0);
  setStatus(tr("replay.loaded", { people: tracks.length, fixes }));
  const slider = $("replay-slider");
  slider.max = String(durationS());
  setTime(Math.min(state.t, durationS()));
  fitToTracks();
  document.body.dataset.replayLoaded = String(Date.now());
  writeUrl();
}

function fitToTracks() {
  const bounds = new base.maplibregl.LngLatBounds();
  let any = false;
  for (const track of tracks) {
    for (let i = 0; i < track.t.length; i += 1) {
      bounds.extend(project(track.lon[i], track.lat[i]));
      any = true;
    }
  }
  if (any) map.fitBounds(bounds, { padding: 80, maxZoom: 16, duration: 0 });
}

function setStatus(text) {
  $("replay-status").textContent = text;
}

/** Move the replay to t seconds since the range's start. */
function setTime(t) {
  state.t = Math.min(Math.max(0, Number(t) || 0), durationS());
  $("replay-slider").value = String(Math.round(state.t));
  dirty = true;
  scheduleUrl();
}

function setPlaying(playing) {
  state.playing = playing && state.t < durationS();
  lastFrameMs = null;
  const button = $("replay-play");
  button.textContent = state.playing ? tr("replay.pause") : tr("replay.play");
  button.setAttribute("aria-pressed", String(state.playing));
}

// --- drawing ----------------------------------------------------------------------
function addLayers() {
  map.addSource("replay-tails", { type: "geojson", data: EMPTY });
  map.addSource("replay-people", { type: "geojson", data: EMPTY });
  map.addSource("replay-near", { type: "geojson", data: EMPTY });
  map.addSource("replay-selected", { type: "geojson", data: EMPTY });
  map.addLayer({
    id: "replay-near-fill",
    type: "fill",
    source: "replay-near",
    paint: { "fill-color": "#1f7ae0", "fill-opacity": 0.12 },
  });
  map.addLayer({
    id: "replay-near-line",
    type: "line",
    source: "replay-near",
    paint: { "line-color": "#1f7ae0", "line-width": 2, "line-dasharray": [2, 1] },
  });
  map.addLayer({
    id: "replay-tails",
    type: "line",
    source: "replay-tails",
    layout: { "line-join": "round", "line-cap": "round" },
    paint: { "line-color": ["get", "color"], "line-width": 3, "line-opacity": ["get", "opacity"] },
  });
  map.addLayer({
    id: "replay-selected",
    type: "circle",
    source: "replay-selected",
    paint: {
      "circle-radius": 13,
      "circle-color": "rgba(31, 122, 224, 0.18)",
      "circle-stroke-color": "#1f7ae0",
      "circle-stroke-width": 2,
    },
  });
  map.addLayer({
    id: "replay-people",
    type: "circle",
    source: "replay-people",
    paint: {
      "circle-color": ["get", "color"],
      "circle-radius": ["interpolate", ["linear"], ["zoom"], 9, 3, 12, 4, 14, 6, 17, 8],
      "circle-stroke-color": "#ffffff",
      "circle-stroke-width": ["interpolate", ["linear"], ["zoom"], 9, 0.5, 13, 1.5],
    },
  });
}

/** Return each person's [lon, lat] (WGS-84) at t, null where missing. */
function positionsAt(t) {
  const gapS = state.gapMin * 60;
  const out = {};
  for (const track of tracks) out[track.person_id] = positionAt(track, t, gapS);
  return out;
}

function drawFrame() {
  const gapS = state.gapMin * 60;
  const tailS = state.tailMin * 60;
  const points = [];
  const tails = [];
  const now = new Map();
  for (const track of tracks) {
    const position = positionAt(track, state.t, gapS);
    if (position) {
      now.set(track.person_id, position);
      points.push({
        type: "Feature",
        id: track.person_id,
        properties: { id: track.person_id, color: track.color },
        geometry: { type: "Point", coordinates: project(position[0], position[1]) },
      });
    }
    const buckets = tailParts(track, state.t, tailS, gapS, TAIL_BUCKETS);
    buckets.forEach((parts, age) => {
      if (!parts.length) return;
      tails.push({
        type: "Feature",
        properties: { color: track.color, opacity: 0.85 * (1 - age / TAIL_BUCKETS) },
        geometry: { type: "MultiLineString", coordinates: parts.map((part) => part.map((c) => project(c[0], c[1]))) },
      });
    });
  }
  map.getSource("replay-people").setData({ type: "FeatureCollection", features: points });
  map.getSource("replay-tails").setData({ type: "FeatureCollection", features: tails });
  drawn = now;
  const selected = selectedId === null ? null : now.get(selectedId);
  map.getSource("replay-selected").setData(selected
    ? { type: "FeatureCollection", features: [{ type: "Feature", properties: {}, geometry: { type: "Point", coordinates: project(...selected) } }] }
    : EMPTY);
  $("replay-time").textContent = clock(new Date(state.from.getTime() + state.t * 1000).toISOString());
  $("replay-count").textContent = tr("replay.shown", { n: now.size, total: tracks.length });
  if (selectedId !== null) renderCard();
  document.body.dataset.replayT = String(state.t);
}

function frame(nowMs) {
  if (state.playing) {
    if (lastFrameMs !== null) {
      const next = state.t + ((nowMs - lastFrameMs) / 1000) * state.speed;
      setTime(next);
      if (next >= durationS()) setPlaying(false);
    }
    lastFrameMs = nowMs;
  }
  if (dirty && map.getSource("replay-people")) {
    dirty = false;
    drawFrame();
  }
  requestAnimationFrame(frame);
}

// --- the person card --------------------------------------------------------------
function renderCard() {
  const track = tracks.find((p) => p.person_id === selectedId);
  if (!track) {
    $("replay-card").hidden = true;
    return;
  }
  $("replay-card").hidden = false;
  $("replay-card-dot").style.background = track.color;
  $("replay-card-name").textContent = track.name;
  const i = lastFixIndex(track, state.t);
  const lastFix = i < 0 ? tr("none") : clock(new Date(state.from.getTime() + track.t[i] * 1000).toISOString());
  const rows = [
    [tr("popup.role"), roleName(track.role)],
    [tr("replay.last_fix_before"), lastFix],
    ["", drawn.has(track.person_id) ? "" : tr("replay.missing")],
  ];
  const dl = $("replay-card-details");
  dl.replaceChildren();
  for (const [label, value] of rows) {
    if (!label && !value) continue;
    dl.append(el("dt", null, label), el("dd", null, value));
  }
}

function select(personId) {
  selectedId = personId;
  dirty = true;
  renderCard();
}

// --- who was near -----------------------------------------------------------------
function setNearPicking(on) {
  nearPicking = on;
  $("near-toggle").setAttribute("aria-pressed", String(on));
  $("near-hint").hidden = !on;
  map.getCanvas().style.cursor = on ? "crosshair" : "";
}

/** Ask who was within the radius of a WGS-84 point around t; list them, draw the circle. */
async function searchNear(lon, lat) {
  nearPoint = [lon, lat];
  const radiusM = Math.min(5000, Math.max(1, Number($("near-radius").value) || 200));
  const windowS = Math.max(1, Number($("near-window").value) || 10) * 60;
  const at = state.from.getTime() + state.t * 1000;
  const query = new URLSearchParams({
    lat: lat.toFixed(6),
    lon: lon.toFixed(6),
    radius_m: String(radiusM),
    from: new Date(at - windowS * 1000).toISOString(),
    to: new Date(at + windowS * 1000).toISOString(),
  });
  const ring = circleRing(lon, lat, radiusM).map((c) => project(c[0], c[1]));
  map.getSource("replay-near").setData({
    type: "FeatureCollection",
    features: [{ type: "Feature", properties: {}, geometry: { type: "Polygon", coordinates: [ring] } }],
  });
  const list = $("near-list");
  list.replaceChildren();
  $("near-summary").textContent = tr("replay.loading");
  document.body.dataset.nearLoaded = "";
  let answer;
  try {
    answer = await getJson(`/api/v1/near?${query}`);
  } catch (error) {
    $("near-summary").textContent = tr("replay.failed", { error: error.message });
    return;
  }
  $("near-summary").textContent = answer.people.length
    ? tr("replay.near_found", { n: answer.people.length, r: radiusM })
    : tr("replay.near_none");
  for (const person of answer.people) {
    const row = el("li", "near-row");
    row.dataset.person = String(person.person_id);
    row.dataset.entered = person.entered;
    row.tabIndex = 0;
    const dot = el("span", "role-dot");
    dot.style.background = roleColor(person.role);
    const name = el("strong", "near-name", person.name);
    const times = el("span", "muted small", `${clock(person.entered)} – ${clock(person.left)}`);
    const closest = el("span", "near-closest small", distanceText(person.closest_m));
    row.append(dot, name, closest, times);
    const jump = () => {
      setTime((Date.parse(person.entered) - state.from.getTime()) / 1000);
      select(person.person_id);
    };
    row.addEventListener("click", jump);
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") jump();
    });
    list.append(row);
  }
  document.body.dataset.nearLoaded = String(Date.now());
}

// --- wiring -----------------------------------------------------------------------
function readScopeControls() {
  // The inputs hold minutes: an unchanged input keeps the range's seconds (and t's meaning).
  const from = new Date($("replay-from").value);
  const to = new Date($("replay-to").value);
  if (!Number.isNaN(from.getTime()) && $("replay-from").value !== localValue(state.from)) state.from = from;
  if (!Number.isNaN(to.getTime()) && $("replay-to").value !== localValue(state.to)) state.to = to;
  const people = $("replay-people").value.split(/[,\s]+/).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  state.personIds = people.length ? people : null;
  state.unitId = $("replay-unit").value ? Number($("replay-unit").value) : null;
}

function wire() {
  $("replay-form").addEventListener("submit", (event) => {
    event.preventDefault();
    readScopeControls();
    setPlaying(false);
    loadReplay();
  });
  const slider = $("replay-slider");
  slider.addEventListener("input", () => setTime(Number(slider.value)));
  slider.addEventListener("change", () => setTime(Number(slider.value)));
  $("replay-play").addEventListener("click", () => {
    if (!state.playing && state.t >= durationS()) setTime(0);
    setPlaying(!state.playing);
  });
  $("replay-speed").addEventListener("change", () => {
    state.speed = Number($("replay-speed").value);
    scheduleUrl();
  });
  for (const [id, key] of [["replay-gap", "gapMin"], ["replay-tail", "tailMin"]]) {
    $(id).addEventListener("input", () => {
      const value = Number($(id).value);
      if (Number.isFinite(value) && value >= (key === "gapMin" ? 0.1 : 0)) {
        state[key] = value;
        dirty = true;
        scheduleUrl();
      }
    });
  }
  $("replay-card-close").addEventListener("click", () => select(null));
  $("near-toggle").addEventListener("click", () => setNearPicking(!nearPicking));
  for (const id of ["near-radius", "near-window"]) {
    $(id).addEventListener("change", () => nearPoint && searchNear(...nearPoint));
  }
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && nearPicking) setNearPicking(false);
  });
  map.on("click", (event) => {
    if (nearPicking) {
      setNearPicking(false);
      const [lon, lat] = unproject(event.lngLat.lng, event.lngLat.lat);
      searchNear(lon, lat);
      return;
    }
    const hit = map.queryRenderedFeatures(event.point, { layers: ["replay-people"] })[0];
    select(hit ? hit.properties.id : null);
  });
  map.on("mouseenter", "replay-people", () => {
    if (!nearPicking) map.getCanvas().style.cursor = "pointer";
  });
  map.on("mouseleave", "replay-people", () => {
    if (!nearPicking) map.getCanvas().style.cursor = "";
  });
}

// Hooks for the browser tests: what is drawn, and a way to move t without the slider.
window.__replay = {
  ready: false,
  map,
  positionsAt,
  drawn: () => Object.fromEntries(drawn),
  setTime: (t) => setTime(t),
  time: () => state.t,
  state: () => ({ ...state, from: state.from.toISOString(), to: state.to.toISOString() }),
  screenPoint: (lon, lat) => {
    const p = map.project(project(lon, lat));
    const r = map.getCanvas().getBoundingClientRect();
    return [r.left + p.x, r.top + p.y];
  },
};

async function start() {
  readUrl();
  wire();
  await base.ready;
  addLayers();
  await loadUnits();
  fillControls();
  requestAnimationFrame(frame);
  await loadReplay();
  setPlaying(false);
  window.__replay.ready = true;
}

start();
