"""The group-commit writer: one transaction stores the positions of many phones."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter

import gevent
from flask import Flask
from gevent.event import AsyncResult, Event
from gevent.lock import Semaphore
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from .. import metrics, store
from ..extensions import db
from ..store.positions import PositionRow

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[PositionRow]], None]


class StoreUnavailableError(RuntimeError):
    """The positions could not be committed now; the sender should retry."""


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What happened to the rows of one submission."""

    stored: int
    duplicates: int
    revoked: bool = False
    # (position in the submitted rows, why): rows the database refused as data. Validation
    # is meant to catch every such value first; this keeps a missed one from failing, or
    # jamming, the rows around it.
    refused: tuple[tuple[int, str], ...] = ()


@dataclass(slots=True)
class _Submission:
    rows: Sequence[PositionRow]
    result: AsyncResult = field(default_factory=AsyncResult)


class GroupCommitWriter:
    """Collect rows from every connection and commit them together.

    Each submitter waits (cooperatively, under gevent) until a transaction holding its
    own rows has committed, then receives its exact counts. Nothing is acknowledged before
    the commit: if the commit fails, every waiter is told to retry.

    A transaction starts once its first rows have waited `interval_s`, or when it holds
    `flush_rows`, one at a time. Usually the writer's own greenlet starts it. But when
    many requests are ready at once (a thousand phones answered by one commit send their
    next fixes together), the event loop runs every one of them before it wakes that
    greenlet, so the whole crowd joined one transaction and, while it committed, the
    process had nothing to do: a third of its time idle at 1,000 connections. So the
    submitter that finds the wait over commits for everyone pending itself, as a leader
    does in MySQL's group commit, and the requests behind it form the next transaction
    while this one is in the database.
    """

    def __init__(self) -> None:
        """Create an unbound writer; init_app() binds it."""
        self._app: Flask | None = None
        self._pending: list[_Submission] = []
        self._pending_rows = 0
        self._pending_since = 0.0  # time.monotonic() of the oldest pending submission
        self._flush_lock = Semaphore()  # one transaction at a time
        self._has_work = Event()
        self._full = Event()
        self._greenlet: gevent.Greenlet | None = None
        self._listeners: list[Listener] = []
        self._partition_days: set[date] = set()
        self._conn: Connection | None = None
        self.flushes = 0
        self.rows_committed = 0

    def init_app(self, app: Flask) -> None:
        """Bind the writer to an application."""
        self._app = app
        self.interval_s = app.config["INGEST_FLUSH_INTERVAL_S"]
        self.flush_rows = app.config["INGEST_FLUSH_ROWS"]
        self.ack_timeout_s = app.config["INGEST_ACK_TIMEOUT_S"]
        # Refuse quickly when the database falls behind, rather than queue seconds of input.
        self.max_pending_rows = 2 * self.flush_rows
        self.days_ahead = app.config["PARTITION_DAYS_AHEAD"]
        self.days_back = app.config["MAX_AGE_S"] // 86400 + 1
        app.extensions["ingest_writer"] = self

    @property
    def pending_rows(self) -> int:
        """Return how many rows wait for the next group commit."""
        return self._pending_rows

    def greenlet_died(self) -> bool:
        """Return whether the flushing greenlet ran and has stopped (it never should)."""
        return self._greenlet is not None and self._greenlet.dead

    def add_listener(self, listener: Listener) -> None:
        """Call `listener` with the rows of every commit, after the commit (once per listener)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def submit(self, rows: Sequence[PositionRow]) -> WriteOutcome:
        """Store rows in the next group commit and wait until it has committed.

        Raises:
            StoreUnavailableError: the rows were not committed; the caller should retry.
        """
        if not rows:
            return WriteOutcome(0, 0)
        if self._pending_rows + len(rows) > self.max_pending_rows:
            raise StoreUnavailableError("store: the server is overloaded, retry later")
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)
        submission = _Submission(rows)
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(submission)
        self._pending_rows += len(rows)
        self._has_work.set()
        due = (
            self._pending_rows >= self.flush_rows
            or time.monotonic() - self._pending_since >= self.interval_s
        )
        if due and not self._flush_lock.locked():
            self._flush_pending()  # as the leader: see the class docstring
        elif self._pending_rows >= self.flush_rows:
            self._full.set()
        try:
            return submission.result.get(timeout=self.ack_timeout_s)
        except gevent.Timeout:
            if submission in self._pending:
                # Not yet taken by a flush: withdraw it, so that "retry" stays true.
                self._pending.remove(submission)
                self._pending_rows -= len(rows)
                raise StoreUnavailableError("store: no commit within the timeout, retry") from None
        # Already in a transaction: only its commit (or failure) may answer.
        return submission.result.get()

    def _run(self) -> None:
        """Flush pending submissions forever, once they are due."""
        while True:
            self._has_work.wait()
            if self._flush_lock.locked():
                # A leader is committing; what arrived meanwhile may not be due yet.
                self._flush_lock.wait()
                continue
            # Give other phones a moment to join this transaction, unless it is full.
            wait_s = self._pending_since + self.interval_s - time.monotonic()
            if wait_s > 0 and self._pending_rows < self.flush_rows:
                self._full.wait(timeout=wait_s)
                self._full.clear()
                continue
            self._flush_pending()

    def _flush_pending(self) -> None:
        """Commit everything pending in one transaction, after the one in progress."""
        with self._flush_lock:
            batch, self._pending, self._pending_rows = self._pending, [], 0
            self._has_work.clear()
            if not batch:
                return
            try:
                self._flush(batch)
            except BaseException:
                # The leader is a request's greenlet, which can be killed mid-commit. No
                # one in its batch may wait for an answer that will not come: "retry" is
                # true whatever the statement did, since resends are deduplicated. The
                # connection may be mid-statement, so it is not used again.
                self._drop_connection()
                for submission in batch:
                    if not submission.result.ready():
                        submission.result.set_exception(
                            StoreUnavailableError("store: database unavailable, retry")
                        )
                raise

    def _flush(self, batch: list[_Submission]) -> None:
        """Commit one batch of submissions and answer each submitter."""
        assert self._app is not None
        with self._app.app_context():
            try:
                outcomes, committed = self._write(batch)
            except (OperationalError, DBAPIError) as exc:
                if _is_connection_error(exc) or not _is_data_error(exc):
                    log.warning("group commit of %d submissions failed: %s", len(batch), exc)
                    for submission in batch:
                        submission.result.set_exception(
                            StoreUnavailableError("store: database unavailable, retry")
                        )
                    return
                if len(batch) > 1:
                    # A row that breaks a database rule must not fail everyone's rows:
                    # retry each submission in its own transaction.
                    for submission in batch:
                        self._flush([submission])
                    return
                try:
                    outcome, committed = self._write_isolating_refused(batch[0])
                except (OperationalError, DBAPIError) as exc:
                    log.warning("storing a submission row by row failed: %s", exc)
                    batch[0].result.set_exception(
                        StoreUnavailableError("store: database unavailable, retry")
                    )
                    return
                outcomes = [outcome]
        for submission, outcome in zip(batch, outcomes, strict=True):
            submission.result.set(outcome)
        self.flushes += 1
        self.rows_committed += len(committed)
        for listener in self._listeners:
            try:
                listener(committed)
            except Exception:
                log.exception("listener %r failed after a commit", listener)

    def _write_isolating_refused(
        self, submission: _Submission
    ) -> tuple[WriteOutcome, list[PositionRow]]:
        """Store a submission whose rows include one the database refuses as data.

        Halves the rows until each refused row stands alone, so the good rows are stored
        and each refused one is answered like a validation error, never as "retry".

        Raises:
            DBAPIError: the database failed for another reason than the data.
        """
        stored = duplicates = 0
        revoked = False
        refused: list[tuple[int, str]] = []
        committed: list[PositionRow] = []
        pending = [list(range(len(submission.rows)))]
        while pending:
            positions = pending.pop()
            part = _Submission([submission.rows[i] for i in positions])
            try:
                (outcome,), part_committed = self._write([part])
            except DBAPIError as exc:
                if _is_connection_error(exc) or not _is_data_error(exc):
                    raise
                if len(positions) == 1:
                    refused.append((positions[0], _refusal(exc)))
                else:
                    middle = len(positions) // 2
                    pending += [positions[middle:], positions[:middle]]
                continue
            stored += outcome.stored
            duplicates += outcome.duplicates
            revoked = revoked or outcome.revoked
            committed += part_committed
        for position, why in refused:
            log.warning("the database refused row %d of a submission: %s", position, why)
        return WriteOutcome(stored, duplicates, revoked, tuple(sorted(refused))), committed

    def _write(self, batch: list[_Submission]) -> tuple[list[WriteOutcome], list[PositionRow]]:
        """Store the batch in one statement; return each submission's outcome."""
        first_by_key: dict[tuple[int, datetime], PositionRow] = {}
        for submission in batch:
            for row in submission.rows:
                first_by_key.setdefault((row.device_id, row.ts), row)
        unique_rows = list(first_by_key.values())
        self._ensure_partitions(unique_rows)
        started = time.perf_counter()
        try:
            result = store.positions.store_positions(self._connection(), unique_rows)
        except DBAPIError as exc:
            if _is_connection_error(exc):
                self._drop_connection()
            raise
        elapsed_s = time.perf_counter() - started
        metrics.observe_commit(len(unique_rows), elapsed_s)
        log.debug("stored %d rows in %.1f ms", len(unique_rows), elapsed_s * 1000)

        # The common case: every row was new and none was repeated within this commit.
        if (
            not result.duplicates
            and not result.revoked_devices
            and len(unique_rows) == sum(len(submission.rows) for submission in batch)
        ):
            return [WriteOutcome(len(s.rows), 0) for s in batch], unique_rows

        def stored(row: PositionRow) -> bool:
            return (
                row.device_id not in result.revoked_devices
                and (row.device_id, store.positions.epoch_us(row.ts)) not in result.duplicates
            )

        # Credit each new row to the first submission that carried it; every other
        # copy, in this batch or stored earlier, is a duplicate.
        credited: set[tuple[int, datetime]] = set()
        outcomes = []
        for submission in batch:
            new = duplicates = 0
            revoked = False
            for row in submission.rows:
                key = (row.device_id, row.ts)
                if row.device_id in result.revoked_devices:
                    revoked = True
                elif first_by_key[key] is row and key not in credited and stored(row):
                    credited.add(key)
                    new += 1
                else:
                    duplicates += 1
            outcomes.append(WriteOutcome(new, duplicates, revoked))
        committed = [row for row in unique_rows if stored(row)]
        return outcomes, committed

    def _connection(self) -> Connection:
        """Return the writer's own autocommit connection, opening it if needed.

        A dedicated connection spares each group commit the pool's checkout and pre-ping
        round trips; under load every round trip waits a whole turn of the event loop.
        """
        if self._conn is None or self._conn.closed:
            self._conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _drop_connection(self) -> None:
        """Forget a connection that failed, so that the next flush opens a fresh one."""
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:
                log.debug("closing the failed writer connection failed", exc_info=True)
            self._conn = None

    def _ensure_partitions(self, rows: Sequence[PositionRow]) -> None:
        """Make sure every day the rows fall on, and the days ahead, have a partition."""
        today = datetime.now(UTC).date()
        if not self._partition_days:
            with Session(db.engine) as session:
                self._partition_days = store.positions.partition_days(session)
        first, last = (
            today - timedelta(days=self.days_back),
            today + timedelta(days=self.days_ahead),
        )
        wanted = {first + timedelta(days=n) for n in range((last - first).days + 1)}
        times = list(map(attrgetter("ts"), rows))
        if not (
            first <= min(times).astimezone(UTC).date() and max(times).astimezone(UTC).date() <= last
        ):
            # Only imports of old tracks reach here; live fixes are always within the window.
            wanted |= {ts.astimezone(UTC).date() for ts in times}
        missing = sorted(wanted - self._partition_days)
        if not missing:
            return
        with Session(db.engine) as session, session.begin():
            for day in missing:
                if store.positions.ensure_partition(session, day):
                    log.info("created positions partition for %s", day)
        self._partition_days |= set(missing)


def _is_connection_error(exc: DBAPIError) -> bool:
    """Return whether the error is about reaching the database rather than the data."""
    return bool(exc.connection_invalidated) or isinstance(exc, OperationalError)


def _is_data_error(exc: DBAPIError) -> bool:
    """Return whether the database refused the values themselves (SQLSTATE classes 22, 23)."""
    return isinstance(exc, DataError | IntegrityError)


def _refusal(exc: DBAPIError) -> str:
    """Return a rejection message for a row the database refused."""
    diag = getattr(exc.orig, "diag", None)
    reason = getattr(diag, "message_primary", None) or "a value is out of range"
    return f"item: the database cannot store this fix ({reason})"


writer = GroupCommitWriter()
