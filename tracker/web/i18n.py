"""Languages of the staff pages: the locale of a request and the JavaScript catalogue."""

from __future__ import annotations

from flask import current_app, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

LANG_COOKIE = "lang"

# The map's script shows these strings; they are translated with the templates' catalogue
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
