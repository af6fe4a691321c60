/* Basemaps: the style of each kind (xyz, wmts, pmtiles, none) and the switcher on the map.
 *
 * The server lists what is configured (GET /api/v1/basemaps, also in the page's settings);
 * this module draws one of them under the app's layers and swaps it without touching them.
 * Offline basemaps are one .pmtiles file read with range requests by the `pmtiles` library
 * and styled with @protomaps/basemaps in Chinese. Chinese glyphs are drawn by the browser
 * from a local font (localIdeographFontFamily); Latin glyphs come from this server.
 */
import { request } from "./api.js";
import { lang, t } from "./i18n.js";
import { layers as protomapsLayers, namedFlavor } from "../vendor/protomaps-basemaps.js";

const PREFIX = "bm-";
/** Where MapLibre fetches Latin glyphs (made at set-up, served by the app). */
export const GLYPHS = `${window.location.origin}/api/v1/basemaps/glyphs/{fontstack}/{range}.pbf`;
/** The CJK fonts the browser may have; the set-up installs WenQuanYi Micro Hei on the server. */
export const LOCAL_IDEOGRAPHS =
  "'Noto Sans CJK SC', 'Source Han Sans SC', 'WenQuanYi Micro Hei', 'Microsoft YaHei', 'PingFang SC', sans-serif";
export const NO_BASEMAP = { id: "none", kind: "none", crs: "wgs84", name: { zh: "无底图", en: "No basemap" }, attribution: "" };

let pmtilesReady = null;

/** Load the pmtiles library (a classic script) once and register its protocol. */
function loadPmtiles(maplibregl) {
  if (!pmtilesReady) {
    pmtilesReady = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/static/vendor/pmtiles.js";
      script.onload = () => {
        const protocol = new window.pmtiles.Protocol();
        maplibregl.addProtocol("pmtiles", protocol.tile);
        resolve();
      };
      script.onerror = () => reject(new Error("pmtiles.js did not load"));
      document.head.append(script);
    });
  }
  return pmtilesReady;
}

/** Return a basemap's name in the page's language. */
export function basemapName(basemap) {
  return lang === "zh_CN" ? basemap.name.zh : basemap.name.en;
}

/** Return the basemap an account opens with: its saved choice if still offered, else the first. */
export function chosenBasemap(settings) {
  const offered = settings.basemaps?.length ? settings.basemaps : [NO_BASEMAP];
  const saved = settings.map_preference?.basemap;
  return offered.find((b) => b.id === saved) || offered[0];
}

/** Return the sources and layers that draw `basemap` (ids prefixed "bm-"). */
function basemapStyle(basemap) {
  const sources = {};
  const layers = [];
  if (basemap.kind === "xyz" || basemap.kind === "wmts") {
    basemap.layers.forEach((layer, i) => {
      const id = `${PREFIX}raster-${i}`;
      sources[id] = {
        type: "raster",
        // Tiles from this site (a proxy path such as /tianditu/…) as absolute URLs.
        tiles: layer.tiles.map((url) => (url.startsWith("/") ? `${window.location.origin}${url}` : url)),
        tileSize: layer.tile_size,
        scheme: layer.scheme,
        maxzoom: layer.max_zoom,
        attribution: i === 0 ? basemap.attribution : "",
      };
      layers.push({ id, type: "raster", source: id });
    });
  } else if (basemap.kind === "pmtiles") {
    const id = `${PREFIX}protomaps`;
    sources[id] = {
      type: "vector",
      url: `pmtiles://${window.location.origin}${basemap.url}`,
      attribution: basemap.attribution || "© OpenStreetMap",
    };
    for (const layer of protomapsLayers(id, namedFlavor("light"), { lang: lang === "zh_CN" ? "zh-Hans" : "en" })) {
      layers.push({ ...layer, id: `${PREFIX}${layer.id}` });
    }
  }
  return { sources, layers };
}

