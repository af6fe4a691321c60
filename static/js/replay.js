/* The replay page: everyone of a unit (or chosen people) scrubbed through a past range.
 *
 * GET /api/v1/replay gives delta-encoded columns of fixes per person, thinned to what the
 * zoom can show. The range is fetched an hour at a time, the hour at t first, so the first
 * frame does not wait for the whole range. Every animation frame the people and their
 * fading tails at time t are computed (replay-track.js) and handed to two GeoJSON sources.
 * "Who was near" asks GET /api/v1/near around a clicked point and t. The URL's query holds
 * the state (range, t, scope, speed, limits) so it can be shared.
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
const CHUNK_S = 900; // the range is fetched in pieces of 15 min: the first one comes quickly
const FEW_PEOPLE = 50; // chosen people up to this many get every fix, whatever the zoom
const FRAME_SAMPLES = 600; // frame times kept for the benchmark (bench/history.py)
const EMPTY = { type: "FeatureCollection", features: [] };

// The units in scope come with the page (GET /api/v1/units's answer), so the first piece
// of the replay can be asked for at once: making the map (a WebGL context) and loading its
// style hold the page's only thread for a second on a slow machine, and that answer would
// otherwise wait behind them.
const unitsAnswer = Promise.resolve(JSON.parse(document.getElementById("units").textContent));
const base = createMap(settings, "map");
const { map, project, unproject } = base;
const state = {
  from: null, // Date
  to: null,
  t: 0, // seconds since `from`
  unitId: null,
  personIds: null, // array of ids, or null
  viewport: null, // [west, south, east, north] WGS-84: only people seen in it, or null
  speed: 60,
  gapMin: 5,
  tailMin: 10,
  playing: false,
};
let tracks = []; // [{person_id, name, role, color, t, lon, lat}], columns as typed arrays
let units = []; // the GeoJSON features of the units in scope
const names = new Map(); // person id -> name, for the chosen people's chips
let selectedId = null;
let drawn = new Map(); // person id -> [lon, lat] WGS-84 as drawn at the last frame
let dirty = true;
let lastFrameMs = null;
let loadGeneration = 0; // a newer load makes the pieces of an older one be dropped
let loadedStep = null; // the thinning step of the tracks drawn (s), null before a load
let firstFramePending = false;
let frameWaiters = []; // loads waiting for their first frame with data to be on screen
const frameTimes = []; // ms between animation frames while playing
const drawTimes = []; // ms spent computing and handing over one frame
let urlTimer = null;
let nearPicking = false;
let nearPlace = null; // the last "who was near" place: {lon, lat} or {area}
let draw = null; // terra-draw, made when an area is first drawn
let drawingArea = false;
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
  const view = (query.get("view") || "").split(",").map(Number);
  state.viewport = view.length === 4 && view.every(Number.isFinite) ? view : null;
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
  if (state.viewport) query.set("view", state.viewport.map((v) => v.toFixed(5)).join(","));
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
  $("replay-viewport").checked = state.viewport !== null;
  renderChosen();
  $("replay-unit").value = state.unitId === null ? "" : String(state.unitId);
  $("replay-speed").value = String(state.speed);
  $("replay-gap").value = String(state.gapMin);
  $("replay-tail").value = String(state.tailMin);
}

function durationS() {
  return Math.max(1, Math.round((state.to - state.from) / 1000));
}

/** Fetch the units in scope for the unit choice; return them as GeoJSON for the map. */
async function loadUnits() {
  const collection = await unitsAnswer;
  units = collection.features;
  const select = $("replay-unit");
  for (const unit of units.map((f) => f.properties)) {
    const option = el("option", null, unit.name);
    option.value = String(unit.unit_id);
    select.append(option);
  }
  if (state.unitId === null && !state.personIds) {
    const all = units.map((f) => f.properties);
    const own = all.find((u) => u.unit_id === settings.user.unit_id);
    const top = own || all.find((u) => !all.some((p) => p.unit_id === u.parent_id));
    if (top) state.unitId = top.unit_id;
  }
  return collection;
}

