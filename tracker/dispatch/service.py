"""Create incidents, propose the nearest people, send tasks to phones and follow them."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app

from .. import store
from ..extensions import db
from ..ingest.events import send_task
from ..live.publish import publish_incident
from ..models import Incident, User
from ..store.devices import DeviceIdentity

log = logging.getLogger(__name__)

MAX_DESCRIPTION_CHARS = 2000


class DispatchError(ValueError):
    """A dispatch request breaks a rule; the message names the field."""


def _coordinate(payload: dict[str, Any], name: str, bound: float) -> float:
    """Return payload[name] as a finite number within ±bound, or raise naming it."""
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DispatchError(f"{name}: must be a finite number")
    if not -bound <= value <= bound:
        raise DispatchError(f"{name}: must be between -{bound:g} and {bound:g}")
    return float(value)


def nearest(user: User, lat: float, lon: float, count: int, now: datetime) -> list[dict[str, Any]]:
    """Return the `count` nearest on-duty, non-stale people in scope, geodesic distances."""
    fresh_since = now - timedelta(seconds=current_app.config["DISPATCH_MAX_AGE_S"])
    # A few more than asked: the index orders on the sphere, distances are on the spheroid.
    stmt = store.incidents.nearest_people(user, lat, lon, count * 2 + 10, fresh_since)
    rows = sorted(db.session.execute(stmt).all(), key=lambda r: r.distance_m)[:count]
    return [
        {
            "person_id": r.person_id,
            "name": r.name,
            "role": r.role,
            "unit_id": r.unit_id,
            "lat": r.lat,
            "lon": r.lon,
            "ts": r.ts.isoformat(),
            "age_s": round((now - r.ts).total_seconds(), 1),
            "distance_m": round(r.distance_m, 2),
        }
        for r in rows
    ]


def create_incident(user: User, payload: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Create an incident from `{lat, lon, description}`; return it and the nearest people."""
    if not isinstance(payload, dict):
        raise DispatchError("body: must be a JSON object with lat, lon and description")
    lat = _coordinate(payload, "lat", 90)
    lon = _coordinate(payload, "lon", 180)
    description = payload.get("description")
    if not isinstance(description, str) or not description.strip():
        raise DispatchError("description: must be a non-empty string")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise DispatchError(f"description: at most {MAX_DESCRIPTION_CHARS} characters")
    count = payload.get("count", current_app.config["DISPATCH_CANDIDATES"])
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
        raise DispatchError("count: must be a whole number from 1 to 100")
    incident = store.incidents.add_incident(db.session, user, lat, lon, description.strip())
    db.session.commit()
    log.info("incident %d created by %s", incident.id, user.username)
    detail = incident_detail(incident.id)
    publish_incident(detail, incident.unit_id)
    return detail, nearest(user, lat, lon, count, datetime.now(UTC))


def visible_incident(user: User, incident_id: int) -> Incident | None:
    """Return the incident if the account may see it."""
    stmt = store.incidents.incidents_for(user).where(Incident.id == incident_id)
    if db.session.execute(stmt).first() is None:
        return None
    return db.session.get(Incident, incident_id)


def incident_detail(incident_id: int) -> dict[str, Any]:
    """Return an incident with its tasks and history, JSON-ready."""
    incident = db.session.get(Incident, incident_id)
    assert incident is not None
    lat, lon = store.incidents.incident_point(db.session, incident_id)
    return {
        "id": incident.id,
        "description": incident.description,
        "status": incident.status,
        "unit_id": incident.unit_id,
        "lat": lat,
        "lon": lon,
        "created_at": incident.created_at.isoformat(),
        "tasks": [
            {
                "id": t.id,
                "person_id": t.person_id,
                "name": t.name,
                "status": t.status,
                "assigned_at": t.assigned_at.isoformat(),
                "distance_m": t.distance_m,
            }
            for t in store.incidents.incident_tasks(db.session, incident_id)
        ],
        "history": [
            {
                "at": h.at.isoformat(),
                "kind": h.kind,
                "person_id": h.person_id,
                "person_name": h.person_name,
                "by": h.username,
            }
            for h in store.incidents.incident_history(db.session, incident_id)
        ],
    }


def assign(user: User, incident: Incident, person_ids: Any) -> dict[str, Any]:
    """Send people in scope to an incident; each gets a `task` on their phones."""
    if (
        not isinstance(person_ids, list)
        or not person_ids
        or not all(isinstance(p, int) and not isinstance(p, bool) for p in person_ids)
    ):
        raise DispatchError("person_ids: must be a non-empty list of person ids")
    for person_id in person_ids:
        if not store.scope.can_see_person(db.session, user, person_id):
            raise DispatchError(f"person_ids: person {person_id} is not in your scope")
    lat, lon = store.incidents.incident_point(db.session, incident.id)
    distances = {
        row["person_id"]: row["distance_m"]
        for row in nearest(user, lat, lon, 100, datetime.now(UTC))
    }
    new_tasks = []
    for person_id in person_ids:
        task = store.incidents.add_task(
            db.session, incident, person_id, user, distances.get(person_id)
        )
        if task is not None:
            new_tasks.append(task)
    db.session.commit()
    for task in new_tasks:
        message = {
            "id": task.id,
            "incident_id": incident.id,
            "description": incident.description,
            "lat": lat,
            "lon": lon,
            "distance_m": task.distance_m,
            "assigned_at": task.assigned_at.isoformat(),
            "status": task.status,
        }
        for device_id in store.devices.active_devices(db.session, task.person_id):
            send_task(device_id, message)
    detail = incident_detail(incident.id)
    publish_incident(detail, incident.unit_id)
    return detail


def update_task(device: DeviceIdentity, payload: Any) -> dict[str, Any]:
    """Apply a phone's `task_update` ({id, status: accepted|done}); return the ack."""
    if not isinstance(payload, dict):
        return {"ok": False, "error": "payload: must be an object"}
    task_id, status = payload.get("id"), payload.get("status")
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        return {"ok": False, "error": "id: must be a task id"}
    if status not in ("accepted", "done"):
        return {"ok": False, "error": "status: must be accepted or done"}
    task = store.incidents.person_task(db.session, device.person_id, task_id)
    if task is None:
        db.session.rollback()
        return {"ok": False, "error": "id: no such task for this person"}
    if task.status == status or (task.status == "done" and status == "accepted"):
        db.session.rollback()
        return {"ok": True, "id": task_id, "status": task.status}  # a resend: already there
    incident = store.incidents.advance_task(db.session, task, status)
    db.session.commit()
    log.info("task %d of person %d is now %s", task_id, device.person_id, status)
    publish_incident(incident_detail(incident.id), incident.unit_id)
    return {"ok": True, "id": task_id, "status": status}
