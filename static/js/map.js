/* The map set-up every map page shares: basemap, coordinate shift, the units and their labels.
 *
 * Data stays WGS-84 everywhere. The basemap (basemap.js) says its coordinate system; when it
 * is GCJ-02 or BD-09 only what is drawn is shifted, through `project`, and what the map
 * gives back (clicks, the view) comes back through `unproject` (basemap-coords.js, gcoord).
 * Switching to a basemap of another coordinate system reloads the page, so that nothing
 * drawn in the old system stays on the map. MapLibre is the vendor build in /static/vendor
 * (a classic script: window.maplibregl).
 */
import { BasemapSwitcher, chosenBasemap, GLYPHS, LOCAL_IDEOGRAPHS, showBasemap } from "./basemap.js";
import { projector } from "./basemap-coords.js";
import { t } from "./i18n.js";

const { maplibregl } = window;
const DEFAULT_CENTER = [116.397, 39.916];
// Labels of each kind of unit appear from the zoom where they usually fit; where they would
// still overlap, MapLibre's symbol collision leaves out the lower layer's label (grids, with
// their on-duty counts, are placed first).
const LABEL_ZOOMS = [["district", 9], ["street", 11], ["community", 12], ["grid", 13]];
const FONT = ["Noto Sans Regular"];
const empty = () => ({ type: "FeatureCollection", features: [] });

function kindOpacity(opacity) {
  return ["case", ["==", ["get", "kind"], "grid"], opacity.grid_opacity, opacity.unit_opacity];
}

/** Apply the grid and unit opacities (0-1) to the unit layers. */
function applyOpacity(map, opacity) {
  const factor = kindOpacity(opacity);
  map.setPaintProperty("units-fill", "fill-opacity", ["*", factor, [
    "case",
    ["==", ["feature-state", "coverage"], "uncovered"], 0.22,
    ["==", ["feature-state", "coverage"], "covered"], 0.08,
    0.05,
  ]]);
  map.setPaintProperty("units-line", "line-opacity", ["*", 0.7, factor]);
  for (const [kind] of LABEL_ZOOMS) {
    const value = kind === "grid" ? opacity.grid_opacity : opacity.unit_opacity;
    map.setPaintProperty(`units-label-${kind}`, "text-opacity", value);
  }
}

const UNIT_SHAPE_LAYERS = ["units-fill", "units-selected", "units-line"];

/** Add the units' sources and layers, hidden until showUnits() has units to draw. */
function addUnitLayers(map) {
  // Hidden layers load no tiles: a map without units does not wait for MapLibre's worker.
  map.addSource("units", { type: "geojson", data: empty(), promoteId: "id" });
  map.addSource("unit-labels", { type: "geojson", data: empty(), promoteId: "id" });
  // Grids are tinted by coverage (feature-state set by coverage.js): red when nobody on
  // duty is inside, green when covered; other units keep a faint blue.
  map.addLayer({
    id: "units-fill",
    type: "fill",
    source: "units",
    layout: { visibility: "none" },
    paint: {
      "fill-color": [
        "case",
        ["==", ["feature-state", "coverage"], "uncovered"], "#e74c3c",
        ["==", ["feature-state", "coverage"], "covered"], "#27ae60",
        "#2d7dd2",
      ],
    },
  });
  map.addLayer({
    id: "units-selected",
    type: "line",
    source: "units",
    layout: { visibility: "none" },
    filter: ["==", ["get", "id"], -1],
    paint: { "line-color": "#0e3a5b", "line-width": 3 },
  });
  map.addLayer({
    id: "units-line",
    type: "line",
    source: "units",
    layout: { visibility: "none" },
    paint: { "line-color": "#2d6fb0", "line-width": 1.5, "line-dasharray": [3, 2] },
  });
  for (const [kind, minzoom] of LABEL_ZOOMS) {
    map.addLayer({
      id: `units-label-${kind}`,
      type: "symbol",
      source: "unit-labels",
      minzoom,
      filter: ["==", ["get", "kind"], kind],
      layout: {
        visibility: "none",
        "text-field": ["format", ["get", "name"], {}, ["get", "badge"], { "font-scale": 0.85 }],
        "text-font": FONT,
        "text-size": kind === "grid" ? 13 : 14,
        "text-max-width": 10,
        "text-padding": 4,
      },
      paint: {
        "text-color": [
          "match", ["get", "coverage"],
          "uncovered", "#b42318",
          "covered", "#1e7b45",
          "#1d3b5a",
        ],
        "text-halo-color": "rgba(255, 255, 255, 0.92)",
        "text-halo-width": 1.6,
      },
    });
  }
}