/** Return the thinning step (s) for the map's zoom: about one fix per screen pixel walked. */
function stepForZoom(zoom) {
  if (state.personIds && state.personIds.length <= FEW_PEOPLE) return 1;
  if (zoom >= 16) return 5;
  if (zoom >= 14) return 10;
  if (zoom >= 12) return 30;
  return 60;
}

/** Return the pieces of the range as [fromS, toS] offsets, the one holding t first, then
 * the one before it (for the tail), then the rest in time order. */
function chunkOrder() {
  const total = durationS();
  const pieces = [];
  for (let a = 0; a < total; a += CHUNK_S) pieces.push([a, Math.min(total, a + CHUNK_S)]);
  const at = Math.min(pieces.length - 1, Math.floor(state.t / CHUNK_S));
  const first = [at, at - 1].filter((i) => i >= 0);
  return [...first, ...pieces.keys()].filter((i, n, all) => all.indexOf(i) === n).map((i) => [i, pieces[i]]);
}

/** Decode one person's delta columns (docs/history.md) into absolute typed arrays. */
function decode(person, offsetS) {
  const n = person.t.length;
  const t = new Float64Array(n);
  const lon = new Float64Array(n);
  const lat = new Float64Array(n);
  let ts = 0;
  let x = 0;
  let y = 0;
  for (let i = 0; i < n; i += 1) {
    ts += person.t[i];
    x += person.lon[i];
    y += person.lat[i];
    t[i] = ts + offsetS;
    lon[i] = x / 1e6;
    lat[i] = y / 1e6;
  }
  return { t, lon, lat };
}

/** Join the pieces loaded so far into one track per person, in time order. */
function joinPieces(people, pieces) {
  const order = [...pieces.keys()].sort((a, b) => a - b);
  return people.map((person) => {
    const parts = order.map((i) => pieces.get(i).get(person.person_id)).filter(Boolean);
    const n = parts.reduce((sum, part) => sum + part.t.length, 0);
    const joined = { ...person, t: new Float64Array(n), lon: new Float64Array(n), lat: new Float64Array(n) };
    let at = 0;
    for (const part of parts) {
      joined.t.set(part.t, at);
      joined.lon.set(part.lon, at);
      joined.lat.set(part.lat, at);
      at += part.t.length;
    }
    return joined;
  });
}

/** Fetch the replay for the state's range and scope, piece by piece; draw it at t. */
async function loadReplay({ fit = true } = {}) {
  const scope = new URLSearchParams();
  if (state.personIds) scope.set("person_ids", state.personIds.join(","));
  else if (state.unitId !== null) scope.set("unit_id", String(state.unitId));
  else {
    setStatus(tr("replay.choose_scope"));
    return;
  }
  if (state.viewport) scope.set("bbox", state.viewport.join(","));
  // The whole range, so that the audit trail records one look, not one per piece.
  scope.set("range_from", state.from.toISOString());
  scope.set("range_to", state.to.toISOString());
  const generation = ++loadGeneration;
  releaseFrameWaiters(); // an older load waiting for its first frame: let it see it is old
  if (fit && state.viewport) fitToViewport();
  else if (fit) fitToUnit();
  const step = stepForZoom(map.getZoom());
  setStatus(tr("replay.loading"));
  document.body.dataset.replayLoaded = "";
  $("replay-slider").max = String(durationS());
  setTime(Math.min(state.t, durationS()));
  const pieces = new Map(); // piece index -> Map(person id -> decoded columns)
  let people = [];
  const order = chunkOrder();
  for (const [n, [index, [a, b]]] of order.entries()) {
    const query = new URLSearchParams(scope);
    query.set("from", new Date(state.from.getTime() + a * 1000).toISOString());
    query.set("to", new Date(state.from.getTime() + b * 1000).toISOString());
    query.set("step_s", String(step));
    let answer;
    try {
      answer = await getJson(`/api/v1/replay?${query}`);
    } catch (error) {
      if (generation === loadGeneration) setStatus(tr("replay.failed", { error: error.message }));
      return;
    }
    if (generation !== loadGeneration) return; // a newer load took over
    for (const { person_id, name, role } of answer.people) {
      if (!people.some((p) => p.person_id === person_id)) people.push({ person_id, name, role, color: roleColor(role) });
    }
    pieces.set(index, new Map(answer.people.map((p) => [p.person_id, decode(p, a)])));
    tracks = joinPieces(people, pieces);
    loadedStep = step;
    if (n === 0) {
      performance.mark("replay:first-piece");
      firstFramePending = true;
      if (fit && !state.viewport && !unitBounds()) fitToTracks();
      for (const person of people) names.set(person.person_id, person.name);
      renderChosen();
      // Draw the first piece before asking for the rest: fetching and decoding them would
      // otherwise compete with that first frame for the CPU.
      dirty = true;
      if (generation !== loadGeneration) return; // fitting the map started a finer load
      await new Promise((resolve) => frameWaiters.push(resolve));
      if (generation !== loadGeneration) return;
    }
    dirty = true;
    const fixes = tracks.reduce((sum, p) => sum + p.t.length, 0);
    setStatus(n + 1 < order.length
      ? tr("replay.loading_part", { done: n + 1, total: order.length, fixes })
      : tr("replay.loaded", { people: tracks.length, fixes }));
  }
  document.body.dataset.replayLoaded = String(Date.now());
  writeUrl();
}

