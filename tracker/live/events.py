"""Socket.IO namespace /live: command-centre viewers receive the positions of their scope."""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, Namespace, disconnect, join_room

from .. import metrics
from ..auth import open_sessions, session_token_hash
from ..cutoff import cutoff
from ..dispatch.watcher import dispatch_watcher
from ..extensions import socketio
from .feed import feed
from .rooms import viewer_room

log = logging.getLogger(__name__)


def parse_bbox(value: Any) -> tuple[float, float, float, float] | None:
    """Return a [west, south, east, north] list as a box, or None if it is not one."""
    if not isinstance(value, list | tuple) or len(value) != 4:
        return None
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in value):
        return None
    west, south, east, north = (float(v) for v in value)
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        return None
    return west, south, east, north


class LiveNamespace(Namespace):
    """Events between the live map and the server; see docs/command-centre.md."""

    def __init__(self, namespace: str = "/live") -> None:
        """Create the namespace with no viewers connected."""
        super().__init__(namespace)
        # sid -> hash of the login token the connection was opened with.
        self.logins: dict[str, str] = {}
        metrics.viewers_connected.set_function(lambda: len(self.logins))

    def on_connect(self, auth: Any = None) -> None:
        """Sent by a map page when it connects: accept it only with a staff session."""
        token_hash = session_token_hash()
        if token_hash is None:
            raise ConnectionRefusedError("session: log in first")
        room = viewer_room(current_user)
        join_room(room)
        self.logins[request.sid] = token_hash
        feed.add_viewer(request.sid, current_user.id, room)
        cutoff.add_sweep(self.sweep_ended)
        cutoff.start()
        dispatch_watcher.start()
        log.info("viewer %s connected to %s", current_user.username, room)

    def on_disconnect(self, reason: Any = None) -> None:
        """Sent when a viewer's connection ends: forget it."""
        self.logins.pop(request.sid, None)
        feed.remove_viewer(request.sid)

    def sweep_ended(self) -> None:
        """Close the connections whose login has ended (logout, password change, ...)."""
        still_open = open_sessions(set(self.logins.values()))
        for sid, token_hash in list(self.logins.items()):
            if token_hash not in still_open:
                log.info("closing a /live connection whose login has ended")
                self.logins.pop(sid, None)
                feed.remove_viewer(sid)
                socketio.emit(
                    "session_ended",
                    {"error": "session: log in first"},
                    namespace=self.namespace,
                    to=sid,
                )
                socketio.server.disconnect(sid, namespace=self.namespace)

    def on_subscribe(self, payload: Any = None) -> dict[str, Any]:
        """Sent by a viewer to narrow its feed to `bbox` (or widen it with bbox null)."""
        if not current_user.is_authenticated:
            # The login ended since the connection opened; the sweep closes it soon.
            disconnect()
            return {"ok": False, "error": "session: log in first"}
        raw = payload.get("bbox") if isinstance(payload, dict) else None
        bbox = parse_bbox(raw)
        if raw is not None and bbox is None:
            return {"ok": False, "error": "bbox: must be [west, south, east, north] in degrees"}
        feed.subscribe(request.sid, bbox)
        return {"ok": True, "bbox": list(bbox) if bbox else None}
