"""HTTP ingest: our `positions` endpoint and the GPS apps' formats, served before Flask.

GPS apps send one fix per request, so in a deployment most fixes arrive this way. These
few endpoints are served by a WSGI layer in front of Flask (IngestEndpoints) with only an
app context around each request, as the /device `positions` event is: Flask's request
dispatch, session, login and rate-limit hooks cost more CPU than storing the fix, and none
of them applies (a device token authenticates; no cookie is read). Each answer carries the
same status, body and security headers as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

import orjson
from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import Authorization

from .. import socket_json
from ..store.devices import DeviceIdentity
from . import clients, service
from .writer import StoreUnavailableError

log = logging.getLogger(__name__)

Answer = tuple[Any, int]


class BodyTooLargeError(ValueError):
    """The request body is larger than MAX_CONTENT_LENGTH."""


class Request:
    """The parts of a WSGI request these endpoints read, parsed only when read.

    Lighter than werkzeug's Request, which profiling showed costing more than the rest of
    a single-fix request; the semantics are the same: first value wins in the query, the
    body is read once, and text is UTF-8 with errors replaced.
    """

    def __init__(self, environ: dict[str, Any], max_body_bytes: int) -> None:
        """Wrap one request's environ."""
        self.environ = environ
        self.max_body_bytes = max_body_bytes

    @cached_property
    def args(self) -> dict[str, str]:
        """Return the query parameters, the first of each name."""
        query = self.environ.get("QUERY_STRING", "")
        params: dict[str, str] = {}
        if "%" in query or "+" in query:
            pairs = parse_qsl(query, True)
        else:
            # What parse_qsl(query, True) returns when nothing is escaped, at a fraction of
            # its cost: a Traccar Client query is plain digits, letters and dots.
            pairs = [pair.partition("=")[::2] for pair in query.split("&") if pair]
        for name, value in pairs:
            params.setdefault(name, value)
        return params

    @property
    def content_length(self) -> int | None:
        """Return the declared body length, if any."""
        try:
            return max(0, int(self.environ["CONTENT_LENGTH"]))
        except (KeyError, ValueError):
            return None

    @cached_property
    def body(self) -> bytes:
        """Return the body, or raise BodyTooLargeError beyond max_body_bytes."""
        length = self.content_length
        if length is not None and length > self.max_body_bytes:
            raise BodyTooLargeError
        stream = self.environ["wsgi.input"]
        if length is None:
            if not self.environ.get("wsgi.input_terminated"):
                return b""
            data = stream.read(self.max_body_bytes + 1)
        else:
            data = stream.read(length)
        if len(data) > self.max_body_bytes:
            raise BodyTooLargeError
        return data

    @property
    def text(self) -> str:
        """Return the body as text."""
        return self.body.decode("utf-8", "replace")

    @property
    def is_json(self) -> bool:
        """Return whether the body says it is JSON (application/json or +json)."""
        mimetype = self.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        return mimetype == "application/json" or (
            mimetype.startswith("application/") and mimetype.endswith("+json")
        )

    @property
    def authorization_header(self) -> str:
        """Return the Authorization header, or an empty string."""
        return self.environ.get("HTTP_AUTHORIZATION", "")


def post_positions(request: Request) -> Answer:
    """Store a batch sent over HTTP; same payload and answer as the `positions` event."""
    device = service.identify_device(_bearer_token(request), cached=True)
    if device is None:
        return {"ok": False, "error": "auth.token: unknown or revoked device token"}, 401
    service.device_clients.note(device.device_id, "api")
    cap = current_app.config["MAX_PAYLOAD_BYTES"]
    too_large = {"ok": False, "error": f"payload: larger than {cap} bytes"}, 413
    if request.content_length is not None and request.content_length > cap:
        return too_large
    body = request.body
    if len(body) > cap:
        return too_large
    try:
        payload = socket_json.loads(body)
    except ValueError:
        return {"ok": False, "error": "payload: not valid JSON"}, 400
    ack = service.store_positions(device, payload, len(body), path="api")
    if ack["ok"]:
        return ack, 200
    if ack.get("retry"):
        return ack, 503
    if ack["error"].startswith("auth.token"):
        return ack, 401
    return ack, 400


# --- existing GPS apps -------------------------------------------------------------


