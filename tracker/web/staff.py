"""Command-centre pages: login, the live map and the grid boundary import."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from .i18n import LANG_COOKIE, js_messages, page_language

bp = Blueprint("staff", __name__, template_folder="templates")

# The live map's strings for the closed incident loop and the alerts' facts, added to the
# shared catalogue of i18n.py (same .po file). The server sends facts; the page says them.
MAP_MESSAGES = {
    "status_incident.handled": _l("Handled"),
    "status_incident.closed": _l("Closed"),
    "status_incident.cancelled": _l("Cancelled"),
    "status_task.sent": _l("Sent"),
    "status_task.delivered": _l("Delivered"),
    "status_task.declined": _l("Declined"),
    "status_task.cancelled": _l("Cancelled"),
    "step.sent": _l("Sent"),
    "step.delivered": _l("Delivered"),
    "step.accepted": _l("Accepted"),
    "step.declined": _l("Declined"),
    "step.done": _l("Done"),
    "step.cancelled": _l("Cancelled"),
    "incident.unreachable": _l("Cannot receive tasks on this device (GPS app)"),
    "incident.category": _l("Category"),
    "incident.reporter": _l("Reported by"),
    "incident.creator": _l("Created by"),
    "incident.created": _l("Created at"),
    "incident.place": _l("Location"),
    "incident.handled_at": _l("Handled at"),
    "incident.closed_at": _l("Closed at"),
    "incident.photo": _l("Photo"),
    "incident.page": _l("Page {page} of {pages} · {total} incidents"),
    "incident.reported_toast": _l("New report from {name}"),
    "action.handle": _l("Mark handled"),
    "action.handle.title": _l("Mark the incident handled: say what was done"),
    "action.close": _l("Verify and close"),
    "action.close.title": _l("Verify the handling and close the incident"),
    "action.reopen": _l("Reopen"),
    "action.reopen.title": _l("Reopen the incident: say why"),
    "action.cancel": _l("Cancel the incident"),
    "action.cancel.title": _l("Cancel the incident (a false report, a duplicate): say why"),
    "action.reassign": _l("Reassign"),
    "action.reassign.title": _l("Reassign {name}'s task to"),
    "action.cancel_task": _l("Cancel task"),
    "action.cancel_task.title": _l("Cancel {name}'s task; the phone is told"),
    "action.pick_person": _l("Choose a person"),
    "action.people_in_scope": _l("People in your scope"),
    "action.note_required": _l("Note (required)"),
    "action.note_optional": _l("Note (optional)"),
    "action.need_note": _l("Write a note."),
    "action.need_person": _l("Choose a person."),
    "action.back": _l("Back"),
    "history_kind.created": _l("Incident created"),
    "history_kind.reported": _l("Reported from a phone"),
    "history_kind.assigned": _l("Task sent"),
    "history_kind.delivered": _l("Task delivered to the phone"),
    "history_kind.accepted": _l("Task accepted"),
    "history_kind.declined": _l("Task declined"),
    "history_kind.done": _l("Task done"),
    "history_kind.cancelled": _l("Task cancelled"),
    "history_kind.reassigned": _l("Task reassigned"),
    "history_kind.handled": _l("Marked handled"),
    "history_kind.closed": _l("Verified and closed"),
    "history_kind.reopened": _l("Reopened"),
    "history_kind.incident_cancelled": _l("Incident cancelled"),
    "history_kind.undelivered": _l("Task not delivered in time"),
    "alert.task_undelivered": _l("Task not delivered"),
    "alert_fact.zone_exit": _l("Left the grid · {n} m from its boundary"),
    "alert_fact.zone_enter": _l("Returned into the assigned grid · {n} m from its boundary"),
    "alert_fact.low_battery": _l("Battery {n}%"),
    "alert_fact.signal_lost": _l("No fix for {n} min"),
    "alert_fact.task_undelivered": _l("Task #{task} not delivered for {n} min"),
}


def _map_messages() -> dict[str, str]:
    """Return the live map's strings in the request's language."""
    return {**js_messages(), **{key: str(text) for key, text in MAP_MESSAGES.items()}}


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
    }


@bp.get("/")
def live_map():
    """Show the live map, or send a visitor without a session to the login page."""
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login_page"))
    return render_template(
        "staff/map.html",
        settings=_page_settings(),
        messages=_map_messages(),
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
