"""The reports read from the database: person-days and grid-days for a unit and days.

Everything a report reads goes through tracker.store (scoped to the staff account); the
figures come from person_days, grid_days and the coverage query. Fixes are read a day and
a batch of people at a time, so memory stays bounded however large the unit.
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from .. import store
from ..history.filter import Fix
from ..history.timeline import Settings
from ..models import User
from . import coverage
from .grid_days import GridDay, GridIndex, grid_day, time_in_grids
from .periods import Day, Interval, days
from .person_days import Limits, PersonDay, person_day, track_pieces

log = logging.getLogger(__name__)

PEOPLE_PER_READ = 200


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """Everything the figures depend on, from the app's configuration."""

    zone: ZoneInfo
    history: Settings
    limits: Limits
    radius_m: float
    workday: tuple[float, float]
    min_uncovered_s: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ReportSettings:
        """Return the settings of REPORTS_* and HISTORY_* configuration values."""
        return cls(
            zone=ZoneInfo(config["HISTORY_TIME_ZONE"]),
            history=Settings.from_config(config),
            limits=Limits(
                gap_s=float(config.get("REPORTS_GAP_S", 300.0)),
                max_stay_s=float(config.get("REPORTS_MAX_STAY_S", 1800.0)),
            ),
            radius_m=float(config.get("REPORTS_COVERAGE_RADIUS_M", 25.0)),
            workday=(
                float(config.get("REPORTS_WORKDAY_FROM_H", 8.0)),
                float(config.get("REPORTS_WORKDAY_TO_H", 18.0)),
            ),
            min_uncovered_s=float(config.get("REPORTS_MIN_UNCOVERED_S", 600.0)),
        )


@dataclass(slots=True)
class Computed:
    """The figures of a report's people and grids over its days."""

    days: list[Day]
    people: list[Any]
    grids: list[Any]
    grid_names: dict[int, str]
    person_days: dict[tuple[int, date], PersonDay] = field(default_factory=dict)
    grid_days: dict[tuple[int, date], GridDay] = field(default_factory=dict)
    alerts: dict[tuple[int, date], dict[str, int]] = field(default_factory=dict)
    tasks: dict[tuple[int, date], list[Any]] = field(default_factory=dict)


def _shapes(rows: Sequence[Any]) -> dict[int, BaseGeometry]:
    """Return grid rows' WKB boundaries as prepared Shapely geometries by id."""
    out = {}
    for row in rows:
        geom = shapely.from_wkb(bytes(row.wkb))
        shapely.prepare(geom)
        out[row.id] = geom
    return out


def _duty(rows: Sequence[Any], now: datetime) -> dict[int, list[Interval]]:
    """Return each person's shifts as epoch intervals; an open shift lasts until now."""
    out: dict[int, list[Interval]] = defaultdict(list)
    for row in rows:
        end = row.ended_at or now
        out[row.person_id].append((row.started_at.timestamp(), end.timestamp()))
    return out


