"""The group-commit writer under a burst: the process keeps working while a commit runs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import gevent
import gevent.event
from sqlalchemy import func, select

from tracker.extensions import db
from tracker.ingest.writer import StoreUnavailableError, WriteOutcome, writer
from tracker.models import Position
from tracker.store import positions as store_positions_module
from tracker.store.positions import PositionRow


def test_a_burst_longer_than_the_wait_is_split_into_several_commits(app, make_phone):
    # A thousand phones answered by one commit send their next fixes at once, and the event
    # loop runs every one of those requests before it wakes the writer's greenlet. Each
    # request here takes a tenth of the wait in blocking work, as parsing does, so the
    # burst lasts four waits: the submitter that finds the wait over must commit what is
    # pending itself, rather than let the whole burst pile up into one transaction.
    phone = make_phone()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    count = 40
    with app.app_context():
        flushes_before = writer.flushes

    def one_request(i: int) -> WriteOutcome:
        time.sleep(writer.interval_s / 10)  # blocking, as a request's CPU is
        row = PositionRow(
            phone.person_id, phone.device_id, start + timedelta(seconds=i), 39.9, 116.4
        )
        with app.app_context():
            return writer.submit([row])

    burst = [gevent.spawn(one_request, i) for i in range(count)]
    gevent.joinall(burst, raise_error=True)

    assert [g.value for g in burst] == [WriteOutcome(1, 0)] * count
    # The request that finds the wait over commits what is pending. With blocking database
    # calls every tenth request does; where psycopg2 waits cooperatively (the server, or
    # this process once a server test has patched it), the rest of the burst runs while
    # that commit is in the database and forms the next transaction. One transaction for
    # the whole burst is what this guards against.
    assert writer.flushes - flushes_before >= 2
    with app.app_context():
        stored = db.session.scalar(
            select(func.count(func.distinct(Position.ts))).where(
                Position.person_id == phone.person_id
            )
        )
        rows = db.session.scalar(
            select(func.count()).select_from(Position).where(Position.person_id == phone.person_id)
        )
    assert (stored, rows) == (count, count)


def test_a_lone_fix_still_waits_for_company_but_not_longer(app, make_phone):
    # The wait is counted from the fix's arrival: one phone alone is committed after about
    # one wait, not at once (that would cost a transaction per fix under light load).
    phone = make_phone()
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    row = PositionRow(phone.person_id, phone.device_id, ts, 39.9, 116.4)
    with app.app_context():
        started = time.monotonic()
        outcome = writer.submit([row])
        waited = time.monotonic() - started
    assert outcome == WriteOutcome(1, 0)
    assert waited >= writer.interval_s * 0.9


def test_a_leader_killed_mid_commit_leaves_no_one_waiting(app, make_phone, monkeypatch):
    # The leader commits in its own request's greenlet, which can be killed (a shutdown, a
    # timeout around the request). The others in its transaction must hear "retry" at
    # once, not wait forever for a commit that will not come.
    phone = make_phone()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    rows = [
        PositionRow(phone.person_id, phone.device_id, start + timedelta(seconds=i), 39.9, 116.4)
        for i in range(2)
    ]
    real_store = store_positions_module.store_positions
    committing = gevent.event.Event()

    def slow_store(*args, **kwargs):
        committing.set()
        gevent.sleep(30)  # the statement is in the database when the leader is killed
        return real_store(*args, **kwargs)

    def submit(row: PositionRow) -> WriteOutcome:
        with app.app_context():
            return writer.submit([row])

    # Two rows fill a transaction, and the wait is long: the second submitter leads.
    monkeypatch.setattr(writer, "flush_rows", 2)
    monkeypatch.setattr(writer, "interval_s", 10.0)
    monkeypatch.setattr(store_positions_module, "store_positions", slow_store)
    follower = gevent.spawn(submit, rows[0])
    gevent.sleep(0.01)
    leader = gevent.spawn(submit, rows[1])
    assert committing.wait(timeout=5)
    leader.kill(block=True, timeout=5)
    follower.join(timeout=5)

    assert follower.ready()
    assert isinstance(follower.exception, StoreUnavailableError)
    assert "retry" in str(follower.exception)
    monkeypatch.setattr(store_positions_module, "store_positions", real_store)
    # The writer goes on: the resend of both fixes is stored, each once.
    with app.app_context():
        assert writer.submit(rows) == WriteOutcome(2, 0)