/** Draw `basemap` under the app's layers of `map`, replacing the basemap drawn before. */
export async function showBasemap(map, maplibregl, basemap) {
  if (basemap.kind === "pmtiles") await loadPmtiles(maplibregl);
  const style = map.getStyle();
  for (const layer of style.layers) if (layer.id.startsWith(PREFIX)) map.removeLayer(layer.id);
  for (const id of Object.keys(style.sources)) if (id.startsWith(PREFIX)) map.removeSource(id);
  // The app's layers start after the background; the basemap goes between them.
  const above = map.getStyle().layers.find((l) => l.id !== "background" && !l.id.startsWith(PREFIX));
  const { sources, layers } = basemapStyle(basemap);
  for (const [id, source] of Object.entries(sources)) map.addSource(id, source);
  for (const layer of layers) map.addLayer(layer, above?.id);
  map.getContainer().dataset.basemap = basemap.id;
}

/** Save the account's map choice on the server (every browser it logs in from opens so). */
export function savePreference(preference) {
  return request("PUT", "/api/v1/basemaps/preference", preference);
}

/**
 * A map control: the basemap list and the opacity of the grids and the other units.
 * `onBasemap(basemap)` and `onOpacity({grid_opacity, unit_opacity})` apply a change.
 */
export class BasemapSwitcher {
  constructor(settings, current, opacity, { onBasemap, onOpacity }) {
    this.settings = settings;
    this.current = current;
    this.opacity = { ...opacity };
    this.onBasemap = onBasemap;
    this.onOpacity = onOpacity;
    this.saveTimer = null;
  }

  onAdd() {
    const box = document.createElement("div");
    box.className = "maplibregl-ctrl maplibregl-ctrl-group basemap-switcher";
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "basemap-toggle";
    toggle.id = "basemap-toggle";
    toggle.title = t("basemap.switch");
    toggle.setAttribute("aria-label", t("basemap.switch"));
    toggle.setAttribute("aria-expanded", "false");
    const panel = document.createElement("div");
    panel.className = "basemap-panel";
    panel.id = "basemap-panel";
    panel.hidden = true;
    toggle.addEventListener("click", () => {
      panel.hidden = !panel.hidden;
      toggle.setAttribute("aria-expanded", String(!panel.hidden));
    });
    const title = document.createElement("h3");
    title.textContent = t("basemap.title");
    panel.append(title);
    const offered = this.settings.basemaps?.length ? this.settings.basemaps : [NO_BASEMAP];
    for (const basemap of offered) {
      const label = document.createElement("label");
      label.className = "basemap-choice";
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "basemap";
      radio.value = basemap.id;
      radio.checked = basemap.id === this.current.id;
      radio.addEventListener("change", () => {
        this.current = basemap;
        this.save();
        this.onBasemap(basemap);
      });
      const name = document.createElement("span");
      name.textContent = basemapName(basemap);
      label.append(radio, name);
      panel.append(label);
    }
    const layersTitle = document.createElement("h3");
    layersTitle.textContent = t("basemap.layers");
    panel.append(layersTitle);
    for (const [key, text] of [["grid_opacity", t("basemap.grid_opacity")], ["unit_opacity", t("basemap.unit_opacity")]]) {
      const label = document.createElement("label");
      label.className = "basemap-opacity";
      const name = document.createElement("span");
      name.textContent = text;
      const range = document.createElement("input");
      range.type = "range";
      range.min = "0";
      range.max = "100";
      range.step = "5";
      range.value = String(Math.round(this.opacity[key] * 100));
      range.dataset.opacity = key;
      range.addEventListener("input", () => {
        this.opacity[key] = Number(range.value) / 100;
        this.onOpacity({ ...this.opacity });
        clearTimeout(this.saveTimer);
        this.saveTimer = setTimeout(() => this.save(), 400);
      });
      label.append(name, range);
      panel.append(label);
    }
    box.append(toggle, panel);
    this.box = box;
    return box;
  }

  onRemove() {
    this.box.remove();
  }

  /** Remember the choice for this account; the page works on if the server is away. */
  save() {
    const saved = savePreference({ basemap: this.current.id, ...this.opacity }).catch(() => null);
    this.saving = saved;
    return saved;
  }
}
