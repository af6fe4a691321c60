"""Pure geometry helpers: GeoJSON parsing and distances. No Flask, no database."""

from __future__ import annotations

import math
from typing import Any

from shapely import MultiPolygon, Polygon, make_valid
from shapely.geometry import shape

EARTH_RADIUS_M = 6_371_008.8


class GeometryError(ValueError):
    """A geometry is missing, of the wrong type or unusable."""


def boundary_from_geojson(doc: dict[str, Any]) -> tuple[MultiPolygon, bool]:
    """Read a Polygon or MultiPolygon from a GeoJSON geometry, Feature or one-feature collection.

    Args:
        doc: the decoded GeoJSON.

    Returns:
        (boundary, repaired): the boundary as a MultiPolygon in lon/lat, and whether an
        invalid geometry had to be repaired.

    Raises:
        GeometryError: the document holds no usable polygon.
    """
    if doc.get("type") == "FeatureCollection":
        features = doc.get("features") or []
        if len(features) != 1:
            raise GeometryError(f"features: expected exactly one feature, got {len(features)}")
        doc = features[0]
    if doc.get("type") == "Feature":
        doc = doc.get("geometry") or {}
    if doc.get("type") not in {"Polygon", "MultiPolygon"}:
        raise GeometryError(f"geometry: must be Polygon or MultiPolygon, got {doc.get('type')}")
    try:
        geom = shape(doc)
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise GeometryError(f"geometry: malformed coordinates ({exc})") from None
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise GeometryError("geometry: coordinates must be WGS-84 longitude/latitude")
    repaired = not geom.is_valid
    if repaired:
        geom = make_valid(geom)
        polygons = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon)]
        geom = MultiPolygon(polygons)
    if isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    if geom.is_empty:
        raise GeometryError("geometry: empty after repair")
    return geom, repaired


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance in metres between two WGS-84 points.

    Args:
        lat1: latitude of the first point, degrees.
        lon1: longitude of the first point, degrees.
        lat2: latitude of the second point, degrees.
        lon2: longitude of the second point, degrees.

    Returns:
        The distance in metres on a sphere of the mean Earth radius.
    """
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))