/** Return the chosen unit's bounds (WGS-84) when it has a boundary, else null. */
function unitBounds() {
  if (state.personIds || state.unitId === null) return null;
  const unit = units.find((f) => f.properties.unit_id === state.unitId);
  if (!unit || !unit.geometry) return null;
  const bounds = new base.maplibregl.LngLatBounds();
  const walk = (c) => (typeof c[0] === "number" ? bounds.extend(project(c[0], c[1])) : c.forEach(walk));
  walk(unit.geometry.coordinates);
  return bounds.isEmpty() ? null : bounds;
}

/** Show the view a replay was narrowed to (a shared link opens on the same view). */
function fitToViewport() {
  const [west, south, east, north] = state.viewport;
  const bounds = new base.maplibregl.LngLatBounds(project(west, south), project(east, north));
  map.fitBounds(bounds, { padding: 0, duration: 0 });
}

/** Fit the map to the chosen unit before loading, so the zoom (and the thinning) is known. */
function fitToUnit() {
  const bounds = unitBounds();
  if (bounds) map.fitBounds(bounds, { padding: 40, maxZoom: 16, duration: 0 });
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
  if (state.playing && lastFrameMs !== null) sample(frameTimes, nowMs - lastFrameMs);
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
    const started = performance.now();
    drawFrame();
    if (state.playing) sample(drawTimes, performance.now() - started);
    if (firstFramePending) {
      firstFramePending = false;
      performance.mark("replay:first-draw");
      whenPeopleDrawn(() => {
        // For bench/history.py: ms from the page's navigation to the first frame with data.
        document.body.dataset.replayFirstFrame = String(Math.round(performance.now()));
        releaseFrameWaiters();
      });
      // ... and until the map is idle too (basemap tiles and labels drawn).
      map.once("idle", () => { document.body.dataset.replayIdle = String(Math.round(performance.now())); });
    }
  }
  requestAnimationFrame(frame);
}

/** Call `then` after the first frame drawn once the people's source has taken its data. */
function whenPeopleDrawn(then) {
  const check = () => {
    if (!map.isSourceLoaded("replay-people")) return;
    map.off("render", check);
    then();
  };
  map.on("render", check);
  map.triggerRepaint();
}

function releaseFrameWaiters() {
  const waiting = frameWaiters;
  frameWaiters = [];
  for (const resolve of waiting) resolve();
}

