"""Reports from phones (事件上报), their photos for staff, and the incident categories."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, jsonify, request, send_file
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .. import media, store
from ..dispatch import reports, service
from ..dispatch.categories import categories
from ..extensions import db, login
from ..ingest.service import identify_device
from ..ingest.writer import StoreUnavailableError
from ..store.devices import DeviceIdentity
from .routes import json_error

log = logging.getLogger(__name__)
bp = Blueprint("reports_api", __name__, url_prefix="/api/v1")
bp.register_error_handler(HTTPException, json_error)

# Room for the `report` field and the multipart framing next to the photos.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_REPORT_FIELD_BYTES = 64 * 1024
UNKNOWN_TOKEN = {"ok": False, "error": "auth.token: unknown or revoked device token"}
# A photo never changes under its id; the account's scope can, so browsers re-ask daily.
PHOTO_CACHE_CONTROL = "private, max-age=86400"


def _bearer_token() -> str | None:
    """Return the bearer token of the Authorization header, if any."""
    auth = request.authorization
    return auth.token if auth is not None and auth.type == "bearer" and auth.token else None


def _device() -> DeviceIdentity | None:
    """Return the device whose bearer token came with this request (asked afresh), if any."""
    return identify_device(_bearer_token())


def _report_field() -> str | None:
    """Return the `report` part: a form field, or a file part (a Blob appended to FormData)."""
    if (text := request.form.get("report")) is not None:
        return text
    part = request.files.get("report")
    if part is None:
        return None
    return part.stream.read(MAX_REPORT_FIELD_BYTES).decode("utf-8", "replace")


@bp.post("/reports")
def create_report():
    """Store a phone's report with its photos (multipart: `report` JSON, `photo` files)."""
    config = current_app.config
    cap = config["REPORT_MAX_PHOTOS"] * config["PHOTO_MAX_BYTES"] + FORM_OVERHEAD_BYTES
    # Only this route takes photos: the app-wide MAX_CONTENT_LENGTH stays small.
    request.max_content_length = cap
    try:
        device = _device()
    except StoreUnavailableError:
        return jsonify(reports.UNAVAILABLE), 503
    if device is None:
        return jsonify(UNKNOWN_TOKEN), 401
    try:
        raw_report = _report_field()
        # One byte past the limit is enough to tell that a photo is too large.
        most = config["PHOTO_MAX_BYTES"] + 1
        uploads = [part.stream.read(most) for part in request.files.getlist("photo")]
    except RequestEntityTooLarge:
        log.info("report of person %d refused: larger than %d bytes", device.person_id, cap)
        return jsonify(ok=False, error=f"payload: larger than {cap} bytes"), 413
    body, status = reports.submit_report(device, raw_report, uploads)
    return jsonify(body), status


@bp.get("/incidents/<int:incident_id>/photos/<int:photo_id>")
@login_required
def incident_photo(incident_id: int, photo_id: int):
    """Return a photo of an incident in the account's scope."""
    photo = store.reports.photo_of_incident(db.session, incident_id, photo_id)
    if photo is None:
        abort(404, description="photo: not found")
    if service.visible_incident(current_user, incident_id) is None:
        abort(403, description="incident: outside your units")
    try:
        stream = media.photo_store().open(photo.sha256)
    except FileNotFoundError:
        log.error(
            "photo %d of incident %d: file %s is missing", photo_id, incident_id, photo.sha256
        )
        abort(404, description="photo: file missing")
    response = send_file(stream, mimetype=photo.content_type, etag=photo.sha256, conditional=True)
    response.headers["Cache-Control"] = PHOTO_CACHE_CONTROL
    return response


@bp.get("/incident-categories")
def incident_categories():
    """Return the categories a report or an incident may name (staff login or device token)."""
    if not current_user.is_authenticated:
        if _bearer_token() is None:
            return login.unauthorized()
        try:
            device = identify_device(_bearer_token(), cached=True)
        except StoreUnavailableError:
            return jsonify(reports.UNAVAILABLE), 503
        if device is None:
            return jsonify(UNKNOWN_TOKEN), 401
    return jsonify(categories())
