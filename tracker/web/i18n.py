"""Languages of the staff pages: the locale of a request and the JavaScript catalogue."""

from __future__ import annotations

from flask import current_app, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

LANG_COOKIE = "lang"

# The pages' scripts show these strings; they are translated with the templates' catalogue
# and handed to the page as JSON, so one .po file holds every visible string.
JS_MESSAGES = {
    "role.volunteer": _l("Volunteer"),
    "role.street_chief": _l("Street chief"),
    "role.grid_worker": _l("Grid worker"),
    "role.patrol": _l("Patrol"),
    "staff.admin": _l("Administrator"),
    "staff.dispatcher": _l("Dispatcher"),
    "staff.viewer": _l("Viewer"),
    "popup.role": _l("Role"),
    "popup.unit": _l("Unit"),
    "popup.last_fix": _l("Last fix"),
    "popup.accuracy": _l("Accuracy"),
    "popup.speed": _l("Speed"),
    "popup.battery": _l("Battery"),
    "popup.on_duty": _l("On duty"),
    "popup.off_duty": _l("Off duty"),
    "popup.stale": _l("No recent fix"),
    "age.seconds": _l("{n} s ago"),
    "age.minutes": _l("{n} min ago"),
    "age.hours": _l("{n} h ago"),
    "age.days": _l("{n} d ago"),
    "unit.m": _l("{n} m"),
    "unit.kmh": _l("{n} km/h"),
    "none": _l("—"),
    "no_unit": _l("No unit"),
    "all_units": _l("All units"),
    "status.live": _l("Live"),
    "status.connecting": _l("Connecting…"),
    "status.offline": _l("Reconnecting…"),
    "trail.points": _l("{n} fixes today, {km} km"),
    "trail.none": _l("No fixes today"),
    "search.no_match": _l("No one matches"),
    "unit.km": _l("{n} km"),
    "close": _l("Close"),
    "coverage.uncovered": _l("Nobody on duty"),
    "coverage.covered": _l("Covered"),
    "coverage.on_duty": _l("{n} on duty"),
    "coverage.summary": _l("{n} grids · {u} with nobody on duty"),
    "coverage.no_grids": _l("No grids with boundaries"),
    "grid.on_duty_inside": _l("On duty inside"),
    "grid.inside": _l("Inside now"),
    "grid.assigned": _l("Assigned"),
    "grid.nobody": _l("Nobody is inside or assigned to this grid."),
    "grid.tag_inside": _l("Inside"),
    "grid.tag_assigned": _l("Assigned here"),
    "alert.sos": _l("SOS"),
    "alert.zone_exit": _l("Left patrol zone"),
    "alert.zone_enter": _l("Back in patrol zone"),
    "alert.signal_lost": _l("Signal lost"),
    "alert.signal_back": _l("Signal back"),
    "alert.low_battery": _l("Low battery"),
    "alert.open": _l("Not acknowledged"),
    "alert.acknowledge": _l("Acknowledge"),
    "alert.acknowledged_by": _l("Acknowledged by {user} at {time}"),
    "alert.ack_failed": _l("Could not acknowledge the alert"),
    "alert.no_location": _l("No location"),
    "status_incident.open": _l("Open"),
    "status_incident.assigned": _l("Assigned"),
    "status_incident.accepted": _l("Under way"),
    "status_incident.done": _l("Done"),
    "status_task.assigned": _l("Sent"),
    "status_task.accepted": _l("Accepted"),
    "status_task.done": _l("Done"),
    "incident.need_point": _l("Click the map or type a latitude and longitude."),
    "incident.need_description": _l("Describe the incident."),
    "incident.created_at": _l("Reported {time}"),
    "incident.tasks": _l("Assigned people"),
    "incident.no_tasks": _l("No one assigned yet."),
    "incident.candidates": _l("Nearest on duty"),
    "incident.no_candidates": _l("No one on duty nearby with a recent fix."),
    "incident.assign": _l("Send the selected"),
    "incident.assign_failed": _l("Could not assign"),
    "incident.history": _l("History"),
    "history.created": _l("Created by {user}"),
    "history.assigned": _l("{user} sent {person}"),
    "history.accepted": _l("{person} accepted"),
    "history.done": _l("{person} finished"),
    "import.choose": _l("Choose a .geojson file"),
    "import.failed": _l("Nothing was imported"),
    "import.not_json": _l("The file is not valid JSON: {detail}"),
    "import.nothing": _l("Fix the feature named above and upload the file again."),
    "import.done": _l("Imported"),
    "import.created": _l("Created"),
    "import.updated": _l("Updated"),
    "import.repaired": _l("Repaired geometries"),
    # Every map page: the basemap switcher, "fit my area" and the map's search.
    "basemap.title": _l("Basemap"),
    "basemap.layers": _l("Layers"),
    "basemap.grid_opacity": _l("Grid opacity"),
    "basemap.unit_opacity": _l("Unit opacity"),
    "basemap.switch": _l("Choose the basemap and the opacity of the layers"),
    "basemap.fit_area": _l("Fit my area"),
    "search.incident": _l("Incident #{n}"),
    "search.nothing": _l("Nothing found"),
    "search.geocoder_failed": _l("The address search did not answer"),
    "search.kind.unit": _l("Unit"),
    "search.kind.person": _l("Person"),
    "search.kind.incident": _l("Incident"),
    "search.kind.place": _l("Coordinates"),
    "search.kind.address": _l("Address"),
}


def select_locale() -> str:
    """Return the user's chosen language, else the browser's best match, else Chinese."""
    languages = current_app.config["LANGUAGES"]
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in languages:
        return chosen
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    if best is None:
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    return "zh_CN" if best.startswith("zh") else "en"


def js_messages() -> dict[str, str]:
    """Return the script's strings in the request's language."""
    return {key: str(text) for key, text in JS_MESSAGES.items()}


def page_language() -> str:
    """Return the request's language as the pages name it: zh_CN or en."""
    locale = get_locale()
    return "zh_CN" if locale is not None and locale.language == "zh" else "en"
