"""Validation of position batches: every rule, and no input that can crash it."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.ingest.validate import Limits, PayloadError, parse_batch

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
LIMITS = Limits()


def one(**fields):
    """Return a valid item with some fields replaced."""
    item = {"ts": NOW_MS, "lat": 39.93, "lon": 116.41}
    item.update(fields)
    return item


def errors_of(item) -> list[str]:
    """Return the rejection messages for a one-item batch."""
    _, rejections = parse_batch({"positions": [item]}, NOW, LIMITS)
    return [r.error for r in rejections]


def test_valid_item_with_all_fields_is_converted():
    fixes, rejections = parse_batch(
        {"positions": [one(accuracy=4.5, altitude=44, speed=1.2, heading=359.9, battery=0.5)]},
        NOW,
        LIMITS,
    )
    assert rejections == []
    ((index, fix),) = fixes
    assert index == 0
    assert fix.ts == NOW
    assert (fix.lat, fix.lon) == (39.93, 116.41)
    assert (fix.accuracy_m, fix.altitude_m, fix.speed_mps) == (4.5, 44.0, 1.2)
    assert (fix.heading_deg, fix.battery) == (359.9, 0.5)


@pytest.mark.parametrize(
    "ts, expected",
    [
        ("2026-11-27T08:00:00Z", NOW),
        ("2026-11-27T16:00:00+08:00", NOW),
        ("2026-11-27T07:59:59.123456789Z", datetime(2026, 11, 27, 7, 59, 59, 123456, UTC)),
        (NOW_MS - 1500, NOW - timedelta(milliseconds=1500)),
    ],
)
def test_timestamps_in_each_accepted_form(ts, expected):
    ((_, fix),) = parse_batch({"positions": [one(ts=ts)]}, NOW, LIMITS)[0]
    assert fix.ts == expected
    assert fix.ts.tzinfo is not None


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"ts": "2026-11-27T08:00:00"}, "ts: must include a UTC offset (e.g. Z or +08:00)"),
        ({"ts": "yesterday"}, "ts: not an ISO-8601 date-time"),
        ({"ts": 1.5e12}, "ts: epoch milliseconds must be an integer"),
        ({"ts": True}, "ts: must be an ISO-8601 string or integer epoch milliseconds"),
        ({"ts": None}, "ts: is required"),
        ({"ts": 10**30}, "ts: epoch milliseconds outside the years 1 to 9999"),
        ({"ts": NOW_MS + 301_000}, "ts: more than 300 s in the future"),
        ({"ts": NOW_MS - 8 * 86400_000}, "ts: older than 604800 s"),
        ({"lat": None}, "lat: is required"),
        ({"lat": "39.9"}, "lat: must be a number, got str"),
        ({"lat": True}, "lat: must be a number, got bool"),
        ({"lat": math.nan}, "lat: must be a finite number"),
        ({"lon": math.inf}, "lon: must be a finite number"),
        ({"lat": 90.0001}, "lat: must be between -90 and 90"),
        ({"lon": -180.5}, "lon: must be between -180 and 180"),
        ({"lat": 0, "lon": 0.0}, "lat/lon: (0, 0) is not a real fix"),
        ({"accuracy": -1}, "accuracy: must be >= 0"),
        ({"speed": -0.1}, "speed: must be >= 0"),
        ({"heading": 360}, "heading: must be in [0, 360)"),
        ({"heading": -1}, "heading: must be in [0, 360)"),
        ({"battery": 1.01}, "battery: must be between 0 and 1"),
        ({"battery": [1]}, "battery: must be a number, got list"),
        ({"altitude": "high"}, "altitude: must be a number, got str"),
    ],
)
def test_each_rule_names_the_field(fields, message):
    assert errors_of(one(**fields)) == [message]


def test_item_that_is_not_an_object():
    assert errors_of([39.9, 116.4]) == ["item: must be an object, got list"]


def test_mixed_batch_keeps_indexes():
    payload = {"positions": [one(), one(lat=99), one(ts=NOW_MS - 1), "x"]}
    fixes, rejections = parse_batch(payload, NOW, LIMITS)
    assert [index for index, _ in fixes] == [0, 2]
    assert [r.index for r in rejections] == [1, 3]


@pytest.mark.parametrize(
    "payload, message",
    [
        ([], "payload: must be an object, got list"),
        ("positions", "payload: must be an object, got str"),
        ({}, "positions: must be a list"),
        ({"positions": {"0": {}}}, "positions: must be a list"),
        ({"positions": []}, "positions: must hold 1 to 500 items, got 0"),
        ({"positions": [one()] * 501}, "positions: must hold 1 to 500 items, got 501"),
    ],
)
def test_whole_payload_errors(payload, message):
    with pytest.raises(PayloadError, match=f"^{message.replace('(', '.').replace(')', '.')}$"):
        parse_batch(payload, NOW, LIMITS)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
items = st.dictionaries(
    st.sampled_from(
        ["ts", "lat", "lon", "accuracy", "altitude", "speed", "heading", "battery", "other"]
    ),
    json_values,
)


@given(st.lists(items | json_values, min_size=1, max_size=20))
def test_arbitrary_items_are_stored_or_rejected_never_crash(batch):
    fixes, rejections = parse_batch({"positions": batch}, NOW, LIMITS)
    assert len(fixes) + len(rejections) == len(batch)
    for _, fix in fixes:
        assert math.isfinite(fix.lat) and math.isfinite(fix.lon)
        assert -90 <= fix.lat <= 90 and -180 <= fix.lon <= 180


@given(
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    age_ms=st.integers(0, 7 * 86400_000 - 1),
    heading=st.floats(0, 360, exclude_max=True),
    battery=st.floats(0, 1),
)
def test_every_valid_fix_is_accepted(lat, lon, age_ms, heading, battery):
    item = {"ts": NOW_MS - age_ms, "lat": lat, "lon": lon, "heading": heading, "battery": battery}
    fixes, rejections = parse_batch({"positions": [item]}, NOW, LIMITS)
    if lat == 0 and lon == 0:
        assert len(rejections) == 1
    else:
        assert rejections == [] and len(fixes) == 1


def test_a_fix_extends_into_a_stored_row_field_by_field():
    # The ingest path builds rows as PositionRow(person_id, device_id, *fix): the two named
    # tuples must keep their fields in the same order.
    from tracker.ingest.validate import Fix
    from tracker.store.positions import PositionRow

    assert PositionRow._fields[2:] == Fix._fields
    ((_, fix),) = parse_batch({"positions": [one(accuracy=5, battery=0.5)]}, NOW, LIMITS)[0]
    row = PositionRow(7, 9, *fix)
    assert (row.person_id, row.device_id, row.ts, row.lat, row.lon) == (7, 9, NOW, 39.93, 116.41)
    assert (row.accuracy_m, row.battery, row.speed_mps) == (5.0, 0.5, None)
