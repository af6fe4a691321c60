"""Scale benchmarks: 10,000 phones on one process, viewer latency, 1 vs 2 processes.

Usage (from the repository root):

    .venv/bin/python bench/scale.py [--part 1|2|3|all] [--phones 10000] [--duration 60]
                                    [--load-phones 1000] [--load-duration 30] [--keep-db]

Part 1 (concurrent phones held by one process): `--phones` phones connect to one
`gunicorn -c deploy/gunicorn.conf.py` process in waves of 500, then each sends one fix
every 5 s for `--duration` seconds. Reports the connect time, stored positions/s, ack
latency and the worker's VmRSS at the end. Targets: RSS < 1.5 GB, p99 ack < 250 ms.

Part 2 (phone -> command-centre viewer latency): `--load-phones` phones send batches of
10 fixes every second (10,000 positions/s at 1,000 phones) while 20 viewers, logged in
as an admin of the throwaway database, receive `positions` on /live. Every fix carries
its send time as `ts` (epoch ms); a viewer's latency for an item is its clock at receipt
minus that `ts` (same machine, same clock). Target: p99 < 1.5 s.

Part 3 (1 process vs 2 behind nginx): the same offered load (`--load-phones` phones,
batches of 10 every 0.833 s = 12,000 positions/s, as bench/ingest.py) sent directly to
one process, then through nginx (deploy/nginx.conf rendered by `scripts/stack.sh
nginx-conf`) to two processes sharing a private redis-server as the Socket.IO message
queue. nginx hashes on the client address, so the load generator binds its sockets to
several loopback source addresses (127.0.0.x) chosen so that half the phones reach each
process.

The load generator is one asyncio process using tracker.sim.socket.DeviceSocket over one
aiohttp session (one per source address in part 3). It raises its open-file limit to the
hard limit, which the server processes inherit. Every part checks with SQL that the rows
added to positions equal the sum of the acknowledgements' `stored`. One throwaway
database serves all parts and is dropped at the end (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    LOG_DIR,
    ROOT,
    Progress,
    Server,
    ThrowawayDatabase,
    base_database_url,
    command_line,
    connect,
    free_port,
    machine_busy_seconds,
    machine_note,
    markdown_table,
    percentile,
    postmaster_pid,
    proc_status_kib,
    quiet_gc,
    raise_on_sigterm,
    tree_cpu_seconds,
)
from _phones import ACK_TIMEOUT_S, Phone, Stats
from ingest import add_phones

sys.path.insert(0, str(ROOT))
from tracker.sim.socket import DeviceSocket  # noqa: E402

log = logging.getLogger("scale")

WAVE = 500  # phones connecting at once
VIEWERS = 20
DRAIN_TIMEOUT_S = 30.0
WARMUP_S = 3.0  # viewer latencies of the first seconds of a window are not counted
SERVER_ENV = (
    "INGEST_FLUSH_INTERVAL_S",
    "INGEST_FLUSH_ROWS",
    "INGEST_ACK_TIMEOUT_S",
    "DB_POOL_SIZE",
    "WORKER_CONNECTIONS",
    "LIVE_INTERVAL",
)


# --- phones ---------------------------------------------------------------------------


async def connect_phones(phones: list[Phone], stats: Stats, wave: int = WAVE) -> float:
    """Connect phones in waves with a progress line; return the seconds it took."""
    progress = Progress(every_s=2.0)
    started = time.perf_counter()
    for first in range(0, len(phones), wave):
        await asyncio.gather(*(phone.connect(stats) for phone in phones[first : first + wave]))
        failed = sum(stats.connect_failures.values())
        progress.update(
            f"connecting: {stats.connected:,}/{len(phones):,} ({failed} failed) "
            f"{time.perf_counter() - started:5.1f} s"
        )
    elapsed = time.perf_counter() - started
    progress.done(f"connected: {stats.connected:,}/{len(phones):,} in {elapsed:.1f} s")
    quiet_gc()
    return elapsed


async def close_phones(phones: list[Phone]) -> None:
    """Close every phone's socket (a bounded wait)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(p.sock.close() for p in phones), return_exceptions=True), 30
        )


@dataclass
class Window:
    """CPU and time figures of a measuring window."""

    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    drain_s: float = 0.0


