"""Create incidents, propose the nearest people, send tasks to phones and follow them."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app

from .. import store
from ..extensions import db
from ..ingest.events import send_task, send_to_device
from ..live.publish import publish_incident
from ..messages import UserError
from ..models import Device, Incident, Person, Task, User
from ..store.devices import DeviceIdentity
from .categories import category_ids
from .states import (
    FINAL_TASK_STATES,
    PHONE_TASK_UPDATES,
    STAFF_INCIDENT_STATES,
    incident_move_allowed,
    incident_status_from_tasks,
    task_move,
)
from .watcher import dispatch_watcher

log = logging.getLogger(__name__)

MAX_DESCRIPTION_CHARS = 2000


class DispatchError(UserError):
    """A dispatch request breaks a rule; the message names the field."""


def _coordinate(payload: dict[str, Any], name: str, bound: float) -> float:
    """Return payload[name] as a finite number within ±bound, or raise naming it."""
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DispatchError("%(field)s: must be a finite number", field=name)
    if not -bound <= value <= bound:
        raise DispatchError(
            "%(field)s: must be between -%(bound)s and %(bound)s", field=name, bound=f"{bound:g}"
        )
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
            "reachable": r.reachable,
        }
        for r in rows
    ]


MAX_NOTE_CHARS = 500


def _note(payload: Any, required: bool = False) -> str | None:
    """Return the `note` of a request body, stripped, or raise naming the rule."""
    note = payload.get("note") if isinstance(payload, dict) else None
    if note is not None and not isinstance(note, str):
        raise DispatchError(
            "note: must be a string of at most %(count)s characters", count=MAX_NOTE_CHARS
        )
    note = (note or "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise DispatchError(
            "note: must be a string of at most %(count)s characters", count=MAX_NOTE_CHARS
        )
    if required and not note:
        raise DispatchError("note: required for this step")
    return note or None


def _category(payload: dict[str, Any]) -> str | None:
    """Return the incident category of a request, or raise naming the allowed ones."""
    category = payload.get("category")
    if category is None:
        return None
    allowed = category_ids()
    if category not in allowed:
        raise DispatchError(
            "category: must be one of %(allowed)s", allowed=", ".join(sorted(allowed))
        )
    return category


def create_incident(user: User, payload: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Create an incident from `{lat, lon, description[, category]}`; return it and the nearest."""
    if not isinstance(payload, dict):
        raise DispatchError("body: must be a JSON object with lat, lon and description")
    lat = _coordinate(payload, "lat", 90)
    lon = _coordinate(payload, "lon", 180)
    description = payload.get("description")
    if not isinstance(description, str) or not description.strip():
        raise DispatchError("description: must be a non-empty string")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise DispatchError(
            "description: at most %(count)s characters", count=MAX_DESCRIPTION_CHARS
        )
    count = payload.get("count", current_app.config["DISPATCH_CANDIDATES"])
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
        raise DispatchError("count: must be a whole number from 1 to 100")
    incident = store.incidents.add_incident(
        db.session, user, lat, lon, description.strip(), _category(payload)
    )
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def incident_summary(row: Any) -> dict[str, Any]:
    """Return a row of store.incidents.incidents_for as the incidents list shows it."""
    return {
        "id": row.id,
        "description": row.description,
        "category": row.category,
        "status": row.status,
        "unit_id": row.unit_id,
        "lat": row.lat,
        "lon": row.lon,
        "created_at": row.created_at.isoformat(),
        "handled_at": _iso(row.handled_at),
        "closed_at": _iso(row.closed_at),
        "reported_by": (
            {"id": row.reporter_id, "name": row.reporter_name} if row.reporter_id else None
        ),
    }


TASK_TIMES = (
    "assigned_at",
    "delivered_at",
    "accepted_at",
    "declined_at",
    "done_at",
    "cancelled_at",
)


def incident_detail(incident_id: int) -> dict[str, Any]:
    """Return an incident with its tasks, history and photos, JSON-ready."""
    return {
        **incident_summary(store.incidents.incident_row(db.session, incident_id)),
        "tasks": [
            {
                "id": t.id,
                "person_id": t.person_id,
                "name": t.name,
                "status": t.status,
                **{name: _iso(getattr(t, name)) for name in TASK_TIMES},
                "distance_m": t.distance_m,
                "note": t.note,
                "reachable": t.reachable,
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
                "task_id": h.task_id,
                "note": h.note,
            }
            for h in store.incidents.incident_history(db.session, incident_id)
        ],
        "photos": [
            {
                "id": photo.id,
                "url": f"/api/v1/incidents/{incident_id}/photos/{photo.id}",
                "width": photo.width,
                "height": photo.height,
                "content_type": photo.content_type,
            }
            for photo in store.reports.incident_photos(db.session, incident_id)
        ],
    }


