"""Stay points (stops) and the trips between them, in the manner of Traccar and Dawarich.

A stop is a run of fixes that all lie within `radius_m` of the run's first fix and span at
least `min_s` seconds (the stay-point rule of Li et al., 2008, which Dawarich's visits also
follow). A gap in the fixes inside the radius still counts as staying: phones often stop
reporting while still. The run's leading and trailing fixes farther than half the radius
from its centre are then trimmed, so that the walk in and out is not counted as staying.
Trips are the movement between stops.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .filter import Fix, consecutive_m, distance_m, metres_between


@dataclass(frozen=True, slots=True)
class Stop:
    """A place where someone stayed: its centre, first and last fix (indices and times)."""

    lat: float
    lon: float
    first: int
    last: int
    arrived: float
    left: float

    @property
    def duration_s(self) -> float:
        """Return how long the stay lasted."""
        return self.left - self.arrived


@dataclass(frozen=True, slots=True)
class Trip:
    """Movement between two instants, with the filtered distance covered."""

    started: float
    ended: float
    distance_m: float

    @property
    def duration_s(self) -> float:
        """Return how long the trip took."""
        return self.ended - self.started

    @property
    def avg_speed_mps(self) -> float:
        """Return the average speed of the trip (0 for a trip of no time)."""
        return self.distance_m / self.duration_s if self.duration_s > 0 else 0.0


def _centre(fixes: Sequence[Fix]) -> tuple[float, float]:
    """Return the mean latitude and longitude of nearby fixes."""
    return (
        math.fsum(f.lat for f in fixes) / len(fixes),
        math.fsum(f.lon for f in fixes) / len(fixes),
    )


def _stop(fixes: Sequence[Fix], first: int, last: int, radius_m: float, min_s: float) -> Stop:
    """Return the stop of fixes[first..last], trimmed of the walk in and out."""
    lat, lon = _centre(fixes[first : last + 1])
    centre = Fix(0.0, lat, lon)
    start, end = first, last
    while start < end and distance_m(centre, fixes[start]) > radius_m / 2:
        start += 1
    while end > start and distance_m(centre, fixes[end]) > radius_m / 2:
        end -= 1
    if fixes[end].t - fixes[start].t < min_s:
        start, end = first, last
    return Stop(lat, lon, start, end, fixes[start].t, fixes[end].t)


def detect_stops(fixes: Sequence[Fix], radius_m: float = 50.0, min_s: float = 300.0) -> list[Stop]:
    """Find where someone stayed within `radius_m` for at least `min_s`.

    Args:
        fixes: filtered fixes, oldest first.
        radius_m: how far from where a stop began a fix may lie and still belong to it.
        min_s: the shortest stay that is a stop.

    Returns:
        The stops, oldest first; they never overlap.
    """
    stops: list[Stop] = []
    # This scan measures distances from each fix onwards, the hottest loop of a month's
    # timeline. The path walked from fix i bounds the straight distance from it (triangle
    # inequality), so the fixes whose path from i is within the radius are within it
    # without measuring; only the ones beyond are measured.
    lats = [f.lat for f in fixes]
    lons = [f.lon for f in fixes]
    walked = list(itertools.accumulate(consecutive_m(fixes), initial=0.0))
    i, n = 0, len(fixes)
    while i < n:
        j = max(i + 1, bisect.bisect_right(walked, walked[i] + radius_m, lo=i + 1))
        lat, lon = lats[i], lons[i]
        while j < n and metres_between(lat, lon, lats[j], lons[j]) <= radius_m:
            j += 1
        if fixes[j - 1].t - fixes[i].t >= min_s:
            stops.append(_stop(fixes, i, j - 1, radius_m, min_s))
            i = j
        else:
            i += 1
    return stops


def trips_between(
    fixes: Sequence[Fix], step_m: Sequence[float], stops: Sequence[Stop]
) -> list[Trip]:
    """Return the movement before, between and after stops.

    Args:
        fixes: filtered fixes, oldest first.
        step_m: the distance each fix adds (from filter_fixes()).
        stops: the stops among these fixes (from detect_stops()).

    Returns:
        The trips, oldest first; a fix's step belongs to the trip that ends at or after it,
        and steps inside a stop belong to no trip.
    """
    if not fixes:
        return []
    bounds: list[tuple[int, int]] = []
    start = 0
    for stop in stops:
        if stop.first > start:
            bounds.append((start, stop.first))
        start = stop.last
    if start < len(fixes) - 1:
        bounds.append((start, len(fixes) - 1))
    return [
        Trip(fixes[a].t, fixes[b].t, math.fsum(step_m[a + 1 : b + 1]))
        for a, b in bounds
        if fixes[b].t > fixes[a].t
    ]
