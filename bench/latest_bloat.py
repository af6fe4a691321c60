"""Measure latest_positions under millions of updates: tuned storage versus defaults.

Usage (from the repository root):

    .venv/bin/python bench/latest_bloat.py [--people 100000] [--updates 3000000]
                                           [--batch 5000] [--path upsert|app] [--keep-db]

Two throwaway databases are made on the server of DATABASE_URL (or the embedded cluster):
"tuned" keeps the storage parameters of migrations/versions/0004_latest_positions.py
(fillfactor 50 and aggressive autovacuum), "defaults" has them RESET to PostgreSQL's
defaults. Both get the same people and the same stream of updates, each batch applied to
both at the same time on their own connections, so that both see the same load and the
same autovacuum opportunities. Every so often the script prints
the table and index sizes, dead tuples, HOT updates, autovacuum runs and the time of a bbox
query on latest_positions; it ends with a Markdown table.

`--path upsert` (the default) sends each batch as the app's latest_positions upsert alone
(the `replaced` step of tracker.store.positions.insert_positions: same columns, same ON CONFLICT
... WHERE lp.ts < EXCLUDED.ts). `--path app` calls tracker.store.positions.insert_positions itself
through SQLAlchemy sessions, which also fills the positions partitions; it is about three
times slower, so use fewer updates with it. After each batch the zone watcher's update of
the same rows (tracker.store.zones.match_grids, which the server runs after every commit) is
applied too, unless `--no-watcher`.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg2
from _common import (
    Progress,
    ThrowawayDatabase,
    base_database_url,
    command_line,
    connect,
    machine_note,
    markdown_table,
    raise_on_sigterm,
)
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

TUNED_OPTIONS = (
    "fillfactor",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_vacuum_threshold",
    "autovacuum_vacuum_cost_delay",
    "autovacuum_analyze_scale_factor",
)
CENTRE = (116.4074, 39.9042)  # lon, lat of Beijing
SPREAD = (0.20, 0.15)  # people are spread over ± these degrees (about 34 × 33 km)
# A neighbourhood (about 1 % of the people) and a quarter of the city.
SMALL_BBOX = (116.39, 39.89, 116.43, 39.92)
LARGE_BBOX = (116.30, 39.83, 116.50, 39.98)

# The latest_positions step of tracker.store.positions._STORE_POSITIONS, fed from arrays.
UPSERT = """
INSERT INTO latest_positions AS lp (person_id, device_id, ts, received_at, geom,
                                    accuracy_m, altitude_m, speed_mps, heading_deg, battery)
SELECT person_id, device_id, to_timestamp(ts_ms / 1000.0), now(),
       ST_SetSRID(ST_MakePoint(lon, lat), 4326),
       accuracy_m, NULL, speed_mps, heading_deg, battery
FROM unnest(%s::integer[], %s::integer[], %s::bigint[], %s::float8[], %s::float8[],
            %s::real[], %s::real[], %s::real[], %s::real[])
     AS t(person_id, device_id, ts_ms, lon, lat, accuracy_m, speed_mps, heading_deg, battery)
ON CONFLICT (person_id) DO UPDATE SET
    device_id = EXCLUDED.device_id, ts = EXCLUDED.ts, received_at = EXCLUDED.received_at,
    geom = EXCLUDED.geom, accuracy_m = EXCLUDED.accuracy_m,
    altitude_m = EXCLUDED.altitude_m, speed_mps = EXCLUDED.speed_mps,
    heading_deg = EXCLUDED.heading_deg, battery = EXCLUDED.battery
WHERE lp.ts < EXCLUDED.ts
"""

BBOX_QUERY = """
SELECT person_id, ts, ST_X(geom), ST_Y(geom) FROM latest_positions
WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)
"""

STATS_QUERY = """
SELECT pg_relation_size('latest_positions'),
       pg_relation_size('ix_latest_positions_geom'),
       coalesce(pg_relation_size(to_regclass('ix_latest_positions_geog')), 0),
       pg_relation_size('latest_positions_pkey'),
       s.n_live_tup, s.n_dead_tup, s.n_tup_upd, s.n_tup_hot_upd,
       s.autovacuum_count, s.autoanalyze_count
