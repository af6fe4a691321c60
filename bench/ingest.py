"""Measure the ingest path end to end: many phones on websockets, the real server, PostGIS.

Usage (from the repository root):

    .venv/bin/python bench/ingest.py [--phones 1000] [--batch 10] [--interval 0.833]
                                     [--duration 30] [--servers 1] [--seed 2026] [--keep-db]
                                     [--login-flood 0] [--login-rate 10]

The run creates a throwaway database next to DATABASE_URL's (or on the embedded cluster
of scripts/pg.sh), migrates it, adds one person and one device per phone, starts
`gunicorn -c deploy/gunicorn.conf.py wsgi:app` on a free port and drives the phones with
an asyncio load generator (bench/_phones.py: one tracker.sim DeviceSocket per phone). Server
settings read by tracker/config.py (INGEST_FLUSH_INTERVAL_S, INGEST_FLUSH_ROWS, ...) pass
through from the environment; `--servers N` starts N such processes on the same database
and spreads the phones over them, as nginx does (deploy/nginx.conf).

`--login-flood N` adds N clients posting wrong passwords to /api/v1/session during the
window (`--login-rate` attempts a second each, 0 for back to back), to see what a
password-guessing flood does to the phones' acks.

At the end it checks with SQL that the positions table holds exactly what the
acknowledgements said was stored, measures two reference figures on the same database
(one INSERT + COMMIT per position, and raw COPY), prints a Markdown table, then stops the
server and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import random
import resource
import struct
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg2
from _common import (
    Progress,
    Server,
    ThrowawayDatabase,
    base_database_url,
    command_line,
    connect,
    cpu_seconds,
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
from _phones import BEIJING, Phone, Stats
from psycopg2.extras import execute_values

log = logging.getLogger(__name__)

TARGET_OFFERED = 12_000  # positions/s offered with the default flags
SERVER_ENV = (
    "INGEST_FLUSH_INTERVAL_S",
    "INGEST_FLUSH_ROWS",
    "INGEST_ACK_TIMEOUT_S",
    "DB_POOL_SIZE",
    "WORKER_CONNECTIONS",
    "LOGIN_LIMIT_ACCOUNT",
    "LOGIN_LIMIT_ADDRESS",
)
CONNECT_CONCURRENCY = 50
DRAIN_TIMEOUT_S = 20.0
REFERENCE_S = 5.0


# --- the load generator ---------------------------------------------------------


@dataclass
class LoadResult:
    """The outcome of driving the phones."""

    stats: Stats
    connect_s: float
    window_s: float
    drain_s: float
    rss_kib: int | None
    hwm_kib: int | None
    cpu_server: float
    cpu_postgres: float | None
    cpu_loadgen: float
    cpu_machine: float
    commits: int
    login_answers: dict[int, int] = field(default_factory=dict)


def commits_so_far(conn: psycopg2.extensions.connection) -> int:
    """Return how many transactions the database has committed (an autocommit connection)."""
    with conn.cursor() as cur:
        cur.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return int(cur.fetchone()[0])


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a gather's outcome as seen, so that an interrupted run exits quietly."""
    if not future.cancelled():
        future.exception()


