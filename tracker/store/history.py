"""History queries: a person's fixes, who was near a point, replay data; all scoped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..models import Person, Position, Unit, User
from .scope import bbox_filter, in_scope


def fixes(user: User, person_id: int, start: datetime, end: datetime) -> Select[Any]:
    """Return a select of a visible person's fixes in time order.

    Args:
        user: the staff account; a person outside its scope gives no rows.
        person_id: whose fixes.
        start: first instant included.
        end: first instant excluded.

    Returns:
        A select() of ts, lat, lon, accuracy_m, speed_mps.
    """
    return (
        select(
            Position.ts,
            func.ST_Y(Position.geom).label("lat"),
            func.ST_X(Position.geom).label("lon"),
            Position.accuracy_m,
            Position.speed_mps,
        )
        .where(
            Position.person_id == person_id,
            Position.ts >= start,
            Position.ts < end,
            in_scope(user, Position.person_id),
        )
        .order_by(Position.ts)
    )


def _degrees_around(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """Return a lon/lat box that surely holds every point within radius_m of (lat, lon)."""
    # 1 % and 1 m of margin over a spherical degree; the exact test is ST_DWithin.
    dlat = (radius_m * 1.01 + 1) / 110_574
    dlon = (
        dlat * 110_574 / (111_320 * max(math.cos(math.radians(min(abs(lat) + dlat, 89.9))), 1e-3))
    )
    return max(lon - dlon, -180), max(lat - dlat, -90), min(lon + dlon, 180), min(lat + dlat, 90)


def people_near(
    user: User,
    lat: float,
    lon: float,
    radius_m: float,
    start: datetime,
    end: datetime,
    max_accuracy_m: float | None = None,
) -> Select[Any]:
    """Return a select of the visible people who were within radius_m of a point.

    The time bounds on `ts` (the partition key) limit the read to the window's
    partitions; a lon/lat box on the GiST index narrows the rows before the exact
    geodesic ST_DWithin on geography.

    Args:
        user: the staff account; people outside its scope never appear.
        lat: the point's latitude.
        lon: the point's longitude.
        radius_m: how near, geodesic metres.
        start: first instant included.
        end: first instant excluded.
        max_accuracy_m: if given, fixes worse than this (the history accuracy rule) are
            not counted.

    Returns:
        A select() of person_id, name, role, entered, left (the first and last ts within
        the radius) and closest_m, closest first.
    """
    point = func.geography(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326))
    here = func.geography(Position.geom)
    conditions = [
        Position.ts >= start,
        Position.ts < end,
        bbox_filter(Position.geom, _degrees_around(lat, lon, radius_m)),
        func.ST_DWithin(here, point, radius_m),
        in_scope(user, Position.person_id),
    ]
    if max_accuracy_m is not None:
        conditions.append(Position.accuracy_m.is_(None) | (Position.accuracy_m <= max_accuracy_m))
    near = (
        select(
            Position.person_id,
            func.min(Position.ts).label("entered"),
            func.max(Position.ts).label("left"),
            func.min(func.ST_Distance(here, point)).label("closest_m"),
        )
        .where(*conditions)
        .group_by(Position.person_id)
        .subquery()
    )
    return (
        select(
            near.c.person_id,
            Person.name,
            Person.role,
            near.c.entered,
            near.c.left,
            near.c.closest_m,
        )
        .join(Person, Person.id == near.c.person_id)
        .order_by(near.c.closest_m, near.c.person_id)
    )


def replay_people(
    user: User, unit_id: int | None = None, person_ids: Sequence[int] | None = None
) -> Select[Any]:
    """Return a select of the visible people chosen for a replay.

    Args:
        user: the staff account; the choice is always intersected with its scope.
        unit_id: everyone in this unit and the units below it.
        person_ids: or these people.

    Returns:
        A select() of id, name, role, by id.
    """
    stmt = select(Person.id, Person.name, Person.role).where(in_scope(user, Person.id))
    if unit_id is not None:
        # A CTE of its own name: in_scope() may already hold scope.unit_subtree().
        units = Unit.__table__
        chosen = select(units.c.id).where(units.c.id == unit_id).cte("chosen_units", recursive=True)
        chosen = chosen.union_all(select(units.c.id).where(units.c.parent_id == chosen.c.id))
        stmt = stmt.where(Person.unit_id.in_(select(chosen.c.id)))
    if person_ids is not None:
        stmt = stmt.where(Person.id.in_(list(person_ids)))
    return stmt.order_by(Person.id)


def replay_fixes(person_ids: Sequence[int], start: datetime, end: datetime) -> Select[Any]:
    """Return a select of the fixes of people (already scoped) in a window.

    Args:
        person_ids: whose fixes; the caller took them from replay_people().
        start: first instant included.
        end: first instant excluded.

    Returns:
        A select() of person_id, ts, lat, lon, accuracy_m, speed_mps by person and time.
    """
    return (
        select(
            Position.person_id,
            Position.ts,
            func.ST_Y(Position.geom).label("lat"),
            func.ST_X(Position.geom).label("lon"),
            Position.accuracy_m,
            Position.speed_mps,
        )
        .where(Position.person_id.in_(list(person_ids)), Position.ts >= start, Position.ts < end)
        .order_by(Position.person_id, Position.ts)
    )


def grid_at(session: Session, lat: float, lon: float) -> tuple[int, str] | None:
    """Return the id and name of the smallest grid that covers a point, or None.

    Args:
        session: a session.
        lat: the point's latitude.
        lon: the point's longitude.

    Returns:
        (grid id, grid name), or None outside every grid.
    """
    point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
    row = session.execute(
        select(Unit.id, Unit.name)
        .where(Unit.kind == "grid", func.ST_Covers(Unit.boundary, point))
        .order_by(func.ST_Area(Unit.boundary))
        .limit(1)
    ).first()
    return (row.id, row.name) if row else None
