"""History endpoints: a person's timeline, who was near a place, group replay data."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, jsonify, request
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from .. import audit, store
from ..extensions import db
from ..history.filter import Fix, filter_fixes
from ..history.timeline import Settings, Timeline, build_timeline
from .routes import json_error, parse_time

bp = Blueprint("history", __name__, url_prefix="/api/v1")
bp.register_error_handler(HTTPException, json_error)

MAX_TIMELINE = timedelta(days=31)
MAX_WINDOW = timedelta(hours=24)


def _window(limit: timedelta) -> tuple[datetime, datetime]:
    """Return the required from/to parameters, or 400 naming the field and rule."""
    start, end = parse_time("from", None), parse_time("to", None)
    if start is None:
        abort(400, description="from: is required")
    if end is None:
        abort(400, description="to: is required")
    if start >= end:
        abort(400, description="from: must be before to")
    if end - start > limit:
        abort(400, description=f"to: at most {limit.total_seconds() / 3600:g} h after from")
    return start, end


def _number(name: str, low: float, high: float) -> float:
    """Return a required numeric parameter within [low, high], or 400 naming it."""
    value = request.args.get(name)
    if value is None:
        abort(400, description=f"{name}: is required")
    try:
        number = float(value)
    except ValueError:
        abort(400, description=f"{name}: must be a number")
    if not (math.isfinite(number) and low <= number <= high):
        abort(400, description=f"{name}: must be between {low:g} and {high:g}")
    return number


def _settings() -> Settings:
    """Return the history settings of this app."""
    return Settings.from_config(current_app.config)


def _as_fixes(rows: Any) -> list[Fix]:
    """Return stored rows (ts, lat, lon, accuracy_m, speed_mps) as fixes."""
    return [Fix(r.ts.timestamp(), r.lat, r.lon, r.accuracy_m, r.speed_mps) for r in rows]


def _iso(t: float, zone: ZoneInfo) -> str:
    """Return epoch seconds as ISO-8601 in the server's history time zone."""
    return datetime.fromtimestamp(t, zone).isoformat()


@bp.get("/people/<int:person_id>/timeline")
@login_required
def timeline(person_id: int):
    """Return a person's stops, trips, filtered distance and speed/accuracy series."""
    if not store.scope.can_see_person(db.session, current_user, person_id):
        abort(404, description="person: not found")
    zone = ZoneInfo(current_app.config["HISTORY_TIME_ZONE"])
    if "date" in request.args:
        try:
            day = date.fromisoformat(request.args["date"])
        except ValueError:
            abort(400, description="date: must be YYYY-MM-DD")
        start = datetime.combine(day, datetime.min.time(), zone)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
    else:
        start, end = _window(MAX_TIMELINE)
    audit.record_read(
        "timeline.read", "person", person_id, {"from": start.isoformat(), "to": end.isoformat()}
    )
    rows = db.session.execute(store.history.fixes(current_user, person_id, start, end))
    result = build_timeline(_as_fixes(rows), _settings())
    return jsonify(_timeline_json(person_id, start, end, result, zone))


def _timeline_json(
    person_id: int, start: datetime, end: datetime, result: Timeline, zone: ZoneInfo
) -> dict[str, Any]:
    """Return a timeline as the endpoint's JSON."""
    stops = []
    for stop in result.stops:
        grid = store.history.grid_at(db.session, stop.lat, stop.lon)
        stops.append(
            {
                "lat": round(stop.lat, 6),
                "lon": round(stop.lon, 6),
                "arrived": _iso(stop.arrived, zone),
                "left": _iso(stop.left, zone),
                "duration_s": round(stop.duration_s),
                "grid_id": grid[0] if grid else None,
                "grid_name": grid[1] if grid else None,
            }
        )
    fixes = result.fixes
    return {
        "person_id": person_id,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "distance_m": round(result.distance_m, 1),
        "raw_distance_m": round(result.filtered.raw_distance_m, 1),
        "dropped": result.filtered.dropped,
        "stops": stops,
        "trips": [
            {
                "from": _iso(trip.started, zone),
                "to": _iso(trip.ended, zone),
                "distance_m": round(trip.distance_m, 1),
                "duration_s": round(trip.duration_s),
                "avg_speed_mps": round(trip.avg_speed_mps, 2),
            }
            for trip in result.trips
        ],
        "series": {
            "t": [round(f.t) for f in fixes],
            "speed": [f.speed_mps for f in fixes],
            "accuracy": [f.accuracy_m for f in fixes],
        },
        "track": {
            "type": "LineString",
            "coordinates": [[round(f.lon, 6), round(f.lat, 6)] for f in fixes],
        },
    }


