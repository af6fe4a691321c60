"""The volunteer phone app at /m: page, web manifest, service worker and icons."""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from functools import lru_cache
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from ..config import PROJECT_ROOT
from ..dispatch.categories import categories
from ..ingest.events import send_task

bp = Blueprint("phone", __name__, template_folder="templates")

ICON_SIZES = (192, 512)
STATIC_SHELL = tuple(
    f"m/{name}"
    for name in (
        "app.js",
        "geo.js",
        "i18n.js",
        "idb.js",
        "outbox.js",
        "queue.js",
        "report-screen.js",
        "reports.js",
        "task-screen.js",
        "taskmap.js",
        "tasks.js",
        "phone.css",
        "icon.svg",
    )
)
# MapLibre draws the task screen's map; cached so that a task opens offline too.
VENDOR_SHELL = ("vendor/socket.io.min.js", "vendor/maplibre-gl.js", "vendor/maplibre-gl.css")
# Dark green background, white ring and dot: the same drawing as static/m/icon.svg.
ICON_BACKGROUND = (0x0B, 0x5D, 0x4B)


def _settings() -> dict[str, Any]:
    """Return the settings the page hands to the app's script."""
    config = current_app.config
    return {
        "min_interval_s": config["PHONE_MIN_INTERVAL_S"],
        "min_distance_m": config["PHONE_MIN_DISTANCE_M"],
        "max_accuracy_m": config["PHONE_MAX_ACCURACY_M"],
        "batch_size": config["PHONE_BATCH_SIZE"],
        "ack_timeout_s": config["PHONE_ACK_TIMEOUT_S"],
        "queue_cap": config["PHONE_QUEUE_CAP"],
        "categories": categories(),
    }


@bp.get("/m")
def index() -> str:
    """Serve the phone app's page."""
    return render_template("phone/index.html", settings=_settings())


@bp.get("/m/")
def index_slash() -> Response:
    """Send /m/ to /m, the one URL the service worker caches."""
    return redirect(url_for("phone.index"))


@bp.get("/m/manifest.webmanifest")
def manifest() -> Response:
    """Serve the web manifest that makes the app installable."""
    icons = [
        {
            "src": url_for("phone.icon", size=size),
            "sizes": f"{size}x{size}",
            "type": "image/png",
            "purpose": "any maskable",
        }
        for size in ICON_SIZES
    ]
    icons.append(
        {
            "src": url_for("static", filename="m/icon.svg"),
            "sizes": "any",
            "type": "image/svg+xml",
        }
    )
    response = jsonify(
        {
            "name": "巡防定位 Patrol tracker",
            "short_name": "巡防定位",
            "start_url": url_for("phone.index"),
            "scope": url_for("phone.index"),
            "display": "standalone",
            "orientation": "portrait",
            "background_color": "#f3f5f7",
            "theme_color": "#0b5d4b",
            "icons": icons,
        }
    )
    response.mimetype = "application/manifest+json"
    return response


def _shell_urls() -> list[str]:
    """Return the URLs the service worker caches: page, manifest, scripts, styles, icons."""
    return [
        url_for("phone.index"),
        url_for("phone.manifest"),
        *(url_for("phone.icon", size=size) for size in ICON_SIZES),
        *(url_for("static", filename=name) for name in STATIC_SHELL + VENDOR_SHELL),
    ]


def _shell_version() -> str:
    """Return a digest of the shell's files, so that any change installs a new cache."""
    digest = hashlib.sha256()
    templates = PROJECT_ROOT / "tracker" / "web" / "templates" / "phone"
    static = PROJECT_ROOT / "static"
    paths = [templates / "index.html", *(static / name for name in STATIC_SHELL + VENDOR_SHELL)]
    for path in paths:
        try:
            digest.update(path.read_bytes())
        except FileNotFoundError:
            digest.update(b"missing:" + path.name.encode())
    digest.update(repr(sorted(_settings().items())).encode())
    return digest.hexdigest()[:16]


@bp.get("/m/sw.js")
def service_worker() -> Response:
    """Serve the service worker, allowed to control /m although it lives under /m/."""
    body = render_template("phone/sw.js", version=_shell_version(), shell=_shell_urls())
    response = Response(body, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = url_for("phone.index")
    # Browsers must see a new shell version at once, not after an HTTP cache expiry.
    response.headers["Cache-Control"] = "no-cache"
    return response


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    """Return one PNG chunk: length, type, body and CRC."""
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    """Encode 8-bit RGB rows as a PNG file."""

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw, 9))
        + _png_chunk(b"IEND", b"")
    )


@lru_cache(maxsize=len(ICON_SIZES))
def icon_png(size: int) -> bytes:
    """Draw the app icon, a white ring and dot on green, as a square PNG of `size` pixels."""
    centre = size / 2
    ring_r, ring_half_width, dot_r = 0.27 * size, 0.035 * size, 0.11 * size
    rows = []
    for y in range(size):
        row = bytearray()
        for x in range(size):
            d = math.hypot(x + 0.5 - centre, y + 0.5 - centre)
            # Coverage from the distance to each edge gives anti-aliased circles.
            ring = min(max(ring_half_width - abs(d - ring_r) + 0.5, 0.0), 1.0)
            dot = min(max(dot_r - d + 0.5, 0.0), 1.0)
            white = max(ring, dot)
            row += bytes(round(c + (255 - c) * white) for c in ICON_BACKGROUND)
        rows.append(bytes(row))
    return _png(size, size, rows)


@bp.get("/m/icon-<int:size>.png")
def icon(size: int) -> Response:
    """Serve the app icon in one of the manifest's sizes."""
    if size not in ICON_SIZES:
        abort(404)
    response = Response(icon_png(size), mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.post("/m/_test/task")
def push_test_task() -> Response:
    """Push a task to a device's phone; exists only with PHONE_TEST_HOOKS for e2e tests."""
    if not current_app.config["PHONE_TEST_HOOKS"]:
        abort(404)
    body = request.get_json(force=True)
    send_task(int(body["device_id"]), dict(body["task"]))
    return jsonify(ok=True)
