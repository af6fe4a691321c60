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

from .. import audit, store
from ..messages import Message, UserError

log = logging.getLogger(__name__)

WGS84_NAMES = {"EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326"}
UNIT_KINDS = ("district", "street", "community", "grid")
# Long enough for "北京市东城区景山街道黄化门社区第3网格 Grid 3" many times over; short
# enough to fit a map label and a log line.
UNIT_NAME_MAX_CHARS = 100


class BoundaryImportError(UserError):
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


def name_problem(name: str, max_chars: int = UNIT_NAME_MAX_CHARS) -> Message | None:
    """Return the rule a name (already stripped) breaks, or None if it is acceptable.

    Args:
        name: the name, without surrounding whitespace.
        max_chars: the most characters allowed.

    Returns:
        "must not be empty", "must be at most N characters ..." or "must not contain
        control characters" (PostgreSQL refuses NUL, and a line break splits log lines),
        as a Message to fill into a sentence.
    """
    if not name:
        return Message("must not be empty")
    if len(name) > max_chars:
        return Message(
            "must be at most %(max_chars)s characters, got %(count)s",
            max_chars=max_chars,
            count=len(name),
        )
    if any(unicodedata.category(char) == "Cc" for char in name):
        return Message("must not contain control characters")
    return None


def kind_problem(kind: str) -> Message | None:
    """Return the rule a unit kind breaks, or None if it is one of UNIT_KINDS."""
    if kind in UNIT_KINDS:
        return None
    return Message("must be one of %(kinds)s, got %(kind)r", kinds=", ".join(UNIT_KINDS), kind=kind)


def _check_crs(label: str, doc: dict[str, Any]) -> None:
    """Refuse a document that declares a CRS other than WGS-84."""
    crs = doc.get("crs")
    if crs is None:
        return
    props = crs.get("properties") if isinstance(crs, dict) else None
    name = props.get("name") if isinstance(props, dict) else None
    if not isinstance(name, str) or name not in WGS84_NAMES:
        raise BoundaryImportError(
            "%(label)s: must be WGS-84 longitude/latitude (EPSG:4326), got %(crs)s",
            label=label,
            crs=name,
        )


def _position(label: str, path: str, value: Any) -> list[float]:
    """Return a GeoJSON position as [lon, lat] (altitude dropped), or raise naming it."""
    if (
        not isinstance(value, list)
        or len(value) < 2
        or not all(type(v) in (int, float) for v in value)
    ):
        raise BoundaryImportError(
            "%(label)s: %(path)s must be a position [lon, lat]", label=label, path=path
        )
    try:
        lon, lat = float(value[0]), float(value[1])
    except OverflowError:
        raise BoundaryImportError(
            "%(label)s: %(path)s holds a number too large to be a degree", label=label, path=path
        ) from None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise BoundaryImportError(
            "%(label)s: %(path)s must be finite numbers, got %(values)s",
            label=label,
            path=path,
            values=value[:2],
        )
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BoundaryImportError(
            "%(label)s: coordinate [%(lon)s, %(lat)s] at %(path)s is not WGS-84 "
            "longitude/latitude (lon -180..180, lat -90..90)",
            label=label,
            lon=lon,
            lat=lat,
            path=path,
        )
    return [lon, lat]


def _ring(label: str, path: str, value: Any) -> list[list[float]]:
    """Return a linear ring as [lon, lat] positions, or raise naming the rule it breaks."""
    if not isinstance(value, list):
        raise BoundaryImportError(
            "%(label)s: %(path)s must be a ring (a list of positions)", label=label, path=path
        )
    ring = [_position(label, f"{path}[{i}]", p) for i, p in enumerate(value)]
    if len(ring) < 4:
        raise BoundaryImportError(
            "%(label)s: %(path)s has %(count)s positions; a ring needs at least 4, "
            "the last equal to the first",
            label=label,
            path=path,
            count=len(ring),
        )
    if ring[0] != ring[-1]:
        raise BoundaryImportError(
            "%(label)s: %(path)s is not closed: its last position must equal its first",
            label=label,
            path=path,
        )
    return ring


def _polygon(label: str, path: str, value: Any) -> list[list[list[float]]]:
    """Return a polygon as a list of rings, or raise naming the rule it breaks."""
    if not isinstance(value, list) or not value:
        raise BoundaryImportError(
            "%(label)s: %(path)s must be a polygon (a non-empty list of rings)",
            label=label,
            path=path,
        )
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
        raise BoundaryImportError(
            "%(label)s: geometry must be Polygon or MultiPolygon, got %(type)s",
            label=label,
            type=got,
        )
    _check_crs(f"{label}: geometry.crs", geometry)
    coordinates = geometry.get("coordinates")
    path = "geometry.coordinates"
    if geometry["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": _polygon(label, path, coordinates)}
    if not isinstance(coordinates, list) or not coordinates:
        raise BoundaryImportError(
            "%(label)s: %(path)s must be a non-empty list of polygons", label=label, path=path
        )
    polygons = [_polygon(label, f"{path}[{i}]", p) for i, p in enumerate(coordinates)]
    return {"type": "MultiPolygon", "coordinates": polygons}


