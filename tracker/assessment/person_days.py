"""One person's day read from the fixes and shifts: duty, distance, time on and off post.

The fixes go through tracker.history first (the one outlier filter, stop definition and
distance of the product), so the distance and stops here are those of the person's day
page. Time is then read from the kept fixes step by step (docs/reports.md):

- a step is the time from one kept fix to the next; it is *tracked* when it is at most
  `gap_s` long, and a longer step is lost signal;
- a tracked step belongs where its first fix is: inside the assigned grid or outside it;
- only the parts of steps within a shift count (on duty), cut at the shifts' ends;
- lost signal is the time on duty that no tracked step covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from ..history.filter import Fix, Track
from ..history.timeline import Settings, Timeline, build_timeline
from .periods import Day, Interval, clip, merge, total_s


@dataclass(frozen=True, slots=True)
class Limits:
    """What the person-day figures depend on besides the history settings."""

    gap_s: float = 300.0
    max_stay_s: float = 1800.0


@dataclass(slots=True)
class Steps:
    """The on-duty parts of tracked steps: when, and from which kept fix each starts."""

    starts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ends: np.ndarray = field(default_factory=lambda: np.zeros(0))
    first_fix: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def total_s(self, mask: np.ndarray | None = None) -> float:
        """Return the summed length of the steps, of those whose first fix is in mask."""
        lengths = self.ends - self.starts
        return float(lengths.sum() if mask is None else lengths[mask[self.first_fix]].sum())

    def intervals(self, mask: np.ndarray | None = None) -> list[Interval]:
        """Return the steps as intervals, those whose first fix is marked in mask."""
        keep = slice(None) if mask is None else mask[self.first_fix]
        return list(zip(self.starts[keep].tolist(), self.ends[keep].tolist(), strict=True))


@dataclass(slots=True)
class PersonDay:
    """The figures of one person's day, and (until released) what grid-days and coverage need."""

    duty_s: float
    first_fix: float | None
    last_fix: float | None
    fixes: int
    distance_m: float
    stops: int
    stop_s: float
    overlong_stops: int
    tracked_s: float
    lost_s: float
    inside_s: float | None
    outside_s: float | None
    longest_absence_s: float | None
    longest_absence_from: float | None
    duty: list[Interval]
    # The kept fixes and their on-duty steps: a day's worth of fixes per person, so a
    # report lets go of them once its grid-days and coverage have read them.
    timeline: Timeline | None
    steps: Steps | None

    def figures(self) -> dict[str, Any]:
        """Return the figures alone, as JSON-ready values (what the cache keeps)."""
        return {name: getattr(self, name) for name in FIGURES}

    @classmethod
    def from_figures(cls, figures: dict[str, Any], duty: list[Interval]) -> PersonDay:
        """Return a person-day of kept figures, without fixes or steps."""
        return cls(
            **{name: figures[name] for name in FIGURES}, duty=duty, timeline=None, steps=None
        )

    def release(self) -> None:
        """Let go of the fixes and steps; only the figures stay."""
        self.timeline = None
        self.steps = None

    def duty_lines(self) -> list[np.ndarray]:
        """Return the on-duty track as lon/lat lines (rows of lon, lat), cut at lost signal."""
        assert self.timeline is not None and self.steps is not None, "released"
        track = self.timeline.track
        steps = np.unique(self.steps.first_fix)
        if not len(steps):
            return []
        xy = np.column_stack((track.lon, track.lat))
        # A line runs over consecutive steps: from the first step's fix to the last one's next.
        first = np.flatnonzero(np.diff(steps, prepend=-2) != 1)
        last = np.append(first[1:], len(steps)) - 1
        return [
            xy[steps[a] : steps[b] + 2] for a, b in zip(first.tolist(), last.tolist(), strict=True)
        ]


FIGURES = (
    "duty_s",
    "first_fix",
    "last_fix",
    "fixes",
    "distance_m",
    "stops",
    "stop_s",
    "overlong_stops",
    "tracked_s",
    "lost_s",
    "inside_s",
    "outside_s",
    "longest_absence_s",
    "longest_absence_from",
)


def track_pieces(
    lines: Sequence[Sequence[tuple[float, float]] | np.ndarray],
    simplify_m: float = 0.0,
    size: int = 40,
) -> list[shapely.LineString]:
    """Return lon/lat lines, simplified, cut into pieces of at most `size` vertices.

    Args:
        lines: the on-duty lines (PersonDay.duty_lines()).
        simplify_m: Douglas-Peucker tolerance; no vertex moves farther than this (a degree
            of longitude is never longer than one of latitude, so the tolerance in degrees
            of latitude is the safe one).
        size: the most vertices of a piece; consecutive pieces share a vertex, so together
            they are the same lines, and short pieces keep the coverage's buffers and the
            search for the pieces near a grid cheap (coverage.area_share()).

    Returns:
        The pieces.
    """
    arrays = [np.asarray(line, dtype=float).reshape(-1, 2) for line in lines]
    arrays = [a for a in arrays if len(a) >= 2]
    if not arrays:
        return []
    geoms = shapely.linestrings(
        np.concatenate(arrays), indices=np.repeat(np.arange(len(arrays)), [len(a) for a in arrays])
    )
    simplified = shapely.simplify(geoms, simplify_m / 111_320, preserve_topology=False)
    # A line that simplifies to nothing (all its fixes in one place) keeps its two ends.
    collapsed = shapely.get_num_coordinates(simplified) < 2
    if collapsed.any():
        simplified[collapsed] = [
            shapely.LineString([a[0], a[-1]]) for a, c in zip(arrays, collapsed, strict=True) if c
        ]
    return list(cut_lines(simplified, size))


