"""Command-centre pages: login, the live map and the grid boundary import."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from .. import basemaps
from ..api import routes as api_routes
from ..api.basemaps import preference_of
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
    "card.day": _l("Day"),
}


def _map_messages() -> dict[str, str]:
    """Return the live map's strings in the request's language."""
    return {**js_messages(), **{key: str(text) for key, text in MAP_MESSAGES.items()}}


def _basemap_settings() -> dict[str, Any]:
    """Return the basemaps every map page offers and the one this account chose."""
    config = current_app.config
    return {
        "basemaps": basemaps.listing(config),
        "map_preference": preference_of(current_user, config),
        "geocoder": bool(config["GEOCODER_URL"]),
    }


def _page_settings() -> dict[str, Any]:
    """Return what the map's script needs to know about this deployment and this user."""
    config = current_app.config
    return {
        **_basemap_settings(),
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


def _render_page(template: str, page_messages: Mapping[str, Any] | None = None, **context: Any):
    """Render a staff page in the request's language.

    `page_messages` are the strings the page's own scripts show, sent next to the shared
    ones (js_messages()) as `messages`.
    """
    if page_messages is not None:
        context["messages"] = {
            **js_messages(),
            **{key: str(text) for key, text in page_messages.items()},
        }
    return render_template(template, lang=page_language(), lang_cookie=LANG_COOKIE, **context)


@bp.get("/")
def live_map():
    """Show the live map, or send a visitor without a session to the login page."""
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login_page"))
    # The units in scope come with the page, as on the replay page: the first view is
    # framed on them before the map's first render.
    return _render_page(
        "staff/map.html",
        settings=_page_settings(),
        messages=_map_messages(),
        units=api_routes.units().get_json(),
    )


# A person's day (/people/<id>/day): the timeline of stops and trips, the totals and the
# chart's labels; the server sends metres, seconds and times, the page words them.
DAY_MESSAGES = {
    "day.stop": _l("Stop {n}"),
    "day.trip": _l("Trip"),
    "day.arrived": _l("Arrived"),
    "day.left": _l("Left"),
    "day.duration": _l("Duration"),
    "day.grid": _l("Grid"),
    "day.no_grid": _l("Outside any grid"),
    "day.distance": _l("Distance"),
    "day.avg_speed": _l("Average speed"),
    "day.hours_minutes": _l("{h} h {m} min"),
    "day.minutes": _l("{n} min"),
    "day.seconds": _l("{n} s"),
    "day.raw": _l(
        "Raw {distance}; the filter dropped {n} fixes ({accuracy} inaccurate, "
        "{duplicate} duplicate, {speed} speed jumps)"
    ),
    "day.summary": _l("{stops} stops · {trips} trips · {fixes} fixes"),
    "day.nothing": _l("No fixes on this day."),
    "day.not_found": _l("This person is not in your scope, or does not exist."),
    "day.failed": _l("Could not load the day: {error}"),
    "day.speed": _l("Speed (km/h)"),
    "day.accuracy": _l("Accuracy (m)"),
    "day.place_label": _l("Place"),
    "day.loading": _l("Loading…"),
}


@bp.get("/people/<int:person_id>/day")
def person_day(person_id: int):
    """Show a person's day as stops and trips; the timeline API enforces the scope."""
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login_page"))
    config = current_app.config
    zone = ZoneInfo(config["HISTORY_TIME_ZONE"])
    day = request.args.get("date", "")
    try:
        day = date.fromisoformat(day).isoformat()
    except ValueError:
        day = datetime.now(zone).date().isoformat()
    settings = {
        **_basemap_settings(),
        "lang": page_language(),
        "time_zone": config["HISTORY_TIME_ZONE"],
        "person_id": person_id,
        "date": day,
    }
    return _render_page(
        "staff/day.html",
        DAY_MESSAGES,
        settings=settings,
    )


@bp.get("/login")
def login_page():
    """Show the login form; the page posts to /api/v1/session."""
    if current_user.is_authenticated:
        return redirect(url_for("staff.live_map"))
    return _render_page("staff/login.html")


@bp.get("/admin/units/import")
def import_page():
    """Show the admin page that uploads a GeoJSON file of grid boundaries."""
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login_page"))
    if current_user.role != "admin":
        abort(403)
    return _render_page(
        "staff/import.html",
        messages=js_messages(),
    )


# The administration pages' strings (people, phones, rosters, staff accounts) that their
# scripts show; the labels of the forms are in the templates.
ADMIN_MESSAGES = {
    "admin.page": _l("Page {page} of {pages} · {total} people"),
    "admin.no_people": _l("No one matches these filters."),
    "admin.on_duty": _l("On duty"),
    "admin.off_duty": _l("Off duty"),
    "admin.inactive": _l("Deactivated"),
    "admin.new_person": _l("New person"),
    "admin.edit_person": _l("Edit {name}"),
    "admin.saved": _l("Saved."),
    "admin.created": _l("{name} was added."),
    "admin.deactivate": _l("Deactivate"),
    "admin.reactivate": _l("Reactivate"),
    "admin.confirm_deactivate": _l(
        "Deactivate {name}? Their phones stop working and their shift ends."
    ),
    "admin.start_shift": _l("Start shift"),
    "admin.end_shift": _l("End shift"),
    "admin.shift_started": _l("{name} is now on duty."),
    "admin.shift_ended": _l("{name} is now off duty."),
    "admin.no_grid": _l("No patrol grid"),
    "admin.choose_unit": _l("Choose a unit"),
    "admin.need_name": _l("Write a name."),
    "device.client.webapp": _l("Phone app"),
    "device.client.osmand": _l("GPS app (Traccar Client, OsmAnd, GPSLogger)"),
    "device.client.owntracks": _l("OwnTracks"),
    "device.client.overland": _l("Overland"),
    "device.client.api": _l("API"),
    "device.client.none": _l("Not used yet"),
    "device.revoked": _l("Revoked {time}"),
    "device.in_use": _l("In use"),
    "device.revoke": _l("Revoke"),
    "device.confirm_revoke": _l(
        "Revoke the phone “{label}”? It stops reporting within seconds and cannot be used again."
    ),
    "device.no_devices": _l("No phones yet."),
    "device.default_label": _l("Phone"),
    "staff.active": _l("Enabled"),
    "staff.disabled": _l("Disabled"),
    "staff.disable": _l("Disable"),
    "staff.enable": _l("Enable"),
    "staff.reset_password": _l("Reset password"),
    "staff.new_password": _l("New password for {name} (8 characters or more)"),
    "staff.password_set": _l("Password changed; {name}'s open sessions have ended."),
    "staff.confirm_disable": _l(
        "Disable {name}? They cannot log in, and every open session of the account ends now."
    ),
    "staff.disabled_done": _l("{name} is disabled; their open sessions have ended."),
    "staff.enabled_done": _l("{name} is enabled."),
    "staff.created": _l("Account {name} was created."),
    "staff.short_password": _l("The password needs 8 characters or more."),
    "roster.choose": _l("Choose an .xlsx or .csv file"),
    "roster.summary": _l("{create} to add · {update} to update · {unchanged} unchanged"),
    "roster.errors": _l("{n} rows have errors: nothing can be imported until they are fixed."),
    "roster.ok": _l("No errors. Import adds and updates the people listed."),
    "roster.action.create": _l("Add"),
    "roster.action.update": _l("Update"),
    "roster.action.unchanged": _l("Unchanged"),
    "roster.row_error": _l("Row {row}, {column}: {message}"),
    "roster.imported": _l("Imported: {created} added, {updated} updated, {unchanged} unchanged."),
    "roster.refused": _l("Nothing was imported."),
    "roster.sheet_title": _l("Phones for {n} people"),
    "roster.issue_failed": _l("Could not issue the phones: {error}"),
    "qr.scan": _l("Scan with the phone's camera, or open the link"),
    "audit.before": _l("before"),
    "audit.after": _l("after"),
    "audit.person_actions": _l("Person {id}:"),
    "audit.confirm_erase": _l(
        "Erase person {id}? Every position, alert and phone of theirs is deleted and their name "
        "is replaced everywhere. This cannot be undone."
    ),
    "audit.erased": _l("Person {id} was erased: {positions} positions deleted."),
    "audit.basis_recorded": _l("The legal basis of person {id} was recorded."),
    "audit.kind.person": _l("Person"),
    "audit.kind.unit": _l("Unit"),
    "audit.kind.user": _l("Staff account"),
    "audit.kind.device": _l("Phone"),
    "audit.kind.incident": _l("Incident"),
    "audit.kind.place": _l("Place"),
    "audit.kind.audit": _l("Audit trail"),
    "audit.kind.retention": _l("Retention"),
    "audit.kind.session": _l("Logins of account"),
    "audit.action.track.read": _l("Read a track"),
    "audit.action.track.export_gpx": _l("Exported a track (GPX)"),
    "audit.action.track.export_csv": _l("Exported a track (CSV)"),
    "audit.action.timeline.read": _l("Read a timeline"),
    "audit.action.replay.read": _l("Replayed"),
    "audit.action.near.read": _l("Asked who was near a place"),
    "audit.action.audit.read": _l("Searched the audit trail"),
    "audit.action.audit.export_csv": _l("Exported the audit trail"),
    "audit.action.person.export_json": _l("Exported a person's data"),
    "audit.action.person.export_gpx": _l("Exported a person's fixes"),
    "audit.action.person.erase": _l("Erased a person"),
    "audit.action.person.legal_basis": _l("Recorded a legal basis"),
    "audit.action.person.shift_start": _l("Started a shift"),
    "audit.action.person.shift_end": _l("Ended a shift"),
    "audit.action.unit.tracking_policy": _l("Changed a tracking policy"),
    "audit.action.session.login": _l("Logged in"),
    "audit.action.session.login_failed": _l("Failed login"),
    "audit.action.session.logout": _l("Logged out"),
    "audit.action.session.end_all": _l("Ended all sessions"),
    "audit.action.retention.prune": _l("Pruned old data"),
}


def _admin_messages() -> dict[str, str]:
    """Return the administration pages' strings in the request's language."""
    return {**js_messages(), **{key: str(text) for key, text in ADMIN_MESSAGES.items()}}


def _admin_page(template: str, section: str, roles: tuple[str, ...]) -> Any:
    """Render an administration page for staff of `roles`; send others away or refuse."""
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login_page"))
    if current_user.role not in roles:
        abort(403)
    settings = {
        "roles": list(current_app.config["PERSON_ROLES"]),
        "lang": page_language(),
        "user": {
            "username": current_user.username,
            "role": current_user.role,
            "unit_id": current_user.unit_id,
        },
    }
    return _render_page(
        template,
        section=section,
        settings=settings,
        messages=_admin_messages(),
    )


@bp.get("/admin")
def admin_people():
    """Show the people of the account's scope, their phones and patrol grids."""
    return _admin_page("staff/admin.html", "people", ("admin", "dispatcher"))


@bp.get("/admin/rosters")
def admin_rosters():
    """Show the roster upload: preview, import, and a sheet of phones to hand out."""
    return _admin_page("staff/admin_rosters.html", "rosters", ("admin", "dispatcher"))


@bp.get("/admin/staff")
def admin_staff():
    """Show the staff accounts of the account's scope (admins only)."""
    return _admin_page("staff/admin_staff.html", "staff", ("admin",))


@bp.get("/admin/audit")
def admin_audit():
    """Show the audit trail: search, CSV export, a person's export and erasure (admins)."""
    return _admin_page("staff/admin_audit.html", "audit", ("admin",))


# The units page's strings (the tree, the boundary drawing, the server's facts); the
# labels of its forms are in the template.
UNIT_MESSAGES = {
    "kind.district": _l("District"),
    "kind.street": _l("Street"),
    "kind.community": _l("Community"),
    "kind.grid": _l("Grid"),
    "units.top": _l("(top)"),
    "units.rename": _l("Rename"),
    "units.move": _l("Move"),
    "units.delete": _l("Delete"),
    "units.draw": _l("Boundary"),
    "units.new_name": _l("New name for {name}"),
    "units.confirm_delete": _l("Delete {name}? Only an empty unit can be deleted."),
    "units.created": _l("{name} was added."),
    "units.saved": _l("{name} was saved."),
    "units.deleted": _l("{name} was deleted."),
    "units.failed": _l("Not saved: {error}"),
    "units.no_units": _l("No units yet: add one, or import a GeoJSON file."),
    "units.choose": _l("Choose a unit in the tree, then draw its boundary."),
    "units.drawing": _l(
        "Drawing the boundary of {name}: click the corners on the map, then click the first "
        "corner again (or press Enter) to close it."
    ),
    "units.editing": _l(
        "Editing the boundary of {name}: click it, then drag its corners; drag a midpoint to "
        "add a corner."
    ),
    "units.nothing_drawn": _l("Draw a polygon first."),
    "units.no_boundary": _l("No boundary yet"),
    "units.area": _l("{n} m²"),
    "units.area_km2": _l("{n} km²"),
    "units.repaired": _l(
        "The boundary crossed itself ({reason}) and was repaired: {parts} polygons, "
        "{before} m² as drawn → {after} m² stored."
    ),
    "units.overlap": _l("Overlaps {name} by {n} m²."),
    "units.policy_saved": _l("The policy of {name} was saved."),
    # The grid's patrol people: PATCH /api/v1/people/<id> {"patrol_unit_id"} from the grid.
    "units.people": _l("People patrolling this grid"),
    "units.people_none": _l("No one assigned yet."),
    "units.people_remove": _l("Remove"),
    "units.people_add": _l("Add to this grid"),
    "units.people_search": _l("Search"),
    "units.people_q": _l("Name or phone number"),
    "units.people_no_match": _l("No one matches"),
    "units.people_here": _l("Assigned here"),
    "units.people_added": _l("{name} now patrols {grid}."),
    "units.people_removed": _l("{name} no longer patrols {grid}."),
}


@bp.get("/admin/units")
def admin_units():
    """Show the unit tree and the map where grid boundaries are drawn (admins only)."""
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login_page"))
    if current_user.role != "admin":
        abort(403)
    settings = {
        **_basemap_settings(),
        "lang": page_language(),
        "user": {
            "username": current_user.username,
            "role": current_user.role,
            "unit_id": current_user.unit_id,
        },
    }
    return _render_page(
        "staff/admin_units.html",
        UNIT_MESSAGES,
        section="units",
        settings=settings,
    )


# The replay page's strings that its script shows; the labels of its controls are in the
# template. Facts (counts, metres, times) come from the API and are formatted by the page.
REPLAY_MESSAGES = {
    "replay.play": _l("Play"),
    "replay.pause": _l("Pause"),
    "replay.loading": _l("Loading…"),
    "replay.loaded": _l("{people} people · {fixes} fixes"),
    "replay.loading_part": _l("Loading part {done} of {total} · {fixes} fixes"),
    "replay.remove_person": _l("Remove {name}"),
    "replay.failed": _l("Could not load: {error}"),
    "replay.choose_scope": _l("Choose a unit or people."),
    "replay.shown": _l("{n} of {total} on the map"),
    "replay.last_fix_before": _l("Last fix before this time"),
    "replay.missing": _l("No position at this time (a gap in the fixes)"),
    "replay.near_found": _l("{n} people within {r} m"),
    "replay.near_none": _l("Nobody was within the radius in this window."),
}


@bp.get("/replay")
def replay_page():
    """Show the group replay: everyone of a unit or chosen people through a past range."""
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login_page"))
    # The units in scope, as GET /api/v1/units answers them, come with the page: the page
    # needs their bounds to choose its zoom, and so the thinning of its first request,
    # which can then leave before the map is made rather than after a round trip.
    units = api_routes.units().get_json()
    return _render_page(
        "staff/replay.html", REPLAY_MESSAGES, settings=_page_settings(), units=units
    )


# The reports page's strings that its scripts show: column names with their units, the
# reasons of a failed assessment and the charts' labels. The server sends seconds, metres
# and percentages; the page words them.
REPORTS_MESSAGES = {
    "reports.col.date": _l("Date"),
    "reports.col.name": _l("Name"),
    "reports.col.role": _l("Role"),
    "reports.col.grid": _l("Assigned grid"),
    "reports.col.duty_h": _l("On duty (h)"),
    "reports.col.first_fix": _l("First fix"),
    "reports.col.last_fix": _l("Last fix"),
    "reports.col.distance_km": _l("Distance (km)"),
    "reports.col.inside_h": _l("In grid (h)"),
    "reports.col.outside_min": _l("Off post (min)"),
    "reports.col.absence_min": _l("Longest absence (min)"),
    "reports.col.stops": _l("Stops"),
    "reports.col.overlong": _l("Overlong stays"),
    "reports.col.lost_min": _l("Lost signal (min)"),
    "reports.col.alerts": _l("Alerts"),
    "reports.col.tasks": _l("Tasks assigned / accepted / done"),
    "reports.col.accept_min": _l("Time to accept (min)"),
    "reports.col.grid_name": _l("Grid"),
    "reports.col.coverage_pct": _l("Coverage (%)"),
    "reports.col.patrolled_h": _l("Patrolled (h)"),
    "reports.col.covered_hours": _l("Hours with someone inside"),
    "reports.col.uncovered_h": _l("Uncovered in working hours (h)"),
    "reports.col.people": _l("Patrolled by (min)"),
    "reports.col.period": _l("Period"),
    "reports.col.kind": _l("Kind"),
    "reports.col.score": _l("Score"),
    "reports.col.result": _l("Result"),
    "reports.col.reasons": _l("Reasons"),
    "reports.col.links": _l("Details"),
    "reports.kind.person": _l("Person"),
    "reports.kind.grid": _l("Grid"),
    "reports.pass": _l("Pass"),
    "reports.fail": _l("Fail"),
    "reports.reason.duty_h": _l("on duty {actual} h of {required} h required"),
    "reports.reason.coverage_pct": _l("coverage {actual} % below the required {required} %"),
    "reports.reason.off_post_min": _l(
        "off post {actual} min, more than the {required} min allowed"
    ),
    "reports.reason.score": _l("score {actual} below the pass mark {required}"),
    "reports.day_link": _l("Day"),
    "reports.replay_link": _l("Replay"),
    "reports.coverage_link": _l("Coverage map"),
    "reports.loading": _l("Loading…"),
    "reports.loaded": _l("{n} rows"),
    "reports.failed": _l("Could not load the report: {error}"),
    "reports.empty": _l("Nothing to report for this unit and period."),
    "reports.chart.duty": _l("On duty (h)"),
    "reports.chart.inside": _l("In grid (h)"),
    "reports.chart.outside": _l("Off post (h)"),
    "reports.chart.coverage": _l("Coverage (%)"),
    "reports.chart.hours": _l("People inside, by hour"),
    "reports.chart.score": _l("Score"),
    "reports.coverage_title": _l("{grid} · {date} · {pct} % within {radius} m of the tracks"),
    "reports.no_daily": _l("No daily reports yet."),
    "reports.uncovered": _l("Nobody on duty inside during working hours: {periods}"),
    "reports.no_uncovered": _l("Someone on duty was inside throughout working hours."),
    "reports.all_units": _l("Everything in my scope"),
}


@bp.get("/reports")
def reports_page():
    """Show the patrol reports: person-days, grid-days and assessment of a unit and period."""
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login_page"))
    config = current_app.config
    settings = {
        **_page_settings(),
        "time_zone": config["HISTORY_TIME_ZONE"],
        "radius_m": config["REPORTS_COVERAGE_RADIUS_M"],
        "max_days": config["REPORTS_MAX_DAYS"],
        "today": datetime.now(ZoneInfo(config["HISTORY_TIME_ZONE"])).date().isoformat(),
    }
    return _render_page(
        "staff/reports.html",
        REPORTS_MESSAGES,
        settings=settings,
    )
