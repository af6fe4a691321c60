"""Import units with boundaries from a GeoJSON FeatureCollection, all or nothing."""

from __future__ import annotations

import json
import logging
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .. import store

log = logging.getLogger(__name__)

WGS84_NAMES = {"EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326"}
UNIT_KINDS = ("district", "street", "community", "grid")
# Long enough for "北京市东城区景山街道黄化门社区第3网格 Grid 3" many times over; short
# enough to fit a map label and a log line.
UNIT_NAME_MAX_CHARS = 100


class BoundaryImportError(ValueError):
    """The file cannot be imported; the message names the feature and the problem."""


@dataclass
class ImportReport:
    """What an import did."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready values."""
        return {"created": self.created, "updated": self.updated, "repaired": self.repaired}


def name_problem(name: str, max_chars: int = UNIT_NAME_MAX_CHARS) -> str | None:
    """Return the rule a name (already stripped) breaks, or None if it is acceptable.

    Args:
        name: the name, without surrounding whitespace.
        max_chars: the most characters allowed.

    Returns:
        "must not be empty", "must be at most N characters ..." or "must not contain
        control characters" (PostgreSQL refuses NUL, and a line break splits log lines).
    """
    if not name:
        return "must not be empty"
    if len(name) > max_chars:
        return f"must be at most {max_chars} characters, got {len(name)}"
    if any(unicodedata.category(char) == "Cc" for char in name):
        return "must not contain control characters"
    return None


def kind_problem(kind: str) -> str | None:
    """Return the rule a unit kind breaks, or None if it is one of UNIT_KINDS."""
    if kind in UNIT_KINDS:
        return None
    return f"must be one of {', '.join(UNIT_KINDS)}, got {kind!r}"


def _check_crs(label: str, doc: dict[str, Any]) -> None:
    """Refuse a document that declares a CRS other than WGS-84."""
    crs = doc.get("crs")
    if crs is None:
        return
    props = crs.get("properties") if isinstance(crs, dict) else None
    name = props.get("name") if isinstance(props, dict) else None
    if not isinstance(name, str) or name not in WGS84_NAMES:
        raise BoundaryImportError(
            f"{label}: must be WGS-84 longitude/latitude (EPSG:4326), got {name}"
        )


def _position(label: str, path: str, value: Any) -> list[float]:
    """Return a GeoJSON position as [lon, lat] (altitude dropped), or raise naming it."""
    if (
        not isinstance(value, list)
        or len(value) < 2
        or not all(type(v) in (int, float) for v in value)
    ):
        raise BoundaryImportError(f"{label}: {path} must be a position [lon, lat]")
    try:
        lon, lat = float(value[0]), float(value[1])
    except OverflowError:
        raise BoundaryImportError(
            f"{label}: {path} holds a number too large to be a degree"
        ) from None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise BoundaryImportError(f"{label}: {path} must be finite numbers, got {value[:2]}")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BoundaryImportError(
            f"{label}: coordinate [{lon}, {lat}] at {path} is not WGS-84 longitude/latitude "
            "(lon -180..180, lat -90..90)"
        )
    return [lon, lat]


def _ring(label: str, path: str, value: Any) -> list[list[float]]:
    """Return a linear ring as [lon, lat] positions, or raise naming the rule it breaks."""
    if not isinstance(value, list):
        raise BoundaryImportError(f"{label}: {path} must be a ring (a list of positions)")
    ring = [_position(label, f"{path}[{i}]", p) for i, p in enumerate(value)]
    if len(ring) < 4:
        raise BoundaryImportError(
            f"{label}: {path} has {len(ring)} positions; a ring needs at least 4, "
            "the last equal to the first"
        )
    if ring[0] != ring[-1]:
        raise BoundaryImportError(
            f"{label}: {path} is not closed: its last position must equal its first"
        )
    return ring


def _polygon(label: str, path: str, value: Any) -> list[list[list[float]]]:
    """Return a polygon as a list of rings, or raise naming the rule it breaks."""
    if not isinstance(value, list) or not value:
        raise BoundaryImportError(f"{label}: {path} must be a polygon (a non-empty list of rings)")
    return [_ring(label, f"{path}[{i}]", ring) for i, ring in enumerate(value)]


def checked_geometry(label: str, geometry: Any) -> dict[str, Any]:
    """Return a Polygon or MultiPolygon with 2-D finite lon/lat positions, or raise naming it.

    Args:
        label: what to call the geometry in messages, e.g. "features[2] (网格A)".
        geometry: a decoded GeoJSON geometry.

    Returns:
        The geometry with only `type` and `coordinates`, altitudes dropped.

    Raises:
        BoundaryImportError: the type, a position or a ring breaks a rule; the message
            names it by its path (`geometry.coordinates[0][3]`).
    """
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        got = geometry.get("type") if isinstance(geometry, dict) else geometry
        raise BoundaryImportError(f"{label}: geometry must be Polygon or MultiPolygon, got {got}")
    _check_crs(f"{label}: geometry.crs", geometry)
    coordinates = geometry.get("coordinates")
    path = "geometry.coordinates"
    if geometry["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": _polygon(label, path, coordinates)}
    if not isinstance(coordinates, list) or not coordinates:
        raise BoundaryImportError(f"{label}: {path} must be a non-empty list of polygons")
    polygons = [_polygon(label, f"{path}[{i}]", p) for i, p in enumerate(coordinates)]
    return {"type": "MultiPolygon", "coordinates": polygons}


