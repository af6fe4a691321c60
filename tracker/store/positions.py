"""Positions: the ingest hot path (one statement stores a group commit) and the daily partitions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..models import (
    Device,
)
from .devices import locked_in_id_order

# One statement, one round trip, stores a whole group commit: the arrays are unnested into
# rows; devices are marked as seen, and revoked ones found, in the same statement; new fixes
# go into the partitioned table (a resend of a (person, ts, device) is skipped by the
# primary key); each person's newest new fix replaces latest_positions only when it is
# newer than what is there. Only the rows that were NOT stored come back (duplicates and
# rows of revoked devices or deactivated people), which under normal load is almost nothing
# to transfer.
# The devices are locked in id order first, as every statement updating several devices
# does (see store.devices.locked_in_id_order): an UPDATE locks rows in whatever order its
# plan visits them, and two statements locking the same devices in different orders
# deadlock until PostgreSQL's deadlock_timeout breaks one of them a second later.
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
), locked AS MATERIALIZED (
    SELECT id FROM devices WHERE id IN (SELECT device_id FROM incoming)
    ORDER BY id FOR NO KEY UPDATE
), active AS (
    UPDATE devices SET last_seen_at = now()
    WHERE id IN (SELECT id FROM locked) AND revoked_at IS NULL
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
        .where(
            Device.id.in_(locked_in_id_order(Device.id.in_(sorted(set(device_ids))))),
            Device.revoked_at.is_(None),
        )
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


def drop_partition(conn: Connection | Session, day: date) -> bool:
    """Drop the positions partition of one UTC day; return False if there was none.

    Args:
        conn: a connection or session; the caller commits.
        day: the UTC calendar day.

    Returns:
        True if the partition existed and was dropped.
    """
    return bool(conn.execute(select(func.tracker_drop_partition(day))).scalar())
