"""Measure the live map in headless Chromium with 20,000 people and a full update every second.

The page is the real one, served by the real server and loaded from /api/v1/live with every
person on the map. The first load runs from the click on the login form's button (the time
of its click event; the table also gives it from Playwright's click() call) until everyone
is drawn: the markers layer drew all of them in the last frame and the map has
loaded everything else in view (map.loaded()), checked on every frame. Then each second a
`positions` message moving everyone is parsed and applied exactly as the /live handler
does (JSON.parse, then window.__tracker.applyPositions), so the figures are those of the
browser alone: time until an update is drawn, frame times while updates stream, and the JS
heap.

    .venv/bin/python bench/map_browser.py [--people 20000] [--updates 20]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from bench._common import (  # noqa: E402
    LOG_DIR,
    Server,
    ThrowawayDatabase,
    base_database_url,
    command_line,
    machine_note,
    markdown_table,
    percentile,
)
from tests.e2e.chromium import launch, wait_until  # noqa: E402

CENTER = (116.397, 39.916)
ROLES = ("volunteer", "street_chief", "grid_worker", "patrol")

# Runs in the login page before the click: note when the button's click event happened, in
# epoch ms. Playwright's click() first waits for the button to be visible and stable, and
# that wait (40-450 ms here) is not part of what a person who clicks waits for.
CLICK_JS = """
() => {
  const button = document.querySelector('button[type=submit]');
  button.addEventListener('click', (event) => {
    sessionStorage.setItem('bench:clicked', String(performance.timeOrigin + event.timeStamp));
  });
}
"""

# Runs in the page once everyone is drawn: where the first load's time went, in ms from the
# page's navigation start (the login's answer), and what the snapshot weighed.
LOAD_JS = """
() => {
  // The first read of /api/v1/live is the snapshot (a catch-up read may follow it).
  const snapshot = performance.getEntriesByType('resource')
    .find(r => new URL(r.name).pathname === '/api/v1/live');
  const mark = name => performance.getEntriesByName(name)[0]?.startTime ?? null;
  return {
    origin: performance.timeOrigin,
    dom_ready: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
    snapshot_requested: snapshot?.requestStart ?? null,
    snapshot_received: snapshot?.responseEnd ?? null,
    snapshot_server_ms: snapshot ? snapshot.responseStart - snapshot.requestStart : null,
    snapshot_bytes: snapshot?.encodedBodySize ?? null,
    snapshot_parsed: mark('tracker:snapshot'),
    handed_to_map: mark('tracker:first-draw'),
    map_load: mark('load'),
  };
}
"""

# Runs in the page: build the next full update as the server would send it, then time
# parse + apply + draw until the map is idle again (the update is on screen).
UPDATE_JS = """
async ([step, moveDeg]) => {
  const t = window.__tracker;
  const now = new Date().toISOString();
  const items = window.__bench.people.map((p, i) => {
    p.lon += Math.cos(i + step) * moveDeg;
    p.lat += Math.sin(i + step) * moveDeg;
    return {person_id: p.id, name: p.name, role: p.role, unit_id: null, on_duty: true,
            ts: now, lon: p.lon, lat: p.lat, accuracy: 8, speed: 1.4,
            heading: (i * 37 + step * 10) % 360, battery: 0.8};
  });
  const message = JSON.stringify({positions: items});
  const idle = new Promise(resolve => t.map.once('idle', resolve));
  const started = performance.now();
  t.applyPositions(JSON.parse(message).positions);
  t.renderNow();
  const applied = performance.now();
  await idle;
  return {apply_ms: applied - started, drawn_ms: performance.now() - started};
}
"""

SETUP_JS = """
() => {
  const t = window.__tracker;
  window.__bench = {people: Array.from(t.people.values()).map(p => ({id: p.id, lon: p.lon,
    lat: p.lat, role: p.role, name: p.name}))};
  window.__frames = [];
  let last = performance.now();
  const tick = now => {
    window.__frames.push(now - last);
    last = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  return window.__bench.people.length;
}
"""


def seed(database_url: str, people: int) -> tuple[str, str]:
    """Store `people` people on duty around the centre, each with a fix; return a login."""
    from tracker import create_app, store
    from tracker.auth import hash_password
    from tracker.extensions import db
    from tracker.models import Device, Person, Shift

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    rng = random.Random(20_000)
    now = datetime.now(UTC)
    with app.app_context():
        db.session.execute(
            insert(Person),
            [{"name": f"人员 {n}", "role": ROLES[n % len(ROLES)]} for n in range(people)],
        )
        ids = list(db.session.execute(db.select(Person.id).order_by(Person.id)).scalars())
        db.session.execute(insert(Shift), [{"person_id": pid} for pid in ids])
        # Positions are stored only for active devices, so each person gets one.
        devices = db.session.execute(
            insert(Device).returning(Device.person_id, Device.id),
            [{"person_id": pid, "label": "bench", "token_hash": uuid.uuid4().hex} for pid in ids],
        )
        device_of = dict(devices.tuples().all())
        for day in {now.date(), (now - timedelta(minutes=1)).date()}:
            store.positions.ensure_partition(db.session, day)
        # Spread over about 20 km x 20 km: a large city district.
        rows = [
            store.positions.PositionRow(
                pid,
                device_of[pid],
                now - timedelta(seconds=rng.uniform(0, 60)),
                CENTER[1] + rng.uniform(-0.09, 0.09),
                CENTER[0] + rng.uniform(-0.12, 0.12),
                accuracy_m=8,
                speed_mps=1.4,
                heading_deg=rng.uniform(0, 360),
                battery=0.8,
            )
            for pid in ids
        ]
        store.positions.insert_positions(db.session, rows)
        password = uuid.uuid4().hex
        store.accounts.add_user(db.session, "bench", hash_password(password), "admin", None)
        db.session.commit()
        db.engine.dispose()
    return "bench", password


def run(people: int, updates: int) -> None:
    """Seed, serve, load the page and stream full updates; print the figures."""
    from playwright.sync_api import sync_playwright

    database = ThrowawayDatabase(base_database_url(), "bench_map")
    database.create()
    server: Server | None = None
    try:
        database.migrate()
        username, password = seed(database.url, people)
        # Everything on the map at once: the worst case, no viewport narrowing.
        server = Server(database.url, {"LIVE_VIEWPORT_MIN_PEOPLE": str(people * 10)})
        server.start()
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 850})
            page.goto(f"{server.base_url}/login")
            page.fill("#username", username)
            page.fill("#password", password)
            page.evaluate(CLICK_JS)
            # Epoch milliseconds, so that times on the login page and the map page compare.
            click_called = page.evaluate("performance.timeOrigin + performance.now()")
            page.click("button[type=submit]")
            page.wait_for_url(f"{server.base_url}/", wait_until="commit")
            wait_until(
                page,
                "window.__tracker && window.__tracker.map.loaded()"
                f" && window.__tracker.markersDrawn() >= {people}",
                120,
            )
            drawn = page.evaluate("performance.timeOrigin + performance.now()")
            clicked = float(page.evaluate("sessionStorage.getItem('bench:clicked')"))
            load = page.evaluate(LOAD_JS)
            # Pushes come only over a connected socket, after the catch-up read (`synced`):
            # the updates start from there, not while the page still connects.
            wait_until(page, "document.body.dataset.synced", 60)
            assert page.evaluate(SETUP_JS) == people
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            results = []
            for step in range(updates):
                started = page.evaluate("performance.now()")
                results.append(page.evaluate(UPDATE_JS, [step, 0.0001]))
                # One full update per second, as the feed would send at LIVE_INTERVAL=1.
                rest = 1000 - (page.evaluate("performance.now()") - started)
                if rest > 0:
                    page.wait_for_timeout(rest)
            frames = sorted(page.evaluate("window.__frames"))
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            LOG_DIR.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(LOG_DIR / f"map-{people}.png"))
            browser.close()
    finally:
        if server is not None:
            server.stop()
        database.drop()

    def since_click(page_ms: float | None) -> str:
        """Return a time of the map page as ms since the click on the login button."""
        return "–" if page_ms is None else f"{load['origin'] + page_ms - clicked:.0f} ms"

    apply_ms = sorted(r["apply_ms"] for r in results)
    drawn_ms = sorted(r["drawn_ms"] for r in results)
    heap_mib = metrics.get("JSHeapUsedSize", math.nan) / 2**20
    print(f"# Live map, {people:,} people, {updates} full updates at 1 per second")
    print(f"{command_line()}\n{machine_note()}; headless Chromium, WebGL via SwiftShader (CPU)\n")
    rows = [
        ["first load (login → all drawn)", f"{drawn - clicked:.0f} ms", "", ""],
        ["· the same from Playwright's click() call", f"{drawn - click_called:.0f} ms", "", ""],
        ["· login answered, map page requested", since_click(0), "", ""],
        ["· page's scripts run (DOMContentLoaded)", since_click(load["dom_ready"]), "", ""],
        ["· snapshot requested", since_click(load["snapshot_requested"]), "", ""],
        ["· snapshot received", since_click(load["snapshot_received"]), "", ""],
        ["· snapshot parsed", since_click(load["snapshot_parsed"]), "", ""],
        ["· people handed to the map (setData)", since_click(load["handed_to_map"]), "", ""],
        ["· map's first full render (MapLibre's load)", since_click(load["map_load"]), "", ""],
        [
            "snapshot: server time (request → first byte)",
            f"{load['snapshot_server_ms']:.0f} ms" if load["snapshot_server_ms"] else "–",
            "",
            "",
        ],
        ["snapshot: size", f"{(load['snapshot_bytes'] or 0) / 2**20:.1f} MiB", "", ""],
        [
            "apply one update (parse + merge + source diff)",
            f"{statistics.median(apply_ms):.0f} ms",
            f"{percentile(apply_ms, 95):.0f} ms",
            f"{apply_ms[-1]:.0f} ms",
        ],
        [
            "update until drawn (map idle)",
            f"{statistics.median(drawn_ms):.0f} ms",
            f"{percentile(drawn_ms, 95):.0f} ms",
            f"{drawn_ms[-1]:.0f} ms",
        ],
        [
            "frame time while streaming",
            f"{statistics.median(frames):.1f} ms",
            f"{percentile(frames, 95):.1f} ms",
            f"{frames[-1]:.0f} ms",
        ],
        ["JS heap used", f"{heap_mib:.0f} MiB", "", ""],
    ]
    print(markdown_table(["measure", "median", "p95", "max"], rows))


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--updates", type=int, default=20)
    args = parser.parse_args()
    run(args.people, args.updates)


if __name__ == "__main__":
    main()
