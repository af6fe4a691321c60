"""The outlier rules, stops and trips on synthetic and real traces (no database)."""

from __future__ import annotations

import math
import random

import gpxpy
import pytest
from geographiclib.geodesic import Geodesic

from tracker.history.filter import Fix, Rules, consecutive_m, filter_fixes, metres_between
from tracker.history.stops import detect_stops
from tracker.history.timeline import build_timeline

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LAT0, LON0 = 31.2304, 121.4737  # People's Square, Shanghai


def moved(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """Return a point this many metres north and east of (lat, lon), geodesically."""
    g = Geodesic.WGS84
    step = g.Direct(lat, lon, 0.0, north_m)
    step = g.Direct(step["lat2"], step["lon2"], 90.0, east_m)
    return step["lat2"], step["lon2"]


def geodesic_length_m(points: list[tuple[float, float]]) -> float:
    """Return the length of a lat/lon polyline with geographiclib, independently of the code."""
    g = Geodesic.WGS84
    return math.fsum(
        g.Inverse(a[0], a[1], b[0], b[1])["s12"] for a, b in zip(points, points[1:], strict=False)
    )


def walk_stand_walk() -> list[Fix]:
    """Walk east 10 min at 1.4 m/s, stand 10 min, walk east 10 min; a fix every 5 s."""
    fixes: list[Fix] = []
    t, east = T0, 0.0
    for phase, speed in (("walk", 1.4), ("stand", 0.0), ("walk", 1.4)):
        for _ in range(120):
            lat, lon = moved(LAT0, LON0, 0.0, east)
            fixes.append(Fix(t, lat, lon, 5.0, speed))
            t += 5.0
            east += speed * 5.0
        assert phase
    return fixes


def test_walk_stand_walk_gives_one_stop_of_ten_minutes():
    timeline = build_timeline(walk_stand_walk())
    assert len(timeline.stops) == 1
    (stop,) = timeline.stops
    assert stop.duration_s == pytest.approx(600, abs=60)
    assert stop.arrived == pytest.approx(T0 + 600, abs=60)
    # Each walk is 840 m; the last ~25 m into and out of the stop (half its radius from
    # its centre) belong to the stop, which adds no distance.
    assert len(timeline.trips) == 2
    assert [t.distance_m for t in timeline.trips] == [pytest.approx(825, abs=30)] * 2
    assert timeline.distance_m == pytest.approx(1680, rel=0.04)


def test_standing_still_with_jitter_adds_almost_no_distance():
    rng = random.Random(15)
    fixes = []
    for i in range(720):  # an hour at one fix every 5 s
        r, a = 15 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        lat, lon = moved(LAT0, LON0, r * math.cos(a), r * math.sin(a))
        fixes.append(Fix(T0 + 5 * i, lat, lon, 15.0, 0.0))
    timeline = build_timeline(fixes)
    assert timeline.filtered.raw_distance_m > 5_000  # what an unfiltered sum would claim
    assert timeline.distance_m < 50
    assert len(timeline.stops) == 1
    assert timeline.stops[0].duration_s == pytest.approx(3600, abs=60)


@pytest.fixture()
def car_trace(gpx_dir) -> list[Fix]:
    """Return a real recorded car drive (gpxpy's around-visnjan-with-car.gpx)."""
    with open(gpx_dir / "around-visnjan-with-car.gpx", encoding="utf-8") as f:
        gpx = gpxpy.parse(f)
    points = [p for t in gpx.tracks for s in t.segments for p in s.points]
    return [Fix(p.time.timestamp(), p.latitude, p.longitude) for p in points]


def test_clean_trace_filtered_distance_is_within_one_percent_of_geodesic_length(car_trace):
    # Read off the data: the car stands for its first 58 s and its last 107 s (steps of
    # 1-8 m while parked: GPS wander); from 58 s to 407 s it drives (with one ~2 min wait
    # at a junction). That drive is the clean trace.
    start = car_trace[0].t
    drive = [f for f in car_trace if 58 <= f.t - start <= 407]
    expected = geodesic_length_m([(f.lat, f.lon) for f in drive])
    timeline = build_timeline(drive)
    assert sum(timeline.filtered.dropped.values()) == 0
    assert timeline.filtered.raw_distance_m == pytest.approx(expected, rel=1e-6)
    assert timeline.distance_m == pytest.approx(expected, rel=0.01)
    whole = build_timeline(car_trace)
    assert whole.distance_m < whole.filtered.raw_distance_m  # the parked wander is gone


def test_single_spike_is_dropped_as_speed():
    fixes = walk_stand_walk()[:120]
    clean = build_timeline(fixes).distance_m
    lat, lon = moved(fixes[60].lat, fixes[60].lon, 2000.0, 0.0)
    spiked = [*fixes[:60], fixes[60]._replace(lat=lat, lon=lon), *fixes[61:]]
    filtered = filter_fixes(spiked)
    assert filtered.dropped == {"accuracy": 0, "duplicate": 0, "speed": 1}
    assert spiked[60] not in filtered.fixes
    assert filtered.raw_distance_m > clean + 3_900
    assert build_timeline(spiked).distance_m == pytest.approx(clean, abs=10)


def test_inaccurate_fixes_and_exact_duplicates_are_dropped_and_counted():
    fixes = walk_stand_walk()[:10]
    noisy = [fixes[0], fixes[1], fixes[1], fixes[2]._replace(accuracy_m=250.0), *fixes[3:]]
    filtered = filter_fixes(noisy, Rules(max_accuracy_m=100))
    assert filtered.dropped == {"accuracy": 1, "duplicate": 1, "speed": 0}
    assert filtered.fixes == [fixes[0], fixes[1], *fixes[3:]]


def test_no_fixes_gives_an_empty_timeline():
    timeline = build_timeline([])
    assert (timeline.fixes, timeline.stops, timeline.trips, timeline.distance_m) == ([], [], [], 0)


def test_a_stay_shorter_than_the_minimum_is_no_stop():
    fixes = [Fix(T0 + 5 * i, LAT0, LON0) for i in range(50)]  # 245 s
    assert detect_stops(fixes, 50, 300) == []


def test_the_fast_short_distance_agrees_with_the_geodesic_to_a_tenth_of_a_millimetre():
    rng = random.Random(11)
    g = Geodesic.WGS84
    for _ in range(2_000):
        lat, lon = rng.uniform(-85, 85), rng.uniform(-179.9, 179.9)
        # Neighbours as fixes are (short), and points far apart (PROJ's geodesic).
        reach = rng.choice([0.0001, 0.001, 0.0199, 0.5, 20.0])
        lat2 = max(-89.9, min(89.9, lat + rng.uniform(-reach, reach)))
        lon2 = lon + rng.uniform(-reach, reach)
        expected = g.Inverse(lat, lon, lat2, lon2)["s12"]
        assert metres_between(lat, lon, lat2, lon2) == pytest.approx(expected, abs=1e-4)


def test_consecutive_distances_in_one_call_equal_the_pairwise_ones():
    fixes = walk_stand_walk()[:50]
    expected = [
        Geodesic.WGS84.Inverse(a.lat, a.lon, b.lat, b.lon)["s12"]
        for a, b in zip(fixes, fixes[1:], strict=False)
    ]
    assert consecutive_m(fixes) == pytest.approx(expected, abs=1e-6)
    assert consecutive_m(fixes[:1]) == []
