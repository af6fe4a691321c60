"""The columnar outlier rules and stop scan agree with their one-fix-at-a-time statement."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.history.filter import Fix, Rules, Track, filter_fixes
from tracker.history.stops import detect_stops

from .history_reference import reference_filter, reference_stops

T0 = 1_767_225_600.0
LAT0, LON0 = 39.9042, 116.4074  # Tiananmen, Beijing
M_PER_DEG = 111_320.0

MOVES = ("walk", "stand", "spike", "duplicate", "inaccurate", "gap", "same_time", "drive")


@st.composite
def days(draw) -> list[Fix]:
    """A person's fixes: walks, jittery stands, spikes, duplicates, gaps and bad accuracy."""
    rng = draw(st.randoms(use_true_random=False))
    moves = draw(st.lists(st.sampled_from(MOVES), max_size=30))
    fixes: list[Fix] = []
    t, north, east = T0, 0.0, 0.0
    heading = 0.0

    def add(n_m: float, e_m: float, accuracy: float | None, speed: float | None) -> None:
        lat = LAT0 + n_m / M_PER_DEG
        lon = LON0 + e_m / (M_PER_DEG * math.cos(math.radians(LAT0)))
        fixes.append(Fix(t, lat, lon, accuracy, speed))

    for move in moves:
        if move in ("walk", "drive"):
            speed = rng.uniform(0.3, 2.0) if move == "walk" else rng.uniform(5, 30)
            heading += rng.uniform(-1.5, 1.5)
            for _ in range(rng.randrange(1, 120)):
                t += 5
                north += speed * 5 * math.cos(heading)
                east += speed * 5 * math.sin(heading)
                add(north, east, rng.choice([None, 5.0, 12.0]), speed)
        elif move == "stand":
            sigma = rng.uniform(0, 20)
            for _ in range(rng.randrange(1, 200)):
                t += rng.choice([5, 5, 5, 30])
                add(
                    north + rng.uniform(-sigma, sigma), east + rng.uniform(-sigma, sigma), 15.0, 0.0
                )
        elif move == "spike":
            t += 5
            jump = rng.uniform(300, 5_000)
            add(north + jump, east, 10.0, None)
        elif move == "duplicate" and fixes:
            fixes.append(fixes[-1])
        elif move == "inaccurate":
            t += 5
            add(north + rng.uniform(-500, 500), east, rng.uniform(101, 2_000), None)
        elif move == "gap":
            t += rng.uniform(60, 7_200)
        elif move == "same_time" and fixes:
            add(north + rng.uniform(0, 30), east, 5.0, None)
    return fixes


@settings(max_examples=300, deadline=None)
@given(days(), st.sampled_from([Rules(), Rules(max_accuracy_m=20, max_speed_mps=10)]))
def test_the_columnar_filter_equals_the_rules_applied_fix_by_fix(fixes, rules):
    kept, step_m, dropped, jitter = reference_filter(fixes, rules)
    filtered = filter_fixes(Track.of(fixes), rules)
    assert filtered.fixes == kept
    assert filtered.dropped == dropped
    assert filtered.jitter == jitter
    assert filtered.step_m == pytest.approx(step_m, rel=1e-9, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(days(), st.sampled_from([(50.0, 300.0), (20.0, 60.0), (100.0, 900.0)]))
def test_the_columnar_stop_scan_equals_the_scan_fix_by_fix(fixes, stop_rule):
    radius_m, min_s = stop_rule
    kept = filter_fixes(fixes).fixes
    assert detect_stops(Track.of(kept), radius_m, min_s) == reference_stops(kept, radius_m, min_s)


def test_a_track_keeps_unknown_accuracy_and_speed_as_none():
    fixes = [
        Fix(T0, LAT0, LON0),
        Fix(T0 + 5, LAT0, LON0, 4.5, None),
        Fix(T0 + 9, 1.0, 2.0, None, 0.25),
    ]
    track = Track.of(fixes)
    assert math.isnan(track.accuracy_m[0]) and track.accuracy_m[1] == 4.5
    assert track.to_fixes() == fixes
    assert Track.of([]).to_fixes() == []
