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
of curvature at their mean latitude, which agrees with the geodesic to within 0.1 mm;
farther ones go to pyproj's Geod.

The rules run on a Track, the fixes as numpy columns: a month of 5 s fixes is half a
million of them, and as Python objects they cost more than the rules. Each rule is
decided for every fix at once where it can be; only what depends on the fixes kept
before it (a spike next to a spike, the jitter anchor) is followed one fix at a time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
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


class Track:
    """Fixes as columns, oldest first: float arrays of one length, NaN for an unknown value.

    A track also keeps the radii of curvature at each fix and the distances between
    consecutive fixes once they are asked for, so that the rules measure each only once.
    """

    __slots__ = ("t", "lat", "lon", "accuracy_m", "speed_mps", "_radii", "_steps")

    def __init__(
        self,
        t: Any,
        lat: Any,
        lon: Any,
        accuracy_m: Any = None,
        speed_mps: Any = None,
    ) -> None:
        """Take the columns (anything numpy reads as floats); None: all unknown."""
        self.t = np.asarray(t, dtype=float)
        self.lat = np.asarray(lat, dtype=float)
        self.lon = np.asarray(lon, dtype=float)
        unknown = np.full(len(self.t), np.nan)
        self.accuracy_m = unknown if accuracy_m is None else np.asarray(accuracy_m, dtype=float)
        self.speed_mps = unknown if speed_mps is None else np.asarray(speed_mps, dtype=float)
        self._radii: tuple[np.ndarray, np.ndarray] | None = None
        self._steps: np.ndarray | None = None

    @classmethod
    def of(cls, fixes: Sequence[Fix] | Track) -> Track:
        """Return fixes as a track (a track as itself)."""
        if isinstance(fixes, Track):
            return fixes
        if not len(fixes):
            return cls(np.empty(0), np.empty(0), np.empty(0))
        columns = np.array(fixes, dtype=float).reshape(len(fixes), -1)  # None becomes NaN
        if columns.shape[1] < 5:
            columns = np.pad(columns, ((0, 0), (0, 5 - columns.shape[1])), constant_values=np.nan)
        return cls(*columns.T)

    def __len__(self) -> int:
        return len(self.t)

    def take(self, index: Any) -> Track:
        """Return the fixes at an index array, mask or slice."""
        part = Track(
            self.t[index],
            self.lat[index],
            self.lon[index],
            self.accuracy_m[index],
            self.speed_mps[index],
        )
        if self._radii is not None:
            part._radii = (self._radii[0][index], self._radii[1][index])
        return part

    def to_fixes(self) -> list[Fix]:
        """Return the fixes as Fix tuples, None for an unknown accuracy or speed."""
        return list(
            map(
                Fix,
                self.t.tolist(),
                self.lat.tolist(),
                self.lon.tolist(),
                floats_or_none(self.accuracy_m),
                floats_or_none(self.speed_mps),
            )
        )

    def radii(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the metres in a degree of latitude and of longitude at each fix."""
        if self._radii is None:
            self._radii = metres_per_degree(self.lat)
        return self._radii

    def steps(self) -> np.ndarray:
        """Return the distances between consecutive fixes (one fewer than the fixes)."""
        if self._steps is None:
            index = np.arange(len(self) - 1) if len(self) > 1 else np.zeros(0, dtype=np.int64)
            self._steps = self.between(index, index + 1)
        return self._steps

    def between(self, i: Any, j: Any) -> np.ndarray:
        """Return the distances from fixes i to fixes j (index arrays of one length).

        Short pairs are measured with the radii of curvature averaged over the pair,
        which differs from metres_between()'s radii at the mean latitude by 10⁻¹⁰ of the
        distance at 100 m (the radii change by 10⁻⁷ over 2 km); far ones with PROJ.
        """
        along, across = self.radii()
        dlat, dlon = self.lat[j] - self.lat[i], self.lon[j] - self.lon[i]
        d = 0.5 * np.hypot(dlat * (along[i] + along[j]), dlon * (across[i] + across[j]))
        far = (
            (np.abs(dlat) >= SHORT_DEG) | (np.abs(dlon) >= SHORT_DEG) | (np.abs(self.lat[i]) >= 89)
        )
        if far.any():
            i, j = np.asarray(i)[far], np.asarray(j)[far]
            d[far] = GEOD.inv(self.lon[i], self.lat[i], self.lon[j], self.lat[j])[2]
        return d


def floats_or_none(column: np.ndarray) -> list[float | None]:
    """Return a column as floats, None where it is NaN."""
    return [None if v != v else v for v in column.tolist()]  # NaN is the value not itself


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


def metres_per_degree(lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return the metres in a degree of latitude and in one of longitude, at each latitude."""
    phi = np.radians(lat)
    w2 = 1 - _E2 * np.sin(phi) ** 2
    across = _A / np.sqrt(w2)
    along = across * (1 - _E2) / w2
    return np.radians(along), np.radians(across * np.cos(phi))


def pairwise_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    """Return metres_between() for arrays of points (or a point and an array), in one pass."""
    dlat, dlon = np.subtract(lat2, lat1), np.subtract(lon2, lon1)
    along, across = metres_per_degree(np.add(lat1, lat2) / 2)
    d = np.hypot(dlat * along, dlon * across)
    far = (np.abs(dlat) >= SHORT_DEG) | (np.abs(dlon) >= SHORT_DEG) | (np.abs(lat1) >= 89)
    if far.any():
        lat1, lon1, lat2, lon2 = np.broadcast_arrays(lat1, lon1, lat2, lon2)
        d[far] = GEOD.inv(lon1[far], lat1[far], lon2[far], lat2[far])[2]
    return d


def consecutive_m(fixes: Sequence[Fix] | Track) -> list[float]:
    """Return the geodesic distances between consecutive fixes."""
    return Track.of(fixes).steps().tolist()


def _speed(d: float, dt: float) -> float:
    """Return d / dt, infinite for a jump in no time."""
    if dt <= 0:
        return math.inf if d > 0 else 0.0
    return d / dt


def _speeds(d: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Return _speed() for arrays."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dt > 0, d / np.where(dt > 0, dt, 1.0), np.where(d > 0, np.inf, 0.0))


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


@dataclass(frozen=True)
class Filtered:
    """The fixes that count, the distance each adds, and what was dropped and why."""

    track: Track  # the kept fixes
    step: np.ndarray  # distance added by each kept fix: 0 for the first and for jitter
    raw_distance_m: float
    dropped: dict[str, int] = field(default_factory=dict)
    jitter: int = 0

    @cached_property
    def fixes(self) -> list[Fix]:
        """Return the kept fixes as Fix tuples."""
        return self.track.to_fixes()

    @cached_property
    def step_m(self) -> list[float]:
        """Return the distance each kept fix adds, as floats."""
        return self.step.tolist()

    @property
    def distance_m(self) -> float:
        """Return the filtered length of the kept fixes."""
        return math.fsum(self.step.tolist())


def raw_distance_m(fixes: Sequence[Fix] | Track) -> float:
    """Return the geodesic length of fixes joined in the order given, nothing dropped."""
    return math.fsum(consecutive_m(fixes))


def filter_fixes(fixes: Sequence[Fix] | Track, rules: Rules | None = None) -> Filtered:
    """Apply the outlier rules to fixes in time order.

    Args:
        fixes: one person's fixes, oldest first, as Fix tuples or a Track.
        rules: the limits; the defaults when None.

    Returns:
        The kept fixes with the distance each adds, the raw length, and the number of
        fixes dropped by each rule (`accuracy`, `duplicate`, `speed`).
    """
    rules = rules or Rules()
    track = Track.of(fixes)
    raw_m = math.fsum(track.steps().tolist())
    track.radii()  # measured once; the kept fixes below take theirs

    accurate = np.flatnonzero(~(track.accuracy_m > rules.max_accuracy_m))  # NaN: unknown, kept
    t, lat, lon = track.t[accurate], track.lat[accurate], track.lon[accurate]
    # Equal to the previous accurate fix is equal to the last one kept (equality chains).
    repeated = np.zeros(len(accurate), dtype=bool)
    repeated[1:] = (t[1:] == t[:-1]) & (lat[1:] == lat[:-1]) & (lon[1:] == lon[:-1])
    plausible = accurate[~repeated]
    dropped = {
        "accuracy": len(track) - len(accurate),
        "duplicate": int(repeated.sum()),
        "speed": 0,
    }
    spikes = _spikes(track.take(plausible), rules.max_speed_mps)
    dropped["speed"] = len(spikes)
    kept = track.take(np.delete(plausible, spikes))
    step, jitter = _jitter_steps(kept, rules)
    return Filtered(kept, step, raw_m, dropped, jitter)


def _spikes(track: Track, limit: float) -> list[int]:
    """Return the positions of the fixes that the speed rule drops, in order.

    A fix is compared with the last fix kept before it and the next one. Where the fix
    before was kept, that is its neighbour, and every such fix is decided at once. The
    fix after a dropped one is always kept: the one was dropped because the speed from
    the fix before it to the next was within the limit, and that is the other's speed in.
    """
    if len(track) < 3:
        return []
    t = track.t
    speed = _speeds(track.steps(), np.diff(t))
    index = np.arange(len(track) - 2)
    across = _speeds(track.between(index, index + 2), t[2:] - t[:-2])
    spiky = (speed[:-1] > limit) & (speed[1:] > limit) & (across <= limit)
    spikes: list[int] = []
    for i in (np.flatnonzero(spiky) + 1).tolist():
        if not spikes or spikes[-1] != i - 1:  # after a dropped fix, its verdict is "kept"
            spikes.append(i)
    return spikes


def _jitter_steps(kept: Track, rules: Rules) -> tuple[np.ndarray, int]:
    """Return the distance each kept fix adds under the jitter rule, and the jitter count.

    The anchor moves on to the first later fix beyond that fix's reach. For every fix,
    the first one beyond it among the next LOOKAHEAD is found at once (walking, it is one
    of the next few); only the anchors are then visited one by one, and only an anchor
    that someone stood at for longer is measured on from there.
    """
    n = len(kept)
    if n < 2:
        return np.zeros(n), 0
    hop = kept.steps()
    reach = np.maximum(np.nan_to_num(kept.accuracy_m, nan=0.0), rules.jitter_floor_m)
    ahead = Ahead(kept)
    first = ahead.first_beyond_each(reach, LOOKAHEAD).tolist()
    anchors = []
    a = 0
    while True:
        j = a + first[a] if first[a] else ahead.first_beyond(a, a + LOOKAHEAD + 1, reach)[0]
        if j >= n:
            break
        anchors.append(j)
        a = j
    step = np.zeros(n)
    if anchors:
        to = np.array(anchors)
        since = np.concatenate(([0], to[:-1]))
        straight = kept.between(since, to)
        walked = np.concatenate(([0.0], np.cumsum(hop)))
        path = walked[to] - walked[since]
        step[to] = np.where(path <= rules.max_detour * straight, path, straight)
    return step, n - 1 - len(anchors)


# How many fixes ahead of every fix _jitter_steps() looks at once: past 16, fewer than
# one anchor in 400 of a month of walks and stands is left to look farther.
LOOKAHEAD = 16


class Ahead:
    """Distances from a fix to the fixes after it, for the scans that look ahead of one.

    A block of fixes is measured at once with the radii of curvature averaged over each
    pair, which differs from metres_between()'s radii at the mean latitude by 10⁻¹⁰ of
    the distance at 100 m; the one distance returned is metres_between()'s own.
    """

    __slots__ = ("track", "lat", "lon", "along", "across")

    def __init__(self, track: Track) -> None:
        """Look ahead in a track (its radii are measured once, in the track)."""
        self.track = track
        self.lat, self.lon = track.lat, track.lon
        self.along, self.across = track.radii()

    def first_beyond_each(self, reach: np.ndarray, lookahead: int) -> np.ndarray:
        """Return, for every fix, how many fixes ahead the first one beyond reach is.

        Args:
            reach: metres, one per fix: how far fix j may lie from an earlier one.
            lookahead: how many fixes ahead to look.

        Returns:
            1..lookahead, or 0 where none of the next `lookahead` fixes is beyond.
        """
        lat, lon, along, across = self.lat, self.lon, self.along, self.across
        n = len(lat)
        first = np.zeros(n, dtype=np.int64)
        # Whole shifted slices rather than the fixes still open: contiguous arithmetic is
        # several times faster than gathering. Pairs 0.02° apart or more are over 1.7 km
        # apart, so the averaged radii decide them rightly unless a reach is that long.
        exact_far = len(reach) and reach.max() >= 1_000
        limit2 = 4 * np.square(reach)
        for k in range(1, min(lookahead, n - 1) + 1):
            dlat, dlon = lat[k:] - lat[:-k], lon[k:] - lon[:-k]
            d2 = (dlat * (along[:-k] + along[k:])) ** 2 + (dlon * (across[:-k] + across[k:])) ** 2
            beyond = d2 > limit2[k:]
            if exact_far:
                far = np.flatnonzero((np.abs(dlat) >= SHORT_DEG) | (np.abs(dlon) >= SHORT_DEG))
                beyond[far] = self.track.between(far, far + k) > reach[far + k]
            undecided = first[:-k]
            undecided[beyond & (undecided == 0)] = k
        return first

    def first_beyond(
        self, a: int, start: int, reach: float | np.ndarray, block: int = 16
    ) -> tuple[int, float]:
        """Return the first fix from `start` on farther from fix a than reach, and how far.

        Args:
            a: the fix measured from.
            start: the first fix measured.
            reach: metres, one for all or an array with one per fix of the track.
            block: how many fixes to measure first (then four times as many each time).

        Returns:
            The fix's index and its distance; (len(track), 0.0) when there is none.
        """
        lat, lon = self.lat, self.lon
        n = len(lat)
        while start < n:
            end = min(n, start + block)
            limit = reach if np.isscalar(reach) else reach[start:end]
            out = np.flatnonzero(self._farther(a, start, end, limit))
            if len(out):
                j = start + int(out[0])
                return j, metres_between(lat[a], lon[a], lat[j], lon[j])
            start, block = end, block * 4
        return n, 0.0

    def within(self, lat: float, lon: float, start: int, end: int, radius_m: float) -> np.ndarray:
        """Return whether each fix of start..end-1 lies within radius_m of a point."""
        along, across = metres_per_degree(lat)
        return ~self._farther((lat, lon, float(along), float(across)), start, end, radius_m)

    def _farther(self, origin: Any, start: int, end: int, limit: Any) -> np.ndarray:
        """Return whether fixes start..end-1 lie farther than limit from a fix or point.

        `origin` is a fix's index, or a point as (lat, lon, along, across).
        """
        if isinstance(origin, tuple):
            lat0, lon0, along0, across0 = origin
        else:
            lat0, lon0 = self.lat[origin], self.lon[origin]
            along0, across0 = self.along[origin], self.across[origin]
        dlat, dlon = self.lat[start:end] - lat0, self.lon[start:end] - lon0
        if np.abs(dlat).max() < SHORT_DEG and np.abs(dlon).max() < SHORT_DEG and abs(lat0) < 89:
            d2 = (dlat * (along0 + self.along[start:end])) ** 2 + (
                dlon * (across0 + self.across[start:end])
            ) ** 2
            return d2 > 4 * np.square(limit)
        d = pairwise_m(lat0, lon0, self.lat[start:end], self.lon[start:end])
        return d > limit
