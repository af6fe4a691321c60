"""History at scale: timelines, who was near, and replay data over fixes every 5 s, via COPY.

Builds N people x D days of 5 s fixes (walks and stops with GPS jitter and a few outliers)
on a throwaway database, plus one person with 30 days, then times the product's own
endpoints through the Flask test client with a logged-in admin (tracker/api/history.py):

| figure                                        | target   |
| --------------------------------------------- | -------- |
| a person's timeline for a day                 | < 300 ms |
| 30 days of one person's trips and stops       | < 2 s    |
| who was near (200 m, 20 min) on the table     | < 200 ms |
| replay data, 1,000 people x 8 h: bytes, time  |          |

With --browser it then serves the data with the real server and opens the replay page in
headless Chromium (the same one as the UI tests): the time from opening the page to the
first frame drawn with data (target < 3 s), until the whole range is loaded, the bytes of
replay data transferred, and the frame times while playing at 60x.

    .venv/bin/python bench/history.py                      # 1,000 people x 1 day (17 M fixes)
    .venv/bin/python bench/history.py --days 3             # 52 M fixes, the issue's "50 M"
    .venv/bin/python bench/history.py --people 200 --hours 8 --runs 10   # a quick look
    .venv/bin/python bench/history.py --people 1000 --hours 8 --runs 5 --browser
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    LOG_DIR,
    Progress,
    Server,
    ThrowawayDatabase,
    base_database_url,
    connect,
    machine_note,
    markdown_table,
    percentile,
    url_with_database,
)
from bench.queries import (  # noqa: E402
    add_people,
    build_position_indexes,
    copy_positions,
    ewkb_point,
)

CENTRE = (31.2304, 121.4737)  # lat, lon of Shanghai (HISTORY_TIME_ZONE's default zone)
SPAN_DEG = 0.2  # people spread over about 20 km x 20 km
STEP_S = 5
LONG_DAYS = 30  # the one person whose 30-day range is timed
METRES_PER_DEG_LAT = 111_320.0


def walk(rng: random.Random, home: tuple[float, float], start: float, count: int) -> Iterator:
    """Yield (epoch s, lat, lon, accuracy_m, speed_mps) every 5 s: walks and stops.

    Walks of 5–30 min at about 1.3 m/s alternate with stops of 5–40 min standing in one
    place with a few metres of jitter; about one fix in 2,000 is a bad one (150 m off, or
    a 300 m jump), so the outlier rules have work to do.
    """
    lat, lon = home
    heading = rng.uniform(0, math.tau)
    metres_per_deg_lon = METRES_PER_DEG_LAT * math.cos(math.radians(home[0]))
    moving, left_s = True, rng.uniform(300, 1800)
    for k in range(count):
        t = start + k * STEP_S
        left_s -= STEP_S
        if left_s <= 0:
            moving = not moving
            left_s = rng.uniform(300, 1800) if moving else rng.uniform(300, 2400)
        if moving:
            heading += rng.gauss(0, 0.15)
            lat += 1.3 * STEP_S * math.cos(heading) / METRES_PER_DEG_LAT
            lon += 1.3 * STEP_S * math.sin(heading) / metres_per_deg_lon
            if abs(lat - home[0]) > 0.01 or abs(lon - home[1]) > 0.012:
                heading += math.pi  # turn back at the edge of the patrol area
            speed = 1.3 + rng.gauss(0, 0.2)
            fix_lat, fix_lon = lat, lon
        else:
            speed = abs(rng.gauss(0, 0.1))
            fix_lat = lat + rng.gauss(0, 5) / METRES_PER_DEG_LAT
            fix_lon = lon + rng.gauss(0, 5) / metres_per_deg_lon
        accuracy = rng.uniform(3, 20)
        odd = rng.random()
        if odd < 0.0005:
            accuracy = 150.0
        elif odd < 0.001:
            fix_lat += 300 / METRES_PER_DEG_LAT
        yield t, fix_lat, fix_lon, accuracy, speed


def day_start(day: date, zone: ZoneInfo) -> float:
    """Return the epoch seconds of a day's local midnight."""
    return datetime.combine(day, datetime.min.time(), zone).timestamp()


