"""Every SQL and PostGIS query of the tracker.

Functions take a SQLAlchemy session (or connection) and return rows, model objects or
select() statements that callers may filter further. All values travel as bound
parameters; no SQL is ever assembled from strings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CTE,
    Select,
    and_,
    bindparam,
    exists,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.types import REAL, DateTime, Float, Integer

from .models import Device, LatestPosition, Person, Position, Shift, Unit, User

log = logging.getLogger(__name__)


# --- positions: the ingest hot path -------------------------------------------------

# One round trip stores a whole group commit: the arrays are unnested into rows, new
# fixes go into the partitioned table (a resend of a (person, ts, device) is skipped by
# the primary key), and each person's newest new fix replaces latest_positions only when
# it is newer than what is there. RETURNING tells the writer exactly which rows were new.
_INSERT_POSITIONS = text(
    """
WITH incoming AS (
    SELECT * FROM unnest(
        CAST(:person_ids AS integer[]), CAST(:device_ids AS integer[]),
        CAST(:ts AS timestamptz[]), CAST(:lons AS float8[]), CAST(:lats AS float8[]),
        CAST(:accuracy_m AS real[]), CAST(:altitude_m AS real[]), CAST(:speed_mps AS real[]),
        CAST(:heading_deg AS real[]), CAST(:battery AS real[])
    ) AS t(person_id, device_id, ts, lon, lat,
           accuracy_m, altitude_m, speed_mps, heading_deg, battery)
), inserted AS (
    INSERT INTO positions (person_id, device_id, ts, received_at, geom,
                           accuracy_m, altitude_m, speed_mps, heading_deg, battery)
    SELECT person_id, device_id, ts, now(), ST_SetSRID(ST_MakePoint(lon, lat), 4326),
           accuracy_m, altitude_m, speed_mps, heading_deg, battery
    FROM incoming
    ON CONFLICT DO NOTHING
    RETURNING person_id, device_id, ts, received_at, geom,
              accuracy_m, altitude_m, speed_mps, heading_deg, battery
), newest AS (
    SELECT DISTINCT ON (person_id) * FROM inserted ORDER BY person_id, ts DESC
), replaced AS (
    INSERT INTO latest_positions AS lp (person_id, device_id, ts, received_at, geom,
                                        accuracy_m, altitude_m, speed_mps, heading_deg, battery)
    SELECT person_id, device_id, ts, received_at, geom,
           accuracy_m, altitude_m, speed_mps, heading_deg, battery
    FROM newest
    ON CONFLICT (person_id) DO UPDATE SET
        device_id = EXCLUDED.device_id, ts = EXCLUDED.ts, received_at = EXCLUDED.received_at,
        geom = EXCLUDED.geom, accuracy_m = EXCLUDED.accuracy_m,
        altitude_m = EXCLUDED.altitude_m, speed_mps = EXCLUDED.speed_mps,
        heading_deg = EXCLUDED.heading_deg, battery = EXCLUDED.battery
    WHERE lp.ts < EXCLUDED.ts
)
SELECT device_id, ts FROM inserted
"""
).bindparams(
    bindparam("person_ids", type_=ARRAY(Integer)),
    bindparam("device_ids", type_=ARRAY(Integer)),
    bindparam("ts", type_=ARRAY(DateTime(timezone=True))),
    bindparam("lons", type_=ARRAY(Float)),
    bindparam("lats", type_=ARRAY(Float)),
    bindparam("accuracy_m", type_=ARRAY(REAL)),
    bindparam("altitude_m", type_=ARRAY(REAL)),
    bindparam("speed_mps", type_=ARRAY(REAL)),
    bindparam("heading_deg", type_=ARRAY(REAL)),
    bindparam("battery", type_=ARRAY(REAL)),
)


@dataclass(frozen=True, slots=True)
class PositionRow:
    """A fix ready to store: who sent it and its values in stored units."""

    person_id: int
    device_id: int
    ts: datetime
    lat: float
    lon: float
    accuracy_m: float | None = None
    altitude_m: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None
    battery: float | None = None


def insert_positions(
    conn: Connection | Session, rows: Sequence[PositionRow]
) -> set[tuple[int, datetime]]:
    """Store new positions and move latest_positions forward, in the caller's transaction.

    Args:
        conn: a connection or session inside a transaction.
        rows: fixes to store; may contain fixes stored before.

    Returns:
        The (device_id, ts) of the rows that were new; the others were duplicates.
    """
    if not rows:
        return set()
    params = {
        "person_ids": [r.person_id for r in rows],
        "device_ids": [r.device_id for r in rows],
        "ts": [r.ts for r in rows],
        "lons": [r.lon for r in rows],
        "lats": [r.lat for r in rows],
        "accuracy_m": [r.accuracy_m for r in rows],
        "altitude_m": [r.altitude_m for r in rows],
        "speed_mps": [r.speed_mps for r in rows],
        "heading_deg": [r.heading_deg for r in rows],
        "battery": [r.battery for r in rows],
    }
    result = conn.execute(_INSERT_POSITIONS, params)
    return {(device_id, ts) for device_id, ts in result}


def touch_devices(conn: Connection | Session, device_ids: Iterable[int]) -> set[int]:
    """Mark devices as seen now and return those that are not revoked.

    Args:
        conn: a connection or session inside a transaction.
        device_ids: the devices that sent the rows about to be stored.

    Returns:
        The ids of the devices that may still store positions.
    """
    stmt = (
        update(Device)
        .where(Device.id.in_(sorted(set(device_ids))), Device.revoked_at.is_(None))
        .values(last_seen_at=func.now())
        .returning(Device.id)
    )
    return set(conn.execute(stmt).scalars())


def ensure_partition(conn: Connection | Session, day: date) -> bool:
    """Create the positions partition for one UTC day if it is missing.

    Args:
        conn: a connection or session; the caller commits.
        day: the UTC calendar day.

    Returns:
        True if the partition was created now.
    """
    return bool(conn.execute(select(func.tracker_ensure_partition(day))).scalar())


def partition_days(conn: Connection | Session) -> set[date]:
    """Return the UTC days that have a positions partition.

    Args:
        conn: a connection or session.

    Returns:
        The set of days.
    """
    stmt = text(
        """
        SELECT to_date(substring(c.relname FROM 'positions_p(\\d{8})$'), 'YYYYMMDD')
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'positions'::regclass
        """
    )
    return {day for (day,) in conn.execute(stmt) if day is not None}


# --- devices and people -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """The device and person behind a token."""

    device_id: int
    person_id: int


def device_by_token_hash(session: Session, token_hash: str) -> DeviceIdentity | None:
    """Return the active device with this token hash, if any.

    Args:
        session: a session.
        token_hash: the SHA-256 hex digest of the token.

    Returns:
        The device identity, or None for an unknown, revoked or inactive one.
    """
    row = session.execute(
        select(Device.id, Device.person_id)
        .join(Person, Person.id == Device.person_id)
        .where(
            Device.token_hash == token_hash,
            Device.revoked_at.is_(None),
            Person.active.is_(True),
        )
    ).first()
    return DeviceIdentity(device_id=row.id, person_id=row.person_id) if row else None


def add_unit(
    session: Session, name: str, kind: str, parent_id: int | None, boundary_wkt: str | None
) -> Unit:
    """Add a unit; the boundary, if given, is WKT in EPSG:4326 coerced to MultiPolygon."""
    unit = Unit(name=name, kind=kind, parent_id=parent_id)
    if boundary_wkt is not None:
        unit.boundary = func.ST_Multi(func.ST_GeomFromText(boundary_wkt, 4326))
    session.add(unit)
    session.flush()
    return unit


def add_person(
    session: Session, name: str, role: str, unit_id: int | None, phone: str | None
) -> Person:
    """Add a person."""
    person = Person(name=name, role=role, unit_id=unit_id, phone=phone)
    session.add(person)
    session.flush()
    return person


def add_device(session: Session, person_id: int, label: str | None, token_hash: str) -> Device:
    """Add a device with the hash of its freshly issued token."""
    device = Device(person_id=person_id, label=label, token_hash=token_hash)
    session.add(device)
    session.flush()
    return device


def revoke_device(session: Session, device_id: int) -> bool:
    """Revoke a device; return False if it does not exist or was already revoked."""
    result = session.execute(
        update(Device)
        .where(Device.id == device_id, Device.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return result.rowcount == 1


def add_user(
    session: Session, username: str, password_hash: str, role: str, unit_id: int | None
) -> User:
    """Add a staff account."""
    user = User(username=username, password_hash=password_hash, role=role, unit_id=unit_id)
    session.add(user)
    session.flush()
    return user


def user_by_username(session: Session, username: str) -> User | None:
    """Return the staff account with this user name."""
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


# --- shifts -------------------------------------------------------------------------


def open_shift(session: Session, person_id: int) -> Shift:
    """Return the person's open shift, starting one if they are off duty."""
    shift = session.execute(
        select(Shift).where(Shift.person_id == person_id, Shift.ended_at.is_(None))
    ).scalar_one_or_none()
    if shift is None:
        shift = Shift(person_id=person_id)
        session.add(shift)
        session.flush()
        session.refresh(shift)
    return shift