async def drive(
    base_urls: list[str],
    tokens: list[str],
    args: argparse.Namespace,
    worker_pids: list[int],
    stats_conn: psycopg2.extensions.connection,
) -> LoadResult:
    """Connect every phone, send for the measuring window, drain the acks, disconnect."""
    pg_pid = postmaster_pid(stats_conn)
    stats = Stats()
    progress = Progress()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        phones = [
            Phone(i, token, base_urls[i % len(base_urls)], session, seed=args.seed)
            for i, token in enumerate(tokens)
        ]
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def join(phone: Phone) -> None:
            async with gate:
                await phone.connect(stats)

        started = time.perf_counter()
        joining = asyncio.gather(*(join(phone) for phone in phones))
        joining.add_done_callback(_retrieve)
        while not joining.done():
            failed = sum(stats.connect_failures.values())
            progress.update(f"connecting: {stats.connected}/{len(phones)} ({failed} failed)")
            await asyncio.wait([joining], timeout=0.25)
        connect_s = time.perf_counter() - started
        progress.done(f"connected: {stats.connected}/{len(phones)} in {connect_s:.1f} s")
        quiet_gc()
        live = [phone for phone in phones if phone.sock.connected]
        if not live:
            raise RuntimeError(f"no phone could connect: {dict(stats.connect_failures)}")

        loop = asyncio.get_running_loop()
        start = loop.time() + 0.2
        stop = start + args.duration
        stats.window_end = time.perf_counter() + 0.2 + args.duration
        cpu0 = (
            sum(cpu_seconds(pid) for pid in worker_pids),
            tree_cpu_seconds(pg_pid) if pg_pid else 0.0,
            time.process_time(),
            machine_busy_seconds(),
        )
        commits0 = commits_so_far(stats_conn)
        # Each batch's fixes are spread over the interval before it, as a phone's would be.
        senders = asyncio.gather(
            *(
                phone.run(start, stop, args.batch, args.interval, stats, spread_s=args.interval)
                for phone in live
            )
        )
        senders.add_done_callback(_retrieve)
        login_answers: dict[int, int] = {}
        flood = asyncio.gather(
            *(
                flood_logins(
                    session, base_urls[i % len(base_urls)], i, stop, args.login_rate, login_answers
                )
                for i in range(args.login_flood)
            )
        )
        flood.add_done_callback(_retrieve)
        last = (loop.time(), 0)
        while loop.time() < stop:
            await asyncio.sleep(min(1.0, max(0.0, stop - loop.time())))
            now = loop.time()
            rate = (stats.stored - last[1]) / (now - last[0])
            last = (now, stats.stored)
            recent = sorted(stats.latencies_ms[-2000:])
            progress.update(
                f"running {max(0.0, now - start):5.1f}/{args.duration:.0f} s: "
                f"offered {stats.offered:>8,}  stored {stats.stored:>8,}  "
                f"{rate:>7,.0f}/s  in flight {stats.in_flight:>5}  "
                f"p99 {percentile(recent, 99):6.0f} ms  not ok {sum(stats.not_ok.values())}"
            )
        stats.offered_in_window = stats.offered
        cpu1 = (
            sum(cpu_seconds(pid) for pid in worker_pids),
            tree_cpu_seconds(pg_pid) if pg_pid else 0.0,
            time.process_time(),
            machine_busy_seconds(),
        )
        commits1 = commits_so_far(stats_conn)
        window_s = stop - start
        rss_kib = sum(proc_status_kib(pid, "VmRSS") or 0 for pid in worker_pids)
        hwm_kib = sum(proc_status_kib(pid, "VmHWM") or 0 for pid in worker_pids)
        await flood
        drain_started = time.perf_counter()
        try:
            await asyncio.wait_for(senders, timeout=DRAIN_TIMEOUT_S)
        except TimeoutError:
            log.warning("%d batches still unacknowledged after the drain", stats.in_flight)
        drain_s = time.perf_counter() - drain_started
        progress.done(
            f"window done: stored {stats.stored:,} of {stats.offered:,} offered; "
            f"drained in {drain_s:.1f} s"
        )
        await asyncio.gather(*(phone.close() for phone in live))
    return LoadResult(
        stats=stats,
        connect_s=connect_s,
        window_s=window_s,
        drain_s=drain_s,
        rss_kib=rss_kib,
        hwm_kib=hwm_kib,
        cpu_server=cpu1[0] - cpu0[0],
        cpu_postgres=(cpu1[1] - cpu0[1]) if pg_pid else None,
        cpu_loadgen=cpu1[2] - cpu0[2],
        cpu_machine=cpu1[3] - cpu0[3],
        commits=commits1 - commits0 - 2,  # minus the two samples' own
        login_answers=login_answers,
    )


async def flood_logins(
    session: aiohttp.ClientSession,
    base_url: str,
    index: int,
    stop: float,
    rate_per_s: float,
    answers: dict[int, int],
) -> None:
    """Post wrong passwords until `stop`, as a password-guessing client would.

    At `rate_per_s` attempts a second, or back to back when it is 0.

    Each names an account that does not exist, which costs the server the same scrypt
    check as a real one; answers are counted by status (401 checked, 429 throttled).
    """
    loop = asyncio.get_running_loop()
    attempt = 0
    gap_s = 1 / rate_per_s if rate_per_s else 0.0
    next_at = loop.time()
    while loop.time() < stop:
        next_at += gap_s
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        attempt += 1
        body = {"username": f"guess-{index}-{attempt}", "password": "wrong password"}
        async with session.post(f"{base_url}/api/v1/session", json=body) as response:
            await response.read()
            answers[response.status] = answers.get(response.status, 0) + 1


