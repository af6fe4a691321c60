"""The first view fits the account's area, never a stale fix far away; "fit my area" returns."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.chromium import wait_until
from tests.e2e.phones import TestPhone, now_ms
from tests.e2e.test_command_centre import D, admin_http, street_with_grid
from tests.e2e.test_map_page import open_map, shot


def view_bounds(page) -> dict[str, float]:
    """Return the map's view as WGS-84 west/south/east/north."""
    return page.evaluate(
        "() => { const t = window.__tracker, b = t.map.getBounds();"
        " const [w, s] = t.unproject(b.getWest(), b.getSouth());"
        " const [e, n] = t.unproject(b.getEast(), b.getNorth());"
        " return {w, s, e, n}; }"
    )


def covers(view: dict[str, float], west: float, south: float, east: float, north: float) -> bool:
    """Return whether the view contains the box."""
    return view["w"] <= west and view["s"] <= south and view["e"] >= east and view["n"] >= north


def phone_with_fix(server: Any, token: str, lon: float, lat: float, age_s: float) -> TestPhone:
    """Connect a phone, go on duty and report one fix `age_s` old."""
    phone = TestPhone(server.url, token).connect()
    assert phone.call("duty", {"on": True})["ok"]
    assert phone.send([{"ts": now_ms() - int(age_s * 1000), "lat": lat, "lon": lon}])["ok"]
    return phone


def test_a_street_account_opens_on_its_street_despite_a_stale_fix_on_another_continent(
    server, browser, make_user, make_phone
):
    lon, lat = 104.0760, 30.6520  # 成都
    http = admin_http(server, make_user)
    street_id, grid_id, _ = street_with_grid(server, http, lon, lat)
    # The street's square (see street_with_grid) and the grid inside it.
    street_box = (lon - 2 * D, lat - 2 * D, lon + 8 * D, lat + 8 * D)
    abroad = make_phone("volunteer", grid_id, name=f"在外 Abroad {uuid.uuid4().hex[:4]}")
    phone = phone_with_fix(server, abroad.token, 151.2093, -33.8688, age_s=3 * 3600)  # Sydney
    page = open_map(browser, server.url, *make_user("viewer", street_id))
    try:
        wait_until(page, f"window.__tracker.drawn({abroad.person_id}) !== null", 10)
        wait_until(page, "document.getElementById('map').dataset.firstView === 'fitted'", 10)
        view = view_bounds(page)
        assert covers(view, *street_box), view
        assert view["e"] - view["w"] < 0.2 and view["n"] - view["s"] < 0.2, view
        shot(page, "first-view-street")
        # Somewhere else, then back with "fit my area".
        page.evaluate("window.__tracker.map.jumpTo({center: [121.47, 31.23], zoom: 9})")
        assert not covers(view_bounds(page), *street_box)
        page.click("#fit-area")
        wait_until(page, "!window.__tracker.map.isMoving()", 10)
        wait_until(page, "window.__tracker.map.getZoom() > 11", 10)
        view = view_bounds(page)
        assert covers(view, *street_box) and view["e"] - view["w"] < 0.2, view
    finally:
        phone.close()
        page.context.close()


def test_without_boundaries_the_recent_fixes_decide_and_a_far_one_does_not(
    server, browser, make_user, make_unit, make_phone
):
    street = make_unit(f"无边界街道 Bare {uuid.uuid4().hex[:6]}", "street")
    lon, lat = 113.2644, 23.1291  # 广州
    near = [make_phone("patrol", street) for _ in range(3)]
    far = make_phone("patrol", street)
    phones = [
        phone_with_fix(server, p.token, lon + 0.003 * i, lat + 0.002 * i, age_s=5)
        for i, p in enumerate(near)
    ]
    phones.append(phone_with_fix(server, far.token, -74.006, 40.7128, age_s=5))  # New York
    page = open_map(browser, server.url, *make_user("viewer", street))
    try:
        wait_until(page, "document.getElementById('map').dataset.firstView === 'fitted'", 10)
        view = view_bounds(page)
        assert covers(view, lon, lat, lon + 0.006, lat + 0.004), view
        assert view["e"] - view["w"] < 1, view
    finally:
        for phone in phones:
            phone.close()
        page.context.close()