FROM pg_stat_user_tables s WHERE s.relname = 'latest_positions'
"""


# --- the update stream ------------------------------------------------------------


@dataclass
class Batch:
    """The columns of one batch of fixes, one per person."""

    person_ids: list[int]
    ts_ms: list[int]
    lons: list[float]
    lats: list[float]
    accuracy: list[float]
    speed: list[float]
    heading: list[float]
    battery: list[float]


class Crowd:
    """People walking around Beijing; each batch moves a slice of them."""

    def __init__(self, person_ids: Sequence[int], still: float, seed: int) -> None:
        """Place everyone at random; `still` is the share of fixes that do not move."""
        self.rng = random.Random(seed)
        self.ids = list(person_ids)
        self.still = still
        self.lon = {p: CENTRE[0] + self.rng.uniform(-SPREAD[0], SPREAD[0]) for p in self.ids}
        self.lat = {p: CENTRE[1] + self.rng.uniform(-SPREAD[1], SPREAD[1]) for p in self.ids}
        self.order: list[int] = []
        self.ts_ms = int((datetime.now(UTC) - timedelta(hours=3)).timestamp() * 1000)

    def next_batch(self, size: int) -> Batch:
        """Return the next `size` fixes, for distinct people, with increasing timestamps."""
        rnd = self.rng.random
        batch = Batch([], [], [], [], [], [], [], [])
        size = min(size, len(self.ids))  # one fix per person per batch, as in one commit
        for _ in range(size):
            if not self.order:
                # A new round; the people already in this batch go last in it.
                taken = set(batch.person_ids)
                fresh = [p for p in self.ids if p not in taken]
                self.rng.shuffle(fresh)
                self.order = batch.person_ids[::-1] + fresh
            person = self.order.pop()
            if rnd() >= self.still:
                # About 10 s of walking: up to ± 15 m in each direction.
                self.lon[person] += (rnd() - 0.5) * 3.5e-4
                self.lat[person] += (rnd() - 0.5) * 2.7e-4
            self.ts_ms += 1
            batch.person_ids.append(person)
            batch.ts_ms.append(self.ts_ms)
            batch.lons.append(self.lon[person])
            batch.lats.append(self.lat[person])
            batch.accuracy.append(round(3 + rnd() * 20, 1))
            batch.speed.append(round(rnd() * 2, 2))
            batch.heading.append(round(rnd() * 359, 1))
            batch.battery.append(round(0.2 + rnd() * 0.8, 3))
        return batch

    def days(self, updates: int) -> list[date]:
        """Return the UTC days that the initial load and `updates` more fixes fall on."""
        first = datetime.fromtimestamp(self.ts_ms / 1000, UTC).date()
        last = datetime.fromtimestamp((self.ts_ms + updates + len(self.ids)) / 1000, UTC).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _array(values: Sequence[float | int]) -> str:
    """Return a PostgreSQL array literal; much cheaper than adapting a Python list."""
    return "{" + ",".join(map(str, values)) + "}"


# --- one database under test --------------------------------------------------------


@dataclass
class Sample:
    """The state of latest_positions at one moment."""

    updates: int
    table_bytes: int
    gist_bytes: int
    geog_bytes: int
    pkey_bytes: int
    live: int
    dead: int
    upd: int
    hot_upd: int
    autovacuums: int
    autoanalyzes: int
    small_ms: float
    small_buffers: int
    large_ms: float


@dataclass
class Target:
    """A database under test and its running totals."""

    label: str
    short: str
    db: ThrowawayDatabase
    conn: psycopg2.extensions.connection | None = None
    engine: Engine | None = None
    write_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    max_dead: int = 0

    def open(self) -> None:
        """Open a psycopg2 connection (upserts, measurements) and a SQLAlchemy engine."""
        self.conn = connect(self.db.url)
        self.conn.autocommit = True
        self.engine = create_engine(self.db.url)

    def close(self) -> None:
        """Close every connection."""
        if self.conn is not None:
            self.conn.close()
        if self.engine is not None:
            self.engine.dispose()

    def reloptions(self) -> str:
        """Return the storage parameters of latest_positions."""
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute("SELECT reloptions FROM pg_class WHERE relname = 'latest_positions'")
            options = cur.fetchone()[0]
        return ", ".join(options) if options else "(PostgreSQL defaults)"

    def apply(self, batch: Batch, path: str, watcher: bool) -> None:
        """Store one batch in its own transaction, as one group commit of the app.

        With `watcher`, then run the zone watcher's latest_positions update for the same
        people in a second transaction, as the server does after each commit.
        """
        started = time.perf_counter()
        if path == "app":
            self._apply_app(batch)
        else:
            assert self.conn is not None
            with self.conn.cursor() as cur:
                ids = _array(batch.person_ids)
                cur.execute(
                    UPSERT,
                    (
                        ids,
                        ids,
                        _array(batch.ts_ms),
                        _array(batch.lons),
                        _array(batch.lats),
                        _array(batch.accuracy),
                        _array(batch.speed),
                        _array(batch.heading),
                        _array(batch.battery),
                    ),
                )
        if watcher:
            from tracker.store.zones import match_grids

            assert self.engine is not None
            with Session(self.engine) as session, session.begin():
                match_grids(session, batch.person_ids)
        self.write_s += time.perf_counter() - started

    def _apply_app(self, batch: Batch) -> None:
        """Store one batch through tracker.store.positions.insert_positions, as the writer does."""
        from tracker.store.positions import PositionRow, insert_positions

        rows = [
            PositionRow(
                person_id=p,
                device_id=p,
                ts=datetime.fromtimestamp(ts / 1000, UTC),
                lat=lat,
                lon=lon,
                accuracy_m=acc,
                speed_mps=speed,
                heading_deg=heading,
                battery=battery,
            )
            for p, ts, lon, lat, acc, speed, heading, battery in zip(
                batch.person_ids,
                batch.ts_ms,
                batch.lons,
                batch.lats,
                batch.accuracy,
                batch.speed,
                batch.heading,
                batch.battery,
                strict=True,
            )
        ]
        assert self.engine is not None
        with Session(self.engine) as session, session.begin():
            insert_positions(session, rows)

    def sample(self, updates: int, runs: int) -> Sample:
        """Measure the table now."""
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_stat_force_next_flush()")
            time.sleep(0.05)
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute(STATS_QUERY)
            sizes_and_counts = cur.fetchone()
            small_ms = _median_ms(cur, SMALL_BBOX, runs)
            large_ms = _median_ms(cur, LARGE_BBOX, runs)
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + BBOX_QUERY, SMALL_BBOX)
            plan = cur.fetchone()[0][0]["Plan"]
        buffers = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
        sample = Sample(updates, *sizes_and_counts, small_ms, buffers, large_ms)
        self.max_dead = max(self.max_dead, sample.dead)
        self.samples.append(sample)
        return sample


def _median_ms(cur: psycopg2.extensions.cursor, bbox: tuple[float, ...], runs: int) -> float:
    """Return the median time, in ms, of fetching the rows of a bbox query."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        cur.execute(BBOX_QUERY, bbox)
        cur.fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


