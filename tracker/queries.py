"""Every SQL and PostGIS query of the tracker.

Functions take a SQLAlchemy session (or connection) and return rows, model objects or
select() statements that callers may filter further. All values travel as bound
parameters; no SQL is ever assembled from strings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    CTE,
    Select,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.types import Integer

from .models import (
    Alert,
    Device,
    Incident,
    IncidentEvent,
    LatestPosition,
    Person,
    Position,
    Shift,
    StaffSession,
    Task,
    Unit,
    User,
    WatchState,
)

log = logging.getLogger(__name__)


# --- positions: the ingest hot path -------------------------------------------------

# One statement, one round trip, stores a whole group commit: the arrays are unnested into
# rows; devices are marked as seen, and revoked ones found, in the same statement; new fixes
# go into the partitioned table (a resend of a (person, ts, device) is skipped by the
# primary key); each person's newest new fix replaces latest_positions only when it is
# newer than what is there. Only the rows that were NOT stored come back (duplicates and
# rows of revoked devices or deactivated people), which under normal load is almost nothing
# to transfer.
# Arrays travel as '{...}' text and times as integer microseconds since the epoch: both
# are much cheaper for psycopg2 to send than lists of Python objects, and exact.
_STORE_POSITIONS = text(
    """
WITH incoming AS (
    SELECT person_id, device_id, ts_us,
           timestamptz 'epoch' + ts_us * interval '1 microsecond' AS ts,
           lon, lat, accuracy_m, altitude_m, speed_mps, heading_deg, battery
    FROM unnest(
        CAST(:person_ids AS integer[]), CAST(:device_ids AS integer[]),
        CAST(:ts_us AS bigint[]), CAST(:lons AS float8[]), CAST(:lats AS float8[]),
        CAST(:accuracy_m AS real[]), CAST(:altitude_m AS real[]), CAST(:speed_mps AS real[]),
        CAST(:heading_deg AS real[]), CAST(:battery AS real[])
    ) AS t(person_id, device_id, ts_us, lon, lat,
           accuracy_m, altitude_m, speed_mps, heading_deg, battery)
), active AS (
    UPDATE devices SET last_seen_at = now()
    WHERE id IN (SELECT device_id FROM incoming) AND revoked_at IS NULL
      AND EXISTS (SELECT 1 FROM people p WHERE p.id = devices.person_id AND p.active)
    RETURNING id
), inserted AS (
    INSERT INTO positions (person_id, device_id, ts, received_at, geom,
                           accuracy_m, altitude_m, speed_mps, heading_deg, battery)
    SELECT person_id, device_id, ts, now(), ST_SetSRID(ST_MakePoint(lon, lat), 4326),
           accuracy_m, altitude_m, speed_mps, heading_deg, battery
    FROM incoming JOIN active ON active.id = incoming.device_id
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
SELECT i.device_id, i.ts_us, a.id IS NULL AS revoked
FROM incoming i LEFT JOIN active a ON a.id = i.device_id
WHERE a.id IS NULL
   OR NOT EXISTS (SELECT 1 FROM inserted n WHERE n.device_id = i.device_id AND n.ts = i.ts)
"""
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def epoch_us(ts: datetime) -> int:
    """Return an aware datetime as integer microseconds since the epoch, exactly."""
    return (ts - EPOCH) // MICROSECOND


def _pg_array(values: Sequence[Any]) -> str:
    """Return numbers as a PostgreSQL array literal, None as NULL (a bound value, not SQL)."""
    if None not in values:
        return "{" + ",".join(map(repr, values)) + "}"
    return "{" + ",".join("NULL" if v is None else repr(v) for v in values) + "}"


class PositionRow(NamedTuple):
    """A fix ready to store: who sent it and its values in stored units.

    A named tuple: the ingest path builds one per position, and store_positions() turns a
    list of them into columns with a single zip().
    """

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

    @classmethod
    def from_fix(cls, person_id: int, device_id: int, fix: Any) -> PositionRow:
        """Return the row for a validated fix (tracker.ingest.validate.Fix) of a device."""
        return cls(person_id, device_id, *fix)


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What one store_positions() call did not store, and why."""

    duplicates: set[tuple[int, int]]  # (device_id, epoch microseconds) stored before
    revoked_devices: set[int]


def store_positions(conn: Connection | Session, rows: Sequence[PositionRow]) -> StoreResult:
    """Store positions of active devices and move latest_positions forward, in one statement.

    Args:
        conn: a connection or session; in autocommit mode the statement is its own
            transaction.
        rows: fixes to store, at most one per (device, ts); may contain fixes stored before.

    Returns:
        The rows that were not stored: duplicates, and the devices found revoked.
    """
    if not rows:
        return StoreResult(set(), set())
    (person_ids, device_ids, times, lats, lons, accuracy, altitude, speed, heading, battery) = zip(
        *rows, strict=True
    )
    params = {
        "person_ids": _pg_array(person_ids),
        "device_ids": _pg_array(device_ids),
        "ts_us": _pg_array([(ts - EPOCH) // MICROSECOND for ts in times]),
        "lons": _pg_array(lons),
        "lats": _pg_array(lats),
        "accuracy_m": _pg_array(accuracy),
        "altitude_m": _pg_array(altitude),
        "speed_mps": _pg_array(speed),
        "heading_deg": _pg_array(heading),
        "battery": _pg_array(battery),
    }
    duplicates, revoked = set(), set()
    for device_id, ts_us, is_revoked in conn.execute(_STORE_POSITIONS, params):
        if is_revoked:
            revoked.add(device_id)
        else:
            duplicates.add((device_id, ts_us))
    return StoreResult(duplicates, revoked)


def insert_positions(
    conn: Connection | Session, rows: Sequence[PositionRow]
) -> set[tuple[int, datetime]]:
    """Store positions in the caller's transaction; return the (device_id, ts) that were new.

    Args:
        conn: a connection or session inside a transaction.
        rows: fixes to store; may contain fixes stored before.

    Returns:
        The (device_id, ts) of the rows that were new; the others were duplicates or came
        from revoked devices.
    """
    unique = list({(r.device_id, r.ts): r for r in rows}.values())
    result = store_positions(conn, unique)
    return {
        (r.device_id, r.ts)
        for r in unique
        if r.device_id not in result.revoked_devices
        and (r.device_id, epoch_us(r.ts)) not in result.duplicates
    }


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


def devices_by_token_hashes(
    session: Session, token_hashes: Sequence[str]
) -> dict[str, DeviceIdentity]:
    """Return the active devices of many token hashes at once.

    Args:
        session: a session.
        token_hashes: SHA-256 hex digests of tokens.

    Returns:
        token hash -> device, for the hashes of active devices of active people only.
    """
    if not token_hashes:
        return {}
    rows = session.execute(
        select(Device.token_hash, Device.id, Device.person_id)
        .join(Person, Person.id == Device.person_id)
        .where(
            Device.token_hash.in_(sorted(set(token_hashes))),
            Device.revoked_at.is_(None),
            Person.active.is_(True),
        )
    ).all()
    return {row.token_hash: DeviceIdentity(row.id, row.person_id) for row in rows}


def inactive_devices(session: Session, device_ids: Iterable[int]) -> set[int]:
    """Return those of the devices that may no longer send anything.

    Args:
        session: a session.
        device_ids: devices with open connections.

    Returns:
        The ids of the devices that are revoked, gone, or whose person is deactivated.
    """
    wanted = set(device_ids)
    if not wanted:
        return set()
    active = session.execute(
        select(Device.id)
        .join(Person, Person.id == Device.person_id)
        .where(
            Device.id.in_(sorted(wanted)),
            Device.revoked_at.is_(None),
            Person.active.is_(True),
        )
    ).scalars()
    return wanted - set(active)


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


def start_staff_session(session: Session, user_id: int, token_hash: str) -> StaffSession:
    """Record a new login of a staff account.

    Args:
        session: a session; the caller commits.
        user_id: the account.
        token_hash: the SHA-256 hex digest of the token the cookie carries.

    Returns:
        The new session row.
    """
    row = StaffSession(user_id=user_id, token_hash=token_hash)
    session.add(row)
    session.flush()
    return row


def user_of_staff_session(session: Session, token_hash: str, oldest: datetime) -> User | None:
    """Return the active account of an open login that started after `oldest`, if any.

    Args:
        session: a session.
        token_hash: the SHA-256 hex digest of the cookie's token.
        oldest: logins that started before this have expired.

    Returns:
        The account, or None for an unknown, ended or expired login or a disabled account.
    """
    return session.execute(
        select(User)
        .join(StaffSession, StaffSession.user_id == User.id)
        .where(
            StaffSession.token_hash == token_hash,
            StaffSession.ended_at.is_(None),
            StaffSession.created_at >= oldest,
            User.active.is_(True),
        )
    ).scalar_one_or_none()


def end_staff_session(session: Session, token_hash: str, reason: str) -> bool:
    """End one login; return whether it was open. The caller commits."""
    ended = session.execute(
        update(StaffSession)
        .where(StaffSession.token_hash == token_hash, StaffSession.ended_at.is_(None))
        .values(ended_at=func.now(), end_reason=reason)
        .returning(StaffSession.id)
    ).first()
    return ended is not None


def end_user_sessions(session: Session, user_id: int, reason: str) -> int:
    """End every open login of an account; return how many there were. The caller commits."""
    ended = session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
        .values(ended_at=func.now(), end_reason=reason)
        .returning(StaffSession.id)
    ).all()
    return len(ended)


def open_staff_sessions(
    session: Session, token_hashes: Iterable[str], oldest: datetime
) -> set[str]:
    """Return those of the logins that are still open, unexpired and of an active account.

    Args:
        session: a session.
        token_hashes: the logins behind open /live connections.
        oldest: logins that started before this have expired.

    Returns:
        The token hashes that may go on.
    """
    wanted = sorted(set(token_hashes))
    if not wanted:
        return set()
    return set(
        session.execute(
            select(StaffSession.token_hash)
            .join(User, User.id == StaffSession.user_id)
            .where(
                StaffSession.token_hash.in_(wanted),
                StaffSession.ended_at.is_(None),
                StaffSession.created_at >= oldest,
                User.active.is_(True),
            )
        ).scalars()
    )


def staff_account_in_scope(session: Session, actor: User, user_id: int) -> User | None:
    """Return the staff account `user_id` if `actor` may manage it, else None.

    An account without a unit manages every account; one with a unit manages the accounts
    of that unit and the units below it.
    """
    stmt = select(User).where(User.id == user_id)
    if actor.unit_id is not None:
        stmt = stmt.where(User.unit_id.in_(select(unit_subtree(actor.unit_id).c.id)))
    return session.execute(stmt).scalar_one_or_none()


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
    if user.role == "admin" or user.unit_id is None:
        return true()
    return person_id.in_(visible_people(user))


def can_see_person(session: Session, user: User, person_id: int) -> bool:
    """Return whether the person exists and is in the account's scope."""
    stmt = visible_people(user).where(Person.id == person_id)
    return session.execute(stmt).first() is not None


# --- reads --------------------------------------------------------------------------


def bbox_filter(geom: Any, bbox: tuple[float, float, float, float]) -> Any:
    """Return a GiST-backed filter keeping geometries that intersect a lon/lat box."""
    west, south, east, north = bbox
    return geom.op("&&")(func.ST_MakeEnvelope(west, south, east, north, 4326))


def _newest_lat_lon() -> tuple[Any, Any]:
    """Return the lat and lon columns of a person's newest fix (latest_positions.geom)."""
    return (
        func.ST_Y(LatestPosition.geom).label("lat"),
        func.ST_X(LatestPosition.geom).label("lon"),
    )


def _person_with_fix() -> tuple[Any, ...]:
    """Return the columns that say who a person is and when and where their newest fix is."""
    return (
        Person.id.label("person_id"),
        Person.name,
        Person.role,
        Person.unit_id,
        LatestPosition.ts,
        *_newest_lat_lon(),
    )


def latest_positions(user: User, bbox: tuple[float, float, float, float] | None) -> Select[Any]:
    """Return a select of each visible person's newest fix, with who they are.

    Args:
        user: the staff account whose scope applies.
        bbox: optional (west, south, east, north) in degrees.

    Returns:
        A select() of rows with person and fix columns, lon, lat and on_duty.
    """
    on_duty = on_duty_clause(Person.id)
    stmt = (
        select(
            *_person_with_fix(),
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


@dataclass(frozen=True, slots=True)
class Track:
    """A person's positions between two instants, as one line."""

    geometry_geojson: str | None
    points: int
    distance_m: float
    started_at: datetime | None
    ended_at: datetime | None


def track(
    session: Session,
    person_id: int,
    start: datetime,
    end: datetime,
    simplify_m: float | None = None,
) -> Track:
    """Return a person's track in time order, with its geodesic length.

    Args:
        session: a session.
        person_id: whose track.
        start: first instant included.
        end: first instant excluded.
        simplify_m: if given, drop vertices that move the line by less than about this
            many metres (Douglas-Peucker), for display; length and counts stay exact.

    Returns:
        The track; its geometry is None when there are no positions.
    """
    built = (
        select(
            func.ST_MakeLine(aggregate_order_by(Position.geom, Position.ts)).label("line"),
            func.count().label("points"),
            func.min(Position.ts).label("started_at"),
            func.max(Position.ts).label("ended_at"),
        )
        .where(and_(Position.person_id == person_id, Position.ts >= start, Position.ts < end))
        .subquery()
    )
    shown = built.c.line
    if simplify_m:
        # Degrees of latitude are ~111 km everywhere; good enough for a display tolerance.
        # Plain Douglas-Peucker: a display line need not keep topology, and this is several
        # times faster than ST_SimplifyPreserveTopology; `true` keeps at least two points.
        shown = func.ST_Simplify(built.c.line, simplify_m / 111_320, True)
    row = session.execute(
        select(
            func.ST_AsGeoJSON(shown).label("geojson"),
            built.c.points,
            func.coalesce(func.ST_Length(func.geography(built.c.line)), 0).label("distance_m"),
            built.c.started_at,
            built.c.ended_at,
        )
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


# --- alerts -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A stored alert, with its point as lon/lat."""

    id: int
    person_id: int
    device_id: int | None
    kind: str
    ts: datetime
    received_at: datetime
    lat: float | None
    lon: float | None
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        """Return the alert as JSON-ready values."""
        return {
            "id": self.id,
            "person_id": self.person_id,
            "device_id": self.device_id,
            "kind": self.kind,
            "ts": self.ts.isoformat(),
            "received_at": self.received_at.isoformat(),
            "lat": self.lat,
            "lon": self.lon,
            "note": self.note,
        }


def _alert_columns() -> tuple[Any, ...]:
    """Return the columns that make an AlertRow."""
    return (
        Alert.id,
        Alert.person_id,
        Alert.device_id,
        Alert.kind,
        Alert.ts,
        Alert.received_at,
        func.ST_Y(Alert.geom).label("lat"),
        func.ST_X(Alert.geom).label("lon"),
        Alert.note,
    )


def insert_alert(
    session: Session,
    person_id: int,
    device_id: int | None,
    kind: str,
    ts: datetime,
    point: tuple[float, float] | None,
    note: str | None,
) -> tuple[AlertRow, bool]:
    """Store an alert once per (device, kind, ts); the caller commits.

    Args:
        session: a session.
        person_id: whom the alert is about.
        device_id: the device that raised it, if any.
        kind: sos, zone_exit, zone_enter, signal_lost, signal_back or low_battery.
        ts: when it happened, by the device's clock.
        point: (lat, lon) in WGS-84 degrees, or None when no fix was known.
        note: free text from the person.

    Returns:
        The stored alert, and True if it is new (False: the same alert was stored before).
    """
    geom = None
    if point is not None:
        lat, lon = point
        geom = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
    stmt = (
        pg_insert(Alert)
        .values(person_id=person_id, device_id=device_id, kind=kind, ts=ts, geom=geom, note=note)
        .on_conflict_do_nothing(constraint="uq_alerts_device_kind_ts")
        .returning(Alert.id)
    )
    new_id = session.execute(stmt).scalar()
    if new_id is not None:
        where = Alert.id == new_id
    else:
        where = and_(Alert.device_id == device_id, Alert.kind == kind, Alert.ts == ts)
    row = session.execute(select(*_alert_columns()).where(where)).one()
    return AlertRow(*row), new_id is not None


def alerts_of_person(person_id: int) -> Select[Any]:
    """Return a select of a person's alerts as AlertRow columns, oldest first.

    Args:
        person_id: whose alerts.

    Returns:
        A select() of the AlertRow columns.
    """
    return (
        select(*_alert_columns()).where(Alert.person_id == person_id).order_by(Alert.ts, Alert.id)
    )


# --- recorded tracks -----------------------------------------------------------------


def track_points(person_id: int, start: datetime, end: datetime) -> Select[Any]:
    """Return a select of a person's positions in time order, with lon/lat.

    Args:
        person_id: whose positions.
        start: first instant included.
        end: first instant excluded.

    Returns:
        A select() of rows: ts, lat, lon, accuracy_m, altitude_m, speed_mps, heading_deg,
        battery.
    """
    return (
        select(
            Position.ts,
            func.ST_Y(Position.geom).label("lat"),
            func.ST_X(Position.geom).label("lon"),
            Position.accuracy_m,
            Position.altitude_m,
            Position.speed_mps,
            Position.heading_deg,
            Position.battery,
        )
        .where(Position.person_id == person_id, Position.ts >= start, Position.ts < end)
        .order_by(Position.ts)
    )


IMPORT_DEVICE_LABEL = "track import"


def import_device(session: Session, person_id: int, token_hash: str) -> int:
    """Return the id of the person's device for imported tracks, creating it if needed.

    Imported fixes are deduplicated by (device, ts) like live ones, so re-importing a file
    stores nothing twice. The device's token is never shown: it cannot send live fixes.
    """
    device_id = session.execute(
        select(Device.id).where(Device.person_id == person_id, Device.label == IMPORT_DEVICE_LABEL)
    ).scalar()
    if device_id is None:
        device_id = add_device(session, person_id, IMPORT_DEVICE_LABEL, token_hash).id
    return device_id


# --- live map -----------------------------------------------------------------------


def visible_units(user: User) -> Select[Any]:
    """Return a select of the units a staff account may see, with boundary and label point.

    Args:
        user: the staff account; admins and accounts without a unit see every unit.

    Returns:
        A select() of id, name, kind, parent_id, boundary_geojson and label_geojson
        (a point inside the boundary), both GeoJSON text or None.
    """
    stmt = select(
        Unit.id,
        Unit.name,
        Unit.kind,
        Unit.parent_id,
        func.ST_AsGeoJSON(Unit.boundary, 6).label("boundary_geojson"),
        func.ST_AsGeoJSON(func.ST_PointOnSurface(Unit.boundary), 6).label("label_geojson"),
    ).order_by(Unit.id)
    if user.role != "admin" and user.unit_id is not None:
        subtree = unit_subtree(user.unit_id)
        stmt = stmt.where(Unit.id.in_(select(subtree.c.id)))
    return stmt


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


def unit_parents(session: Session) -> dict[int, int | None]:
    """Return every unit's parent, so the live feed can route people to scope rooms.

    Args:
        session: a session.

    Returns:
        A mapping of unit id to parent unit id (None for a root).
    """
    return {row.id: row.parent_id for row in session.execute(select(Unit.id, Unit.parent_id))}


# --- zones, alert rules and coverage --------------------------------------------------


def match_grids(session: Session, person_ids: Sequence[int]) -> None:
    """Set each person's latest_positions.grid_id to the grid that contains their fix.

    Args:
        session: a session; the caller commits.
        person_ids: whose newest fixes changed.
    """
    lp = LatestPosition.__table__
    grid = (
        select(Unit.id)
        .where(Unit.kind == "grid", func.ST_Covers(Unit.boundary, lp.c.geom))
        # Nested or overlapping grids: the smallest one is the most specific.
        .order_by(func.ST_Area(Unit.boundary))
        .limit(1)
        .scalar_subquery()
    )
    # Only rows whose grid changes are rewritten: most fixes stay in the same grid, and each
    # rewrite of this hot table is a dead row for vacuum and a lock the writer may meet.
    session.execute(
        update(lp)
        .where(lp.c.person_id.in_(sorted(set(person_ids))), lp.c.grid_id.is_distinct_from(grid))
        .values(grid_id=grid)
    )


_ENSURE_WATCH_STATES = text(
    """
INSERT INTO watch_states (person_id)
SELECT unnest(CAST(:person_ids AS integer[]))
ON CONFLICT (person_id) DO NOTHING
"""
)


def ensure_watch_states(session: Session, person_ids: Iterable[int]) -> None:
    """Create missing watch_states rows so that they can be locked and updated."""
    ids = sorted(set(person_ids))
    if ids:
        # One array parameter, so the statement is compiled once however many people come.
        session.execute(_ENSURE_WATCH_STATES, {"person_ids": ids})


def zone_facts(session: Session, person_ids: Sequence[int]) -> list[Any]:
    """Return, per person, what the rules need: newest fix, zone distance, duty, states.

    The watch_states rows are locked, so two processes never judge one person at once.

    Args:
        session: a session inside a transaction.
        person_ids: the people to judge.

    Returns:
        Rows with person_id, device_id, ts, lat, lon, accuracy_m, battery, on_duty,
        patrol_unit_id, signed_distance_m (negative inside; None without a zone), and the
        watch state columns zone_inside, signal_lost, battery_low.
    """
    zone = Unit.__table__.alias("zone")
    point_geog = func.geography(LatestPosition.geom)
    signed = case(
        (
            func.ST_Covers(zone.c.boundary, LatestPosition.geom),
            -func.ST_Distance(func.geography(func.ST_Boundary(zone.c.boundary)), point_geog),
        ),
        else_=func.ST_Distance(func.geography(zone.c.boundary), point_geog),
    )
    on_duty = on_duty_clause(Person.id)
    stmt = (
        select(
            LatestPosition.person_id,
            LatestPosition.device_id,
            LatestPosition.ts,
            *_newest_lat_lon(),
            LatestPosition.accuracy_m,
            LatestPosition.battery,
            on_duty.label("on_duty"),
            Person.patrol_unit_id,
            case((zone.c.boundary.is_(None), None), else_=signed).label("signed_distance_m"),
            WatchState.zone_inside,
            WatchState.signal_lost,
            WatchState.battery_low,
        )
        .join(Person, Person.id == LatestPosition.person_id)
        .join(WatchState, WatchState.person_id == LatestPosition.person_id)
        .outerjoin(zone, zone.c.id == Person.patrol_unit_id)
        .where(LatestPosition.person_id.in_(sorted(set(person_ids))))
        .with_for_update(of=WatchState)
    )
    return list(session.execute(stmt))


def set_watch_state(session: Session, person_id: int, **states: bool | None) -> None:
    """Record the rules' new conclusions about a person."""
    session.execute(
        update(WatchState)
        .where(WatchState.person_id == person_id)
        .values(**states, updated_at=func.now())
    )


def silent_people(session: Session, cutoff: datetime) -> list[Any]:
    """Return on-duty people with no fix since `cutoff` who are not yet flagged silent.

    A person who has not sent any fix since going on duty counts from the shift's start.

    Args:
        session: a session inside a transaction.
        cutoff: the time before which the newest fix counts as lost.

    Returns:
        Rows with person_id, last_seen, lat and lon (None without any fix).
    """
    last_seen = func.coalesce(func.greatest(LatestPosition.ts, Shift.started_at), Shift.started_at)
    stmt = (
        select(
            Shift.person_id,
            last_seen.label("last_seen"),
            *_newest_lat_lon(),
        )
        .outerjoin(LatestPosition, LatestPosition.person_id == Shift.person_id)
        .outerjoin(WatchState, WatchState.person_id == Shift.person_id)
        .where(
            Shift.ended_at.is_(None),
            last_seen < cutoff,
            func.coalesce(WatchState.signal_lost, False).is_(False),
        )
    )
    return list(session.execute(stmt))


def clear_off_duty_flags(session: Session) -> None:
    """Forget silence and zone conclusions of people who went off duty."""
    open_shift = on_duty_clause(WatchState.person_id)
    session.execute(
        update(WatchState)
        .where(~open_shift, (WatchState.signal_lost.is_(True)) | WatchState.zone_inside.isnot(None))
        .values(signal_lost=False, zone_inside=None, updated_at=func.now())
    )


def coverage(user: User) -> Select[Any]:
    """Return a select of every grid in scope: people inside now, assigned, on duty inside.

    Args:
        user: the staff account whose scope applies.

    Returns:
        A select() of rows: unit_id, name, inside, assigned, on_duty_inside.
    """
    on_duty = on_duty_clause(LatestPosition.person_id)
    inside = (
        select(func.count())
        .where(LatestPosition.grid_id == Unit.id)
        .correlate(Unit)
        .scalar_subquery()
    )
    on_duty_inside = (
        select(func.count())
        .where(LatestPosition.grid_id == Unit.id, on_duty)
        .correlate(Unit)
        .scalar_subquery()
    )
    assigned = (
        select(func.count())
        .where(Person.patrol_unit_id == Unit.id, Person.active.is_(True))
        .correlate(Unit)
        .scalar_subquery()
    )
    stmt = select(
        Unit.id.label("unit_id"),
        Unit.name,
        inside.label("inside"),
        assigned.label("assigned"),
        on_duty_inside.label("on_duty_inside"),
    ).where(Unit.kind == "grid")
    if user.role != "admin" and user.unit_id is not None:
        stmt = stmt.where(Unit.id.in_(select(unit_subtree(user.unit_id).c.id)))
    return stmt.order_by(Unit.id)


def unit_in_scope(session: Session, user: User, unit_id: int) -> bool:
    """Return whether the unit exists and lies in the account's scope."""
    stmt = select(Unit.id).where(Unit.id == unit_id)
    if user.role != "admin" and user.unit_id is not None:
        stmt = stmt.where(Unit.id.in_(select(unit_subtree(user.unit_id).c.id)))
    return session.execute(stmt).first() is not None


def grid_people(user: User, unit_id: int) -> Select[Any]:
    """Return a select of the visible people inside a grid now or assigned to it.

    Args:
        user: the staff account whose scope applies.
        unit_id: the grid.

    Returns:
        A select() of rows: person_id, name, role, inside, assigned, on_duty, ts.
    """
    on_duty = on_duty_clause(Person.id)
    return (
        select(
            Person.id.label("person_id"),
            Person.name,
            Person.role,
            (LatestPosition.grid_id == unit_id).label("inside"),
            (Person.patrol_unit_id == unit_id).label("assigned"),
            on_duty.label("on_duty"),
            LatestPosition.ts,
        )
        .outerjoin(LatestPosition, LatestPosition.person_id == Person.id)
        .where(
            (LatestPosition.grid_id == unit_id) | (Person.patrol_unit_id == unit_id),
            in_scope(user, Person.id),
        )
        .order_by(Person.name)
    )


def assign_patrol_unit(session: Session, person_id: int, unit_id: int | None) -> bool:
    """Assign a person to a grid (None clears it); return False if no such person."""
    result = session.execute(
        update(Person).where(Person.id == person_id).values(patrol_unit_id=unit_id)
    )
    return result.rowcount == 1


def alerts_for(user: User, kind: str | None, open_only: bool, limit: int) -> Select[Any]:
    """Return a select of the alerts about people in scope, newest first.

    Args:
        user: the staff account whose scope applies.
        kind: only this kind, if given.
        open_only: only alerts nobody has acknowledged.
        limit: at most this many.

    Returns:
        A select() of alert columns with the person's name and role.
    """
    stmt = (
        select(
            *_alert_columns(),
            Person.name.label("person_name"),
            Person.role.label("person_role"),
            Alert.acknowledged_at,
            User.username.label("acknowledged_by"),
        )
        .join(Person, Person.id == Alert.person_id)
        .outerjoin(User, User.id == Alert.acknowledged_by)
        .where(in_scope(user, Alert.person_id))
        .order_by(Alert.received_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    if kind is not None:
        stmt = stmt.where(Alert.kind == kind)
    if open_only:
        stmt = stmt.where(Alert.acknowledged_at.is_(None))
    return stmt


def acknowledge_alert(session: Session, user: User, alert_id: int) -> bool:
    """Record who acknowledged an alert in scope, and when; False if not found or done."""
    result = session.execute(
        update(Alert)
        .where(
            Alert.id == alert_id,
            Alert.acknowledged_at.is_(None),
            in_scope(user, Alert.person_id),
        )
        .values(acknowledged_at=func.now(), acknowledged_by=user.id)
    )
    return result.rowcount == 1


def upsert_unit(
    session: Session, name: str, kind: str, parent_id: int | None, geojson: str
) -> tuple[int, bool, str | None]:
    """Create or update a unit by (parent, kind, name) with a boundary, repaired if invalid.

    Args:
        session: a session; the caller commits.
        name: the unit's name.
        kind: district, street, community or grid.
        parent_id: the unit above, if any.
        geojson: a Polygon or MultiPolygon geometry in GeoJSON, WGS-84.

    Returns:
        (unit id, created, why the geometry was invalid — None when it was valid).
    """
    geom = func.ST_SetSRID(func.ST_GeomFromGeoJSON(geojson), 4326)
    reason = session.execute(
        select(case((func.ST_IsValid(geom), None), else_=func.ST_IsValidReason(geom)))
    ).scalar()
    boundary = func.ST_Multi(func.ST_CollectionExtract(func.ST_MakeValid(geom), 3))
    stmt = (
        pg_insert(Unit)
        .values(name=name, kind=kind, parent_id=parent_id, boundary=boundary)
        .on_conflict_do_update(
            index_elements=["parent_id", "kind", "name"], set_={"boundary": boundary}
        )
        .returning(Unit.id, literal_column("xmax = 0").label("created"))
    )
    row = session.execute(stmt).one()
    return row.id, row.created, reason


def try_advisory_lock(session: Session, name: str) -> bool:
    """Take a transaction-scoped advisory lock by name, without waiting; return if taken."""
    return bool(
        session.execute(select(func.pg_try_advisory_xact_lock(func.hashtext(name)))).scalar()
    )


def units_named_or_numbered(session: Session, ref: Any) -> list[int]:
    """Return the ids of units whose id (an int) or name (a string) is `ref`."""
    if isinstance(ref, bool):
        return []
    if isinstance(ref, int):
        return list(session.execute(select(Unit.id).where(Unit.id == ref)).scalars())
    if isinstance(ref, str):
        return list(session.execute(select(Unit.id).where(Unit.name == ref)).scalars())
    return []


# --- dispatch --------------------------------------------------------------------------


def nearest_people(
    user: User, lat: float, lon: float, limit: int, fresh_since: datetime
) -> Select[Any]:
    """Return a select of on-duty people in scope with a recent fix, nearest first.

    Ordering uses the GiST index on geography(geom) (a true k-nearest-neighbour search on
    the sphere); the distance reported is geodesic on the WGS-84 spheroid. Sphere and
    spheroid can disagree on near ties, so callers ask for a few more rows than they show
    and re-sort by `distance_m`.

    Args:
        user: the staff account whose scope applies.
        lat: the incident's latitude.
        lon: the incident's longitude.
        limit: how many rows.
        fresh_since: fixes older than this count as stale.

    Returns:
        A select() of rows: person_id, name, role, unit_id, ts, lat, lon, distance_m.
    """
    target = func.geography(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326))
    geog = func.geography(LatestPosition.geom)
    on_duty = on_duty_clause(Person.id)
    return (
        select(*_person_with_fix(), func.ST_Distance(geog, target).label("distance_m"))
        .join(Person, Person.id == LatestPosition.person_id)
        .where(
            on_duty,
            Person.active.is_(True),
            LatestPosition.ts >= fresh_since,
            in_scope(user, Person.id),
        )
        .order_by(geog.op("<->")(target))
        .limit(limit)
    )


def add_incident(
    session: Session, user: User, lat: float, lon: float, description: str
) -> Incident:
    """Create an incident at a point, in the creating account's unit; log its creation."""
    incident = Incident(
        geom=func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326),
        description=description,
        unit_id=user.unit_id if user.role != "admin" else None,
        created_by=user.id,
    )
    session.add(incident)
    session.flush()
    session.add(IncidentEvent(incident_id=incident.id, kind="created", user_id=user.id))
    return incident


def incidents_for(user: User) -> Select[Any]:
    """Return a select of the incidents a staff account may see, newest first."""
    stmt = select(
        Incident.id,
        Incident.description,
        Incident.status,
        Incident.unit_id,
        Incident.created_at,
        func.ST_Y(Incident.geom).label("lat"),
        func.ST_X(Incident.geom).label("lon"),
    ).order_by(Incident.created_at.desc(), Incident.id.desc())
    if user.role != "admin" and user.unit_id is not None:
        stmt = stmt.where(Incident.unit_id.in_(select(unit_subtree(user.unit_id).c.id)))
    return stmt


def incident_tasks(session: Session, incident_id: int) -> list[Any]:
    """Return an incident's tasks with the assignees' names, in assignment order."""
    return list(
        session.execute(
            select(
                Task.id,
                Task.person_id,
                Person.name,
                Task.status,
                Task.assigned_at,
                Task.distance_m,
            )
            .join(Person, Person.id == Task.person_id)
            .where(Task.incident_id == incident_id)
            .order_by(Task.id)
        )
    )


def incident_history(session: Session, incident_id: int) -> list[Any]:
    """Return an incident's events in time order, naming who did each."""
    return list(
        session.execute(
            select(
                IncidentEvent.at,
                IncidentEvent.kind,
                IncidentEvent.person_id,
                Person.name.label("person_name"),
                User.username,
            )
            .outerjoin(Person, Person.id == IncidentEvent.person_id)
            .outerjoin(User, User.id == IncidentEvent.user_id)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.at, IncidentEvent.id)
        )
    )


def add_task(
    session: Session, incident: Incident, person_id: int, user: User, distance_m: float | None
) -> Task | None:
    """Send a person to an incident; None if they already have a task for it."""
    stmt = (
        pg_insert(Task)
        .values(
            incident_id=incident.id,
            person_id=person_id,
            assigned_by=user.id,
            distance_m=distance_m,
        )
        .on_conflict_do_nothing(constraint="uq_tasks_incident_person")
        .returning(Task.id)
    )
    task_id = session.execute(stmt).scalar()
    if task_id is None:
        return None
    session.add(
        IncidentEvent(
            incident_id=incident.id, kind="assigned", person_id=person_id, user_id=user.id
        )
    )
    if incident.status == "open":
        incident.status = "assigned"
    session.flush()
    return session.get(Task, task_id)


def person_task(session: Session, person_id: int, task_id: int) -> Task | None:
    """Return a task of this person, locked for update."""
    return session.execute(
        select(Task).where(Task.id == task_id, Task.person_id == person_id).with_for_update()
    ).scalar_one_or_none()


def advance_task(session: Session, task: Task, status: str) -> Incident:
    """Move a task to `accepted` or `done`, log it, and roll the incident's status up."""
    task.status = status
    session.add(IncidentEvent(incident_id=task.incident_id, kind=status, person_id=task.person_id))
    session.flush()
    incident = session.execute(
        select(Incident).where(Incident.id == task.incident_id).with_for_update()
    ).scalar_one()
    statuses = set(
        session.execute(select(Task.status).where(Task.incident_id == incident.id)).scalars()
    )
    if statuses == {"done"}:
        incident.status = "done"
    elif statuses & {"accepted", "done"}:
        incident.status = "accepted"
    session.flush()
    return incident


def active_devices(session: Session, person_id: int) -> list[int]:
    """Return the ids of a person's devices that are not revoked."""
    return list(
        session.execute(
            select(Device.id).where(Device.person_id == person_id, Device.revoked_at.is_(None))
        ).scalars()
    )


def incident_point(session: Session, incident_id: int) -> tuple[float, float]:
    """Return an incident's (lat, lon)."""
    row = session.execute(
        select(func.ST_Y(Incident.geom), func.ST_X(Incident.geom)).where(Incident.id == incident_id)
    ).one()
    return row[0], row[1]


# --- simulator ---------------------------------------------------------------------------


def grid_boundaries(session: Session, under_unit_id: int | None) -> list[Any]:
    """Return (id, name, geojson) of the grids with a boundary, optionally under a unit."""
    stmt = select(Unit.id, Unit.name, func.ST_AsGeoJSON(Unit.boundary).label("geojson")).where(
        Unit.kind == "grid", Unit.boundary.isnot(None)
    )
    if under_unit_id is not None:
        stmt = stmt.where(Unit.id.in_(select(unit_subtree(under_unit_id).c.id)))
    return list(session.execute(stmt.order_by(Unit.id)))


def person_by_name(session: Session, name: str) -> Person | None:
    """Return the first person with exactly this name."""
    return session.execute(
        select(Person).where(Person.name == name).order_by(Person.id).limit(1)
    ).scalar_one_or_none()


def revoke_labelled_devices(session: Session, person_ids: Sequence[int], label: str) -> None:
    """Revoke the people's active devices that carry a label (e.g. the simulator's)."""
    session.execute(
        update(Device)
        .where(Device.person_id.in_(person_ids), Device.label == label, Device.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


def drop_partition(conn: Connection | Session, day: date) -> bool:
    """Drop the positions partition of one UTC day; return False if there was none.

    Args:
        conn: a connection or session; the caller commits.
        day: the UTC calendar day.

    Returns:
        True if the partition existed and was dropped.
    """
    return bool(conn.execute(select(func.tracker_drop_partition(day))).scalar())


# --- boundary checks -------------------------------------------------------------------


def boundary_repair(session: Session, geojson: str) -> tuple[str | None, float]:
    """Return why a boundary is invalid and the area of the polygons ST_MakeValid keeps of it.

    Args:
        session: a session.
        geojson: a Polygon or MultiPolygon geometry in GeoJSON, WGS-84.

    Returns:
        (why the geometry is invalid — None when it is valid, the area in square degrees of
        its polygons after repair — 0 when the repair leaves a line, a point or nothing).
    """
    geom = func.ST_SetSRID(func.ST_GeomFromGeoJSON(geojson), 4326)
    kept = func.ST_CollectionExtract(func.ST_MakeValid(geom), 3)
    row = session.execute(
        select(
            case((func.ST_IsValid(geom), None), else_=func.ST_IsValidReason(geom)),
            func.coalesce(func.ST_Area(kept), 0.0),
        )
    ).one()
    return row[0], float(row[1])
