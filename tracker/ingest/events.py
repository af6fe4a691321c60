"""Socket.IO namespace /device: phones authenticate and stream positions."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, current_app, request
from flask_socketio import ConnectionRefusedError, Namespace, join_room
from sqlalchemy.exc import SQLAlchemyError

from .. import metrics, store
from ..cutoff import cutoff
from ..dispatch.watcher import dispatch_watcher
from ..extensions import db, socketio
from ..store.devices import DeviceIdentity
from . import service
from .writer import StoreUnavailableError

log = logging.getLogger(__name__)

NAMESPACE = "/device"


def device_room(device_id: int) -> str:
    """Return the room that every connection of one device joins."""
    return f"device:{device_id}"


def send_to_device(device_id: int, event: str, payload: dict[str, Any]) -> None:
    """Push an event to every open connection of a device, on whichever process it is."""
    socketio.emit(event, payload, namespace=NAMESPACE, to=device_room(device_id))


def send_task(device_id: int, task: dict[str, Any]) -> None:
    """Push a `task` from the command centre to every open connection of a device.

    Nothing depends on this reaching the phone: a task stays `sent` until a phone
    acknowledges it, and a phone asks for its tasks (`sync`) on every connect.
    """
    send_to_device(device_id, "task", task)
    log.info("task %s (%s) sent to device %d", task.get("id"), task.get("status"), device_id)


# Sockets refresh devices.last_socket_at this often, so that a phone that stays connected
# without moving keeps its shift open (store.people.close_idle_shifts).
SOCKET_TOUCH_INTERVAL_S = 60.0


ITEM_FIELDS = frozenset({"ts", "lat", "lon", "accuracy", "altitude", "speed", "heading", "battery"})
# An item of known fields with number or short string values encodes to well under this.
ITEM_MAX_BYTES = 400


def _encoded_size(payload: Any, cap: int) -> int:
    """Return the payload's JSON size, or a safe upper bound when it is clearly small.

    Encoding every batch again just to measure it costs a noticeable share of the server's
    CPU; a batch of at most 500 items made of the protocol's fields is always far below the
    cap, so only unusual payloads are measured exactly.
    """
    items = payload.get("positions") if isinstance(payload, dict) else None
    if (
        isinstance(items, list)
        and len(items) * ITEM_MAX_BYTES <= cap
        and len(payload) == 1
        and len(items) <= 500
        and all(
            type(item) is dict
            and item.keys() <= ITEM_FIELDS
            and all(type(v) is not str or len(v) <= 40 for v in item.values())
            for item in items
        )
    ):
        return len(items) * ITEM_MAX_BYTES
    return len(json.dumps(payload, separators=(",", ":"), default=str))


REVOKED_ACK = {"ok": False, "error": "auth.token: this device has been revoked"}


def _never_raise(handler: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Answer an unexpected failure with a retryable error instead of no ack at all."""

    @wraps(handler)
    def wrapper(*args: Any) -> dict[str, Any]:
        try:
            return handler(*args)
        except Exception:
            log.exception("%s failed", handler.__name__)
            return {"ok": False, "error": "server: internal error, retry", "retry": True}

    return wrapper