# --- set-up -----------------------------------------------------------------------------


def prepare(tuned: Target, defaults: Target, args: argparse.Namespace) -> Crowd:
    """Make the tuned database with people and partitions, and a copy with defaults."""
    tuned.db.create()
    tuned.db.migrate()
    conn = connect(tuned.db.url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO people (name, role) "
                "SELECT 'bloat ' || g, 'volunteer' FROM generate_series(1, %s) AS g "
                "RETURNING id",
                (args.people,),
            )
            ids = sorted(row[0] for row in cur.fetchall())
    finally:
        conn.close()
    crowd = Crowd(ids, args.still, args.seed)
    if args.path == "app":
        from tracker.store.positions import ensure_partition

        engine = create_engine(tuned.db.url)
        with Session(engine) as session, session.begin():
            for day in crowd.days(args.updates):
                ensure_partition(session, day)
        engine.dispose()
    # The copy is made before anything is written, so both start from the same state.
    defaults.db.create(template=tuned.db.name)
    conn = connect(defaults.db.url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"ALTER TABLE latest_positions RESET ({', '.join(TUNED_OPTIONS)})")
    finally:
        conn.close()
    return crowd


# --- the report -------------------------------------------------------------------------


def mib(n: int) -> str:
    """Return a byte count in MiB."""
    return f"{n / 2**20:.1f}"


