/* Where a replayed person is at time t: interpolation between fixes, gaps, fading tails.
 *
 * A track is the columnar form of GET /api/v1/replay: `t` (seconds since the range's
 * start, ascending), `lon` and `lat` (WGS-84). Nothing here touches the map or the DOM.
 */

/** Return the index of the last fix at or before t, or -1 when t is before the first. */
export function lastFixIndex(track, t) {
  const times = track.t;
  let low = 0;
  let high = times.length - 1;
  if (high < 0 || t < times[0]) return -1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (times[middle] <= t) low = middle;
    else high = middle - 1;
  }
  return low;
}

/** Return [lon, lat] of a track at t, or null where the person is missing.
 *
 * Between two fixes no further apart than gapS the position is interpolated linearly;
 * a longer gap, or a time before the first fix or more than gapS after the last, is
 * missing, so a person never jumps in a straight line across a hole in the data.
 */
export function positionAt(track, t, gapS) {
  const i = lastFixIndex(track, t);
  if (i < 0) return null;
  const times = track.t;
  if (times[i] === t) return [track.lon[i], track.lat[i]];
  if (i === times.length - 1) return t - times[i] <= gapS ? [track.lon[i], track.lat[i]] : null;
  const span = times[i + 1] - times[i];
  if (span > gapS) return null;
  const f = (t - times[i]) / span;
  return [
    track.lon[i] + (track.lon[i + 1] - track.lon[i]) * f,
    track.lat[i] + (track.lat[i + 1] - track.lat[i]) * f,
  ];
}

/** Return the tail of the last tailS seconds before t as `buckets` lists of line parts.
 *
 * Bucket 0 is the newest; each part is a list of [lon, lat], broken where a gap is longer
 * than gapS, so the tail fades by age and never bridges a hole.
 */
export function tailParts(track, t, tailS, gapS, buckets) {
  const out = Array.from({ length: buckets }, () => []);
  const end = lastFixIndex(track, t);
  if (end < 0 || tailS <= 0) return out;
  const start = t - tailS;
  const width = tailS / buckets;
  for (let b = 0; b < buckets; b += 1) {
    const to = t - b * width;
    const from = to - width;
    let part = [];
    const head = positionAt(track, to, gapS);
    if (head) part.push(head);
    let i = lastFixIndex(track, to);
    if (i >= 0 && track.t[i] === to) i -= 1;
    for (; i >= 0 && track.t[i] > from && track.t[i] >= start; i -= 1) {
      const next = i + 1 < track.t.length ? track.t[i + 1] : null;
      if (next !== null && next <= to && next - track.t[i] > gapS) {
        if (part.length > 1) out[b].push(part);
        part = [];
      }
      part.push([track.lon[i], track.lat[i]]);
    }
    const tailEnd = positionAt(track, Math.max(from, start), gapS);
    if (tailEnd && part.length) part.push(tailEnd);
    if (part.length > 1) out[b].push(part);
  }
  return out;
}

/** Return a polygon ring approximating a circle of radiusM metres around lon/lat. */
export function circleRing(lon, lat, radiusM, steps = 64) {
  const earthM = 6371008.8;
  const angular = radiusM / earthM;
  const lat1 = (lat * Math.PI) / 180;
  const lon1 = (lon * Math.PI) / 180;
  const ring = [];
  for (let s = 0; s <= steps; s += 1) {
    const bearing = (2 * Math.PI * s) / steps;
    const lat2 = Math.asin(Math.sin(lat1) * Math.cos(angular) + Math.cos(lat1) * Math.sin(angular) * Math.cos(bearing));
    const lon2 = lon1 + Math.atan2(
      Math.sin(bearing) * Math.sin(angular) * Math.cos(lat1),
      Math.cos(angular) - Math.sin(lat1) * Math.sin(lat2),
    );
    ring.push([(lon2 * 180) / Math.PI, (lat2 * 180) / Math.PI]);
  }
  return ring;
}