def _device_event(handler: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Run a device event only while its device is active; never raise (see _never_raise).

    The check is one indexed query: these events (duty, SOS, tasks) are rare, and a revoked
    phone must be refused on every one of them, on whichever process it reaches.
    """

    @_never_raise
    @wraps(handler)
    def wrapper(self: DeviceNamespace, *args: Any) -> dict[str, Any]:
        sid = request.sid
        device = self.devices.get(sid)
        if device is None or store.devices.inactive_devices(db.session, [device.device_id]):
            socketio.start_background_task(self._disconnect_later, sid)
            return REVOKED_ACK
        # Every event carries one payload; extra arguments are ignored, not a crash.
        return handler(self, device, args[0] if args else None)

    return wrapper


def _retry_on_store_error(handler: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run a handler; a database failure is answered `retry`, never left unanswered."""
    try:
        return handler(*args)
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("%s failed on the database", handler.__name__, exc_info=True)
        return {"ok": False, "error": "store: database unavailable, retry", "retry": True}


class DeviceNamespace(Namespace):
    """Events between phones and the server; see docs/protocol.md."""

    def __init__(self, namespace: str = "/device") -> None:
        """Create the namespace with no devices connected."""
        super().__init__(namespace)
        self.devices: dict[str, DeviceIdentity] = {}
        metrics.devices_connected.set_function(lambda: len(self.devices))
        self._touched_at = 0.0
        self._connected_since_sweep: set[int] = set()

    def on_connect(self, auth: Any = None) -> None:
        """Sent by a phone when it connects: accept it only with a valid device token."""
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            raise ConnectionRefusedError("auth.token: a device token is required")
        try:
            device = service.identify_device(token)
        except StoreUnavailableError as exc:
            raise ConnectionRefusedError(str(exc)) from None
        if device is None:
            raise ConnectionRefusedError("auth.token: unknown or revoked device token")
        self.devices[request.sid] = device
        # Recorded by the next sweep, for every phone that connected since, in one write:
        # after a restart thousands reconnect within seconds.
        self._connected_since_sweep.add(device.device_id)
        join_room(device_room(device.device_id))
        cutoff.add_sweep(self.sweep_revoked)
        cutoff.add_sweep(self.touch_connected)
        cutoff.start()
        dispatch_watcher.start()
        log.info("device %d of person %d connected", device.device_id, device.person_id)

    def on_disconnect(self, reason: Any = None) -> None:
        """Sent when a phone's connection ends: forget it."""
        device = self.devices.pop(request.sid, None)
        if device is not None:
            log.info("device %d disconnected (%s)", device.device_id, reason)

    @_never_raise
    def handle_positions(self, sid: str, payload: Any = None) -> dict[str, Any]:
        """Sent by a phone with a batch of fixes; the ack follows their commit.

        Registered on python-socketio directly (register_positions_handler): this is the
        one hot event, and it needs neither the Flask request context nor the session
        that Flask-SocketIO would build for every batch.
        """
        device = self.devices.get(sid)
        if device is None:
            # Swept as revoked after this batch was sent.
            return REVOKED_ACK
        ack = service.store_positions(
            device, payload, _encoded_size(payload, current_app.config["MAX_PAYLOAD_BYTES"])
        )
        if ack.get("error", "").startswith("auth.token"):
            # Close only after the ack has gone out, so the phone learns why.
            socketio.start_background_task(self._disconnect_later, sid)
        return ack

    def _disconnect_later(self, sid: str) -> None:
        """Close a revoked device's connection a moment after its last ack."""
        socketio.sleep(0.5)
        socketio.server.disconnect(sid, namespace=self.namespace)

    def sweep_revoked(self) -> None:
        """Tell every connection of a device revoked since it connected, and close it."""
        revoked = store.devices.inactive_devices(
            db.session, {device.device_id for device in self.devices.values()}
        )
        for sid, device in list(self.devices.items()):
            if device.device_id in revoked:
                log.info("closing the connection of revoked device %d", device.device_id)
                socketio.emit("revoked", REVOKED_ACK, namespace=self.namespace, to=sid)
                self.devices.pop(sid, None)
                socketio.start_background_task(self._disconnect_later, sid)

    def touch_connected(self) -> None:
        """Record newly connected phones as web-app sockets; refresh all once a minute."""
        now = time.monotonic()
        if now - self._touched_at >= SOCKET_TOUCH_INTERVAL_S:
            self._touched_at = now
            store.devices.touch_sockets(db.session, [d.device_id for d in self.devices.values()])
        if self._connected_since_sweep:
            connected, self._connected_since_sweep = self._connected_since_sweep, set()
            store.devices.mark_webapp_sockets(db.session, connected)
        db.session.commit()

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Route an event to its handler; answer an event this namespace does not know."""
        if event not in ("connect", "disconnect") and not hasattr(self, f"on_{event}"):
            return {"ok": False, "error": f"event: unknown event {event[:40]!r}"}
        return super().trigger_event(event, *args)

    @_device_event
    def on_duty(self, device: DeviceIdentity, payload: Any = None) -> dict[str, Any]:
        """Sent by a phone going on or off duty; opens or closes the person's shift."""
        return service.set_duty(device, payload)

    @_device_event
    def on_sos(self, device: DeviceIdentity, payload: Any = None) -> dict[str, Any]:
        """Sent by a phone whose user long-pressed SOS; staff in scope see it at once."""
        return service.raise_sos(device, payload)

    @_device_event
    def on_task_update(self, device: DeviceIdentity, payload: Any = None) -> dict[str, Any]:
        """Sent by a phone that received, accepted, declined or finished a task.

        `{"id", "status", "note"}`; the ack carries the task's status after it.
        """
        # Imported here because dispatch imports this module to send tasks to phones.
        from ..dispatch.service import update_task

        return _retry_on_store_error(update_task, device, payload)

    @_device_event
    def on_sync(self, device: DeviceIdentity, payload: Any = None) -> dict[str, Any]:
        """Sent by a phone on every connect: who it is, its tasks and its own reports."""
        from ..dispatch.service import phone_sync

        return _retry_on_store_error(phone_sync, device)

    def on_malformed(self, reason: Any = None, *_: Any) -> dict[str, Any]:
        """Stands for a packet that could not be decoded (socket_json.MALFORMED_EVENT)."""
        return {"ok": False, "error": str(reason)[:200]}


def register_positions_handler(app: Flask, namespace: DeviceNamespace) -> None:
    """Route `positions` on /device to the namespace with only an app context around it."""

    def on_positions(sid: str, payload: Any = None, *_: Any) -> dict[str, Any]:
        with app.app_context():
            return namespace.handle_positions(sid, payload)

    # python-socketio tries handlers registered this way before namespace classes.
    socketio.server.on("positions", on_positions, namespace=namespace.namespace)
