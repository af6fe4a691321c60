"""Socket.IO namespace /device: phones authenticate and stream positions."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, current_app, request
from flask_socketio import ConnectionRefusedError, Namespace, join_room

from ..extensions import socketio
from ..queries import DeviceIdentity
from . import service

log = logging.getLogger(__name__)

NAMESPACE = "/device"


def device_room(device_id: int) -> str:
    """Return the room that every connection of one device joins."""
    return f"device:{device_id}"


def send_task(device_id: int, task: dict[str, Any]) -> None:
    """Push a `task` from the command centre to every open connection of a device."""
    socketio.emit("task", task, namespace=NAMESPACE, to=device_room(device_id))
    log.info("task %s sent to device %d", task.get("id"), device_id)


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


class DeviceNamespace(Namespace):
    """Events between phones and the server; see docs/protocol.md."""

    def __init__(self, namespace: str = "/device") -> None:
        """Create the namespace with no devices connected."""
        super().__init__(namespace)
        self.devices: dict[str, DeviceIdentity] = {}

    def on_connect(self, auth: Any = None) -> None:
        """Sent by a phone when it connects: accept it only with a valid device token."""
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            raise ConnectionRefusedError("auth.token: a device token is required")
        device = service.identify_device(token)
        if device is None:
            raise ConnectionRefusedError("auth.token: unknown or revoked device token")
        self.devices[request.sid] = device
        join_room(device_room(device.device_id))
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
        device = self.devices[sid]
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

    @_never_raise
    def on_duty(self, payload: Any = None) -> dict[str, Any]:
        """Sent by a phone going on or off duty; opens or closes the person's shift."""
        return service.set_duty(self.devices[request.sid], payload)

    @_never_raise
    def on_sos(self, payload: Any = None) -> dict[str, Any]:
        """Sent by a phone whose user long-pressed SOS; staff in scope see it at once."""
        return service.raise_sos(self.devices[request.sid], payload)

    @_never_raise
    def on_task_update(self, payload: Any = None) -> dict[str, Any]:
        """Sent by a phone accepting or finishing a task: `{"id", "status"}`."""
        # Imported here because dispatch imports this module to send tasks to phones.
        from ..dispatch.service import update_task

        return update_task(self.devices[request.sid], payload)


def register_positions_handler(app: Flask, namespace: DeviceNamespace) -> None:
    """Route `positions` on /device to the namespace with only an app context around it."""

    def on_positions(sid: str, payload: Any = None) -> dict[str, Any]:
        with app.app_context():
            return namespace.handle_positions(sid, payload)

    # python-socketio tries handlers registered this way before namespace classes.
    socketio.server.on("positions", on_positions, namespace=namespace.namespace)