def load(url: str, people: int, days: int, hours: float, zone: ZoneInfo) -> dict:
    """Fill the database with people x days of 5 s fixes and one person's 30 days.

    Returns:
        The ids, days and load figures (rows, COPY rows/s, index build seconds).
    """
    rng = random.Random(2026)
    progress = Progress(every_s=10)
    conn = connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    total_people = people + 1  # the last one has the 30 days
    unit_id, first_id, first_device = add_people(cur, "bench street", "street", total_people)

    # Whole local days that ended before today, so every timeline asks for a past day.
    today = datetime.now(zone).date()
    first_day = today - timedelta(days=max(days, LONG_DAYS))
    bench_days = [today - timedelta(days=days - n) for n in range(days)]
    for n in range(max(days, LONG_DAYS) + 2):
        cur.execute(
            "SELECT tracker_ensure_partition(%s)",
            (first_day - timedelta(days=1) + timedelta(days=n),),
        )
    # Bulk load without the secondary indexes, then build them (as bench/queries.py does).
    cur.execute("DROP INDEX ix_positions_geom")
    cur.execute("DROP INDEX ix_positions_ts_brin")
    cur.execute("ALTER TABLE positions DROP CONSTRAINT pk_positions")

    per_day = int(hours * 3600 // STEP_S)
    # A day starts at 08:00 local when it is shorter than 24 h (a shift), else at midnight.
    offset_s = 0 if hours >= 24 else 8 * 3600
    homes = [
        (
            CENTRE[0] + rng.uniform(-SPAN_DEG, SPAN_DEG) / 2,
            CENTRE[1] + rng.uniform(-SPAN_DEG, SPAN_DEG) / 2,
        )
        for _ in range(total_people)
    ]
    expected = people * days * per_day + LONG_DAYS * per_day
    written = 0

    def rows() -> Iterator[str]:
        nonlocal written
        for n in range(total_people):
            pid, did = first_id + n, first_device + n
            span = (
                bench_days
                if n < people
                else [first_day + timedelta(days=d) for d in range(LONG_DAYS)]
            )
            person_rng = random.Random(n)
            for day in span:
                start = day_start(day, zone) + offset_s
                for t, lat, lon, accuracy, speed in walk(person_rng, homes[n], start, per_day):
                    written += 1
                    if written % 1_000_000 == 0:
                        progress.update(f"COPY positions: {written:,} of {expected:,}")
                    ts = datetime.fromtimestamp(t, zone).isoformat()
                    yield (
                        f"{pid}\t{did}\t{ts}\t{ewkb_point(lon, lat)}"
                        f"\t{accuracy:.1f}\t\\N\t{speed:.2f}\t\\N\t0.8\n"
                    )

    copy_s = copy_positions(cur, rows())
    progress.done(f"COPY positions: {written:,} rows in {copy_s:.0f} s")
    figures: dict = {
        "unit_id": unit_id,
        "first_id": first_id,
        "long_id": first_id + people,
        "days": bench_days,
        "long_from": first_day,
        "offset_s": offset_s,
        "rows": written,
        "copy_rows_per_s": written / copy_s,
        "index_s": build_position_indexes(cur, progress),
    }
    cur.execute("VACUUM ANALYZE")
    progress.done("loaded")
    conn.close()
    return figures


def timed(call, runs: int) -> tuple[list[float], object]:
    """Return the sorted times in ms of `runs` calls and the last call's answer."""
    times, answer = [], None
    for _ in range(runs):
        started = time.perf_counter()
        answer = call()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times), answer


def ok(response) -> object:
    """Return a test-client response, or stop the benchmark with its error."""
    if response.status_code != 200:
        raise SystemExit(
            f"{response.request.url}: HTTP {response.status_code} {response.data[:200]!r}"
        )
    return response


