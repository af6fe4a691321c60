"""Alert rules: hysteresis at zone borders, battery thresholds, silence."""

from datetime import UTC, datetime, timedelta

import pytest

from tracker.zones.rules import BatteryRule, ZoneRule, signal_lost, zone_alert

RULE = ZoneRule(min_margin_m=15, max_margin_m=100)


def walk(rule, distances, accuracy=5.0, start=True):
    """Return the alerts raised along a sequence of signed distances."""
    inside, alerts = start, []
    for d in distances:
        after = rule.next_inside(inside, d, accuracy)
        if kind := zone_alert(inside, after):
            alerts.append(kind)
        inside = after
    return alerts


def test_clean_crossing_raises_one_exit_and_one_enter():
    assert walk(RULE, [-80, -40, -10, 5, 30, 90, 40, 10, -5, -30, -70]) == [
        "zone_exit",
        "zone_enter",
    ]


def test_jitter_along_the_border_raises_nothing():
    jitter = [(-1) ** i * (i % 7) * 2.0 for i in range(200)]  # within ±12 m
    assert max(map(abs, jitter)) < 15
    assert walk(RULE, jitter) == []


def test_poor_accuracy_widens_the_margin_up_to_a_cap():
    assert RULE.margin_m(None) == 15
    assert RULE.margin_m(40) == 40
    assert RULE.margin_m(1000) == 100
    assert walk(RULE, [60], accuracy=80) == []
    assert walk(RULE, [120], accuracy=1000) == ["zone_exit"]


def test_first_conclusion_raises_nothing():
    assert zone_alert(None, False) is None
    assert RULE.next_inside(None, 3.0, 5.0) is None
    assert RULE.next_inside(None, 30.0, 5.0) is False


@pytest.mark.parametrize(
    "was_low, battery, now_low",
    [
        (False, 0.5, False),
        (False, 0.14, True),
        (True, 0.17, True),
        (True, 0.21, False),
        (True, None, True),
        (False, None, False),
    ],
)
def test_battery_hysteresis(was_low, battery, now_low):
    assert BatteryRule(low=0.15, recover_margin=0.05).next_low(was_low, battery) is now_low


def test_signal_lost_after_the_timeout():
    now = datetime(2026, 11, 27, 8, tzinfo=UTC)
    after = timedelta(minutes=5)
    assert not signal_lost(now - timedelta(minutes=5), now, after)
    assert signal_lost(now - timedelta(minutes=5, seconds=1), now, after)