def single_geometry(label: str, doc: Any) -> dict[str, Any]:
    """Return the checked polygon of a geometry, a Feature or a one-feature collection.

    Raises:
        BoundaryImportError: the document holds no single usable polygon.
    """
    if not isinstance(doc, dict):
        raise BoundaryImportError(
            "%(label)s: must be a GeoJSON object, got %(type)s",
            label=label,
            type=type(doc).__name__,
        )
    _check_crs(f"{label}: crs", doc)
    if doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list) or len(features) != 1:
            count = len(features) if isinstance(features, list) else 0
            raise BoundaryImportError(
                "%(label)s: features: expected exactly one feature, got %(count)s",
                label=label,
                count=count,
            )
        doc = features[0]
        if not isinstance(doc, dict):
            raise BoundaryImportError(
                "%(label)s: features[0] must be a GeoJSON Feature", label=label
            )
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
        raise BoundaryImportError("features[%(index)s]: must be a GeoJSON Feature", index=index)
    props = feature.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise BoundaryImportError("features[%(index)s]: properties must be an object", index=index)
    name = props.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BoundaryImportError(
            "features[%(index)s]: properties.name must be a non-empty string", index=index
        )
    name = name.strip()
    if problem := name_problem(name):
        raise BoundaryImportError(
            "features[%(index)s]: properties.name %(problem)s", index=index, problem=problem
        )
    label = f"features[{index}] ({name})"
    kind = props.get("kind")
    if not isinstance(kind, str) or not kind.strip():
        raise BoundaryImportError(
            "%(label)s: properties.kind must be a non-empty string", label=label
        )
    if problem := kind_problem(kind.strip()):
        raise BoundaryImportError(
            "%(label)s: properties.kind %(problem)s", label=label, problem=problem
        )
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
                "%(label)s: same name, kind and parent as %(other)s; each unit may appear once",
                label=feature.label,
                other=seen[key],
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
            if area <= 0 and reason:
                raise BoundaryImportError(
                    "%(label)s: geometry encloses no area (%(reason)s); ST_MakeValid would "
                    "leave no polygon of it",
                    label=feature.label,
                    reason=reason,
                )
            if area <= 0:
                raise BoundaryImportError(
                    "%(label)s: geometry encloses no area; ST_MakeValid would leave no "
                    "polygon of it",
                    label=feature.label,
                )
            existing = store.zones.unit_by_key(session, parent_id, feature.kind, feature.name)
            before = _boundary_now(session, existing)
            stored = store.zones.upsert_unit(
                session, feature.name, feature.kind, parent_id, geojson
            )
            _audit(session, stored[0], feature, parent_id, before)
            return stored
    except DBAPIError as exc:
        problem = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise BoundaryImportError(
            "%(label)s: geometry rejected by PostGIS: %(problem)s",
            label=feature.label,
            problem=problem,
        ) from None


def _boundary_now(session: Session, unit_id: int | None) -> tuple[bytes | None, Any] | None:
    """Return an existing unit's boundary as (EWKB, GeoJSON), or None for a new unit."""
    if unit_id is None:
        return None
    geojson = store.zones.unit_boundary_geojson(session, unit_id)
    return store.zones.unit_boundary_ewkb(session, unit_id), json.loads(geojson or "null")


def _audit(
    session: Session,
    unit_id: int,
    feature: _Feature,
    parent_id: int | None,
    before: tuple[bytes | None, Any] | None,
) -> None:
    """Record a unit the import created, or whose boundary it changed (not one it left as is)."""
    if before is not None and store.zones.unit_boundary_ewkb(session, unit_id) == before[0]:
        return
    after = {"boundary": json.loads(store.zones.unit_boundary_geojson(session, unit_id) or "null")}
    if before is None:
        after = {"name": feature.name, "kind": feature.kind, "parent_id": parent_id, **after}
        audit.record("unit.create", "unit", unit_id, None, after)
    else:
        audit.record("unit.update", "unit", unit_id, {"boundary": before[1]}, after)


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
                "%(label)s: properties.parent %(parent)r matches several units in the file",
                label=label,
                parent=parent,
            )
        return ids[0]
    found = store.scope.units_named_or_numbered(session, parent)
    if len(found) == 1:
        return found[0]
    if found:
        raise BoundaryImportError(
            "%(label)s: properties.parent %(parent)r matches several units",
            label=label,
            parent=parent,
        )
    if isinstance(parent, str) and any(f.name == parent for f in parsed[position + 1 :]):
        raise BoundaryImportError(
            "%(label)s: properties.parent %(parent)r comes later in the file; a parent must "
            "come before its children",
            label=label,
            parent=parent,
        )
    raise BoundaryImportError(
        "%(label)s: properties.parent %(parent)r is not a unit", label=label, parent=parent
    )
