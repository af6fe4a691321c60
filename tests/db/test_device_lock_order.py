"""Statements that update several devices lock them in id order, whatever their plan.

Two of them updating the same devices in different orders at once deadlock, and
PostgreSQL breaks that only after its deadlock_timeout, a second later, by failing one:
the group commit then answers a whole batch "retry" (seen in the websocket benchmark).
Each test arranges the heap so that a sequential scan meets the higher id first, makes
the statement's session plan sequential scans, holds the lock of the lower id elsewhere,
and then checks that the statement, blocked on the lower id, has not yet locked the higher
one. Taking locks in plan order would have locked the higher id first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

APP_NAME = "lock-order-test"

# What the blocked session runs, by statement; `low` and `high` are the two device ids,
# `low_person` and `high_person` their people.
STATEMENTS = {
    "group commit": """
        from tracker.store.positions import PositionRow, ensure_partition, store_positions
        ts = datetime.now(UTC) - timedelta(minutes=5)
        ensure_partition(session, ts.date())
        rows = [PositionRow(high_person, high, ts, 39.9, 116.4),
                PositionRow(low_person, low, ts, 39.9, 116.4)]
        assert not store_positions(session, rows).revoked_devices
    """,
    "client of new GPS apps": """
        from tracker.store.devices import set_device_clients
        set_device_clients(session, {high: "osmand", low: "osmand"})
    """,
    "web-app sockets": """
        from tracker.store.devices import mark_webapp_sockets, touch_sockets
        touch_sockets(session, [high, low])
        mark_webapp_sockets(session, [high, low])
    """,
    "revoking the simulator's phones": """
        from tracker.store.devices import revoke_labelled_devices
        revoke_labelled_devices(session, [high_person, low_person], "test")
    """,
}


# The blocked session: sequential scans only, so that locks taken in plan order would
# follow the heap's order; the statement and its commit are appended, indented.
SESSION_WITH_SEQUENTIAL_SCANS = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session
    engine = create_engine(sys.argv[1], connect_args={"application_name": sys.argv[2]})
    low, high, low_person, high_person = map(int, sys.argv[3:7])
    with Session(engine) as session:
        session.execute(text("SET enable_indexscan = off"))
        session.execute(text("SET enable_bitmapscan = off"))
        session.execute(text("SET enable_indexonlyscan = off"))
    """
)


def _heap_position(conn, table: str, row_id: int) -> tuple[int, int]:
    page, item = conn.execute(
        text(f"SELECT (ctid::text::point)[0], (ctid::text::point)[1] FROM {table} WHERE id = :id"),
        {"id": row_id},
    ).one()
    return int(page), int(item)


def _move_behind(conn, table: str, row_id: int, other_id: int) -> None:
    """Update a row until its new version lies after another row's in the table's heap."""
    for _ in range(50):
        if _heap_position(conn, table, row_id) > _heap_position(conn, table, other_id):
            return
        conn.execute(text(f"UPDATE {table} SET id = id WHERE id = :id"), {"id": row_id})
    raise AssertionError(f"{table} {row_id} stayed before {other_id}")


@pytest.mark.parametrize("statement", sorted(STATEMENTS))
def test_a_statement_updating_several_devices_locks_them_in_id_order(
    database_url, make_phone, statement
):
    low_phone, high_phone = make_phone(), make_phone()
    low, high = low_phone.device_id, high_phone.device_id
    assert low < high
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            # A new row version goes after the others. The lower id's device and person
            # are moved behind the higher's, so that a plan scanning either table meets
            # the higher id first (the group commit's scans people, then hashes devices).
            _move_behind(conn, "devices", low, high)
            _move_behind(conn, "people", low_phone.person_id, high_phone.person_id)

        script = (
            SESSION_WITH_SEQUENTIAL_SCANS
            + textwrap.indent(textwrap.dedent(STATEMENTS[statement]), "    ")
            + "    session.commit()\n"
        )

        with engine.connect() as holder, engine.connect() as probe:
            holder.execute(text("BEGIN"))
            holder.execute(text("SELECT id FROM devices WHERE id = :id FOR UPDATE"), {"id": low})
            blocked = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    script,
                    database_url,
                    APP_NAME,
                    *map(str, (low, high, low_phone.person_id, high_phone.person_id)),
                ],
                cwd=os.getcwd(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                deadline = time.monotonic() + 30
                while not probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE application_name = :name AND wait_event_type = 'Lock'"
                    ),
                    {"name": APP_NAME},
                ).scalar():
                    assert blocked.poll() is None, blocked.communicate()
                    assert time.monotonic() < deadline, "the statement never waited for a lock"
                    time.sleep(0.05)
                # Blocked on the lower id: the higher one must still be free.
                try:
                    probe.execute(text("BEGIN"))
                    probe.execute(
                        text("SELECT id FROM devices WHERE id = :id FOR NO KEY UPDATE NOWAIT"),
                        {"id": high},
                    )
                    locked_high_first = False
                except OperationalError:
                    locked_high_first = True
                finally:
                    probe.execute(text("ROLLBACK"))
            finally:
                holder.execute(text("ROLLBACK"))
                out, err = blocked.communicate(timeout=30)
        assert not locked_high_first, f"{statement} locked device {high} before device {low}"
        assert blocked.returncode == 0, err
    finally:
        engine.dispose()


def test_the_group_commit_still_refuses_a_revoked_device(app, make_phone, sql):
    # The lock in id order is taken before the revocation check: a device revoked while the
    # group commit waited for its lock must still be found revoked.
    from tracker.extensions import db
    from tracker.store.devices import revoke_device
    from tracker.store.positions import PositionRow, store_positions

    kept, revoked = make_phone(), make_phone()
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    with app.app_context():
        assert revoke_device(db.session, revoked.device_id)
        result = store_positions(
            db.session,
            [
                PositionRow(revoked.person_id, revoked.device_id, ts, 39.9, 116.4),
                PositionRow(kept.person_id, kept.device_id, ts, 39.9, 116.4),
            ],
        )
        db.session.commit()
    assert result.revoked_devices == {revoked.device_id}
    stored = sql(
        "SELECT device_id FROM positions WHERE device_id IN (:a, :b)",
        a=kept.device_id,
        b=revoked.device_id,
    )
    assert [row.device_id for row in stored] == [kept.device_id]


def test_the_client_of_each_device_is_recorded_and_changed(app, make_phone, sql):
    from tracker.extensions import db
    from tracker.store.devices import set_device_clients

    first, second = make_phone(), make_phone()
    with app.app_context():
        set_device_clients(db.session, {second.device_id: "owntracks", first.device_id: "osmand"})
        db.session.commit()
        set_device_clients(
            db.session, {first.device_id: "gpslogger", second.device_id: "owntracks"}
        )
        db.session.commit()
        # The names travel inside an array literal: one that could break out is refused.
        with pytest.raises(ValueError, match="clients"):
            set_device_clients(db.session, {first.device_id: 'x","y'})
    rows = sql(
        "SELECT id, client FROM devices WHERE id IN (:a, :b) ORDER BY id",
        a=first.device_id,
        b=second.device_id,
    )
    assert [tuple(row) for row in rows] == [
        (first.device_id, "gpslogger"),
        (second.device_id, "owntracks"),
    ]
