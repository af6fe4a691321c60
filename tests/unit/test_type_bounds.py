"""Validation at the edges of what the columns store: single-precision reals and instants."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from tracker.ingest.validate import REAL_MAX, ItemError, Limits, parse_fix, parse_ts

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
REAL_FIELDS = ("accuracy", "altitude", "speed")


def item(**extra) -> dict:
    """Return a valid item with extra fields."""
    return {"ts": "2026-12-01T07:59:00Z", "lat": 39.9, "lon": 116.4, **extra}


@pytest.mark.parametrize("field", REAL_FIELDS)
def test_the_largest_single_precision_value_is_accepted_and_its_neighbour_is_not(field):
    stored = {"accuracy": "accuracy_m", "altitude": "altitude_m", "speed": "speed_mps"}[field]
    assert getattr(parse_fix(item(**{field: REAL_MAX}), NOW, Limits()), stored) == REAL_MAX
    above = math.nextafter(REAL_MAX, math.inf)
    with pytest.raises(ItemError, match=f"^{field}: must be at most 3.4e38 in magnitude$"):
        parse_fix(item(**{field: above}), NOW, Limits())
    with pytest.raises(ItemError, match=f"^{field}: must be at most 3.4e38"):
        parse_fix(item(**{field: 1e39}), NOW, Limits())
    with pytest.raises(ItemError, match=f"^{field}: must be at most 3.4e38"):
        parse_fix(item(**{field: 1.7976931348623157e308}), NOW, Limits())


def test_largest_altitude_kept_exactly_and_negative_bound_too():
    assert parse_fix(item(altitude=REAL_MAX), NOW, Limits()).altitude_m == REAL_MAX
    assert parse_fix(item(altitude=-REAL_MAX), NOW, Limits()).altitude_m == -REAL_MAX
    with pytest.raises(ItemError, match="^altitude: must be at most"):
        parse_fix(item(altitude=math.nextafter(-REAL_MAX, -math.inf)), NOW, Limits())


def test_magnitudes_below_single_precision_round_to_zero_and_the_smallest_is_kept():
    # 1e-45 is the smallest single-precision magnitude PostgreSQL's real reads; 1e-46 it
    # refuses as an underflow, so validation rounds it to zero as single precision would.
    assert parse_fix(item(altitude=1e-45), NOW, Limits()).altitude_m == 1e-45
    assert parse_fix(item(altitude=1e-46), NOW, Limits()).altitude_m == 0.0
    assert parse_fix(item(altitude=-5e-324), NOW, Limits()).altitude_m == 0.0
    assert parse_fix(item(accuracy=1e-300), NOW, Limits()).accuracy_m == 0.0


def test_smallest_double_coordinates_are_accepted_unchanged():
    fix = parse_fix(item(lat=5e-324, lon=-5e-324), NOW, Limits())
    assert (fix.lat, fix.lon) == (5e-324, -5e-324)


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-23:59",  # no UTC instant before the year 10000
        "0001-01-01T00:00:00+23:59",  # no UTC instant after the year 1
        253402300800000,  # 10000-01-01T00:00:00Z in epoch milliseconds
        -62135596800001,  # one millisecond before 0001-01-01T00:00:00Z
        10**400,
    ],
)
def test_instants_beyond_the_representable_range_are_item_errors(value):
    with pytest.raises(ItemError, match="^ts: "):
        parse_ts(value)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("9999-12-31T23:59:59+23:59", datetime(9999, 12, 31, 0, 0, 59, tzinfo=UTC)),
        ("0001-01-01T23:59:00-00:01", datetime(1, 1, 2, 0, 0, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        (253402300799999, datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
        (-62135596800000, datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_the_first_and_last_representable_instants_parse(value, expected):
    assert parse_ts(value) == expected


def test_far_instants_are_rejected_by_the_window_not_by_a_crash():
    with pytest.raises(ItemError, match="^ts: more than 300 s in the future$"):
        parse_fix(item(ts="9999-12-31T23:59:59+23:59"), NOW, Limits())
    with pytest.raises(ItemError, match="^ts: older than"):
        parse_fix(item(ts="0001-01-01T00:00:00Z"), NOW, Limits())
