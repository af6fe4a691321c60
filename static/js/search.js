/* Search on the map: units, people in scope, incidents by number, coordinates, addresses.
 *
 * Coordinates are typed in decimal ("39.9087, 116.3975") or in 度分秒
 * ("39°54'31\"N 116°23'51\"E", "北纬39度54分31秒 东经116度23分51秒") and are read as WGS-84,
 * what a phone's GPS shows. Addresses go to the office's geocoder (GEOCODER_URL) through
 * the server, only when one is configured.
 */
import { getJson } from "./api.js";
import { convert } from "./basemap-coords.js";
import { t } from "./i18n.js";

const NUMBER = String.raw`(\d+(?:\.\d+)?)`;
// One angle: degrees, optional minutes and seconds, with its hemisphere before or after.
const ANGLE = new RegExp(
  String.raw`(北纬|南纬|东经|西经|[NSEW])?\s*${NUMBER}\s*(?:[°度]\s*(?:${NUMBER}\s*['′分]\s*)?(?:${NUMBER}\s*(?:["″”]|''|秒)\s*)?)?\s*([NSEW])?`,
  "giu",
);
const HEMISPHERE = { 北纬: "N", 南纬: "S", 东经: "E", 西经: "W" };

/** Return [lon, lat] for typed coordinates, or null when the text is not two angles. */
export function parseCoordinates(text) {
  const cleaned = text.trim().replace(/[，,;；]/g, " ").replace(/\s+/g, " ");
  if (!cleaned || !/^[\d\s.°度分秒'′"″”NSEWnsew北南东西纬经+-]+$/u.test(cleaned)) return null;
  const angles = [];
  const negative = [];
  let rest = cleaned;
  for (const match of cleaned.matchAll(ANGLE)) {
    if (!match[0].trim()) continue;
    const [, before, deg, min, sec, after] = match;
    const hemi = (HEMISPHERE[before] || before || after || "").toUpperCase();
    const minutes = min === undefined ? 0 : Number(min);
    const seconds = sec === undefined ? 0 : Number(sec);
    if (minutes >= 60 || seconds >= 60) return null;
    let value = Number(deg) + minutes / 60 + seconds / 3600;
    const start = match.index;
    negative.push(cleaned[start - 1] === "-" || cleaned.slice(start).startsWith("-"));
    if (hemi === "S" || hemi === "W") value = -value;
    angles.push({ value, hemi });
    rest = rest.replace(match[0], "");
  }
  if (angles.length !== 2 || /\d/.test(rest)) return null;
  angles.forEach((a, i) => {
    if (negative[i] && a.value > 0) a.value = -a.value;
  });
  let lat;
  let lon;
  const [a, b] = angles;
  if ("NS".includes(a.hemi || "?") || "EW".includes(b.hemi || "?")) [lat, lon] = [a.value, b.value];
  else if ("EW".includes(a.hemi || "?") || "NS".includes(b.hemi || "?")) [lon, lat] = [a.value, b.value];
  else if (Math.abs(a.value) > 90) [lon, lat] = [a.value, b.value]; // "116.39 39.90"
  else [lat, lon] = [a.value, b.value]; // "39.90 116.39": latitude first, as maps show it
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  return [lon, lat];
}

/** Return an incident number typed as "#12", "事件12" or "incident 12", else null. */
export function parseIncidentNumber(text) {
  const match = /^\s*(?:#|＃|事件\s*|incident\s*#?)\s*(\d{1,12})\s*$/iu.exec(text);
  return match ? Number(match[1]) : null;
}

/**
 * Run the map's search box (#map-search) on the live map.
 * `base` is createMap's answer, `people` the people layer, `openIncident(id)` the panel's.
 */
export function createMapSearch({ base, people, openIncident, geocoder }) {
  const input = document.getElementById("map-search");
  const list = document.getElementById("map-search-results");
  const { units } = base;
  let results = [];
  let pin = null;

  function showPin(lon, lat) {
    pin?.remove();
    const element = document.createElement("div");
    element.className = "search-pin";
    element.dataset.lon = lon;
    element.dataset.lat = lat;
    pin = base.marker(element, lon, lat).addTo(base.map);
    base.flyTo(lon, lat, 16);
  }

  function fitUnit(unit) {
    const bounds = new base.maplibregl.LngLatBounds();
    for (const id of base.unitSubtree(unit)) base.extendBounds(bounds, units.get(id).geometry);
    if (!bounds.isEmpty()) base.map.fitBounds(bounds, { padding: 60, maxZoom: 16 });
    else if (unit.label_point) base.flyTo(...unit.label_point);
  }

  /** Return what the text finds at once (no server): coordinates, units, people, an incident. */
  function localResults(text) {
    const found = [];
    const place = parseCoordinates(text);
    if (place) {
      found.push({ kind: "place", label: `${place[1].toFixed(6)}, ${place[0].toFixed(6)}`, go: () => showPin(...place) });
    }
    const number = parseIncidentNumber(text);
    if (number !== null) found.push({ kind: "incident", label: t("search.incident", { n: number }), go: () => openIncident(number) });
    const needle = text.trim().toLowerCase();
    if (!needle || place) return found;
    for (const unit of units.values()) {
      if (unit.name.toLowerCase().includes(needle)) found.push({ kind: "unit", label: unit.name, go: () => fitUnit(unit) });
    }
    for (const p of people.people.values()) {
      if (!p.name.toLowerCase().includes(needle)) continue;
      found.push({
        kind: "person",
        label: p.name,
        go: () => {
          people.selectPerson(p.person_id ?? p.id);
          base.flyTo(p.lon, p.lat);
        },
      });
    }
    return found.slice(0, 12);
  }

  function render() {
    list.replaceChildren();
    list.hidden = !results.length && !input.value.trim();
    if (!results.length && input.value.trim()) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = t("search.nothing");
      list.append(li);
    }
    results.forEach((result, i) => {
      const li = document.createElement("li");
      const choose = document.createElement("button");
      choose.type = "button";
      choose.dataset.kind = result.kind;
      choose.dataset.index = i;
      const kind = document.createElement("span");
      kind.className = "search-kind";
      kind.textContent = t(`search.kind.${result.kind}`);
      const label = document.createElement("span");
      label.textContent = result.label;
      choose.append(kind, label);
      choose.addEventListener("click", () => pick(result));
      li.append(choose);
      list.append(li);
    });
  }

  function pick(result) {
    list.hidden = true;
    Promise.resolve(result.go()).catch(() => {
      results = [];
      render();
    });
  }

  async function askGeocoder(text) {
    try {
      const answer = await getJson(`/api/v1/geocode?q=${encodeURIComponent(text)}`);
      return answer.results.map((r) => {
        const [lon, lat] = convert(r.lon, r.lat, answer.crs, "wgs84");
        return { kind: "address", label: r.name || text, go: () => showPin(lon, lat) };
      });
    } catch {
      return [{ kind: "address", label: t("search.geocoder_failed"), go: () => null }];
    }
  }

  input.addEventListener("input", () => {
    results = localResults(input.value);
    render();
  });
  input.addEventListener("keydown", async (event) => {
    if (event.key === "Escape") {
      list.hidden = true;
      return;
    }
    if (event.key !== "Enter") return;
    event.preventDefault();
    const text = input.value.trim();
    results = localResults(text);
    if (!results.length && geocoder && text) {
      results = await askGeocoder(text);
      render();
      return;
    }
    render();
    if (results.length) pick(results[0]);
  });

  return { localResults, pin: () => pin };
}
