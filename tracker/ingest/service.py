"""Turn a device's payload into stored positions and an exact acknowledgement."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

import gevent
from flask import Flask, current_app
from gevent.event import AsyncResult, Event
from sqlalchemy.exc import SQLAlchemyError

from .. import metrics, store
from ..auth import hash_token
from ..extensions import db
from ..live.publish import publish_alert
from ..privacy.policy import policies
from ..store.devices import DeviceIdentity
from ..store.positions import PositionRow
from .validate import ItemError, Limits, PayloadError, Rejection, parse_batch, parse_recent_ts
from .writer import StoreUnavailableError, WriteOutcome, writer

log = logging.getLogger(__name__)


def limits() -> Limits:
    """Return the validation rules configured for this app (made once per app)."""
    made = current_app.extensions.get("ingest_limits")
    if made is None:
        config = current_app.config
        made = current_app.extensions["ingest_limits"] = Limits(
            max_items=config["MAX_BATCH_ITEMS"],
            max_future=timedelta(seconds=config["MAX_FUTURE_S"]),
            max_age=timedelta(seconds=config["MAX_AGE_S"]),
        )
    return made


def store_positions(
    device: DeviceIdentity,
    payload: Any,
    payload_bytes: int,
    now: datetime | None = None,
    path: str = "socket",
) -> dict[str, Any]:
    """Validate and store a `positions` payload; return the acknowledgement.

    Fixes outside the person's tracking policy (tracker.privacy.policy) are acknowledged
    but not stored, and counted in `not_kept` and the metrics.

    Args:
        device: who sent it.
        payload: the decoded JSON payload.
        payload_bytes: its encoded size, checked against MAX_PAYLOAD_BYTES.
        now: the current time (tests inject it).
        path: how it arrived, for the metrics (tracker.metrics.PATHS).

    Returns:
        `{"ok": true, "stored", "duplicates", "rejected"}` once the valid rows are committed
        (with `not_kept` when some were outside the policy), or `{"ok": false, "error"[,
        "retry": true]}`.
    """
    started = time.perf_counter()
    cap = current_app.config["MAX_PAYLOAD_BYTES"]
    if payload_bytes > cap:
        return {"ok": False, "error": f"payload: larger than {cap} bytes"}
    try:
        fixes, rejections = parse_batch(payload, now or datetime.now(UTC), limits())
    except PayloadError as exc:
        return {"ok": False, "error": str(exc)}
    person_id, device_id = device.person_id, device.device_id
    received = len(fixes) + len(rejections)
    discarded: dict[str, int] = {}
    kept = []
    for indexed in fixes:
        why = policies.why_not_kept(person_id, indexed[1][0])
        if why is None:
            kept.append(indexed)
        else:
            discarded[why] = discarded.get(why, 0) + 1
    fixes = kept
    rows = [PositionRow(person_id, device_id, *fix) for _, fix in fixes]
    metrics.ingest_clock.received(len(rows))
    try:
        if rows:
            outcome = writer.submit(rows)
        else:
            # No commit will check the device: a revoked one must still learn it is.
            revoked = bool(store.devices.inactive_devices(db.session, [device_id]))
            db.session.close()
            outcome = WriteOutcome(0, 0, revoked)
    except StoreUnavailableError as exc:
        return {"ok": False, "error": str(exc), "retry": True}
    except SQLAlchemyError:
        return {"ok": False, "error": "store: database unavailable, retry", "retry": True}
    if outcome.revoked:
        known_devices.forget(device.device_id)
        log.info("refused positions from revoked device %d", device.device_id)
        return {"ok": False, "error": "auth.token: this device has been revoked"}
    if outcome.refused:
        rejections += [Rejection(fixes[position][0], why) for position, why in outcome.refused]
        rejections.sort(key=attrgetter("index"))
    rejected = [r.as_dict() for r in rejections]
    metrics.count_batch(
        path, received, outcome.stored, outcome.duplicates, rejected, discarded, started
    )
    ack = {
        "ok": True,
        "stored": outcome.stored,
        "duplicates": outcome.duplicates,
        "rejected": rejected,
    }
    if discarded:
        ack["not_kept"] = sum(discarded.values())
    return ack


class KnownDevices:
    """The devices whose tokens this process has seen lately, so a request need not ask.

    GPS apps send one fix per HTTP request; looking each token up costs a pooled database
    connection and a round trip. Revocation does not wait for an entry to expire: every
    group commit checks that each device is still active and refuses the rows of one that
    is not, and that refusal drops its entry here (forget()), so its next request is looked
    up again and refused.
    """

    MAX_ENTRIES = 200_000

    def __init__(self) -> None:
        """Start with no device known."""
        self._by_hash: dict[str, tuple[DeviceIdentity, float]] = {}

    def get(self, token_hash: str, now: float) -> DeviceIdentity | None:
        """Return the device of a token seen less than DEVICE_CACHE_S ago, if any."""
        hit = self._by_hash.get(token_hash)
        if hit is None or hit[1] <= now:
            return None
        return hit[0]

    def put(self, token_hash: str, device: DeviceIdentity, expires: float) -> None:
        """Remember a device until `expires` (monotonic seconds)."""
        if len(self._by_hash) >= self.MAX_ENTRIES:
            self._by_hash.clear()  # rare; every entry is cheap to look up again
        self._by_hash[token_hash] = (device, expires)

    def forget(self, device_id: int) -> None:
        """Drop every entry of a device that a commit found revoked or deactivated."""
        for token_hash in [h for h, (d, _) in self._by_hash.items() if d.device_id == device_id]:
            del self._by_hash[token_hash]


known_devices = KnownDevices()


class TokenLookups:
    """Look up the tokens that many requests wait for in one query, on one connection.

    After a restart every phone reconnects at once, and every GPS app's next request
    carries a token this process has not seen: thousands of lookups within a second. One
    query per waiting request would hold the whole connection pool (the rest time out);
    instead each waits here while one greenlet looks up everything waiting, as the group
    commit does for positions.
    """

    def __init__(self) -> None:
        """Create an unbound lookup loop; init_app() binds it."""
        self._app: Flask | None = None
        self._waiting: dict[str, list[AsyncResult]] = {}
        self._has_work = Event()
        self._greenlet: gevent.Greenlet | None = None
        self.timeout_s = 10.0

    def init_app(self, app: Flask) -> None:
        """Bind the loop to an application."""
        self._app = app
        self.timeout_s = app.config["INGEST_ACK_TIMEOUT_S"]

    def lookup(self, token_hash: str) -> DeviceIdentity | None:
        """Return the active device of a token hash, asking the database now.

        Raises:
            StoreUnavailableError: the database could not answer in time.
        """
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)
        result = AsyncResult()
        self._waiting.setdefault(token_hash, []).append(result)
        self._has_work.set()
        try:
            return result.get(timeout=self.timeout_s)
        except gevent.Timeout:
            raise StoreUnavailableError("store: token lookup timed out, retry") from None

    def _run(self) -> None:
        """Answer every waiting lookup, one query per turn, forever."""
        assert self._app is not None
        while True:
            self._has_work.wait()
            self._has_work.clear()
            batch, self._waiting = self._waiting, {}
            if not batch:
                continue
            try:
                with self._app.app_context():
                    found = store.devices.devices_by_token_hashes(db.session, list(batch))
                    db.session.close()
            except SQLAlchemyError as exc:
                log.warning("looking up %d device tokens failed: %s", len(batch), exc)
                for waiters in batch.values():
                    for waiter in waiters:
                        waiter.set_exception(
                            StoreUnavailableError("store: database unavailable, retry")
                        )
                continue
            for token_hash, waiters in batch.items():
                for waiter in waiters:
                    waiter.set(found.get(token_hash))


token_lookups = TokenLookups()


class DeviceClients:
    """Record which client reports with each device, without a write per request.

    The dispatcher must see who cannot receive tasks: a device last used by a GPS app has
    no socket. A GPS app's requests arrive every few seconds; this process remembers what
    it last recorded per device and writes only a change, off the request's path. Changes
    are written by one greenlet, all that are waiting in one statement: when thousands of
    apps reconnect at once (a restart, a network back), a greenlet each had exhausted the
    connection pool (bench/http_ingest.py logged 328 failed writes in one run).
    """

    def __init__(self) -> None:
        """Start knowing nothing."""
        self._recorded: dict[int, str] = {}
        self._pending: dict[int, str] = {}
        self._writing = False
        self._app: Flask | None = None

    def init_app(self, app: Flask) -> None:
        """Bind to an application."""
        self._app = app

    def note(self, device_id: int, client: str) -> None:
        """Record (in the background) that `client` reported with this device."""
        if self._recorded.get(device_id) == client or self._app is None:
            return
        self._recorded[device_id] = client
        self._pending[device_id] = client
        if not self._writing:
            self._writing = True
            gevent.spawn(self._write_pending)

    def _write_pending(self) -> None:
        """Write what is pending, and what arrived meanwhile, until nothing is left."""
        assert self._app is not None
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                with self._app.app_context():
                    try:
                        store.devices.set_device_clients(db.session, batch)
                        db.session.commit()
                    except SQLAlchemyError:
                        db.session.rollback()
                        # Forget them all, so that each device's next request tries again.
                        batch.update(self._pending)
                        self._pending = {}
                        for device_id, client in batch.items():
                            if self._recorded.get(device_id) == client:
                                del self._recorded[device_id]
                        log.warning("could not record the client of %d devices", len(batch))
                        return
        finally:
            self._writing = False


device_clients = DeviceClients()


def identify_device(token: Any, cached: bool = False) -> DeviceIdentity | None:
    """Return the active device that owns this token, if any.

    Args:
        token: what the client presented.
        cached: accept a device seen within DEVICE_CACHE_S (the HTTP ingest paths, whose
            positions the group commit checks again), instead of asking the database.

    Raises:
        StoreUnavailableError: the database could not be asked.
    """
    if not isinstance(token, str) or not token:
        return None
    token_hash = hash_token(token)
    now = time.monotonic()
    if cached and (device := known_devices.get(token_hash, now)) is not None:
        return device
    device = token_lookups.lookup(token_hash)
    if device is not None and cached:
        known_devices.put(token_hash, device, now + current_app.config["DEVICE_CACHE_S"])
    return device


def set_duty(device: DeviceIdentity, payload: Any) -> dict[str, Any]:
    """Open or close the person's shift as a `duty` payload asks; return the ack."""
    if not isinstance(payload, dict) or not isinstance(payload.get("on"), bool):
        return {"ok": False, "error": "on: must be true or false"}
    try:
        if payload["on"]:
            shift = store.people.open_shift(db.session, device.person_id)
        else:
            shift = store.people.close_shift(db.session, device.person_id)
        ended = None if payload["on"] or shift is None else (shift.started_at, shift.ended_at)
        db.session.commit()
        policies.note_duty(device.person_id, payload["on"], ended)
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("duty change for person %d failed", device.person_id, exc_info=True)
        return {"ok": False, "error": "store: database unavailable, retry", "retry": True}
    log.info("person %d is now %s duty", device.person_id, "on" if payload["on"] else "off")
    return {
        "ok": True,
        "on": payload["on"],
        "shift_id": shift.id if shift else None,
        "started_at": shift.started_at.isoformat() if shift else None,
        "ended_at": shift.ended_at.isoformat() if shift and shift.ended_at else None,
    }


