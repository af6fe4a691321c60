/* The map set-up every map page shares: basemap, GCJ-02 and the units' boundaries.
 *
 * Data stays WGS-84 everywhere; when the basemap uses GCJ-02 (AMap, Tencent) only what is
 * drawn is shifted, through `project`, and map clicks come back through `unproject`.
 * MapLibre is the vendor build in /static/vendor (a classic script: window.maplibregl).
 */
import "./gcj02.js";

const { maplibregl } = window;
const DEFAULT_CENTER = [116.397, 39.916];
const identity = (lon, lat) => [lon, lat];

function baseStyle(settings) {
  const style = {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }],
  };
  if (settings.tile_url) {
    style.sources.basemap = {
      type: "raster",
      tiles: [settings.tile_url],
      tileSize: 256,
      attribution: settings.tile_attribution || "",
    };
    style.layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  return style;
}

function addUnitLayers(map) {
  map.addSource("units", { type: "geojson", data: { type: "FeatureCollection", features: [] }, promoteId: "id" });
  // Grids are tinted by coverage (feature-state set by coverage.js): red when nobody on
  // duty is inside, green when covered; other units keep a faint blue.
  map.addLayer({
    id: "units-fill",
    type: "fill",
    source: "units",
    paint: {
      "fill-color": [
        "case",
        ["==", ["feature-state", "coverage"], "uncovered"], "#e74c3c",
        ["==", ["feature-state", "coverage"], "covered"], "#27ae60",
        "#2d7dd2",
      ],
      "fill-opacity": [
        "case",
        ["==", ["feature-state", "coverage"], "uncovered"], 0.22,
        ["==", ["feature-state", "coverage"], "covered"], 0.08,
        0.05,
      ],
    },
  });
  map.addLayer({
    id: "units-selected",
    type: "line",
    source: "units",
    filter: ["==", ["get", "id"], -1],
    paint: { "line-color": "#0e3a5b", "line-width": 3 },
  });
  map.addLayer({
    id: "units-line",
    type: "line",
    source: "units",
    paint: { "line-color": "#2d6fb0", "line-width": 1.5, "line-opacity": 0.7, "line-dasharray": [3, 2] },
  });
}

/** Create the map in `container`; return it with its projection and its units. */
export function createMap(settings, container) {
  const project = settings.gcj02 ? window.gcj02.wgs84ToGcj02 : identity;
  const unproject = settings.gcj02 ? window.gcj02.gcj02ToWgs84 : identity;
  const map = new maplibregl.Map({
    container,
    style: baseStyle(settings),
    center: DEFAULT_CENTER,
    zoom: 13,
    attributionControl: settings.tile_url ? { compact: true } : false,
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: true }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
  const ready = new Promise((resolve) => {
    map.on("load", () => {
      addUnitLayers(map);
      resolve();
    });
  });
  const units = new Map(); // unit id -> {id, name, kind, parent_id, label_point, geometry, children, labelEl}

  function projectGeometry(geometry) {
    const ring = (coords) => coords.map((c) => project(c[0], c[1]));
    if (geometry.type === "Polygon") return { type: "Polygon", coordinates: geometry.coordinates.map(ring) };
    return { type: "MultiPolygon", coordinates: geometry.coordinates.map((poly) => poly.map(ring)) };
  }

  /** Draw the units (a GeoJSON FeatureCollection from /api/v1/units) and their labels. */
  function showUnits(collection) {
    for (const f of collection.features) {
      const p = f.properties;
      units.set(p.unit_id, {
        id: p.unit_id, name: p.name, kind: p.kind, parent_id: p.parent_id,
        label_point: p.label_point, geometry: f.geometry, children: [],
      });
    }
    for (const unit of units.values()) units.get(unit.parent_id)?.children.push(unit);
    const shapes = collection.features
      .filter((f) => f.geometry)
      .map((f) => ({ type: "Feature", properties: { id: f.id, kind: f.properties.kind }, geometry: projectGeometry(f.geometry) }));
    map.getSource("units").setData({ type: "FeatureCollection", features: shapes });
    for (const unit of units.values()) {
      if (!unit.label_point) continue;
      const label = document.createElement("div");
      label.className = "unit-label";
      label.dataset.unit = unit.id;
      label.dataset.kind = unit.kind;
      const name = document.createElement("span");
      name.textContent = unit.name;
      const badge = document.createElement("span");
      badge.className = "coverage-badge";
      label.append(name, badge);
      unit.labelEl = label;
      new maplibregl.Marker({ element: label }).setLngLat(project(...unit.label_point)).addTo(map);
    }
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

  /** Fly to a WGS-84 point. */
  function flyTo(lon, lat) {
    if (lon == null || lat == null) return;
    map.flyTo({ center: project(lon, lat), zoom: Math.max(map.getZoom(), 16), duration: 800 });
  }

  /** Return a map marker for an element at a WGS-84 point. */
  function marker(element, lon, lat, anchor = "bottom") {
    return new maplibregl.Marker({ element, anchor }).setLngLat(project(lon, lat));
  }

  return { map, ready, project, unproject, units, showUnits, unitSubtree, extendBounds, flyTo, marker, maplibregl };
}
