"""History endpoints: a person's timeline, who was near a place, group replay data."""

from __future__ import annotations

import json
import math
import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask_login import current_user, login_required
from shapely.errors import GEOSException
from shapely.geometry import Polygon, shape
from shapely.validation import explain_validity
from werkzeug.exceptions import HTTPException

from .. import audit, store
from ..extensions import db
from ..history.filter import Track, filter_fixes, floats_or_none
from ..history.timeline import Settings, Timeline, build_timeline
from .routes import json_error, parse_time

bp = Blueprint("history", __name__, url_prefix="/api/v1")
bp.register_error_handler(HTTPException, json_error)

MAX_TIMELINE = timedelta(days=31)
# A range longer than a day sends its series and track thinned to about this many points
# (stops, trips and distances always come from every kept fix).
MAX_SERIES_POINTS = 5_000
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
    track = store.history.read_track(
        db.session, store.history.fix_columns(current_user, person_id, start, end)
    )
    result = build_timeline(track, _settings())
    thin = end - start > timedelta(days=1)
    return _json(_timeline_json(person_id, start, end, result, zone, thin))


def _json(body: dict[str, Any]) -> Response:
    """Return a large JSON answer encoded by orjson (jsonify took a fifth of a month's time)."""
    return Response(orjson.dumps(body), mimetype="application/json")


def _timeline_json(
    person_id: int,
    start: datetime,
    end: datetime,
    result: Timeline,
    zone: ZoneInfo,
    thin: bool,
) -> dict[str, Any]:
    """Return a timeline as the endpoint's JSON; `thin` thins the series and the track."""
    stops = []
    grids = store.history.grids_at(db.session, [(s.lat, s.lon) for s in result.stops])
    for stop, grid in zip(result.stops, grids, strict=True):
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
    track = result.track
    every = max(1, math.ceil(len(track) / MAX_SERIES_POINTS)) if thin else 1
    if every > 1:
        track = track.take(slice(None, None, every))
    return {
        "person_id": person_id,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "distance_m": round(result.distance_m, 1),
        "raw_distance_m": round(result.filtered.raw_distance_m, 1),
        "dropped": result.filtered.dropped,
        "series_every": every,
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
            "t": np.rint(track.t).astype(np.int64).tolist(),
            # Stored as REAL: to the centimetre, not float4's binary digits.
            "speed": floats_or_none(np.round(track.speed_mps, 2)),
            "accuracy": floats_or_none(np.round(track.accuracy_m, 2)),
        },
        "track": {
            "type": "LineString",
            "coordinates": np.round(np.column_stack((track.lon, track.lat)), 6).tolist(),
        },
    }


