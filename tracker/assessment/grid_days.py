"""Grid-days: who was inside each grid while on duty, for how long, and when nobody was."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from ..history.filter import Track
from .periods import Day, Interval, gaps, hourly_s, merge, total_s
from .person_days import PersonDay


class GridIndex:
    """The grids of a report, to say which grid holds each fix (the smallest, if nested)."""

    # A track near more grids than this is placed point by point through the tree.
    MAX_CANDIDATES = 64

    def __init__(self, grids: Mapping[int, BaseGeometry]) -> None:
        """Index the grids' geometries by id."""
        self.ids = np.fromiter(grids, dtype=np.int64, count=len(grids))
        self.geoms = np.asarray(list(grids.values()), dtype=object)
        shapely.prepare(self.geoms)
        self.areas = shapely.area(self.geoms)
        self.tree = shapely.STRtree(self.geoms)

    def locate(self, fixes: Track) -> np.ndarray:
        """Return the id of the grid that covers each fix, -1 outside every grid."""
        out = np.full(len(fixes), -1, dtype=np.int64)
        if not len(fixes) or not len(self.ids):
            return out
        lon, lat = fixes.lon, fixes.lat
        near = self.tree.query(shapely.box(lon.min(), lat.min(), lon.max(), lat.max()))
        # Larger grids first, so that a nested smaller grid overwrites them.
        if len(near) <= self.MAX_CANDIDATES:
            # A day's walk lies near a few grids: test its coordinates against each.
            for i in near[np.argsort(-self.areas[near], kind="stable")].tolist():
                out[shapely.intersects_xy(self.geoms[i], lon, lat)] = self.ids[i]
            return out
        point_i, grid_i = self.tree.query(shapely.points(lon, lat), predicate="intersects")
        order = np.argsort(-self.areas[grid_i], kind="stable")
        out[point_i[order]] = self.ids[grid_i[order]]
        return out


def time_in_grids(person: PersonDay, index: GridIndex) -> dict[int, list[Interval]]:
    """Return the on-duty tracked time a person spent in each grid, as merged intervals.

    Consecutive steps in one grid touch end to start, so a walk through a grid is one
    interval rather than one per fix: this is what a report keeps per person-day and
    reads back for every grid-day (a few dozen intervals, not thousands).
    """
    steps, timeline = person.steps, person.timeline
    assert steps is not None and timeline is not None, "released"
    if not len(steps.first_fix):
        return {}
    grid_of_step = index.locate(timeline.track)[steps.first_fix]
    out: dict[int, list[Interval]] = {}
    for grid_id in np.unique(grid_of_step).tolist():
        if grid_id >= 0:
            keep = grid_of_step == grid_id
            out[grid_id] = merge_sorted(steps.starts[keep], steps.ends[keep])
    return out


def merge_sorted(starts: np.ndarray, ends: np.ndarray) -> list[Interval]:
    """Return the union of intervals sorted by start, as merge() would, in numpy."""
    if not len(starts):
        return []
    reach = np.maximum.accumulate(ends)
    # A new run begins where an interval starts after everything before it has ended.
    first = np.flatnonzero(np.concatenate(([True], starts[1:] > reach[:-1])))
    last = np.concatenate((first[1:] - 1, [len(starts) - 1]))
    return list(zip(starts[first].tolist(), reach[last].tolist(), strict=True))


@dataclass(slots=True)
class GridDay:
    """The figures of one grid's day."""

    grid_id: int
    day: Day
    covered_s: float
    hourly_covered_s: list[float]
    uncovered: list[Interval]
    people_s: dict[int, float] = field(default_factory=dict)
    coverage_pct: float | None = None


def grid_day(
    grid_id: int,
    day: Day,
    people: Mapping[int, Sequence[Interval]],
    workday: tuple[float, float],
    min_uncovered_s: float,
) -> GridDay:
    """Put together everyone's time inside one grid on one day.

    Args:
        grid_id: the grid.
        day: the day.
        people: each person's on-duty tracked intervals inside the grid.
        workday: the hours (from, to; 8.0, 18.0) within which uncovered periods are listed.
        min_uncovered_s: shorter uncovered periods are not listed.

    Returns:
        The grid's day; coverage_pct is filled in by coverage.coverage().
    """
    union = merge(iv for intervals in people.values() for iv in intervals)
    start, end = day.start + workday[0] * 3600, day.start + workday[1] * 3600
    return GridDay(
        grid_id=grid_id,
        day=day,
        covered_s=total_s(union),
        hourly_covered_s=hourly_s(union, day),
        uncovered=[g for g in gaps(union, start, end) if g[1] - g[0] >= min_uncovered_s],
        people_s={pid: total_s(merge(intervals)) for pid, intervals in people.items()},
    )
