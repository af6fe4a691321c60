"""Basemaps: the configured list, the offline PMTiles files, glyphs, the account's choice."""

from __future__ import annotations

import json
import logging
import math
import re
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_file
from flask_login import current_user, login_required
from sqlalchemy import update
from werkzeug.exceptions import HTTPException

from .. import basemaps
from ..config import PROJECT_ROOT
from ..extensions import db
from ..models import User
from .routes import json_error

log = logging.getLogger(__name__)

bp = Blueprint("basemaps_api", __name__, url_prefix="/api/v1")
bp.register_error_handler(HTTPException, json_error)

GLYPH_DIR = PROJECT_ROOT / "static" / "vendor" / "glyphs"
_GLYPH_RANGE = re.compile(r"^(\d+)-(\d+)$")
_FONT_NAME = re.compile(r"^[A-Za-z0-9 _\-]{1,64}$")


def preference_of(user: User, config: Any) -> dict[str, Any]:
    """Return the account's map preference, with a basemap that is still offered."""
    saved = user.map_preference or {}
    offered = {b["id"] for b in basemaps.listing(config)}
    return {
        "basemap": saved.get("basemap") if saved.get("basemap") in offered else None,
        "grid_opacity": saved.get("grid_opacity", 1.0),
        "unit_opacity": saved.get("unit_opacity", 1.0),
    }


@bp.get("/basemaps")
@login_required
def list_basemaps() -> Response:
    """List the basemaps offered (the default first) and the account's choice."""
    config = current_app.config
    return jsonify(
        basemaps=basemaps.listing(config), preference=preference_of(current_user, config)
    )


@bp.get("/basemaps/files/<name>")
@login_required
def pmtiles_file(name: str) -> Response:
    """Serve an offline basemap file of BASEMAP_DIR, with HTTP range requests (206)."""
    if not basemaps.PMTILES_NAME.match(name):
        abort(404, description="name: not a .pmtiles file")
    path = Path(current_app.config["BASEMAP_DIR"]) / name
    if not path.is_file():
        abort(404, description="name: no such basemap file")
    # Werkzeug answers a Range with 206 and its Content-Range, and If-Range by the ETag.
    response = send_file(path, mimetype="application/octet-stream", conditional=True, max_age=3600)
    response.headers["Accept-Ranges"] = "bytes"
    response.cache_control.private = True  # staff only: no shared cache keeps it
    return response


def _opacity(body: dict[str, Any], name: str, default: float) -> float:
    """Return an opacity of the body (0-1), or answer 400 naming it."""
    value = body.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        abort(400, description=f"{name}: must be a number from 0 to 1")
    return round(float(value), 3)


@bp.put("/basemaps/preference")
@login_required
def save_preference() -> Response:
    """Remember the account's basemap and layer opacities, for every browser it uses."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="body: must be a JSON object")
    offered = {b["id"] for b in basemaps.listing(current_app.config)}
    chosen = body.get("basemap")
    if chosen not in offered:
        abort(400, description="basemap: must be the id of an offered basemap")
    preference = {
        "basemap": chosen,
        "grid_opacity": _opacity(body, "grid_opacity", 1.0),
        "unit_opacity": _opacity(body, "unit_opacity", 1.0),
    }
    db.session.execute(
        update(User).where(User.id == current_user.id).values(map_preference=preference)
    )
    db.session.commit()
    log.info("staff account %s chose basemap %s", current_user.id, chosen)
    return jsonify(preference=preference)


@bp.get("/basemaps/glyphs/<fontstack>/<glyph_range>.pbf")
def glyphs(fontstack: str, glyph_range: str) -> Response:
    """Serve a range of Latin glyphs (SDF protobuf) made at set-up by scripts/glyphs.py.

    A range that was not made answers an empty glyph set, so a rare character is left
    out of a label instead of the label's tile failing; Chinese characters never come here
    (the browser draws them with a local font, MapLibre's localIdeographFontFamily).
    """
    match = _GLYPH_RANGE.match(glyph_range)
    if not match:
        abort(404, description="range: must be start-end")
    for font in fontstack.split(","):
        font = font.strip()
        path = GLYPH_DIR / font / f"{glyph_range}.pbf"
        if _FONT_NAME.match(font) and path.is_file():
            return send_file(path, mimetype="application/x-protobuf", max_age=86400)
    empty = Response(b"", mimetype="application/x-protobuf")
    empty.headers["Cache-Control"] = "max-age=3600"
    return empty


def _geocoder_results(answer: Any) -> list[dict[str, Any]]:
    """Return [{name, lon, lat}] from a geocoder's JSON: 天地图's, or a plain list."""
    if isinstance(answer, dict) and isinstance(answer.get("location"), dict):
        location = answer["location"]
        answer = [{"name": location.get("keyWord", ""), **location}]
    elif isinstance(answer, dict):
        answer = answer.get("results", [])
    results = []
    for item in answer if isinstance(answer, list) else []:
        try:
            lon, lat = float(item["lon"]), float(item["lat"])
        except (KeyError, TypeError, ValueError):
            continue
        if -180 <= lon <= 180 and -90 <= lat <= 90:
            results.append({"name": str(item.get("name", ""))[:200], "lon": lon, "lat": lat})
    return results[:10]


@bp.get("/geocode")
@login_required
def geocode() -> Response:
    """Ask the office's geocoder (GEOCODER_URL) for an address; 404 when none is set."""
    template = current_app.config["GEOCODER_URL"]
    if not template:
        abort(404, description="geocoder: none is configured (GEOCODER_URL)")
    q = request.args.get("q", "").strip()
    if not 1 <= len(q) <= 200:
        abort(400, description="q: must be 1-200 characters")
    # {q} is the address as a JSON string's content (天地图's ds={"keyWord":"{q}"}), escaped.
    url = template.replace("{q}", quote(json.dumps(q, ensure_ascii=False)[1:-1]))
    crs = current_app.config["GEOCODER_CRS"]
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - an office setting
            results = _geocoder_results(json.loads(answer.read(1_000_000)))
    except (OSError, ValueError) as exc:
        log.warning("geocoder did not answer for a search: %s", type(exc).__name__)
        abort(502, description="geocoder: no answer")
    return jsonify(results=results, crs=crs)