@bp.get("/near")
@login_required
def near():
    """Return the people in scope who were within radius_m of a point in a window."""
    lat = _number("lat", -90, 90)
    lon = _number("lon", -180, 180)
    radius_m = _number("radius_m", 1, 5000)
    start, end = _window(MAX_WINDOW)
    rows = db.session.execute(
        store.history.people_near(
            current_user,
            lat,
            lon,
            radius_m,
            start,
            end,
            current_app.config["HISTORY_MAX_ACCURACY_M"],
        )
    ).all()
    # Recorded with the people it found, where a search of the trail by person finds it.
    audit.record_read(
        "near.read",
        "place",
        None,
        {
            "lat": lat,
            "lon": lon,
            "radius_m": radius_m,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "person_ids": [r.person_id for r in rows],
        },
    )
    return jsonify(
        people=[
            {
                "person_id": r.person_id,
                "name": r.name,
                "role": r.role,
                "entered": r.entered.isoformat(),
                "left": r.left.isoformat(),
                "closest_m": round(r.closest_m, 1),
            }
            for r in rows
        ]
    )


def _person_ids() -> list[int] | None:
    """Return the person_ids parameter as ids, or 400 naming it."""
    value = request.args.get("person_ids")
    if value is None:
        return None
    try:
        ids = [int(part) for part in value.split(",")]
    except ValueError:
        abort(400, description="person_ids: must be a comma-separated list of ids")
    if not ids or len(ids) > 5000:
        abort(400, description="person_ids: between 1 and 5000 ids")
    return ids


@bp.get("/replay")
@login_required
def replay():
    """Return filtered fixes of a unit's or chosen people's in columns per person."""
    start, end = _window(MAX_WINDOW)
    unit_id: int | None = None
    if "unit_id" in request.args:
        try:
            unit_id = int(request.args["unit_id"])
        except ValueError:
            abort(400, description="unit_id: must be an integer")
        if not store.scope.unit_in_scope(db.session, current_user, unit_id):
            abort(404, description="unit: not found")
    person_ids = _person_ids()
    if unit_id is None and person_ids is None:
        abort(400, description="unit_id: or person_ids is required")
    people = db.session.execute(
        store.history.replay_people(current_user, unit_id, person_ids)
    ).all()
    # A replay of chosen people names each of them in person_ids, where a search of the
    # trail by person finds it.
    audit.record_read(
        "replay.read",
        "unit" if unit_id is not None else "person",
        unit_id,
        {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "person_ids": [p.id for p in people],
        },
    )
    fixes_by_person: dict[int, list[Fix]] = {p.id: [] for p in people}
    if people:
        for r in db.session.execute(store.history.replay_fixes(list(fixes_by_person), start, end)):
            fixes_by_person[r.person_id].append(
                Fix(r.ts.timestamp(), r.lat, r.lon, r.accuracy_m, r.speed_mps)
            )
    rules = _settings().rules
    origin = start.timestamp()
    out = []
    for person in people:
        kept = filter_fixes(fixes_by_person[person.id], rules).fixes
        out.append(
            {
                "person_id": person.id,
                "name": person.name,
                "role": person.role,
                "t": [round(f.t - origin, 3) for f in kept],
                "lon": [round(f.lon, 6) for f in kept],
                "lat": [round(f.lat, 6) for f in kept],
            }
        )
    return jsonify({"from": start.isoformat(), "to": end.isoformat(), "people": out})
