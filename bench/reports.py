"""Patrol reports at district scale: grid-days and person-days of a day, a street, a month.

Builds a district of G grids (a square lattice of 300 m grids, 100 to a street) and P
grid workers assigned to them round robin, each on duty 08:00-16:00 local with a fix
every 5 s walking inside their grid (the issue's 2,500 grids, 3,000 people, ~17 M fixes),
plus one worker with 30 such days, loaded with COPY on a throwaway database (as
bench/queries.py and bench/history.py do). Then times, as a logged-in admin through the
Flask test client (tracker/api/assessment.py):

- one street's grid-days + person-days computed afresh by the first request ("cold");
- the nightly job, `flask reports daily --date <day>` as cron runs it, with nothing kept:
  it computes the whole district's day and writes the district's and each street's XLSX;
- the street's and the district's reports again, reading the figures the job kept ("warm",
  what the office sees in the morning);
- one person's 30 days, cold then warm.


| figure                                           | target  |
| ------------------------------------------------ | ------- |
| grid-days + person-days, the whole district, 1 d | < 60 s  |
| grid-days + person-days, one street (100 grids)  | < 5 s   |
| person-days of one person over 30 days           | < 2 s   |

    .venv/bin/python bench/reports.py                              # the issue's scale
    .venv/bin/python bench/reports.py --people 50 --grids 40       # a quick look (< 1 min)
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    ROOT,
    VENV_BIN,
    Progress,
    ThrowawayDatabase,
    base_database_url,
    connect,
    machine_note,
    markdown_table,
)
from bench.queries import (  # noqa: E402
    CopyStream,
    build_position_indexes,
    copy_positions,
    ewkb_point,
)

ORIGIN = (39.90, 116.30)  # lat, lon of the lattice's south-west corner (Beijing)
GRID_M = 300.0
GRIDS_PER_STREET = 100
STEP_S = 5
SHIFT_H = 8
LONG_DAYS = 30
METRES_PER_DEG_LAT = 111_320.0
ZONE = ZoneInfo("Asia/Shanghai")


def grid_box(n: int, columns: int) -> tuple[float, float, float, float]:
    """Return the west, south, east, north of the lattice's n-th grid."""
    dlat = GRID_M / METRES_PER_DEG_LAT
    dlon = GRID_M / (METRES_PER_DEG_LAT * math.cos(math.radians(ORIGIN[0])))
    row, col = divmod(n, columns)
    west, south = ORIGIN[1] + col * dlon, ORIGIN[0] + row * dlat
    return west, south, west + dlon, south + dlat


def walk(
    rng: random.Random, box: tuple[float, float, float, float], start: float, count: int
) -> Iterator:
    """Yield (epoch s, lat, lon, accuracy_m) every 5 s: walks near the box, and stops."""
    west, south, east, north = box
    lat, lon = rng.uniform(south, north), rng.uniform(west, east)
    heading = rng.uniform(0, math.tau)
    per_lon = METRES_PER_DEG_LAT * math.cos(math.radians(lat))
    moving, left_s = True, rng.uniform(300, 1800)
    for k in range(count):
        left_s -= STEP_S
        if left_s <= 0:
            moving = not moving
            left_s = rng.uniform(300, 1800) if moving else rng.uniform(120, 1200)
        if moving:
            heading += rng.gauss(0, 0.2)
            lat += 1.3 * STEP_S * math.cos(heading) / METRES_PER_DEG_LAT
            lon += 1.3 * STEP_S * math.sin(heading) / per_lon
            # Now and then a walk leaves the grid by up to ~60 m before turning back.
            margin = 60 / METRES_PER_DEG_LAT
            if not (south - margin < lat < north + margin and west - margin < lon < east + margin):
                heading += math.pi
        jitter = rng.gauss(0, 4) / METRES_PER_DEG_LAT
        yield start + k * STEP_S, lat + jitter, lon - jitter, rng.uniform(3, 20)


