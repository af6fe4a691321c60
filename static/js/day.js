/* Entry of a person's day (/people/<id>/day): the track with its stops, the timeline of stops
 * and trips, the totals and the speed/accuracy chart, from GET /api/v1/people/<id>/timeline.
 *
 * The server decides who may see whom: a person outside the account's scope is a 404 from
 * the API, shown here as "not found". Clicking a stop or trip highlights it on both views.
 */
import { getJson } from "./api.js";
import { createDayChart } from "./day-chart.js";
import { distanceText, lang, t } from "./i18n.js";
import { createMap } from "./map.js";
import { el } from "./ui.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const $ = (id) => document.getElementById(id);
const locale = lang === "zh_CN" ? "zh-CN" : "en-GB";
const clockFormat = new Intl.DateTimeFormat(locale, {
  timeZone: settings.time_zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});

/** Return epoch ms as a clock time in the server's history time zone. */
const clockText = (ms) => clockFormat.format(new Date(ms));

/** Return seconds as "45 s", "12 min" or "1 h 05 min". */
function durationText(seconds) {
  if (seconds < 60) return t("day.seconds", { n: Math.round(seconds) });
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return t("day.minutes", { n: minutes });
  return t("day.hours_minutes", { h: Math.floor(minutes / 60), m: String(minutes % 60).padStart(2, "0") });
}

/** Return a YYYY-MM-DD day moved by `days`. */
function shiftDay(day, days) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

const base = createMap(settings, "map");
const { map, project, maplibregl } = base;
const chart = createDayChart($("day-chart"), clockText);
let timeline = null; // the API's answer for the day shown
let stopMarkers = [];
let selected = null; // {kind: "stop"|"trip", index}
let loading = 0;
let selectedLinePoints = 0;

const emptyLine = { type: "FeatureCollection", features: [] };
const line = (coords) => ({
  type: "FeatureCollection",
  features: coords.length > 1 ? [{ type: "Feature", properties: {}, geometry: { type: "LineString", coordinates: coords } }] : [],
});

base.ready.then(() => {
  map.addSource("day-track", { type: "geojson", data: emptyLine });
  map.addSource("day-selected", { type: "geojson", data: emptyLine });
  map.addLayer({ id: "day-track", type: "line", source: "day-track", layout: { "line-join": "round", "line-cap": "round" }, paint: { "line-color": "#1f7ae0", "line-width": 3, "line-opacity": 0.8 } });
  map.addLayer({ id: "day-selected", type: "line", source: "day-selected", layout: { "line-join": "round", "line-cap": "round" }, paint: { "line-color": "#e74c3c", "line-width": 6 } });
  getJson("/api/v1/units").then(base.showUnits).catch(() => {});
});

getJson(`/api/v1/people/${settings.person_id}`)
  .then((person) => {
    $("day-person").textContent = person.name;
    document.title = `${person.name} · ${document.title}`;
  })
  .catch(() => {});

function setStatus(state, text) {
  const status = $("day-status");
  status.dataset.state = state;
  status.textContent = text;
  status.hidden = state === "ready";
}

/** Return the track's coordinates between two epoch-ms times (a trip's own line). */
function trackBetween(fromMs, toMs) {
  const coords = timeline.track.coordinates;
  return timeline.series.t
    .map((s, i) => [s * 1000, coords[i]])
    .filter(([ms]) => ms >= fromMs - 1000 && ms <= toMs + 1000)
    .map(([, c]) => project(c[0], c[1]));
}

/** Return the epoch-ms range of a stop or trip. */
function rangeOf(kind, index) {
  const item = kind === "stop" ? timeline.stops[index] : timeline.trips[index];
  return kind === "stop" ? [Date.parse(item.arrived), Date.parse(item.left)] : [Date.parse(item.from), Date.parse(item.to)];
}

