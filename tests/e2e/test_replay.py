"""The replay page in a real browser: the slider's positions checked against PostGIS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT
from tests.e2e.chromium import wait_until
from tests.e2e.phones import TestPhone, now_ms

SCREENSHOT = ROOT / "docs" / "img" / "replay-zh.png"
# The walker's fixes, seconds after `base`: a walk, then a 15-minute hole, then more walk.
WALK = [
    (0, 39.900000, 116.400000),
    (60, 39.900500, 116.401000),
    (120, 39.901000, 116.402000),
    (1020, 39.902000, 116.404000),
    (1080, 39.902500, 116.404500),
]
# About 2 km away: never near the walker's corner.
SIT = [(0, 39.915000, 116.420000), (60, 39.915010, 116.420010), (120, 39.915020, 116.420020)]
LEAD_S = 600  # the range starts this long before the first fix


def iso(epoch_s: float) -> str:
    """Return an epoch time as ISO-8601 in UTC."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


def send(url: str, token: str, base: int, fixes: list[tuple[int, float, float]]) -> None:
    """Store fixes through the real /device ingest."""
    phone = TestPhone(url, token).connect()
    try:
        batch = [
            {"ts": (base + dt) * 1000, "lat": lat, "lon": lon, "accuracy": 5}
            for dt, lat, lon in fixes
        ]
        assert phone.send(batch)["ok"]
    finally:
        phone.close()


def stored(database_url: str, person_id: int, epoch_s: int) -> tuple[float, float]:
    """Return the (lon, lat) PostGIS holds for a person's fix at a time."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT ST_X(geom), ST_Y(geom) FROM positions"
                    " WHERE person_id = :p AND ts = to_timestamp(:ts)"
                ),
                {"p": person_id, "ts": epoch_s},
            ).one()
    finally:
        engine.dispose()
    return float(row[0]), float(row[1])


@pytest.fixture()
def replay_scene(server, database_url, make_unit, make_phone, make_user) -> Iterator[dict]:
    """Create a street with a walker and a sitter, another street's person, and their fixes."""
    tag = uuid.uuid4().hex[:4]
    street = make_unit(f"回放街道 Replay Street {tag}", "street")
    grid = make_unit("回放网格 Replay Grid", "grid", street)
    other = make_unit(f"别的街道 Other Street {tag}", "street")
    walker = make_phone("volunteer", grid, name="张伟 Zhang Wei")
    sitter = make_phone("grid_worker", grid, name="刘洋 Liu Yang")
    outsider = make_phone("patrol", other, name="外人 Outsider")
    base = now_ms() // 1000 - 3600
    send(server.url, walker.token, base, WALK)
    send(server.url, sitter.token, base, SIT)
    send(server.url, outsider.token, base, [(60, 39.900500, 116.401000)])
    yield {
        "street": street,
        "walker": walker.person_id,
        "sitter": sitter.person_id,
        "outsider": outsider.person_id,
        "base": base,
        "viewer": make_user("viewer", street),
        "database_url": database_url,
    }


