"""The load generator's simulated phone, shared by bench/ingest.py and bench/scale.py.

Each phone is a tracker.sim.socket.DeviceSocket (Engine.IO v4 / Socket.IO v5 framing over
one aiohttp websocket) walking near Beijing and sending batches of fresh fixes on a fixed
schedule. Every acknowledgement is recorded in a Stats shared by all phones.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from _common import ROOT

sys.path.insert(0, str(ROOT))

from tracker.sim.socket import DeviceSocket  # noqa: E402 - needs the repository on the path

BEIJING = (39.9042, 116.4074)  # lat, lon
ACK_TIMEOUT_S = 30.0


@dataclass
class Stats:
    """What the phones saw, shared by all of them."""

    connected: int = 0
    connect_failures: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    offered: int = 0
    offered_in_window: int = 0
    acked: int = 0
    stored: int = 0
    stored_in_window: int = 0
    duplicates: int = 0
    rejected: int = 0
    not_ok: Counter[str] = field(default_factory=Counter)
    unknown: int = 0  # positions in batches whose ack timed out, failed or said retry
    latencies_ms: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)  # perf_counter of each acked send
    send_lag_ms: list[float] = field(default_factory=list)
    window_end: float = float("inf")

    @property
    def in_flight(self) -> int:
        """Return batches sent and not yet answered."""
        return self.batches - self.acked - sum(self.not_ok.values())


class Phone:
    """One simulated phone: a DeviceSocket, a random walk near Beijing, fresh timestamps."""

    def __init__(
        self, index: int, token: str, url: str, session: aiohttp.ClientSession, seed: int = 2026
    ) -> None:
        """Create a phone that has not connected yet; `url` is the server's http:// base."""
        self.index = index
        self.rng = random.Random(seed * 1_000_003 + index)
        self.sock = DeviceSocket(url, token)
        self.session = session
        self.lat = BEIJING[0] + self.rng.uniform(-0.15, 0.15)
        self.lon = BEIJING[1] + self.rng.uniform(-0.2, 0.2)
        self.heading = self.rng.uniform(0, 360)
        self.battery = self.rng.uniform(0.3, 1.0)
        self.last_ts = 0

    async def connect(self, stats: Stats) -> bool:
        """Connect to /device; count a failure by its reason."""
        try:
            await self.sock.connect(self.session, timeout_s=30)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            stats.connect_failures[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
            await self.sock.close()
            return False
        stats.connected += 1
        return True

    def payload(self, size: int, spread_s: float) -> str:
        """Return the JSON of the next `size` fixes, spread over the last `spread_s` seconds.

        Timestamps are epoch milliseconds, strictly increasing per phone, so every fix is
        new; with no spread the newest is the send time, which lets a viewer measure the
        latency from phone to map. The JSON is formatted by hand: json.dumps of dicts costs
        the load generator, which shares the CPUs with the server, three times as much.
        """
        now_ms = int(time.time() * 1000)
        step = max(1, int(spread_s * 1000 / size))
        metres = step / 1000 * 1.4  # walking pace
        rnd = self.rng.random
        parts = []
        for k in range(size):
            ts = max(now_ms - (size - 1 - k) * step, self.last_ts + 1)
            self.last_ts = ts
            self.heading = (self.heading + (rnd() - 0.5) * 40) % 360
            self.lat += (rnd() - 0.5) * 2 * metres * 9.0e-6
            self.lon += (rnd() - 0.5) * 2 * metres * 1.17e-5
            self.battery = max(0.05, self.battery - 1e-5)
            parts.append(
                f'{{"ts":{ts},"lat":{self.lat:.6f},"lon":{self.lon:.6f},'
                f'"accuracy":{3 + rnd() * 22:.1f},"speed":{0.8 + rnd() * 1.2:.2f},'
                f'"heading":{min(self.heading, 359.9):.1f},"battery":{self.battery:.3f}}}'
            )
        return '{"positions":[' + ",".join(parts) + "]}"

    async def send(self, size: int, spread_s: float, stats: Stats) -> None:
        """Send one batch and record its acknowledgement."""
        payload = self.payload(size, spread_s)
        stats.offered += size
        stats.batches += 1
        started = time.perf_counter()
        try:
            ack = await self.sock.call_json("positions", payload, timeout_s=ACK_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - timeouts and closed sockets are counted
            stats.not_ok[type(exc).__name__] += 1
            stats.unknown += size
            return
        now = time.perf_counter()
        if not isinstance(ack, dict) or not ack.get("ok"):
            error = ack.get("error") if isinstance(ack, dict) else ack
            stats.not_ok[str(error)[:80]] += 1
            stats.unknown += size
            return
        stats.acked += 1
        stats.latencies_ms.append((now - started) * 1000)
        stats.sent_at.append(started)
        stored = int(ack.get("stored", 0))
        stats.stored += stored
        if now <= stats.window_end:
            stats.stored_in_window += stored
        stats.duplicates += int(ack.get("duplicates", 0))
        stats.rejected += len(ack.get("rejected") or ())

    async def run(
        self,
        start: float,
        stop: float,
        size: int,
        interval_s: float,
        stats: Stats,
        spread_s: float = 0.0,
    ) -> None:
        """Send a batch every interval from a random phase after `start` until `stop`.

        Batches are not held back by a slow ack, so the offered load stays constant; the
        call returns once every batch is answered (or has timed out).
        """
        loop = asyncio.get_running_loop()
        due = start + self.rng.uniform(0, interval_s)
        pending: set[asyncio.Task[None]] = set()
        while due < stop and self.sock.connected:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            stats.send_lag_ms.append(max(0.0, loop.time() - due) * 1000)
            task = asyncio.create_task(self.send(size, spread_s, stats))
            pending.add(task)
            task.add_done_callback(pending.discard)
            due += interval_s
        if pending:
            await asyncio.gather(*pending)

    async def close(self) -> None:
        """Close the connection."""
        await self.sock.close()
