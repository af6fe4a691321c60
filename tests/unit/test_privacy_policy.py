"""Tracking policies: inheritance down the unit tree, duty hours, the copy (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from types import SimpleNamespace

from flask import Flask

from tracker import store
from tracker.privacy import rules
from tracker.privacy.policy import OFF_DUTY, TrackingPolicies, UnitPolicy, resolve


def unit(id, parent_id=None, policy=None, start=None, end=None, shows=None):
    """Return a row as store.privacy.unit_policies() gives it."""
    return SimpleNamespace(
        id=id,
        parent_id=parent_id,
        tracking_policy=policy,
        duty_start=start,
        duty_end=end,
        live_shows_off_duty=shows,
    )


DEFAULT = UnitPolicy("always", live_shows_off_duty=True)


def test_units_inherit_what_they_do_not_set():
    rows = [
        unit(1, policy="duty_hours", start=time(8), end=time(18), shows=False),
        unit(2, parent_id=1),
        unit(3, parent_id=2, policy="on_duty"),
        unit(4, parent_id=3, shows=True),
        unit(5),
    ]
    policies = resolve(rows, DEFAULT)
    assert policies[2] == UnitPolicy("duty_hours", time(8), time(18), False)
    assert policies[3] == UnitPolicy("on_duty", None, None, False)
    assert policies[4] == UnitPolicy("on_duty", None, None, True)
    assert policies[5] == DEFAULT


def test_a_cycle_in_a_hand_edited_tree_does_not_hang():
    policies = resolve([unit(1, parent_id=2, policy="on_duty"), unit(2, parent_id=1)], DEFAULT)
    assert policies[1].tracking == "on_duty" and set(policies) == {1, 2}


def test_duty_hours_within_a_day_and_past_midnight():
    day = UnitPolicy("duty_hours", time(8), time(18))
    assert day.within_hours(time(8)) and day.within_hours(time(17, 59))
    assert not day.within_hours(time(18)) and not day.within_hours(time(7, 59))
    night = UnitPolicy("duty_hours", time(22), time(6))
    assert night.within_hours(time(23)) and night.within_hours(time(5, 59))
    assert not night.within_hours(time(6)) and not night.within_hours(time(12))


def test_duty_hours_input_names_the_rule():
    assert rules.parse_duty_hours(" 08:00-18:30 ") == (time(8), time(18, 30))
    assert str(rules.parse_duty_hours("8-18")).startswith("must be HH:MM-HH:MM")
    assert str(rules.parse_duty_hours("24:00-08:00")).startswith("must be HH:MM-HH:MM")
    assert str(rules.parse_duty_hours("08:00-08:00")) == "start and end must differ"
    assert str(rules.tracking_policy_problem("duty_hours", None)) == (
        "duty_hours needs the duty hours"
    )
    assert str(rules.tracking_policy_problem("sometimes", None)).startswith("must be one of")
    assert rules.tracking_policy_problem("on_duty", None) is None
    assert str(rules.legal_basis_problem("because")).startswith("must be one of consent")


def test_a_shift_opened_while_the_policies_are_read_is_kept(monkeypatch):
    app = Flask(__name__)
    app.config.update(
        TRACKING_POLICY="on_duty",
        LIVE_SHOWS_OFF_DUTY=False,
        TRACKING_POLICY_REFRESH_S=10.0,
        HISTORY_TIME_ZONE="Asia/Shanghai",
    )
    policies = TrackingPolicies()
    policies.init_app(app)

    def on_duty_read_before_the_commit(_session):
        # Person 7's shift is committed and noted after the read's snapshot was taken.
        policies.note_duty(7, True)
        return set()

    monkeypatch.setattr(store.privacy, "unit_policies", lambda _session: [])
    monkeypatch.setattr(store.privacy, "people_units", lambda _session: {7: None})
    monkeypatch.setattr(store.privacy, "on_duty_people", on_duty_read_before_the_commit)
    monkeypatch.setattr(store.privacy, "ended_shifts", lambda _session, _after: {})
    policies.load()
    now = datetime.now(UTC)
    assert policies.why_not_kept(7, now) is None
    monkeypatch.setattr(store.privacy, "on_duty_people", lambda _session: set())
    policies.note_duty(7, False)
    policies.load()
    assert policies.why_not_kept(7, now) == OFF_DUTY