def task_message(row: Any) -> dict[str, Any]:
    """Return a task as the phone receives it (docs/incidents.md, TASK)."""
    return {
        "id": row.id,
        "incident_id": row.incident_id,
        "status": row.status,
        "description": row.description,
        "category": row.category,
        "lat": row.lat,
        "lon": row.lon,
        "distance_m": row.distance_m,
        "assigned_at": row.assigned_at.isoformat(),
        "note": row.note,
    }


def _push_task(task: Task) -> None:
    """Send a task's current state to every connected phone of its person."""
    message = task_message(store.incidents.phone_task(db.session, task.id))
    for device_id in store.devices.phone_devices(db.session, task.person_id):
        send_task(device_id, message)


def _roll_up(incident: Incident) -> bool:
    """Set an incident's status from its tasks unless staff set it; return whether it changed."""
    if incident.status in STAFF_INCIDENT_STATES:
        return False
    status = incident_status_from_tasks(store.incidents.task_statuses(db.session, incident.id))
    changed = status != incident.status
    incident.status = status
    db.session.flush()
    return changed


def _after_change(incident: Incident, status_before: str) -> dict[str, Any]:
    """Publish an incident to staff and, if its status changed, tell its reporter's phone."""
    detail = incident_detail(incident.id)
    publish_incident(detail, incident.unit_id)
    if incident.reported_by is not None and incident.status != status_before:
        message = {
            "key": incident.report_key,
            "incident_id": incident.id,
            "status": incident.status,
        }
        for device_id in store.devices.phone_devices(db.session, incident.reported_by):
            send_to_device(device_id, "report_status", message)
    return detail


def _person_ids(value: Any, name: str) -> list[int]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(p, int) and not isinstance(p, bool) for p in value)
    ):
        raise DispatchError("%(field)s: must be a non-empty list of person ids", field=name)
    return value


def _send(user: User, incident: Incident, person_ids: list[int], name: str) -> list[Task]:
    """Add tasks for people in scope (in the caller's transaction); return the new ones."""
    for person_id in person_ids:
        if not store.scope.can_see_person(db.session, user, person_id):
            raise DispatchError(
                "%(field)s: person %(person_id)s is not in your scope",
                field=name,
                person_id=person_id,
            )
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
    return new_tasks


def _open_for_work(incident: Incident) -> None:
    if incident.status in STAFF_INCIDENT_STATES:
        raise DispatchError("incident: is %(status)s; reopen it first", status=incident.status)


def assign(user: User, incident: Incident, person_ids: Any) -> dict[str, Any]:
    """Send people in scope to an incident; each gets a `task` on their phones."""
    person_ids = _person_ids(person_ids, "person_ids")
    dispatch_watcher.start()
    incident = store.incidents.locked_incident(db.session, incident.id)
    _open_for_work(incident)
    before = incident.status
    new_tasks = _send(user, incident, person_ids, "person_ids")
    _roll_up(incident)
    db.session.commit()
    for task in new_tasks:
        _push_task(task)
    return _after_change(incident, before)


def cancel_task(user: User, incident: Incident, task_id: int, payload: Any) -> dict[str, Any]:
    """Cancel one task of an incident; the person's phone is told."""
    note = _note(payload)
    incident = store.incidents.locked_incident(db.session, incident.id)
    before = incident.status
    task = _standing_task(incident, task_id)
    store.incidents.move_task(db.session, task, "cancelled", _now(), user_id=user.id, note=note)
    _roll_up(incident)
    db.session.commit()
    _push_task(task)
    return _after_change(incident, before)


def reassign_task(user: User, incident: Incident, task_id: int, payload: Any) -> dict[str, Any]:
    """Cancel a task and send its incident to someone else: `{"person_id", "note"}`."""
    body = payload if isinstance(payload, dict) else {}
    person_id = body.get("person_id")
    if isinstance(person_id, bool) or not isinstance(person_id, int):
        raise DispatchError("person_id: must be a person id")
    note = _note(payload)
    incident = store.incidents.locked_incident(db.session, incident.id)
    _open_for_work(incident)
    before = incident.status
    task = _standing_task(incident, task_id)
    if task.person_id == person_id:
        raise DispatchError("person_id: the task is already this person's")
    store.incidents.move_task(db.session, task, "cancelled", _now(), user_id=user.id, note=note)
    new_tasks = _send(user, incident, [person_id], "person_id")
    store.incidents.log_incident_event(
        db.session,
        incident.id,
        "reassigned",
        person_id=person_id,
        user_id=user.id,
        task_id=task.id,
        note=note,
    )
    _roll_up(incident)
    db.session.commit()
    for changed in [task, *new_tasks]:
        _push_task(changed)
    return _after_change(incident, before)


