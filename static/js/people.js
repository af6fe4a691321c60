/* The live people layer: markers, counts, filters, the unit tree, the person card and trail.
 *
 * Every shown person is a marker in one WebGL layer (people-dots.js), coloured by role and
 * grey when stale, drawn in the frame after the data arrives, without tiling; from zoom 14
 * a symbol layer adds heading arrows to those moving, from a GeoJSON source fed only from
 * zoom 13 on, so that the city-wide view never waits for MapLibre's worker. Updates are
 * merged into a Map keyed by person; at most once per frame the markers are redrawn and
 * the arrows whose person changed are sent to their source as a diff (updateData).
 */
import { getJson } from "./api.js";
import { ageText, roleName, t } from "./i18n.js";
import { PeopleDots } from "./people-dots.js";

export const STALE_COLOR = "#a3aab2";
const ROLE_COLORS = {
  volunteer: "#e67e22",
  street_chief: "#c0392b",
  grid_worker: "#2d7dd2",
  patrol: "#1e9e5a",
};
const EXTRA_COLORS = ["#8e44ad", "#16a085", "#b7950b", "#34495e"];

/** Return a role → colour function: the four roles fixed, other roles get the extras in turn. */
export function roleColorer() {
  const extraRoles = [];
  return (role) => {
    if (ROLE_COLORS[role]) return ROLE_COLORS[role];
    let index = extraRoles.indexOf(role);
    if (index < 0) index = extraRoles.push(role) - 1;
    return EXTRA_COLORS[index % EXTRA_COLORS.length];
  };
}
const MOVING_MPS = 0.5;
const ARROWS_MIN_ZOOM = 14;
// The arrows' source is fed a zoom level early, so their tiles are ready when they show.
const ARROWS_FED_ZOOM = ARROWS_MIN_ZOOM - 1;
// The first snapshot is read before the socket is in its room; what the server received
// from this long before that read on is asked for again once it is (writes in flight).
const CATCH_UP_MARGIN_MS = 5000;
// attach()'s promise resolves after this long even if the first snapshot has not come yet.
const FIRST_DRAW_WAIT_MS = 10000;
const $ = (id) => document.getElementById(id);

/** Return the heading arrow: a wedge above the centre, rotated with the heading. */
function arrowImage() {
  const size = 64;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  // A software canvas: reading a GPU one back costs SwiftShader (no GPU) a tenth of a second.
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.beginPath();
  ctx.moveTo(size / 2, 2);
  ctx.lineTo(size / 2 + 9, 19);
  ctx.lineTo(size / 2 - 9, 19);
  ctx.closePath();
  ctx.fillStyle = "#1c2733";
  ctx.strokeStyle = "#ffffff";
  ctx.lineWidth = 2;
  ctx.stroke();
  ctx.fill();
  return ctx.getImageData(0, 0, size, size);
}

/** Add the trail, the selection ring, the arrows and the markers (`dots`) to the map. */
function addPeopleLayers(map, dots) {
  const empty = { type: "FeatureCollection", features: [] };
  map.addSource("trail", { type: "geojson", data: empty });
  map.addSource("selected", { type: "geojson", data: empty });
  // Only moving people, as points: no simplification, no buffer (an arrow is drawn by the
  // tile its person is in, overlaps ignored); tiles past z14 are overzoomed.
  map.addSource("people-arrows", { type: "geojson", data: empty, buffer: 0, maxzoom: 14 });
  // The trail and the ring are hidden while empty: their sources then load no tiles, and a
  // first load or a move of the view does not wait for them.
  map.addLayer({
    id: "trail-line",
    type: "line",
    source: "trail",
    layout: { "line-join": "round", "line-cap": "round", visibility: "none" },
    paint: { "line-color": "#1f7ae0", "line-width": 3.5, "line-opacity": 0.85 },
  });
  map.addLayer({
    id: "people-selected",
    type: "circle",
    source: "selected",
    layout: { visibility: "none" },
    paint: {
      "circle-radius": 13,
      "circle-color": "rgba(31, 122, 224, 0.18)",
      "circle-stroke-color": "#1f7ae0",
      "circle-stroke-width": 2,
    },
  });
  map.addLayer({
    id: "people-arrows",
    type: "symbol",
    source: "people-arrows",
    // Arrows only where they can be told apart; placing 20,000 icons city-wide is costly.
    minzoom: ARROWS_MIN_ZOOM,
    layout: {
      "icon-image": "arrow",
      "icon-rotate": ["get", "heading"],
      "icon-rotation-alignment": "map",
      "icon-allow-overlap": true,
      "icon-ignore-placement": true,
      "icon-size": ["interpolate", ["linear"], ["zoom"], 10, 0.6, 15, 1],
    },
  });
  map.addLayer(dots);
}

