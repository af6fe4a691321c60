"""Background checks of the loop: tasks no phone took, and shifts nobody is on.

Each server process runs them every SIGNAL_CHECK_INTERVAL_S; an advisory lock lets only
one process check at a time, and tasks are claimed with SKIP LOCKED, so an alert is raised
once however many processes run.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import gevent
from flask import Flask

from .. import store
from ..extensions import db
from ..live.publish import publish_alert
from ..store.alerts import AlertRow

log = logging.getLogger(__name__)


def check_undelivered(now: datetime, after: timedelta) -> list[AlertRow]:
    """Raise `task_undelivered` for tasks still `sent` for longer than `after` (once each).

    Runs in the caller's transaction on db.session; the caller commits, then publishes.
    """
    alerts = []
    for task in store.incidents.undelivered_tasks(db.session, now - after):
        minutes = (now - task.assigned_at).total_seconds() / 60
        facts = {"task_id": task.id, "incident_id": task.incident_id, "minutes": round(minutes)}
        lat, lon = store.incidents.incident_point(db.session, task.incident_id)
        alert, _ = store.alerts.insert_alert(
            db.session, task.person_id, None, "task_undelivered", now, (lat, lon), None, facts
        )
        store.incidents.log_incident_event(
            db.session, task.incident_id, "undelivered", person_id=task.person_id, task_id=task.id
        )
        alerts.append(alert)
    return alerts


def close_idle_shifts(now: datetime, idle: timedelta) -> list[int]:
    """Close shifts with no fix and no connected phone for `idle`; return the people's ids.

    Runs in the caller's transaction on db.session; the caller commits.
    """
    closed = store.people.close_idle_shifts(db.session, now, now - idle)
    for row in closed:
        log.info("shift %d of person %d closed: silent for %s", row.shift_id, row.person_id, idle)
    return [row.person_id for row in closed]


class DispatchWatcher:
    """Run the checks above in the background of a server process."""

    def __init__(self) -> None:
        """Create an unbound watcher; init_app() binds it."""
        self._app: Flask | None = None
        self._greenlet: gevent.Greenlet | None = None

    def init_app(self, app: Flask) -> None:
        """Bind the watcher to an application."""
        self._app = app
        self.interval_s = app.config["SIGNAL_CHECK_INTERVAL_S"]
        self.undelivered_after = timedelta(seconds=app.config["TASK_DELIVERY_ALERT_S"])
        self.idle_after = timedelta(seconds=app.config["SHIFT_IDLE_CLOSE_S"])

    def start(self) -> None:
        """Start the checks in this process unless they run already (called on connects)."""
        if self._app is not None and (self._greenlet is None or self._greenlet.dead):
            self._greenlet = gevent.spawn(self._run)

    def check_now(self, now: datetime | None = None) -> list[AlertRow]:
        """Run both checks once, in one transaction; publish the alerts after commit."""
        assert self._app is not None
        now = now or datetime.now(UTC)
        with self._app.app_context():
            try:
                if not store.zones.try_advisory_lock(db.session, "tracker_dispatch_check"):
                    return []
                alerts = check_undelivered(now, self.undelivered_after)
                close_idle_shifts(now, self.idle_after)
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("dispatch checks failed; they will run again")
                return []
            for alert in alerts:
                publish_alert(alert.as_dict(), alert.person_id)
            return alerts

    def _run(self) -> None:
        """Check forever."""
        while True:
            gevent.sleep(self.interval_s)
            self.check_now()


dispatch_watcher = DispatchWatcher()
