"""Measure GPS-app ingest over HTTP: one fix per request, the real server, PostGIS.

Usage (from the repository root):

    .venv/bin/python bench/http_ingest.py [--devices 2000] [--duration 20] [--rounds 3]
        [--connections 200,1000] [--formats osmand,owntracks] [--servers 1]
        [--open-loop 5000] [--interval 5] [--skip-closed] [--keep-db]

It creates a throwaway database, adds one person and device per simulated phone, and
starts `gunicorn -c deploy/gunicorn.conf.py wsgi:app` (with `--servers 2`, two of them
behind nginx as scripts/stack.sh configures it). Then:

- **closed loop**: for each format (Traccar Client's `/osmand` GET, OwnTracks'
  `POST /owntracks/<token>`) and each number of keep-alive connections, wrk (Debian's
  `wrk`, with bench/http_ingest.lua) sends single-fix requests back to back for the
  window, every (device, timestamp) unique. It reports requests/s answered 200, latency
  p50/p99, errors and timeouts, server CPU per request, and the exactly-once check
  (rows added = fixes answered 200, at most the requests cut off at the end more).
  The same wrk run against a trivial Flask view on the same gunicorn settings
  (bench/_trivial_app.py) is the reference. The runs come in `--rounds` rounds, each
  ingest then reference, and each ratio is taken within a round; the medians and ranges
  over the rounds are printed after the runs.
- **open loop** (`--open-loop N`): N phones, each with its own keep-alive connection,
  send one Traccar Client fix every `--interval` seconds (phases spread at random), as
  real phones do; p50/p99 latency after a warm-up, counted from when each fix was due
  (a phone whose previous answer came late sends late: that wait is the server's too),
  the worst second's p99, the warm-up's own p99 (every phone connecting at once, as
  after a restart), and whether any fix was lost (answered 200 but not stored) or stored
  twice. (wrk with a per-connection delay was tried as a
  lighter generator: its timers are a list scanned on every event, and at 5,000
  connections it took as much CPU as these Python streams.)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import (
    LOG_DIR,
    ROOT,
    VENV_BIN,
    Server,
    ThrowawayDatabase,
    base_database_url,
    command_line,
    connect,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    machine_note,
    markdown_table,
    percentile,
    postmaster_pid,
    raise_on_sigterm,
    steal_seconds,
    tree_cpu_seconds,
)
from ingest import add_phones

log = logging.getLogger(__name__)

LUA = Path(__file__).with_name("http_ingest.lua")
WRK_THREADS = 2
WARMUP_S = 5
# An open-loop run whose generator sent 1 % of its requests later than this did not offer
# the rate it claims; its latencies are partly the generator's own.
GENERATOR_LATE_MS = 50
_runs = 0  # wrk runs so far in this process
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SERVER_ENV = ("INGEST_FLUSH_INTERVAL_S", "INGEST_FLUSH_ROWS", "DB_POOL_SIZE", "WORKER_CONNECTIONS")


@dataclass
class WrkResult:
    """What one wrk run reported, with the server CPU it cost and the rows it added."""

    label: str
    connections: int
    ok: int
    other: int
    busy: int  # of `other`: answered 503 (the app resends)
    rejected: int
    duration_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    server_cpu_s: float
    # Where the machine's CPU went during the run, as % of one core: server processes,
    # PostgreSQL, nginx, wrk, and everything that was busy.
    cpu_split: dict[str, float] = field(default_factory=dict)
    rows_added: int | None = None
    round: int = 0  # which round of --rounds it belongs to

    @property
    def ok_per_s(self) -> float:
        """Return the answers 200 per second."""
        return self.ok / self.duration_s


def run_wrk(
    url: str,
    fmt: str,
    connections: int,
    duration_s: float,
    tokens_file: Path,
    worker_pids: list[int],
    watched: Watched | None = None,
) -> WrkResult:
    """Run wrk with the Lua script; return its figures.

    Each run's fix times start two hours after the previous run's, so that no run resends
    a (device, timestamp) an earlier run stored: every answer 200 must then be a new row.
    """
    global _runs
    _runs += 1
    start = datetime.now(UTC) - timedelta(days=6) + timedelta(hours=2 * _runs)
    start_ms = int(start.timestamp() * 1000)
    cpu0 = sum(cpu_seconds(pid) for pid in worker_pids)
    split0 = watched.sample() if watched else None
    started = time.time()
    done = subprocess.run(
        [
            "wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration_s:.0f}s",
            "--timeout", "10s", "-s", str(LUA), url, "--",
            fmt, str(tokens_file), str(start_ms), "keep", str(WRK_THREADS),
        ],
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    cpu1 = sum(cpu_seconds(pid) for pid in worker_pids)
    cpu_split: dict[str, float] = {}
    if watched and split0:
        split1, elapsed = watched.sample(), time.time() - started
        cpu_split = {
            "server": 100 * (cpu1 - cpu0) / elapsed,
            **{k: 100 * (split1[k] - split0[k]) / elapsed for k in split1},
        }
    match = re.search(r"^RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    r = json.loads(match.group(1))
    return WrkResult(
        label=fmt,
        connections=connections,
        ok=r["ok"],
        other=r["other"],
        busy=r["busy"],
        rejected=r["rejected"],
        duration_s=r["duration_us"] / 1e6,
        p50_ms=r["p50_us"] / 1000,
        p95_ms=r["p95_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        max_ms=r["max_us"] / 1000,
        errors={
            k: r[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts") if r[k]
        },
        server_cpu_s=cpu1 - cpu0,
        cpu_split=cpu_split,
    )


@dataclass
class Watched:
    """The processes whose CPU a run accounts for besides the servers'."""

    postgres_pid: int | None
    nginx_pids: list[int]

    def sample(self) -> dict[str, float]:
        """Return CPU seconds so far: PostgreSQL, nginx, wrk (reaped children), machine."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "PostgreSQL": tree_cpu_seconds(self.postgres_pid) if self.postgres_pid else 0.0,
            "nginx": sum(cpu_seconds(pid) for pid in self.nginx_pids),
            "wrk": children.ru_utime + children.ru_stime,
            "host steal": steal_seconds(),  # part of "machine"
            "machine": machine_busy_seconds(),
        }


def postmaster_pid_of(url: str) -> int | None:
    """Return the pid of the PostgreSQL postmaster serving `url`, if it runs here."""
    conn = connect(url)
    try:
        return postmaster_pid(conn)
    finally:
        conn.close()


def scalar(url: str, sql: str) -> int:
    """Return the one number a query answers."""
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    finally:
        conn.close()


def count_rows(url: str) -> int:
    """Return how many positions are stored."""
    return scalar(url, "SELECT count(*) FROM positions")


def duplicate_rows(url: str) -> int:
    """Return how many (device, ts) pairs are stored more than once (the key forbids any)."""
    return scalar(
        url,
        "SELECT count(*) FROM (SELECT device_id, ts FROM positions "
        "GROUP BY device_id, ts HAVING count(*) > 1) AS d",
    )


# --- processes ---------------------------------------------------------------------


class Nginx:
    """nginx in front of several tracker processes, configured as scripts/stack.sh does."""

    def __init__(self, upstreams: list[str]) -> None:
        """Prepare nginx on a free port."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = LOG_DIR / f"nginx-{self.port}"
        self.upstreams = upstreams
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Render the configuration and start nginx in the foreground."""
        (self.dir / "log").mkdir(parents=True, exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)
        env = {
            **os.environ,
            "STACK_DIR": str(self.dir),
            "STACK_LISTEN": f"127.0.0.1:{self.port}",
            "STACK_UPSTREAMS": " ".join(self.upstreams),
        }
        conf = subprocess.run(
            ["bash", str(ROOT / "scripts/stack.sh"), "nginx-conf"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        (self.dir / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
             "-e", str(self.dir / "log" / "error.log"), "-g", "daemon off;"],
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                import urllib.request

                urllib.request.urlopen(f"{self.url}/login", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start")

    @property
    def pids(self) -> list[int]:
        """Return nginx's master and worker pids."""
        from _common import children_of

        return [self.proc.pid, *children_of(self.proc.pid)] if self.proc else []

    def stop(self) -> None:
        """Stop nginx."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class TrivialServer(Server):
    """The reference: bench/_trivial_app.py under the same gunicorn settings."""

    def start(self, timeout_s: float = 60.0) -> None:
        """Start gunicorn with the trivial app."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
                 "--pythonpath", "bench", "_trivial_app:app"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        import urllib.request

        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.base_url}/", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the reference server did not start; see {self.log_path}")