def load(url: str, grids: int, people: int) -> dict:
    """Fill the database: a district, its streets and grids, people, shifts and fixes."""
    progress = Progress(every_s=10)
    conn = connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("INSERT INTO units (name, kind) VALUES ('bench district', 'district') RETURNING id")
    (district,) = cur.fetchone()
    streets = []
    for s in range(math.ceil(grids / GRIDS_PER_STREET)):
        cur.execute(
            "INSERT INTO units (name, kind, parent_id) VALUES (%s, 'street', %s) RETURNING id",
            (f"bench street {s}", district),
        )
        streets.append(cur.fetchone()[0])
    columns = math.ceil(math.sqrt(grids))
    boxes = [grid_box(n, columns) for n in range(grids)]
    cur.copy_expert(
        "COPY units (name, kind, parent_id, boundary) FROM STDIN",
        CopyStream(
            f"bench grid {n}\tgrid\t{streets[n // GRIDS_PER_STREET]}\t"
            f"SRID=4326;MULTIPOLYGON((({w} {s},{e} {s},{e} {n_},{w} {n_},{w} {s})))\n"
            for n, (w, s, e, n_) in enumerate(boxes)
        ),
    )
    cur.execute("SELECT min(id) FROM units WHERE kind = 'grid' AND name LIKE 'bench grid %%'")
    (first_grid,) = cur.fetchone()
    total = people + 1  # the last one has 30 days
    cur.copy_expert(
        "COPY people (name, role, unit_id, patrol_unit_id) FROM STDIN",
        CopyStream(
            f"bench {n}\tgrid_worker\t{first_grid + n % grids}\t{first_grid + n % grids}\n"
            for n in range(total)
        ),
    )
    cur.execute("SELECT min(id) FROM people WHERE name LIKE 'bench %%'")
    (first_person,) = cur.fetchone()
    cur.copy_expert(
        "COPY devices (person_id, token_hash) FROM STDIN",
        CopyStream(f"{first_person + n}\tbench-{n}\n" for n in range(total)),
    )
    cur.execute("SELECT min(id) FROM devices WHERE token_hash LIKE 'bench-%%'")
    (first_device,) = cur.fetchone()

    today = datetime.now(ZONE).date()
    day = today - timedelta(days=1)
    long_days = [day - timedelta(days=LONG_DAYS - 1 - d) for d in range(LONG_DAYS)]
    for d in range(LONG_DAYS + 2):
        cur.execute("SELECT tracker_ensure_partition(%s)", (day - timedelta(days=LONG_DAYS - d),))

    def start_of(d: date) -> datetime:
        return datetime.combine(d, datetime.min.time(), ZONE) + timedelta(hours=8)

    shifts = [(first_person + n, start_of(day)) for n in range(people)]
    shifts += [(first_person + people, start_of(d)) for d in long_days]
    cur.copy_expert(
        "COPY shifts (person_id, started_at, ended_at, end_reason) FROM STDIN",
        CopyStream(
            f"{pid}\t{s.isoformat()}\t{(s + timedelta(hours=SHIFT_H)).isoformat()}\tphone\n"
            for pid, s in shifts
        ),
    )
    cur.execute("DROP INDEX ix_positions_geom")
    cur.execute("DROP INDEX ix_positions_ts_brin")
    cur.execute("ALTER TABLE positions DROP CONSTRAINT pk_positions")
    per_day = SHIFT_H * 3600 // STEP_S
    expected = per_day * (people + LONG_DAYS)
    written = 0

    def rows() -> Iterator[str]:
        nonlocal written
        for n in range(total):
            rng = random.Random(n)
            box = boxes[n % grids]
            for d in [day] if n < people else long_days:
                for t, lat, lon, accuracy in walk(rng, box, start_of(d).timestamp(), per_day):
                    written += 1
                    if written % 1_000_000 == 0:
                        progress.update(f"COPY positions: {written:,} of {expected:,}")
                    ts = datetime.fromtimestamp(t, ZONE).isoformat()
                    yield (
                        f"{first_person + n}\t{first_device + n}\t{ts}\t{ewkb_point(lon, lat)}"
                        f"\t{accuracy:.1f}\t\\N\t1.3\t\\N\t0.8\n"
                    )

    copy_s = copy_positions(cur, rows())
    progress.done(f"COPY positions: {written:,} rows in {copy_s:.0f} s")
    index_s = build_position_indexes(cur, progress)
    cur.execute("VACUUM ANALYZE")
    conn.close()
    return {
        "district": district,
        "street": streets[0],
        "street_grids": min(grids, GRIDS_PER_STREET),
        "long_person": first_person + people,
        "long_grid": first_grid + people % grids,
        "day": day,
        "long_from": long_days[0],
        "rows": written,
        "copy_s": copy_s,
        "index_s": index_s,
    }


