"""The group-commit writer: a row the database refuses as data is rejected, not "retry"."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tracker.extensions import db
from tracker.ingest.writer import writer
from tracker.models import Position
from tracker.store.positions import PositionRow


def rows_of(person_id: int) -> list[tuple]:
    """Return (ts, altitude_m) of a person's stored positions in time order."""
    return db.session.execute(
        select(Position.ts, Position.altitude_m)
        .where(Position.person_id == person_id)
        .order_by(Position.ts)
    ).all()


def single(value: float) -> float:
    """Return value rounded to IEEE-754 single precision."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def test_a_value_the_database_refuses_fails_only_its_own_row(app, make_phone):
    # Validation stops such values first; this is the writer's own guard for one that a
    # future change lets through: 1e39 does not fit PostgreSQL's single-precision `real`.
    phone = make_phone()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    rows = [
        PositionRow(
            phone.person_id,
            phone.device_id,
            start + timedelta(seconds=i),
            39.9,
            116.4,
            altitude_m=1e39 if i in (3, 7) else float(i),
        )
        for i in range(10)
    ]
    with app.app_context():
        outcome = writer.submit(rows)
        assert outcome.stored == 8
        assert outcome.duplicates == 0
        assert [position for position, _ in outcome.refused] == [3, 7]
        assert all(
            why.startswith("item: the database cannot store this fix (")
            for _, why in outcome.refused
        )
        stored = rows_of(phone.person_id)
        assert [ts for ts, _ in stored] == [r.ts for i, r in enumerate(rows) if i not in (3, 7)]
        # The resend of the whole batch stores nothing twice and refuses the same rows.
        again = writer.submit(rows)
        assert (again.stored, again.duplicates) == (0, 8)
        assert [position for position, _ in again.refused] == [3, 7]
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(Position)
                .where(Position.person_id == phone.person_id)
            )
            == 8
        )


def test_boundary_values_are_stored_exactly(app, make_phone):
    phone = make_phone()
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    values = [3.4028234663852886e38, -3.4028234663852886e38, 1e-45, 0.0]
    rows = [
        PositionRow(
            phone.person_id, phone.device_id, ts + timedelta(seconds=i), 39.9, 116.4, altitude_m=v
        )
        for i, v in enumerate(values)
    ]
    with app.app_context():
        outcome = writer.submit(rows)
        assert (outcome.stored, outcome.refused) == (4, ())
        # PostgreSQL sends a real as its shortest decimal (3.4028235e+38): compare the
        # single-precision numbers both sides stand for.
        assert [single(alt) for _, alt in rows_of(phone.person_id)] == [single(v) for v in values]
        assert single(values[0]) == values[0]
