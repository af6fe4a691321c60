// Distances on the phone: the haversine formula is within 0.5 % of the geodesic here.
"use strict";

const EARTH_RADIUS_M = 6371008.8;

// Return the great-circle distance in metres between two {lat, lon} points.
export function distanceM(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.sqrt(h));
}
