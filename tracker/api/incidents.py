"""Incidents and dispatch for command-centre staff."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, jsonify, request
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from .. import store
from ..auth import require_role
from ..dispatch import service
from ..extensions import db
from .routes import json_error

bp = Blueprint("incidents_api", __name__, url_prefix="/api/v1/incidents")
bp.register_error_handler(HTTPException, json_error)


@bp.post("")
@require_role("admin", "dispatcher")
def create():
    """Create an incident at {lat, lon} and list the nearest on-duty people in scope."""
    try:
        incident, candidates = service.create_incident(current_user, request.get_json(silent=True))
    except service.DispatchError as exc:
        db.session.rollback()
        abort(400, description=str(exc))
    return jsonify(incident=incident, candidates=candidates), 201


@bp.get("")
@login_required
def index():
    """List the incidents in scope, newest first."""
    rows = db.session.execute(store.incidents.incidents_for(current_user).limit(200)).all()
    return jsonify(
        incidents=[{**r._asdict(), "created_at": r.created_at.isoformat()} for r in rows]
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
        db.session.rollback()
        abort(400, description=str(exc))
    return jsonify(detail)