def cpu_sample(pids: dict[str, list[int]]) -> dict[str, float]:
    """Return CPU seconds so far per named group of process trees, plus this process."""
    sample = {name: sum(tree_cpu_seconds(pid) for pid in group) for name, group in pids.items()}
    sample["load generator"] = time.process_time()
    sample["machine"] = machine_busy_seconds()
    return sample


async def run_window(
    phones: list[Phone],
    stats: Stats,
    size: int,
    interval_s: float,
    duration_s: float,
    cpu_pids: dict[str, list[int]],
) -> Window:
    """Let the connected phones send for `duration_s`, then wait for the last acks."""
    live = [p for p in phones if p.sock.connected]
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    stop = start + duration_s
    stats.window_end = time.perf_counter() + 0.2 + duration_s
    cpu0 = cpu_sample(cpu_pids)
    senders = asyncio.gather(*(p.run(start, stop, size, interval_s, stats) for p in live))
    progress = Progress(every_s=5.0)
    last = (loop.time(), 0)
    while loop.time() < stop:
        await asyncio.sleep(min(1.0, max(0.0, stop - loop.time())))
        now = loop.time()
        rate = (stats.stored - last[1]) / max(1e-9, now - last[0])
        last = (now, stats.stored)
        recent = sorted(stats.latencies_ms[-2000:])
        progress.update(
            f"running {max(0.0, now - start):5.1f}/{duration_s:.0f} s: offered "
            f"{stats.offered:>9,} stored {stats.stored:>9,} {rate:>7,.0f}/s in flight "
            f"{stats.in_flight:>5} p99 {percentile(recent, 99):6.0f} ms "
            f"not ok {sum(stats.not_ok.values())} connected "
            f"{sum(p.sock.connected for p in live):,}"
        )
    cpu1 = cpu_sample(cpu_pids)
    drain_started = time.perf_counter()
    try:
        await asyncio.wait_for(senders, DRAIN_TIMEOUT_S + ACK_TIMEOUT_S)
    except TimeoutError:
        log.warning("%d batches unanswered after the drain", stats.in_flight)
    drain_s = time.perf_counter() - drain_started
    progress.done(f"window done: stored {stats.stored:,} of {stats.offered:,} offered")
    return Window(
        seconds=stop - start,
        cpu={name: cpu1[name] - cpu0[name] for name in cpu0},
        drain_s=drain_s,
    )


def new_session(local_addr: str | None = None) -> aiohttp.ClientSession:
    """Return an aiohttp session without a connection limit (bound to a source address)."""
    connector = aiohttp.TCPConnector(
        limit=0, local_addr=(local_addr, 0) if local_addr else None, force_close=True
    )
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=30)
    )


# --- viewers --------------------------------------------------------------------------


class Viewer:
    """A /live connection with a staff session cookie, speaking Engine.IO v4 directly."""

    def __init__(self, url: str, cookie: str) -> None:
        """Prepare a viewer of the server at `url`."""
        self.ws_url = url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.cookie = cookie
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self.latencies_ms: list[float] = []
        self.items = 0
        self.messages = 0
        self.count_after = float("inf")  # epoch seconds from which latencies count

    async def connect(self, session: aiohttp.ClientSession) -> None:
        """Open the websocket with the cookie and join /live."""
        self.ws = await session.ws_connect(
            self.ws_url, headers={"Cookie": self.cookie}, max_msg_size=0
        )
        opened = await self.ws.receive_str(timeout=10)
        if not opened.startswith("0"):
            raise RuntimeError(f"viewer: unexpected open packet {opened[:40]!r}")
        await self.ws.send_str("40/live,")
        while True:
            packet = await self.ws.receive_str(timeout=10)
            if packet == "2":
                await self.ws.send_str("3")
            elif packet.startswith("40/live,"):
                break
            elif packet.startswith("44/live,"):
                raise RuntimeError(f"viewer refused: {packet}")
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        """Record now - ts for every position received."""
        assert self.ws is not None
        prefix = '42/live,["positions",'
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            packet: str = message.data
            if packet == "2":
                await self.ws.send_str("3")
            elif packet.startswith(prefix):
                now = time.time()
                body = json.loads(packet[len(prefix) : -1])
                self.messages += 1
                if now < self.count_after:
                    continue
                for item in body["positions"]:
                    sent = datetime.fromisoformat(item["ts"]).timestamp()
                    self.latencies_ms.append((now - sent) * 1000)
                    self.items += 1

    async def close(self) -> None:
        """Close the connection."""
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)


