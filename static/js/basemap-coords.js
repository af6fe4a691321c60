/* Coordinates between the data (always WGS-84) and a basemap's system (WGS-84, GCJ-02, BD-09).
 *
 * The shifts are gcoord's (npm, /static/vendor/gcoord.js): what is drawn is shifted to the
 * basemap's system with `project`; what the map gives back (a click, the view) is shifted
 * back with `unproject`. Outside China both are the identity, as GCJ-02 is defined.
 */
import gcoord from "../vendor/gcoord.js";

const SYSTEMS = { wgs84: gcoord.WGS84, gcj02: gcoord.GCJ02, bd09: gcoord.BD09 };
const identity = (lon, lat) => [lon, lat];

/** Return {project, unproject} between WGS-84 and the coordinate system `crs`. */
export function projector(crs) {
  const system = SYSTEMS[crs];
  if (!system || system === gcoord.WGS84) return { project: identity, unproject: identity };
  const forward = (lon, lat) => gcoord.transform([lon, lat], gcoord.WGS84, system);
  const backward = (lon, lat) => {
    // gcoord's inverse is within centimetres; two fixed-point steps on the forward shift
    // bring a point drawn and clicked back to where it was to well under a millimetre.
    let [wLon, wLat] = gcoord.transform([lon, lat], system, gcoord.WGS84);
    for (let i = 0; i < 2; i++) {
      const [sLon, sLat] = forward(wLon, wLat);
      wLon += lon - sLon;
      wLat += lat - sLat;
    }
    return [wLon, wLat];
  };
  return { project: forward, unproject: backward };
}

/** Return a point [lon, lat] converted from system `from` to system `to`. */
export function convert(lon, lat, from, to) {
  if (from === to) return [lon, lat];
  return gcoord.transform([lon, lat], SYSTEMS[from], SYSTEMS[to]);
}
