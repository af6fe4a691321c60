"""Tracking policies: when a person's fixes are kept, and who the live map shows.

Each unit may say `on_duty` (only while the person has an open shift), `duty_hours` (only
between its duty_start and duty_end, local time) or `always`; a unit without a setting
inherits its parent's, and at the top TRACKING_POLICY. The hot path asks this process's
copy, never the database: the copy is re-read every TRACKING_POLICY_REFRESH_S in the
background, and a phone going on or off duty through this process (or staff starting or
ending a person's shift on /admin) updates it at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import gevent
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from .. import store
from ..extensions import db

log = logging.getLogger(__name__)

POLICIES = ("always", "on_duty", "duty_hours")
# A fix taken during a shift is kept when it arrives after the shift ended (a GPS app that
# was out of signal, a phone that queued offline), if the shift ended this recently.
LATE_FIX_SHIFT_WINDOW = timedelta(hours=24)
# Why a fix was acknowledged but not kept (the metrics' `reason` label).
OFF_DUTY = "off_duty"
OUTSIDE_DUTY_HOURS = "outside_duty_hours"


@dataclass(frozen=True, slots=True)
class UnitPolicy:
    """The settings in force for the people of one unit, inheritance resolved."""

    tracking: str
    duty_start: clock_time | None = None
    duty_end: clock_time | None = None
    live_shows_off_duty: bool = False

    def within_hours(self, local: clock_time) -> bool:
        """Return whether a local time of day lies within the duty hours."""
        if self.duty_start is None or self.duty_end is None:
            return True
        if self.duty_start <= self.duty_end:
            return self.duty_start <= local < self.duty_end
        return local >= self.duty_start or local < self.duty_end  # past midnight


def resolve(rows: Any, default: UnitPolicy) -> dict[int, UnitPolicy]:
    """Return each unit's policy, with NULL settings inherited from the parent.

    Args:
        rows: store.privacy.unit_policies() rows.
        default: the settings at the top (TRACKING_POLICY, LIVE_SHOWS_OFF_DUTY).

    Returns:
        unit id -> policy.
    """
    own = {row.id: row for row in rows}
    resolved: dict[int, UnitPolicy] = {}

    def policy_of(unit_id: int, seen: frozenset[int]) -> UnitPolicy:
        if unit_id in resolved:
            return resolved[unit_id]
        row = own[unit_id]
        parent = (
            policy_of(row.parent_id, seen | {unit_id})
            if row.parent_id in own and row.parent_id not in seen
            else default
        )
        tracking = row.tracking_policy or parent.tracking
        hours = (
            (row.duty_start, row.duty_end)
            if row.tracking_policy
            else (parent.duty_start, parent.duty_end)
        )
        shows = (
            parent.live_shows_off_duty
            if row.live_shows_off_duty is None
            else row.live_shows_off_duty
        )
        resolved[unit_id] = UnitPolicy(tracking, hours[0], hours[1], shows)
        return resolved[unit_id]

    for unit_id in own:
        policy_of(unit_id, frozenset())
    return resolved


class TrackingPolicies:
    """This process's copy of the unit policies, people's units and who is on duty."""

    def __init__(self) -> None:
        """Start unloaded; init_app() binds it, the first question loads it."""
        self._app: Flask | None = None
        self.default = UnitPolicy("on_duty")
        self._units: dict[int, UnitPolicy] = {}
        self._person_unit: dict[int, int | None] = {}
        self._on_duty: set[int] = set()
        # Shifts ended within LATE_FIX_SHIFT_WINDOW: person -> [(start, end)].
        self._ended: dict[int, list[tuple[datetime, datetime]]] = {}
        # Duty changes noted since the last read began: person -> (on, when noted).
        self._duty_notes: dict[int, tuple[bool, float]] = {}
        self._ended_notes: dict[int, tuple[datetime, datetime]] = {}
        self._all_always = True
        self._loaded_at: float | None = None
        # When a read was last tried, successful or not: a database outage must not turn
        # every fix into another attempt.
        self._tried_at = 0.0
        self._refreshing = False
        self.refresh_s = 10.0
        self.zone = ZoneInfo("Asia/Shanghai")

    def init_app(self, app: Flask) -> None:
        """Bind to an application and read its defaults."""
        self._app = app
        if app.config["TRACKING_POLICY"] not in POLICIES:
            raise ValueError(f"TRACKING_POLICY: must be one of {', '.join(POLICIES)}")
        self.default = UnitPolicy(
            app.config["TRACKING_POLICY"],
            live_shows_off_duty=app.config["LIVE_SHOWS_OFF_DUTY"],
        )
        self.refresh_s = app.config["TRACKING_POLICY_REFRESH_S"]
        self.zone = ZoneInfo(app.config["HISTORY_TIME_ZONE"])
        self._loaded_at = None

    def load(self) -> None:
        """Read the policies, people's units and open shifts now (one query each)."""
        assert self._app is not None
        started = self._tried_at = time.monotonic()
        with self._app.app_context():
            try:
                units = resolve(store.privacy.unit_policies(db.session), self.default)
                restricted = self.default.tracking != "always" or any(
                    p.tracking != "always" or not p.live_shows_off_duty for p in units.values()
                )
                restricted = restricted or not self.default.live_shows_off_duty
                person_unit = store.privacy.people_units(db.session) if restricted else {}
                on_duty = store.privacy.on_duty_people(db.session) if restricted else set()
                ended = (
                    store.privacy.ended_shifts(
                        db.session, datetime.now(UTC) - LATE_FIX_SHIFT_WINDOW
                    )
                    if restricted
                    else {}
                )
            except SQLAlchemyError as exc:
                log.warning("reading the tracking policies failed: %s", exc)
                db.session.rollback()
                return
            finally:
                db.session.remove()
        # A shift opened or closed while the queries ran may be missing from what they read.
        self._duty_notes = {p: n for p, n in self._duty_notes.items() if n[1] >= started}
        self._ended_notes = {
            p: span for p, span in self._ended_notes.items() if p in self._duty_notes
        }
        for person_id, (on, _) in self._duty_notes.items():
            if on:
                on_duty.add(person_id)
            else:
                on_duty.discard(person_id)
                if person_id in self._ended_notes:
                    ended.setdefault(person_id, []).append(self._ended_notes[person_id])
        self._units, self._person_unit, self._on_duty = units, person_unit, on_duty
        self._ended = ended
        self._all_always = not restricted
        self._loaded_at = time.monotonic()

    def _fresh(self) -> None:
        """Load on first use; afterwards re-read in the background once the copy is old."""
        if self._loaded_at is None:
            if time.monotonic() - self._tried_at > 1.0:
                self.load()
            return
        if time.monotonic() - self._loaded_at > self.refresh_s and not self._refreshing:
            self._refreshing = True
            gevent.spawn(self._refresh)

    def _learn_now(self) -> None:
        """Re-read for a person added since the last read (at most once a second).

        Their unit may keep nothing off duty: guessing the default for their first fixes
        could store what the policy forbids.
        """
        if time.monotonic() - self._tried_at > 1.0:
            self.load()

    def _refresh(self) -> None:
        try:
            self.load()
        finally:
            self._refreshing = False

    def policy_of(self, person_id: int) -> UnitPolicy:
        """Return the policy in force for a person (the default for one not yet known)."""
        unit_id = self._person_unit.get(person_id)
        return self._units.get(unit_id, self.default) if unit_id is not None else self.default

    def why_not_kept(self, person_id: int, ts: datetime) -> str | None:
        """Return why a fix of this person at `ts` must not be kept, or None to keep it."""
        self._fresh()
        if self._all_always:
            return None
        if person_id not in self._person_unit:
            self._learn_now()
        policy = self.policy_of(person_id)
        if (
            policy.tracking == "on_duty"
            and person_id not in self._on_duty
            and not self._was_on_duty(person_id, ts)
        ):
            return OFF_DUTY
        if policy.tracking == "duty_hours" and not policy.within_hours(
            ts.astimezone(self.zone).time()
        ):
            return OUTSIDE_DUTY_HOURS
        return None

    def _was_on_duty(self, person_id: int, ts: datetime) -> bool:
        """Return whether `ts` lies in a shift of the person that ended recently."""
        return any(start <= ts <= end for start, end in self._ended.get(person_id, ()))

    def shows_on_live_map(self, person_id: int, unit_id: int | None, on_duty: bool) -> bool:
        """Return whether the live map may show this person now."""
        if on_duty:
            return True
        self._fresh()
        policy = self._units.get(unit_id, self.default) if unit_id is not None else self.default
        return policy.live_shows_off_duty

    def note_duty(
        self, person_id: int, on: bool, ended: tuple[datetime, datetime] | None = None
    ) -> None:
        """Record at once that a person went on or off duty through this process (committed).

        Args:
            person_id: who.
            on: on duty now, or off.
            ended: the (start, end) of the shift that going off duty closed, if any: a fix
                taken in it may still arrive.
        """
        self._duty_notes[person_id] = (on, time.monotonic())
        if on:
            self._on_duty.add(person_id)
        else:
            self._on_duty.discard(person_id)
        if ended is not None:
            self._ended_notes[person_id] = ended
            self._ended.setdefault(person_id, []).append(ended)


policies = TrackingPolicies()
