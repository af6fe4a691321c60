"""Assessment rules, periods and interval arithmetic of the reports (no database)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from tracker.assessment.periods import days, gaps, hourly_s, merge
from tracker.assessment.person_days import longest_run, on_duty_steps
from tracker.assessment.rules import Rule, assess, choose, parse_rules, periods
from tracker.history.filter import Fix, Track
from tracker.messages import UserError


@pytest.mark.parametrize(
    ("coverage", "score"),
    [(100, 10), (95, 10), (94.99, 8), (90, 8), (89.9, 6), (85, 6), (84.99, 0), (0, 0), (None, 0)],
)
def test_the_published_scheme_scores_coverage_by_its_thresholds(coverage, score):
    assert Rule().score(coverage) == score


def test_the_most_specific_rule_wins_role_before_unit_depth():
    rules = parse_rules(
        '[{"unit_id": 1, "min_duty_h": 4}, {"unit_id": 2, "min_duty_h": 5},'
        ' {"unit_id": 1, "role": "grid_worker", "min_duty_h": 7}]'
    )
    chain = [3, 2, 1]  # grid 3 in community 2 in street 1
    assert choose(rules, chain, "volunteer").min_duty_h == 5
    assert choose(rules, chain, "grid_worker").min_duty_h == 7
    assert choose(rules, [9], "volunteer") == Rule()


def test_bad_rules_name_the_rule_and_field():
    with pytest.raises(UserError, match=r"ASSESSMENT_RULES\[0\]\.min_duty_h: not a valid value"):
        parse_rules('[{"min_duty_h": "lots"}]')
    with pytest.raises(UserError, match=r"ASSESSMENT_RULES\[0\]\.colour"):
        parse_rules('[{"colour": 1}]')


def test_a_week_requires_the_daily_hours_on_each_working_day_and_gives_reasons():
    week = [date(2026, 6, 1) + timedelta(days=i) for i in range(7)]  # Monday to Sunday
    rule = Rule(min_duty_h=6, min_coverage_pct=85, max_off_post_min=60)
    duty = {d: 6.5 for d in week[:5]}
    verdict = assess(rule, week, duty, dict.fromkeys(week[:5], 96.0), dict.fromkeys(week, 10.0))
    assert verdict.passed and verdict.score == 10 and verdict.reasons == []
    duty[week[0]] = 1.0
    verdict = assess(rule, week, duty, dict.fromkeys(week[:5], 88.0), dict.fromkeys(week, 70.0))
    assert not verdict.passed and verdict.score == 6
    reasons = {c["rule"]: c for c in verdict.reasons}
    assert set(reasons) == {"duty_h", "off_post_min"}
    assert reasons["duty_h"]["required"] == 30 and reasons["duty_h"]["actual"] == 27
    assert reasons["off_post_min"]["required"] == 300 and reasons["off_post_min"]["actual"] == 490


def test_periods_cut_a_range_into_days_iso_weeks_and_months():
    first, last = date(2026, 1, 28), date(2026, 2, 10)
    assert len(periods(first, last, "day")) == 14
    assert periods(first, last, "week") == [
        (date(2026, 1, 28), date(2026, 2, 1)),
        (date(2026, 2, 2), date(2026, 2, 8)),
        (date(2026, 2, 9), date(2026, 2, 10)),
    ]
    assert periods(first, last, "month") == [
        (date(2026, 1, 28), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 10)),
    ]


def test_days_follow_the_zone_including_a_daylight_saving_change():
    (day,) = days(date(2026, 3, 29), date(2026, 3, 29), ZoneInfo("Europe/Berlin"))
    assert day.length_s == 23 * 3600
    assert len(hourly_s([(day.start, day.end)], day)) == 23


def test_steps_are_cut_at_shift_ends_and_long_gaps_are_lost():
    fixes = [Fix(t, 0.0, 0.0) for t in (0, 60, 120, 1000, 1060)]
    steps = on_duty_steps(Track.of(fixes), [(30, 90), (100, 1100)], gap_s=300)
    assert steps.intervals() == [(30, 60), (60, 90), (100, 120), (1000, 1060)]
    assert steps.first_fix.tolist() == [0, 1, 1, 3]
    assert steps.total_s() == 30 + 30 + 20 + 60
    assert merge([(5, 10), (0, 6), (20, 30)]) == [(0, 10), (20, 30)]
    assert gaps([(2, 4), (6, 8)], 0, 10) == [(0, 2), (4, 6), (8, 10)]
    assert longest_run([(0, 5), (5, 9), (20, 22)]) == (9, 0)
