"""Units and grids for the administration: create, change, delete, export (admin-api.md)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from ..admin import units
from ..auth import require_role
from ..extensions import db
from ..messages import UserError
from .routes import json_error

bp = Blueprint("units_api", __name__, url_prefix="/api/v1")
bp.register_error_handler(HTTPException, json_error)


@bp.errorhandler(UserError)
def refused(exc: UserError) -> tuple[Response, int]:
    """Answer a refused change: nothing stored, `error` in English, `message` localized."""
    db.session.rollback()
    answer: dict[str, Any] = {"error": str(exc), "message": exc.localized()}
    if isinstance(exc, units.UnitNotEmptyError):
        answer["left"] = exc.left
    return jsonify(answer), getattr(exc, "status", 400)


def _body() -> Any:
    """Return the decoded JSON body, or None when there is none."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None  # nested deeper than any unit: Python's decoder gives up


@bp.post("/units")
@require_role("admin")
def create_unit() -> tuple[Response, int]:
    """Add a unit below a unit in scope; say what the boundary's repair changed."""
    answer = units.create(current_user, _body())
    db.session.commit()
    return jsonify(answer), 201


@bp.patch("/units/<int:unit_id>")
@require_role("admin")
def update_unit(unit_id: int) -> Response:
    """Rename, move or redraw a unit in scope; say what the boundary's repair changed."""
    answer = units.update(current_user, unit_id, _body())
    db.session.commit()
    return jsonify(answer)


@bp.delete("/units/<int:unit_id>")
@require_role("admin")
def delete_unit(unit_id: int) -> tuple[str, int]:
    """Delete an empty unit in scope (409 naming what is left otherwise)."""
    units.delete(current_user, unit_id)
    db.session.commit()
    return "", 204


@bp.get("/units/export.geojson")
@login_required
def export_units() -> Response:
    """Return the units in scope with boundaries as GeoJSON, in the import's format."""
    response = jsonify(units.export(current_user))
    response.mimetype = "application/geo+json"
    response.headers["Content-Disposition"] = 'attachment; filename="units.geojson"'
    return response