def close_shift(session: Session, person_id: int) -> Shift | None:
    """End the person's open shift, if any, and return it."""
    shift = session.execute(
        select(Shift)
        .where(Shift.person_id == person_id, Shift.ended_at.is_(None))
        .with_for_update()
    ).scalar_one_or_none()
    if shift is not None:
        shift.ended_at = session.execute(select(func.now())).scalar_one()
        session.flush()
    return shift


# --- scope: what a staff account may see ------------------------------------------


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
    if user.role != "admin" and user.unit_id is not None:
        subtree = unit_subtree(user.unit_id)
        stmt = stmt.where(Person.unit_id.in_(select(subtree.c.id)))
    return stmt


def can_see_person(session: Session, user: User, person_id: int) -> bool:
    """Return whether the person exists and is in the account's scope."""
    stmt = visible_people(user).where(Person.id == person_id)
    return session.execute(stmt).first() is not None


# --- reads --------------------------------------------------------------------------


def bbox_filter(geom: Any, bbox: tuple[float, float, float, float]) -> Any:
    """Return a GiST-backed filter keeping geometries that intersect a lon/lat box."""
    west, south, east, north = bbox
    return geom.op("&&")(func.ST_MakeEnvelope(west, south, east, north, 4326))


def latest_positions(user: User, bbox: tuple[float, float, float, float] | None) -> Select[Any]:
    """Return a select of each visible person's newest fix, with who they are.

    Args:
        user: the staff account whose scope applies.
        bbox: optional (west, south, east, north) in degrees.

    Returns:
        A select() of rows with person and fix columns, lon, lat and on_duty.
    """
    on_duty = exists().where(Shift.person_id == Person.id, Shift.ended_at.is_(None))
    stmt = (
        select(
            Person.id.label("person_id"),
            Person.name,
            Person.role,
            Person.unit_id,
            LatestPosition.ts,
            LatestPosition.accuracy_m,
            LatestPosition.speed_mps,
            LatestPosition.heading_deg,
            LatestPosition.battery,
            func.ST_X(LatestPosition.geom).label("lon"),
            func.ST_Y(LatestPosition.geom).label("lat"),
            on_duty.label("on_duty"),
        )
        .join(Person, Person.id == LatestPosition.person_id)
        .where(Person.id.in_(visible_people(user)))
        .order_by(Person.id)
    )
    if bbox is not None:
        stmt = stmt.where(bbox_filter(LatestPosition.geom, bbox))
    return stmt


