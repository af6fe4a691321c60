"""Units and grids: create, rename, move, redraw and delete them (docs/admin-api.md).

Only admins change units, and only inside their scope: an admin with a unit creates units
below it and moves them only between units below it. A boundary is checked and repaired
exactly as the GeoJSON import does; the answer says what the repair changed and which
sibling units (same parent, same kind) the new boundary overlaps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import DBAPIError

from .. import audit, store
from ..extensions import db
from ..messages import Message, joined
from ..models import User
from ..zones.importer import (
    UNIT_KINDS,
    UNIT_NAME_MAX_CHARS,
    BoundaryImportError,
    checked_geometry,
    kind_problem,
    name_problem,
)
from .rules import AdminError

log = logging.getLogger(__name__)

FIELDS = ("name", "kind", "parent_id", "boundary")
# From the top: a unit ranks below its parent (a grid may sit right below a street).
KIND_RANK = {kind: rank for rank, kind in enumerate(UNIT_KINDS)}
# Shared edges and coordinate rounding leave slivers; an overlap is what is larger.
OVERLAP_MIN_M2 = 1.0


def invalid(field: str, rule: Message) -> AdminError:
    """Return the 400 error `FIELD: rule` (the CLI's msgid, so it reads the same there)."""
    return AdminError("%(argument)s: %(rule)s", argument=field, rule=rule)


class UnitForbiddenError(AdminError):
    """The unit or the new parent lies outside the account's scope (403)."""

    status = 403


class UnitNotFoundError(AdminError):
    """There is no such unit (404)."""

    status = 404


class UnitConflictError(AdminError):
    """Another unit has the same (parent, kind, name), the import's key (409)."""

    status = 409


class UnitNotEmptyError(UnitConflictError):
    """The unit still has units below it, people, staff accounts or patrol assignments."""

    def __init__(self, template: str, /, left: Mapping[str, int], **params: Any) -> None:
        """Keep the message and the counts of what is left, for the answer."""
        super().__init__(template, **params)
        self.left = dict(left)


def unit_json(row: Any) -> dict[str, Any]:
    """Return a UNIT: id, name, kind, parent_id, boundary (GeoJSON) and area_m2."""
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "parent_id": row.parent_id,
        "boundary": json.loads(row.boundary_geojson) if row.boundary_geojson else None,
        "area_m2": round(row.area_m2, 1) if row.area_m2 is not None else None,
    }


def _in_scope(user: User, unit_id: int) -> bool:
    """Return whether an existing unit is the account's unit or below it."""
    if user.unit_id is None:
        return True
    return user.unit_id in store.scope.unit_ancestors(db.session, unit_id)


