"""The reports read from the database: person-days and grid-days for a unit and days.

Everything a report reads goes through tracker.store (scoped to the staff account); the
figures come from person_days, grid_days and coverage.coverage(). Fixes are read a day and
a batch of people at a time, so memory stays bounded however large the unit. Figures are
kept in report_person_days and report_grid_days under the key of what they came from, and
computed again only when that changes (a late fix, a corrected shift; docs/reports.md).
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
from ..history.filter import Track
from ..history.timeline import Settings
from ..models import User
from . import coverage
from .grid_days import GridDay, GridIndex, grid_day, time_in_grids
from .keys import digest, inputs_key
from .periods import Day, Interval, clip, days, merge
from .person_days import Limits, PersonDay, person_day, track_pieces

log = logging.getLogger(__name__)

PEOPLE_PER_READ = 200
# Part of every kept figure's key: bump it when the computation changes (the history
# filter and stops, or this package), so that kept rows are computed again.
FIGURES_VERSION = 2  # 2: tracker/history measures short distances without PROJ


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

    @property
    def simplify_m(self) -> float:
        """Return how far simplifying a track may move it: a tenth of the coverage radius."""
        return self.radius_m / 10


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


def _kept_pieces(session: Session, person_ids: list[int], day: date) -> dict[int, list[Any]]:
    """Return the kept track pieces of people's day, by person."""
    return {
        pid: list(shapely.from_wkb(wkb).geoms)
        for pid, wkb in store.assessment.person_day_tracks(session, person_ids, day).items()
    }


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
        keep_tracks: keep each person-day's fixes and steps (the coverage picture); the
            kept figures are then neither read nor written.

    Returns:
        The figures. Person-days and grid-days computed afresh are kept in
        report_person_days and report_grid_days; the caller commits them.
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
    shift_rows = session.execute(store.assessment.shifts(ids, start, end)).all()
    duty = _duty(shift_rows, now)
    open_since: dict[int, list[float]] = defaultdict(list)
    for row in shift_rows:
        if row.ended_at is None:
            open_since[row.person_id].append(row.started_at.timestamp())
    for row in session.execute(store.assessment.alert_counts(ids, start, end, settings.zone.key)):
        computed.alerts.setdefault((row.person_id, row.day), {})[row.kind] = row.n
    for row in session.execute(store.assessment.tasks(ids, start, end)):
        day = row.assigned_at.astimezone(settings.zone).date()
        computed.tasks.setdefault((row.person_id, day), []).append(row)

    everywhere = store.assessment.all_grids(session)
    index = GridIndex(_shapes(everywhere)) if everywhere else None
    cache = not keep_tracks
    base_key = inputs_key(
        FIGURES_VERSION, repr(settings), [(g.id, digest(bytes(g.wkb))) for g in everywhere]
    )
    assigned_digest = {row.id: digest(bytes(row.wkb)) for row in assigned_rows}
    for day in report_days:
        inside: dict[int, dict[int, list[Interval]]] = defaultdict(dict)
        tracks: list[coverage.DayTrack] = []
        day_start = datetime.fromtimestamp(day.start, UTC)
        day_end = datetime.fromtimestamp(day.end, UTC)
        # One scan of the day's fixes for everyone: a district's is most of the partition,
        # read faster in one pass than as many index lookups as there are batches.
        signatures = store.assessment.fix_signatures(session, ids, day_start, day_end)
        for batch_start in range(0, len(people), PEOPLE_PER_READ):
            batch = people[batch_start : batch_start + PEOPLE_PER_READ]
            batch_ids = [p.id for p in batch]
            kept = (
                store.assessment.cached_person_days(session, batch_ids, day.day, grids_too)
                if cache
                else {}
            )
            keys: dict[int, str | None] = {}
            for person in batch:
                duty_day = merge(clip(duty.get(person.id, []), day.start, day.end))
                # An open shift lasts until now: such a day changes by the minute.
                still_open = any(since < day.end for since in open_since.get(person.id, []))
                keys[person.id] = (
                    None
                    if still_open
                    else inputs_key(
                        base_key,
                        duty_day,
                        person.patrol_unit_id,
                        assigned_digest.get(person.patrol_unit_id),
                        signatures.get(person.id),
                    )
                )
            misses = [
                p
                for p in batch
                if keys[p.id] is None
                or kept.get(p.id) is None
                or kept[p.id].inputs_key != keys[p.id]
            ]
            fixes: dict[int, Track] = {p.id: Track.of([]) for p in misses}
            if misses:
                fixes.update(
                    store.history.read_person_tracks(
                        session, store.history.replay_fixes(list(fixes), day_start, day_end)
                    )
                )
            computed_now = []
            for person in batch:
                if person.id in fixes:
                    result = person_day(
                        fixes[person.id],
                        duty.get(person.id, []),
                        day,
                        assigned.get(person.patrol_unit_id),
                        settings.history,
                        settings.limits,
                    )
                    steps = time_in_grids(result, index) if index is not None else {}
                    pieces = track_pieces(result.duty_lines(), settings.simplify_m)
                    bounds = tuple(shapely.total_bounds(pieces).tolist()) if pieces else None
                    if keys[person.id] is not None:
                        computed_now.append(
                            {
                                "person_id": person.id,
                                "day": day.day,
                                "inputs_key": keys[person.id],
                                "figures": {**result.figures(), "track_bounds": bounds},
                                "grid_steps": {str(g): ivs for g, ivs in steps.items()},
                                "track": shapely.MultiLineString(pieces).wkt if pieces else None,
                            }
                        )
                    if not keep_tracks:
                        result.release()
                else:
                    row = kept[person.id]
                    result = PersonDay.from_figures(
                        row.figures, merge(clip(duty.get(person.id, []), day.start, day.end))
                    )
                    steps = {
                        int(g): [(a, b) for a, b in ivs]
                        for g, ivs in (row.grid_steps or {}).items()
                    }
                    kept_bounds = row.figures.get("track_bounds")
                    bounds = tuple(kept_bounds) if kept_bounds else None
                    pieces = None  # read only if a grid near it must be computed again
                computed.person_days[(person.id, day.day)] = result
                for grid_id, intervals in steps.items():
                    if grid_id in grids:
                        inside[grid_id][person.id] = intervals
                tracks.append(coverage.DayTrack(person.id, keys[person.id], bounds, pieces))
            store.assessment.save_person_days(session, computed_now)
        if not grids:
            continue
        shares = coverage.coverage(
            session,
            grids,
            tracks,
            settings.radius_m,
            day=day.day if cache else None,
            load=lambda ids, day=day: _kept_pieces(session, ids, day.day),
        )
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
    if grid_shape is None:
        return {
            "grid_id": grid_id,
            "date": day.isoformat(),
            "coverage_pct": 0.0,
            "grid": None,
            "covered": None,
            "tracks": [],
            "radius_m": settings.radius_m,
        }
    margin_deg = settings.radius_m / 111_320 / 0.5
    near = []
    for result in computed.person_days.values():
        lines = result.duty_lines()
        if lines:
            track = shapely.MultiLineString(lines)
            if track.distance(grid_shape) <= margin_deg:
                near.append(track)
    day_tracks = []
    for n, track in enumerate(near):
        pieces = track_pieces([list(g.coords) for g in track.geoms], settings.simplify_m)
        if pieces:
            bounds = tuple(shapely.total_bounds(pieces).tolist())
            day_tracks.append(coverage.DayTrack(n, None, bounds, pieces))
    shares = coverage.coverage(
        session, {grid_id: grid_shape}, day_tracks, settings.radius_m, geometry=True
    )
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
