"""Scope of the live map: a street's viewer sees its street only, in every channel."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
import socketio

from tests.e2e.phones import now_ms
from tests.e2e.test_map_page import drawn, on_duty_phone, open_map, poll, shot
from tracker import store
from tracker.extensions import db


def api_session(url: str, username: str, password: str) -> requests.Session:
    """Return a requests session logged in as a staff account."""
    http = requests.Session()
    response = http.post(
        f"{url}/api/v1/session", json={"username": username, "password": password}, timeout=5
    )
    assert response.status_code == 200
    return http


class LiveViewer:
    """A python-socketio client on /live that records every `positions` push."""

    def __init__(self, url: str, cookie: str | None) -> None:
        """Prepare a client that presents `cookie` as the staff session."""
        self.url = url
        self.cookie = cookie
        self.client = socketio.Client(reconnection=False)
        self.pushes: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.refusal: Any = None
        self.client.on("positions", self._on_positions, namespace="/live")
        self.client.on("connect_error", self._on_connect_error, namespace="/live")

    def _on_positions(self, message: dict[str, Any]) -> None:
        with self.lock:
            self.pushes.extend(message["positions"])

    def _on_connect_error(self, data: Any) -> None:
        self.refusal = data

    def connect(self) -> LiveViewer:
        """Connect over websocket with the session cookie."""
        headers = {"Cookie": f"session={self.cookie}"} if self.cookie else {}
        self.client.connect(
            self.url, namespaces=["/live"], headers=headers, transports=["websocket"]
        )
        return self

    def has(self, person_id: int, lon: float) -> bool:
        """Return whether a push carried this person at this longitude."""
        with self.lock:
            return any(p["person_id"] == person_id and p["lon"] == lon for p in self.pushes)

    def person_ids(self) -> set[int]:
        """Return the people that any push so far was about."""
        with self.lock:
            return {p["person_id"] for p in self.pushes}

    def close(self) -> None:
        """Disconnect."""
        if self.client.connected:
            self.client.disconnect()


@pytest.fixture()
def two_streets(server, make_unit, make_phone) -> Callable[[], dict[str, Any]]:
    """Return a function making two streets of one district, each with an on-duty phone."""

    def make() -> dict[str, Any]:
        district = make_unit(f"测试区 District {uuid.uuid4().hex[:6]}", "district")
        street_a = make_unit("甲街道 Street A", "street", district)
        street_b = make_unit("乙街道 Street B", "street", district)
        grid_a = make_unit("甲一网格 A1", "grid", street_a)
        grid_b = make_unit("乙一网格 B1", "grid", street_b)
        a = make_phone("volunteer", grid_a, name="甲 Person A")
        b = make_phone("volunteer", grid_b, name="乙 Person B")
        phones = [on_duty_phone(server.url, p.token) for p in (a, b)]
        phones[0].send([{"ts": now_ms(), "lat": 39.9001, "lon": 116.3001}])
        phones[1].send([{"ts": now_ms(), "lat": 39.9501, "lon": 116.4501}])
        return {
            "street_a": street_a,
            "grid_a": grid_a,
            "street_b": street_b,
            "a": a,
            "b": b,
            "phones": phones,
        }

    return make


def test_street_viewer_sees_only_its_street_in_page_and_api(
    server, browser, make_user, two_streets
):
    world = two_streets()
    a, b = world["a"].person_id, world["b"].person_id
    username, password = make_user("viewer", world["street_a"])
    try:
        page = open_map(browser, server.url, username, password)
        assert drawn(page, a) is not None
        assert drawn(page, b) is None
        assert b not in page.evaluate("window.__tracker.drawnIds()")
        shot(page, "scope-01-street-a")
        page.context.close()

        http = api_session(server.url, username, password)
        live = http.get(f"{server.url}/api/v1/live", timeout=5).json()
        ids = {f["properties"]["person_id"] for f in live["features"]}
        assert a in ids and b not in ids
        assert http.get(f"{server.url}/api/v1/people/{a}/track", timeout=5).status_code == 200
        assert http.get(f"{server.url}/api/v1/people/{b}/track", timeout=5).status_code == 404
        units = http.get(f"{server.url}/api/v1/units", timeout=5).json()
        unit_ids = {f["properties"]["unit_id"] for f in units["features"]}
        assert unit_ids == {world["street_a"], world["grid_a"]}
    finally:
        for phone in world["phones"]:
            phone.close()


def test_units_endpoint_returns_boundaries_and_label_points(server, app, make_user):
    with app.app_context():
        shaped = store.people.add_unit(
            db.session,
            "有边界网格 Shaped",
            "grid",
            None,
            "POLYGON((116.3 39.9, 116.31 39.9, 116.31 39.91, 116.3 39.91, 116.3 39.9))",
        ).id
        bare = store.people.add_unit(db.session, "无边界社区 Bare", "community", shaped, None).id
        db.session.commit()
    assert requests.get(f"{server.url}/api/v1/units", timeout=5).status_code == 401
    http = api_session(server.url, *make_user("admin"))
    collection = http.get(f"{server.url}/api/v1/units", timeout=5).json()
    assert collection["type"] == "FeatureCollection"
    units = {f["id"]: f for f in collection["features"]}
    feature = units[shaped]
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert feature["properties"]["name"] == "有边界网格 Shaped"
    lon, lat = feature["properties"]["label_point"]
    assert 116.3 < lon < 116.31 and 39.9 < lat < 39.91
    assert units[bare]["geometry"] is None and units[bare]["properties"]["parent_id"] == shaped


def test_live_feed_is_scoped_to_the_viewers_street(server, make_user, two_streets):
    world = two_streets()
    a, b = world["a"].person_id, world["b"].person_id
    street_http = api_session(server.url, *make_user("viewer", world["street_a"]))
    admin_http = api_session(server.url, *make_user("admin"))
    street = LiveViewer(server.url, street_http.cookies.get("session")).connect()
    admin = LiveViewer(server.url, admin_http.cookies.get("session")).connect()
    try:
        ts = now_ms()
        world["phones"][0].send([{"ts": ts, "lat": 39.9002, "lon": 116.3002}])
        world["phones"][1].send([{"ts": ts, "lat": 39.9502, "lon": 116.4502}])
        # Both fixes travel in pushes of the same interval, so once the admin has seen B and
        # the street viewer has seen A, a leak of B to the street viewer would have arrived.
        ok = poll(lambda: admin.has(a, 116.3002) and admin.has(b, 116.4502), 5.0)
        assert ok, (admin.pushes, street.pushes)
        assert poll(lambda: street.has(a, 116.3002), 5.0)
        time.sleep(1.5)
        assert b not in street.person_ids()
        push = next(p for p in street.pushes if p["person_id"] == a and p["lon"] == 116.3002)
        assert push["lon"] == pytest.approx(116.3002) and push["name"] == "甲 Person A"
        assert push["unit_id"] == world["grid_a"] and push["on_duty"] is True
    finally:
        street.close()
        admin.close()
        for phone in world["phones"]:
            phone.close()


def test_subscribe_narrows_the_feed_to_a_box(server, make_user, two_streets):
    world = two_streets()
    a, b = world["a"].person_id, world["b"].person_id
    http = api_session(server.url, *make_user("admin"))
    narrowed = LiveViewer(server.url, http.cookies.get("session")).connect()
    whole = LiveViewer(server.url, http.cookies.get("session")).connect()
    try:
        bad = narrowed.client.call("subscribe", {"bbox": [1, 2, 3]}, namespace="/live")
        assert bad["ok"] is False and bad["error"].startswith("bbox:")
        ack = narrowed.client.call(
            "subscribe", {"bbox": [116.29, 39.89, 116.31, 39.91]}, namespace="/live"
        )
        assert ack == {"ok": True, "bbox": [116.29, 39.89, 116.31, 39.91]}
        ts = now_ms()
        world["phones"][0].send([{"ts": ts, "lat": 39.9003, "lon": 116.3003}])
        world["phones"][1].send([{"ts": ts, "lat": 39.9503, "lon": 116.4503}])
        assert poll(lambda: whole.has(a, 116.3003) and whole.has(b, 116.4503), 5.0)
        assert poll(lambda: narrowed.has(a, 116.3003), 5.0)
        time.sleep(1.5)
        assert not narrowed.has(b, 116.4503)
    finally:
        narrowed.close()
        whole.close()
        for phone in world["phones"]:
            phone.close()


@pytest.mark.parametrize("cookie", [None, "not-a-signed-session", "eyJfdXNlcl9pZCI6IjEifQ.x.y"])
def test_live_refuses_a_connection_without_a_staff_session(server, cookie):
    viewer = LiveViewer(server.url, cookie)
    with pytest.raises(socketio.exceptions.ConnectionError):
        viewer.connect()
    assert viewer.refusal == {"message": "session: log in first"}
    viewer.close()


def test_live_refuses_a_session_after_logout(server, make_user):
    http = api_session(server.url, *make_user("admin"))
    assert http.delete(f"{server.url}/api/v1/session", timeout=5).status_code == 204
    viewer = LiveViewer(server.url, http.cookies.get("session"))
    with pytest.raises(socketio.exceptions.ConnectionError):
        viewer.connect()
    viewer.close()


def test_phone_tokens_do_not_open_the_live_feed(server, make_phone):
    phone = make_phone()
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(
            server.url,
            namespaces=["/live"],
            auth={"token": phone.token},
            transports=["websocket"],
        )