def _body(body: Any, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    """Return the request body, or refuse one that is not an object of known fields."""
    if not isinstance(body, dict):
        raise invalid("body", Message("must be a JSON object of unit fields"))
    for field in body:
        if field not in allowed:
            raise invalid(
                str(field)[:40],
                Message("not a field of a unit (%(fields)s)", fields=", ".join(allowed)),
            )
    return body


def _name(value: Any) -> str:
    """Return a checked unit name without surrounding spaces."""
    if not isinstance(value, str):
        raise invalid("name", Message("must be a string"))
    value = value.strip()
    if problem := name_problem(value, UNIT_NAME_MAX_CHARS):
        raise invalid("name", problem)
    return value


def _kind(value: Any) -> str:
    """Return a checked unit kind."""
    if not isinstance(value, str):
        raise invalid("kind", Message("must be a string"))
    if problem := kind_problem(value):
        raise invalid("kind", problem)
    return value


def _target(user: User, unit_id: int) -> Any:
    """Return the unit to change, locked; refuse an unknown one (404) or one out of scope."""
    row = store.zones.unit_details(db.session, unit_id)
    if row is None:
        raise UnitNotFoundError(
            "%(argument)s: %(rule)s",
            argument="unit_id",
            rule=Message("no unit with id %(unit_id)s", unit_id=unit_id),
        )
    if not _in_scope(user, unit_id):
        raise UnitForbiddenError(
            "%(argument)s: %(rule)s",
            argument="unit_id",
            rule=Message("unit %(unit_id)s is outside your scope", unit_id=unit_id),
        )
    return row


def _parent(user: User, value: Any) -> Any | None:
    """Return the checked parent: an existing unit in scope (None only for an unscoped admin)."""
    if value is None:
        if user.unit_id is not None:
            raise UnitForbiddenError(
                "%(argument)s: %(rule)s",
                argument="parent_id",
                rule=Message(
                    "must be a unit below your own unit %(unit_id)s",
                    unit_id=user.unit_id,
                ),
            )
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("parent_id", Message("must be a unit id, or null for a unit at the top"))
    row = store.zones.unit_details(db.session, value)
    if row is None:
        raise invalid("parent_id", Message("no unit with id %(unit_id)s", unit_id=value))
    if not _in_scope(user, value):
        raise UnitForbiddenError(
            "%(argument)s: %(rule)s",
            argument="parent_id",
            rule=Message("unit %(unit_id)s is outside your scope", unit_id=value),
        )
    return row


def _check_rank(kind: str, parent: Any | None, child_kinds: list[str]) -> None:
    """Refuse a kind that does not rank below its parent's and above its children's."""
    order = ", ".join(UNIT_KINDS)
    if parent is not None and KIND_RANK[kind] <= KIND_RANK.get(parent.kind, -1):
        raise invalid(
            "kind",
            Message(
                "a %(kind)s cannot be below a %(parent_kind)s (from the top: %(order)s)",
                kind=kind,
                parent_kind=parent.kind,
                order=order,
            ),
        )
    below = [k for k in child_kinds if KIND_RANK.get(k, len(UNIT_KINDS)) <= KIND_RANK[kind]]
    if below:
        raise invalid(
            "kind",
            Message(
                "a %(kind)s cannot be above a %(child_kind)s (from the top: %(order)s)",
                kind=kind,
                child_kind=below[0],
                order=order,
            ),
        )


def _check_unique(name: str, kind: str, parent_id: int | None, unit_id: int | None) -> None:
    """Refuse a second unit with the same (parent, kind, name): the import's key."""
    other = store.zones.unit_by_key(db.session, parent_id, kind, name)
    if other is None or other == unit_id:
        return
    if parent_id is None:
        rule = Message(
            "a %(kind)s named %(name)r already exists at the top (unit %(other)s)",
            kind=kind,
            name=name,
            other=other,
        )
    else:
        rule = Message(
            "a %(kind)s named %(name)r already exists under unit %(parent_id)s (unit %(other)s)",
            kind=kind,
            name=name,
            parent_id=parent_id,
            other=other,
        )
    raise UnitConflictError("%(argument)s: %(rule)s", argument="name", rule=rule)


def _boundary(value: Any) -> tuple[str | None, dict[str, Any] | None]:
    """Return a boundary as GeoJSON text and what its repair changed, or refuse it.

    The checks are the import's: a Polygon or MultiPolygon of finite WGS-84 positions in
    closed rings, repaired with ST_MakeValid; a repair that leaves no area is refused.
    """
    if value is None:
        return None, None
    geojson = json.dumps(checked_geometry("boundary", value))
    try:
        with db.session.begin_nested():
            reason, area = store.zones.boundary_repair(db.session, geojson)
            if area <= 0 and reason:
                raise BoundaryImportError(
                    "%(label)s: geometry encloses no area (%(reason)s); ST_MakeValid would "
                    "leave no polygon of it",
                    label="boundary",
                    reason=reason,
                )
            if area <= 0:
                raise BoundaryImportError(
                    "%(label)s: geometry encloses no area; ST_MakeValid would leave no "
                    "polygon of it",
                    label="boundary",
                )
            if reason is None:
                return geojson, None
            before_m2, after_m2, parts = store.zones.boundary_areas(db.session, geojson)
    except DBAPIError as exc:
        problem = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise BoundaryImportError(
            "%(label)s: geometry rejected by PostGIS: %(problem)s",
            label="boundary",
            problem=problem,
        ) from None
    repair = {
        "reason": reason,
        "area_change": round(after_m2 - before_m2, 1),
        "area_before_m2": round(before_m2, 1),
        "area_after_m2": round(after_m2, 1),
        "parts": parts,
    }
    return geojson, repair


def _answer(unit_id: int, repair: dict[str, Any] | None) -> dict[str, Any]:
    """Return the answer of a change: the UNIT, the repair and the sibling overlaps."""
    row = store.zones.unit_details(db.session, unit_id)
    overlaps = [
        {"unit_id": o.unit_id, "name": o.name, "area_m2": round(o.area_m2, 1)}
        for o in store.zones.sibling_overlaps(db.session, unit_id, OVERLAP_MIN_M2)
    ]
    return {"unit": unit_json(row), "repair": repair, "overlaps": overlaps}


def _audited(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return unit fields as an audit row stores them (the boundary as GeoJSON)."""
    return {
        key: json.loads(value) if key == "boundary" and isinstance(value, str) else value
        for key, value in values.items()
    }


def create(user: User, body: Any) -> dict[str, Any]:
    """Add a unit below a unit in the account's scope, audited, in the caller's transaction.

    Args:
        user: the admin making the change.
        body: `{name, kind, parent_id, boundary?}`.

    Returns:
        `{"unit": UNIT, "repair": null | {...}, "overlaps": [...]}`.

    Raises:
        AdminError: a field breaks a rule (400), the parent is outside the scope (403) or
            the name is taken under that parent (409); BoundaryImportError: the boundary
            breaks a rule of the import (400).
    """
    body = _body(body, FIELDS)
    for field in ("name", "kind"):
        if field not in body:
            raise invalid(field, Message("is required"))
    store.zones.lock_unit_tree(db.session)
    name, kind = _name(body["name"]), _kind(body["kind"])
    parent = _parent(user, body.get("parent_id"))
    _check_rank(kind, parent, [])
    parent_id = parent.id if parent is not None else None
    _check_unique(name, kind, parent_id, None)
    geojson, repair = _boundary(body.get("boundary"))
    unit_id = store.zones.create_unit(db.session, name, kind, parent_id, geojson)
    after = {"name": name, "kind": kind, "parent_id": parent_id}
    if geojson is not None:
        after["boundary"] = store.zones.unit_boundary_geojson(db.session, unit_id)
    audit.record("unit.create", "unit", unit_id, None, _audited(after))
    log.info("%s created %s %d (%s) under %s", user.username, kind, unit_id, name, parent_id)
    return _answer(unit_id, repair)


def update(user: User, unit_id: int, body: Any) -> dict[str, Any]:
    """Rename, re-kind, move or redraw a unit in scope, audited, in the caller's transaction.

    Args:
        user: the admin making the change.
        unit_id: the unit.
        body: any of `{name, kind, parent_id, boundary}`; `boundary: null` removes it.

    Returns:
        `{"unit": UNIT, "repair": null | {...}, "overlaps": [...]}`.

    Raises:
        AdminError: unknown (404); the unit or its new parent is outside the scope, or the
            unit is the top of the account's scope and would move (403); a field breaks a
            rule, or the unit would move below itself (400); the name is taken (409).
        BoundaryImportError: the boundary breaks a rule of the import (400).
    """
    body = _body(body, FIELDS)
    store.zones.lock_unit_tree(db.session)
    row = _target(user, unit_id)
    name = _name(body["name"]) if "name" in body else row.name
    kind = _kind(body["kind"]) if "kind" in body else row.kind
    parent_id = row.parent_id
    if "parent_id" in body and body["parent_id"] != row.parent_id:
        if unit_id == user.unit_id:
            raise UnitForbiddenError(
                "%(argument)s: %(rule)s",
                argument="parent_id",
                rule=Message(
                    "unit %(unit_id)s is the top of your scope; it cannot be moved",
                    unit_id=unit_id,
                ),
            )
        parent = _parent(user, body["parent_id"])
        if parent is not None and unit_id in store.scope.unit_ancestors(db.session, parent.id):
            raise invalid(
                "parent_id",
                Message(
                    "unit %(parent_id)s is unit %(unit_id)s or below it; a unit cannot move "
                    "below itself",
                    parent_id=parent.id,
                    unit_id=unit_id,
                ),
            )
        parent_id = parent.id if parent is not None else None
    else:
        parent = (
            None if row.parent_id is None else store.zones.unit_details(db.session, row.parent_id)
        )
    if kind != row.kind or parent_id != row.parent_id:
        _check_rank(kind, parent, store.zones.child_kinds(db.session, unit_id))
    if (name, kind, parent_id) != (row.name, row.kind, row.parent_id):
        _check_unique(name, kind, parent_id, unit_id)
    before: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    for field, value in (("name", name), ("kind", kind), ("parent_id", parent_id)):
        if value != getattr(row, field):
            before[field], changes[field] = getattr(row, field), value
    repair = None
    if "boundary" in body:
        geojson, repair = _boundary(body["boundary"])
        before["boundary"] = row.boundary_geojson
        changes["boundary"] = geojson
    if changes:
        store.zones.update_unit(db.session, unit_id, changes)
        after = dict(changes)
        if "boundary" in after:
            after["boundary"] = store.zones.unit_boundary_geojson(db.session, unit_id)
            if after["boundary"] == before["boundary"]:
                del after["boundary"], before["boundary"]
        if after:
            audit.record("unit.update", "unit", unit_id, _audited(before), _audited(after))
            log.info("%s changed unit %d: %s", user.username, unit_id, ", ".join(after))
    return _answer(unit_id, repair)


def delete(user: User, unit_id: int) -> None:
    """Delete a unit in scope that nothing refers to any more, audited.

    Raises:
        AdminError: unknown (404), outside the scope (403), or still has units below it,
            people, staff accounts or patrol assignments (409, naming what is left).
    """
    store.zones.lock_unit_tree(db.session)
    row = _target(user, unit_id)
    left = store.zones.unit_contents(db.session, unit_id)
    if any(left.values()):
        parts = {
            "units": Message("%(count)s units below", count=left["units"]),
            "people": Message("%(count)s people", count=left["people"]),
            "users": Message("%(count)s staff accounts", count=left["users"]),
            "patrol_assignments": Message(
                "%(count)s patrol assignments", count=left["patrol_assignments"]
            ),
        }
        what = joined([parts[key] for key, count in left.items() if count], ", ")
        raise UnitNotEmptyError(
            "%(argument)s: %(rule)s",
            left=left,
            argument="unit_id",
            rule=Message("unit %(unit_id)s is not empty: %(what)s", unit_id=unit_id, what=what),
        )
    before = {"name": row.name, "kind": row.kind, "parent_id": row.parent_id}
    if row.boundary_geojson is not None:
        before["boundary"] = row.boundary_geojson
    store.zones.delete_unit(db.session, unit_id)
    audit.record("unit.delete", "unit", unit_id, _audited(before), None)
    log.info("%s deleted unit %d (%s)", user.username, unit_id, row.name)


def export(user: User) -> dict[str, Any]:
    """Return the units in scope with boundaries as a FeatureCollection in the import's format.

    A feature's `parent` is the parent's name when that name is unique in the file and
    comes earlier in it, else the parent's id; importing the file again matches every unit
    by (parent, kind, name) and stores the same coordinates.
    """
    rows = store.zones.units_for_export(db.session, user.unit_id)
    names: dict[str, int] = {}
    for row in rows:
        names[row.name] = names.get(row.name, 0) + 1
    exported: set[int] = set()
    features = []
    for row in rows:
        parent: str | int | None = row.parent_id
        if row.parent_id in exported and names.get(row.parent_name) == 1:
            parent = row.parent_name
        properties: dict[str, Any] = {"name": row.name, "kind": row.kind, "unit_id": row.id}
        if parent is not None:
            properties["parent"] = parent
        features.append(
            {
                "type": "Feature",
                "id": row.id,
                "properties": properties,
                "geometry": json.loads(row.geojson),
            }
        )
        exported.add(row.id)
    return {"type": "FeatureCollection", "features": features}