# --- the database side -------------------------------------------------------------


def add_phones(url: str, count: int) -> tuple[list[str], tuple[int, int]]:
    """Add `count` people with one device each, plus one spare for the references.

    Returns:
        The device tokens of the phones, and (person_id, device_id) of the spare.
    """
    from tracker.auth import hash_token, new_device_token

    tokens = [new_device_token() for _ in range(count + 1)]
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO people (name, role) "
                "SELECT 'bench phone ' || g, 'volunteer' FROM generate_series(1, %s) AS g "
                "RETURNING id",
                (count + 1,),
            )
            person_ids = sorted(row[0] for row in cur.fetchall())
            rows = execute_values(
                cur,
                "INSERT INTO devices (person_id, label, token_hash) VALUES %s RETURNING id",
                [
                    (pid, "bench", hash_token(tok))
                    for pid, tok in zip(person_ids, tokens, strict=True)
                ],
                page_size=1000,
                fetch=True,
            )
    finally:
        conn.close()
    return tokens[:-1], (person_ids[-1], rows[-1][0])


def count_positions(url: str) -> tuple[int, int]:
    """Return the number of rows in positions and in latest_positions."""
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM positions), (SELECT count(*) FROM latest_positions)"
            )
            positions, latest = cur.fetchone()
    finally:
        conn.close()
    return positions, latest


def naive_rate(url: str, spare: tuple[int, int], seconds: float) -> float:
    """Insert one position per transaction for `seconds`; return positions/s."""
    person_id, device_id = spare
    start_ts = datetime.now(UTC) - timedelta(minutes=30)
    rng = random.Random(1)
    conn = connect(url)
    try:
        cur = conn.cursor()
        done = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            cur.execute(
                "INSERT INTO positions (person_id, device_id, ts, received_at, geom, "
                "accuracy_m, altitude_m, speed_mps, heading_deg, battery) "
                "VALUES (%s, %s, %s, now(), ST_SetSRID(ST_MakePoint(%s, %s), 4326), "
                "%s, NULL, %s, %s, %s)",
                (
                    person_id,
                    device_id,
                    start_ts + timedelta(milliseconds=done),
                    BEIJING[1] + rng.uniform(-0.2, 0.2),
                    BEIJING[0] + rng.uniform(-0.15, 0.15),
                    10.0,
                    1.4,
                    90.0,
                    0.8,
                ),
            )
            conn.commit()
            done += 1
        return done / elapsed
    finally:
        conn.close()


def copy_rate(url: str, spare: tuple[int, int], seconds: float) -> float:
    """COPY position-shaped rows into a scratch table for `seconds`; return rows/s."""
    person_id, device_id = spare
    rng = random.Random(2)
    now = datetime.now(UTC)
    buf = io.StringIO()
    rows_per_copy = 20_000
    for i in range(rows_per_copy):
        ewkb = struct.pack(
            "<BIIdd",
            1,
            0x20000001,
            4326,
            BEIJING[1] + rng.uniform(-0.2, 0.2),
            BEIJING[0] + rng.uniform(-0.15, 0.15),
        ).hex()
        ts = (now - timedelta(milliseconds=i)).isoformat()
        buf.write(
            f"{person_id}\t{device_id}\t{ts}\t{now.isoformat()}\t{ewkb}\t10\t\\N\t1.4\t90\t0.8\n"
        )
    data = buf.getvalue()
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE bench_copy_scratch (LIKE positions INCLUDING DEFAULTS)")
            conn.commit()
            done = 0
            started = time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds:
                cur.copy_expert("COPY bench_copy_scratch FROM STDIN", io.StringIO(data))
                conn.commit()
                done += rows_per_copy
            elapsed = time.perf_counter() - started
            cur.execute("DROP TABLE bench_copy_scratch")
            conn.commit()
        return done / elapsed
    finally:
        conn.close()


