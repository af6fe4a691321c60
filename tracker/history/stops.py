"""Stay points (stops) and the trips between them, in the manner of Traccar and Dawarich.

A stop is a run of fixes that all lie within `radius_m` of the run's first fix and span at
least `min_s` seconds (the stay-point rule of Li et al., 2008, which Dawarich's visits also
follow). A gap in the fixes inside the radius still counts as staying: phones often stop
reporting while still. The run's leading and trailing fixes farther than half the radius
from its centre are then trimmed, so that the walk in and out is not counted as staying.
Trips are the movement between stops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .filter import Ahead, Fix, Track


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


def _stop(track: Track, ahead: Ahead, first: int, last: int, radius_m: float, min_s: float) -> Stop:
    """Return the stop of fixes[first..last], trimmed of the walk in and out."""
    lat = math.fsum(track.lat[first : last + 1].tolist()) / (last + 1 - first)
    lon = math.fsum(track.lon[first : last + 1].tolist()) / (last + 1 - first)
    near = ahead.within(lat, lon, first, last + 1, radius_m / 2)
    # From the start, skip fixes beyond half the radius (never past the last); from the
    # end likewise, never before the new start.
    ahead_of = np.flatnonzero(near[:-1])
    start = int(ahead_of[0]) if len(ahead_of) else len(near) - 1
    behind = np.flatnonzero(near[start + 1 :])
    end = start + 1 + int(behind[-1]) if len(behind) else start
    t = track.t
    if t[first + end] - t[first + start] < min_s:
        start, end = 0, len(near) - 1
    return Stop(
        lat, lon, first + start, first + end, float(t[first + start]), float(t[first + end])
    )


def detect_stops(
    fixes: Sequence[Fix] | Track, radius_m: float = 50.0, min_s: float = 300.0
) -> list[Stop]:
    """Find where someone stayed within `radius_m` for at least `min_s`.

    Args:
        fixes: filtered fixes, oldest first.
        radius_m: how far from where a stop began a fix may lie and still belong to it.
        min_s: the shortest stay that is a stop.

    Returns:
        The stops, oldest first; they never overlap.
    """
    track = Track.of(fixes)
    n = len(track)
    if n < 2:
        return []
    t = track.t
    # A stop can begin at fix i only if the first fix min_s after it is still within the
    # radius: that rules out nearly every fix of a walk at once. (The index is found a
    # microsecond early, so that rounding never rules out a true stop.)
    later = np.searchsorted(t, t + (min_s - 1e-6), side="left")
    reachable = later < n
    starts = np.flatnonzero(reachable)
    # So must the fixes a quarter, half and three quarters of the way there: most of the
    # starts left after that are stops, and each that is not costs a scan.
    for part in (1.0, 0.5, 0.25, 0.75):
        to = starts + np.maximum(1, ((later[starts] - starts) * part).astype(np.int64))
        starts = starts[track.between(starts, to) <= radius_m]
    # The path walked from fix i bounds the straight distance from it (triangle
    # inequality): the fixes whose path from i is within the radius are within it
    # without measuring.
    walked = np.concatenate(([0.0], np.cumsum(track.steps())))
    unmeasured = np.searchsorted(walked, walked + radius_m, side="right")
    ahead = Ahead(track)
    stops: list[Stop] = []
    c = 0
    while c < len(starts):
        i = int(starts[c])
        # Every fix up to the first min_s after i must be within the radius: measure those
        # first, at once.
        start = max(i + 1, int(unmeasured[i]))
        j, _ = ahead.first_beyond(i, start, radius_m, max(16, int(later[i]) + 1 - start))
        if t[j - 1] - t[i] >= min_s:
            stops.append(_stop(track, ahead, i, j - 1, radius_m, min_s))
            c = int(np.searchsorted(starts, j, side="left"))
        else:
            c += 1
    return stops


def trips_between(
    fixes: Sequence[Fix] | Track, step_m: Sequence[float] | np.ndarray, stops: Sequence[Stop]
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
    track = Track.of(fixes)
    if not len(track):
        return []
    step = np.asarray(step_m, dtype=float)
    t = track.t
    bounds: list[tuple[int, int]] = []
    start = 0
    for stop in stops:
        if stop.first > start:
            bounds.append((start, stop.first))
        start = stop.last
    if start < len(track) - 1:
        bounds.append((start, len(track) - 1))
    return [
        Trip(float(t[a]), float(t[b]), math.fsum(step[a + 1 : b + 1].tolist()))
        for a, b in bounds
        if t[b] > t[a]
    ]