@dataclass(frozen=True, slots=True)
class Track:
    """A person's positions between two instants, as one line."""

    geometry_geojson: str | None
    points: int
    distance_m: float
    started_at: datetime | None
    ended_at: datetime | None


def track(session: Session, person_id: int, start: datetime, end: datetime) -> Track:
    """Return a person's track in time order, with its geodesic length.

    Args:
        session: a session.
        person_id: whose track.
        start: first instant included.
        end: first instant excluded.

    Returns:
        The track; its geometry is None when there are no positions.
    """
    line = func.ST_MakeLine(aggregate_order_by(Position.geom, Position.ts))
    row = session.execute(
        select(
            func.ST_AsGeoJSON(line).label("geojson"),
            func.count().label("points"),
            func.coalesce(func.ST_Length(func.geography(line)), 0).label("distance_m"),
            func.min(Position.ts).label("started_at"),
            func.max(Position.ts).label("ended_at"),
        ).where(and_(Position.person_id == person_id, Position.ts >= start, Position.ts < end))
    ).one()
    return Track(row.geojson, row.points, float(row.distance_m), row.started_at, row.ended_at)


def count_positions(session: Session, person_id: int | None = None) -> int:
    """Return how many positions are stored, for everyone or one person."""
    stmt = select(func.count()).select_from(Position)
    if person_id is not None:
        stmt = stmt.where(Position.person_id == person_id)
    return session.execute(stmt).scalar_one()


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


def person_unit(session: Session, person_id: int) -> int | None:
    """Return the unit a person belongs to, if any."""
    return session.execute(select(Person.unit_id).where(Person.id == person_id)).scalar()
