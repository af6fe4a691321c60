"""Administration API: people, phones, staff accounts and rosters (docs/admin-api.md)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from .. import store
from ..admin import devices, people, rosters, users
from ..admin.rules import AdminError
from ..extensions import db
from .routes import json_error

bp = Blueprint("admin_api", __name__, url_prefix="/api/v1")
bp.register_error_handler(HTTPException, json_error)

CHANGERS = ("admin", "dispatcher")


@bp.errorhandler(AdminError)
def refused(exc: AdminError):
    """Answer a refused change: nothing stored; English `error`, localized `message`."""
    db.session.rollback()
    return jsonify(error=str(exc), message=exc.localized()), exc.status


def _may_change() -> None:
    """Refuse a change by an account whose role may not change people (viewers)."""
    if current_user.role not in CHANGERS:
        abort(403, description="role: needs admin or dispatcher")


def _admin() -> None:
    """Refuse anyone but an admin."""
    if current_user.role != "admin":
        abort(403, description="role: needs admin")


def _flag(name: str) -> bool | None:
    """Return a true/false query parameter, or 400 naming it."""
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if value not in ("true", "false"):
        abort(400, description=f"{name}: must be true or false")
    return value == "true"


def _whole(name: str, default: int, low: int, high: int) -> int:
    """Return a whole-number query parameter within [low, high], or 400 naming it."""
    value = request.args.get(name, str(default))
    if not value.isdigit() or not low <= int(value) <= high:
        abort(400, description=f"{name}: must be a whole number from {low} to {high}")
    return int(value)


def _unit_arg() -> int | None:
    """Return the unit_id query parameter: a unit the account manages, else 400/404."""
    unit_id = request.args.get("unit_id")
    if unit_id is None or unit_id == "":
        return None
    if not unit_id.isdigit() or int(unit_id) > 2**31 - 1:
        abort(400, description="unit_id: must be a unit id")
    if not store.people.unit_managed(db.session, current_user, int(unit_id)):
        abort(404, description="unit: not found")
    return int(unit_id)


@bp.get("/people")
@login_required
def people_index():
    """List the people in scope, filtered by q, unit_id, role, on_duty, active; paged."""
    q = request.args.get("q", "").strip()
    if len(q) > 100:
        abort(400, description="q: at most 100 characters")
    where = store.people.PeopleFilter(
        q=q or None,
        unit_id=_unit_arg(),
        role=request.args.get("role") or None,
        on_duty=_flag("on_duty"),
        active=_flag("active"),
    )
    page = _whole("page", 1, 1, 1_000_000)
    per_page = _whole("per_page", 50, 1, 200)
    stmt = store.people.people_rows(current_user, where)
    total = store.people.count_rows(db.session, stmt)
    rows = db.session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return jsonify(
        people=[people.person_json(r) for r in rows], total=total, page=page, per_page=per_page
    )


@bp.post("/people")
@login_required
def people_create():
    """Add a person `{name, role, phone?, unit_id?, patrol_unit_id?}`; 201 PERSON."""
    _may_change()
    return jsonify(people.create(current_user, request.get_json(silent=True))), 201


@bp.get("/people/<int:person_id>")
@login_required
def people_show(person_id: int):
    """Return a person in scope with their phones."""
    return jsonify(people.person(current_user, person_id))


@bp.patch("/people/<int:person_id>")
@login_required
def people_update(person_id: int):
    """Change any of a person's fields; `active: false` refuses their phones, ends the shift."""
    _may_change()
    return jsonify(people.update(current_user, person_id, request.get_json(silent=True)))


@bp.put("/people/<int:person_id>/duty")
@login_required
def people_duty(person_id: int):
    """Start or end a person's shift `{on}`, for GPS apps that have no duty button."""
    _may_change()
    return jsonify(people.set_duty(current_user, person_id, request.get_json(silent=True)))


@bp.get("/people/<int:person_id>/devices")
@login_required
def devices_index(person_id: int):
    """List a person's phones."""
    return jsonify(devices=devices.person_devices(current_user, person_id))


@bp.post("/people/<int:person_id>/devices")
@login_required
def devices_issue(person_id: int):
    """Issue a phone `{label}`: the token, pairing link, QR code and setup, shown this once."""
    _may_change()
    issued = devices.issue_for(current_user, person_id, request.get_json(silent=True))
    response = jsonify(issued)
    response.headers["Cache-Control"] = "no-store"
    return response, 201


@bp.post("/devices/<int:device_id>/revoke")
@login_required
def devices_revoke(device_id: int):
    """Revoke a phone: its token stops working; the last phone ends the person's shift."""
    _may_change()
    return jsonify(devices.revoke(current_user, device_id))


@bp.get("/users")
@login_required
def users_index():
    """List the staff accounts in the admin's scope."""
    _admin()
    return jsonify(users=users.users(current_user))


@bp.post("/users")
@login_required
def users_create():
    """Add a staff account `{username, password, role, unit_id?}`; 201 USER."""
    _admin()
    return jsonify(users.create(current_user, request.get_json(silent=True))), 201


@bp.patch("/users/<int:user_id>")
@login_required
def users_update(user_id: int):
    """Change `{role, unit_id, active, password}`; disabling or a password ends its sessions."""
    _admin()
    return jsonify(users.update(current_user, user_id, request.get_json(silent=True)))


def _roster_file() -> bytes:
    """Return the posted roster: multipart `file`, or JSON `{"file_base64"}`; else 400."""
    upload = request.files.get("file")
    if upload is not None:
        return upload.stream.read(rosters.MAX_FILE_BYTES + 1)
    body = request.get_json(silent=True)
    encoded = body.get("file_base64") if isinstance(body, dict) else None
    if not isinstance(encoded, str):
        raise rosters.missing_file()
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise rosters.missing_file() from None


def _roster_request() -> None:
    """Refuse roster work to viewers, and allow the body a roster file needs (base64: 4/3)."""
    _may_change()
    request.max_content_length = rosters.MAX_FILE_BYTES * 4 // 3 + 64 * 1024


@bp.post("/roster/preview")
@login_required
def roster_preview():
    """Check a roster file row by row; nothing is stored."""
    _roster_request()
    rows = rosters.preview(current_user, _roster_file())
    db.session.rollback()
    return jsonify(ok=not any(r.errors for r in rows), rows=[r.as_dict() for r in rows])


@bp.post("/roster/import")
@login_required
def roster_import():
    """Import a roster, all or nothing: 200 with counts, or 400 with the preview."""
    _roster_request()
    ok, answer = rosters.import_roster(current_user, _roster_file())
    return jsonify(answer), 200 if ok else 400


@bp.post("/roster/devices")
@login_required
def roster_devices():
    """Issue a phone to each of `{person_ids, label}` for one printed sheet (shown once)."""
    _may_change()
    issued = rosters.issue_devices(current_user, request.get_json(silent=True))
    response = jsonify(devices=issued)
    response.headers["Cache-Control"] = "no-store"
    return response, 201


@bp.get("/roster/export.xlsx")
@login_required
def roster_export():
    """Return the people in scope (below unit_id) as XLSX in the import's columns."""
    _may_change()
    body: Any = rosters.export_xlsx(current_user, _unit_arg())
    return Response(
        body,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="roster.xlsx"'},
    )
