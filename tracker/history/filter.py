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

Distances are geodesic on the WGS-84 ellipsoid (pyproj's Geod).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pyproj import Geod

GEOD = Geod(ellps="WGS84")


class Fix(NamedTuple):
    """A recorded fix: seconds since the epoch, WGS-84 degrees, optional accuracy and speed."""

    t: float
    lat: float
    lon: float
    accuracy_m: float | None = None
    speed_mps: float | None = None


def distance_m(a: Fix, b: Fix) -> float:
    """Return the geodesic distance between two fixes in metres."""
    return GEOD.inv(a.lon, a.lat, b.lon, b.lat)[2]


def speed_mps(a: Fix, b: Fix) -> float:
    """Return the speed needed to go from fix a to fix b (infinite for a jump in no time)."""
    d = distance_m(a, b)
    dt = b.t - a.t
    if dt <= 0:
        return math.inf if d > 0 else 0.0
    return d / dt


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
    return math.fsum(distance_m(a, b) for a, b in zip(fixes, fixes[1:], strict=False))


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
    for fix in fixes:
        if fix.accuracy_m is not None and fix.accuracy_m > rules.max_accuracy_m:
            dropped["accuracy"] += 1
        elif plausible and (fix.t, fix.lat, fix.lon) == plausible[-1][:3]:
            dropped["duplicate"] += 1
        else:
            plausible.append(fix)

    kept: list[Fix] = []
    limit = rules.max_speed_mps
    for i, fix in enumerate(plausible):
        if kept and i + 1 < len(plausible):
            before, after = kept[-1], plausible[i + 1]
            if (
                speed_mps(before, fix) > limit
                and speed_mps(fix, after) > limit
                and speed_mps(before, after) <= limit
            ):
                dropped["speed"] += 1
                continue
        kept.append(fix)

    step_m = [0.0] * len(kept)
    jitter = 0
    if kept:
        anchor, path_m = kept[0], 0.0
        for i in range(1, len(kept)):
            fix = kept[i]
            path_m += distance_m(kept[i - 1], fix)
            d = distance_m(anchor, fix)
            if d <= max(fix.accuracy_m or 0.0, rules.jitter_floor_m):
                jitter += 1
            else:
                step_m[i] = path_m if path_m <= rules.max_detour * d else d
                anchor, path_m = fix, 0.0
    return Filtered(kept, step_m, raw_distance_m(fixes), dropped, jitter)