/** Highlight a stop or trip on the list, the map and the chart; the same again clears it. */
function select(kind, index) {
  const same = selected && selected.kind === kind && selected.index === index;
  selected = same ? null : { kind, index };
  for (const item of document.querySelectorAll("#day-timeline [data-kind]")) {
    const on = selected && item.dataset.kind === selected.kind && Number(item.dataset.index) === selected.index;
    item.classList.toggle("selected", Boolean(on));
  }
  stopMarkers.forEach((m, i) => m.getElement().classList.toggle("selected", selected?.kind === "stop" && selected.index === i));
  if (!selected) {
    map.getSource("day-selected")?.setData(emptyLine);
    selectedLinePoints = 0;
    chart.highlight(null);
    return;
  }
  const range = rangeOf(kind, index);
  chart.highlight(range);
  if (kind === "stop") {
    const stop = timeline.stops[index];
    map.getSource("day-selected")?.setData(emptyLine);
    selectedLinePoints = 0;
    const at = map.project(project(stop.lon, stop.lat));
    const box = map.getContainer().getBoundingClientRect();
    const inView = at.x >= 0 && at.y >= 0 && at.x <= box.width && at.y <= box.height;
    if (!inView) map.flyTo({ center: project(stop.lon, stop.lat), zoom: Math.max(map.getZoom(), 16), duration: 600 });
  } else {
    const coords = trackBetween(...range);
    map.getSource("day-selected")?.setData(line(coords));
    selectedLinePoints = coords.length;
    if (coords.length > 1) {
      const bounds = coords.reduce((b, c) => b.extend(c), new maplibregl.LngLatBounds(coords[0], coords[0]));
      map.fitBounds(bounds, { padding: 60, maxZoom: 17, duration: 600 });
    }
  }
}

function detail(list, label, value) {
  list.append(el("dt", null, label), el("dd", null, value));
}

function stopItem(stop, index) {
  const item = el("li", "day-item day-stop");
  Object.assign(item.dataset, { kind: "stop", index, arrived: stop.arrived, left: stop.left, durationS: stop.duration_s });
  const head = el("button", "day-item-head");
  head.type = "button";
  head.append(el("span", "stop-badge", String(index + 1)), el("strong", null, t("day.stop", { n: index + 1 })));
  head.append(el("span", "muted small", durationText(stop.duration_s)));
  const details = el("dl", "details");
  detail(details, t("day.place_label"), `${stop.lat.toFixed(5)}, ${stop.lon.toFixed(5)}`);
  detail(details, t("day.arrived"), clockText(Date.parse(stop.arrived)));
  detail(details, t("day.left"), clockText(Date.parse(stop.left)));
  detail(details, t("day.duration"), durationText(stop.duration_s));
  detail(details, t("day.grid"), stop.grid_name || t("day.no_grid"));
  item.append(head, details);
  head.addEventListener("click", () => select("stop", index));
  return item;
}

function tripItem(trip, index) {
  const item = el("li", "day-item day-trip");
  Object.assign(item.dataset, { kind: "trip", index, from: trip.from, to: trip.to, distanceM: trip.distance_m });
  const head = el("button", "day-item-head");
  head.type = "button";
  head.append(el("span", "trip-badge", "→"), el("strong", null, t("day.trip")));
  head.append(el("span", "muted small", `${clockText(Date.parse(trip.from))} – ${clockText(Date.parse(trip.to))}`));
  const details = el("dl", "details");
  detail(details, t("day.distance"), distanceText(trip.distance_m));
  detail(details, t("day.duration"), durationText(trip.duration_s));
  detail(details, t("day.avg_speed"), t("unit.kmh", { n: (trip.avg_speed_mps * 3.6).toFixed(1) }));
  item.append(head, details);
  head.addEventListener("click", () => select("trip", index));
  return item;
}

function showTotals(day) {
  const dropped = Object.values(day.dropped).reduce((a, b) => a + b, 0);
  $("day-distance").textContent = distanceText(day.distance_m);
  $("day-raw").textContent = t("day.raw", {
    distance: distanceText(day.raw_distance_m), n: dropped,
    accuracy: day.dropped.accuracy ?? 0, duplicate: day.dropped.duplicate ?? 0, speed: day.dropped.speed ?? 0,
  });
  $("day-summary").textContent = t("day.summary", { stops: day.stops.length, trips: day.trips.length, fixes: day.series.t.length });
  $("day-totals").hidden = false;
}