/** Create the map in `container`; return it with its projection and its units. */
export function createMap(settings, container) {
  const basemap = chosenBasemap(settings);
  const { project, unproject } = projector(basemap.crs);
  const opacity = {
    grid_opacity: settings.map_preference?.grid_opacity ?? 1,
    unit_opacity: settings.map_preference?.unit_opacity ?? 1,
  };
  const map = new maplibregl.Map({
    container,
    style: {
      version: 8,
      glyphs: GLYPHS,
      sources: {},
      layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }],
    },
    center: project(...DEFAULT_CENTER),
    zoom: 13,
    localIdeographFontFamily: LOCAL_IDEOGRAPHS,
    attributionControl: { compact: true },
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: true }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
  // The basemap's POI icons need a sprite this app does not ship: an empty image keeps the
  // console quiet and the labels in place.
  map.on("styleimagemissing", (event) => {
    if (!map.hasImage(event.id)) map.addImage(event.id, { width: 1, height: 1, data: new Uint8Array(4) });
  });
  const units = new Map(); // unit id -> {id, name, kind, parent_id, label_point, geometry, children, label}
  let fitted = false;
  let freshFixes = [];

  const switcher = new BasemapSwitcher(settings, basemap, opacity, {
    onBasemap(next) {
      if (next.crs !== basemap.crs) {
        // Everything drawn is in the old system: start again in the new one.
        switcher.saving.finally(() => window.location.reload());
        return;
      }
      showBasemap(map, maplibregl, next);
    },
    onOpacity(next) {
      Object.assign(opacity, next);
      applyOpacity(map, opacity);
    },
  });
  map.addControl(switcher, "top-right");

  // Ready as soon as the style is parsed ("style.load"), not at "load": that comes after
  // the first full render, a second later on a CPU-rendered map, and whatever the pages add
  // before it (units, people, the basemap) is drawn in that first render.
  const ready = new Promise((resolve) => {
    map.once("style.load", async () => {
      addUnitLayers(map);
      applyOpacity(map, opacity);
      resolve();
      try {
        await showBasemap(map, maplibregl, basemap);
      } finally {
        map.getContainer().dataset.basemapReady = basemap.id;
      }
    });
  });

  function projectGeometry(geometry) {
    const ring = (coords) => coords.map((c) => project(c[0], c[1]));
    if (geometry.type === "Polygon") return { type: "Polygon", coordinates: geometry.coordinates.map(ring) };
    return { type: "MultiPolygon", coordinates: geometry.coordinates.map((poly) => poly.map(ring)) };
  }

  let labelsQueued = false;
  function drawLabels() {
    labelsQueued = false;
    const features = [];
    for (const unit of units.values()) {
      if (!unit.label_point) continue;
      features.push({
        type: "Feature",
        properties: {
          id: unit.id, kind: unit.kind, name: unit.name,
          badge: unit.label.badge ? `\n${unit.label.badge}` : "", coverage: unit.label.coverage || "",
        },
        geometry: { type: "Point", coordinates: project(...unit.label_point) },
      });
    }
    map.getSource("unit-labels")?.setData({ type: "FeatureCollection", features });
  }

  /** Set the second line and the colour of a unit's label ({badge, coverage}). */
  function setUnitLabel(unitId, label) {
    const unit = units.get(unitId);
    if (!unit) return;
    unit.label = { ...unit.label, ...label };
    if (!labelsQueued) {
      labelsQueued = true;
      queueMicrotask(drawLabels);
    }
  }

  /** Draw the units (a GeoJSON FeatureCollection from /api/v1/units) and their labels. */
  function showUnits(collection) {
    for (const f of collection.features) {
      const p = f.properties;
      units.set(p.unit_id, {
        id: p.unit_id, name: p.name, kind: p.kind, parent_id: p.parent_id,
        label_point: p.label_point, geometry: f.geometry, children: [], label: {},
      });
    }
    for (const unit of units.values()) units.get(unit.parent_id)?.children.push(unit);
    const shapes = collection.features
      .filter((f) => f.geometry)
      .map((f) => ({ type: "Feature", properties: { id: f.id, kind: f.properties.kind }, geometry: projectGeometry(f.geometry) }));
    map.getSource("units").setData({ type: "FeatureCollection", features: shapes });
    drawLabels();
    const anyShape = [...units.values()].some((unit) => unit.geometry);
    const anyLabel = [...units.values()].some((unit) => unit.label_point);
    for (const id of UNIT_SHAPE_LAYERS) map.setLayoutProperty(id, "visibility", anyShape ? "visible" : "none");
    for (const [kind] of LABEL_ZOOMS) map.setLayoutProperty(`units-label-${kind}`, "visibility", anyLabel ? "visible" : "none");
  }

  /** Return the ids of a unit and every unit below it. */
  function unitSubtree(unit, into = new Set()) {
    into.add(unit.id);
    for (const child of unit.children) unitSubtree(child, into);
    return into;
  }

  /** Extend LngLatBounds by a WGS-84 (Multi)Polygon's outer rings, as drawn. */
  function extendBounds(bounds, geometry) {
    if (!geometry) return;
    const polys = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
    for (const poly of polys) for (const c of poly[0]) bounds.extend(project(c[0], c[1]));
  }

  /** Return the bounds (as drawn) of the account's area: its units' boundaries, else the
   * recent fixes near their median, so one far-away fix cannot decide the view. */
  function scopeBounds() {
    const bounds = new maplibregl.LngLatBounds();
    for (const unit of units.values()) extendBounds(bounds, unit.geometry);
    if (!bounds.isEmpty() || !freshFixes.length) return bounds;
    // A typed array sorts numbers without a comparator: a few ms for 20,000 fixes, not tens.
    const median = (i) => {
      const values = new Float64Array(freshFixes.length);
      for (let k = 0; k < values.length; k += 1) values[k] = freshFixes[k][i];
      return values.sort()[Math.floor(values.length / 2)];
    };
    const lon = median(0);
    const lat = median(1);
    // Within about 50 km of the median: a city's area, not a phone abroad. The corners are
    // kept as numbers: LngLatBounds.extend would make an object of every fix.
    let [west, south, east, north] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [fLon, fLat] of freshFixes) {
      if (Math.abs(fLon - lon) >= 0.6 || Math.abs(fLat - lat) >= 0.45) continue;
      const [x, y] = project(fLon, fLat);
      west = Math.min(west, x);
      east = Math.max(east, x);
      south = Math.min(south, y);
      north = Math.max(north, y);
    }
    return west > east ? bounds : new maplibregl.LngLatBounds([west, south], [east, north]);
  }

  /** Frame the account's area; return whether there was one. */
  function fitScope(animate = true) {
    const bounds = scopeBounds();
    if (bounds.isEmpty()) return false;
    map.fitBounds(bounds, { padding: 60, maxZoom: 16, duration: animate ? 600 : 0 });
    return true;
  }

  /**
   * Frame the first view once: the scope's units, else the recent fixes ([lon, lat] WGS-84,
   * stale ones left out by the caller). Return whether the view is decided.
   */
  function fitFirstView(recentFixes = []) {
    if (fitted) return true;
    freshFixes = recentFixes;
    fitted = fitScope(false);
    if (fitted) map.getContainer().dataset.firstView = "fitted";
    return fitted;
  }

  class FitAreaControl {
    onAdd() {
      const box = document.createElement("div");
      box.className = "maplibregl-ctrl maplibregl-ctrl-group";
      const button = document.createElement("button");
      button.type = "button";
      button.id = "fit-area";
      button.className = "fit-area";
      button.title = t("basemap.fit_area");
      button.setAttribute("aria-label", t("basemap.fit_area"));
      button.addEventListener("click", () => fitScope(true));
      box.append(button);
      this.box = box;
      return box;
    }

    onRemove() {
      this.box.remove();
    }
  }
  map.addControl(new FitAreaControl(), "top-right");

  /** Fly to a WGS-84 point. */
  function flyTo(lon, lat, zoom = 16) {
    if (lon == null || lat == null) return;
    map.flyTo({ center: project(lon, lat), zoom: Math.max(map.getZoom(), zoom), duration: 800 });
  }

  /** Return a map marker for an element at a WGS-84 point. */
  function marker(element, lon, lat, anchor = "bottom") {
    return new maplibregl.Marker({ element, anchor }).setLngLat(project(lon, lat));
  }

  return {
    map, ready, project, unproject, basemap, units, showUnits, setUnitLabel, unitSubtree,
    extendBounds, fitFirstView, fitScope, flyTo, marker, maplibregl,
  };
}