def compute(
    session: Session,
    user: User,
    unit_id: int | None,
    first: date,
    last: date,
    settings: ReportSettings,
    grids_too: bool = True,
    now: datetime | None = None,
    person_id: int | None = None,
    keep_tracks: bool = False,
) -> Computed:
    """Compute the person-days (and grid-days) of a unit's people and grids.

    Args:
        session: a session.
        user: the staff account whose scope limits the report.
        unit_id: the unit (None: everything in scope); the caller checked its scope.
        first: the first day.
        last: the last day (inclusive).
        settings: what the figures depend on.
        grids_too: also compute grid-days and coverage.
        now: when open shifts end (the current time when None).
        person_id: only this person of the unit's people (a person's month).
        keep_tracks: keep each person-day's fixes and steps (the coverage picture).

    Returns:
        The figures.
    """
    now = now or datetime.now(UTC)
    report_days = days(first, last, settings.zone)
    people = list(session.execute(store.assessment.report_people(user, unit_id)))
    if person_id is not None:
        people = [p for p in people if p.id == person_id]
    grid_rows = []
    if grids_too:
        grid_rows = list(session.execute(store.assessment.report_grids(user, unit_id)))
    grids = _shapes(grid_rows)
    assigned_ids = {p.patrol_unit_id for p in people if p.patrol_unit_id is not None}
    assigned_rows = list(session.execute(store.assessment.grids_by_id(sorted(assigned_ids))))
    assigned = _shapes(assigned_rows)
    names = {row.id: row.name for row in [*grid_rows, *assigned_rows]}
    computed = Computed(report_days, people, grid_rows, names)
    if not report_days:
        return computed
    start = datetime.fromtimestamp(report_days[0].start, UTC)
    end = datetime.fromtimestamp(report_days[-1].end, UTC)
    ids = [p.id for p in people]
    duty = _duty(session.execute(store.assessment.shifts(ids, start, end)).all(), now)
    for row in session.execute(store.assessment.alert_counts(ids, start, end, settings.zone.key)):
        computed.alerts.setdefault((row.person_id, row.day), {})[row.kind] = row.n
    for row in session.execute(store.assessment.tasks(ids, start, end)):
        day = row.assigned_at.astimezone(settings.zone).date()
        computed.tasks.setdefault((row.person_id, day), []).append(row)

    index = GridIndex(grids) if grids else None
    for day in report_days:
        inside: dict[int, dict[int, list[Interval]]] = defaultdict(dict)
        tracks: list[str] = []
        day_start = datetime.fromtimestamp(day.start, UTC)
        day_end = datetime.fromtimestamp(day.end, UTC)
        for batch_start in range(0, len(people), PEOPLE_PER_READ):
            batch = people[batch_start : batch_start + PEOPLE_PER_READ]
            fixes: dict[int, list[Fix]] = {p.id: [] for p in batch}
            for r in session.execute(store.history.replay_fixes(list(fixes), day_start, day_end)):
                fixes[r.person_id].append(
                    Fix(r.ts.timestamp(), r.lat, r.lon, r.accuracy_m, r.speed_mps)
                )
            for person in batch:
                result = person_day(
                    fixes[person.id],
                    duty.get(person.id, []),
                    day,
                    assigned.get(person.patrol_unit_id),
                    settings.history,
                    settings.limits,
                )
                computed.person_days[(person.id, day.day)] = result
                if index is not None:
                    for grid_id, intervals in time_in_grids(result, index).items():
                        inside[grid_id][person.id] = intervals
                    tracks.extend(track_pieces(result.duty_lines()))
                if not keep_tracks:
                    result.release()
        if index is None:
            continue
        shares = coverage.coverage(session, list(grids), tracks, settings.radius_m)
        for grid_id in grids:
            gd = grid_day(
                grid_id, day, inside.get(grid_id, {}), settings.workday, settings.min_uncovered_s
            )
            gd.coverage_pct = 100.0 * shares.get(grid_id, (0.0, None))[0]
            computed.grid_days[(grid_id, day.day)] = gd
    log.info(
        "report for %s: %d people, %d grids, %d days",
        user.username,
        len(people),
        len(grid_rows),
        len(report_days),
    )
    return computed


def coverage_picture(
    session: Session,
    user: User,
    unit_id: int,
    grid_id: int,
    day: date,
    settings: ReportSettings,
) -> dict[str, Any]:
    """Return a grid's boundary, its covered area and the on-duty tracks near it (GeoJSON).

    Args:
        session: a session.
        user: the staff account; the caller checked that unit and grid are in its scope.
        unit_id: the report's unit, whose people's tracks count (as in the grid-day report).
        grid_id: the grid.
        day: the day.
        settings: what the figures depend on.

    Returns:
        {"grid", "covered" (GeoJSON text or None), "tracks" (GeoJSON texts), "coverage_pct"}.
    """
    computed = compute(
        session, user, unit_id, day, day, settings, grids_too=False, keep_tracks=True
    )
    row = session.execute(store.assessment.grids_by_id([grid_id])).first()
    grid_shape = shapely.from_wkb(bytes(row.wkb)) if row else None
    margin_deg = settings.radius_m / 111_320 / 0.5
    near = []
    for result in computed.person_days.values():
        lines = result.duty_lines()
        if lines and grid_shape is not None:
            track = shapely.MultiLineString(lines)
            if track.distance(grid_shape) <= margin_deg:
                near.append(track)
    pieces = [p for t in near for p in track_pieces([list(g.coords) for g in t.geoms])]
    shares = coverage.coverage(session, [grid_id], pieces, settings.radius_m, geometry=True)
    share, covered = shares.get(grid_id, (0.0, None))
    return {
        "grid_id": grid_id,
        "date": day.isoformat(),
        "radius_m": settings.radius_m,
        "coverage_pct": round(100.0 * share, 2),
        "method": coverage.method_for(grid_id),
        "grid": store.assessment.grid_geojson(session, grid_id),
        "covered": covered,
        "tracks": [shapely.to_geojson(t) for t in near],
    }


def mean_s(values: Sequence[float]) -> float | None:
    """Return the mean of durations, None for none."""
    return statistics.fmean(values) if values else None
