"""Command-centre pages: login, the live map and the grid boundary import."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, url_for
from flask_login import current_user

from .i18n import LANG_COOKIE, js_messages, page_language

bp = Blueprint("staff", __name__, template_folder="templates")


def _page_settings() -> dict[str, Any]:
    """Return what the map's script needs to know about this deployment and this user."""
    config = current_app.config
    return {
        "tile_url": config["MAP_TILE_URL"],
        "tile_attribution": config["MAP_TILE_ATTRIBUTION"],
        "gcj02": config["MAP_GCJ02"],
        "stale_after_s": config["STALE_AFTER_S"],
        "live_interval_s": config["LIVE_INTERVAL_S"],
        "viewport_min_people": config["LIVE_VIEWPORT_MIN_PEOPLE"],
        "coverage_refresh_s": config["COVERAGE_REFRESH_S"],
        "roles": list(config["PERSON_ROLES"]),
        "lang": page_language(),
        "lang_cookie": LANG_COOKIE,
        "user": {
            "username": current_user.username,
            "role": current_user.role,
            "unit_id": current_user.unit_id,
        },
        "messages": js_messages(),
    }


@bp.get("/")
def live_map():
    """Show the live map, or send a visitor without a session to the login page."""
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login_page"))
    return render_template(
        "staff/map.html",
        settings=_page_settings(),
        lang=page_language(),
        lang_cookie=LANG_COOKIE,
    )


@bp.get("/login")
def login_page():
    """Show the login form; the page posts to /api/v1/session."""
    if current_user.is_authenticated:
        return redirect(url_for("staff.live_map"))
    return render_template("staff/login.html", lang=page_language(), lang_cookie=LANG_COOKIE)


@bp.get("/admin/units/import")
def import_page():
    """Show the admin page that uploads a GeoJSON file of grid boundaries."""
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login_page"))
    if current_user.role != "admin":
        abort(403)
    return render_template(
        "staff/import.html",
        lang=page_language(),
        lang_cookie=LANG_COOKIE,
        messages=js_messages(),
    )