def add_admin(url: str) -> tuple[str, str]:
    """Create an admin account in the database; return its user name and password."""
    from tracker.auth import hash_password

    username, password = f"bench-admin-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO users (username, password_hash, role) VALUES (%s, %s, 'admin')",
                (username, hash_password(password)),
            )
    finally:
        conn.close()
    return username, password


async def log_in(session: aiohttp.ClientSession, url: str, username: str, password: str) -> str:
    """Log in with POST /api/v1/session; return the Cookie header value."""
    async with session.post(
        f"{url}/api/v1/session",
        json={"username": username, "password": password},
        headers={"Origin": url},
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"login failed: {response.status} {await response.text()}")
        return "; ".join(f"{c.key}={c.value}" for c in response.cookies.values())


# --- processes --------------------------------------------------------------------------


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Child:
    """A helper process (redis-server, nginx) in its own process group."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path) -> None:
        """Start the process and wait until it listens on `port`."""
        self.name = name
        self.port = port
        self.log_path = log_path
        with open(log_path, "ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {log_path}")
            with contextlib.suppress(OSError):
                import socket

                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not listen on {port}; see {log_path}")

    def stop(self) -> None:
        """Stop the process group, gracefully first."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, 15)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


class Resources:
    """Everything a run starts, stopped in reverse order at the end."""

    def __init__(self) -> None:
        """Start with nothing."""
        self.items: list[Any] = []
        self.dirs: list[Path] = []

    def add(self, item: Any) -> Any:
        """Remember a Server or Child to stop; return it."""
        self.items.append(item)
        return item

    def stop_all(self) -> None:
        """Stop everything started so far."""
        while self.items:
            item = self.items.pop()
            try:
                item.stop()
            except Exception:
                log.exception("could not stop %r", item)
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)
        self.dirs.clear()


def start_server(res: Resources, db_url: str, env: dict[str, str] | None = None) -> Server:
    """Start one tracker process (it inherits the raised open-file limit)."""
    server = res.add(Server(db_url, env))
    server.start()
    if server.worker_pid is None:
        raise RuntimeError("no gunicorn worker process found")
    log.info("server %s, worker pid %d, log %s", server.base_url, server.worker_pid,
             server.log_path)  # fmt: skip
    return server


def start_redis(res: Resources, workdir: Path) -> tuple[Child, str]:
    """Start a private redis-server on a free port; return it and its URL."""
    port = free_port()
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
            "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
    redis = res.add(Child("redis-server", argv, port, workdir / "redis.log"))
    return redis, f"redis://127.0.0.1:{port}/0"


