"""A click on a shifted basemap (GCJ-02, BD-09) places an incident at the right WGS-84 point."""

from __future__ import annotations

import pytest

from tests.e2e.test_basemap_kinds import (  # noqa: F401 - fixtures
    LAT,
    LON,
    basemap_dir,
    basemap_server,
    choose,
    jump,
    tiles,
    wait_for_basemap,
)
from tests.e2e.test_command_centre import admin_http, street_with_grid
from tests.e2e.test_map_page import open_map, shot
from tests.unit.test_coords import gcj02_to_bd09, metres, wgs84_to_gcj02

SHIFTS = {
    "local-gcj": wgs84_to_gcj02,
    "local-bd": lambda lon, lat: gcj02_to_bd09(*wgs84_to_gcj02(lon, lat)),
}


def unshift(shift, lon: float, lat: float) -> tuple[float, float]:
    """Return the WGS-84 point that `shift` (the published formulas) moves to lon/lat."""
    w_lon, w_lat = lon, lat
    for _ in range(30):
        s_lon, s_lat = shift(w_lon, w_lat)
        w_lon, w_lat = w_lon + lon - s_lon, w_lat + lat - s_lat
    return w_lon, w_lat


@pytest.mark.parametrize("basemap", ["local-gcj", "local-bd"])
def test_a_click_on_a_shifted_basemap_creates_the_incident_at_the_wgs84_point(
    basemap_server,  # noqa: F811 - the fixture imported above
    browser,
    make_user,
    basemap,
):
    http = admin_http(basemap_server, make_user)
    street_id, _, _ = street_with_grid(basemap_server, http, LON, LAT)
    username, password = make_user("dispatcher", street_id)
    choose(basemap_server, username, password, basemap)
    page = open_map(browser, basemap_server.url, username, password, locale="zh-CN")
    target = (LON + 0.0004, LAT - 0.0003)  # WGS-84, where the incident is
    try:
        wait_for_basemap(page, basemap)
        jump(page, *target, 18)
        page.click("#new-incident")
        page.wait_for_selector("#place-hint:not([hidden])")
        # Click where the basemap draws the target: its shifted position on the screen.
        clicked = page.evaluate(
            "([lon, lat]) => { const t = window.__tracker, m = t.map;"
            " const p = m.project(t.project(lon, lat)), r = m.getCanvas().getBoundingClientRect();"
            " const x = Math.round(p.x), y = Math.round(p.y), at = m.unproject([x, y]);"
            " return {x: r.left + x, y: r.top + y, lon: at.lng, lat: at.lat}; }",
            list(target),
        )
        page.mouse.click(clicked["x"], clicked["y"])
        page.wait_for_selector("#incident-form:not([hidden])")
        placed = (
            float(page.input_value("#incident-lon")),
            float(page.input_value("#incident-lat")),
        )
        # The map's own coordinates of the click are the basemap's (shifted) ones...
        on_basemap = (clicked["lon"], clicked["lat"])
        assert metres(on_basemap, target) > 100
        # ...and the form holds them shifted back, as the published formulas invert them.
        assert metres(placed, unshift(SHIFTS[basemap], *on_basemap)) < 0.2
        assert metres(placed, target) < 1.0
        description = f"井盖缺失 Missing manhole cover ({basemap})"
        page.fill("#incident-description", description)
        page.click("#incident-submit")
        page.wait_for_selector("#incident-body[data-status]")
        shot(page, f"coords-click-{basemap}")
        rows = http.get(f"{basemap_server.url}/api/v1/incidents?per_page=200").json()["incidents"]
        (mine,) = [r for r in rows if r.get("description") == description]
        stored = http.get(f"{basemap_server.url}/api/v1/incidents/{mine['id']}").json()
        assert metres((stored["lon"], stored["lat"]), placed) < 0.2
        assert metres((stored["lon"], stored["lat"]), target) < 1.0
    finally:
        page.context.close()
