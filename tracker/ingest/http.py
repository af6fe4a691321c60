"""HTTP ingest: the /device `positions` payload POSTed with a bearer token."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from .. import socket_json
from ..queries import DeviceIdentity
from . import clients, service

log = logging.getLogger(__name__)

bp = Blueprint("ingest_http", __name__)


@bp.post("/api/v1/positions")
def post_positions():
    """Store a batch sent over HTTP; same payload and answer as the `positions` event."""
    device = service.identify_device(_bearer_token())
    if device is None:
        return jsonify(ok=False, error="auth.token: unknown or revoked device token"), 401
    cap = current_app.config["MAX_PAYLOAD_BYTES"]
    if request.content_length is not None and request.content_length > cap:
        return jsonify(ok=False, error=f"payload: larger than {cap} bytes"), 413
    body = request.get_data(cache=False)
    if len(body) > cap:
        return jsonify(ok=False, error=f"payload: larger than {cap} bytes"), 413
    try:
        payload = socket_json.loads(body)
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


# --- existing GPS apps -------------------------------------------------------------


def _merge_acks(acks: list[dict[str, Any]], offsets: list[int]) -> dict[str, Any]:
    """Combine the acks of consecutive chunks of one request into one."""
    merged: dict[str, Any] = {"ok": True, "stored": 0, "duplicates": 0, "rejected": []}
    for ack, offset in zip(acks, offsets, strict=True):
        if not ack["ok"]:
            return ack
        merged["stored"] += ack["stored"]
        merged["duplicates"] += ack["duplicates"]
        merged["rejected"] += [
            {"index": r["index"] + offset, "error": r["error"]} for r in ack["rejected"]
        ]
    return merged


def _store_client_request(parsed: clients.ClientRequest, token: str | None) -> dict[str, Any]:
    """Store what a GPS app sent through the /device path; return the ack."""
    device = service.identify_device(token)
    if device is None:
        return {"ok": False, "error": "auth.token: unknown or revoked device token"}
    if parsed.alarm:
        alarm_ack = _raise_alarm(device, parsed)
        if alarm_ack.get("retry"):
            return alarm_ack  # the app resends the whole request, alarm included
    if not parsed.positions:
        return {"ok": True, "stored": 0, "duplicates": 0, "rejected": []}
    size = current_app.config["MAX_BATCH_ITEMS"]
    acks, offsets = [], []
    for offset in range(0, len(parsed.positions), size):
        chunk = {"positions": parsed.positions[offset : offset + size]}
        acks.append(service.store_positions(device, chunk, 0))
        offsets.append(offset)
        if not acks[-1]["ok"]:
            break
    return _merge_acks(acks, offsets)


def _raise_alarm(device: DeviceIdentity, parsed: clients.ClientRequest) -> dict[str, Any]:
    """Store an app's alarm (e.g. Traccar's `alarm=sos`) as an SOS alert, at its fix."""
    fix = parsed.positions[0] if parsed.positions else {}
    point = {"lat": fix.get("lat"), "lon": fix.get("lon")}
    if point["lat"] == 0 and point["lon"] == 0:
        point = {"lat": None, "lon": None}  # no fix: do not put the alert in the sea
    ack = service.raise_sos(device, {"ts": fix.get("ts"), **point, "note": parsed.alarm})
    if not ack["ok"]:
        log.warning("alarm from device %d not stored: %s", device.device_id, ack["error"])
    return ack


def _store_and_answer(
    parsed: clients.ClientRequest, token: str | None, client: str
) -> tuple[dict[str, Any], int]:
    """Store what an app sent; return the ack and the HTTP status the app understands."""
    ack = _store_client_request(parsed, token)
    for rejection in ack.get("rejected", []):
        log.info("%s fix rejected: %s", client, rejection["error"])
    return ack, _client_status(ack)


def _client_status(ack: dict[str, Any]) -> int:
    """Return the HTTP status for an ack, as GPS apps understand it.

    These apps resend whatever does not get a 200, forever. A fix that breaks a value rule
    (for example (0, 0) from a phone without a fix) can never succeed, so it is answered 200
    and the body says why it was not stored; only a store outage asks for a resend.
    """
    if ack["ok"]:
        return 200
    if ack.get("retry"):
        return 503
    if ack["error"].startswith("auth.token"):
        return 401
    return 400


@bp.route("/osmand", methods=["GET", "POST"])
@bp.route("/osmand/<token>", methods=["GET", "POST"])
def osmand(token: str | None = None):
    """Accept the OsmAnd protocol: Traccar Client (query, form or JSON), OsmAnd, GPSLogger."""
    try:
        if request.is_json:
            parsed = clients.from_traccar_json(request.get_json(silent=True))
        elif request.args:
            parsed = clients.from_osmand(request.args, token)
        else:
            body = request.get_data(as_text=True)
            parsed = clients.from_osmand(clients.parse_form_text(body), token)
    except clients.ClientFormatError as exc:
        return jsonify(ok=False, error=str(exc)), 400
    ack, status = _store_and_answer(parsed, token or parsed.token, "osmand")
    # Traccar's own server answers an unknown device id with 404 (and the apps show it).
    return jsonify(ack), 404 if status == 401 else status


def _basic_auth_token() -> str | None:
    """Return the password of HTTP Basic auth, which OwnTracks users set to their token."""
    auth = request.authorization
    return auth.password if auth is not None and auth.type == "basic" else None


def _bearer_token() -> str | None:
    """Return the bearer token of the Authorization header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@bp.post("/owntracks")
@bp.post("/owntracks/<token>")
def owntracks(token: str | None = None):
    """Accept OwnTracks HTTP mode; answer `[]` as the app expects."""
    token = token or request.args.get("token") or _basic_auth_token()
    try:
        parsed = clients.from_owntracks(request.get_json(silent=True, force=True))
    except clients.ClientFormatError as exc:
        return jsonify(error=str(exc)), 400
    ack, status = _store_and_answer(parsed, token, "owntracks")
    if status != 200:
        return jsonify(error=ack["error"]), status
    return jsonify([]), 200


@bp.post("/overland")
@bp.post("/overland/<token>")
def overland(token: str | None = None):
    """Accept an Overland batch; `{"result": "ok"}` tells the app it may drop the batch."""
    token = token or request.args.get("token") or _bearer_token()
    try:
        parsed = clients.from_overland(request.get_json(silent=True, force=True))
    except clients.ClientFormatError as exc:
        return jsonify(result="error", error=str(exc)), 400
    ack, status = _store_and_answer(parsed, token, "overland")
    if status != 200:
        return jsonify(result="error", error=ack["error"]), status
    return jsonify(
        result="ok", stored=ack["stored"], duplicates=ack["duplicates"], rejected=ack["rejected"]
    ), 200