MAX_SOS_NOTE_CHARS = 500


def _sos_point(payload: dict[str, Any]) -> tuple[float, float] | None:
    """Return the (lat, lon) of an SOS, None when the phone had no fix, or raise ItemError."""
    lat, lon = payload.get("lat"), payload.get("lon")
    if lat is None and lon is None:
        return None
    for name, value, bound in (("lat", lat, 90), ("lon", lon, 180)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ItemError(f"{name}: must be a number or null")
        if not -bound <= value <= bound:
            raise ItemError(f"{name}: must be between -{bound} and {bound}")
    return float(lat), float(lon)


def raise_sos(device: DeviceIdentity, payload: Any) -> dict[str, Any]:
    """Store an `sos` payload as an alert, push it to staff in scope, and return the ack.

    Args:
        device: who sent it.
        payload: `{"ts", "lat", "lon", "note"}`; lat/lon may be null without a fix.

    Returns:
        `{"ok": true, "alert_id", "received_at", "duplicate"}` once committed, or
        `{"ok": false, "error"[, "retry": true]}`.
    """
    if not isinstance(payload, dict):
        return {"ok": False, "error": "payload: must be an object"}
    note = payload.get("note")
    try:
        ts = parse_recent_ts(payload.get("ts"), datetime.now(UTC), limits())
        point = _sos_point(payload)
        if note is not None and not isinstance(note, str):
            raise ItemError("note: must be a string")
    except ItemError as exc:
        return {"ok": False, "error": str(exc)}
    note = (note or "").strip()[:MAX_SOS_NOTE_CHARS] or None
    if store.devices.inactive_devices(db.session, [device.device_id]):
        # HTTP alarms come with a cached identity; an SOS is rare enough to ask each time.
        known_devices.forget(device.device_id)
        return {"ok": False, "error": "auth.token: this device has been revoked"}
    try:
        alert, new = store.alerts.insert_alert(
            db.session, device.person_id, device.device_id, "sos", ts, point, note
        )
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("SOS of person %d could not be stored", device.person_id, exc_info=True)
        return {"ok": False, "error": "store: database unavailable, retry", "retry": True}
    if new:
        log.warning("SOS %d from person %d", alert.id, alert.person_id)
        try:
            publish_alert(alert.as_dict(), device.person_id)
        except Exception:
            # The alert is stored and staff will see it on the next load; the phone must
            # not resend it for a failed push.
            log.exception("SOS %d stored but not pushed to viewers", alert.id)
    return {
        "ok": True,
        "alert_id": alert.id,
        "received_at": alert.received_at.isoformat(),
        "duplicate": not new,
    }