function sample(list, ms) {
  list.push(ms);
  if (list.length > FRAME_SAMPLES) list.shift();
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

/** Start drawing an area on the map; when it is closed, ask who was in or near it. */
async function startAreaDrawing() {
  setNearPicking(false);
  if (!draw) {
    // terra-draw is a quarter of a megabyte of script: loaded when first needed, not with
    // the page, so it does not delay the first frame.
    for (const src of $("near-area").dataset.scripts.split(" ")) await loadScript(src);
    const { TerraDraw, TerraDrawPolygonMode } = window.terraDraw;
    const { TerraDrawMapLibreGLAdapter } = window.terraDrawMaplibreGlAdapter;
    draw = new TerraDraw({ adapter: new TerraDrawMapLibreGLAdapter({ map }), modes: [new TerraDrawPolygonMode()] });
    draw.start();
    draw.on("finish", (id) => {
      const feature = draw.getSnapshot().find((f) => f.id === id);
      stopAreaDrawing();
      if (feature) {
        const ring = feature.geometry.coordinates[0].map((c) => unproject(c[0], c[1]));
        searchNear({ area: { type: "Polygon", coordinates: [ring] } });
      }
    });
  }
  draw.clear();
  draw.setMode("polygon");
  drawingArea = true;
  $("near-area").setAttribute("aria-pressed", "true");
  $("near-area-hint").hidden = false;
  document.body.dataset.drawMode = "polygon";
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(script);
  });
}

function stopAreaDrawing() {
  if (!draw) return;
  draw.clear();
  draw.setMode("static");
  drawingArea = false;
  $("near-area").setAttribute("aria-pressed", "false");
  $("near-area-hint").hidden = true;
  document.body.dataset.drawMode = "static";
}

/** Ask who was within the radius of a WGS-84 point ({lon, lat}) or area ({area}, a GeoJSON
 * Polygon) around t; list them, draw the circle or the area. */
async function searchNear(place) {
  nearPlace = place;
  const radiusM = Math.min(5000, Math.max(place.area ? 0 : 1, Number($("near-radius").value) || 0));
  const windowS = Math.max(1, Number($("near-window").value) || 10) * 60;
  const at = state.from.getTime() + state.t * 1000;
  const query = new URLSearchParams({
    radius_m: String(radiusM),
    from: new Date(at - windowS * 1000).toISOString(),
    to: new Date(at + windowS * 1000).toISOString(),
  });
  let ring;
  if (place.area) {
    query.set("area", JSON.stringify(place.area));
    ring = place.area.coordinates[0].map((c) => project(c[0], c[1]));
  } else {
    query.set("lat", place.lat.toFixed(6));
    query.set("lon", place.lon.toFixed(6));
    ring = circleRing(place.lon, place.lat, radiusM).map((c) => project(c[0], c[1]));
  }
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
  state.viewport = $("replay-viewport").checked ? viewBounds() : null;
}

/** Return the map's view as [west, south, east, north] in WGS-84. */
function viewBounds() {
  const b = map.getBounds();
  const [west, south] = unproject(b.getWest(), b.getSouth());
  const [east, north] = unproject(b.getEast(), b.getNorth());
  return [Math.max(-180, west), Math.max(-90, south), Math.min(180, east), Math.min(90, north)];
}

