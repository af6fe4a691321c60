"""Drive many simulated phones at once; keep every fix until the server acknowledges it."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from .socket import DeviceSocket, SocketClosedError

MAX_BATCH = 500


class Mover(Protocol):
    """Something that says where a phone is after some seconds."""

    def step(self, seconds: float) -> tuple[float, float, float, float]:
        """Return (lat, lon, heading_deg, speed_mps)."""
        ...


@dataclass
class SimStats:
    """Counts across all simulated phones."""

    phones: int = 0
    connected: int = 0
    sent: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    not_kept: int = 0
    failures: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        """Return a one-line progress report."""
        elapsed = time.monotonic() - self.started
        rate = self.stored / elapsed if elapsed > 0 else 0.0
        waiting = self.sent - self.stored - self.duplicates - self.rejected - self.not_kept
        return (
            f"{elapsed:6.0f} s | phones {self.connected}/{self.phones} connected | "
            f"stored {self.stored} ({rate:.0f}/s) | waiting {max(waiting, 0)} | "
            f"duplicates {self.duplicates} | rejected {self.rejected} | "
            f"not kept {self.not_kept} | retries {self.failures}"
        )


@dataclass
class SimPhone:
    """One simulated phone: it moves, queues its fixes and sends them with resends."""

    url: str
    token: str
    mover: Mover
    interval_s: float
    rng: random.Random
    queue: list[dict] = field(default_factory=list)
    battery: float = 1.0

    def _fix(self) -> dict:
        """Return the phone's next fix."""
        lat, lon, heading, speed = self.mover.step(self.interval_s)
        self.battery = max(0.05, self.battery - self.rng.uniform(0, 0.0004))
        return {
            "ts": int(time.time() * 1000),
            "lat": round(lat, 7),
            "lon": round(lon, 7),
            "accuracy": round(self.rng.uniform(3, 15), 1),
            "speed": round(speed, 2),
            "heading": round(heading, 1),
            "battery": round(self.battery, 3),
        }

    async def run(
        self, session: aiohttp.ClientSession, stats: SimStats, stop: asyncio.Event
    ) -> None:
        """Report a fix every interval until `stop`, then flush and go off duty."""
        socket: DeviceSocket | None = None
        # Spread the phones over one interval so they do not all send at once.
        await _sleep_unless(stop, self.rng.uniform(0, self.interval_s))
        while not stop.is_set():
            self.queue.append(self._fix())
            stats.sent += 1
            socket = await self._send(session, socket, stats)
            await _sleep_unless(stop, self.interval_s)
        if socket is not None and socket.connected:
            with contextlib.suppress(Exception):
                await socket.call("duty", {"on": False}, timeout_s=5)
            await _drop(socket, stats)

    async def _send(
        self, session: aiohttp.ClientSession, socket: DeviceSocket | None, stats: SimStats
    ) -> DeviceSocket | None:
        """Send what is queued; return the socket to use next time (None after a failure)."""
        try:
            if socket is None or not socket.connected:
                if socket is not None:
                    await _drop(socket, stats)
                socket = DeviceSocket(self.url, self.token)
                await socket.connect(session)
                socket.counted = True
                stats.connected += 1
                # Simulated people are on duty: under the `on_duty` policy (the default)
                # the server keeps their fixes only then.
                if not (await socket.call("duty", {"on": True})).get("ok"):
                    raise SocketClosedError("duty: not acknowledged")
            batch = self.queue[:MAX_BATCH]
            ack = await socket.call("positions", {"positions": batch})
        except (TimeoutError, SocketClosedError, aiohttp.ClientError, OSError):
            stats.failures += 1
            if socket is not None:
                await _drop(socket, stats)
            return None
        if not ack.get("ok"):
            stats.failures += 1
            return socket
        del self.queue[: len(batch)]
        stats.stored += ack["stored"]
        stats.duplicates += ack["duplicates"]
        stats.rejected += len(ack["rejected"])
        stats.not_kept += ack.get("not_kept", 0)
        return socket


async def _drop(socket: DeviceSocket, stats: SimStats) -> None:
    """Close a failed connection and stop counting it."""
    if socket.counted:
        stats.connected -= 1
        socket.counted = False
    with contextlib.suppress(Exception):
        await socket.close()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep for `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def simulate(
    phones: Sequence[SimPhone],
    duration_s: float | None,
    report: Callable[[SimStats], None],
) -> SimStats:
    """Run the phones until `duration_s` passes or the task is cancelled (Ctrl-C)."""
    stats = SimStats(phones=len(phones))
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(phone.run(session, stats, stop)) for phone in phones]
        deadline = None if duration_s is None else time.monotonic() + duration_s
        try:
            while deadline is None or time.monotonic() < deadline:
                await asyncio.sleep(1)
                report(stats)
        finally:
            stop.set()
            await asyncio.wait(tasks, timeout=15)
    report(stats)
    return stats


def terminal_report(stats: SimStats) -> None:
    """Rewrite one progress line on a terminal, or print a line every 10 s elsewhere."""
    if sys.stderr.isatty():
        print("\r" + stats.line(), end="", file=sys.stderr, flush=True)
    elif int(time.monotonic() - stats.started) % 10 == 0:
        print(stats.line(), file=sys.stderr, flush=True)