def _merge_acks(acks: list[dict[str, Any]], offsets: list[int]) -> dict[str, Any]:
    """Combine the acks of consecutive chunks of one request into one."""
    merged: dict[str, Any] = {"ok": True, "stored": 0, "duplicates": 0, "rejected": []}
    for ack, offset in zip(acks, offsets, strict=True):
        if not ack["ok"]:
            return ack
        merged["stored"] += ack["stored"]
        merged["duplicates"] += ack["duplicates"]
        if ack.get("not_kept"):
            merged["not_kept"] = merged.get("not_kept", 0) + ack["not_kept"]
        merged["rejected"] += [
            {"index": r["index"] + offset, "error": r["error"]} for r in ack["rejected"]
        ]
    return merged


def _store_client_request(
    parsed: clients.ClientRequest, token: str | None, client: str
) -> dict[str, Any]:
    """Store what a GPS app sent through the /device path; return the ack."""
    device = service.identify_device(token, cached=True)
    if device is None:
        return {"ok": False, "error": "auth.token: unknown or revoked device token"}
    service.device_clients.note(device.device_id, client)
    if parsed.alarm:
        alarm_ack = _raise_alarm(device, parsed)
        if alarm_ack.get("retry"):
            return alarm_ack  # the app resends the whole request, alarm included
    if not parsed.positions:
        return {"ok": True, "stored": 0, "duplicates": 0, "rejected": []}
    size = current_app.config["MAX_BATCH_ITEMS"]
    if len(parsed.positions) <= size:  # every app but Overland sends one fix a request
        return service.store_positions(device, {"positions": parsed.positions}, 0, path=client)
    acks, offsets = [], []
    for offset in range(0, len(parsed.positions), size):
        chunk = {"positions": parsed.positions[offset : offset + size]}
        acks.append(service.store_positions(device, chunk, 0, path=client))
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
    ack = _store_client_request(parsed, token, client)
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


def _json_body(request: Request) -> Any:
    """Return the decoded JSON body, or None when it is not JSON (as get_json(silent=True))."""
    try:
        return socket_json.loads(request.body)
    except ValueError:
        return None


def osmand(request: Request, token: str | None) -> Answer:
    """Accept the OsmAnd protocol: Traccar Client (query, form or JSON), OsmAnd, GPSLogger."""
    try:
        if request.is_json:
            parsed = clients.from_traccar_json(_json_body(request))
        elif request.args:
            parsed = clients.from_osmand(request.args, token)
        else:
            parsed = clients.from_osmand(clients.parse_form_text(request.text), token)
    except clients.ClientFormatError as exc:
        return {"ok": False, "error": str(exc)}, 400
    ack, status = _store_and_answer(parsed, token or parsed.token, "osmand")
    # Traccar's own server answers an unknown device id with 404 (and the apps show it).
    return ack, 404 if status == 401 else status


def _basic_auth_token(request: Request) -> str | None:
    """Return the password of HTTP Basic auth, which OwnTracks users set to their token."""
    auth = Authorization.from_header(request.authorization_header)
    return auth.password if auth is not None and auth.type == "basic" else None


def _bearer_token(request: Request) -> str | None:
    """Return the bearer token of the Authorization header, if any."""
    scheme, _, token = request.authorization_header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def owntracks(request: Request, token: str | None) -> Answer:
    """Accept OwnTracks HTTP mode; answer `[]` as the app expects."""
    token = token or request.args.get("token") or _basic_auth_token(request)
    try:
        parsed = clients.from_owntracks(_json_body(request))
    except clients.ClientFormatError as exc:
        return {"error": str(exc)}, 400
    ack, status = _store_and_answer(parsed, token, "owntracks")
    if status != 200:
        return {"error": ack["error"]}, status
    return [], 200


def overland(request: Request, token: str | None) -> Answer:
    """Accept an Overland batch; `{"result": "ok"}` tells the app it may drop the batch."""
    token = token or request.args.get("token") or _bearer_token(request)
    try:
        parsed = clients.from_overland(_json_body(request))
    except clients.ClientFormatError as exc:
        return {"result": "error", "error": str(exc)}, 400
    ack, status = _store_and_answer(parsed, token, "overland")
    if status != 200:
        return {"result": "error", "error": ack["error"]}, status
    answer = {"result": "ok", "stored": ack["stored"], "duplicates": ack["duplicates"]}
    return {**answer, "rejected": ack["rejected"]}, 200


