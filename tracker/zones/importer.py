"""Import units with boundaries from a GeoJSON FeatureCollection, all or nothing."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .. import queries

log = logging.getLogger(__name__)

WGS84_NAMES = {"EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326"}


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


def _check_crs(doc: dict[str, Any]) -> None:
    """Refuse a FeatureCollection that declares a CRS other than WGS-84."""
    crs = doc.get("crs")
    if crs is None:
        return
    name = (crs.get("properties") or {}).get("name") if isinstance(crs, dict) else None
    if name not in WGS84_NAMES:
        raise BoundaryImportError(f"crs: must be WGS-84 longitude/latitude (EPSG:4326), got {name}")


def _feature_parts(index: int, feature: Any) -> tuple[str, str, str, Any, dict[str, Any]]:
    """Return (label, name, kind, parent, geometry) of a feature, or raise naming it."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise BoundaryImportError(f"features[{index}]: must be a GeoJSON Feature")
    props = feature.get("properties") or {}
    name = props.get("name")
    label = f"features[{index}] ({name})" if name else f"features[{index}]"
    if not isinstance(name, str) or not name.strip():
        raise BoundaryImportError(f"{label}: properties.name must be a non-empty string")
    kind = props.get("kind")
    if not isinstance(kind, str) or not kind.strip():
        raise BoundaryImportError(f"{label}: properties.kind must be a non-empty string")
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in {"Polygon", "MultiPolygon"}:
        got = geometry.get("type") if isinstance(geometry, dict) else geometry
        raise BoundaryImportError(f"{label}: geometry must be Polygon or MultiPolygon, got {got}")
    _check_coordinates(label, geometry.get("coordinates"))
    return label, name.strip(), kind.strip(), props.get("parent"), geometry


def _check_coordinates(label: str, coordinates: Any) -> None:
    """Refuse coordinates that are not lon/lat pairs within range."""

    def walk(value: Any) -> None:
        if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
            if len(value) < 2 or isinstance(value[0], bool):
                raise BoundaryImportError(f"{label}: a position must be [lon, lat]")
            lon, lat = value[0], value[1]
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise BoundaryImportError(
                    f"{label}: coordinate [{lon}, {lat}] is not WGS-84 longitude/latitude"
                )
            return
        if not isinstance(value, list) or not value:
            raise BoundaryImportError(f"{label}: coordinates are malformed")
        for item in value:
            walk(item)

    walk(coordinates)


def import_units(session: Session, doc: Any) -> ImportReport:
    """Create or update the units of a FeatureCollection in the caller's transaction.

    Each feature has properties `name`, `kind` and optionally `parent`: the name of a unit
    earlier in the file, or the id or name of an existing unit. A unit is identified by
    (parent, kind, name), so importing the same file again updates boundaries instead of
    adding units. Invalid geometries are repaired with ST_MakeValid and reported.

    Raises:
        BoundaryImportError: naming the feature and the problem; the caller rolls back.
    """
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise BoundaryImportError("file: must be a GeoJSON FeatureCollection")
    _check_crs(doc)
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise BoundaryImportError("features: must be a non-empty list")
    parsed = [_feature_parts(i, f) for i, f in enumerate(features)]
    ids_by_name: dict[str, int] = {}
    report = ImportReport()
    for label, name, kind, parent, geometry in parsed:
        parent_id = _resolve_parent(session, label, parent, ids_by_name)
        try:
            with session.begin_nested():
                unit_id, created, reason = queries.upsert_unit(
                    session, name, kind, parent_id, json.dumps(geometry)
                )
        except DBAPIError as exc:
            problem = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise BoundaryImportError(f"{label}: geometry rejected by PostGIS: {problem}") from None
        ids_by_name[name] = unit_id
        (report.created if created else report.updated).append(name)
        if reason is not None:
            report.repaired.append(f"{label}: {reason}")
    log.info("imported units: %d created, %d updated", len(report.created), len(report.updated))
    return report


def _resolve_parent(
    session: Session, label: str, parent: Any, ids_by_name: dict[str, int]
) -> int | None:
    """Return the id of a feature's parent, or raise naming the feature."""
    if parent is None or parent == "":
        return None
    if isinstance(parent, str) and parent in ids_by_name:
        return ids_by_name[parent]
    found = queries.units_named_or_numbered(session, parent)
    if len(found) == 1:
        return found[0]
    problem = "matches several units" if found else "is not a unit"
    raise BoundaryImportError(f"{label}: properties.parent {parent!r} {problem}")