def measure(url: str, figures: dict, grids: int, people: int) -> list[list[object]]:
    """Time the report endpoints through the app's own routes, as a logged-in admin."""
    from tracker import create_app, store
    from tracker.auth import hash_password
    from tracker.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        store.accounts.add_user(
            db.session, "bench-admin", hash_password("bench-pass"), "admin", None
        )
        db.session.commit()
    client = app.test_client()
    client.post("/api/v1/session", json={"username": "bench-admin", "password": "bench-pass"})

    def timed(path: str) -> tuple[float, dict]:
        started = time.perf_counter()
        response = client.get(path)
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code} {response.data[:300]!r}")
        return seconds, response.get_json()

    day = figures["day"].isoformat()
    rows: list[list[object]] = []

    def both(unit: int) -> tuple[float, dict, dict]:
        grid_s, grid_days = timed(f"/api/v1/reports/grid-days?from={day}&unit_id={unit}")
        person_s, person_days = timed(f"/api/v1/reports/person-days?from={day}&unit_id={unit}")
        return grid_s + person_s, grid_days, person_days

    # The street's day computed afresh by a request (cold); then the nightly job, with
    # nothing kept, computes the whole district's day; then both read what it kept (warm).
    cold_street_s = both(figures["street"])[0]
    nightly_s = nightly(url, figures["day"])
    rows.append(
        [
            "nightly `flask reports daily` (cold)",
            f"{grids:,} grids, {people:,} people; district + "
            f"{math.ceil(grids / GRIDS_PER_STREET)} street files",
            f"{nightly_s:.1f}",
            "",
            "(cron)",
        ]
    )
    for label, unit, size, cold, target in (
        (
            "one street, 1 day",
            figures["street"],
            f"{figures['street_grids']} grids",
            f"{cold_street_s:.2f}",
            "< 5",
        ),
        (
            "whole district, 1 day",
            figures["district"],
            f"{grids:,} grids, {people:,} people",
            "",
            "< 60",
        ),
    ):
        warm_s, grid_days, person_days = both(unit)
        covered = [r["coverage_pct"] for r in grid_days["rows"] if r["coverage_pct"]]
        rows.append(
            [
                label,
                f"{size}; {len(person_days['rows']):,} person-days, mean coverage "
                f"{sum(covered) / max(len(covered), 1):.0f} %",
                cold,
                f"{warm_s:.2f}",
                target,
            ]
        )
    first = figures["long_from"].isoformat()
    path = (
        f"/api/v1/reports/person-days?from={first}&to={day}"
        f"&unit_id={figures['long_grid']}&person_id={figures['long_person']}"
    )
    month_cold, _ = timed(path)
    month_warm, month = timed(path)
    fixes = sum(r["fixes"] for r in month["rows"])
    rows.append(
        ["one person, 30 days", f"{fixes:,} fixes", f"{month_cold:.2f}", f"{month_warm:.2f}", "< 2"]
    )
    with app.app_context():
        db.engine.dispose()
    return rows


def nightly(url: str, day: date) -> float:
    """Forget the kept figures, then time `flask reports daily` for the day as cron runs it."""
    conn = connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DELETE FROM report_grid_days")
        cur.execute("DELETE FROM report_person_days")
        cur.execute("VACUUM ANALYZE report_grid_days, report_person_days")
    conn.close()
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as folder:
        env = {**os.environ, "DATABASE_URL": url, "REPORTS_DIR": folder}
        started = time.perf_counter()
        done = subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "wsgi", "reports", "daily", "--date", str(day)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"flask reports daily failed:\n{done.stderr[-2000:]}")
    print(done.stdout.strip(), file=sys.stderr)
    return seconds


def main() -> int:
    """Build the district, time the reports, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", type=int, default=2_500)
    parser.add_argument("--people", type=int, default=3_000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if args.grids < 1 or args.people < 1:
        parser.error("--grids, --people: at least 1")
    database = ThrowawayDatabase(base_database_url(), "tracker_bench_reports", keep=args.keep_db)
    try:
        database.create()
        database.migrate()
        figures = load(database.url, args.grids, args.people)
        rows = measure(database.url, figures, args.grids, args.people)
    finally:
        database.drop()
    print()
    print(machine_note())
    print(
        f"loaded {figures['rows']:,} positions with COPY in {figures['copy_s']:.0f} s; index "
        "builds: " + ", ".join(f"{k} {v:.0f} s" for k, v in figures["index_s"].items())
    )
    print(markdown_table(["report", "size", "cold s", "warm s", "target s"], rows))
    print(
        f"\ncommand: .venv/bin/python bench/reports.py --grids {args.grids} --people {args.people}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