def measure(url: str, figures: dict, people: int, hours: float, runs: int) -> list[list[object]]:
    """Time the history endpoints through the app's own routes, as a logged-in admin."""
    os.environ["DATABASE_URL"] = url
    from sqlalchemy import text

    from tracker import create_app, store
    from tracker.auth import hash_password
    from tracker.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    zone = ZoneInfo(app.config["HISTORY_TIME_ZONE"])
    rng = random.Random(7)
    with app.app_context():
        admin = f"bench-admin-{os.getpid()}"  # a new one each run: --use-db reruns
        store.accounts.add_user(db.session, admin, hash_password("bench-password"), "admin", None)
        db.session.commit()
    client = app.test_client()
    ok(client.post("/api/v1/session", json={"username": admin, "password": "bench-password"}))
    rows: list[list[object]] = []

    def row(name: str, size: str, times: list[float], target: str) -> None:
        rows.append(
            [name, size, f"{statistics.median(times):.1f}", f"{percentile(times, 95):.1f}", target]
        )

    # A person's day.
    def one_day():
        pid = figures["first_id"] + rng.randrange(people)
        day = rng.choice(figures["days"]).isoformat()
        return ok(client.get(f"/api/v1/people/{pid}/timeline?date={day}")).get_json()

    one_day()  # warm the connection pool and the caches
    times, answer = timed(one_day, runs)
    row(
        "timeline, one day",
        f"{len(answer['series']['t']):,} fixes, {len(answer['stops'])} stops",
        times,
        "< 300",
    )

    # One person's 30 days.
    start = datetime.combine(figures["long_from"], datetime.min.time(), zone)
    end = start + timedelta(days=LONG_DAYS)
    span = f"from={start.isoformat()}&to={end.isoformat()}".replace("+", "%2B")
    path = f"/api/v1/people/{figures['long_id']}/timeline?{span}"
    times, response = timed(lambda: ok(client.get(path)), max(3, runs // 10))
    month = response.get_json()
    row(
        "timeline, 30 days of one person",
        f"{len(month['series']['t']):,} fixes, {len(month['stops'])} stops, "
        f"{len(month['trips'])} trips",
        times,
        "< 2000",
    )

    # Who was near: 200 m, 20 min around a stored fix picked at random (a random point of
    # the 20 km square would mostly find nobody and time an empty answer), on the whole
    # table.
    def near():
        with app.app_context():
            lat, lon, ts = db.session.execute(
                text(
                    "SELECT ST_Y(geom), ST_X(geom), ts FROM positions"
                    " TABLESAMPLE SYSTEM (1) REPEATABLE (:seed) LIMIT 1"
                ),
                {"seed": rng.randrange(1_000_000)},
            ).one()
        t0 = ts - timedelta(minutes=10)
        window = f"from={t0.isoformat()}&to={(t0 + timedelta(minutes=20)).isoformat()}"
        query = f"lat={lat:.6f}&lon={lon:.6f}&radius_m=200&{window.replace('+', '%2B')}"
        return ok(client.get(f"/api/v1/near?{query}")).get_json()

    near()
    found = []

    def near_counted():
        found.append(len(near()["people"]))

    times, _ = timed(near_counted, runs)
    row(
        "who was near (200 m, 20 min)",
        f"of {figures['rows']:,} fixes; median {statistics.median(found):.0f} people found",
        times,
        "< 200",
    )

    # Replay data: everyone of the unit for 8 h of the first day (or the hours built).
    replay_h = min(8.0, hours)
    t0 = datetime.combine(figures["days"][0], datetime.min.time(), zone) + timedelta(
        seconds=figures["offset_s"]
    )
    window = f"from={t0.isoformat()}&to={(t0 + timedelta(hours=replay_h)).isoformat()}"
    for step_s in (1, 30):
        path = (
            f"/api/v1/replay?{window.replace('+', '%2B')}&unit_id={figures['unit_id']}"
            f"&step_s={step_s}"
        )
        times, response = timed(lambda path=path: ok(client.get(path)), max(3, runs // 10))
        body = response.data
        replay = response.get_json()
        fixes = sum(len(p["t"]) for p in replay["people"])
        row(
            f"replay data, {len(replay['people']):,} people x {replay_h:g} h, step_s={step_s}",
            f"{fixes:,} fixes; {len(body) / 1e6:.1f} MB JSON, "
            f"{len(gzip.compress(body, 6)) / 1e6:.1f} MB gzip",
            times,
            "",
        )
    with app.app_context():
        db.engine.dispose()
    return rows


def _figures_path(name: str) -> Path:
    return LOG_DIR / f"{name}.json"


def save_figures(name: str, figures: dict) -> None:
    """Keep a kept database's load figures next to the logs, for --use-db."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    _figures_path(name).write_text(json.dumps(figures, default=str))


def load_figures(name: str) -> dict:
    """Return the load figures saved by save_figures()."""
    figures = json.loads(_figures_path(name).read_text())
    figures["days"] = [date.fromisoformat(d) for d in figures["days"]]
    figures["long_from"] = date.fromisoformat(figures["long_from"])
    return figures


PLAY_S = 10  # seconds of playing at 60x whose frame times are kept


def measure_browser(url: str, figures: dict, hours: float) -> list[list[object]]:
    """Open the replay page in headless Chromium on the real server; time what a user sees."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.chromium import launch, wait_until

    os.environ["DATABASE_URL"] = url
    from tracker import create_app, store
    from tracker.auth import hash_password
    from tracker.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        viewer = f"bench-viewer-{os.getpid()}"
        store.accounts.add_user(db.session, viewer, hash_password("bench-password"), "viewer", None)
        db.session.commit()
        db.engine.dispose()
    zone = ZoneInfo(app.config["HISTORY_TIME_ZONE"])
    t0 = datetime.combine(figures["days"][0], datetime.min.time(), zone) + timedelta(
        seconds=figures["offset_s"]
    )
    span_h = min(8.0, hours)
    query = (
        f"from={t0.isoformat()}&to={(t0 + timedelta(hours=span_h)).isoformat()}"
        f"&unit={figures['unit_id']}&t=5400&speed=60"
    ).replace("+", "%2B")
    server = Server(url)
    server.start()
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 850})
            page.goto(f"{server.base_url}/login")
            page.fill("#username", viewer)
            page.fill("#password", "bench-password")
            page.click("button[type=submit]")
            page.wait_for_url(f"{server.base_url}/")
            page.goto(f"{server.base_url}/replay?{query}")
            wait_until(page, "document.body.dataset.replayFirstFrame", 120)
            first_ms = float(page.evaluate("document.body.dataset.replayFirstFrame"))
            wait_until(page, "document.body.dataset.replayIdle", 120)
            idle_ms = float(page.evaluate("document.body.dataset.replayIdle"))
            marks = page.evaluate(
                "performance.getEntriesByType('mark')"
                ".filter(m => m.name.startsWith('replay:'))"
                ".map(m => `${m.name.slice(7)} ${Math.round(m.startTime)} ms`).join(', ')"
            )
            wait_until(page, "document.body.dataset.replayLoaded", 600)
            loaded_ms = page.evaluate("performance.now()")
            transferred = page.evaluate(
                """() => performance.getEntriesByType('resource')
                    .filter(e => e.name.includes('/api/v1/replay'))
                    .map(e => [e.encodedBodySize, e.transferSize])"""
            )
            drawn = page.evaluate("Object.keys(window.__replay.drawn()).length")
            step = page.evaluate("window.__replay.step()")
            page.click("#replay-play")
            page.wait_for_timeout(PLAY_S * 1000)
            samples = page.evaluate("window.__replay.frameTimes()")
            LOG_DIR.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(LOG_DIR / "replay-bench.png"))
            browser.close()
    finally:
        server.stop()
    frames, draws = sorted(samples["frames"]), sorted(samples["draws"])
    body_mb = sum(size for size, _ in transferred) / 1e6
    return [
        ["page opened → first frame with people drawn", f"{first_ms:.0f} ms ({marks})", "< 3000"],
        ["page opened → map idle (basemap tiles and labels drawn too)", f"{idle_ms:.0f} ms", ""],
        ["page opened → whole range loaded", f"{loaded_ms:.0f} ms", ""],
        [
            "replay data transferred",
            f"{body_mb:.1f} MB in {len(transferred)} requests (step_s={step})",
            "",
        ],
        ["people drawn at t", f"{drawn:,}", ""],
        [
            f"frame interval playing at 60x (median / p95 of {len(frames)})",
            f"{statistics.median(frames):.0f} / {percentile(frames, 95):.0f} ms"
            if frames
            else "no frames",
            "",
        ],
        [
            "computing and handing over one frame (median / p95)",
            f"{statistics.median(draws):.0f} / {percentile(draws, 95):.0f} ms"
            if draws
            else "no frames",
            "",
        ],
    ]


def main() -> int:
    """Build the data, time the history endpoints, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=1, help="days of fixes for each person")
    parser.add_argument("--hours", type=float, default=24, help="hours of fixes in each day")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--browser", action="store_true", help="also time the replay page")
    parser.add_argument("--use-db", help="time again on a database kept by --keep-db")
    parser.add_argument("--only-browser", action="store_true", help="with --browser: only that")
    args = parser.parse_args()
    if not 0 < args.hours <= 24:
        parser.error("--hours: must be in (0, 24]")
    zone = ZoneInfo(os.environ.get("HISTORY_TIME_ZONE", "Asia/Shanghai"))
    if args.use_db:
        # Time again on a database kept by an earlier --keep-db run (loading 50 M rows
        # takes a quarter of an hour; the figures should be taken on a quiet machine).
        database = ThrowawayDatabase(base_database_url(), "unused", keep=True)
        database.name, database.url = args.use_db, url_with_database(database.base_url, args.use_db)
        figures = load_figures(args.use_db)
    else:
        database = ThrowawayDatabase(
            base_database_url(), "tracker_bench_history", keep=args.keep_db
        )
    try:
        if not args.use_db:
            database.create()
            database.migrate()
            figures = load(database.url, args.people, args.days, args.hours, zone)
            if args.keep_db:
                save_figures(database.name, figures)
        rows = (
            []
            if args.only_browser
            else measure(database.url, figures, args.people, args.hours, args.runs)
        )
        browser_rows = measure_browser(database.url, figures, args.hours) if args.browser else []
    finally:
        database.drop()
    print()
    print(machine_note())
    print(
        f"loaded {figures['rows']:,} positions with COPY at "
        f"{figures['copy_rows_per_s']:,.0f} rows/s (the raw reference rate of this run); "
        "index builds: " + ", ".join(f"{k} {v:.0f} s" for k, v in figures["index_s"].items())
    )
    if rows:
        print(markdown_table(["query", "size", "median ms", "p95 ms", "target ms"], rows))
    if browser_rows:
        print("\nThe replay page in headless Chromium (WebGL by SwiftShader, on the CPU):")
        print(markdown_table(["measure", "value", "target"], browser_rows))
    print(
        f"\ncommand: .venv/bin/python bench/history.py --people {args.people} "
        f"--days {args.days} --hours {args.hours:g} --runs {args.runs}"
        + (" --browser" if args.browser else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