# --- serving them before Flask ------------------------------------------------------

Handler = Callable[[Request, str | None], Answer]
# What match() finds for a path: the methods allowed, the handler, a token from the path.
Route = tuple[frozenset[str], Handler, str | None]
StartResponse = Callable[..., Any]

# First path segment -> (methods, handler, whether a token may follow as a second segment).
ROUTES: dict[str, tuple[frozenset[str], Handler, bool]] = {
    "osmand": (frozenset({"GET", "HEAD", "POST"}), osmand, True),
    "owntracks": (frozenset({"POST"}), owntracks, True),
    "overland": (frozenset({"POST"}), overland, True),
}
POSITIONS_PATH = "/api/v1/positions"
UNAVAILABLE = {"ok": False, "error": "store: database unavailable, retry", "retry": True}
INTERNAL_ERROR = {"ok": False, "error": "server: internal error, retry", "retry": True}
STATUS_LINES = {
    200: "200 OK",
    400: "400 BAD REQUEST",
    401: "401 UNAUTHORIZED",
    404: "404 NOT FOUND",
    405: "405 METHOD NOT ALLOWED",
    413: "413 REQUEST ENTITY TOO LARGE",
    500: "500 INTERNAL SERVER ERROR",
    503: "503 SERVICE UNAVAILABLE",
}


class IngestEndpoints:
    """Serve the HTTP ingest endpoints with an app context only; pass the rest to Flask."""

    def __init__(self, app: Flask, flask_wsgi: Callable[..., Iterable[bytes]]) -> None:
        """Wrap Flask's own WSGI callable (app.wsgi_app before any middleware)."""
        self.app = app
        self.flask_wsgi = flask_wsgi

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer an ingest request here, or hand the request to Flask."""
        route = match(environ.get("PATH_INFO", ""))
        if route is None:
            return self.flask_wsgi(environ, start_response)
        status, headers, body = self.respond(environ, route)
        start_response(STATUS_LINES[status], headers)
        return [body] if body else []

    def respond(
        self, environ: dict[str, Any], route: Route
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer one ingest request; return (status, headers, body).

        Args:
            environ: the request (a WSGI environ, or the few keys Request reads).
            route: what match() returned for its path.
        """
        methods, handler, token = route
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in methods:
            allowed = ", ".join(sorted(methods))
            body: Any = {"ok": False, "error": f"method: {method} not allowed (use {allowed})"}
            return self._answer(body, 405, [("Allow", allowed)])
        request = Request(environ, self.app.config["MAX_CONTENT_LENGTH"])
        try:
            with self.app.app_context():
                body, status = handler(request, token)
        except (StoreUnavailableError, SQLAlchemyError) as exc:
            # The database is down or every connection is busy: a resend will work.
            log.warning("%s to the %s endpoint: %s", method, handler.__name__, exc)
            body, status = UNAVAILABLE, 503
        except BodyTooLargeError:
            cap = self.app.config["MAX_CONTENT_LENGTH"]
            body, status = {"ok": False, "error": f"payload: larger than {cap} bytes"}, 413
        except Exception:
            # Named by its handler: the path may carry a device token.
            log.exception("%s to the %s endpoint failed", method, handler.__name__)
            body, status = INTERNAL_ERROR, 500
        return self._answer(body, status, [], head=method == "HEAD")

    def _answer(
        self, body: Any, status: int, extra: list[tuple[str, str]], head: bool = False
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Return a JSON answer with the app's security headers."""
        encoded = orjson.dumps(body)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(encoded))),
            *extra,
            *self.app.extensions.get("security_headers", ()),
        ]
        return status, headers, b"" if head else encoded


def match(path: str) -> Route | None:
    """Return (methods, handler, token from the path) for an ingest path, or None."""
    if path == POSITIONS_PATH:
        return frozenset({"POST"}), _positions_handler, None
    first, slash, token = path[1:].partition("/")
    route = ROUTES.get(first)
    if route is None or not path.startswith("/"):
        return None
    methods, handler, takes_token = route
    if not slash:
        return methods, handler, None
    if takes_token and token and "/" not in token:
        return methods, handler, token
    return None


def _positions_handler(request: Request, _token: str | None) -> Answer:
    """Adapt post_positions() to the handler signature."""
    return post_positions(request)
