"""Incidents and dispatch for command-centre staff."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, jsonify, request
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from .. import store
from ..auth import require_role
from ..dispatch import service
from ..dispatch.categories import category_ids
from ..dispatch.states import INCIDENT_STATES
from ..extensions import db
from .routes import json_error, parse_time

bp = Blueprint("incidents_api", __name__, url_prefix="/api/v1/incidents")
bp.register_error_handler(HTTPException, json_error)


def _refused(exc: service.DispatchError):
    """Answer a broken dispatch rule: 400, in English and in the reader's language."""
    db.session.rollback()
    return jsonify(error=str(exc), message=exc.localized()), 400


@bp.post("")
@require_role("admin", "dispatcher")
def create():
    """Create an incident at {lat, lon} and list the nearest on-duty people in scope."""
    try:
        incident, candidates = service.create_incident(current_user, request.get_json(silent=True))
    except service.DispatchError as exc:
        return _refused(exc)
    return jsonify(incident=incident, candidates=candidates), 201


def _listed(name: str, allowed: set[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Return a comma-separated query parameter as a tuple, or 400 naming a bad value."""
    values = tuple(v for v in request.args.get(name, "").split(",") if v)
    for value in values:
        if value not in allowed:
            abort(400, description=f"{name}: must be among {', '.join(sorted(allowed))}")
    return values


def _whole(name: str, default: int, low: int, high: int) -> int:
    """Return a whole-number query parameter within [low, high], or 400 naming it."""
    value = request.args.get(name, str(default))
    if not value.isdigit() or not low <= int(value) <= high:
        abort(400, description=f"{name}: must be a whole number from {low} to {high}")
    return int(value)


@bp.get("")
@login_required
def index():
    """List the incidents in scope, newest first, filtered and paged."""
    unit_id = request.args.get("unit_id")
    if unit_id is not None and not unit_id.isdigit():
        abort(400, description="unit_id: must be a unit id")
    if unit_id is not None and not store.scope.unit_in_scope(
        db.session, current_user, int(unit_id)
    ):
        abort(404, description="unit: not found")
    where = store.incidents.IncidentFilter(
        statuses=_listed("status", INCIDENT_STATES),
        categories=_listed("category", category_ids()),
        unit_id=int(unit_id) if unit_id is not None else None,
        created_from=parse_time("from", None),
        created_to=parse_time("to", None),
    )
    page = _whole("page", 1, 1, 1_000_000)
    per_page = _whole("per_page", 50, 1, 200)
    stmt = store.incidents.incidents_for(current_user, where)
    total = store.incidents.count_rows(db.session, stmt)
    rows = db.session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return jsonify(
        incidents=[service.incident_summary(r) for r in rows],
        total=total,
        page=page,
        per_page=per_page,
    )


def _incident_or_404(incident_id: int):
    """Return a visible incident, or answer 404."""
    incident = service.visible_incident(current_user, incident_id)
    if incident is None:
        abort(404, description="incident: not found")
    return incident


@bp.get("/<int:incident_id>")
@login_required
def show(incident_id: int):
    """Return an incident with its tasks and history."""
    _incident_or_404(incident_id)
    return jsonify(service.incident_detail(incident_id))


@bp.get("/<int:incident_id>/candidates")
@require_role("admin", "dispatcher")
def candidates(incident_id: int):
    """Return the nearest on-duty people in scope to an incident, now."""
    _incident_or_404(incident_id)
    count = request.args.get("count", "10")
    if not count.isdigit() or not 1 <= int(count) <= 100:
        abort(400, description="count: must be a whole number from 1 to 100")
    lat, lon = store.incidents.incident_point(db.session, incident_id)
    people = service.nearest(current_user, lat, lon, int(count), datetime.now(UTC))
    return jsonify(candidates=people)


@bp.post("/<int:incident_id>/assign")
@require_role("admin", "dispatcher")
def assign(incident_id: int):
    """Send people to an incident: `{"person_ids": [...]}`; their phones get a task."""
    incident = _incident_or_404(incident_id)
    body = request.get_json(silent=True)
    try:
        detail = service.assign(current_user, incident, (body or {}).get("person_ids"))
    except service.DispatchError as exc:
        return _refused(exc)
    return jsonify(detail)


def _changed(change, *args):
    """Run a dispatcher's change; a broken rule is a 400 naming it."""
    try:
        return jsonify(change(current_user, *args))
    except service.DispatchError as exc:
        return _refused(exc)


@bp.post("/<int:incident_id>/tasks/<int:task_id>/cancel")
@require_role("admin", "dispatcher")
def cancel_task(incident_id: int, task_id: int):
    """Cancel a task: `{"note"}`; the person's phone is told."""
    incident = _incident_or_404(incident_id)
    return _changed(service.cancel_task, incident, task_id, request.get_json(silent=True))


@bp.post("/<int:incident_id>/tasks/<int:task_id>/reassign")
@require_role("admin", "dispatcher")
def reassign_task(incident_id: int, task_id: int):
    """Cancel a task and send its incident to someone else: `{"person_id", "note"}`."""
    incident = _incident_or_404(incident_id)
    return _changed(service.reassign_task, incident, task_id, request.get_json(silent=True))


@bp.post("/<int:incident_id>/<any(handle, close, cancel, reopen):action>")
@require_role("admin", "dispatcher")
def act(incident_id: int, action: str):
    """Mark handled (处置完毕), close (核查), cancel or reopen an incident: `{"note"}`."""
    incident = _incident_or_404(incident_id)
    return _changed(service.act_on_incident, incident, action, request.get_json(silent=True))