@bp.get("/near")
@login_required
def near():
    """Return the people in scope who were within radius_m of a point or an area."""
    if "area" in request.args:
        area = _area()
        place_wkt, bounds = area.wkt, area.bounds
        radius_m = _number("radius_m", 0, 5000) if "radius_m" in request.args else 0.0
    else:
        lat = _number("lat", -90, 90)
        lon = _number("lon", -180, 180)
        place_wkt, bounds = f"POINT({lon!r} {lat!r})", (lon, lat, lon, lat)
        radius_m = _number("radius_m", 1, 5000)
    start, end = _window(MAX_WINDOW)
    rows = db.session.execute(
        store.history.people_near(
            current_user,
            place_wkt,
            bounds,
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
            "place": place_wkt,
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


MAX_AREA_VERTICES = 500
MAX_AREA_DEG = 0.5  # about 50 km: a district, not a province


def _area() -> Polygon:
    """Return the `area` parameter (a GeoJSON Polygon, WGS-84) or 400 naming the rule."""
    try:
        geometry = json.loads(request.args["area"])
        area = shape(geometry)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, GEOSException):
        abort(400, description="area: must be a GeoJSON Polygon")
    if not isinstance(area, Polygon) or area.is_empty:
        abort(400, description="area: must be a GeoJSON Polygon")
    if len(area.exterior.coords) + sum(len(r.coords) for r in area.interiors) > MAX_AREA_VERTICES:
        abort(400, description=f"area: at most {MAX_AREA_VERTICES} vertices")
    west, south, east, north = area.bounds
    if not (west >= -180 and east <= 180 and south >= -90 and north <= 90):
        abort(400, description="area: coordinates must be longitude, latitude in degrees")
    if east - west > MAX_AREA_DEG or north - south > MAX_AREA_DEG:
        abort(400, description=f"area: at most {MAX_AREA_DEG:g}° across")
    if not area.is_valid:
        abort(400, description=f"area: not a valid polygon ({explain_validity(area)})")
    return area


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
    """Return the filtered fixes of a unit's or chosen people's, thinned, in delta columns."""
    start, end = _window(MAX_WINDOW)
    step_s = _integer("step_s", 1, 600) if "step_s" in request.args else 1
    unit_id: int | None = None
    if "unit_id" in request.args:
        unit_id = _integer("unit_id", 1, 2**31 - 1)
        if not store.scope.unit_in_scope(db.session, current_user, unit_id):
            abort(404, description="unit: not found")
    person_ids = _person_ids()
    if unit_id is None and person_ids is None:
        abort(400, description="unit_id: or person_ids is required")
    whole_from, whole_to = _whole_range(start, end)
    # Seen in the view at any time of the whole range, so every piece lists the same people.
    seen_in = (_bbox(), whole_from, whole_to) if "bbox" in request.args else None
    people = db.session.execute(
        store.history.replay_people(current_user, unit_id, person_ids, seen_in)
    ).all()
    _audit_replay(whole_from, whole_to, unit_id, [p.id for p in people])
    rules = _settings().rules
    by_person = (
        store.history.read_person_tracks(
            db.session,
            store.history.replay_fixes(
                [p.id for p in people], start, end, step_s, rules.max_accuracy_m
            ),
        )
        if people
        else {}
    )
    origin = start.timestamp()
    out = [
        {
            "person_id": person.id,
            "name": person.name,
            "role": person.role,
            **_delta_columns(filter_fixes(by_person.get(person.id, []), rules).track, origin),
        }
        for person in people
    ]
    return _json(
        {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "step_s": step_s,
            "encoding": "delta",
            "people": out,
        }
    )


# The replay page fetches one range in pieces (15 minutes each, again when zooming in):
# the trail gets one row per range viewed, not one per piece. The page names the whole
# range in range_from/range_to; a piece outside the range it names, or a range of more
# than a day, is refused, so the row always covers what was read. Remembered per process
# for REPLAY_AUDIT_SPAN_S: a second process, or a later look, adds a row of its own.
REPLAY_AUDIT_SPAN_S = 600.0
_replays_recorded: dict[tuple[Any, ...], float] = {}


def _whole_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Return range_from/range_to, the whole range a piece from/to belongs to (or the piece)."""
    whole_from = parse_time("range_from", start)
    whole_to = parse_time("range_to", end)
    if not (whole_from <= start and end <= whole_to):
        abort(400, description="range_from: and range_to must hold from and to")
    if whole_to - whole_from > MAX_WINDOW:
        abort(400, description="range_to: at most 24 h after range_from")
    return whole_from, whole_to


def _audit_replay(
    whole_from: datetime, whole_to: datetime, unit_id: int | None, person_ids: list[int]
) -> None:
    """Record a replay read once per viewer, selection and whole range (see above)."""
    now = time.monotonic()
    key = (current_user.id, unit_id, tuple(person_ids), whole_from, whole_to)
    for old in [k for k, at in _replays_recorded.items() if now - at > REPLAY_AUDIT_SPAN_S]:
        del _replays_recorded[old]
    if key in _replays_recorded:
        return
    # A replay of chosen people names each of them in person_ids, where a search of the
    # trail by person finds it.
    audit.record_read(
        "replay.read",
        "unit" if unit_id is not None else "person",
        unit_id,
        {
            "from": whole_from.isoformat(),
            "to": whole_to.isoformat(),
            "person_ids": person_ids,
        },
    )
    _replays_recorded[key] = now


def _bbox() -> tuple[float, float, float, float]:
    """Return the `bbox` parameter (west,south,east,north in degrees) or 400 naming the rule."""
    try:
        west, south, east, north = (float(v) for v in request.args["bbox"].split(","))
    except ValueError:
        abort(400, description="bbox: must be west,south,east,north in degrees")
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        abort(400, description="bbox: needs west < east and south < north, in degrees")
    return west, south, east, north


def _integer(name: str, low: int, high: int) -> int:
    """Return a required integer parameter within [low, high], or 400 naming it."""
    try:
        value = int(request.args.get(name, ""))
    except ValueError:
        abort(400, description=f"{name}: must be an integer")
    if not low <= value <= high:
        abort(400, description=f"{name}: must be between {low} and {high}")
    return value


def _delta_columns(track: Track, origin: float) -> dict[str, list[int]]:
    """Return fixes as delta-encoded integer columns (docs/history.md, "Replay data").

    `t` is whole seconds since the range's start, `lat` and `lon` are millionths of a
    degree (0.11 m); each column holds its first value, then the difference from the
    previous one. Walking at 5 s a fix is then about ten characters of JSON, not forty.
    """
    columns = {
        "t": np.rint(track.t - origin),
        "lat": np.rint(track.lat * 1_000_000),
        "lon": np.rint(track.lon * 1_000_000),
    }
    return {
        name: np.diff(values.astype(np.int64), prepend=0).tolist()
        for name, values in columns.items()
    }