# --- the report -----------------------------------------------------------------------


def server_settings() -> str:
    """Return the ingest settings the server runs with."""
    from tracker.config import Config

    return (
        f"INGEST_FLUSH_INTERVAL_S={Config.INGEST_FLUSH_INTERVAL_S} "
        f"INGEST_FLUSH_ROWS={Config.INGEST_FLUSH_ROWS} "
        f"DB_POOL_SIZE={Config.SQLALCHEMY_ENGINE_OPTIONS['pool_size']}"
    )


def report(
    args: argparse.Namespace,
    result: LoadResult,
    db_positions: int,
    db_latest: int,
    naive: float,
    copy: float,
) -> bool:
    """Print the figures and the Markdown table; return whether the check passed."""
    stats = result.stats
    lat = sorted(stats.latencies_ms)
    lag = sorted(stats.send_lag_ms)
    rate = stats.stored_in_window / result.window_s
    offered_rate = args.phones * args.batch / args.interval
    check = db_positions == stats.stored
    p99 = percentile(lat, 99)
    target_met = check and rate >= 10_000 and p99 < 250 and stats.connected >= 1000

    offered_in_window = stats.offered_in_window
    others = result.cpu_machine - result.cpu_server - (result.cpu_postgres or 0.0)
    others -= result.cpu_loadgen

    def pct(cpu: float | None) -> str:
        return "n/a" if cpu is None else f"{cpu / result.window_s * 100:.0f}% of a core"

    def mib(kib: int | None) -> str:
        return "n/a" if kib is None else f"{kib / 1024:.0f} MiB"

    not_ok = sum(stats.not_ok.values())
    rows = [
        ("phones connected", f"{stats.connected:,} of {args.phones:,} in {result.connect_s:.1f} s"),
        ("batch × interval", f"{args.batch} positions every {args.interval:g} s per phone"),
        ("offered load", f"{offered_rate:,.0f} positions/s for {result.window_s:.1f} s"),
        ("positions offered", f"{stats.offered:,}"),
        ("positions acknowledged as stored", f"{stats.stored:,}"),
        ("**stored positions/s** (acked in window)", f"**{rate:,.0f}**"),
        (
            "ack latency p50 / p95 / p99 / max",
            (
                f"{percentile(lat, 50):.0f} / {percentile(lat, 95):.0f} / "
                f"**{p99:.0f}** / {lat[-1] if lat else float('nan'):.0f} ms"
            ),
        ),
        ("non-ok acks", f"{not_ok:,}" + (f" {dict(stats.not_ok)}" if not_ok else "")),
        ("unacknowledged batches", f"{stats.in_flight:,} (drain {result.drain_s:.1f} s)"),
        (
            "server worker RSS at end (peak)",
            f"{mib(result.rss_kib)} ({mib(result.hwm_kib)})"
            + (f", {args.servers} processes" if args.servers > 1 else ""),
        ),
        (
            "CPU in window: server / PostgreSQL / load gen",
            (f"{pct(result.cpu_server)} / {pct(result.cpu_postgres)} / {pct(result.cpu_loadgen)}"),
        ),
        ("CPU in window: other processes on the machine", pct(others)),
        (
            "server CPU per position offered",
            f"{result.cpu_server / max(1, offered_in_window) * 1e6:.0f} µs "
            f"(one core ≈ {offered_in_window / max(1e-9, result.cpu_server):,.0f} positions/s)",
        ),
        (
            "commits in window (≈ group commits)",
            (
                f"{result.commits:,}, {result.commits / result.window_s:.0f}/s, "
                f"{stats.stored_in_window / max(1, result.commits):,.0f} positions each"
            ),
        ),
        ("load generator send lag p99", f"{percentile(lag, 99):.0f} ms"),
        (
            "login flood: clients, answers by status",
            (
                f"{args.login_flood} clients, "
                f"{sum(result.login_answers.values()) / result.window_s:,.0f} logins/s "
                f"{dict(sorted(result.login_answers.items()))}"
                if args.login_flood
                else "none"
            ),
        ),
        (
            "rows in positions = Σ ack stored",
            f"{db_positions:,} = {stats.stored:,}: {'PASS' if check else 'FAIL'}",
        ),
        (
            "reference: 1 INSERT + COMMIT per position",
            f"{naive:,.0f} positions/s (ingest is {rate / naive:.1f}×)",
        ),
        (
            "reference: raw COPY, no indexes",
            f"{copy:,.0f} rows/s (ingest reaches {rate / copy:.1%} of it)",
        ),
        ("target ≥ 10,000/s, p99 < 250 ms, 1,000 phones", "met" if target_met else "NOT met"),
    ]
    print()
    print(f"server: {server_settings()}; machine: {machine_note()}")
    if stats.connect_failures:
        print(f"connect failures: {dict(stats.connect_failures)}")
    print(f"latest_positions rows: {db_latest:,} (one per phone that stored a fix)")
    print(
        f"check: count(*) FROM positions = {db_positions:,}, Σ ack stored = {stats.stored:,}, "
        f"duplicates acked = {stats.duplicates:,}, rejected = {stats.rejected:,} -> "
        f"{'PASS: nothing lost, nothing twice' if check else 'FAIL'}"
    )
    print()
    print(markdown_table(["Ingest benchmark", "Result"], rows))
    print()
    print(f"command: {command_line(SERVER_ENV)}")
    return check


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=1000, help="simulated phones (1000)")
    parser.add_argument("--batch", type=int, default=10, help="positions per batch (10)")
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        help="seconds between a phone's batches (default: phones*batch/12000 at 1000 phones, "
        f"i.e. {1000 * 10 / TARGET_OFFERED:.3f} s for the defaults)",
    )
    parser.add_argument("--duration", type=float, default=30.0, help="measuring window, s (30)")
    parser.add_argument(
        "--servers",
        type=int,
        default=1,
        help="server processes (1); phones are spread over them as nginx would",
    )
    parser.add_argument("--seed", type=int, default=2026, help="RNG seed (2026)")
    parser.add_argument(
        "--login-flood",
        type=int,
        default=0,
        help="clients posting wrong passwords during the window (0)",
    )
    parser.add_argument(
        "--login-rate",
        type=float,
        default=10.0,
        help="attempts per second of each login-flood client; 0: back to back (10)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the throwaway database")
    args = parser.parse_args(argv)
    if args.interval is None:
        args.interval = round(1000 * args.batch / TARGET_OFFERED, 3)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    args = parse_args(argv)
    raise_on_sigterm()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.phones + 100:
        log.warning("open-file limit %d is low for %d phones", hard, args.phones)

    db = ThrowawayDatabase(base_database_url(), "tracker_bench", keep=args.keep_db)
    servers: list[Server] = []
    try:
        db.create()
        db.migrate()
        db.flask("partitions", "ensure")  # as scripts/run.sh does before serving
        tokens, spare = add_phones(db.url, args.phones)
        log.info("database %s ready with %d phones", db.name, args.phones)
        for _ in range(args.servers):
            server = Server(db.url)
            servers.append(server)
            server.start()
            if server.worker_pid is None:
                raise RuntimeError("no gunicorn worker process found")
            log.info(
                "server on %s, worker pid %d, log %s",
                server.base_url,
                server.worker_pid,
                server.log_path,
            )
        base_urls = [server.base_url for server in servers]
        workers = [server.worker_pid for server in servers if server.worker_pid is not None]
        stats_conn = connect(db.url)
        stats_conn.autocommit = True
        try:
            result = asyncio.run(drive(base_urls, tokens, args, workers, stats_conn))
        finally:
            stats_conn.close()
        db_positions, db_latest = count_positions(db.url)
        for server in servers:
            server.stop()
        log.info("reference: one INSERT + COMMIT per position for %.0f s", REFERENCE_S)
        naive = naive_rate(db.url, spare, REFERENCE_S)
        log.info("reference: COPY into a scratch table for %.0f s", REFERENCE_S)
        copy = copy_rate(db.url, spare, REFERENCE_S)
        ok = report(args, result, db_positions, db_latest, naive, copy)
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        for server in servers:
            server.stop()
        db.drop()


if __name__ == "__main__":
    sys.exit(main())
