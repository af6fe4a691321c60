"""Prometheus metrics, /metrics, /healthz and /readyz (docs/operations.md).

One gunicorn worker per process (deploy/gunicorn.conf.py), so each process keeps its own
counters in memory and is scraped on its own address: no multiprocess directory, and no
figures summed wrongly across workers. Labels never name a person or a device.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from . import store
from .extensions import db

log = logging.getLogger(__name__)

# The paths a fix arrives by: the /device socket, POST /api/v1/positions, the GPS apps.
PATHS = ("socket", "api", "osmand", "owntracks", "overland")

positions_received = Counter(
    "tracker_positions_received_total", "Fixes received, valid or not.", ["path"]
)
positions_stored = Counter(
    "tracker_positions_stored_total", "Fixes committed to the positions table.", ["path"]
)
positions_duplicated = Counter(
    "tracker_positions_duplicated_total", "Fixes already stored (a resend).", ["path"]
)
positions_rejected = Counter(
    "tracker_positions_rejected_total",
    "Fixes refused as invalid, by the field that broke a rule.",
    ["path", "reason"],
)
positions_discarded = Counter(
    "tracker_positions_discarded_total",
    "Fixes acknowledged but not kept: outside the unit's tracking policy.",
    ["path", "reason"],
)
commit_duration = Histogram(
    "tracker_group_commit_duration_seconds",
    "Time of one group commit of positions.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
commit_rows = Histogram(
    "tracker_group_commit_rows",
    "Rows in one group commit.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
ack_latency = Histogram(
    "tracker_ingest_ack_seconds",
    "Time from a batch's arrival to its acknowledgement.",
    ["path"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
live_push_latency = Histogram(
    "tracker_live_push_latency_seconds",
    "Time from a fix's commit to its push to live-map viewers.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
alerts_raised = Counter("tracker_alerts_raised_total", "Alerts raised and pushed.", ["kind"])
devices_connected = Gauge("tracker_devices_connected", "Phones connected to /device now.")
viewers_connected = Gauge("tracker_viewers_connected", "Live-map viewers connected to /live.")
writer_queue_rows = Gauge(
    "tracker_writer_queue_rows", "Positions waiting for the next group commit."
)
writer_queue_limit = Gauge(
    "tracker_writer_queue_limit_rows", "Queued positions beyond which ingest answers retry."
)
db_pool_checked_out = Gauge(
    "tracker_db_pool_connections_in_use", "Database connections of the pool in use now."
)
db_pool_size = Gauge("tracker_db_pool_connections_max", "Connections the pool may open.")
last_stored = Gauge(
    "tracker_positions_last_stored_timestamp_seconds", "When fixes were last committed."
)
last_received = Gauge(
    "tracker_positions_last_received_timestamp_seconds", "When a valid fix last arrived."
)

for _path in PATHS:
    # Zero series exist from the start, so rate() and alerts see them before any traffic.
    for _counter in (positions_received, positions_stored, positions_duplicated):
        _counter.labels(_path)


class IngestClock:
    """When valid fixes last arrived and when fixes were last stored, in monotonic seconds.

    /readyz compares the two: fixes arriving while nothing is stored for longer than
    READY_STORE_STALL_S means ingest has stalled, as Traccar's health check does.
    """

    def __init__(self) -> None:
        """Start with nothing seen."""
        self.received_at: float | None = None
        self.stored_at: float | None = None
        self.waiting_since: float | None = None

    def received(self, count: int) -> None:
        """Note that `count` valid fixes have just been handed to the writer."""
        if count:
            now = time.monotonic()
            self.received_at = now
            if self.waiting_since is None:
                self.waiting_since = now
            last_received.set_to_current_time()

    def stored(self) -> None:
        """Note that a group commit has just stored fixes."""
        self.stored_at = time.monotonic()
        self.waiting_since = None
        last_stored.set_to_current_time()

    def stalled_s(self, window_s: float) -> float:
        """Return how long fixes have been arriving without any being stored (0 if not).

        Fixes count as arriving while the last one came within `window_s`: once senders
        stop (they give up, or the load balancer has taken this process out), an old
        failure no longer holds the process out of service.
        """
        if self.waiting_since is None or self.received_at is None:
            return 0.0
        now = time.monotonic()
        if now - self.received_at > window_s:
            return 0.0
        return now - self.waiting_since


ingest_clock = IngestClock()


def count_batch(
    path: str,
    received: int,
    stored: int,
    duplicates: int,
    rejected: list[dict[str, Any]],
    discarded: dict[str, int],
    started: float,
) -> None:
    """Count one acknowledged batch of fixes and the time to its ack.

    Args:
        path: how it arrived (one of PATHS).
        received: how many items it had.
        stored: fixes committed.
        duplicates: fixes already stored.
        rejected: the ack's rejections (`{"index", "error": "field: rule"}`).
        discarded: reason -> fixes acknowledged but not kept (outside the policy).
        started: time.perf_counter() when the batch arrived.
    """
    positions_received.labels(path).inc(received)
    if stored:
        positions_stored.labels(path).inc(stored)
    if duplicates:
        positions_duplicated.labels(path).inc(duplicates)
    for rejection in rejected:
        positions_rejected.labels(path, _reason(rejection.get("error", ""))).inc()
    for reason, count in discarded.items():
        if count:
            positions_discarded.labels(path, reason).inc(count)
    ack_latency.labels(path).observe(time.perf_counter() - started)


def _reason(error: str) -> str:
    """Return a rejection's field (`lat`, `ts`, `item`) as a label of bounded values."""
    field = error.partition(":")[0].strip()
    # `positions[3].lat` and the like: the field without the index.
    field = field.rsplit(".", 1)[-1].split("[", 1)[0]
    return field[:24] if field.isidentifier() else "other"


