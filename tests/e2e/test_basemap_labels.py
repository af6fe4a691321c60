"""Grid labels and on-duty counts are map symbols: they never overlap, and show where they fit."""

from __future__ import annotations

import uuid

from tests.e2e.chromium import wait_until
from tests.e2e.test_command_centre import admin_http, square
from tests.e2e.test_map_page import open_map, shot


def rendered_labels(page) -> list[dict]:
    """Return the unit labels MapLibre placed on screen, with their boxes."""
    return page.evaluate(
        "() => { const m = window.__tracker.map;"
        " const layers = ['district', 'street', 'community', 'grid'].map(k => `units-label-${k}`);"
        " return m.queryRenderedFeatures({layers}).map(f => ({id: f.properties.id,"
        "  badge: f.properties.badge, point: m.project(f.geometry.coordinates)})); }"
    )


def settle(page, zoom: float, lon: float, lat: float) -> None:
    """Jump to a view and wait until it is drawn and the labels are placed."""
    page.evaluate(
        "([lon, lat, zoom]) => new Promise(r => { const m = window.__tracker.map;"
        " m.once('idle', r); m.jumpTo({center: [lon, lat], zoom}); })",
        [lon, lat, zoom],
    )


def test_close_grids_share_the_space_of_their_labels(server, browser, make_user):
    lon, lat = 114.3055, 30.5928  # 武汉
    http = admin_http(server, make_user)
    tag = uuid.uuid4().hex[:6]
    street = f"标签街道{tag}"
    # Five grids 70 m apart: at zoom 14 their labels would sit on each other.
    features = [{"type": "Feature", "properties": {"name": street, "kind": "street"},
                 "geometry": square(lon, lat, 0.004)}]  # fmt: skip
    for i in range(5):
        features.append(
            {
                "type": "Feature",
                "properties": {"name": f"第{i + 1}网格{tag}", "kind": "grid", "parent": street},
                "geometry": square(lon - 0.0016 + 0.0008 * i, lat, 0.0003),
            }
        )
    doc = {"type": "FeatureCollection", "features": features}
    assert http.post(f"{server.url}/api/v1/units/import", json=doc).status_code == 200
    units = {
        f["properties"]["name"]: f["properties"]["unit_id"]
        for f in http.get(f"{server.url}/api/v1/units").json()["features"]
    }
    page = open_map(browser, server.url, *make_user("viewer", units[street]), locale="zh-CN")
    try:
        grids = {units[f"第{i + 1}网格{tag}"] for i in range(5)}
        wait_until(page, "document.body.dataset.coverageAt", 10)
        settle(page, 12, lon, lat)
        assert not grids & {label["id"] for label in rendered_labels(page)}  # below their zoom
        settle(page, 14, lon, lat)
        crowded = [label for label in rendered_labels(page) if label["id"] in grids]
        assert 1 <= len(crowded) < 5
        shot(page, "labels-zoom-14")
        settle(page, 17, lon, lat)
        wait_until(page, "window.__tracker.map.getZoom() === 17", 5)
        spread = [label for label in rendered_labels(page) if label["id"] in grids]
        assert {label["id"] for label in spread} == grids
        assert all(label["badge"] == "\n无人在岗" for label in spread)
        # No two placed labels share a spot.
        points = sorted((round(p["point"]["x"]), round(p["point"]["y"])) for p in spread)
        assert all(abs(a[0] - b[0]) > 40 for a, b in zip(points, points[1:], strict=False))
        shot(page, "labels-zoom-17")
    finally:
        page.context.close()
