"""Socket.IO namespace /live: command-centre viewers receive the positions of their scope."""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, Namespace, join_room

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

    def on_connect(self, auth: Any = None) -> None:
        """Sent by a map page when it connects: accept it only with a staff session."""
        if not current_user.is_authenticated:
            raise ConnectionRefusedError("session: log in first")
        room = viewer_room(current_user)
        join_room(room)
        feed.add_viewer(request.sid, current_user.id, room)
        log.info("viewer %s connected to %s", current_user.username, room)

    def on_disconnect(self, reason: Any = None) -> None:
        """Sent when a viewer's connection ends: forget it."""
        feed.remove_viewer(request.sid)

    def on_subscribe(self, payload: Any = None) -> dict[str, Any]:
        """Sent by a viewer to narrow its feed to `bbox` (or widen it with bbox null)."""
        raw = payload.get("bbox") if isinstance(payload, dict) else None
        bbox = parse_bbox(raw)
        if raw is not None and bbox is None:
            return {"ok": False, "error": "bbox: must be [west, south, east, north] in degrees"}
        feed.subscribe(request.sid, bbox)
        return {"ok": True, "bbox": list(bbox) if bbox else None}