def observe_commit(rows: int, duration_s: float) -> None:
    """Count one group commit: its size and how long it took."""
    commit_rows.observe(rows)
    commit_duration.observe(duration_s)
    if rows:
        ingest_clock.stored()


def _allowed(address: str | None, networks: list[Any]) -> bool:
    """Return whether a client address lies in one of the allowed networks."""
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in networks)


def parse_networks(value: str) -> list[Any]:
    """Return METRICS_ALLOW (comma-separated addresses or CIDR networks) as networks.

    Raises:
        ValueError: an entry is not an address or network; the message names it.
    """
    networks = []
    for part in value.split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"METRICS_ALLOW: {part.strip()!r} is not an address or network"
                ) from None
    return networks


bp = Blueprint("operations", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Return this process's metrics in the Prometheus text format (METRICS_ALLOW only)."""
    if not _allowed(request.remote_addr, current_app.extensions["metrics_allow"]):
        abort(403, description="metrics: this address may not read the metrics")
    _refresh_gauges()
    return Response(generate_latest(REGISTRY), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/healthz")
def healthz():
    """Answer 200 while the process runs: the liveness probe (it touches nothing else)."""
    return jsonify(ok=True)


@bp.get("/readyz")
def readyz():
    """Answer 200 when this process can take traffic, else 503 with the failed checks.

    The database answers, the migrations are current, the writer's greenlet is alive (or
    not needed yet) and its queue below the overload limit, and fixes that arrive are
    being stored.
    """
    checks = {name: check() for name, check in READY_CHECKS.items()}
    failed = {name: why for name, why in checks.items() if why is not None}
    if failed:
        log.warning("not ready: %s", "; ".join(f"{k}: {v}" for k, v in failed.items()))
    # Why a check failed (revisions, queue lengths) is for the operators' addresses only.
    detailed = _allowed(request.remote_addr, current_app.extensions["metrics_allow"])
    body = {
        "ok": not failed,
        "checks": {
            name: "ok" if why is None else why if detailed else "failed"
            for name, why in checks.items()
        },
    }
    return jsonify(body), 503 if failed else 200


def _check_database() -> str | None:
    """Return why the database does not answer, or None."""
    try:
        store.privacy.ping(db.session)
    except Exception as exc:
        db.session.rollback()
        return f"database does not answer ({type(exc).__name__})"
    finally:
        db.session.close()
    return None


def _check_migrations() -> str | None:
    """Return why the schema is not the code's newest revision, or None."""
    expected = current_app.extensions.get("migration_head")
    if expected is None:
        migrate_ext = current_app.extensions["migrate"]
        config = migrate_ext.migrate.get_config(migrate_ext.directory)
        expected = current_app.extensions["migration_head"] = ScriptDirectory.from_config(
            config
        ).get_current_head()
    try:
        current = store.privacy.schema_revision(db.session)
    except Exception as exc:
        db.session.rollback()
        return f"migration state unreadable ({type(exc).__name__})"
    finally:
        db.session.close()
    if current != expected:
        return f"database at revision {current}, code expects {expected}"
    return None


def _check_writer() -> str | None:
    """Return why the group-commit writer cannot take fixes, or None."""
    from .ingest.writer import writer  # the writer reports to this module: import late

    if writer.greenlet_died():
        return "the group-commit writer has stopped"
    if writer.pending_rows >= writer.max_pending_rows:
        return f"writer overloaded: {writer.pending_rows} rows queued"
    return None


def _check_ingest() -> str | None:
    """Return why arriving fixes are not being stored, or None."""
    limit_s = current_app.config["READY_STORE_STALL_S"]
    stalled_s = ingest_clock.stalled_s(limit_s)
    if stalled_s > limit_s:
        return f"fixes arrive but none stored for {stalled_s:.0f} s (limit {limit_s:g} s)"
    return None


READY_CHECKS: dict[str, Callable[[], str | None]] = {
    "database": _check_database,
    "migrations": _check_migrations,
    "writer": _check_writer,
    "ingest": _check_ingest,
}


def _refresh_gauges() -> None:
    """Read the gauges that are states of other objects (queue, pool, connections)."""
    from .ingest.writer import writer  # the writer reports to this module: import late

    writer_queue_rows.set(writer.pending_rows)
    writer_queue_limit.set(getattr(writer, "max_pending_rows", 0))
    pool = db.engine.pool
    checked_out = getattr(pool, "checkedout", None)
    if callable(checked_out):
        db_pool_checked_out.set(checked_out())
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", 0)
    if callable(size):
        db_pool_size.set(size() + max(0, overflow))


def init_app(app: Flask) -> None:
    """Register /metrics, /healthz and /readyz, and read METRICS_ALLOW."""
    app.extensions["metrics_allow"] = parse_networks(app.config["METRICS_ALLOW"])
    app.register_blueprint(bp)