def cut_lines(lines: np.ndarray, size: int) -> np.ndarray:
    """Return lines cut into pieces of at most `size` vertices that share their ends.

    Args:
        lines: LineStrings of at least two vertices.
        size: the most vertices of a piece (at least 2).

    Returns:
        The pieces, line by line and in order along each.
    """
    if not len(lines):
        return np.zeros(0, dtype=object)
    coords, owner = shapely.get_coordinates(lines, return_index=True)
    counts = np.bincount(owner, minlength=len(lines))
    first_vertex = np.cumsum(counts) - counts
    per_line = -(-np.maximum(counts - 1, 0) // (size - 1))
    line = np.repeat(np.arange(len(lines)), per_line)
    k = np.arange(len(line)) - np.repeat(np.cumsum(per_line) - per_line, per_line)
    first = first_vertex[line] + k * (size - 1)
    last = np.minimum(first + size - 1, first_vertex[line] + counts[line] - 1)
    lengths = last - first + 1
    vertex = np.repeat(first, lengths) + (
        np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    return shapely.linestrings(coords[vertex], indices=np.repeat(np.arange(len(first)), lengths))


def on_duty_steps(fixes: Track, duty: Sequence[Interval], gap_s: float) -> Steps:
    """Return the parts of tracked steps between kept fixes that lie within duty intervals.

    Args:
        fixes: kept fixes, oldest first.
        duty: merged, sorted duty intervals.
        gap_s: the longest step still tracked; a longer one is lost signal.

    Returns:
        The on-duty parts of tracked steps, in time order.
    """
    if not duty or len(fixes) < 2:
        return Steps()
    t = fixes.t
    dt = np.diff(t)
    tracked = np.flatnonzero((dt > 0) & (dt <= gap_s))
    a, b = t[tracked], t[tracked + 1]
    starts, ends, first = [], [], []
    for duty_start, duty_end in duty:  # a few shifts a day at most
        s, e = np.maximum(a, duty_start), np.minimum(b, duty_end)
        keep = e > s
        starts.append(s[keep])
        ends.append(e[keep])
        first.append(tracked[keep])
    order = np.argsort(np.concatenate(starts), kind="stable")
    return Steps(
        np.concatenate(starts)[order], np.concatenate(ends)[order], np.concatenate(first)[order]
    )


def longest_run(intervals: Sequence[Interval]) -> tuple[float, float | None]:
    """Return the length and start of the longest run of intervals that touch end to start."""
    best, best_from = 0.0, None
    run_start: float | None = None
    run_end = 0.0
    for a, b in intervals:
        if run_start is None or a > run_end:
            run_start = a
        run_end = b
        if run_end - run_start > best:
            best, best_from = run_end - run_start, run_start
    return best, best_from


def points_in(grid: BaseGeometry, fixes: Track) -> np.ndarray:
    """Return, for each fix, whether the grid covers it (its boundary counts as inside)."""
    if not len(fixes):
        return np.zeros(0, dtype=bool)
    return shapely.intersects_xy(grid, fixes.lon, fixes.lat)


def person_day(
    fixes: Sequence[Fix] | Track,
    shifts: Sequence[Interval],
    day: Day,
    grid: BaseGeometry | None,
    settings: Settings,
    limits: Limits,
) -> PersonDay:
    """Read one person's day.

    Args:
        fixes: the stored fixes of the day, oldest first (unfiltered).
        shifts: the person's duty periods (an open shift ends now), any order.
        day: the day.
        grid: the assigned patrol grid, or None for someone without one.
        settings: the outlier rules and the stop definition (tracker.history).
        limits: the longest tracked step and the longest stay that is not overlong.

    Returns:
        The day's figures.
    """
    duty = merge(clip(shifts, day.start, day.end))
    fixes = Track.of(fixes)
    timeline = build_timeline(fixes, settings)
    kept = timeline.track
    steps = on_duty_steps(kept, duty, limits.gap_s)
    tracked_s = steps.total_s()
    duty_s = total_s(duty)
    inside_s = outside_s = absence_s = absence_from = None
    if grid is not None:
        inside = points_in(grid, kept)
        inside_s = steps.total_s(inside)
        outside_s = steps.total_s(~inside)
        absence_s, absence_from = longest_run(steps.intervals(~inside))
    stops = timeline.stops
    return PersonDay(
        duty_s=duty_s,
        first_fix=float(fixes.t[0]) if len(fixes) else None,
        last_fix=float(fixes.t[-1]) if len(fixes) else None,
        fixes=len(fixes),
        distance_m=timeline.distance_m,
        stops=len(stops),
        stop_s=sum(s.duration_s for s in stops),
        overlong_stops=sum(1 for s in stops if s.duration_s > limits.max_stay_s),
        tracked_s=tracked_s,
        lost_s=max(duty_s - tracked_s, 0.0),
        inside_s=inside_s,
        outside_s=outside_s,
        longest_absence_s=absence_s,
        longest_absence_from=absence_from,
        duty=duty,
        timeline=timeline,
        steps=steps,
    )