# --- the open loop -----------------------------------------------------------------------


@dataclass
class OpenLoopResult:
    """What the open-loop phones saw."""

    phones: int
    offered_per_s: float
    latencies_ms: list[float]
    worst_second_p99_ms: float
    warmup_latencies_ms: list[float]
    late_ms: list[float]
    ok: int
    failed: dict[str, int]
    rows_added: int


class _Phone(asyncio.Protocol):
    """One open-loop phone: a keep-alive connection and a timer, with no task per request.

    The first generator wrote each request with asyncio streams in a coroutine: a task,
    a wait_for() task and two regular expressions per request came to about 160 µs of
    CPU, a third of a core at 2,000 requests/s taken from the server under test on this
    2-core machine. Here a request is a loop timer, one write and a callback per read.
    """

    def __init__(self, run: _OpenLoop, index: int, token: str) -> None:
        self.run, self.index, self.token = run, index, token
        self.host, self.port = run.addresses[index % len(run.addresses)]
        self.at = run.begin + run.rng.uniform(0, run.interval_s)
        self.sent = 0
        self.transport: asyncio.Transport | None = None
        self.request = b""
        self.buffer = b""
        self.waiting = False  # a request is out and its answer not yet in
        self.retried = False
        self.due = 0.0  # when the fix in flight was to be sent
        self.ready_at = 0.0  # when the phone was last free to send (its answer came in)
        self.lag = 0.0  # how late the generator's own timer sent it
        self.timeout: asyncio.TimerHandle | None = None
        self.done = run.loop.create_future()
        run.loop.call_at(self.at, self.send_next)

    # -- the timer side
    def send_next(self) -> None:
        run = self.run
        if self.at >= run.stop:
            self.finish()
            return
        now = run.loop.time()
        self.lag = now - max(self.at, self.ready_at)
        self.due = self.at
        self.at += run.interval_s
        self.sent += 1
        self.request = (
            f"GET /osmand?id={self.token}&lat={39.9 + self.index * 1e-5:.6f}&lon=116.4&"
            f"timestamp={run.start_s + self.sent}&hdop=5&altitude=50&speed=1.2&bearing=90"
            f"&batt=80 HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: bench\r\n\r\n"
        ).encode()
        self.retried = False
        self.timeout = run.loop.call_later(30, self.timed_out)
        self.write()

    def write(self) -> None:
        self.buffer = b""
        self.waiting = True
        if self.transport is None:
            self.run.loop.create_task(self.connect())
        else:
            self.transport.write(self.request)

    async def connect(self) -> None:
        async with self.run.gate:  # connect gradually, as phones coming on duty do
            try:
                await self.run.loop.create_connection(lambda: self, self.host, int(self.port))
            except OSError as exc:
                self.failed(type(exc).__name__)

    def timed_out(self) -> None:
        self.timeout = None
        self.failed("TimeoutError")

    def failed(self, why: str) -> None:
        if self.timeout is not None:
            self.timeout.cancel()
            self.timeout = None
        self.waiting = False
        self.run.fail(why)
        self.drop()
        self.schedule()

    def answered(self, status: int) -> None:
        if self.timeout is not None:
            self.timeout.cancel()
            self.timeout = None
        self.waiting = False
        run = self.run
        if status == 200:
            run.ok += 1
            # From when the fix was due, not when it went out: a phone whose previous
            # answer came late sends late, and that wait is the server's too.
            latency_ms = (run.loop.time() - self.due) * 1000
            if self.due >= run.measure_from:
                run.latencies.append((self.due, latency_ms))
                run.late_ms.append(self.lag * 1000)
            else:
                run.warmup_latencies.append(latency_ms)
        else:
            run.fail(str(status))
        self.schedule()

    def schedule(self) -> None:
        self.ready_at = self.run.loop.time()
        self.run.loop.call_at(self.at, self.send_next)

    def drop(self) -> None:
        if self.transport is not None:
            transport, self.transport = self.transport, None
            transport.close()

    def finish(self) -> None:
        self.drop()
        if not self.done.done():
            self.done.set_result(None)

    # -- the connection side
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.waiting:
            transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or not self.waiting:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"content-length:")
        length = 0
        if at >= 0:
            line_end = head.find(b"\r\n", at)
            length = int(head[at + 15 : line_end if line_end >= 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        if b"connection: close" in head:
            self.drop()
        self.answered(int(self.buffer[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.waiting:
            return
        if not self.buffer and not self.retried:
            # The server closed the idle connection first: as HTTP clients do (OkHttp's
            # retryOnConnectionFailure), send again on a new one.
            self.retried = True
            self.write()
        else:
            self.failed("IncompleteReadError" if exc is None else type(exc).__name__)


@dataclass
class _OpenLoop:
    """What all the phones of one open-loop run share."""

    loop: asyncio.AbstractEventLoop
    addresses: list[tuple[str, str]]
    interval_s: float
    begin: float
    measure_from: float
    stop: float
    rng: random.Random
    start_s: int
    gate: asyncio.Semaphore
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (due, ms)
    warmup_latencies: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=dict)
    ok: int = 0

    def fail(self, why: str) -> None:
        self.failed[why] = self.failed.get(why, 0) + 1


def worst_second_p99(latencies: list[tuple[float, float]]) -> float:
    """Return the highest per-second p99 of (due time, latency ms) pairs."""
    by_second: dict[int, list[float]] = {}
    for due, ms in latencies:
        by_second.setdefault(int(due), []).append(ms)
    return max((percentile(sorted(v), 99) for v in by_second.values()), default=0.0)


async def open_loop(
    urls: list[str],
    tokens: list[str],
    interval_s: float,
    duration_s: float,
    warmup_s: float,
    seed: int,
) -> _OpenLoop:
    """Let each phone send one Traccar Client fix every interval; return what they saw.

    The result holds the latencies (from when each fix was due) during and after the
    warm-up, how late the generator's own timers sent the measured requests (a delay that
    would otherwise pass for the server's), the number answered 200 and the failures by
    kind.

    Each phone keeps one HTTP/1.1 keep-alive connection (_Phone): a general HTTP client
    (aiohttp) took half a core for 1,000 requests/s, CPU the server under test then lacked
    on this 2-core machine. A fix that fails is not sent again: the next one is.
    """
    loop = asyncio.get_running_loop()
    begin = loop.time() + 2.0
    run = _OpenLoop(
        loop=loop,
        addresses=[url.removeprefix("http://").partition(":")[::2] for url in urls],
        interval_s=interval_s,
        begin=begin,
        measure_from=begin + warmup_s,
        stop=begin + warmup_s + duration_s,
        rng=random.Random(seed),
        start_s=int(time.time()) - 3600,
        gate=asyncio.Semaphore(200),
    )
    phones = [_Phone(run, i, t) for i, t in enumerate(tokens)]
    await asyncio.gather(*(p.done for p in phones))
    return run


# --- the report ----------------------------------------------------------------------


def closed_rows(
    results: list[WrkResult], references: dict[tuple[int, int], WrkResult]
) -> list[tuple]:
    """Return one table row per closed-loop run, with the reference run of its round."""
    rows = []
    for r in results:
        ref = references.get((r.round, r.connections))
        ratio = f"{r.ok_per_s / ref.ok_per_s:.2f}×" if ref and ref.ok_per_s else "n/a"
        lost = "n/a" if r.rows_added is None else r.rows_added - r.ok
        rows.append(
            (
                r.round + 1,
                r.label,
                f"{r.connections:,}",
                f"**{r.ok_per_s:,.0f}**",
                f"{r.p50_ms:.0f} / {r.p99_ms:.0f} ms",
                f"{r.other:,} non-200 ({r.busy:,} of them 503), {r.rejected} rejected"
                + (f", {r.errors}" if r.errors else ""),
                f"{cpu_per_request_us(r):.0f} µs",
                f"{ref.ok_per_s:,.0f}/s, {cpu_per_request_us(ref):.0f} µs ({ratio})"
                if ref
                else "n/a",
                "n/a" if r.rows_added is None else f"{r.rows_added:,} (+{lost} cut off)",
                ", ".join(f"{k} {v:.0f}%" for k, v in r.cpu_split.items() if k != "nginx" or v)
                + (" of 200%" if r.cpu_split else ""),
            )
        )
    return rows


def cpu_per_request_us(r: WrkResult) -> float:
    """Return the server CPU per answered request, in microseconds."""
    return r.server_cpu_s / max(1, r.ok + r.other) * 1e6


def summary_rows(
    results: list[WrkResult], references: dict[tuple[int, int], WrkResult]
) -> list[tuple]:
    """Return per format and connections: the median over the rounds and each round's ratio."""
    rows = []
    for key in dict.fromkeys((r.label, r.connections) for r in results):
        runs = [r for r in results if (r.label, r.connections) == key]
        refs = [references[(r.round, r.connections)] for r in runs]
        ratios = sorted(r.ok_per_s / ref.ok_per_s for r, ref in zip(runs, refs, strict=True))
        rates = sorted(r.ok_per_s for r in runs)
        ref_rates = sorted(ref.ok_per_s for ref in refs)
        rows.append(
            (
                key[0],
                f"{key[1]:,}",
                f"**{statistics.median(rates):,.0f}** ({rates[0]:,.0f}–{rates[-1]:,.0f})",
                f"{statistics.median(ref_rates):,.0f} ({ref_rates[0]:,.0f}–{ref_rates[-1]:,.0f})",
                f"**{statistics.median(ratios):.2f}×** ({ratios[0]:.2f}–{ratios[-1]:.2f}×)",
                f"{statistics.median(cpu_per_request_us(r) for r in runs):.0f} / "
                f"{statistics.median(cpu_per_request_us(r) for r in refs):.0f} µs",
            )
        )
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000, help="devices to spread over (2000)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run (20)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="closed loop: rounds of ingest then reference (3)"
    )
    parser.add_argument("--connections", default="200,1000", help="closed-loop connections")
    parser.add_argument("--formats", default="osmand,owntracks", help="osmand and/or owntracks")
    parser.add_argument("--servers", type=int, default=1, choices=(1, 2), help="processes")
    parser.add_argument("--open-loop", type=int, default=0, help="phones of the open loop (0)")
    parser.add_argument("--interval", type=float, default=5.0, help="open loop: s between fixes")
    parser.add_argument("--warmup", type=float, default=10.0, help="open loop: s not measured")
    parser.add_argument(
        "--direct", action="store_true", help="open loop: no nginx, phones split over processes"
    )
    parser.add_argument("--skip-closed", action="store_true", help="only the open loop")
    parser.add_argument("--seed", type=int, default=2026)

    parser.add_argument("--keep-db", action="store_true", help="keep the throwaway database")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    raise_on_sigterm()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if shutil.which("wrk") is None:
        print("wrk is missing: bash scripts/setup.sh test installs it", file=sys.stderr)
        return 2
    phones = max(args.devices, args.open_loop)
    db = ThrowawayDatabase(base_database_url(), "tracker_http_bench", keep=args.keep_db)
    servers: list[Server] = []
    nginx: Nginx | None = None
    reference: TrivialServer | None = None
    ok = True
    try:
        db.create()
        db.migrate()
        db.flask("partitions", "ensure")
        tokens, _spare = add_phones(db.url, phones)
        tokens_file = LOG_DIR / f"tokens-{os.getpid()}.txt"
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        tokens_file.write_text("\n".join(tokens[: args.devices]) + "\n")
        for _ in range(args.servers):
            server = Server(db.url)
            server.start()
            servers.append(server)
        workers = [s.worker_pid for s in servers if s.worker_pid is not None]
        url = servers[0].base_url
        if args.servers > 1 and not (args.direct and args.skip_closed):
            nginx = Nginx([f"127.0.0.1:{s.port}" for s in servers])
            nginx.start()
            url = nginx.url
        log.info("serving on %s (%d process(es)), %d devices", url, args.servers, phones)

        results: list[WrkResult] = []
        references: dict[tuple[int, int], WrkResult] = {}  # (round, connections)
        watched = Watched(postmaster_pid_of(db.url), nginx.pids if nginx else [])
        if not args.skip_closed:
            reference = TrivialServer(db.url)
            reference.start()
            ref_pid = [reference.worker_pid] if reference.worker_pid else []
            # Warm up: the first requests of each device look its token up in the database.
            log.info("warm-up: %d s, not counted", WARMUP_S)
            run_wrk(url, "osmand", 200, WARMUP_S, tokens_file, workers)
            run_wrk(reference.base_url, "trivial", 200, WARMUP_S, tokens_file, [])
            connection_counts = [int(c) for c in args.connections.split(",")]
            # Rounds alternate ingest and reference, so that each ratio compares runs a
            # minute apart: this shared machine's speed drifts by a third within an hour.
            for round_no in range(args.rounds):
                for fmt in args.formats.split(","):
                    for connections in connection_counts:
                        before = count_rows(db.url)
                        log.info("round %d: %s, %d connections, %.0f s", round_no + 1, fmt,
                                 connections, args.duration)  # fmt: skip
                        result = run_wrk(
                            url, fmt, connections, args.duration, tokens_file, workers, watched
                        )
                        time.sleep(1.0)  # let requests cut off at the end finish
                        result.rows_added = count_rows(db.url) - before
                        result.round = round_no
                        results.append(result)
                for connections in connection_counts:
                    log.info("round %d: trivial Flask view, %d connections", round_no + 1,
                             connections)  # fmt: skip
                    ref = run_wrk(
                        reference.base_url, "trivial", connections, args.duration, tokens_file,
                        ref_pid, Watched(None, []),
                    )  # fmt: skip
                    ref.round = round_no
                    references[(round_no, connections)] = ref
            reference.stop()

        open_result: OpenLoopResult | None = None
        if args.open_loop:
            before = count_rows(db.url)
            log.info(
                "open loop: %d phones, one fix every %.0f s (%.0f/s), %.0f s + %.0f s warm-up",
                args.open_loop, args.interval, args.open_loop / args.interval,
                args.duration, args.warmup,
            )  # fmt: skip
            # --direct: phones split over the processes themselves, as without nginx.
            open_urls = [s.base_url for s in servers] if args.direct else [url]
            pg_pid = postmaster_pid_of(db.url)
            nginx_pids = nginx.pids if nginx else []

            def others() -> tuple[float, float, float, float]:
                pg = tree_cpu_seconds(pg_pid) if pg_pid else 0.0
                nginx_s = sum(cpu_seconds(pid) for pid in nginx_pids)
                return pg, nginx_s, machine_busy_seconds(), steal_seconds()

            other0 = others()
            cpu0 = (sum(cpu_seconds(pid) for pid in workers), time.process_time(), time.time())
            # The generator's own collector: a full collection of its 10,000 phones'
            # coroutines and streams stopped it for about 300 ms, and every request in
            # flight then counted that stop as the server's latency (seen as bursts of
            # late sends). The phones make next to no reference cycles over a run.
            gc.collect()
            gc.freeze()
            gc.disable()
            try:
                phones_run = asyncio.run(
                    open_loop(open_urls, tokens[: args.open_loop], args.interval,
                              args.duration, args.warmup, args.seed)
                )  # fmt: skip
            finally:
                gc.enable()
                gc.unfreeze()
            cpu1 = (sum(cpu_seconds(pid) for pid in workers), time.process_time(), time.time())
            other1 = others()
            elapsed = cpu1[2] - cpu0[2]

            def pct(seconds: float) -> str:
                return f"{100 * seconds / elapsed:.0f}%"

            cpu_note = (
                f"server {pct(cpu1[0] - cpu0[0])}"
                f"{' (both processes)' if len(workers) > 1 else ''}, "
                f"PostgreSQL {pct(other1[0] - other0[0])}, "
                + (f"nginx {pct(other1[1] - other0[1])}, " if nginx else "")
                + f"load generator {pct(cpu1[1] - cpu0[1])}; "
                f"machine busy {pct(other1[2] - other0[2])} of 200%, "
                f"of which stolen by the host {pct(other1[3] - other0[3])}"
            )
            time.sleep(1.0)
            open_result = OpenLoopResult(
                phones=args.open_loop,
                offered_per_s=args.open_loop / args.interval,
                latencies_ms=sorted(ms for _, ms in phones_run.latencies),
                worst_second_p99_ms=worst_second_p99(phones_run.latencies),
                warmup_latencies_ms=sorted(phones_run.warmup_latencies),
                late_ms=sorted(phones_run.late_ms),
                ok=phones_run.ok,
                failed=phones_run.failed,
                rows_added=count_rows(db.url) - before,
            )
        dups = duplicate_rows(db.url)

        print()
        print(f"machine: {machine_note()}; {args.servers} tracker process(es)")
        if results:
            print()
            print(
                markdown_table(
                    [
                        "round",
                        "format",
                        "connections",
                        "answered 200/s",
                        "latency p50 / p99",
                        "failures",
                        "server CPU / request",
                        "trivial Flask, same round (ratio)",
                        "rows added (vs 200s)",
                        "CPU (% of a core)",
                    ],
                    closed_rows(results, references),
                )  # fmt: skip
            )
            print()
            print(f"median of {args.rounds} round(s) (range):")
            print(
                markdown_table(
                    [
                        "format",
                        "connections",
                        "answered 200 /s",
                        "trivial Flask /s",
                        "ratio, round by round",
                        "server CPU / request, ingest / trivial",
                    ],
                    summary_rows(results, references),
                )  # fmt: skip
            )
            for r in results:
                if r.rows_added is not None and r.rows_added < r.ok:
                    ok = False
                    print(f"FAIL: {r.label} at {r.connections}: {r.ok - r.rows_added} 200s lost")
        if open_result:
            lat = open_result.latencies_ms
            late = open_result.late_ms
            warm = open_result.warmup_latencies_ms
            lost = open_result.ok - open_result.rows_added
            print()
            print(
                markdown_table(
                    ["open loop", "result"],
                    [
                        (
                            "phones × interval",
                            f"{open_result.phones:,} × {args.interval:g} s "
                            f"= {open_result.offered_per_s:,.0f} requests/s offered",
                        ),
                        ("answered 200", f"{open_result.ok:,}"),
                        (
                            "latency p50 / p95 / p99 / max (after warm-up)",
                            f"{percentile(lat, 50):.0f} / {percentile(lat, 95):.0f} / "
                            f"**{percentile(lat, 99):.0f}** / {lat[-1] if lat else 0:.0f} ms",
                        ),
                        (
                            "p99 of the worst second after warm-up",
                            f"{open_result.worst_second_p99_ms:.0f} ms",
                        ),
                        (
                            f"warm-up ({args.warmup:g} s, every phone connecting): p50 / p99",
                            f"{percentile(warm, 50):.0f} / {percentile(warm, 99):.0f} ms",
                        ),
                        (
                            "sent late by the generator, p99 / max",
                            f"{percentile(late, 99):.0f} / {late[-1] if late else 0:.0f} ms",
                        ),
                        ("failures", f"{open_result.failed or 'none'}"),
                        ("CPU over the run", cpu_note),
                        (
                            "rows added − answered 200",
                            f"{open_result.rows_added:,} − {open_result.ok:,} = {-lost}",
                        ),
                    ],
                )  # fmt: skip
            )
            if lost > 0:
                ok = False
            if percentile(late, 99) > GENERATOR_LATE_MS:
                # The offered rate was not offered: the figures above are not the server's.
                print(
                    f"NOT VALID: the load generator sent 1 % of its requests more than "
                    f"{GENERATOR_LATE_MS} ms late; the machine was too busy for this rate"
                )
                ok = False
        print(f"\nstored twice: {dups} (device, ts) pairs -> {'PASS' if dups == 0 else 'FAIL'}")
        ok = ok and dups == 0
        print(f"command: {command_line(SERVER_ENV)}")
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if nginx:
            nginx.stop()
        for server in servers:
            server.stop()
        if reference:
            reference.stop()
        db.drop()


if __name__ == "__main__":
    sys.exit(main())
