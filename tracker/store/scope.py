"""Scope: which people and units a staff account may see.

Every read for staff goes through these clauses; the server enforces scope in SQL, not
in the page.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    CTE,
    Select,
    exists,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.orm import Session

from ..models import (
    Person,
    Shift,
    Unit,
    User,
)


def unit_subtree(root_id: int) -> CTE:
    """Return a recursive CTE of the ids of a unit and every unit below it.

    Args:
        root_id: the top unit.

    Returns:
        A CTE with one column, `id`.
    """
    units = Unit.__table__
    tree = select(units.c.id).where(units.c.id == root_id).cte("unit_subtree", recursive=True)
    return tree.union_all(select(units.c.id).where(units.c.parent_id == tree.c.id))


def visible_people(user: User) -> Select[Any]:
    """Return a select of the ids of the people a staff account may see.

    Args:
        user: the staff account; admins and accounts without a unit see everyone.

    Returns:
        A select() of `people.id`.
    """
    stmt = select(Person.id)
    if user.unit_id is not None:
        subtree = unit_subtree(user.unit_id)
        stmt = stmt.where(Person.unit_id.in_(select(subtree.c.id)))
    return stmt


def on_duty_clause(person_id: Any) -> Any:
    """Return an EXISTS that is true while the person in `person_id` has an open shift."""
    return exists().where(Shift.person_id == person_id, Shift.ended_at.is_(None))


def in_scope(user: User, person_id: Any) -> Any:
    """Return a filter keeping rows whose person the account may see.

    Accounts that see everyone get no filter at all, so their queries never pay for an
    IN over every person.

    Args:
        user: the staff account.
        person_id: the column holding a person id.

    Returns:
        A SQL boolean expression.
    """
    if user.unit_id is None:
        return true()
    return person_id.in_(visible_people(user))


def can_see_person(session: Session, user: User, person_id: int) -> bool:
    """Return whether the person exists and is in the account's scope."""
    stmt = visible_people(user).where(Person.id == person_id)
    return session.execute(stmt).first() is not None


def bbox_filter(geom: Any, bbox: tuple[float, float, float, float]) -> Any:
    """Return a GiST-backed filter keeping geometries that intersect a lon/lat box."""
    west, south, east, north = bbox
    return geom.op("&&")(func.ST_MakeEnvelope(west, south, east, north, 4326))


def unit_ancestors(session: Session, unit_id: int) -> list[int]:
    """Return a unit's id and the ids of every unit above it, nearest first.

    Args:
        session: a session.
        unit_id: the unit to start from.

    Returns:
        The ids, from the unit itself up to its root.
    """
    units = Unit.__table__
    chain = (
        select(units.c.id, units.c.parent_id, literal(0).label("depth"))
        .where(units.c.id == unit_id)
        .cte("unit_chain", recursive=True)
    )
    chain = chain.union_all(
        select(units.c.id, units.c.parent_id, (chain.c.depth + 1).label("depth")).where(
            units.c.id == chain.c.parent_id
        )
    )
    return list(session.execute(select(chain.c.id).order_by(chain.c.depth)).scalars())


def visible_units(user: User) -> Select[Any]:
    """Return a select of the units a staff account may see, with boundary and label point.

    Args:
        user: the staff account; admins and accounts without a unit see every unit.

    Returns:
        A select() of id, name, kind, parent_id, boundary_geojson and label_geojson
        (a point inside the boundary), both GeoJSON text or None, and the unit's own
        tracking policy (tracking_policy, duty_start, duty_end, live_shows_off_duty; None
        where it inherits).
    """
    stmt = select(
        Unit.id,
        Unit.name,
        Unit.kind,
        Unit.parent_id,
        func.ST_AsGeoJSON(Unit.boundary, 6).label("boundary_geojson"),
        func.ST_AsGeoJSON(func.ST_PointOnSurface(Unit.boundary), 6).label("label_geojson"),
        Unit.tracking_policy,
        Unit.duty_start,
        Unit.duty_end,
        Unit.live_shows_off_duty,
    ).order_by(Unit.id)
    if user.unit_id is not None:
        subtree = unit_subtree(user.unit_id)
        stmt = stmt.where(Unit.id.in_(select(subtree.c.id)))
    return stmt


def unit_parents(session: Session) -> dict[int, int | None]:
    """Return every unit's parent, so the live feed can route people to scope rooms.

    Args:
        session: a session.

    Returns:
        A mapping of unit id to parent unit id (None for a root).
    """
    return {row.id: row.parent_id for row in session.execute(select(Unit.id, Unit.parent_id))}


def unit_in_scope(session: Session, user: User, unit_id: int) -> bool:
    """Return whether the unit exists and lies in the account's scope."""
    stmt = select(Unit.id).where(Unit.id == unit_id)
    if user.unit_id is not None:
        stmt = stmt.where(Unit.id.in_(select(unit_subtree(user.unit_id).c.id)))
    return session.execute(stmt).first() is not None


def units_named_or_numbered(session: Session, ref: Any) -> list[int]:
    """Return the ids of units whose id (an int) or name (a string) is `ref`."""
    if isinstance(ref, bool):
        return []
    if isinstance(ref, int):
        return list(session.execute(select(Unit.id).where(Unit.id == ref)).scalars())
    if isinstance(ref, str):
        return list(session.execute(select(Unit.id).where(Unit.name == ref)).scalars())
    return []
