"""A person's day (/people/<id>/day) in a real browser against the real server process."""

from __future__ import annotations

import json
import math
import urllib.request
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ROOT
from tests.e2e.chromium import wait_until

ZONE = ZoneInfo("Asia/Shanghai")  # HISTORY_TIME_ZONE's default
START = (31.2304, 121.4737)  # lat, lon where the walk begins
STEP_S = 5
WALK_S = 300
STAND_S = 600
METRES_PER_DEG_LAT = 111_320.0


def synthetic_day() -> tuple[date, list[dict], dict]:
    """Return yesterday (in the history time zone), a walk–stand 10 min–walk, and its stand.

    Yesterday at 10:00 local time is inside MAX_AGE_S (7 days) and well clear of both ends
    of that local day, whatever the time of the run.
    """
    day = datetime.now(ZONE).date() - timedelta(days=1)
    t0 = datetime.combine(day, time(10, 0), ZONE).timestamp()
    lat, lon = START
    speed_mps = 1.4
    fixes = []
    t = t0
    # North for 5 min, stand 10 min with a few metres of jitter, then east for 5 min.
    for _ in range(WALK_S // STEP_S):
        fixes.append((t, lat, lon, speed_mps))
        lat += speed_mps * STEP_S / METRES_PER_DEG_LAT
        t += STEP_S
    stand = {"lat": lat, "lon": lon, "arrived": t, "left": t + STAND_S}
    for i in range(STAND_S // STEP_S):
        jitter = 3.0 * math.sin(i * 1.7) / METRES_PER_DEG_LAT
        fixes.append((t, lat + jitter, lon - jitter, 0.0))
        t += STEP_S
    east = speed_mps * STEP_S / (METRES_PER_DEG_LAT * math.cos(math.radians(lat)))
    for _ in range(WALK_S // STEP_S):
        lon += east
        fixes.append((t, lat, lon, speed_mps))
        t += STEP_S
    positions = [
        {"ts": int(ts * 1000), "lat": la, "lon": lo, "accuracy": 8, "speed": sp}
        for ts, la, lo, sp in fixes
    ]
    return day, positions, stand


def post_positions(url: str, token: str, positions: list[dict]) -> dict:
    """Send fixes through the real HTTP ingest with the device token; return the ack."""
    request = urllib.request.Request(
        f"{url}/api/v1/positions",
        data=json.dumps({"positions": positions}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def open_day(browser, url: str, account: tuple[str, str], person_id: int, day: date, locale: str):
    """Log in through the login page and open a person's day; return the page once loaded."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale=locale)
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("#username", account[0])
    page.fill("#password", account[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    page.goto(f"{url}/people/{person_id}/day?date={day.isoformat()}")
    wait_until(page, "document.body.dataset.loaded", 20)
    return page


def test_a_walk_stand_walk_day_shows_one_stop_two_trips_and_the_chart(
    server, browser, make_unit, make_phone, make_user
):
    street = make_unit("东华门街道 Donghuamen", "street")
    grid = make_unit("第3网格 Grid 3", "grid", street)
    person = make_phone("grid_worker", grid, name="王芳 Wang Fang")
    day, positions, stand = synthetic_day()
    ack = post_positions(server.url, person.token, positions)
    assert ack == {"ok": True, "stored": len(positions), "duplicates": 0, "rejected": []}

    errors: list[str] = []
    page = open_day(
        browser, server.url, make_user("viewer", street), person.person_id, day, "zh-CN"
    )
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    try:
        assert page.get_attribute("#day-status", "data-state") == "ready"
        assert page.get_attribute("html", "lang") == "zh-CN"
        wait_until(page, "document.getElementById('day-person').textContent")
        assert page.text_content("#day-person") == "王芳 Wang Fang"

        # The timeline: stop, trip order by time — trip, stop, trip.
        items = page.eval_on_selector_all(
            "#day-timeline > li",
            "items => items.map(li => ({...li.dataset}))",
        )
        assert [i["kind"] for i in items] == ["trip", "stop", "trip"]
        stop = items[1]
        arrived = datetime.fromisoformat(stop["arrived"]).timestamp()
        left = datetime.fromisoformat(stop["left"]).timestamp()
        assert arrived == pytest.approx(stand["arrived"], abs=20)
        assert left == pytest.approx(stand["left"], abs=20)
        assert 540 <= int(stop["durationS"]) <= 660
        shown = page.text_content("#day-timeline > li[data-kind=stop]")
        clock = datetime.fromtimestamp(arrived, ZONE).strftime("%H:%M:%S")
        assert clock in shown and "停留 1" in shown and "10 分钟" in shown
        assert datetime.fromisoformat(items[0]["to"]).timestamp() == pytest.approx(arrived, abs=1)
        assert datetime.fromisoformat(items[2]["from"]).timestamp() == pytest.approx(left, abs=1)
        for trip in (items[0], items[2]):
            # Each walk is 5 min at 1.4 m/s: about 420 m, less the bit inside the stop.
            assert 300 < float(trip["distanceM"]) < 460

        # The totals: the filtered distance, the raw one and what was dropped, small.
        timeline = page.evaluate("window.__day.timeline()")
        assert page.text_content("#day-distance") == f"{round(timeline['distance_m'])} 米"
        assert "原始" in page.text_content("#day-raw")

        # The chart: ECharts drew both series with one point per kept fix.
        kept = len(timeline["series"]["t"])
        assert kept == len(positions) - sum(timeline["dropped"].values())
        drawn = page.evaluate("window.__day.chart()")
        assert [(s["id"], s["points"]) for s in drawn["series"]] == [
            ("speed", kept),
            ("accuracy", kept),
        ]
        assert page.locator("#day-chart canvas").count() >= 1

        # The stop's numbered marker sits on the map at the stop's place.
        markers = page.evaluate("window.__day.stops()")
        assert len(markers) == 1 and markers[0]["visible"]
        api_stop = timeline["stops"][0]
        assert markers[0]["lon"] == pytest.approx(api_stop["lon"], abs=1e-6)
        assert markers[0]["lat"] == pytest.approx(api_stop["lat"], abs=1e-6)
        # ... which is where the person stood (within ~10 m).
        assert api_stop["lat"] == pytest.approx(stand["lat"], abs=1e-4)
        assert api_stop["lon"] == pytest.approx(stand["lon"], abs=1e-4)
        assert page.text_content(".stop-marker") == "1"

        # Clicking the stop highlights it on the map and the chart; then a trip.
        page.click("#day-timeline > li[data-kind=stop] .day-item-head")
        assert page.evaluate("window.__day.selected()") == {"kind": "stop", "index": 0}
        assert page.evaluate("window.__day.stops()[0].selected") is True
        highlighted = page.evaluate("window.__day.chart().highlighted")
        assert highlighted == [arrived * 1000, left * 1000]
        page.wait_for_timeout(700)  # the map's fly-to
        docs = ROOT / "docs" / "img"
        docs.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(docs / "person-day-zh.png"))

        page.click("#day-timeline > li[data-kind=trip][data-index='1'] .day-item-head")
        assert page.evaluate("window.__day.selected()") == {"kind": "trip", "index": 1}
        assert page.evaluate("window.__day.selectedLinePoints()") > 10
        assert page.evaluate("window.__day.stops()[0].selected") is False
        assert page.evaluate("window.__day.chart().highlighted")[0] == pytest.approx(left * 1000)

        # The day before has nothing; the next button comes back to the walk.
        page.click("#day-prev")
        wait_until(page, f"document.body.dataset.loaded === '{day - timedelta(days=1)}'")
        assert page.get_attribute("#day-status", "data-state") == "empty"
        assert page.locator("#day-timeline > li").count() == 0
        assert f"date={day - timedelta(days=1)}" in page.url
        page.click("#day-next")
        wait_until(page, f"document.body.dataset.loaded === '{day}'")
        assert page.locator("#day-timeline > li").count() == 3
        assert not [e for e in errors if "Content Security Policy" in e or "eval" in e]
    finally:
        page.context.close()


def test_a_viewer_of_another_street_gets_not_found(
    server, browser, make_unit, make_phone, make_user
):
    street = make_unit("交道口街道 Jiaodaokou", "street")
    other = make_unit("景山街道 Jingshan", "street")
    person = make_phone("volunteer", street, name="李娜 Li Na")
    day, positions, _ = synthetic_day()
    assert post_positions(server.url, person.token, positions[:20])["ok"]
    page = open_day(browser, server.url, make_user("viewer", other), person.person_id, day, "en-US")
    try:
        assert page.get_attribute("#day-status", "data-state") == "not-found"
        assert "not in your scope" in page.text_content("#day-status")
        assert page.locator("#day-timeline > li").count() == 0
        assert page.evaluate("window.__day.timeline()") is None
        assert page.text_content("#day-person") == ""
    finally:
        page.context.close()
