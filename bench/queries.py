"""Read queries at city scale: 100,000 people and 50 million positions, made with COPY.

Times the app's own query functions (tracker/store/, tracker/dispatch/service.py):
latest positions in a bounding box, the nearest 10 on-duty people, and one person's
30-day track simplified for display. Targets: < 30 ms, < 10 ms, < 300 ms.

    .venv/bin/python bench/queries.py                 # the full size (about 20 minutes)
    .venv/bin/python bench/queries.py --positions 2000000 --people 20000   # a quick look
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import statistics
import struct
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    Progress,
    ThrowawayDatabase,
    base_database_url,
    connect,
    machine_note,
    markdown_table,
)

CENTRE = (39.9042, 116.4074)  # lat, lon of Beijing
SPAN_DEG = 0.35  # people spread over about 40 km x 40 km
ROLES = ("volunteer", "street_chief", "grid_worker", "patrol")
HEAVY_PEOPLE = 5  # people with a full 30-day track at one fix every 15 s, 8 h a day


def ewkb_point(lon: float, lat: float) -> str:
    """Return a point as hex EWKB with SRID 4326 (cheaper for the server to parse than WKT)."""
    return struct.pack("<BIIdd", 1, 0x20000001, 4326, lon, lat).hex()


class CopyStream(io.RawIOBase):
    """A file-like object that COPY reads, filled line by line by a generator."""

    def __init__(self, lines) -> None:
        """Wrap a generator of text lines."""
        self.lines = lines
        self.buffer = b""

    def readable(self) -> bool:
        """Say that this stream can be read."""
        return True

    def readinto(self, target) -> int:
        """Fill `target` with the next bytes of the generated lines."""
        while len(self.buffer) < len(target):
            chunk = "".join(line for _, line in zip(range(2000), self.lines, strict=False))
            if not chunk:
                break
            self.buffer += chunk.encode()
        size = min(len(target), len(self.buffer))
        target[:size] = self.buffer[:size]
        self.buffer = self.buffer[size:]
        return size


def add_people(cur: Any, unit_name: str, kind: str, people: int) -> tuple[int, int, int]:
    """Add a unit and `people` people in it, one device each, with COPY.

    Returns:
        (the unit's id, the first person's id, the first device's id); ids are consecutive.
    """
    cur.execute("INSERT INTO units (name, kind) VALUES (%s, %s) RETURNING id", (unit_name, kind))
    (unit_id,) = cur.fetchone()
    cur.copy_expert(
        "COPY people (name, role, unit_id) FROM STDIN",
        CopyStream(f"bench {n}\t{ROLES[n % 4]}\t{unit_id}\n" for n in range(people)),
    )
    cur.execute("SELECT min(id) FROM people")
    (first_id,) = cur.fetchone()
    cur.copy_expert(
        "COPY devices (person_id, token_hash) FROM STDIN",
        CopyStream(f"{first_id + n}\tbench-{n}\n" for n in range(people)),
    )
    cur.execute("SELECT min(id) FROM devices")
    (first_device,) = cur.fetchone()
    return unit_id, first_id, first_device


def copy_positions(cur: Any, lines: Iterator[str]) -> float:
    """COPY text lines into positions (person_id, device_id, ts, geom, accuracy_m,
    altitude_m, speed_mps, heading_deg, battery); return the seconds it took."""
    started = time.perf_counter()
    cur.copy_expert(
        "COPY positions (person_id, device_id, ts, geom, accuracy_m, altitude_m, speed_mps,"
        " heading_deg, battery) FROM STDIN",
        CopyStream(lines),
    )
    return time.perf_counter() - started


def build_position_indexes(cur: Any, progress: Any) -> dict[str, float]:
    """Build the positions table's indexes after its COPY; return seconds per index.

    Building them after loading is several times faster than keeping them during it.
    """
    seconds = {}
    for label, sql in (
        (
            "primary key",
            "ALTER TABLE positions ADD CONSTRAINT pk_positions "
            "PRIMARY KEY (person_id, ts, device_id)",
        ),
        ("GiST on geom", "CREATE INDEX ix_positions_geom ON positions USING gist (geom)"),
        ("BRIN on ts", "CREATE INDEX ix_positions_ts_brin ON positions USING brin (ts)"),
    ):
        progress.update(f"building {label}...")
        started = time.perf_counter()
        cur.execute(sql)
        seconds[label] = time.perf_counter() - started
    return seconds


def load(url: str, people: int, positions: int, now: datetime) -> dict[str, float]:
    """Fill the database; return load figures (rows/s of the COPY into positions...)."""
    rng = random.Random(2026)
    progress = Progress(every_s=10)
    conn = connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    unit_id, first_id, first_device = add_people(cur, "bench city", "district", people)
    cur.execute(
        "INSERT INTO shifts (person_id) SELECT id FROM people WHERE id %% 10 < 3 AND unit_id = %s",
        (unit_id,),
    )
    start_day = (now - timedelta(days=30)).date()
    for n in range(32):
        cur.execute("SELECT tracker_ensure_partition(%s)", (start_day + timedelta(days=n),))
    # Bulk load without the secondary indexes, then build them: PostGIS sorts a GiST build,
    # which is far faster than 50 million single inserts into the tree.
    cur.execute("DROP INDEX ix_positions_geom")
    cur.execute("DROP INDEX ix_positions_ts_brin")
    cur.execute("ALTER TABLE positions DROP CONSTRAINT pk_positions")

    heavy_points = 30 * 8 * 3600 // 15
    light = positions - HEAVY_PEOPLE * heavy_points
    per_light = max(1, light // people)
    homes = [
        (
            CENTRE[0] + rng.uniform(-SPAN_DEG, SPAN_DEG) / 2,
            CENTRE[1] + rng.uniform(-SPAN_DEG, SPAN_DEG) / 2,
        )
        for _ in range(people)
    ]
    t0 = now - timedelta(days=30)
    written = 0

    def rows():
        nonlocal written
        for n in range(people):
            pid, did = first_id + n, first_device + n
            if n < HEAVY_PEOPLE:
                count, step = heavy_points, None
            else:
                count, step = per_light, 30 * 86400 / per_light
            lat, lon = homes[n]
            heading = rng.uniform(0, 6.283)
            for k in range(count):
                if step is None:  # eight hours on duty a day, a fix every 15 s
                    day, second = divmod(k, 8 * 3600 // 15)
                    ts = t0 + timedelta(days=day, hours=8, seconds=15 * second)
                else:
                    ts = t0 + timedelta(seconds=k * step + (n % 997))
                if step is None:
                    # A patrol: about 21 m a fix along a gently turning street walk.
                    heading += rng.gauss(0, 0.2)
                    lat += 21 * math.cos(heading) / 111_320
                    lon += 21 * math.sin(heading) / 85_000
                    if abs(lat - homes[n][0]) > 0.01 or abs(lon - homes[n][1]) > 0.012:
                        heading += math.pi  # turn back at the edge of the patrol area
                else:
                    lat += rng.gauss(0, 0.00005)
                    lon += rng.gauss(0, 0.00006)
                written += 1
                if written % 500_000 == 0:
                    progress.update(f"COPY positions: {written:,} of about {positions:,}")
                yield (
                    f"{pid}\t{did}\t{ts.isoformat()}\t{ewkb_point(lon, lat)}"
                    f"\t{rng.uniform(3, 20):.1f}\t\\N\t1.3\t\\N\t0.8\n"
                )

    copy_s = copy_positions(cur, rows())
    progress.done(f"COPY positions: {written:,} rows in {copy_s:.0f} s")
    figures = {"rows": written, "copy_rows_per_s": written / copy_s}
    for label, seconds in build_position_indexes(cur, progress).items():
        figures[f"index {label} s"] = seconds
    progress.update("latest positions...")
    cur.execute(
        """
        INSERT INTO latest_positions (person_id, device_id, ts, received_at, geom, accuracy_m,
                                      speed_mps, battery)
        SELECT DISTINCT ON (person_id) person_id, device_id, ts, now(), geom, accuracy_m,
               speed_mps, battery
        FROM positions ORDER BY person_id, ts DESC
        """
    )
    # Half the people have a fresh fix, so that nearest-N has stale people to skip.
    cur.execute("UPDATE latest_positions SET ts = now() - (person_id % 1200) * interval '1 second'")
    cur.execute("VACUUM ANALYZE")
    progress.done("loaded")
    conn.close()
    return figures


def timed(fn, runs: int) -> list[float]:
    """Return the sorted run times of fn() in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


def measure(url: str, runs: int) -> list[list[object]]:
    """Time the three read queries through the app's own functions."""
    os.environ["DATABASE_URL"] = url
    from sqlalchemy import func, select

    from tracker import create_app, store
    from tracker.dispatch import service
    from tracker.extensions import db
    from tracker.models import LatestPosition, Person, User

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    admin = User(id=0, role="admin", unit_id=None, username="bench")
    rng = random.Random(7)
    rows = []
    with app.app_context():
        session = db.session
        people = session.execute(select(func.count()).select_from(LatestPosition)).scalar()

        def bbox_query():
            lat = CENTRE[0] + rng.uniform(-0.15, 0.15)
            lon = CENTRE[1] + rng.uniform(-0.15, 0.15)
            box = (lon - 0.012, lat - 0.009, lon + 0.012, lat + 0.009)  # about 2 km x 2 km
            return session.execute(store.latest.latest_positions(admin, box)).all()

        found = [len(bbox_query()) for _ in range(20)]
        t = timed(bbox_query, runs)
        rows.append(
            [
                "latest positions in a 2 km box",
                f"{statistics.median(found):.0f} people",
                f"{statistics.median(t):.1f}",
                f"{t[int(len(t) * 0.95) - 1]:.1f}",
                "< 30",
            ]
        )

        def nearest_query():
            lat = CENTRE[0] + rng.uniform(-0.15, 0.15)
            lon = CENTRE[1] + rng.uniform(-0.15, 0.15)
            return service.nearest(admin, lat, lon, 10, datetime.now(UTC))

        assert len(nearest_query()) == 10
        t = timed(nearest_query, runs)
        rows.append(
            [
                "nearest 10 on duty, fresh",
                f"of {people:,}",
                f"{statistics.median(t):.1f}",
                f"{t[int(len(t) * 0.95) - 1]:.1f}",
                "< 10",
            ]
        )

        end = datetime.now(UTC)
        start = end - timedelta(days=31)
        heavy = session.execute(select(func.min(Person.id))).scalar()
        full = store.tracks.track(session, heavy, start, end)

        def track_query():
            return store.tracks.track(
                session, heavy + rng.randrange(HEAVY_PEOPLE), start, end, 10.0
            )

        shown = track_query()
        t = timed(track_query, max(5, runs // 5))
        vertices = shown.geometry_geojson.count("],[") + 1
        rows.append(
            [
                "30-day track, simplified (10 m)",
                f"{full.points:,} fixes -> {vertices:,} vertices",
                f"{statistics.median(t):.1f}",
                f"{t[int(len(t) * 0.95) - 1]:.1f}",
                "< 300",
            ]
        )
        db.engine.dispose()
    return rows


def main() -> int:
    """Build the data, time the queries, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--positions", type=int, default=50_000_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    database = ThrowawayDatabase(base_database_url(), "tracker_bench_queries", keep=args.keep_db)
    try:
        database.create()
        database.migrate()
        figures = load(database.url, args.people, args.positions, datetime.now(UTC))
        rows = measure(database.url, args.runs)
    finally:
        database.drop()
    print()
    print(machine_note())
    print(
        f"loaded {figures['rows']:,} positions with COPY at "
        f"{figures['copy_rows_per_s']:,.0f} rows/s; index builds: "
        + ", ".join(f"{k[6:-2]} {v:.0f} s" for k, v in figures.items() if k.startswith("index"))
    )
    print(markdown_table(["query", "size", "median ms", "p95 ms", "target ms"], rows))
    print(
        f"\ncommand: .venv/bin/python bench/queries.py --people {args.people} "
        f"--positions {args.positions} --runs {args.runs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