function showMap(day) {
  for (const m of stopMarkers) m.remove();
  const coords = day.track.coordinates.map((c) => project(c[0], c[1]));
  map.getSource("day-track").setData(line(coords));
  map.getSource("day-selected").setData(emptyLine);
  stopMarkers = day.stops.map((stop, index) => {
    const element = el("div", "stop-marker", String(index + 1));
    element.dataset.stop = index;
    element.title = `${t("day.stop", { n: index + 1 })} · ${durationText(stop.duration_s)}`;
    element.addEventListener("click", () => select("stop", index));
    return new maplibregl.Marker({ element, anchor: "center" }).setLngLat(project(stop.lon, stop.lat)).addTo(map);
  });
  if (coords.length) {
    const bounds = coords.reduce((b, c) => b.extend(c), new maplibregl.LngLatBounds(coords[0], coords[0]));
    map.fitBounds(bounds, { padding: 60, maxZoom: 17, duration: 0 });
  }
}

/** Load and show the day in the date picker. */
async function load() {
  const day = $("day-date").value;
  const token = ++loading;
  selected = null;
  timeline = null;
  document.body.dataset.loaded = "";
  $("day-timeline").replaceChildren();
  $("day-totals").hidden = true;
  setStatus("loading", t("day.loading"));
  const response = await fetch(`/api/v1/people/${settings.person_id}/timeline?date=${encodeURIComponent(day)}`, { credentials: "same-origin" });
  if (token !== loading) return;
  if (response.status === 401) {
    window.location.assign("/login");
    return;
  }
  if (response.status === 404) {
    setStatus("not-found", t("day.not_found"));
    document.body.dataset.loaded = "not-found";
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (token !== loading) return;
  if (!response.ok) {
    setStatus("error", t("day.failed", { error: answer.error || `HTTP ${response.status}` }));
    document.body.dataset.loaded = "error";
    return;
  }
  timeline = answer;
  await base.ready;
  if (token !== loading) return;
  const items = [
    ...answer.stops.map((stop, i) => [Date.parse(stop.arrived), stopItem(stop, i)]),
    ...answer.trips.map((trip, i) => [Date.parse(trip.from), tripItem(trip, i)]),
  ].sort((a, b) => a[0] - b[0]);
  $("day-timeline").replaceChildren(...items.map(([, item]) => item));
  showTotals(answer);
  showMap(answer);
  chart.show(answer.series);
  if (answer.series.t.length) setStatus("ready", "");
  else setStatus("empty", t("day.nothing"));
  document.body.dataset.loaded = day;
}

function goTo(day) {
  if (!day) return;
  $("day-date").value = day;
  const url = new URL(window.location.href);
  url.searchParams.set("date", day);
  window.history.replaceState(null, "", url);
  load();
}

$("day-prev").addEventListener("click", () => goTo(shiftDay($("day-date").value, -1)));
$("day-next").addEventListener("click", () => goTo(shiftDay($("day-date").value, 1)));
$("day-date").addEventListener("change", () => goTo($("day-date").value));
load();

// The browser tests read what is drawn through this hook (no globals other files use).
window.__day = {
  timeline: () => timeline,
  chart: () => chart.drawn(),
  selected: () => selected,
  select,
  stops: () => stopMarkers.map((m, index) => {
    const at = m.getLngLat();
    const point = map.project(at);
    const box = map.getContainer().getBoundingClientRect();
    return {
      index, lon: at.lng, lat: at.lat, x: point.x, y: point.y,
      visible: point.x >= 0 && point.y >= 0 && point.x <= box.width && point.y <= box.height,
      selected: m.getElement().classList.contains("selected"),
    };
  }),
  selectedLinePoints: () => selectedLinePoints,
};