def print_samples(targets: Sequence[Target], sample_index: int) -> None:
    """Print one line per target for the sample at `sample_index`."""
    for target in targets:
        s = target.samples[sample_index]
        hot = s.hot_upd / s.upd * 100 if s.upd else 0.0
        print(
            f"  {target.label:<20} {s.updates:>10,} upd  table {mib(s.table_bytes):>7} MiB  "
            f"GiST {mib(s.gist_bytes):>6} + {mib(s.geog_bytes):>6} MiB  "
            f"pkey {mib(s.pkey_bytes):>5} MiB  "
            f"dead {s.dead:>9,}  HOT {hot:4.1f}%  autovac {s.autovacuums:>2}  "
            f"bbox {s.small_ms:6.2f} ms ({s.small_buffers:,} buf) / {s.large_ms:6.1f} ms",
            flush=True,
        )


def final_table(targets: Sequence[Target], updates: int) -> str:
    """Return the Markdown table comparing the targets at the end."""
    headers = ["latest_positions"] + [t.label for t in targets]

    def row(name: str, fmt: Callable[[Target], str]) -> list[str]:
        return [name] + [fmt(t) for t in targets]

    rows = [
        row("updates applied", lambda t: f"{t.samples[-1].updates:,}"),
        row("update rate (rows/s, in the DB)", lambda t: f"{updates / t.write_s:,.0f}"),
        row(
            "heap size: after load → end (MiB)",
            lambda t: f"{mib(t.samples[0].table_bytes)} → {mib(t.samples[-1].table_bytes)}",
        ),
        row(
            "GiST ix_latest_positions_geom: after load → end (MiB)",
            lambda t: f"{mib(t.samples[0].gist_bytes)} → {mib(t.samples[-1].gist_bytes)}",
        ),
        row(
            "GiST on geography(geom): after load → end (MiB)",
            lambda t: f"{mib(t.samples[0].geog_bytes)} → {mib(t.samples[-1].geog_bytes)}",
        ),
        row(
            "pkey index: after load → end (MiB)",
            lambda t: f"{mib(t.samples[0].pkey_bytes)} → {mib(t.samples[-1].pkey_bytes)}",
        ),
        row("n_dead_tup: max seen / end", lambda t: f"{t.max_dead:,} / {t.samples[-1].dead:,}"),
        row(
            "HOT updates",
            lambda t: f"{t.samples[-1].hot_upd / max(1, t.samples[-1].upd) * 100:.1f}%",
        ),
        row(
            "autovacuum / autoanalyze runs",
            lambda t: f"{t.samples[-1].autovacuums} / {t.samples[-1].autoanalyzes}",
        ),
        row(
            "small bbox (~1 %): after load → end (ms)",
            lambda t: f"{t.samples[0].small_ms:.2f} → {t.samples[-1].small_ms:.2f}",
        ),
        row(
            "small bbox buffers: after load → end",
            lambda t: f"{t.samples[0].small_buffers:,} → {t.samples[-1].small_buffers:,}",
        ),
        row(
            "small bbox worst median (ms)",
            lambda t: f"{max(s.small_ms for s in t.samples):.2f}",
        ),
        row(
            "large bbox (~25 %): after load → end (ms)",
            lambda t: f"{t.samples[0].large_ms:.1f} → {t.samples[-1].large_ms:.1f}",
        ),
    ]
    return markdown_table(headers, rows)


def apply_everywhere(
    pool: ThreadPoolExecutor, targets: Sequence[Target], batch: Batch, args: argparse.Namespace
) -> None:
    """Apply one batch to every target at the same time, and wait for all of them."""
    futures = [pool.submit(t.apply, batch, args.path, args.watcher) for t in targets]
    for future in futures:
        future.result()


