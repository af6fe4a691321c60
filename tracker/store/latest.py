"""The live map's reads: everyone's newest fix, and the people behind a batch of fixes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    bindparam,
    cast,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import BigInteger, Float, Integer, Numeric

from ..models import (
    LatestPosition,
    Person,
    User,
)
from .scope import bbox_filter, in_scope, on_duty_clause


def _newest_lat_lon() -> tuple[Any, Any]:
    """Return the lat and lon columns of a person's newest fix (latest_positions.geom)."""
    return (
        func.ST_Y(LatestPosition.geom).label("lat"),
        func.ST_X(LatestPosition.geom).label("lon"),
    )


def _person_with_fix(ts: Any = None) -> tuple[Any, ...]:
    """Return the columns that say who a person is and when (`ts`) and where their newest fix is."""
    return (
        Person.id.label("person_id"),
        Person.name,
        Person.role,
        Person.unit_id,
        LatestPosition.ts if ts is None else ts,
        *_newest_lat_lon(),
    )


def _latest_select(
    user: User, bbox: tuple[float, float, float, float] | None, ts: Any
) -> Select[Any]:
    """Return the select of each visible person's newest fix, with `ts` as its time column."""
    on_duty = on_duty_clause(Person.id)
    stmt = (
        select(
            *_person_with_fix(ts),
            LatestPosition.accuracy_m,
            LatestPosition.speed_mps,
            LatestPosition.heading_deg,
            LatestPosition.battery,
            on_duty.label("on_duty"),
        )
        .join(Person, Person.id == LatestPosition.person_id)
        .where(in_scope(user, Person.id))
        .order_by(Person.id)
    )
    if bbox is not None:
        stmt = stmt.where(bbox_filter(LatestPosition.geom, bbox))
    return stmt


def latest_positions(user: User, bbox: tuple[float, float, float, float] | None) -> Select[Any]:
    """Return a select of each visible person's newest fix, with who they are.

    Args:
        user: the staff account whose scope applies.
        bbox: optional (west, south, east, north) in degrees.

    Returns:
        A select() of rows with person and fix columns, lon, lat and on_duty.
    """
    return _latest_select(user, bbox, LatestPosition.ts)


def _epoch_ms(column: Any) -> Any:
    """Return a timestamptz expression as whole milliseconds since 1970 (a bigint)."""
    return cast(func.round(func.extract("epoch", column) * 1000), BigInteger)


def _rounded(column: Any, decimals: int) -> Any:
    """Return a double precision expression rounded to `decimals` decimal places."""
    return cast(func.round(cast(column, Numeric), decimals), Float)


# Degrees of latitude and longitude to 6 decimals: about 0.1 m, far below a phone's accuracy.
SNAPSHOT_DEGREE_DECIMALS = 6


def live_snapshot_columns(
    user: User,
    bbox: tuple[float, float, float, float] | None,
    received_since: datetime | None = None,
) -> Select[Any]:
    """Return a select of one row: each visible person's newest fix, one array per column.

    The live map's first load reads 20,000 people: twelve arrays cost the driver a fraction
    of 20,000 rows. The fix time is whole epoch milliseconds (`ts_ms`, what the page
    wants), coordinates have 6 decimals (about 0.1 m) and the heading whole degrees (what
    the map draws), which keeps the answer short. Every array holds the people in the same
    order, by person id; with no people each array is NULL.

    Args:
        user: the staff account whose scope applies.
        bbox: optional (west, south, east, north) in degrees.
        received_since: keep only the fixes the server received at or after this time.

    Returns:
        A select() of one row with the arrays person_id, name, role, unit_id, ts_ms, lat,
        lon, accuracy, speed, heading, battery and on_duty.
    """
    people = (
        select(
            Person.id.label("person_id"),
            Person.name,
            Person.role,
            Person.unit_id,
            _epoch_ms(LatestPosition.ts).label("ts_ms"),
            _rounded(func.ST_Y(LatestPosition.geom), SNAPSHOT_DEGREE_DECIMALS).label("lat"),
            _rounded(func.ST_X(LatestPosition.geom), SNAPSHOT_DEGREE_DECIMALS).label("lon"),
            LatestPosition.accuracy_m.label("accuracy"),
            LatestPosition.speed_mps.label("speed"),
            cast(func.round(LatestPosition.heading_deg), Integer).label("heading"),
            LatestPosition.battery,
            on_duty_clause(Person.id).label("on_duty"),
        )
        .join(Person, Person.id == LatestPosition.person_id)
        .where(in_scope(user, Person.id))
        # Each aggregate below reads the rows in this order, in the same single pass.
        .order_by(Person.id)
    )
    if bbox is not None:
        people = people.where(bbox_filter(LatestPosition.geom, bbox))
    if received_since is not None:
        people = people.where(LatestPosition.received_at >= received_since)
    rows = people.subquery()
    return select(*(func.array_agg(column).label(column.key) for column in rows.c))


def database_now() -> Select[Any]:
    """Return a select of the database's clock: the start of the current transaction."""
    return select(func.now())


def people_on_map(session: Session, person_ids: Sequence[int]) -> list[Any]:
    """Return who each person is, for the live feed: one query for a whole push.

    Args:
        session: a session.
        person_ids: the people whose positions are about to be pushed.

    Returns:
        Rows of id, name, role, unit_id and on_duty; people that no longer exist are absent.
    """
    if not person_ids:
        return []
    on_duty = on_duty_clause(Person.id)
    # One array parameter instead of one bound parameter per id: pushes hold 20,000 ids.
    ids = bindparam("person_ids", list(person_ids), type_=ARRAY(Integer))
    stmt = select(
        Person.id, Person.name, Person.role, Person.unit_id, on_duty.label("on_duty")
    ).where(Person.id == func.any(ids))
    return list(session.execute(stmt).all())
