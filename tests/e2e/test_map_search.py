"""The map's search box in a real browser: units, people, incidents, coordinates, addresses."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import ServerProcess, free_port
from tests.e2e.chromium import wait_until
from tests.e2e.test_command_centre import admin_http, on_duty, street_with_grid
from tests.e2e.test_first_view import covers, view_bounds
from tests.e2e.test_map_page import open_map, shot
from tests.e2e.test_map_scope import api_session


def search(page, text: str) -> list[dict[str, str]]:
    """Type into the map's search box and return the listed results (kind, text)."""
    page.fill("#map-search", text)
    return page.eval_on_selector_all(
        "#map-search-results button",
        "items => items.map(b => ({kind: b.dataset.kind, text: b.textContent}))",
    )


def centre(page) -> list[float]:
    """Return the map's centre in WGS-84."""
    return page.evaluate(
        "() => { const t = window.__tracker, c = t.map.getCenter();"
        " return t.unproject(c.lng, c.lat); }"
    )


def test_search_finds_units_people_incidents_and_coordinates(
    server, browser, make_user, make_phone
):
    lon, lat = 120.1551, 30.2741  # 杭州
    http = admin_http(server, make_user)
    street_id, grid_id, grid_name = street_with_grid(server, http, lon, lat)
    name = f"搜索 李娜 Li Na {uuid.uuid4().hex[:4]}"
    person = make_phone("patrol", grid_id, name=name)
    phone = on_duty(server, person.token, lat + 0.001, lon + 0.001)
    dispatcher = make_user("dispatcher", street_id)
    incident = (
        api_session(server.url, *dispatcher)
        .post(
            f"{server.url}/api/v1/incidents",
            json={"lat": lat - 0.001, "lon": lon - 0.001, "description": "占道经营 Street stall"},
            timeout=10,
        )
        .json()["incident"]
    )
    page = open_map(browser, server.url, *dispatcher, locale="zh-CN")
    try:
        page.evaluate("window.__tracker.map.jumpTo({center: [0, 0], zoom: 3})")
        results = search(page, grid_name)
        assert {"kind": "unit", "text": f"所属单位{grid_name}"} in results
        page.press("#map-search", "Enter")
        wait_until(
            page, "!window.__tracker.map.isMoving() && window.__tracker.map.getZoom() > 12", 10
        )
        assert covers(view_bounds(page), lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002)

        results = search(page, "李娜")
        assert results == [{"kind": "person", "text": f"人员{name}"}]
        page.click("#map-search-results button")
        page.wait_for_selector("#person-card:not([hidden])")
        assert page.text_content("#card-name") == name

        assert search(page, f"#{incident['id']}") == [
            {"kind": "incident", "text": f"事件事件 #{incident['id']}"}
        ]
        page.press("#map-search", "Enter")
        page.wait_for_selector("#incident-body[data-status]")
        assert "占道经营 Street stall" in page.text_content("#incident-body")

        results = search(page, "北纬30度16分26.76秒 东经120度9分18.36秒")
        assert results == [{"kind": "place", "text": "坐标30.274100, 120.155100"}]
        page.press("#map-search", "Enter")
        page.wait_for_selector(".search-pin")
        pin = page.eval_on_selector(
            ".search-pin", "p => [Number(p.dataset.lon), Number(p.dataset.lat)]"
        )
        assert pin == pytest.approx([lon, lat], abs=1e-6)
        wait_until(page, "!window.__tracker.map.isMoving()", 10)
        assert centre(page) == pytest.approx([lon, lat], abs=1e-5)
        shot(page, "map-search-coordinates")

        assert search(page, "没有这个地方") == []
        assert page.text_content("#map-search-results") == "未找到"
    finally:
        phone.close()
        page.context.close()


class Geocoder:
    """A stand-in for 天地图's geocoder: answers {"location": {lon, lat, keyWord}}."""

    def __init__(self) -> None:
        """Listen on a free loopback port."""
        asked: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                ds = json.loads(parse_qs(urlsplit(self.path).query)["ds"][0])
                asked.append(ds["keyWord"])
                body = json.dumps(
                    {
                        "status": "0",
                        "location": {"lon": 116.40, "lat": 39.93, "keyWord": ds["keyWord"]},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.asked = asked
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def geocoder() -> Iterator[Geocoder]:
    """Run the stand-in geocoder."""
    server = Geocoder()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture(scope="module")
def geocoding_server(database_url: str, geocoder: Geocoder) -> Iterator[ServerProcess]:
    """Run a server whose map search asks the geocoder (in GCJ-02, to check the shift back)."""
    env = {
        "GEOCODER_URL": geocoder.url + '/geocoder?ds={"keyWord":"{q}"}&tk=secret',
        "GEOCODER_CRS": "gcj02",
    }
    proc = ServerProcess(database_url, env)
    proc.start()
    yield proc
    proc.stop()


def test_an_address_goes_to_the_configured_geocoder(geocoding_server, geocoder, browser, make_user):
    page = open_map(browser, geocoding_server.url, *make_user("viewer"), locale="zh-CN")
    try:
        assert page.evaluate("window.__tracker.settings.geocoder") is True
        assert "secret" not in page.content()
        page.fill("#map-search", "黄化门街12号")
        page.press("#map-search", "Enter")
        page.wait_for_selector('#map-search-results button[data-kind="address"]')
        assert geocoder.asked == ["黄化门街12号"]
        page.click('#map-search-results button[data-kind="address"]')
        page.wait_for_selector(".search-pin")
        pin = page.eval_on_selector(
            ".search-pin", "p => [Number(p.dataset.lon), Number(p.dataset.lat)]"
        )
        # The geocoder answered in GCJ-02; the pin is the WGS-84 point, about 600 m away.
        assert pin[0] == pytest.approx(116.40 - 0.0062, abs=0.001)
        assert pin[1] == pytest.approx(39.93 - 0.0014, abs=0.001)
    finally:
        page.context.close()
