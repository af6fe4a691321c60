"""HTTP ingest: the /device `positions` payload POSTed with a bearer token."""

from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify, request

from . import service

bp = Blueprint("ingest_http", __name__)


@bp.post("/api/v1/positions")
def post_positions():
    """Store a batch sent over HTTP; same payload and answer as the `positions` event."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    device = service.identify_device(token.strip()) if scheme.lower() == "bearer" else None
    if device is None:
        return jsonify(ok=False, error="auth.token: unknown or revoked device token"), 401
    cap = current_app.config["MAX_PAYLOAD_BYTES"]
    if request.content_length is not None and request.content_length > cap:
        return jsonify(ok=False, error=f"payload: larger than {cap} bytes"), 413
    body = request.get_data(cache=False)
    if len(body) > cap:
        return jsonify(ok=False, error=f"payload: larger than {cap} bytes"), 413
    try:
        payload = json.loads(body)
    except ValueError:
        return jsonify(ok=False, error="payload: not valid JSON"), 400
    ack = service.store_positions(device, payload, len(body))
    if ack["ok"]:
        return jsonify(ack), 200
    if ack.get("retry"):
        return jsonify(ack), 503
    if ack["error"].startswith("auth.token"):
        return jsonify(ack), 401
    return jsonify(ack), 400
