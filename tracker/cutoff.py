"""Close open connections whose credentials were withdrawn, in every process.

A phone's socket stays open after its device is revoked, and a viewer's after its staff
session ended, unless something closes it. Each event already checks its sender, so a
withdrawn credential can do nothing at once; this loop also closes the idle connections,
within CUTOFF_INTERVAL_S. It reads the database, not a message, so a revocation from the
CLI, another process or plain SQL is seen the same way, with or without Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import gevent
from flask import Flask

log = logging.getLogger(__name__)

Sweep = Callable[[], None]


class Cutoff:
    """Run every registered sweep in an app context every CUTOFF_INTERVAL_S."""

    def __init__(self) -> None:
        """Create an unbound cutoff loop; init_app() binds it."""
        self._app: Flask | None = None
        self._sweeps: list[Sweep] = []
        self._greenlet: gevent.Greenlet | None = None
        self.interval_s = 2.0

    def init_app(self, app: Flask) -> None:
        """Bind the loop to an application."""
        self._app = app
        self.interval_s = app.config["CUTOFF_INTERVAL_S"]

    def add_sweep(self, sweep: Sweep) -> None:
        """Run `sweep` on every turn of the loop."""
        if sweep not in self._sweeps:
            self._sweeps.append(sweep)

    def start(self) -> None:
        """Start the loop in this process unless it runs already (called on each connect)."""
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)

    def sweep_now(self) -> None:
        """Run every sweep once, now."""
        assert self._app is not None
        with self._app.app_context():
            for sweep in self._sweeps:
                try:
                    sweep()
                except Exception:
                    log.exception("connection sweep %r failed", sweep)

    def _run(self) -> None:
        """Sweep forever."""
        while True:
            gevent.sleep(self.interval_s)
            self.sweep_now()


cutoff = Cutoff()
