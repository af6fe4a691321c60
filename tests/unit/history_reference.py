"""The outlier rules and the stop scan as first written: one fix at a time, plain Python.

The product's tracker.history runs the same rules on numpy columns, deciding most fixes
at once. These straightforward versions are the statement of the rules it must agree
with (tests/unit/test_history_columns.py).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence

from tracker.history.filter import (
    Fix,
    Rules,
    _speed,
    consecutive_m,
    distance_m,
    metres_between,
    speed_mps,
)
from tracker.history.stops import Stop


def reference_filter(
    fixes: Sequence[Fix], rules: Rules | None = None
) -> tuple[list[Fix], list[float], dict[str, int], int]:
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
    return kept, step_m, dropped, jitter


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


def reference_stops(
    fixes: Sequence[Fix], radius_m: float = 50.0, min_s: float = 300.0
) -> list[Stop]:
    """Return what tracker.history.stops.detect_stops() must return, one fix at a time."""
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