def start_nginx(res: Resources, workdir: Path, upstreams: list[int]) -> Child:
    """Render deploy/nginx.conf with scripts/stack.sh for the upstreams and start nginx."""
    port = free_port()
    env = {
        **os.environ,
        "STACK_DIR": str(workdir),
        "STACK_LISTEN": f"127.0.0.1:{port}",
        "STACK_UPSTREAMS": " ".join(f"127.0.0.1:{p}" for p in upstreams),
    }
    rendered = subprocess.run(
        ["bash", str(ROOT / "scripts/stack.sh"), "nginx-conf"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    conf = workdir / "nginx.conf"
    conf.write_text(rendered)
    (workdir / "tmp").mkdir(exist_ok=True)
    (workdir / "log").mkdir(exist_ok=True)
    if os.getuid() == 0:  # workers run as www-data/nobody: let them reach tmp/ and log/
        for path in (workdir, workdir / "tmp", workdir / "log"):
            path.chmod(0o777)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    argv = [nginx, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "log/error.log"),
            "-g", "daemon off;"]  # fmt: skip
    return res.add(Child("nginx", argv, port, workdir / "nginx.out"))


def established(port: int) -> int:
    """Return how many established TCP connections a local listening port has."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return sum(1 for line in out.splitlines() if line.strip())


async def balanced_sources(
    nginx_url: str, upstreams: list[int], tokens: list[str], per_upstream: int = 4
) -> tuple[list[str], dict[int, int]]:
    """Find loopback source addresses that nginx's `hash $remote_addr` sends to each process.

    Returns:
        The addresses, alternating between processes, and the process port of each probe.
    """
    chosen: dict[int, list[str]] = {port: [] for port in upstreams}
    where: dict[int, int] = {}
    for last in range(2, 250):
        if all(len(v) >= per_upstream for v in chosen.values()):
            break
        addr = f"127.0.0.{last}"
        before = {port: established(port) for port in upstreams}
        async with new_session(addr) as session:
            sock = DeviceSocket(nginx_url, tokens[0])
            await sock.connect(session)
            after = {port: established(port) for port in upstreams}
            await sock.close()
        grown = [port for port in upstreams if after[port] > before[port]]
        if len(grown) == 1 and len(chosen[grown[0]]) < per_upstream:
            chosen[grown[0]].append(addr)
            where[last] = grown[0]
    addrs = [a for group in zip(*chosen.values(), strict=False) for a in group]
    if not addrs:
        raise RuntimeError("could not find source addresses for the nginx upstreams")
    return addrs, where


# --- database checks ----------------------------------------------------------------------


def count_positions(url: str) -> int:
    """Return the number of rows in positions."""
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM positions")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def check_row(before: int, after: int, stats: Stats) -> tuple[str, str, bool]:
    """Return the table row comparing rows added to positions with Σ ack stored.

    PASS: equal. Under overload some acks time out (or say "retry") while their rows are
    committed later; a phone would resend them and get `duplicates`. Then the rows added
    must lie between Σ stored and Σ stored + the positions of those batches: reported as
    "FAIL (explained)", since the exact equality could not be checked.
    """
    added = after - before
    ok = added == stats.stored
    text = f"{added:,} = {stats.stored:,}: {'PASS' if ok else 'FAIL'}"
    if not ok and stats.stored <= added <= stats.stored + stats.unknown:
        text += (
            f" (explained: {added - stats.stored:,} rows of the {stats.unknown:,} positions "
            "whose ack timed out or said retry were committed late)"
        )
    return "rows added to positions = Σ ack stored", text, ok


def slow_seconds(stats: Stats, top: int = 3) -> str:
    """Return the seconds of the run with the highest ack p99, to show whether it is bursty."""
    if not stats.sent_at:
        return "n/a"
    first = min(stats.sent_at)
    by_second: dict[int, list[float]] = {}
    for sent, lat in zip(stats.sent_at, stats.latencies_ms, strict=True):
        by_second.setdefault(int(sent - first), []).append(lat)
    p99s = sorted(((percentile(sorted(v), 99), sec) for sec, v in by_second.items()), reverse=True)
    quiet = sorted(p for p, _ in p99s)
    return (
        ", ".join(f"s{sec}: {p:,.0f} ms" for p, sec in p99s[:top])
        + f"; median second's p99 {percentile(quiet, 50):,.0f} ms"
    )


def ms(values: list[float], q: float) -> str:
    """Return a percentile of sorted values in whole milliseconds."""
    return f"{percentile(values, q):,.0f}"


def mib(kib: int | None) -> str:
    """Return KiB as MiB text."""
    return "n/a" if kib is None else f"{kib / 1024:,.0f} MiB"


def cpu_text(window: Window, names: list[str]) -> str:
    """Return the CPU use of named groups in the window, in % of one core."""
    return " / ".join(f"{window.cpu.get(n, 0) / window.seconds * 100:.0f}%" for n in names)


# --- the parts ----------------------------------------------------------------------------


async def part1(args: argparse.Namespace, db_url: str, tokens: list[str], res: Resources,
                pg_pid: int | None) -> tuple[list[tuple[str, str]], bool]:  # fmt: skip
    """Hold `--phones` phones on one process, each sending one fix every 5 s."""
    server = start_server(res, db_url)
    worker = server.worker_pid
    assert worker is not None
    rss_idle = proc_status_kib(worker, "VmRSS")
    before = count_positions(db_url)
    stats = Stats()
    async with new_session() as session:
        phones = [Phone(i, tok, server.base_url, session) for i, tok in enumerate(tokens)]
        connect_s = await connect_phones(phones, stats)
        rss_connected = proc_status_kib(worker, "VmRSS")
        pids = {"server": [worker], "postgres": [pg_pid] if pg_pid else []}
        window = await run_window(phones, stats, 1, 5.0, args.duration, pids)
        rss_end = proc_status_kib(worker, "VmRSS")
        hwm_end = proc_status_kib(worker, "VmHWM")
        still = sum(p.sock.connected for p in phones)
        loadgen_rss = proc_status_kib(os.getpid(), "VmRSS")
        await close_phones(phones)
    server.stop()
    after = count_positions(db_url)
    lat = sorted(stats.latencies_ms)
    check = check_row(before, after, stats)
    rate = stats.stored_in_window / window.seconds
    rss_ok = rss_end is not None and rss_end * 1024 < 1.5e9
    p99_ok = percentile(lat, 99) < 250
    failed = sum(stats.connect_failures.values())
    rows = [
        ("phones connected (still connected at end)",
         f"{stats.connected:,} of {len(tokens):,} ({still:,})"
         + (f"; failures {dict(stats.connect_failures)}" if failed else "")),
        ("connect time (waves of 500)",
         f"{connect_s:.1f} s ({stats.connected / connect_s:,.0f} connects/s)"),
        ("offered load", f"1 fix / 5 s / phone = {len(tokens) / 5:,.0f} positions/s "
                         f"for {window.seconds:.0f} s"),
        ("**stored positions/s** (acked in window)", f"**{rate:,.0f}**"),
        ("ack latency p50 / p99 / max",
         f"{ms(lat, 50)} / **{ms(lat, 99)}** / {lat[-1] if lat else float('nan'):,.0f} ms"),
        ("non-ok acks / timeouts", f"{sum(stats.not_ok.values()):,} {dict(stats.not_ok) or ''}"),
        ("seconds with the worst ack p99 (by send time)", slow_seconds(stats)),
        ("**server worker VmRSS at end** (peak)", f"**{mib(rss_end)}** ({mib(hwm_end)})"),
        ("worker VmRSS idle → all connected",
         f"{mib(rss_idle)} → {mib(rss_connected)} "
         f"(≈ {((rss_connected or 0) - (rss_idle or 0)) / max(1, stats.connected):.0f} KiB/phone)"),
        ("CPU in window: server / PostgreSQL / load gen / machine",
         cpu_text(window, ["server", "postgres", "load generator", "machine"]) + " of a core"),
        ("load generator VmRSS (1 process)", mib(loadgen_rss)),
        check[:2],
        ("target: RSS < 1.5 GB, p99 ack < 250 ms",
         f"RSS {'met' if rss_ok else 'NOT met'}, p99 {'met' if p99_ok else 'NOT met'}"),
    ]  # fmt: skip
    return rows, check[2]


async def part2(args: argparse.Namespace, db_url: str, tokens: list[str], res: Resources,
                pg_pid: int | None) -> tuple[list[tuple[str, str]], bool]:  # fmt: skip
    """Measure phone -> viewer latency at 10 fixes/s per phone with 20 viewers."""
    server = start_server(res, db_url)
    worker = server.worker_pid
    assert worker is not None
    username, password = add_admin(db_url)
    before = count_positions(db_url)
    stats = Stats()
    async with new_session() as session:
        cookie = await log_in(session, server.base_url, username, password)
        viewers = [Viewer(server.base_url, cookie) for _ in range(VIEWERS)]
        await asyncio.gather(*(v.connect(session) for v in viewers))
        phones = [Phone(i, tok, server.base_url, session) for i, tok in enumerate(tokens)]
        await connect_phones(phones, stats)
        count_from = time.time() + WARMUP_S
        for viewer in viewers:
            viewer.count_after = count_from
        pids = {"server": [worker], "postgres": [pg_pid] if pg_pid else []}
        window = await run_window(phones, stats, 10, 1.0, args.load_duration, pids)
        await asyncio.sleep(2 * 1.0 + 0.5)  # the last pushes
        rss_end = proc_status_kib(worker, "VmRSS")
        await close_phones(phones)
        await asyncio.gather(*(v.close() for v in viewers))
    server.stop()
    after = count_positions(db_url)
    lat = sorted(stats.latencies_ms)
    seen = sorted(x for v in viewers for x in v.latencies_ms)
    per_viewer = sorted(percentile(sorted(v.latencies_ms), 99) for v in viewers)
    check = check_row(before, after, stats)
    rate = stats.stored_in_window / window.seconds
    p99_ok = percentile(seen, 99) < 1500
    messages = sum(v.messages for v in viewers)
    rows = [
        ("phones / viewers", f"{stats.connected:,} phones, {len(viewers)} admin viewers on /live"),
        ("offered load", f"batches of 10 every 1 s = {len(tokens) * 10:,} positions/s "
                         f"for {window.seconds:.0f} s"),
        ("**stored positions/s** (acked in window)", f"**{rate:,.0f}**"),
        ("ack latency p50 / p99", f"{ms(lat, 50)} / {ms(lat, 99)} ms"),
        ("non-ok acks / timeouts", f"{sum(stats.not_ok.values()):,} {dict(stats.not_ok) or ''}"),
        ("`positions` messages / items received (all viewers)",
         f"{messages:,} / {len(seen):,} (items counted after a {WARMUP_S:.0f} s warm-up)"),
        ("**phone → viewer latency p50 / p99 / max**",
         f"{ms(seen, 50)} / **{ms(seen, 99)}** / {seen[-1] if seen else float('nan'):,.0f} ms"),
        ("p99 of the best / worst viewer",
         f"{per_viewer[0]:,.0f} / {per_viewer[-1]:,.0f} ms" if per_viewer else "n/a"),
        ("server worker VmRSS at end", mib(rss_end)),
        ("CPU in window: server / PostgreSQL / load gen / machine",
         cpu_text(window, ["server", "postgres", "load generator", "machine"]) + " of a core"),
        check[:2],
        ("target: viewer p99 < 1.5 s", "met" if p99_ok else "NOT met"),
    ]  # fmt: skip
    return rows, check[2]


async def drive_load(phones: list[Phone], duration: float, pids: dict[str, list[int]]
                     ) -> tuple[Stats, Window, float]:  # fmt: skip
    """Connect, send 10-fix batches every 0.833 s for the window, close."""
    stats = Stats()
    connect_s = await connect_phones(phones, stats, wave=100)
    window = await run_window(phones, stats, 10, 0.833, duration, pids)
    await close_phones(phones)
    return stats, window, connect_s


async def part3(args: argparse.Namespace, db_url: str, tokens: list[str], res: Resources,
                pg_pid: int | None) -> tuple[list[tuple[str, ...]], bool]:  # fmt: skip
    """Offer the same load to one process directly, then to two behind nginx."""
    offered = len(tokens) * 10 / 0.833
    results = []
    ok = True
    # (a) one process, phones connect to it directly
    server = start_server(res, db_url)
    before = count_positions(db_url)
    async with new_session() as session:
        phones = [Phone(i, tok, server.base_url, session) for i, tok in enumerate(tokens)]
        pids = {"servers": [server.worker_pid or 0], "postgres": [pg_pid] if pg_pid else []}
        stats, window, _ = await drive_load(phones, args.load_duration, pids)
    rss = proc_status_kib(server.worker_pid or 0, "VmRSS")
    server.stop()
    check = check_row(before, count_positions(db_url), stats)
    ok &= check[2]
    results.append(("1 process, direct", stats, window, check, "-", rss))

    # (b) two processes sharing a private Redis, behind nginx
    workdir = LOG_DIR / f"scale-stack-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    res.dirs.append(workdir)
    redis, queue = start_redis(res, workdir)
    env = {"SOCKETIO_MESSAGE_QUEUE": queue, "SECRET_KEY": uuid.uuid4().hex}
    servers = [start_server(res, db_url, env) for _ in range(2)]
    nginx = start_nginx(res, workdir, [s.port for s in servers])
    nginx_url = f"http://127.0.0.1:{nginx.port}"
    addrs, _where = await balanced_sources(nginx_url, [s.port for s in servers], tokens)
    log.info("source addresses alternating between the two processes: %s", addrs)
    before = count_positions(db_url)
    sessions = [new_session(a) for a in addrs]
    try:
        phones = [
            Phone(i, tok, nginx_url, sessions[i % len(sessions)]) for i, tok in enumerate(tokens)
        ]
        pids = {
            "servers": [s.worker_pid or 0 for s in servers],
            "postgres": [pg_pid] if pg_pid else [],
            "nginx": [nginx.proc.pid],
            "redis": [redis.proc.pid],
        }
        stats_conn = Stats()
        connect_s = await connect_phones(phones, stats_conn, wave=100)
        split = [established(s.port) for s in servers]
        window = await run_window(phones, stats_conn, 10, 0.833, args.load_duration, pids)
        await close_phones(phones)
        stats = stats_conn
    finally:
        for session in sessions:
            await session.close()
    del connect_s
    rss = sum(proc_status_kib(s.worker_pid or 0, "VmRSS") or 0 for s in servers)
    for s in servers:
        s.stop()
    check = check_row(before, count_positions(db_url), stats)
    ok &= check[2]
    results.append(
        (f"2 processes + nginx + Redis ({split[0]}/{split[1]} phones)", stats, window, check,
         "", rss)
    )  # fmt: skip

    rows = []
    for name, st, win, chk, _, rss_kib in results:
        lat = sorted(st.latencies_ms)
        rows.append((
            name,
            f"{offered:,.0f}",
            f"**{st.stored_in_window / win.seconds:,.0f}**",
            f"{ms(lat, 50)} / {ms(lat, 99)}",
            f"{sum(st.not_ok.values()):,}",
            cpu_text(win, ["servers", "postgres", "load generator"])
            + (f" / {cpu_text(win, ['nginx'])} / {cpu_text(win, ['redis'])}"
               if "nginx" in win.cpu else " / - / -"),
            f"{win.cpu['machine'] / win.seconds * 100:.0f}%",
            mib(rss_kib),
            chk[1],
        ))  # fmt: skip
    return rows, ok


# --- main ---------------------------------------------------------------------------------

PART3_HEADERS = [
    "Part 3: setup",
    "offered/s",
    "stored/s",
    "ack p50 / p99 ms",
    "non-ok",
    "CPU % of a core: server(s) / PG / load gen / nginx / redis",
    "machine CPU (200% = both cores)",
    "worker RSS",
    "rows = Σ stored",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["1", "2", "3", "all"], default="all")
    parser.add_argument("--phones", type=int, default=10_000, help="part 1 phones (10000)")
    parser.add_argument("--duration", type=float, default=60.0, help="part 1 window, s (60)")
    parser.add_argument("--load-phones", type=int, default=1000, help="parts 2 and 3 phones (1000)")
    parser.add_argument(
        "--load-duration", type=float, default=30.0, help="parts 2 and 3 windows, s (30)"
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the throwaway database")
    return parser.parse_args(argv)


async def run_parts(args: argparse.Namespace, db: ThrowawayDatabase, tokens: list[str],
                    res: Resources) -> bool:  # fmt: skip
    """Run the chosen parts, printing each table as it is done."""
    conn = connect(db.url)
    try:
        pg_pid = postmaster_pid(conn)
    finally:
        conn.close()
    ok = True
    parts = ["1", "2", "3"] if args.part == "all" else [args.part]
    load_tokens = tokens[: args.load_phones]
    for part in parts:
        log.info("part %s on %s", part, machine_note())
        if part == "1":
            rows, passed = await part1(args, db.url, tokens[: args.phones], res, pg_pid)
            headers = ["Part 1: phones held by one process", "Result"]
        elif part == "2":
            rows, passed = await part2(args, db.url, load_tokens, res, pg_pid)
            headers = ["Part 2: phone → viewer latency", "Result"]
        else:
            rows, passed = await part3(args, db.url, load_tokens, res, pg_pid)
            headers = PART3_HEADERS
        res.stop_all()
        ok &= passed
        print()
        print(f"machine: {machine_note()}; open-file limit {resource.getrlimit(7)[0]}")
        print(markdown_table(headers, rows))
        print(f"check: {'PASS' if passed else 'FAIL'}")
        print(f"command: {command_line(SERVER_ENV)}", flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    args = parse_args(argv)
    raise_on_sigterm()
    nofile = raise_nofile()
    needed = max(args.phones, args.load_phones) + 200
    if nofile < needed:
        log.warning("open-file limit %d is below the %d sockets needed", nofile, needed)
    db = ThrowawayDatabase(base_database_url(), "tracker_bench_scale", keep=args.keep_db)
    res = Resources()
    try:
        db.create()
        db.migrate()
        db.flask("partitions", "ensure")
        count = max(args.phones if args.part in ("1", "all") else 0, args.load_phones)
        tokens, _spare = add_phones(db.url, count)
        log.info("database %s ready with %d phones", db.name, count)
        ok = asyncio.run(run_parts(args, db, tokens, res))
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        res.stop_all()
        db.drop()


if __name__ == "__main__":
    sys.exit(main())