def _standing_task(incident: Incident, task_id: int) -> Task:
    task = store.incidents.incident_task(db.session, incident.id, task_id)
    if task is None:
        raise DispatchError("task: no task %(task_id)s in this incident", task_id=task_id)
    if task.status in FINAL_TASK_STATES:
        raise DispatchError("task: is already %(status)s", status=task.status)
    return task


# Staff actions on a whole incident: (state it is moved to, history kind, note required).
INCIDENT_ACTIONS = {
    "handle": ("handled", "handled", True),
    "close": ("closed", "closed", False),
    "cancel": ("cancelled", "incident_cancelled", True),
    "reopen": ("reopened", "reopened", True),
}


def act_on_incident(user: User, incident: Incident, action: str, payload: Any) -> dict[str, Any]:
    """Handle (处置完毕), close (核查), cancel or reopen an incident, with a note."""
    target, kind, note_required = INCIDENT_ACTIONS[action]
    note = _note(payload, required=note_required)
    incident = store.incidents.locked_incident(db.session, incident.id)
    before = incident.status
    if not incident_move_allowed(incident.status, target):
        raise DispatchError(
            "incident: cannot %(action)s an incident that is %(status)s",
            action=action,
            status=incident.status,
        )
    now = _now()
    cancelled: list[Task] = []
    if target == "reopened":
        incident.status = "open"  # the tasks decide from here
        incident.closed_at = None
        incident.handled_at = None
    else:
        incident.status = target
        if target == "handled":
            incident.handled_at = now
        elif target == "closed":
            incident.closed_at = now
        else:
            for task in store.incidents.standing_tasks(db.session, incident.id):
                store.incidents.move_task(db.session, task, "cancelled", now, user_id=user.id)
                cancelled.append(task)
    store.incidents.log_incident_event(db.session, incident.id, kind, user_id=user.id, note=note)
    db.session.flush()
    _roll_up(incident)
    db.session.commit()
    log.info("incident %d: %s by %s", incident.id, kind, user.username)
    for task in cancelled:
        _push_task(task)
    return _after_change(incident, before)


def _now() -> datetime:
    return datetime.now(UTC)


def update_task(device: DeviceIdentity, payload: Any) -> dict[str, Any]:
    """Apply a phone's `task_update` ({id, status, note}); return the ack.

    A resend applies once: a move that is already made, or that comes after a final state,
    changes nothing and is answered with the task's current status.
    """
    if not isinstance(payload, dict):
        return {"ok": False, "error": "payload: must be an object"}
    task_id, status = payload.get("id"), payload.get("status")
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        return {"ok": False, "error": "id: must be a task id"}
    if status not in PHONE_TASK_UPDATES:
        return {"ok": False, "error": "status: must be delivered, accepted, declined or done"}
    try:
        note = _note(payload)
    except DispatchError as exc:
        return {"ok": False, "error": str(exc)}
    task = store.incidents.person_task(db.session, device.person_id, task_id)
    if task is None:
        db.session.rollback()
        return {"ok": False, "error": "id: no such task for this person"}
    if task_move(task.status, status) is None:
        current = task.status
        db.session.rollback()
        return {"ok": True, "id": task_id, "status": current}  # a resend, or too late
    incident = store.incidents.locked_incident(db.session, task.incident_id)
    before = incident.status
    store.incidents.move_task(db.session, task, status, _now(), note=note)
    _roll_up(incident)
    db.session.commit()
    log.info("task %d of person %d is now %s", task_id, device.person_id, status)
    _after_change(incident, before)
    return {"ok": True, "id": task_id, "status": status}


FINAL_TASKS_SHOWN_S = 24 * 3600
OWN_REPORTS_SHOWN_S = 7 * 24 * 3600


def phone_sync(device: DeviceIdentity) -> dict[str, Any]:
    """Return what a phone needs after (re)connecting: who it is, its tasks, its reports."""
    now = _now()
    person = db.session.get(Person, device.person_id)
    phone = db.session.get(Device, device.device_id)
    assert person is not None and phone is not None
    tasks = store.incidents.tasks_for_phone(
        db.session, device.person_id, now - timedelta(seconds=FINAL_TASKS_SHOWN_S)
    )
    reports = store.reports.own_reports(
        db.session, device.person_id, now - timedelta(seconds=OWN_REPORTS_SHOWN_S)
    )
    db.session.rollback()
    return {
        "ok": True,
        "person": {"id": person.id, "name": person.name, "role": person.role},
        "device": {"id": phone.id, "label": phone.label},
        "tasks": [task_message(row) for row in tasks],
        "reports": [
            {
                "key": r.key,
                "incident_id": r.incident_id,
                "status": r.status,
                "category": r.category,
                "created_at": r.created_at.isoformat(),
            }
            for r in reports
        ],
    }
