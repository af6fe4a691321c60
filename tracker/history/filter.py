"""The one outlier rule set applied to recorded fixes before any distance, stop or replay.

The rules, in the order they run (docs/history.md):

1. accuracy: a fix whose accuracy radius is worse than `max_accuracy_m` is dropped.
2. duplicate: a fix with the same time and coordinates as the previous one is dropped.
3. speed: a fix is dropped when the speed into it AND the speed out of it exceed
   `max_speed_mps` while its neighbours agree with each other (the speed between them is
   within the limit): a single-fix spike. The first and last fix have one neighbour and
   are kept.
4. jitter: a fix within max(its accuracy, `jitter_floor_m`) of the last fix that added
   distance (the anchor) is kept (its time and speed count) but adds no distance. The
   next fix beyond that radius adds the path walked since the anchor when the path is
   nearly straight (at most `max_detour` times the straight line, so a slow walk round a
   corner keeps its length), and only the straight line otherwise (jitter).

Distances are geodesic on the WGS-84 ellipsoid. Points less than SHORT_DEG apart (about
2 km, every pair of consecutive fixes in practice) are measured with the ellipsoid's radii
of curvature at their mean latitude, which agrees with the geodesic to within 0.1 mm and
costs a third of a call into PROJ; farther ones go to pyproj's Geod. Consecutive distances
are computed for a whole track in one vectorised call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from pyproj import Geod

GEOD = Geod(ellps="WGS84")
SHORT_DEG = 0.02
_A = GEOD.a  # semi-major axis, metres
_E2 = GEOD.es  # first eccentricity squared


class Fix(NamedTuple):
    """A recorded fix: seconds since the epoch, WGS-84 degrees, optional accuracy and speed."""

    t: float
    lat: float
    lon: float
    accuracy_m: float | None = None
    speed_mps: float | None = None


def distance_m(a: Fix, b: Fix) -> float:
    """Return the geodesic distance between two fixes in metres."""
    return metres_between(a.lat, a.lon, b.lat, b.lon)


def metres_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the geodesic distance between two WGS-84 points in metres."""
    dlat, dlon = lat2 - lat1, lon2 - lon1
    if -SHORT_DEG < dlat < SHORT_DEG and -SHORT_DEG < dlon < SHORT_DEG and -89 < lat1 < 89:
        phi = math.radians((lat1 + lat2) / 2)
        w2 = 1 - _E2 * math.sin(phi) ** 2
        across = _A / math.sqrt(w2)  # radius of curvature in the prime vertical
        along = across * (1 - _E2) / w2  # radius of curvature in the meridian
        return math.hypot(math.radians(dlat) * along, math.radians(dlon) * across * math.cos(phi))
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


def consecutive_m(fixes: Sequence[Fix]) -> list[float]:
    """Return the geodesic distances between consecutive fixes, in one call into PROJ."""
    if len(fixes) < 2:
        return []
    lats = np.fromiter((f.lat for f in fixes), float, len(fixes))
    lons = np.fromiter((f.lon for f in fixes), float, len(fixes))
    return GEOD.inv(lons[:-1], lats[:-1], lons[1:], lats[1:])[2].tolist()


def _speed(d: float, dt: float) -> float:
    """Return d / dt, infinite for a jump in no time."""
    if dt <= 0:
        return math.inf if d > 0 else 0.0
    return d / dt


def speed_mps(a: Fix, b: Fix) -> float:
    """Return the speed needed to go from fix a to fix b (infinite for a jump in no time)."""
    return _speed(distance_m(a, b), b.t - a.t)


@dataclass(frozen=True, slots=True)
class Rules:
    """The limits of the outlier rules."""

    max_accuracy_m: float = 100.0
    max_speed_mps: float = 50.0
    jitter_floor_m: float = 10.0
    max_detour: float = 1.5

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Rules:
        """Return the rules set by HISTORY_MAX_ACCURACY_M and HISTORY_MAX_SPEED_MPS."""
        return cls(
            max_accuracy_m=float(config.get("HISTORY_MAX_ACCURACY_M", cls.max_accuracy_m)),
            max_speed_mps=float(config.get("HISTORY_MAX_SPEED_MPS", cls.max_speed_mps)),
        )


@dataclass(frozen=True, slots=True)
class Filtered:
    """The fixes that count, the distance each adds, and what was dropped and why."""

    fixes: list[Fix]
    step_m: list[float]  # distance added by each kept fix: 0 for the first and for jitter
    raw_distance_m: float
    dropped: dict[str, int] = field(default_factory=dict)
    jitter: int = 0

    @property
    def distance_m(self) -> float:
        """Return the filtered length of the kept fixes."""
        return math.fsum(self.step_m)


def raw_distance_m(fixes: Sequence[Fix]) -> float:
    """Return the geodesic length of fixes joined in the order given, nothing dropped."""
    return math.fsum(consecutive_m(fixes))


def filter_fixes(fixes: Sequence[Fix], rules: Rules | None = None) -> Filtered:
    """Apply the outlier rules to fixes in time order.

    Args:
        fixes: one person's fixes, oldest first.
        rules: the limits; the defaults when None.

    Returns:
        The kept fixes with the distance each adds, the raw length, and the number of
        fixes dropped by each rule (`accuracy`, `duplicate`, `speed`).
    """
    rules = rules or Rules()
    dropped = {"accuracy": 0, "duplicate": 0, "speed": 0}
    plausible: list[Fix] = []
    max_accuracy_m = rules.max_accuracy_m
    last = None
    for fix in fixes:
        if fix.accuracy_m is not None and fix.accuracy_m > max_accuracy_m:
            dropped["accuracy"] += 1
        elif last is not None and fix.t == last.t and fix.lat == last.lat and fix.lon == last.lon:
            dropped["duplicate"] += 1
        else:
            plausible.append(fix)
            last = fix

    # The speed rule compares a fix with the last one kept and the next one; when nothing
    # was dropped just before (nearly always) those distances are the precomputed ones.
    raw_step = consecutive_m(fixes)
    step = raw_step if len(plausible) == len(fixes) else consecutive_m(plausible)
    kept_at: list[int] = []
    limit = rules.max_speed_mps
    for i, fix in enumerate(plausible):
        if kept_at and i + 1 < len(plausible):
            k = kept_at[-1]
            before, after = plausible[k], plausible[i + 1]
            d_in = step[i - 1] if k == i - 1 else distance_m(before, fix)
            if (
                _speed(d_in, fix.t - before.t) > limit
                and _speed(step[i], after.t - fix.t) > limit
                and speed_mps(before, after) <= limit
            ):
                dropped["speed"] += 1
                continue
        kept_at.append(i)
    kept = [plausible[i] for i in kept_at]

    step_m = [0.0] * len(kept)
    jitter = 0
    if kept:
        anchor, path_m = 0, 0.0
        for i in range(1, len(kept)):
            fix = kept[i]
            hop = step[kept_at[i - 1]] if kept_at[i] - kept_at[i - 1] == 1 else None
            if hop is None:
                hop = distance_m(kept[i - 1], fix)
            path_m += hop
            d = hop if anchor == i - 1 else distance_m(kept[anchor], fix)
            if d <= max(fix.accuracy_m or 0.0, rules.jitter_floor_m):
                jitter += 1
            else:
                step_m[i] = path_m if path_m <= rules.max_detour * d else d
                anchor, path_m = i, 0.0
    return Filtered(kept, step_m, math.fsum(raw_step), dropped, jitter)