def trajectory_table(targets: Sequence[Target]) -> str:
    """Return a Markdown table of every sample: size, dead tuples and bbox time over time."""
    headers = ["updates"]
    for t in targets:
        headers += [f"{t.short}: heap / GiST MiB", f"{t.short}: dead", f"{t.short}: bbox ms"]
    rows = []
    for i, first in enumerate(targets[0].samples):
        row = [f"{first.updates:,}"]
        for t in targets:
            s = t.samples[i]
            row += [
                f"{mib(s.table_bytes)} / {mib(s.gist_bytes)}",
                f"{s.dead:,}",
                f"{s.small_ms:.2f} / {s.large_ms:.1f}",
            ]
        rows.append(row)
    return markdown_table(headers, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000, help="people rows (100000)")
    parser.add_argument(
        "--updates", type=int, default=3_000_000, help="updates per setting (3000000)"
    )
    parser.add_argument("--batch", type=int, default=5000, help="rows per transaction (5000)")
    parser.add_argument(
        "--path",
        choices=("upsert", "app"),
        default="upsert",
        help="the latest_positions upsert alone, or the app's store.positions.insert_positions",
    )
    parser.add_argument(
        "--watcher",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also apply the zone watcher's update (tracker.store.zones.match_grids) to the "
        "people of each batch, as the server does after each commit (on)",
    )
    parser.add_argument("--still", type=float, default=0.0, help="share of fixes that stay put")
    parser.add_argument("--samples", type=int, default=8, help="measurements during the run (8)")
    parser.add_argument("--runs", type=int, default=7, help="bbox query runs per median (7)")
    parser.add_argument(
        "--max-minutes", type=float, default=8.5, help="stop updating after this long (8.5)"
    )
    parser.add_argument("--seed", type=int, default=2026, help="RNG seed (2026)")
    parser.add_argument("--keep-db", action="store_true", help="keep the throwaway databases")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    args = parse_args(argv)
    args.batch = min(args.batch, args.people)  # one fix per person per batch
    raise_on_sigterm()
    started = time.monotonic()
    deadline = started + args.max_minutes * 60
    base_url = base_database_url()
    targets = [
        Target(
            "tuned (migration)",
            "tuned",
            ThrowawayDatabase(base_url, "tracker_bloat", args.keep_db),
        ),
        Target(
            "PostgreSQL defaults",
            "defaults",
            ThrowawayDatabase(base_url, "tracker_bloat", args.keep_db),
        ),
    ]
    # Both tables get each batch at the same time, on their own connections, so both see
    # the same load and the run takes about half as long as one table after the other.
    pool = ThreadPoolExecutor(max_workers=len(targets))
    try:
        crowd = prepare(targets[0], targets[1], args)
        for target in targets:
            target.open()
            log.info(
                "%s: %s; latest_positions %s", target.label, target.db.name, target.reloptions()
            )
        progress = Progress()
        # The first pass inserts everyone's first fix; the updates start after it.
        for offset in range(0, args.people, args.batch):
            batch = crowd.next_batch(min(args.batch, args.people - offset))
            apply_everywhere(pool, targets, batch, args)
            progress.update(f"initial load: {offset + args.batch:,}/{args.people:,}")
        for target in targets:
            target.write_s = 0.0
            target.sample(0, args.runs)
        progress.done()
        print(f"after loading {args.people:,} people (bbox: small / large median of {args.runs}):")
        print_samples(targets, 0)

        every = max(args.batch, args.updates // args.samples // args.batch * args.batch)
        done = 0
        window_started = time.monotonic()
        while done < args.updates:
            if time.monotonic() > deadline:
                progress.done()
                log.warning("time budget of %.0f min reached", args.max_minutes)
                break
            batch = crowd.next_batch(min(args.batch, args.updates - done))
            apply_everywhere(pool, targets, batch, args)
            done += len(batch.person_ids)
            elapsed = time.monotonic() - window_started
            progress.update(
                f"updates {done:>10,}/{args.updates:,}  {done / elapsed:>7,.0f}/s per table  "
                f"elapsed {elapsed:5.0f} s  "
                + "  ".join(f"{t.short} {t.write_s:4.0f} s in DB" for t in targets)
            )
            if done % every == 0 or done >= args.updates:
                for target in targets:
                    target.sample(done, args.runs)
                progress.done()
                print(f"after {done:,} updates ({time.monotonic() - started:.0f} s):")
                print_samples(targets, -1)
        if targets[0].samples[-1].updates != done:
            for target in targets:
                target.sample(done, args.runs)
        print()
        print(
            f"machine: {machine_note()}; path: {args.path}; "
            f"watcher: {'on' if args.watcher else 'off'}; batch: {args.batch} rows per "
            f"transaction; still: {args.still:.0%}; {done:,} updates per table; "
            f"{time.monotonic() - started:.0f} s in all"
        )
        print()
        for target in targets:
            print(f"{target.label}: latest_positions reloptions {target.reloptions()}")
        print()
        print(final_table(targets, done))
        print()
        print(trajectory_table(targets))
        print()
        print(f"command: {command_line()}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for target in targets:
            target.close()
            target.db.drop()


if __name__ == "__main__":
    sys.exit(main())