def open_replay(browser, url: str, scene: dict, locale: str) -> Any:
    """Log in as the street's viewer and open the replay of the scene's range."""
    context = browser.new_context(viewport={"width": 1400, "height": 850}, locale=locale)
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("#username", scene["viewer"][0])
    page.fill("#password", scene["viewer"][1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    start = scene["base"] - LEAD_S
    query = urlencode(
        {"from": iso(start), "to": iso(start + 2400), "unit": scene["street"], "t": 0}
    )
    page.goto(f"{url}/replay?{query}")
    wait_until(page, "window.__replay && window.__replay.ready", 20)
    wait_until(page, "document.body.dataset.replayLoaded", 20)
    return page


def at(page, t: float) -> None:
    """Wait until the page has drawn a frame at t."""
    wait_until(page, f"Number(document.body.dataset.replayT) === {t}")


def drawn(page) -> dict[int, list[float]]:
    """Return the positions drawn at the last frame, by person id."""
    return {int(k): v for k, v in page.evaluate("window.__replay.drawn()").items()}


def test_slider_positions_match_postgis_and_near_finds_the_walker(server, browser, replay_scene):
    scene = replay_scene
    base, walker, sitter = scene["base"], scene["walker"], scene["sitter"]
    db_url = scene["database_url"]
    page = open_replay(browser, server.url, scene, "zh-CN")
    try:
        everyone = page.evaluate("Object.keys(window.__replay.positionsAt(0)).map(Number)")
        assert set(everyone) == {walker, sitter}, "the replay left the viewer's street"

        # At a fix time (the real slider, by fill): exactly the stored point.
        page.fill("#replay-slider", str(LEAD_S + 60))
        at(page, LEAD_S + 60)
        assert drawn(page)[walker] == pytest.approx(stored(db_url, walker, base + 60), abs=1e-9)
        assert drawn(page)[sitter] == pytest.approx(stored(db_url, sitter, base + 60), abs=1e-9)

        # Halfway between two fixes (the slider, by keyboard): the interpolation of the two.
        page.focus("#replay-slider")
        for _ in range(30):
            page.keyboard.press("ArrowRight")
        at(page, LEAD_S + 90)
        a = stored(db_url, walker, base + 60)
        b = stored(db_url, walker, base + 120)
        halfway = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]
        assert drawn(page)[walker] == pytest.approx(halfway, abs=1e-6)

        # The hook moves the slider as well; a quarter of the way through a 60 s step.
        page.evaluate(f"window.__replay.setTime({LEAD_S + 15})")
        at(page, LEAD_S + 15)
        assert page.input_value("#replay-slider") == str(LEAD_S + 15)
        a, b = stored(db_url, walker, base), stored(db_url, walker, base + 60)
        quarter = [a[0] + (b[0] - a[0]) / 4, a[1] + (b[1] - a[1]) / 4]
        assert drawn(page)[walker] == pytest.approx(quarter, abs=1e-6)

        # Inside the 15-minute hole (longer than the 5-minute limit): missing, no jump.
        page.evaluate(f"window.__replay.setTime({LEAD_S + 500})")
        at(page, LEAD_S + 500)
        assert walker not in drawn(page)
        assert page.evaluate(f"window.__replay.positionsAt({LEAD_S + 500})")[str(walker)] is None
        # After the hole the walker is back, at the stored point.
        page.fill("#replay-slider", str(LEAD_S + 1020))
        at(page, LEAD_S + 1020)
        assert drawn(page)[walker] == pytest.approx(stored(db_url, walker, base + 1020), abs=1e-9)

        # The URL holds the state, so a colleague opens the same moment.
        wait_until(page, f"location.search.includes('t={LEAD_S + 1020}')")
        query = parse_qs(urlparse(page.url).query)
        assert query["unit"] == [str(scene["street"])] and query["speed"] == ["60"]

        # Who was near: the walker's corner at base+60, ±10 min, 200 m.
        page.evaluate(f"window.__replay.setTime({LEAD_S + 60})")
        at(page, LEAD_S + 60)
        page.click("#near-toggle")
        point = page.evaluate(
            "([lon, lat]) => window.__replay.screenPoint(lon, lat)", [116.401, 39.9005]
        )
        page.mouse.click(*point)
        wait_until(page, "document.body.dataset.nearLoaded")
        rows = page.eval_on_selector_all(
            "#near-list .near-row", "rows => rows.map(r => r.dataset.person)"
        )
        assert rows == [str(walker)]
        circle = page.evaluate("window.__replay.map.getSource('replay-near').serialize().data")
        assert len(circle["features"]) == 1
        page.click(f'#near-list .near-row[data-person="{walker}"]')
        # `entered` is the first fix within the radius in the window: the walk's start.
        at(page, LEAD_S)
        assert page.input_value("#replay-slider") == str(LEAD_S)

        # Click the walker: the card at t names the person, the role and the last fix.
        page.evaluate(f"window.__replay.setTime({LEAD_S + 75})")
        at(page, LEAD_S + 75)
        lon_lat = drawn(page)[walker]
        page.evaluate(
            "([lon, lat]) => window.__replay.map.jumpTo({center: [lon, lat], zoom: 17})", lon_lat
        )
        page.wait_for_timeout(300)
        page.mouse.click(
            *page.evaluate("([lon, lat]) => window.__replay.screenPoint(lon, lat)", lon_lat)
        )
        page.wait_for_selector("#replay-card:not([hidden])")
        assert page.text_content("#replay-card-name") == "张伟 Zhang Wei"
        details = page.text_content("#replay-card-details")
        last_fix = page.evaluate(
            "iso => new Date(iso).toLocaleTimeString('zh-CN',"
            " {hour: '2-digit', minute: '2-digit', second: '2-digit'})",
            iso(base + 60),
        )
        assert "志愿者" in details and last_fix in details
        page.evaluate("window.__replay.map.zoomOut({duration: 0})")
        page.wait_for_timeout(300)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
    finally:
        page.context.close()


def test_play_advances_time_and_the_link_is_on_the_live_map(server, browser, replay_scene):
    page = open_replay(browser, server.url, replay_scene, "en-US")
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    try:
        # Narrow to chosen people with the picker: only the walker is replayed. The
        # outsider (another street) is never offered.
        page.fill("#replay-person-search", "Outsider")
        wait_until(page, "document.body.dataset.peopleFound === '0'")
        page.fill("#replay-person-search", "Zhang Wei")
        wait_until(page, "document.body.dataset.peopleFound === '1'")
        page.click(f'#replay-person-results li[data-person="{replay_scene["walker"]}"]')
        chips = page.eval_on_selector_all(
            "#replay-chosen .chip", "cs => cs.map(c => c.dataset.person)"
        )
        assert chips == [str(replay_scene["walker"])]
        page.click("#replay-load")
        wait_until(page, "location.search.includes('people=')")
        wait_until(page, "document.body.dataset.replayLoaded")
        shown = page.evaluate("Object.keys(window.__replay.positionsAt(0)).map(Number)")
        assert shown == [replay_scene["walker"]]
        page.select_option("#replay-speed", "600")
        page.click("#replay-play")
        wait_until(page, f"window.__replay.time() > {LEAD_S}", 10)
        page.click("#replay-play")
        assert page.text_content("#replay-play").strip() == "Play"
        wait_until(page, "location.search.includes('speed=600')")
        page.goto(f"{server.url}/")
        page.click("#replay-link")
        page.wait_for_url(f"{server.url}/replay**")
        wait_until(page, "window.__replay && window.__replay.ready", 20)
        # The default range is the last two hours.
        span = page.evaluate(
            "(() => { const s = window.__replay.state();"
            " return (Date.parse(s.to) - Date.parse(s.from)) / 1000; })()"
        )
        assert span == 7200
        assert errors == []
    finally:
        page.context.close()


def test_an_area_drawn_on_the_replay_finds_who_was_inside(server, browser, replay_scene):
    scene = replay_scene
    page = open_replay(browser, server.url, scene, "zh-CN")
    try:
        page.evaluate(f"window.__replay.setTime({LEAD_S + 60})")
        at(page, LEAD_S + 60)
        page.evaluate("window.__replay.map.jumpTo({center: [116.401, 39.9005], zoom: 15})")
        page.wait_for_timeout(300)
        page.click("#near-area")
        wait_until(page, "document.body.dataset.drawMode === 'polygon'")  # terra-draw loaded
        assert page.is_visible("#near-area-hint")
        # A square of about 170 m round the walker's corner: the sitter is 2 km away.
        corners = [(116.400, 39.8998), (116.402, 39.8998), (116.402, 39.9012), (116.400, 39.9012)]
        for lon, lat in [*corners, corners[0]]:
            point = page.evaluate(
                "([lon, lat]) => window.__replay.screenPoint(lon, lat)", [lon, lat]
            )
            page.mouse.click(*point)
            page.wait_for_timeout(150)
        wait_until(page, "document.body.dataset.nearLoaded")
        rows = page.eval_on_selector_all(
            "#near-list .near-row", "rows => rows.map(r => r.dataset.person)"
        )
        assert rows == [str(scene["walker"])]
        drawn_area = page.evaluate("window.__replay.map.getSource('replay-near').serialize().data")
        ring = drawn_area["features"][0]["geometry"]["coordinates"][0]
        assert len(ring) == 5
        for (lon, lat), want in zip(ring, [*corners, corners[0]], strict=True):
            assert (lon, lat) == pytest.approx(want, abs=2e-5)  # a click is a pixel, ~2 m here
        assert page.get_attribute("#near-area", "aria-pressed") == "false"
    finally:
        page.context.close()


def test_only_people_seen_in_the_view_are_replayed(server, browser, replay_scene):
    scene = replay_scene
    page = open_replay(browser, server.url, scene, "en-US")
    try:
        # Zoom onto the walker's corner (the sitter is 2 km away), then narrow to the view.
        page.evaluate("window.__replay.map.jumpTo({center: [116.401, 39.9005], zoom: 16})")
        page.check("#replay-viewport")
        page.click("#replay-load")
        wait_until(page, "location.search.includes('view=')")
        wait_until(page, "document.body.dataset.replayLoaded")
        everyone = page.evaluate("Object.keys(window.__replay.positionsAt(600)).map(Number)")
        assert everyone == [scene["walker"]]
        # The shared link keeps the view: a reload replays the same people.
        page.reload()
        wait_until(page, "window.__replay && window.__replay.ready", 20)
        wait_until(page, "document.body.dataset.replayLoaded", 20)
        assert page.is_checked("#replay-viewport")
        everyone = page.evaluate("Object.keys(window.__replay.positionsAt(600)).map(Number)")
        assert everyone == [scene["walker"]]
    finally:
        page.context.close()
