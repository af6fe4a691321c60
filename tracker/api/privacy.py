"""Privacy for admins: a person's export and erasure, legal bases, unit tracking policies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from .. import audit, store
from ..extensions import db
from ..privacy import erasure, export, rules
from ..privacy.policy import policies
from .routes import json_error

bp = Blueprint("privacy_api", __name__, url_prefix="/api/v1")
bp.register_error_handler(HTTPException, json_error)


def _admin_person(person_id: int) -> None:
    """Refuse anyone but an admin, and a person outside the admin's scope (404)."""
    if current_user.role != "admin":
        abort(403, description="role: needs admin")
    if not store.scope.can_see_person(db.session, current_user, person_id):
        abort(404, description="person: not found")


def _body() -> dict[str, Any]:
    """Return the JSON object body, or 400."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="body: must be a JSON object")
    return body


@bp.get("/people/<int:person_id>/export.json")
@login_required
def person_export_json(person_id: int):
    """Return everything stored about a person as one JSON document (admin)."""
    _admin_person(person_id)
    audit.record_read("person.export_json", "person", person_id)
    document = export.person_export(db.session, person_id)
    if document is None:
        abort(404, description="person: not found")
    response = jsonify(document)
    response.headers["Content-Disposition"] = f'attachment; filename="person-{person_id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/people/<int:person_id>/export.gpx")
@login_required
def person_export_gpx(person_id: int):
    """Return every stored fix of a person as GPX (admin)."""
    _admin_person(person_id)
    audit.record_read("person.export_gpx", "person", person_id)
    body = export.person_gpx(db.session, person_id)
    if body is None:
        abort(404, description="person: not found")
    return Response(
        body,
        mimetype="application/gpx+xml",
        headers={
            "Content-Disposition": f'attachment; filename="person-{person_id}.gpx"',
            "Cache-Control": "no-store",
        },
    )


@bp.post("/people/<int:person_id>/erase")
@login_required
def person_erase(person_id: int):
    """Erase a person `{"confirm": PERSON_ID}`: positions deleted, name pseudonymised (admin)."""
    _admin_person(person_id)
    if _body().get("confirm") != person_id:
        abort(400, description="confirm: must be the id of the person to erase")
    counts = erasure.erase(db.session, person_id)
    if counts is None:
        abort(404, description="person: not found")
    db.session.commit()
    return jsonify(person_id=person_id, pseudonym=erasure.pseudonym(person_id), erased=counts)


@bp.put("/people/<int:person_id>/legal-basis")
@login_required
def person_legal_basis(person_id: int):
    """Record the legal basis of tracking a person `{basis, note?, at?}` (admin)."""
    _admin_person(person_id)
    body = _body()
    basis, note, at_text = body.get("basis"), body.get("note"), body.get("at")
    if basis is not None and not isinstance(basis, str):
        abort(400, description="basis: must be a string or null")
    if problem := rules.legal_basis_problem(basis):
        abort(400, description=f"basis: {problem}")
    if note is not None and (
        not isinstance(note, str) or len(note) > rules.LEGAL_BASIS_NOTE_MAX_CHARS
    ):
        abort(
            400,
            description=f"note: a string of at most {rules.LEGAL_BASIS_NOTE_MAX_CHARS} characters",
        )
    at = None
    if at_text is not None:
        try:
            at = datetime.fromisoformat(at_text) if isinstance(at_text, str) else None
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            abort(400, description="at: must be an ISO-8601 date-time with a UTC offset")
        at = at.astimezone(UTC)
    changed = store.privacy.set_legal_basis(db.session, person_id, basis, note or None, at)
    if changed is None:
        abort(404, description="person: not found")
    audit.record("person.legal_basis", "person", person_id, *changed)
    db.session.commit()
    return jsonify(person_id=person_id, **changed[1])


@bp.put("/units/<int:unit_id>/tracking-policy")
@login_required
def unit_tracking_policy(unit_id: int):
    """Set a unit's `{tracking_policy, duty_hours?, live_shows_off_duty?}`; null inherits."""
    if current_user.role != "admin":
        abort(403, description="role: needs admin")
    if not store.scope.unit_in_scope(db.session, current_user, unit_id):
        abort(404, description="unit: not found")
    body = _body()
    policy, hours_text = body.get("tracking_policy"), body.get("duty_hours")
    shows = body.get("live_shows_off_duty")
    if policy is not None and not isinstance(policy, str):
        abort(400, description="tracking_policy: must be a string or null")
    hours = None
    if hours_text is not None:
        parsed = rules.parse_duty_hours(hours_text) if isinstance(hours_text, str) else None
        if not isinstance(parsed, tuple):
            abort(400, description="duty_hours: must be HH:MM-HH:MM, for example 08:00-18:00")
        hours = parsed
    if problem := rules.tracking_policy_problem(policy, hours):
        abort(400, description=f"tracking_policy: {problem}")
    if shows is not None and not isinstance(shows, bool):
        abort(400, description="live_shows_off_duty: must be true, false or null")
    start, end = hours if hours and policy == "duty_hours" else (None, None)
    changed = store.privacy.set_unit_policy(db.session, unit_id, policy, start, end, shows)
    if changed is None:
        abort(404, description="unit: not found")
    audit.record("unit.tracking_policy", "unit", unit_id, *changed)
    db.session.commit()
    policies.load()  # this process at once; the others within TRACKING_POLICY_REFRESH_S
    return jsonify(unit_id=unit_id, **changed[1])