def single_geometry(label: str, doc: Any) -> dict[str, Any]:
    """Return the checked polygon of a geometry, a Feature or a one-feature collection.

    Raises:
        BoundaryImportError: the document holds no single usable polygon.
    """
    if not isinstance(doc, dict):
        raise BoundaryImportError(f"{label}: must be a GeoJSON object, got {type(doc).__name__}")
    _check_crs(f"{label}: crs", doc)
    if doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list) or len(features) != 1:
            count = len(features) if isinstance(features, list) else 0
            raise BoundaryImportError(
                f"{label}: features: expected exactly one feature, got {count}"
            )
        doc = features[0]
        if not isinstance(doc, dict):
            raise BoundaryImportError(f"{label}: features[0] must be a GeoJSON Feature")
    if doc.get("type") == "Feature":
        doc = doc.get("geometry")
    return checked_geometry(label, doc)


@dataclass(frozen=True)
class _Feature:
    """A feature whose properties and geometry passed the checks."""

    label: str
    name: str
    kind: str
    parent: Any
    geometry: dict[str, Any]


def _feature_parts(index: int, feature: Any) -> _Feature:
    """Return the checked parts of a feature, or raise naming it."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise BoundaryImportError(f"features[{index}]: must be a GeoJSON Feature")
    props = feature.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise BoundaryImportError(f"features[{index}]: properties must be an object")
    name = props.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BoundaryImportError(f"features[{index}]: properties.name must be a non-empty string")
    name = name.strip()
    if problem := name_problem(name):
        raise BoundaryImportError(f"features[{index}]: properties.name {problem}")
    label = f"features[{index}] ({name})"
    kind = props.get("kind")
    if not isinstance(kind, str) or not kind.strip():
        raise BoundaryImportError(f"{label}: properties.kind must be a non-empty string")
    if problem := kind_problem(kind.strip()):
        raise BoundaryImportError(f"{label}: properties.kind {problem}")
    geometry = checked_geometry(label, feature.get("geometry"))
    return _Feature(label, name, kind.strip(), props.get("parent"), geometry)


def import_units(session: Session, doc: Any) -> ImportReport:
    """Create or update the units of a FeatureCollection in the caller's transaction.

    Each feature has properties `name`, `kind` and optionally `parent`: the name of a unit
    earlier in the file, or the id or name of an existing unit. A unit is identified by
    (parent, kind, name), so importing the same file again updates boundaries instead of
    adding units. Invalid geometries are repaired with ST_MakeValid and reported; one that
    the repair leaves without an area (a line, a point) is refused.

    Raises:
        BoundaryImportError: naming the feature and the problem; the caller rolls back.
    """
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise BoundaryImportError("file: must be a GeoJSON FeatureCollection")
    _check_crs("crs", doc)
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise BoundaryImportError("features: must be a non-empty list")
    parsed = [_feature_parts(i, f) for i, f in enumerate(features)]
    ids_by_name: dict[str, list[int]] = {}
    seen: dict[tuple[int | None, str, str], str] = {}
    report = ImportReport()
    for position, feature in enumerate(parsed):
        parent_id = _resolve_parent(session, feature, ids_by_name, parsed, position)
        key = (parent_id, feature.kind, feature.name)
        if key in seen:
            raise BoundaryImportError(
                f"{feature.label}: same name, kind and parent as {seen[key]}; "
                "each unit may appear once"
            )
        seen[key] = feature.label
        unit_id, created, reason = _store(session, feature, parent_id)
        ids_by_name.setdefault(feature.name, []).append(unit_id)
        (report.created if created else report.updated).append(feature.name)
        if reason is not None:
            report.repaired.append(f"{feature.label}: {reason}")
    log.info("imported units: %d created, %d updated", len(report.created), len(report.updated))
    return report


def _store(
    session: Session, feature: _Feature, parent_id: int | None
) -> tuple[int, bool, str | None]:
    """Create or update one unit; refuse a boundary the repair leaves without an area."""
    geojson = json.dumps(feature.geometry)
    try:
        with session.begin_nested():
            reason, area = store.zones.boundary_repair(session, geojson)
            if area <= 0:
                why = f" ({reason})" if reason else ""
                raise BoundaryImportError(
                    f"{feature.label}: geometry encloses no area{why}; ST_MakeValid would leave "
                    "no polygon of it"
                )
            return store.zones.upsert_unit(session, feature.name, feature.kind, parent_id, geojson)
    except DBAPIError as exc:
        problem = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise BoundaryImportError(
            f"{feature.label}: geometry rejected by PostGIS: {problem}"
        ) from None


def _resolve_parent(
    session: Session,
    feature: _Feature,
    ids_by_name: dict[str, list[int]],
    parsed: Sequence[_Feature],
    position: int,
) -> int | None:
    """Return the id of a feature's parent, or raise naming the feature."""
    parent, label = feature.parent, feature.label
    if parent is None or parent == "":
        return None
    if isinstance(parent, str) and parent in ids_by_name:
        ids = ids_by_name[parent]
        if len(ids) > 1:
            raise BoundaryImportError(
                f"{label}: properties.parent {parent!r} matches several units in the file"
            )
        return ids[0]
    found = store.scope.units_named_or_numbered(session, parent)
    if len(found) == 1:
        return found[0]
    if found:
        problem = "matches several units"
    elif isinstance(parent, str) and any(f.name == parent for f in parsed[position + 1 :]):
        problem = "comes later in the file; a parent must come before its children"
    else:
        problem = "is not a unit"
    raise BoundaryImportError(f"{label}: properties.parent {parent!r} {problem}")
