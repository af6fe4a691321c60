"""The units page in a real browser: a grid drawn with terra-draw is stored as drawn."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT
from tests.e2e.chromium import wait_until
from tests.e2e.staff import staff_session

LON, LAT = 121.47, 31.23  # away from the other browser tests' grids
SCREENSHOT = ROOT / "docs" / "img" / "admin-units-zh.png"


def square(lon: float, lat: float, d: float) -> dict:
    """Return a square Polygon centred on lon/lat."""
    ring = [
        [lon - d, lat - d],
        [lon + d, lat - d],
        [lon + d, lat + d],
        [lon - d, lat + d],
        [lon - d, lat - d],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.fixture()
def engine(database_url: str):
    """Return an engine on the test database, to read what the server stored."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def open_units_page(browser, url: str, username: str, password: str):
    """Log in through the login page in Chinese and open /admin/units once it is ready."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    page.goto(f"{url}/admin/units")
    wait_until(page, "document.body.dataset.ready", 20)
    return page


def canvas_pixel(page, lon: float, lat: float) -> list[int]:
    """Return the whole page pixel where the map draws a WGS-84 point (no GCJ-02 in tests)."""
    return page.evaluate(
        "([lon, lat]) => { const m = window.__adminUnits.map, p = m.project([lon, lat]);"
        " const r = m.getCanvas().getBoundingClientRect();"
        " return [Math.round(r.left + p.x), Math.round(r.top + p.y)]; }",
        [lon, lat],
    )


def lon_lat_at(page, x: int, y: int) -> list[float]:
    """Return the WGS-84 point under a page pixel of the map."""
    return page.evaluate(
        "([x, y]) => { const m = window.__adminUnits.map;"
        " const r = m.getCanvas().getBoundingClientRect();"
        " const c = m.unproject([x - r.left, y - r.top]); return [c.lng, c.lat]; }",
        [x, y],
    )


def test_a_grid_drawn_with_terra_draw_is_stored_as_the_polygon_clicked(
    server, browser, make_user, engine
):
    tag = uuid.uuid4().hex[:6]
    http = staff_session(server, make_user)

    def create(body):
        answer = http.post(f"{server.url}/api/v1/units", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()["unit"]["id"]

    street = create({"name": f"外滩街道{tag}", "kind": "street", "parent_id": None})
    create(
        {
            "name": f"第1网格{tag}",
            "kind": "grid",
            "parent_id": street,
            "boundary": square(LON - 0.004, LAT, 0.0025),
        }
    )
    grid = create({"name": f"第2网格{tag}", "kind": "grid", "parent_id": street})
    # The street's own admin, as an office has: its page shows this street only, not the
    # units every other test left in the shared database.
    username, password = make_user("admin", street)

    page = open_units_page(browser, server.url, username, password)
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        assert page.text_content(".units-panel h1") == "单位与网格"
        page.click(f'li[data-unit-id="{grid}"] .unit-name')
        page.evaluate(
            "([lon, lat]) => new Promise(r => { const m = window.__adminUnits.map;"
            " m.once('idle', r); m.jumpTo({center: [lon, lat], zoom: 16}); })",
            [LON, LAT],
        )
        page.click("#draw-new")
        wait_until(page, "window.__adminUnits.draw.getMode() === 'polygon'")

        # Four corners, a little irregular, the first one overlapping the first grid.
        corners = [
            (LON - 0.002, LAT - 0.0015),
            (LON + 0.0025, LAT - 0.0018),
            (LON + 0.002, LAT + 0.0016),
            (LON - 0.0017, LAT + 0.0019),
        ]
        pixels = [canvas_pixel(page, lon, lat) for lon, lat in corners]
        expected = [lon_lat_at(page, x, y) for x, y in pixels]
        for x, y in pixels:
            page.mouse.move(x, y)
            page.mouse.click(x, y)
            page.wait_for_timeout(150)
        page.mouse.move(*pixels[0])
        page.mouse.click(*pixels[0])  # the first corner again closes the polygon
        wait_until(
            page,
            "window.__adminUnits.draw.getSnapshot().some(f => f.geometry.type === 'Polygon'"
            " && !f.properties.currentlyDrawing)",
        )
        page.click("#draw-save")
        wait_until(page, "document.body.dataset.saved === '1'")
        assert f"第1网格{tag}" in page.text_content("#units-notes .overlap-note")
        assert "重叠" in page.text_content("#units-notes")

        with engine.connect() as conn:
            stored = conn.execute(
                text(
                    "SELECT ST_AsGeoJSON(boundary, 15), ST_IsValid(boundary)"
                    " FROM units WHERE id = :id"
                ),
                {"id": grid},
            ).one()
        geometry = json.loads(stored[0])
        assert stored[1] is True and geometry["type"] == "MultiPolygon"
        assert len(geometry["coordinates"]) == 1 and len(geometry["coordinates"][0]) == 1
        ring = geometry["coordinates"][0][0]
        assert len(ring) == 5 and ring[0] == ring[-1]
        vertices = ring[:-1]
        for lon, lat in expected:
            assert any(abs(lon - v[0]) < 1e-6 and abs(lat - v[1]) < 1e-6 for v in vertices), (
                expected,
                vertices,
            )

        # The server's refusals are shown in the page's language: a street with grids.
        page.click(f'li[data-unit-id="{street}"] .unit-delete')
        page.wait_for_selector('#units-status[data-state="error"]')
        assert "不为空" in page.text_content("#units-status") or "非空" in page.text_content(
            "#units-status"
        )
        page.click(f'li[data-unit-id="{grid}"] .unit-name')
        page.wait_for_timeout(300)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
    finally:
        page.context.close()


def test_people_are_added_to_a_grid_by_search_and_removed_from_it(
    server, browser, make_user, engine
):
    tag = uuid.uuid4().hex[:6]
    http = staff_session(server, make_user)
    answer = http.post(
        f"{server.url}/api/v1/units",
        json={"name": f"南京东路街道{tag}", "kind": "street", "parent_id": None},
    )
    assert answer.status_code == 201, answer.text
    street = answer.json()["unit"]["id"]
    answer = http.post(
        f"{server.url}/api/v1/units",
        json={"name": f"第7网格{tag}", "kind": "grid", "parent_id": street},
    )
    assert answer.status_code == 201, answer.text
    grid = answer.json()["unit"]["id"]
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    answer = http.post(
        f"{server.url}/api/v1/people",
        json={"name": f"李娜{tag}", "role": "patrol", "phone": phone, "unit_id": street},
    )
    assert answer.status_code == 201, answer.text
    person = answer.json()["id"]
    # The street's own admin: the search sees this street's people only.
    username, password = make_user("admin", street)

    def patrol_unit() -> int | None:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT patrol_unit_id FROM people WHERE id = :id"), {"id": person}
            ).scalar_one()

    page = open_units_page(browser, server.url, username, password)
    try:
        assert page.is_hidden("#grid-people")
        page.click(f'li[data-unit-id="{grid}"] .unit-name')
        page.wait_for_selector(f'#grid-people[data-unit-id="{grid}"][data-state="ready"]')
        assert page.text_content("#grid-people-list") == "尚未指派人员。"

        page.fill("#grid-people-q", phone[-6:])  # by phone; the name works the same
        page.click("#grid-people-search-button")
        page.click(f'#grid-people-found li[data-person-id="{person}"] .person-add')
        page.wait_for_selector(f'#grid-people-list li[data-person-id="{person}"]')
        assert f"李娜{tag}" in page.text_content("#grid-people-list")
        assert page.get_attribute("#grid-people-status", "data-state") == "ok"
        assert patrol_unit() == grid

        page.fill("#grid-people-q", f"李娜{tag}")
        page.click("#grid-people-search-button")
        found = f'#grid-people-found li[data-person-id="{person}"]'
        page.wait_for_selector(found)
        assert page.locator(f"{found} .person-add").count() == 0  # already here

        page.click(f'#grid-people-list li[data-person-id="{person}"] .person-remove')
        page.wait_for_selector(f'#grid-people-list li[data-person-id="{person}"]', state="detached")
        assert page.text_content("#grid-people-list") == "尚未指派人员。"
        assert patrol_unit() is None

        # A street is no grid: no panel.
        page.click(f'li[data-unit-id="{street}"] .unit-name')
        assert page.is_hidden("#grid-people")
    finally:
        page.context.close()


def test_only_admins_open_the_units_page(server, make_user):
    http = staff_session(server, make_user, role="dispatcher")
    assert http.get(f"{server.url}/admin/units").status_code == 403
    admin = staff_session(server, make_user)
    page = admin.get(f"{server.url}/admin/units")
    assert page.status_code == 200 and "terra-draw.umd.js" in page.text
    assert admin.get(f"{server.url}/static/vendor/terra-draw.umd.js").status_code == 200


def test_a_units_tracking_policy_is_set_on_the_page(server, browser, make_user, make_unit, engine):
    street = make_unit(f"政策街道 {uuid.uuid4().hex[:4]}", "street")
    username, password = make_user("admin", street)
    page = open_units_page(browser, server.url, username, password)

    def stored() -> tuple:
        with engine.connect() as conn:
            return tuple(
                conn.execute(
                    text(
                        "SELECT tracking_policy, to_char(duty_start, 'HH24:MI'),"
                        " to_char(duty_end, 'HH24:MI'), live_shows_off_duty"
                        " FROM units WHERE id = :id"
                    ),
                    {"id": street},
                ).one()
            )

    try:
        page.click(f'#unit-tree li[data-unit-id="{street}"] .unit-name')
        page.wait_for_selector("#unit-policy:not([hidden])")
        assert page.input_value("#unit-policy-kind") == ""  # inherits
        # Duty hours that are not a time range are refused, naming the field.
        page.select_option("#unit-policy-kind", "duty_hours")
        assert page.is_visible("#unit-policy-hours")
        page.fill("#unit-policy-hours", "8 to 6")
        page.click("#unit-policy button[type=submit]")
        wait_until(page, "document.body.dataset.policySaved === 'error'")
        assert "duty_hours" in page.inner_text("#unit-policy-status")
        assert stored() == (None, None, None, None)
        page.fill("#unit-policy-hours", "08:00-18:00")
        page.select_option("#unit-policy-live", "false")
        page.click("#unit-policy button[type=submit]")
        wait_until(page, "/^[0-9]+$/.test(document.body.dataset.policySaved)")
        assert stored() == ("duty_hours", "08:00", "18:00", False)
        assert "已保存" in page.inner_text("#unit-policy-status")
        # Back to the unit above's policy.
        page.select_option("#unit-policy-kind", "")
        page.select_option("#unit-policy-live", "")
        page.evaluate("document.body.dataset.policySaved = ''")
        page.click("#unit-policy button[type=submit]")
        wait_until(page, "/^[0-9]+$/.test(document.body.dataset.policySaved)")
        assert stored() == (None, None, None, None)
    finally:
        page.context.close()
