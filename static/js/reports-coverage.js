/* The coverage picture of a grid-day: the grid, its covered area shaded, the on-duty tracks.
 *
 * Uses the shared map set-up (map.js) read-only: basemap, GCJ-02 and the projection of
 * what is drawn. The covered area comes from the server (GET /api/v1/reports/coverage).
 */
import { getJson } from "./api.js";
import { createMap } from "./map.js";

const empty = { type: "FeatureCollection", features: [] };

/** Create the coverage map in element `container`; return show(gridId, date, unitId). */
export function createCoverageMap(settings, container) {
  let base = null;

  function ensureMap() {
    if (base) return base;
    base = createMap(settings, container);
    base.ready.then(() => {
      const { map } = base;
      for (const id of ["coverage-grid", "coverage-covered", "coverage-tracks"]) map.addSource(id, { type: "geojson", data: empty });
      map.addLayer({ id: "coverage-grid-fill", type: "fill", source: "coverage-grid", paint: { "fill-color": "#e74c3c", "fill-opacity": 0.12 } });
      map.addLayer({ id: "coverage-covered", type: "fill", source: "coverage-covered", paint: { "fill-color": "#27ae60", "fill-opacity": 0.55 } });
      map.addLayer({ id: "coverage-grid-line", type: "line", source: "coverage-grid", paint: { "line-color": "#0e3a5b", "line-width": 2 } });
      map.addLayer({ id: "coverage-tracks", type: "line", source: "coverage-tracks", paint: { "line-color": "#1f7ae0", "line-width": 1.5 } });
    });
    return base;
  }

  function projected(geometry) {
    const { project } = base;
    const walk = (coords) => (typeof coords[0] === "number" ? project(coords[0], coords[1]) : coords.map(walk));
    return { ...geometry, coordinates: walk(geometry.coordinates) };
  }

  const collection = (geometries) => ({
    type: "FeatureCollection",
    features: geometries.filter(Boolean).map((g) => ({ type: "Feature", properties: {}, geometry: projected(g) })),
  });

  /** Load and draw a grid's coverage on a day; resolve with the API's answer. */
  async function show(gridId, date, unitId) {
    const query = new URLSearchParams({ grid_id: gridId, date });
    if (unitId != null) query.set("unit_id", unitId);
    const picture = await getJson(`/api/v1/reports/coverage?${query}`);
    const current = ensureMap();
    await current.ready;
    const { map, maplibregl } = current;
    map.resize();
    const grid = picture.grid ? JSON.parse(picture.grid) : null;
    map.getSource("coverage-grid").setData(collection([grid]));
    map.getSource("coverage-covered").setData(collection([picture.covered ? JSON.parse(picture.covered) : null]));
    map.getSource("coverage-tracks").setData(collection(picture.tracks.map((text) => JSON.parse(text))));
    if (grid) {
      const bounds = new maplibregl.LngLatBounds();
      current.extendBounds(bounds, grid);
      map.fitBounds(bounds, { padding: 30, duration: 0 });
    }
    return picture;
  }

  return { show };
}