function recordFrom(item) {
  return {
    id: item.person_id, name: item.name, role: item.role, unit_id: item.unit_id, on_duty: item.on_duty,
    ts: Date.parse(item.ts), lon: item.lon, lat: item.lat, accuracy: item.accuracy, speed: item.speed,
    heading: item.heading, battery: item.battery,
  };
}

/** Return the records of a /api/v1/live?format=columns answer: one array per field. */
function recordsFromColumns(answer) {
  const records = new Array(answer.count);
  const { roles, role } = answer; // role[i] indexes roles
  for (let i = 0; i < answer.count; i += 1) {
    records[i] = {
      id: answer.person_id[i], name: answer.name[i], role: roles[role[i]], unit_id: answer.unit_id[i],
      on_duty: answer.on_duty[i], ts: answer.ts_ms[i], lon: answer.lon[i], lat: answer.lat[i],
      accuracy: answer.accuracy[i], speed: answer.speed[i], heading: answer.heading[i], battery: answer.battery[i],
    };
  }
  return records;
}

function sameMarker(a, b) {
  return a.lon === b.lon && a.lat === b.lat && a.stale === b.stale && a.moving === b.moving &&
    a.heading === b.heading && a.color === b.color;
}

/** Return the arrow of a moving marker, as a GeoJSON feature of the arrows' source. */
function arrowFeature(marker) {
  return {
    type: "Feature",
    id: marker.id,
    geometry: { type: "Point", coordinates: [marker.lon, marker.lat] },
    properties: { heading: marker.heading },
  };
}

/** Ask for the live snapshot in its compact form (GET /api/v1/live?format=columns). */
export function requestSnapshot() {
  const answer = getJson("/api/v1/live?format=columns");
  answer.catch(() => {}); // attach() reads it again if this one failed
  return answer;
}

