"""The command-centre live map in a real browser against the real server process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import ROOT, ServerProcess
from tests.e2e.chromium import wait_until
from tests.e2e.phones import TestPhone, now_ms

ARTIFACTS = ROOT / "var" / "artifacts"
VOLUNTEER_COLOR = "#e67e22"
STALE_COLOR = "#a3aab2"


def shot(page, name: str) -> None:
    """Save a screenshot of a key step as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def poll(check: Callable[[], Any], deadline_s: float) -> Any:
    """Return check()'s first truthy value within the deadline, else its last value."""
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


def open_map(browser, url: str, username: str, password: str, locale: str = "en-US"):
    """Log in through the login page and return the map page once it has synced."""
    context = browser.new_context(viewport={"width": 1400, "height": 850}, locale=locale)
    page = context.new_page()
    page.goto(f"{url}/")
    page.wait_for_url(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    wait_until(page, "document.body.dataset.synced", 15)
    return page


def drawn(page, person_id: int) -> dict[str, Any] | None:
    """Return the person's marker as the map's people source holds it."""
    return page.evaluate("id => window.__tracker.drawn(id)", person_id)


def on_duty_phone(url: str, token: str) -> TestPhone:
    """Connect a test phone and start its shift, so the default on-duty filter shows it."""
    phone = TestPhone(url, token).connect()
    assert phone.call("duty", {"on": True})["ok"] is True
    return phone


@pytest.fixture()
def quick_server(database_url: str) -> Iterator[ServerProcess]:
    """Run a server whose people go stale after 3 s and whose feed pushes every 0.5 s."""
    proc = ServerProcess(database_url, {"STALE_AFTER_S": "3", "LIVE_INTERVAL": "0.5"})
    proc.start()
    yield proc
    proc.stop()


def test_a_phone_appears_moves_and_goes_grey(
    quick_server, browser, make_unit, make_phone, make_user
):
    url = quick_server.url
    grid = make_unit("第9网格 Grid 9", "grid")
    person = make_phone("volunteer", grid, name="李娜 Li Na")
    page = open_map(browser, url, *make_user("dispatcher"))
    shot(page, "map-01-logged-in")
    phone = on_duty_phone(url, person.token)
    try:
        ts = now_ms()
        assert phone.send([{"ts": ts, "lat": 39.9301, "lon": 116.4101, "accuracy": 8}])["ok"]
        marker = poll(lambda: drawn(page, person.person_id), 2.0)
        assert marker is not None, "the fix did not appear on the map within 2 s"
        assert marker["lon"] == pytest.approx(116.4101) and marker["lat"] == pytest.approx(39.9301)
        assert marker["stale"] is False and marker["color"] == VOLUNTEER_COLOR
        assert marker["moving"] is False
        shot(page, "map-02-marker")

        moved = {"ts": ts + 1000, "lat": 39.9311, "lon": 116.4121, "speed": 1.5, "heading": 45}
        assert phone.send([moved])["ok"]
        marker = poll(
            lambda: (m := drawn(page, person.person_id)) and m["lon"] != 116.4101 and m, 2.0
        )
        assert marker, "the next fix did not move the marker"
        assert marker["lon"] == pytest.approx(116.4121) and marker["lat"] == pytest.approx(39.9311)
        assert marker["moving"] is True
        shot(page, "map-03-moved")

        marker = poll(lambda: (m := drawn(page, person.person_id)) and m["stale"] and m, 10.0)
        assert marker, "the person did not go grey after STALE_AFTER_S"
        assert marker["color"] == STALE_COLOR and marker["moving"] is False
        assert int(page.text_content("#count-stale")) >= 1
        shot(page, "map-04-stale")
    finally:
        phone.close()
        page.context.close()


def test_clicking_a_person_shows_details_and_todays_trail(
    server, browser, make_unit, make_phone, make_user
):
    grid = make_unit("第8网格 Grid 8", "grid")
    person = make_phone("patrol", grid, name="周强 Zhou Qiang")
    phone = on_duty_phone(server.url, person.token)
    ts = now_ms()
    fixes = [
        {"ts": ts - 20_000 + 5_000 * i, "lat": 39.92 + 0.0005 * i, "lon": 116.40, "battery": 0.8}
        for i in range(4)
    ]
    assert phone.send(fixes)["ok"]
    # Scoped to the grid so that no one else's marker can sit under the click.
    page = open_map(browser, server.url, *make_user("dispatcher", grid))
    try:
        marker = drawn(page, person.person_id)
        assert marker is not None and marker["lat"] == pytest.approx(39.9215)
        page.evaluate(
            "id => { const d = window.__tracker.drawn(id);"
            " window.__tracker.map.jumpTo({center: [d.lon, d.lat], zoom: 16}); }",
            person.person_id,
        )
        page.wait_for_timeout(300)
        point = page.evaluate(
            "id => { const t = window.__tracker, d = t.drawn(id);"
            " const p = t.map.project([d.lon, d.lat]);"
            " const r = t.map.getCanvas().getBoundingClientRect();"
            " return [r.left + p.x, r.top + p.y]; }",
            person.person_id,
        )
        page.mouse.click(*point)
        page.wait_for_selector("#person-card:not([hidden])")
        assert page.text_content("#card-name") == "周强 Zhou Qiang"
        details = page.text_content("#card-details")
        assert "Patrol" in details and "第8网格 Grid 8" in details and "80%" in details
        wait_until(
            page, "document.getElementById('card-trail').textContent.startsWith('4 fixes today')"
        )
        trail = page.evaluate(
            "window.__tracker.map.getSource('trail').serialize().data.features[0].geometry"
        )
        assert trail["type"] == "LineString" and len(trail["coordinates"]) == 4
        shot(page, "map-05-trail")

        assert phone.send([{"ts": ts + 1000, "lat": 39.9225, "lon": 116.4005}])["ok"]
        page.check("#card-follow")
        extended = poll(
            lambda: (
                page.evaluate(
                    "window.__tracker.map.getSource('trail').serialize().data"
                    ".features[0].geometry.coordinates.length"
                )
                == 5
            ),
            5.0,
        )
        assert extended, "the trail was not extended by the live fix"
    finally:
        phone.close()
        page.context.close()


def test_filters_by_role_duty_unit_and_name(server, browser, make_unit, make_phone, make_user):
    street = make_unit("测试街道 Test Street", "street")
    grid_a = make_unit("东网格 East", "grid", street)
    grid_b = make_unit("西网格 West", "grid", street)
    chief = make_phone("street_chief", grid_a, name="孙丽 Sun Li")
    worker = make_phone("grid_worker", grid_b, name="钱伟 Qian Wei")
    off_duty = make_phone("volunteer", grid_b, name="吴敏 Wu Min")
    phones = [on_duty_phone(server.url, p.token) for p in (chief, worker)]
    phones.append(TestPhone(server.url, off_duty.token).connect())
    for n, phone in enumerate(phones):
        assert phone.send([{"ts": now_ms(), "lat": 39.91 + n * 0.001, "lon": 116.39}])["ok"]
    page = open_map(browser, server.url, *make_user("viewer", street))
    try:
        ids = {chief.person_id, worker.person_id, off_duty.person_id}

        def shown() -> set[int]:
            return set(page.evaluate("window.__tracker.drawnIds()")) & ids

        assert shown() == {chief.person_id, worker.person_id}
        page.click("[data-duty=all]")
        assert poll(lambda: shown() == ids, 2.0)
        page.uncheck('[data-role="grid_worker"] input')
        assert poll(lambda: shown() == {chief.person_id, off_duty.person_id}, 2.0)
        page.check('[data-role="grid_worker"] input')
        page.click(f'#unit-tree button[data-unit="{grid_a}"]')
        assert poll(lambda: shown() == {chief.person_id}, 2.0)
        page.click('#unit-tree button[data-unit=""]')
        page.fill("#search", "qian")
        assert poll(lambda: shown() == {worker.person_id}, 2.0)
        shot(page, "map-06-filtered")
    finally:
        for phone in phones:
            phone.close()
        page.context.close()


def test_switching_language_changes_visible_strings(server, browser, make_user):
    username, password = make_user("admin")
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    try:
        page.goto(f"{server.url}/login")
        assert page.text_content("button[type=submit]").strip() == "Log in"
        page.click("[data-lang-choice=zh_CN]")
        wait_until(
            page, "document.querySelector('button[type=submit]').textContent.trim() === '登录'"
        )
        assert page.get_attribute("html", "lang") == "zh-CN"
        shot(page, "lang-01-login-zh")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/")
        wait_until(page, "document.body.dataset.synced")
        assert page.text_content(".brand-name") == "指挥中心"
        assert page.text_content("#logout").strip() == "退出登录"
        assert page.text_content("#live-status") == "实时"
        shot(page, "lang-02-map-zh")
        page.click("[data-lang-choice=en]")
        wait_until(page, "document.querySelector('.brand-name').textContent === 'Command centre'")
        wait_until(page, "document.body.dataset.synced")
        assert page.text_content("#logout").strip() == "Log out"
        assert page.text_content("#live-status") == "Live"
        shot(page, "lang-03-map-en")
    finally:
        context.close()


def test_browser_language_is_the_default(server, browser):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{server.url}/login")
        assert page.text_content("button[type=submit]").strip() == "登录"
    finally:
        context.close()


def test_logout_ends_access(server, browser, make_user):
    page = open_map(browser, server.url, *make_user("admin"))
    try:
        page.click("#logout")
        page.wait_for_url(f"{server.url}/login")
        shot(page, "logout-01")
        status = page.evaluate("fetch('/api/v1/live').then(r => r.status)")
        assert status == 401
        page.goto(f"{server.url}/")
        assert page.url == f"{server.url}/login"
    finally:
        page.context.close()


LIVE_AT_JS = """
new MutationObserver(() => {
  const status = document.getElementById('live-status');
  if (status?.dataset.state === 'live' && window.__liveAt === undefined) {
    window.__liveAt = performance.now();
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


def test_first_load_takes_the_prefetched_scripts_and_draws_before_the_socket_connects(
    server, browser, make_phone, make_user
):
    url = server.url
    person = make_phone("volunteer", name="王芳 Wang Fang")
    phone = on_duty_phone(url, person.token)
    context = browser.new_context(viewport={"width": 1400, "height": 850})
    # Note when the header first says the socket is live (set on its connect event).
    context.add_init_script(LIVE_AT_JS)
    page = context.new_page()
    try:
        assert phone.send([{"ts": now_ms(), "lat": 39.93, "lon": 116.41, "accuracy": 8}])["ok"]
        page.goto(f"{url}/login")
        # The login page prefetches the map's scripts while the password is typed.
        wait_until(
            page,
            "['maplibre-gl.js', 'command.js', 'people.js'].every(name =>"
            " performance.getEntriesByType('resource').some(r =>"
            " r.name.endsWith('/' + name) && r.responseEnd > 0))",
            15,
        )
        page.fill("#username", (login := make_user("admin"))[0])
        page.fill("#password", login[1])
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")
        wait_until(page, "document.body.dataset.synced", 15)
        loads = page.evaluate(
            """() => performance.getEntriesByType('resource').map(r => ({
                 path: new URL(r.name).pathname, query: new URL(r.name).search,
                 start: r.startTime, transfer: r.transferSize, body: r.encodedBodySize}))"""
        )
        by_path = {load["path"]: load for load in loads if not load["query"]}
        # Taken from the HTTP cache: at most a revalidation's headers went over the network,
        # not the body (static files are served with Cache-Control: no-cache).
        for path in ("/static/vendor/maplibre-gl.js", "/static/js/command.js"):
            assert by_path[path]["transfer"] < by_path[path]["body"], path
        # Everyone in the snapshot was drawn before the socket connected, and the catch-up
        # read of what the socket missed followed the connect.
        first_draw = page.evaluate(
            "performance.getEntriesByName('tracker:first-draw')[0].startTime"
        )
        live_at = page.evaluate("window.__liveAt")
        catch_up = [load for load in loads if "received_since" in load["query"]]
        assert live_at is not None and live_at > first_draw
        assert catch_up and catch_up[0]["start"] > first_draw
        assert drawn(page, person.person_id) is not None
        assert page.get_attribute("#live-status", "data-state") == "live"
    finally:
        phone.close()
        context.close()
