"""Security headers on every response: Content-Security-Policy and its companions.

One after_request hook sets them on every answer Flask makes (pages, JSON, static files,
errors); a small WSGI wrapper adds the same headers to the Socket.IO long-polling answers,
which Engine.IO makes before Flask sees the request. Flask-Talisman would do the Flask
part too, but it brings a dependency and a dozen options for what is a fixed list of
headers here (HTTPS and HSTS are nginx's job), so the list is written out.

The policy is built once per app, from the basemaps' tile URLs and PUBLIC_URL, not per
request, and kept in app.extensions["security_headers"]: answers made outside Flask and outside the
Socket.IO path (the HTTP ingest endpoints, tracker/ingest/http.py) add those themselves.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response

from .. import basemaps

log = logging.getLogger(__name__)

# Flask-SocketIO's default path, which create_app keeps.
SOCKETIO_PATH = "/socket.io/"
# What a CSP host-source may contain; anything else in a configured URL (";", ",", spaces)
# would change the policy's meaning.
_HOST_SOURCE = re.compile(r"^(\*\.)?[A-Za-z0-9.\-]+(:[0-9]+)?$")

StartResponse = Callable[..., Any]


def tile_origin(tile_url: str | None) -> str | None:
    """Return the CSP source of the tile server in an XYZ URL template, or None for 'self'.

    Args:
        tile_url: MAP_TILE_URL, e.g. "https://tiles.example/{z}/{x}/{y}.png".

    Returns:
        "https://tiles.example" (a templated first label becomes "*."), or None when the
        tiles come from this server or the host cannot be expressed as a CSP source.
    """
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    host = parts.netloc.rpartition("@")[2]
    if not host:
        return None  # a relative URL: tiles from this server, covered by 'self'
    first, dot, rest = host.partition(".")
    if "{" in first and dot and "{" not in rest:
        host = f"*.{rest}"
    if not _HOST_SOURCE.match(host) or parts.scheme not in ("", "http", "https"):
        log.warning("tile URL host %r cannot go into the CSP; its tiles will be blocked", host)
        return None
    return f"{parts.scheme}://{host}" if parts.scheme else host


def websocket_origin(public_url: str) -> str | None:
    """Return the ws:// or wss:// origin of PUBLIC_URL, or None if it has no usable host."""
    parts = urlsplit(public_url)
    host = parts.netloc.rpartition("@")[2]
    if parts.scheme not in ("http", "https") or not _HOST_SOURCE.match(host):
        return None
    return f"{'wss' if parts.scheme == 'https' else 'ws'}://{host}"


def content_security_policy(tile_url: str | Iterable[str] | None, public_url: str) -> str:
    """Return the Content-Security-Policy of the command centre and the phone app.

    Args:
        tile_url: the basemaps' tile URL templates (tracker.basemaps.tile_urls), one
            template (MAP_TILE_URL), or None.
        public_url: PUBLIC_URL, the address phones reach the server at.

    Returns:
        The header's value.
    """
    urls = [tile_url] if isinstance(tile_url, str) else list(tile_url or [])
    tiles = list(dict.fromkeys(origin for url in urls if (origin := tile_origin(url))))
    # CSP Level 3 counts ws:/wss: of this host as 'self'; browsers that implement only
    # Level 2 do not, and phones open the app at PUBLIC_URL, so its websocket origin is named.
    sockets = [origin] if (origin := websocket_origin(public_url)) else []
    directives = {
        "default-src": ["'self'"],
        # No inline script and no eval: every page loads its code from /static.
        "script-src": ["'self'"],
        # MapLibre sets styles through the CSSOM (element.style), which CSP allows; no
        # page has a style attribute or element, so 'unsafe-inline' is not needed.
        "style-src": ["'self'"],
        # data: for the map controls' SVG icons in maplibre-gl.css and the empty favicon;
        # blob: for raster tiles, which MapLibre fetches and decodes through blob URLs.
        "img-src": ["'self'", "data:", "blob:", *tiles],
        "font-src": ["'self'"],
        # MapLibre fetches tiles with fetch() (from its workers too), so the tile server is
        # a connect-src as well as an img-src.
        "connect-src": ["'self'", *sockets, *tiles],
        # MapLibre starts its workers from a blob: URL; the phone app's service worker is
        # /m/sw.js. child-src is what browsers without worker-src read for workers.
        "worker-src": ["'self'", "blob:"],
        "child-src": ["'self'", "blob:"],
        # child-src would otherwise also allow blob: frames.
        "frame-src": ["'none'"],
        "manifest-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def security_headers(app: Flask) -> tuple[tuple[str, str], ...]:
    """Return the headers every response of `app` carries."""
    return (
        (
            "Content-Security-Policy",
            content_security_policy(basemaps.tile_urls(app.config), app.config["PUBLIC_URL"]),
        ),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        # Pairing links and the GPS apps' URLs carry device tokens; no-referrer keeps any
        # URL of this site out of the Referer header of whatever a page loads or links to.
        ("Referrer-Policy", "no-referrer"),
        # The phone app needs the position and keeps the screen on while on duty; nothing
        # here needs the camera, microphone, payments or USB, and no frame gets anything.
        (
            "Permissions-Policy",
            "geolocation=(self), screen-wake-lock=(self), camera=(), microphone=(), "
            "payment=(), usb=()",
        ),
    )


class _SocketIOHeaders:
    """Add the security headers to Engine.IO's long-polling answers, which bypass Flask."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], headers: tuple) -> None:
        """Wrap `wsgi_app`, the outermost WSGI application."""
        self.wsgi_app = wsgi_app
        self.headers = headers

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        """Pass the request on; add the headers if it is a Socket.IO request over HTTP."""
        is_polling = environ.get("PATH_INFO", "").startswith(SOCKETIO_PATH) and (
            environ.get("HTTP_UPGRADE", "").lower() != "websocket"
        )
        if not is_polling:
            return self.wsgi_app(environ, start_response)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in self.headers if h[0].lower() not in present)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def init_app(app: Flask) -> None:
    """Set the security headers on every response of `app`; call after socketio.init_app."""
    headers = security_headers(app)
    app.extensions["security_headers"] = headers

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        """Add each header a view has not set itself."""
        for name, value in headers:
            response.headers.setdefault(name, value)
        return response

    app.wsgi_app = _SocketIOHeaders(app.wsgi_app, headers)  # type: ignore[method-assign]