/** Draw the people of the viewer's scope on `base` (from createMap) and wire the sidebar. */
export function createPeopleLayer(base, settings) {
  const { map, project, unproject, units } = base;
  const people = new Map(); // person id -> record (WGS-84, ts in epoch ms)
  // duty: "on" | "all" | "reporting" (on duty, a recent fix) | "silent" (on duty, no recent fix)
  const filters = { hiddenRoles: new Set(), duty: "on", search: "", unitIds: null, unitId: null };
  const hooks = { placeClick: null, gridClick: null }; // the panels take map clicks here
  // What the map draws: person id -> {id, lon, lat (as drawn), role, color, stale, moving,
  // heading}, in drawing order. The arrows' source holds the moving ones (arrowsSent); each
  // render sends it only the difference (GeoJSONSource.updateData).
  const drawnMarkers = new Map();
  const arrowsSent = new Map();
  const dots = new PeopleDots("people", map);
  let selectedId = null;
  let trail = []; // WGS-84 [lon, lat, ts] of the selected person's fixes today
  let trailSummary = null;
  let renderQueued = false;
  let lastRenderMs = 0;
  let firstFit = false;
  let roleCounts = {};
  let selectedKey = null;
  let narrowed = false;
  let socket = null;

  const ready = base.ready.then(() => addPeopleLayers(map, dots));
  // Fixes may arrive before the map can draw them: draw them once it can.
  ready.then(scheduleRender);
  let unitsShown = ready;

  const roleColor = roleColorer();

  function isStale(p, now) {
    return now - p.ts > settings.stale_after_s * 1000;
  }

  function unitName(unitId) {
    return units.get(unitId)?.name ?? t("no_unit");
  }

  /** Fill a <dl> with a person's details. */
  function fillDetails(dl, p) {
    const none = t("none");
    const rows = [
      [t("popup.role"), roleName(p.role)],
      [t("popup.unit"), unitName(p.unit_id)],
      [t("popup.last_fix"), ageText(p.ts) + (isStale(p, Date.now()) ? ` · ${t("popup.stale")}` : "")],
      [t("popup.accuracy"), p.accuracy == null ? none : t("unit.m", { n: Math.round(p.accuracy) })],
      [t("popup.speed"), p.speed == null ? none : t("unit.kmh", { n: (p.speed * 3.6).toFixed(1) })],
      [t("popup.battery"), p.battery == null ? none : `${Math.round(p.battery * 100)}%`],
      ["", p.on_duty ? t("popup.on_duty") : t("popup.off_duty")],
    ];
    dl.replaceChildren();
    for (const [label, value] of rows) {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = label;
      dd.textContent = value;
      dl.append(dt, dd);
    }
  }

  // --- drawing ------------------------------------------------------------------
  function passesDuty(p) {
    if (filters.duty === "on") return p.on_duty;
    if (filters.duty === "reporting") return p.on_duty && !p.stale;
    if (filters.duty === "silent") return p.on_duty && p.stale;
    return true;
  }

  function passesFilters(p) {
    if (!passesDuty(p)) return false;
    if (filters.unitIds && !filters.unitIds.has(p.unit_id)) return false;
    if (filters.search && !p.name.toLowerCase().includes(filters.search)) return false;
    return true;
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(render);
  }

  /** Bring the markers and arrows up to date with the state; update counts and the open card. */
  function render() {
    renderQueued = false;
    if (!map.getSource("people-arrows")) return;
    const started = performance.now();
    const now = Date.now();
    let changed = 0;
    const seen = new Set();
    let reporting = 0;
    let silent = 0;
    let staleShown = 0;
    roleCounts = {};
    for (const role of settings.roles) roleCounts[role] = 0;
    for (const p of people.values()) {
      const stale = isStale(p, now);
      p.stale = stale;
      if (p.on_duty && stale) silent += 1;
      else if (p.on_duty) reporting += 1;
      if (!passesFilters(p)) continue;
      roleCounts[p.role] = (roleCounts[p.role] || 0) + 1;
      if (filters.hiddenRoles.has(p.role)) continue;
      if (stale) staleShown += 1;
      seen.add(p.id);
      const [lon, lat] = project(p.lon, p.lat);
      const marker = {
        id: p.id,
        lon,
        lat,
        role: p.role,
        color: stale ? STALE_COLOR : roleColor(p.role),
        stale,
        moving: !stale && p.speed != null && p.speed > MOVING_MPS && p.heading != null,
        // Whole degrees: finer turns are invisible, and fewer distinct values tile faster.
        heading: Math.round(p.heading || 0),
      };
      const known = drawnMarkers.get(p.id);
      if (known && sameMarker(known, marker)) continue;
      drawnMarkers.set(p.id, marker);
      changed += 1;
    }
    let removed = 0;
    for (const id of drawnMarkers.keys()) {
      if (seen.has(id)) continue;
      drawnMarkers.delete(id);
      removed += 1;
    }
    if (changed || removed) {
      if (!performance.getEntriesByName("tracker:first-draw").length) performance.mark("tracker:first-draw");
      dots.set([...drawnMarkers.values()]);
    }
    sendArrows();
    drawSelected();
    $("count-reporting").textContent = reporting;
    $("count-silent").textContent = silent;
    $("count-shown").textContent = drawnMarkers.size;
    $("count-stale").textContent = staleShown;
    renderRoleCounts();
    const hint = $("search-hint");
    hint.hidden = !filters.search || drawnMarkers.size > 0;
    hint.textContent = t("search.no_match");
    if (selectedId !== null) renderCard();
    lastRenderMs = performance.now() - started;
  }

  /** Send the arrows' source what changed among the moving markers, once it may show them. */
  function sendArrows() {
    const source = map.getSource("people-arrows");
    if (!source || map.getZoom() < ARROWS_FED_ZOOM) return;
    const add = [];
    const remove = [];
    for (const marker of drawnMarkers.values()) {
      const sent = arrowsSent.get(marker.id);
      if (!marker.moving) {
        if (sent) remove.push(marker.id);
        continue;
      }
      if (sent && sent.lon === marker.lon && sent.lat === marker.lat && sent.heading === marker.heading) continue;
      add.push(marker);
    }
    for (const id of arrowsSent.keys()) if (!drawnMarkers.has(id)) remove.push(id);
    if (!add.length && !remove.length) return;
    const wasEmpty = arrowsSent.size === 0;
    // Drawn only with the arrows' first data: the first load does not wait for the canvas.
    if (!map.hasImage("arrow")) map.addImage("arrow", arrowImage(), { pixelRatio: 2 });
    for (const id of remove) arrowsSent.delete(id);
    for (const marker of add) arrowsSent.set(marker.id, marker);
    if (wasEmpty) source.setData({ type: "FeatureCollection", features: add.map(arrowFeature) });
    else source.updateData({ add: add.map(arrowFeature), remove });
  }

  function drawSelected() {
    const source = map.getSource("selected");
    if (!source) return;
    const p = selectedId === null ? null : people.get(selectedId);
    const coords = p ? project(p.lon, p.lat) : null;
    const key = coords ? coords.join(",") : "";
    if (key === selectedKey) return;
    selectedKey = key;
    source.setData({
      type: "FeatureCollection",
      features: coords ? [{ type: "Feature", properties: {}, geometry: { type: "Point", coordinates: coords } }] : [],
    });
    map.setLayoutProperty("people-selected", "visibility", coords ? "visible" : "none");
  }

  function renderRoleCounts() {
    const list = $("role-list");
    for (const [role, n] of Object.entries(roleCounts)) {
      let item = list.querySelector(`[data-role="${CSS.escape(role)}"]`);
      if (!item) {
        item = document.createElement("li");
        item.dataset.role = role;
        const label = document.createElement("label");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.checked = !filters.hiddenRoles.has(role);
        box.addEventListener("change", () => {
          if (box.checked) filters.hiddenRoles.delete(role);
          else filters.hiddenRoles.add(role);
          scheduleRender();
        });
        const dot = document.createElement("span");
        dot.className = "role-dot";
        dot.style.background = roleColor(role);
        const name = document.createElement("span");
        name.textContent = roleName(role);
        const count = document.createElement("span");
        count.className = "count";
        label.append(box, dot, name, count);
        item.append(label);
        list.append(item);
      }
      item.querySelector(".count").textContent = n;
    }
  }

  // Staleness depends on the clock, not only on updates: redraw when someone turns grey.
  setInterval(() => {
    const now = Date.now();
    let changed = false;
    for (const p of people.values()) if (p.stale !== isStale(p, now)) changed = true;
    if (changed) scheduleRender();
    else if (selectedId !== null) renderCard();
  }, 1000);

  // --- data -----------------------------------------------------------------------
  /** Merge fixes into the state; an older fix never replaces a newer one. */
  function merge(records) {
    for (const record of records) {
      const known = people.get(record.id);
      if (known && known.ts >= record.ts) continue;
      record.stale = known ? known.stale : undefined;
      people.set(record.id, record);
      if (record.id === selectedId) {
        trail.push([record.lon, record.lat, record.ts]);
        drawTrail();
        if ($("card-follow").checked) map.easeTo({ center: project(record.lon, record.lat), duration: 500 });
      }
    }
  }

  /** Apply one `positions` push from /live. */
  function applyPositions(batch) {
    merge(batch.map(recordFrom));
    scheduleRender();
    fitOnce();
  }

  function viewportBbox() {
    const bounds = map.getBounds();
    const padLon = (bounds.getEast() - bounds.getWest()) * 0.25;
    const padLat = (bounds.getNorth() - bounds.getSouth()) * 0.25;
    const sw = unproject(bounds.getWest() - padLon, bounds.getSouth() - padLat);
    const ne = unproject(bounds.getEast() + padLon, bounds.getNorth() + padLat);
    return [Math.max(-180, sw[0]), Math.max(-90, sw[1]), Math.min(180, ne[0]), Math.min(90, ne[1])];
  }

  function subscribeViewport() {
    socket.emit("subscribe", { bbox: narrowed ? viewportBbox() : null });
  }

  let firstLoad = null; // the first snapshot's read_at, once drawn (see attach)

  /** Merge a read of /api/v1/live; a whole one (not a catch-up) also drops who is gone. */
  async function applyRead(records, whole) {
    performance.mark("tracker:snapshot"); // for bench/map_browser.py and DevTools
    // The scope's units decide the first view: draw once they are shown.
    await unitsShown;
    if (whole && !narrowed) {
      const present = new Set(records.map((r) => r.id));
      for (const id of [...people.keys()]) if (!present.has(id)) people.delete(id);
    }
    merge(records);
    if (!narrowed && people.size > settings.viewport_min_people) {
      narrowed = true;
      subscribeViewport();
    }
    fitOnce();
    // A whole read is drawn now rather than in the next frame: the first view waits for it.
    if (whole) render();
    else scheduleRender();
  }

  /** Draw the first snapshot as soon as it and the map are there; return its read_at. */
  async function drawFirstSnapshot(snapshot) {
    const answer = await snapshot;
    await applyRead(recordsFromColumns(answer), true);
    return answer.read_at;
  }

  /**
   * Bring the state up to date with /api/v1/live (after a (re)connect, nothing shown is stale).
   *
   * The compact form (one array per field) keeps the first load of 20,000 people short. The
   * first snapshot was read before the socket was in its room: after the first connect only
   * what the server received from a little before that read on is read again.
   */
  async function resync() {
    const drawn = firstLoad;
    firstLoad = null;
    const readAt = drawn && (await drawn);
    if (readAt) {
      const since = new Date(Date.parse(readAt) - CATCH_UP_MARGIN_MS).toISOString();
      const missed = await getJson(`/api/v1/live?format=columns&received_since=${encodeURIComponent(since)}`);
      await applyRead(recordsFromColumns(missed), false);
    } else {
      let url = "/api/v1/live?format=columns";
      if (narrowed) url += `&bbox=${viewportBbox().join(",")}`;
      await applyRead(recordsFromColumns(await getJson(url)), true);
    }
    document.body.dataset.synced = String(Date.now());
  }

  /** Follow the /live socket: positions, and a resync after every (re)connect.
   *
   * `firstSnapshot` (requestSnapshot) is drawn without waiting for the socket. Return a
   * promise that resolves once the frame with the first snapshot has been drawn, once
   * that read failed, or after FIRST_DRAW_WAIT_MS, whichever comes first. */
  function attach(liveSocket, firstSnapshot = null) {
    socket = liveSocket;
    // A failed first read leaves the first connect to read everything.
    if (firstSnapshot) firstLoad = drawFirstSnapshot(firstSnapshot).catch(() => null);
    socket.on("connect", () => {
      if (narrowed) subscribeViewport();
      resync();
    });
    socket.on("positions", (message) => applyPositions(message.positions));
    // The render above asked MapLibre for a frame: a frame callback asked for now runs after
    // MapLibre's, and the timeout once that frame is handed over.
    const drawn = (firstLoad || Promise.resolve()).then(
      () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0))),
    );
    return Promise.race([drawn, new Promise((resolve) => setTimeout(resolve, FIRST_DRAW_WAIT_MS))]);
  }

  // --- units ----------------------------------------------------------------------
  /** Fetch the units at once and show them when the map is ready; resolve once shown. */
  function loadUnits() {
    // The live map's page carries them (GET /api/v1/units's answer), so the first view is
    // framed before the first render and the people are not tiled twice.
    const inline = document.getElementById("units");
    const answer = inline ? Promise.resolve(JSON.parse(inline.textContent)) : getJson("/api/v1/units");
    unitsShown = ready.then(async () => {
      base.showUnits(await answer);
      renderUnitTree();
      fitOnce();
    });
    return unitsShown;
  }

  function renderUnitTree() {
    const roots = [...units.values()].filter((u) => !units.has(u.parent_id));
    const node = (unit) => {
      const li = document.createElement("li");
      const choose = document.createElement("button");
      choose.type = "button";
      choose.dataset.unit = unit === null ? "" : unit.id;
      choose.textContent = unit === null ? t("all_units") : unit.name;
      choose.addEventListener("click", () => selectUnit(unit));
      li.append(choose);
      if (unit?.children.length) {
        const ul = document.createElement("ul");
        for (const child of unit.children) ul.append(node(child));
        li.append(ul);
      }
      return li;
    };
    const ul = document.createElement("ul");
    ul.append(node(null), ...roots.map(node));
    $("unit-tree").replaceChildren(ul);
    markActiveUnit();
  }

  function markActiveUnit() {
    const active = String(filters.unitId === null ? "" : filters.unitId);
    for (const b of document.querySelectorAll("#unit-tree button")) b.classList.toggle("active", b.dataset.unit === active);
  }

  function selectUnit(unit) {
    filters.unitId = unit ? unit.id : null;
    filters.unitIds = unit ? base.unitSubtree(unit) : null;
    markActiveUnit();
    scheduleRender();
    if (!unit) return;
    const bounds = new base.maplibregl.LngLatBounds();
    for (const id of base.unitSubtree(unit)) base.extendBounds(bounds, units.get(id).geometry);
    if (!bounds.isEmpty()) map.fitBounds(bounds, { padding: 60, maxZoom: 16 });
  }

  /** Frame the scope once (map.js): its units, else recent fixes; never a stale one. */
  function fitOnce() {
    if (firstFit) return;
    const now = Date.now();
    const recent = [];
    for (const p of people.values()) if (!isStale(p, now)) recent.push([p.lon, p.lat]);
    firstFit = base.fitFirstView(recent);
  }

  // --- selection, trail and follow --------------------------------------------------
  function drawTrail() {
    const source = map.getSource("trail");
    if (!source) return;
    const coords = trail.map((c) => project(c[0], c[1]));
    const features = coords.length > 1
      ? [{ type: "Feature", properties: {}, geometry: { type: "LineString", coordinates: coords } }]
      : [];
    source.setData({ type: "FeatureCollection", features });
    map.setLayoutProperty("trail-line", "visibility", features.length ? "visible" : "none");
  }

  function startOfToday() {
    const day = new Date();
    day.setHours(0, 0, 0, 0);
    return day.toISOString();
  }

  /** Select a person (null: none): the card, the ring and today's trail. */
  async function selectPerson(id) {
    selectedId = id;
    trail = [];
    trailSummary = null;
    drawTrail();
    drawSelected();
    $("person-card").hidden = id === null;
    if (id === null) return;
    $("card-follow").checked = false;
    renderCard();
    const feature = await getJson(`/api/v1/people/${id}/track?from=${encodeURIComponent(startOfToday())}`);
    if (selectedId !== id) return;
    const g = feature.geometry;
    const fixes = !g ? [] : g.type === "Point" ? [g.coordinates] : g.coordinates;
    // Fixes pushed while the track loaded are already in `trail`: keep those it lacks.
    const endedAt = feature.properties.ended_at ? Date.parse(feature.properties.ended_at) : 0;
    trail = fixes.concat(trail.filter((fix) => fix[2] > endedAt));
    trailSummary = feature.properties;
    drawTrail();
    renderCard();
  }

  function renderCard() {
    const p = people.get(selectedId);
    if (!p) return;
    $("card-name").textContent = p.name;
    $("card-dot").style.background = p.stale ? STALE_COLOR : roleColor(p.role);
    fillDetails($("card-details"), p);
    let summary = "";
    if (trailSummary) {
      summary = trailSummary.points
        ? t("trail.points", { n: trailSummary.points, km: (trailSummary.distance_m / 1000).toFixed(2) })
        : t("trail.none");
    }
    $("card-trail").textContent = summary;
    // The person's day (stops, trips, chart) on its own page; its API enforces the scope.
    let dayLink = $("card-day");
    if (!dayLink) {
      dayLink = document.createElement("a");
      dayLink.id = "card-day";
      dayLink.className = "card-day-link";
      dayLink.textContent = t("card.day");
      $("card-trail").after(dayLink);
    }
    dayLink.href = `/people/${selectedId}/day`;
  }

  $("card-close").addEventListener("click", () => selectPerson(null));
  $("card-follow").addEventListener("change", (event) => {
    const p = people.get(selectedId);
    if (event.target.checked && p) map.easeTo({ center: project(p.lon, p.lat), zoom: Math.max(map.getZoom(), 15) });
  });

  const hoverPopup = new base.maplibregl.Popup({ closeButton: false, closeOnClick: false, offset: 10 });
  function popupContent(p) {
    const box = document.createElement("div");
    const name = document.createElement("div");
    name.className = "popup-name";
    name.textContent = p.name;
    const dl = document.createElement("dl");
    dl.className = "details";
    fillDetails(dl, p);
    box.append(name, dl);
    return box;
  }

  ready.then(() => {
    let hovered = null;
    const leave = () => {
      if (hovered === null) return;
      hovered = null;
      map.getCanvas().style.cursor = "";
      hoverPopup.remove();
    };
    map.on("mousemove", (event) => {
      const p = people.get(dots.hit(event.point));
      if (!p) {
        leave();
        return;
      }
      hovered = p.id;
      map.getCanvas().style.cursor = "pointer";
      hoverPopup.setLngLat(project(p.lon, p.lat)).setDOMContent(popupContent(p)).addTo(map);
    });
    map.on("mouseout", leave);
    // Arrows are fed from zoom 13 on: catch up when the map gets there.
    map.on("zoomend", scheduleRender);
    // One click handler: a mode (placing an incident) takes the click first, then a
    // person under the pointer, then the grid under it.
    map.on("click", (event) => {
      const [lon, lat] = unproject(event.lngLat.lng, event.lngLat.lat);
      if (hooks.placeClick) {
        hooks.placeClick(lon, lat);
        return;
      }
      const hit = dots.hit(event.point, 4);
      if (hit !== null) {
        selectPerson(hit);
        return;
      }
      const grids = map.queryRenderedFeatures(event.point, { layers: ["units-fill"] })
        .filter((f) => f.properties.kind === "grid");
      if (grids.length && hooks.gridClick) hooks.gridClick(grids[0].properties.id);
    });
    map.on("moveend", () => {
      if (!narrowed || !socket?.connected) return;
      subscribeViewport();
      resync();
    });
  });

  // --- filters --------------------------------------------------------------------
  /** Show on duty, everyone, or only the on-duty people who report (or are silent). */
  function setDuty(duty) {
    filters.duty = duty;
    for (const b of document.querySelectorAll("[data-duty]")) b.classList.toggle("active", b.dataset.duty === duty);
    for (const b of document.querySelectorAll("[data-duty-split]")) {
      const active = b.dataset.dutySplit === duty;
      b.classList.toggle("active", active);
      b.setAttribute("aria-pressed", String(active));
    }
    scheduleRender();
  }
  for (const b of document.querySelectorAll("[data-duty]")) b.addEventListener("click", () => setDuty(b.dataset.duty));
  // Clicking a split count filters the map to it; clicking it again shows everyone on duty.
  for (const b of document.querySelectorAll("[data-duty-split]")) {
    b.addEventListener("click", () => setDuty(filters.duty === b.dataset.dutySplit ? "on" : b.dataset.dutySplit));
  }
  const search = $("search");
  search.addEventListener("input", () => {
    filters.search = search.value.trim().toLowerCase();
    scheduleRender();
  });
  search.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !filters.search) return;
    const match = [...people.values()].find((p) => passesFilters(p) && !filters.hiddenRoles.has(p.role));
    if (match) {
      selectPerson(match.id);
      map.easeTo({ center: project(match.lon, match.lat), zoom: Math.max(map.getZoom(), 15) });
    }
  });

  return {
    ready,
    people,
    hooks,
    attach,
    loadUnits,
    applyPositions,
    selectPerson,
    setDuty,
    render,
    lastRenderMs: () => lastRenderMs,
    drawn(id) {
      const found = drawnMarkers.get(id);
      if (!found) return null;
      const { lon, lat, stale, moving, role, color } = found;
      return { lon, lat, stale, moving, role, color };
    },
    drawnIds: () => [...drawnMarkers.keys()],
    /** Return how many markers the map's last frame drew. */
    markersDrawn: () => dots.drawnCount,
  };
}
