"""Grids, coverage and alerts for command-centre staff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, abort, current_app, jsonify, request
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from .. import store
from ..auth import require_role
from ..extensions import db
from ..zones.importer import BoundaryImportError, import_units
from .routes import json_error

bp = Blueprint("zones_api", __name__, url_prefix="/api/v1")
bp.register_error_handler(HTTPException, json_error)

ALERT_KINDS = (
    "sos",
    "zone_exit",
    "zone_enter",
    "signal_lost",
    "signal_back",
    "low_battery",
    "task_undelivered",
)


def _outside_my_scope() -> str | None:
    """Return a digest of the units outside the account's scope (None: it has no unit)."""
    if current_user.unit_id is None:
        return None
    return store.zones.units_outside_fingerprint(db.session, current_user.unit_id)


@bp.post("/units/import")
@require_role("admin")
def import_boundaries():
    """Create or update units from a posted GeoJSON FeatureCollection; all or nothing."""
    try:
        doc = request.get_json(silent=True)
    except RecursionError:
        doc = None  # nested deeper than any GeoJSON: Python's decoder gives up
    try:
        if doc is None:
            raise BoundaryImportError("body: must be a GeoJSON FeatureCollection in JSON")
        outside = _outside_my_scope()
        report = import_units(db.session, doc)
        if outside != _outside_my_scope():
            db.session.rollback()
            abort(403, description="units: the file creates or changes units outside your scope")
    except BoundaryImportError as exc:
        db.session.rollback()
        # `error` stays English for scripts and logs; `message` is for the person reading.
        return jsonify(error=str(exc), message=exc.localized()), 400
    db.session.commit()
    return jsonify(report.as_dict())


@bp.get("/coverage")
@login_required
def coverage():
    """Return every grid in scope with who is inside, assigned, and on duty inside."""
    fresh_since = datetime.now(UTC) - timedelta(seconds=current_app.config["STALE_AFTER_S"])
    rows = db.session.execute(store.zones.coverage(current_user, fresh_since)).all()
    return jsonify(grids=[row._asdict() for row in rows])


@bp.get("/units/<int:unit_id>/people")
@login_required
def unit_people(unit_id: int):
    """Return the visible people inside a grid now or assigned to it, with counts."""
    if not store.scope.unit_in_scope(db.session, current_user, unit_id):
        abort(404, description="unit: not found")
    rows = db.session.execute(store.zones.grid_people(current_user, unit_id)).all()
    people = [{**row._asdict(), "ts": row.ts.isoformat() if row.ts else None} for row in rows]
    return jsonify(
        unit_id=unit_id,
        people=people,
        inside=sum(p["inside"] is True for p in people),
        assigned=sum(p["assigned"] is True for p in people),
        on_duty=sum(p["on_duty"] and p["inside"] is True for p in people),
    )


@bp.put("/people/<int:person_id>/patrol-unit")
@require_role("admin", "dispatcher")
def assign_patrol_unit(person_id: int):
    """Assign a visible person to a grid in scope (`{"unit_id": null}` clears it)."""
    body = request.get_json(silent=True)
    unit_id = body.get("unit_id") if isinstance(body, dict) else "missing"
    if unit_id is not None and (isinstance(unit_id, bool) or not isinstance(unit_id, int)):
        abort(400, description="unit_id: must be a unit id or null")
    if not store.scope.can_see_person(db.session, current_user, person_id):
        abort(404, description="person: not found")
    if unit_id is not None and not store.scope.unit_in_scope(db.session, current_user, unit_id):
        abort(404, description="unit: not found")
    store.people.assign_patrol_unit(db.session, person_id, unit_id)
    db.session.commit()
    return jsonify(person_id=person_id, patrol_unit_id=unit_id)


@bp.get("/alerts")
@login_required
def alerts():
    """Return alerts about people in scope, newest first (filters: kind, open, limit)."""
    kind = request.args.get("kind")
    if kind is not None and kind not in ALERT_KINDS:
        abort(400, description=f"kind: must be one of {', '.join(ALERT_KINDS)}")
    try:
        limit = int(request.args.get("limit", 200))
    except ValueError:
        abort(400, description="limit: must be a whole number")
    if not 1 <= limit <= 1000:
        abort(400, description="limit: must be between 1 and 1000")
    open_only = request.args.get("open") in {"1", "true"}
    rows = db.session.execute(store.alerts.alerts_for(current_user, kind, open_only, limit)).all()
    return jsonify(alerts=[_alert_json(row) for row in rows])


@bp.post("/alerts/<int:alert_id>/acknowledge")
@require_role("admin", "dispatcher")
def acknowledge(alert_id: int):
    """Record that the current dispatcher has seen to an alert."""
    if not store.alerts.acknowledge_alert(db.session, current_user, alert_id):
        db.session.rollback()
        abort(404, description="alert: not found or already acknowledged")
    db.session.commit()
    return jsonify(id=alert_id, acknowledged_by=current_user.username)


def _alert_json(row) -> dict:
    """Return an alert row as JSON-ready values."""
    values = row._asdict()
    for key in ("ts", "received_at", "acknowledged_at"):
        if values.get(key) is not None:
            values[key] = values[key].isoformat()
    return values