// --- the people picker ------------------------------------------------------------
function chosenIds() {
  return $("replay-people").value.split(",").map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

function setChosen(ids) {
  $("replay-people").value = ids.join(",");
  renderChosen();
}

function renderChosen() {
  const box = $("replay-chosen");
  box.replaceChildren();
  for (const id of chosenIds()) {
    const chip = el("span", "chip", names.get(id) || `#${id}`);
    chip.dataset.person = String(id);
    const remove = el("button", null, "×");
    remove.type = "button";
    remove.setAttribute("aria-label", tr("replay.remove_person", { name: names.get(id) || `#${id}` }));
    remove.addEventListener("click", () => setChosen(chosenIds().filter((n) => n !== id)));
    chip.append(remove);
    box.append(chip);
  }
}

let searchTimer = null;
async function searchPeople() {
  const q = $("replay-person-search").value.trim();
  const list = $("replay-person-results");
  if (!q) {
    list.hidden = true;
    return;
  }
  const answer = await getJson(`/api/v1/people?${new URLSearchParams({ q, per_page: "8", active: "true" })}`);
  if ($("replay-person-search").value.trim() !== q) return; // typed on meanwhile
  list.replaceChildren();
  for (const person of answer.people) {
    const row = el("li", null);
    row.tabIndex = 0;
    row.dataset.person = String(person.id);
    const dot = el("span", "role-dot");
    dot.style.background = roleColor(person.role);
    row.append(dot, el("strong", null, person.name), el("span", "muted small", person.unit_name || roleName(person.role)));
    const choose = () => {
      names.set(person.id, person.name);
      setChosen([...new Set([...chosenIds(), person.id])]);
      $("replay-person-search").value = "";
      list.hidden = true;
    };
    row.addEventListener("click", choose);
    row.addEventListener("keydown", (event) => event.key === "Enter" && choose());
    list.append(row);
  }
  if (!answer.people.length) list.append(el("li", "muted small", tr("none")));
  list.hidden = false;
  document.body.dataset.peopleFound = String(answer.people.length);
}

function wire() {
  $("replay-form").addEventListener("submit", (event) => {
    event.preventDefault();
    readScopeControls();
    setPlaying(false);
    loadReplay();
  });
  $("replay-person-search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => searchPeople().catch((error) => setStatus(tr("replay.failed", { error: error.message }))), 200);
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
  $("near-toggle").addEventListener("click", () => {
    stopAreaDrawing();
    setNearPicking(!nearPicking);
  });
  $("near-area").addEventListener("click", () => (drawingArea ? stopAreaDrawing() : startAreaDrawing()));
  for (const id of ["near-radius", "near-window"]) {
    $(id).addEventListener("change", () => nearPlace && searchNear(nearPlace));
  }
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && nearPicking) setNearPicking(false);
    if (event.key === "Escape" && drawingArea) stopAreaDrawing();
  });
  map.on("click", (event) => {
    if (drawingArea) return; // terra-draw takes the clicks
    if (nearPicking) {
      setNearPicking(false);
      const [lon, lat] = unproject(event.lngLat.lng, event.lngLat.lat);
      searchNear({ lon, lat });
      return;
    }
    const hit = map.queryRenderedFeatures(event.point, { layers: ["replay-people"] })[0];
    select(hit ? hit.properties.id : null);
  });
  // Zoomed in past what the loaded thinning can show: fetch finer fixes, keeping t.
  map.on("zoomend", () => {
    if (loadedStep !== null && stepForZoom(map.getZoom()) < loadedStep) loadReplay({ fit: false });
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
  step: () => loadedStep,
  frameTimes: () => ({ frames: [...frameTimes], draws: [...drawTimes] }),
  state: () => ({ ...state, from: state.from.toISOString(), to: state.to.toISOString() }),
  screenPoint: (lon, lat) => {
    const p = map.project(project(lon, lat));
    const r = map.getCanvas().getBoundingClientRect();
    return [r.left + p.x, r.top + p.y];
  },
};

const REPLAY_LAYERS = ["replay-near-fill", "replay-near-line", "replay-tails", "replay-selected", "replay-people"];

// The replay's layers join the style as soon as it is parsed, before the map's first full
// render (which on a CPU-rendered map comes a second later): people decoded by then are in
// that render.
const layersAdded = new Promise((resolve) => {
  map.once("style.load", () => {
    addLayers();
    resolve();
  });
});

async function start() {
  performance.mark("replay:script");
  readUrl();
  wire();
  // The units came with the page, so the first piece of the replay is asked for now,
  // while the map starts: the camera (and so the thinning) is known before the style is.
  const collection = await loadUnits();
  performance.mark("replay:units");
  fillControls();
  const loading = loadReplay();
  await layersAdded;
  requestAnimationFrame(frame);
  await base.ready;
  performance.mark("replay:map-ready");
  // The map's own unit layers were added on load, above the replay's: put these back on top.
  for (const id of REPLAY_LAYERS) map.moveLayer(id);
  base.showUnits(collection);
  await loading;
  setPlaying(false);
  window.__replay.ready = true;
}

start();
