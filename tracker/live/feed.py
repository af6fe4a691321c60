"""The live feed: committed fixes, batched per LIVE_INTERVAL and routed to scope rooms."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask

from .. import metrics, store
from ..extensions import db, socketio
from ..ingest.writer import writer
from ..privacy.policy import policies
from ..store.positions import PositionRow
from . import publish
from .rooms import ALL, unit_room

log = logging.getLogger(__name__)

Bbox = tuple[float, float, float, float]

# The unit tree changes rarely; re-reading it for every push would be wasted work.
UNIT_TREE_TTL_S = 30.0


@dataclass(slots=True)
class Viewer:
    """A /live connection of this process: its scope room and optional viewport."""

    user_id: int
    room: str
    bbox: Bbox | None = None


def in_bbox(lon: float, lat: float, bbox: Bbox) -> bool:
    """Return whether a point lies in a (west, south, east, north) box."""
    west, south, east, north = bbox
    return west <= lon <= east and south <= lat <= north


def position_message(row: PositionRow, person: Any) -> dict[str, Any]:
    """Return one person's change as sent to viewers; the fields of /api/v1/live."""
    return {
        "person_id": row.person_id,
        "name": person.name,
        "role": person.role,
        "unit_id": person.unit_id,
        "on_duty": person.on_duty,
        "ts": row.ts.isoformat(),
        "lon": row.lon,
        "lat": row.lat,
        "accuracy": row.accuracy_m,
        "speed": row.speed_mps,
        "heading": row.heading_deg,
        "battery": row.battery,
    }


class LiveFeed:
    """Collect committed fixes (newest per person wins) and push them every interval."""

    def __init__(self) -> None:
        """Create an unbound feed; init_app() binds it."""
        self._app: Flask | None = None
        self._listening = False
        self._pending: dict[int, PositionRow] = {}
        # When the oldest pending fix was committed: the live-push latency runs from there.
        self._pending_since: float | None = None
        self._pushed_ts: dict[int, Any] = {}
        self._task: Any = None
        self._parents: dict[int, int | None] = {}
        self._parents_read_at = 0.0
        self.viewers: dict[str, Viewer] = {}
        self.interval_s = 1.0

    def init_app(self, app: Flask) -> None:
        """Bind the feed to an application and listen to the writer's commits."""
        self._app = app
        self.interval_s = app.config["LIVE_INTERVAL_S"]
        if not self._listening:
            writer.add_listener(self.collect)
            self._listening = True

    def collect(self, rows: Sequence[PositionRow]) -> None:
        """Keep each person's newest committed fix until the next push."""
        if rows and self._pending_since is None:
            self._pending_since = time.monotonic()
        for row in rows:
            kept = self._pending.get(row.person_id)
            if kept is None or row.ts > kept.ts:
                self._pending[row.person_id] = row
        if rows and self._task is None:
            self._task = socketio.start_background_task(self._run)

    def add_viewer(self, sid: str, user_id: int, room: str) -> None:
        """Register a /live connection in its scope room."""
        self.viewers[sid] = Viewer(user_id, room)

    def remove_viewer(self, sid: str) -> None:
        """Forget a /live connection."""
        self.viewers.pop(sid, None)

    def subscribe(self, sid: str, bbox: Bbox | None) -> None:
        """Narrow a viewer's feed to a box, or widen it to its whole scope (None)."""
        if sid in self.viewers:
            self.viewers[sid].bbox = bbox

    def _run(self) -> None:
        """Push pending changes forever, at most once per interval."""
        while True:
            socketio.sleep(self.interval_s)
            try:
                self.push()
            except Exception:
                log.exception("live push failed")

    def _unit_parents(self, unit_ids: set[int]) -> dict[int, int | None]:
        """Return the unit tree, re-read every UNIT_TREE_TTL_S or when a unit is new to it."""
        now = time.monotonic()
        if now - self._parents_read_at > UNIT_TREE_TTL_S or not unit_ids <= self._parents.keys():
            self._parents = store.scope.unit_parents(db.session)
            self._parents_read_at = now
        return self._parents

    def _rooms(self, unit_id: int | None, parents: dict[int, int | None]) -> list[str]:
        """Return the scope rooms that may see people of a unit."""
        rooms = [ALL]
        seen: set[int] = set()
        current = unit_id
        # `seen` guards against a cycle in a hand-edited unit tree.
        while current is not None and current not in seen:
            seen.add(current)
            rooms.append(unit_room(current))
            current = parents.get(current)
        return rooms

    def push(self) -> int:
        """Send every change since the last push to the rooms whose scope covers it.

        Returns:
            How many people's changes were sent.
        """
        pending, self._pending = self._pending, {}
        since, self._pending_since = self._pending_since, None
        fresh = {
            pid: row
            for pid, row in pending.items()
            if pid not in self._pushed_ts or row.ts > self._pushed_ts[pid]
        }
        if not fresh:
            return 0
        assert self._app is not None
        with self._app.app_context():
            people = [
                p
                for p in store.latest.people_on_map(db.session, list(fresh))
                if policies.shows_on_live_map(p.id, p.unit_id, p.on_duty)
            ]
            parents = self._unit_parents({p.unit_id for p in people if p.unit_id is not None})
            db.session.remove()
        by_room: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for person in people:
            row = fresh[person.id]
            self._pushed_ts[person.id] = row.ts
            message = position_message(row, person)
            for room in self._rooms(person.unit_id, parents):
                by_room[room].append(message)
        narrowed: dict[str, list[tuple[str, Bbox]]] = defaultdict(list)
        for sid, viewer in list(self.viewers.items()):
            if viewer.bbox is not None:
                narrowed[viewer.room].append((sid, viewer.bbox))
        for room, messages in by_room.items():
            publish.publish_positions(messages, to=room, skip_sids=[s for s, _ in narrowed[room]])
            for sid, bbox in narrowed[room]:
                inside = [m for m in messages if in_bbox(m["lon"], m["lat"], bbox)]
                if inside:
                    publish.publish_positions(inside, to=sid)
        if since is not None and by_room:
            metrics.live_push_latency.observe(time.monotonic() - since)
        return len(people)


feed = LiveFeed()
