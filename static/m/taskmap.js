// The small map on the task screen: the task's place and the phone's own last position, on
// a plain background (no basemap tiles needed), drawn with the vendored MapLibre GL.
"use strict";

let loading = null;

// MapLibre is large: load it the first time a task is opened (the service worker caches it).
function loadMapLibre() {
  if (window.maplibregl) return Promise.resolve(window.maplibregl);
  loading =
    loading ||
    new Promise((resolve, reject) => {
      const css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = "/static/vendor/maplibre-gl.css";
      document.head.append(css);
      const script = document.createElement("script");
      script.src = "/static/vendor/maplibre-gl.js";
      script.onload = () => resolve(window.maplibregl);
      script.onerror = () => {
        loading = null;
        reject(new Error("maplibre-gl.js did not load"));
      };
      document.head.append(script);
    });
  return loading;
}

const STYLE = {
  version: 8,
  sources: {},
  layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }],
};

function pointsOf(task, own) {
  const features = [];
  if (Number.isFinite(task.lat) && Number.isFinite(task.lon)) {
    features.push({
      type: "Feature",
      properties: { kind: "task" },
      geometry: { type: "Point", coordinates: [task.lon, task.lat] },
    });
  }
  if (own) {
    features.push({
      type: "Feature",
      properties: { kind: "me" },
      geometry: { type: "Point", coordinates: [own.lon, own.lat] },
    });
  }
  return { type: "FeatureCollection", features };
}

export class TaskMap {
  constructor(container) {
    this.container = container;
    this.map = null;
    this.ready = null;
  }

  // Show a task and the phone's position (or null); resolves once the map has drawn them.
  async show(task, own) {
    const maplibregl = await loadMapLibre();
    if (!this.map) {
      this.map = new maplibregl.Map({
        container: this.container,
        style: STYLE,
        center: [task.lon || 116.397, task.lat || 39.909],
        zoom: 15,
        attributionControl: false,
      });
      this.map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
      this.ready = new Promise((resolve) => this.map.on("load", resolve)).then(() => {
        this.map.addSource("points", { type: "geojson", data: pointsOf(task, own) });
        this.map.addLayer({
          id: "points",
          type: "circle",
          source: "points",
          paint: {
            "circle-radius": ["match", ["get", "kind"], "task", 10, 7],
            "circle-color": ["match", ["get", "kind"], "task", "#c62828", "#1565c0"],
            "circle-stroke-color": "#fff",
            "circle-stroke-width": 3,
          },
        });
      });
    }
    await this.ready;
    this.map.resize();
    const data = pointsOf(task, own);
    this.map.getSource("points").setData(data);
    const coords = data.features.map((f) => f.geometry.coordinates);
    if (coords.length === 2) {
      const bounds = new maplibregl.LngLatBounds(coords[0], coords[0]).extend(coords[1]);
      this.map.fitBounds(bounds, { padding: 40, maxZoom: 17, duration: 0 });
    } else if (coords.length === 1) {
      this.map.jumpTo({ center: coords[0], zoom: 16 });
    }
    this.shown = data.features.map((f) => f.properties.kind);
    return this.shown;
  }
}
