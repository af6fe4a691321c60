"""Apply the alert rules to committed fixes and to the passing of time; publish the alerts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import gevent
from flask import Flask
from gevent.event import Event

from .. import store
from ..extensions import db
from ..ingest.writer import writer
from ..live.publish import publish_alert
from ..store.alerts import AlertRow
from ..store.positions import PositionRow
from .rules import BatteryRule, ZoneRule, zone_alert

log = logging.getLogger(__name__)


def evaluate_fixes(
    person_ids: Sequence[int], zone_rule: ZoneRule, battery_rule: BatteryRule
) -> list[AlertRow]:
    """Match newest fixes to grids and raise zone, battery and signal-back alerts.

    Runs in the caller's transaction on db.session; the caller commits, then publishes.

    Returns:
        The alerts created.
    """
    session = db.session
    store.zones.match_grids(session, person_ids)
    store.zones.ensure_watch_states(session, person_ids)
    alerts: list[AlertRow] = []
    for fact in store.zones.zone_facts(session, person_ids):
        point = (fact.lat, fact.lon)
        states: dict[str, bool | None] = {}
        kinds: list[tuple[str, dict[str, Any] | None]] = []
        if fact.signal_lost:
            states["signal_lost"] = False
            kinds.append(("signal_back", None))
        if fact.signed_distance_m is not None and fact.on_duty:
            inside = zone_rule.next_inside(
                fact.zone_inside, fact.signed_distance_m, fact.accuracy_m
            )
            if (kind := zone_alert(fact.zone_inside, inside)) is not None:
                facts = {"distance_m": round(abs(fact.signed_distance_m)), "inside": inside}
                kinds.append((kind, facts))
            if inside != fact.zone_inside:
                states["zone_inside"] = inside
        low = battery_rule.next_low(fact.battery_low, fact.battery)
        if low != fact.battery_low:
            states["battery_low"] = low
            if low:
                kinds.append(("low_battery", {"battery": round(fact.battery, 2)}))
        if states:
            store.zones.set_watch_state(session, fact.person_id, **states)
        for kind, facts in kinds:
            alert, new = store.alerts.insert_alert(
                session, fact.person_id, fact.device_id, kind, fact.ts, point, None, facts
            )
            if new:
                alerts.append(alert)
    return alerts


def check_signals(now: datetime, lost_after: timedelta) -> list[AlertRow]:
    """Raise signal_lost for on-duty people silent for longer than `lost_after`.

    Runs in the caller's transaction on db.session; the caller commits, then publishes.

    Args:
        now: the current time (tests inject it).
        lost_after: how long without a fix counts as lost.

    Returns:
        The alerts created.
    """
    session = db.session
    if not store.zones.try_advisory_lock(session, "tracker_signal_check"):
        return []  # another process is checking right now
    store.zones.clear_off_duty_flags(session)
    silent = store.zones.silent_people(session, now - lost_after)
    store.zones.ensure_watch_states(session, [row.person_id for row in silent])
    alerts = []
    for row in silent:
        store.zones.set_watch_state(session, row.person_id, signal_lost=True)
        point = (row.lat, row.lon) if row.lat is not None else None
        minutes = (now - row.last_seen).total_seconds() / 60
        alert, _ = store.alerts.insert_alert(
            session,
            row.person_id,
            None,
            "signal_lost",
            now,
            point,
            None,
            {"minutes": round(minutes)},
        )
        alerts.append(alert)
    return alerts


def _publish(alerts: Sequence[AlertRow]) -> None:
    """Push committed alerts to the viewers in scope."""
    for alert in alerts:
        publish_alert(alert.as_dict(), alert.person_id)


class ZoneWatcher:
    """Run the rules in the background of a server process, off the ingest path."""

    def __init__(self) -> None:
        """Create an unbound watcher; init_app() binds it."""
        self._app: Flask | None = None
        self._pending: set[int] = set()
        self._wake = Event()
        self._greenlets: list[gevent.Greenlet] = []

    def init_app(self, app: Flask) -> None:
        """Bind the watcher to an app and listen to the writer's commits."""
        self._app = app
        config = app.config
        self.zone_rule = ZoneRule(config["ZONE_MIN_MARGIN_M"], config["ZONE_MAX_MARGIN_M"])
        self.battery_rule = BatteryRule(config["LOW_BATTERY"])
        self.lost_after = timedelta(seconds=config["SIGNAL_LOST_AFTER_S"])
        self.check_interval_s = config["SIGNAL_CHECK_INTERVAL_S"]
        app.extensions["zone_watcher"] = self
        writer.add_listener(self.on_commit)

    def on_commit(self, rows: Sequence[PositionRow]) -> None:
        """Queue the people whose fixes were just committed (called by the writer)."""
        self._pending.update(row.person_id for row in rows)
        self._wake.set()
        self.start()

    def start(self) -> None:
        """Start the background greenlets once per process."""
        if not self._greenlets:
            self._greenlets = [gevent.spawn(self._fixes_loop), gevent.spawn(self._signals_loop)]

    def _fixes_loop(self) -> None:
        """Judge the people with new fixes, a batch at a time."""
        while True:
            self._wake.wait()
            self._wake.clear()
            person_ids, self._pending = sorted(self._pending), set()
            self._run(partial(evaluate_fixes, person_ids, self.zone_rule, self.battery_rule))
            gevent.sleep(0.2)  # let more fixes gather; alerts need not be faster than this

    def _signals_loop(self) -> None:
        """Look for silent people every SIGNAL_CHECK_INTERVAL_S."""
        while True:
            gevent.sleep(self.check_interval_s)
            self._run(lambda: check_signals(datetime.now(UTC), self.lost_after))

    def _run(self, rule: Callable[[], list[AlertRow]]) -> None:
        """Run one rule pass in its own transaction; publish what it raised after commit."""
        assert self._app is not None
        with self._app.app_context():
            try:
                alerts = rule()
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("alert rules failed; they will run again")
                return
        with self._app.app_context():
            _publish(alerts)


watcher = ZoneWatcher()
