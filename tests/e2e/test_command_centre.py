"""The command centre in a real browser: alerts, grid coverage, dispatch and boundary import."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import requests
from babel.messages.pofile import read_po

from tests.conftest import ROOT, ServerProcess
from tests.e2e.chromium import wait_until
from tests.e2e.phones import TestPhone, now_ms
from tests.e2e.test_map_page import open_map, poll, shot

D = 0.002  # half the side of a test grid, in degrees


@pytest.fixture(scope="module")
def centre_server(database_url: str) -> Iterator[ServerProcess]:
    """Run a server that pushes the feed every 0.5 s and lets pages re-read coverage every 1 s."""
    proc = ServerProcess(database_url, {"LIVE_INTERVAL": "0.5", "COVERAGE_REFRESH_S": "1"})
    proc.start()
    yield proc
    proc.stop()


def admin_http(server: ServerProcess, make_user) -> requests.Session:
    """Return a requests session logged in as a new admin."""
    http = requests.Session()
    username, password = make_user("admin")
    answer = http.post(
        f"{server.url}/api/v1/session", json={"username": username, "password": password}
    )
    assert answer.status_code == 200
    return http


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


def street_with_grid(server, http, lon: float, lat: float) -> tuple[int, int, str]:
    """Import a street with one grid centred on lon/lat; return (street id, grid id, grid name)."""
    tag = uuid.uuid4().hex[:6]
    street, grid = f"测试街道{tag}", f"测试网格{tag}"
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": street, "kind": "street"},
                # Off-centre, so that the street's label does not sit on the grid's.
                "geometry": square(lon + 3 * D, lat + 3 * D, 5 * D),
            },
            {
                "type": "Feature",
                "properties": {"name": grid, "kind": "grid", "parent": street},
                "geometry": square(lon, lat, D),
            },
        ],
    }
    assert http.post(f"{server.url}/api/v1/units/import", json=doc).status_code == 200
    units = {
        f["properties"]["name"]: f["properties"]["unit_id"]
        for f in http.get(f"{server.url}/api/v1/units").json()["features"]
    }
    return units[street], units[grid], grid


def click_map_at(page, lon: float, lat: float) -> None:
    """Click the map canvas at a WGS-84 point (the tests run without GCJ-02)."""
    point = page.evaluate(
        "([lon, lat]) => { const m = window.__tracker.map, p = m.project([lon, lat]);"
        " const r = m.getCanvas().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
        [lon, lat],
    )
    page.mouse.click(*point)


def jump_to(page, lon: float, lat: float, zoom: float = 15) -> None:
    """Centre the map on a point and wait until it is drawn."""
    page.evaluate(
        "([lon, lat, zoom]) => new Promise(r => { const m = window.__tracker.map;"
        " m.once('idle', r); m.jumpTo({center: [lon, lat], zoom}); })",
        [lon, lat, zoom],
    )


def on_duty(server, token: str, lat: float, lon: float) -> TestPhone:
    """Connect a phone, start its shift and report one fix."""
    phone = TestPhone(server.url, token).connect()
    assert phone.call("duty", {"on": True})["ok"]
    assert phone.send([{"ts": now_ms(), "lat": lat, "lon": lon, "accuracy": 5}])["ok"]
    return phone


def test_sos_reaches_the_alerts_panel_within_2_s_and_is_acknowledged(
    centre_server, browser, make_user, make_phone
):
    lon, lat = 104.0660, 30.6570  # Chengdu, away from other tests' people
    http = admin_http(centre_server, make_user)
    street_id, grid_id, _ = street_with_grid(centre_server, http, lon, lat)
    person = make_phone("volunteer", grid_id, name="王芳 Wang Fang")
    username, password = make_user("dispatcher", street_id)
    page = open_map(browser, centre_server.url, username, password, locale="zh-CN")
    phone = on_duty(centre_server, person.token, lat, lon)
    try:
        answer = phone.call(
            "sos", {"ts": now_ms(), "lat": lat, "lon": lon, "note": "楼梯摔倒 fell on the stairs"}
        )
        assert answer["ok"] is True
        item = f'#alert-list [data-alert-id="{answer["alert_id"]}"]'
        assert poll(lambda: page.query_selector(item), 2.0), "SOS not in the panel within 2 s"
        assert page.get_attribute(item, "data-kind") == "sos"
        assert "紧急求助" in page.text_content(item)
        assert "王芳 Wang Fang" in page.text_content(item)
        toast = page.wait_for_selector("#toasts .toast.kind-sos").text_content()
        assert "紧急求助" in toast and "王芳 Wang Fang" in toast
        wait_until(page, "document.getElementById('alert-count').textContent === '1'")
        shot(page, "centre-01-sos-alert")

        page.click(f"{item} button.ack")
        # Acknowledged, it leaves the open-only list; "All" shows who acknowledged it.
        page.wait_for_selector(item, state="detached")
        wait_until(page, "document.getElementById('alert-count').hidden")
        page.click("[data-alert-open='0']")
        page.wait_for_selector(f'{item}[data-acknowledged="1"]')
        assert f"{username} 已于" in page.text_content(item)
        stored = http.get(f"{centre_server.url}/api/v1/alerts?kind=sos&limit=1000").json()
        (mine,) = [a for a in stored["alerts"] if a["id"] == answer["alert_id"]]
        assert mine["acknowledged_by"] == username and mine["acknowledged_at"]
        page.click("#toasts .toast.kind-sos")
        shot(page, "centre-02-sos-acknowledged")
    finally:
        phone.close()
        page.context.close()


def test_a_grid_without_anyone_on_duty_is_uncovered_until_someone_reports_inside(
    centre_server, browser, make_user, make_phone
):
    lon, lat = 104.1260, 30.6170
    http = admin_http(centre_server, make_user)
    street_id, grid_id, grid_name = street_with_grid(centre_server, http, lon, lat)
    person = make_phone("grid_worker", grid_id, name="赵磊 Zhao Lei")
    patrol_unit = f"{centre_server.url}/api/v1/people/{person.person_id}/patrol-unit"
    assert http.put(patrol_unit, json={"unit_id": grid_id}).status_code == 200
    page = open_map(browser, centre_server.url, *make_user("dispatcher", street_id), locale="zh-CN")
    label = f"window.__tracker.command.unitLabel({grid_id})"  # the map's symbol label
    phone = None
    try:
        state = poll(lambda: page.evaluate(f"window.__tracker.command.gridState({grid_id})"), 5.0)
        assert state == "uncovered"
        assert page.evaluate(label)["coverage"] == "uncovered"
        assert "无人在岗" in page.evaluate(label)["badge"]
        assert page.text_content("#coverage-summary") == "共 1 个网格 · 1 个无人在岗"
        jump_to(page, lon, lat)
        shot(page, "centre-03-grid-uncovered")

        phone = on_duty(centre_server, person.token, lat, lon)
        covered = poll(
            lambda: page.evaluate(f"window.__tracker.command.gridState({grid_id})") == "covered",
            10.0,
        )
        assert covered, "the grid did not turn covered after an on-duty fix inside it"
        assert page.evaluate(label)["coverage"] == "covered"
        assert "1 人在岗" in page.evaluate(label)["badge"]

        click_map_at(page, lon + D * 0.7, lat - D * 0.7)  # inside the grid, off the marker
        page.wait_for_selector(f'#grid-detail[data-unit="{grid_id}"]')
        assert grid_name in page.text_content("#grid-detail h3")
        assert page.text_content('#grid-detail [data-stat="on_duty"] strong') == "1"
        assert page.text_content('#grid-detail [data-stat="assigned"] strong') == "1"
        row = page.text_content(f'#grid-detail [data-person="{person.person_id}"]')
        assert "赵磊 Zhao Lei" in row and "在网格内" in row and "责任网格" in row
        shot(page, "centre-04-grid-covered")
    finally:
        if phone is not None:
            phone.close()
        page.context.close()


def test_dispatcher_sends_the_nearest_person_and_follows_the_task_to_done(
    centre_server, browser, make_user, make_phone
):
    lon, lat = 104.0060, 30.6970
    http = admin_http(centre_server, make_user)
    street_id, grid_id, _ = street_with_grid(centre_server, http, lon, lat)
    near = make_phone("patrol", grid_id, name="近 陈刚 Chen Gang")
    far = make_phone("volunteer", grid_id, name="远 刘洋 Liu Yang")
    tasks: list[dict] = []
    near_phone = TestPhone(centre_server.url, near.token)
    near_phone.client.on("task", tasks.append, namespace="/device")
    near_phone.connect()
    assert near_phone.call("duty", {"on": True})["ok"]
    assert near_phone.send([{"ts": now_ms(), "lat": lat + 0.0005, "lon": lon}])["ok"]
    far_phone = on_duty(centre_server, far.token, lat - 0.0015, lon)
    page = open_map(browser, centre_server.url, *make_user("dispatcher", street_id), locale="zh-CN")
    try:
        jump_to(page, lon, lat, 16)
        page.click("#new-incident")
        page.wait_for_selector("#place-hint:not([hidden])")
        click_map_at(page, lon + 0.0008, lat)
        page.wait_for_selector("#incident-form:not([hidden])")
        assert float(page.input_value("#incident-lat")) == pytest.approx(lat, abs=1e-5)
        assert float(page.input_value("#incident-lon")) == pytest.approx(lon + 0.0008, abs=1e-5)
        page.fill("#incident-description", "老人摔倒 Elderly fall")
        page.click("#incident-submit")
        page.wait_for_selector(".candidate-list li")
        candidates = page.eval_on_selector_all(
            ".candidate-list li", "items => items.map(i => Number(i.dataset.person))"
        )
        assert candidates[:2] == [near.person_id, far.person_id]
        first = page.text_content(".candidate-list li:first-child")
        assert "近 陈刚 Chen Gang" in first and " 米" in first
        assert page.get_attribute("#incident-body", "data-status") == "open"
        shot(page, "centre-05-incident-candidates")

        page.check(f'.candidate-list [data-person="{near.person_id}"] input')
        page.click("#assign-selected")
        task_row = f'.task-list [data-person="{near.person_id}"]'
        page.wait_for_selector(f'{task_row}[data-status="sent"]')
        assert page.text_content(f"{task_row} .task-status") == "已派发"
        assert poll(lambda: tasks, 5.0), "the task did not reach the phone"
        (task,) = tasks
        assert task["description"] == "老人摔倒 Elderly fall"
        # The phone acknowledges the task, as the app does on every `task` it receives.
        assert near_phone.call("task_update", {"id": task["id"], "status": "delivered"})["ok"]
        page.wait_for_selector(f'{task_row}[data-status="delivered"]')
        assert page.text_content(f"{task_row} .task-status") == "已送达"
        steps = page.text_content(f"{task_row} .task-steps")
        assert "已派发" in steps and "已送达" in steps

        assert near_phone.call("task_update", {"id": task["id"], "status": "accepted"})["ok"]
        page.wait_for_selector(f'{task_row}[data-status="accepted"]')
        assert page.text_content(f"{task_row} .task-status") == "已接受"
        assert near_phone.call("task_update", {"id": task["id"], "status": "done"})["ok"]
        page.wait_for_selector(f'{task_row}[data-status="done"]')
        page.wait_for_selector('#incident-body[data-status="done"]')
        assert page.text_content("#incident-body .incident-status") == "已完成"
        history = page.eval_on_selector_all(
            "#incident-body .history li", "items => items.map(i => i.dataset.kind)"
        )
        assert history == ["created", "assigned", "delivered", "accepted", "done"]
        shot(page, "centre-06-incident-done")
        page.click("#incident-back")
        page.click("[data-incident-filter='all']")
        incident_id = int(page.get_attribute("#incident-body", "data-incident-id"))
        assert page.get_attribute(f'[data-incident-id="{incident_id}"]', "data-status") == "done"
    finally:
        near_phone.close()
        far_phone.close()
        page.context.close()


def test_import_page_names_the_invalid_feature_and_imports_nothing(
    centre_server, browser, make_user
):
    username, password = make_user("admin")
    page = open_map(browser, centre_server.url, username, password, locale="zh-CN")
    tag = uuid.uuid4().hex[:6]
    good = {
        "type": "Feature",
        "properties": {"name": f"好网格{tag}", "kind": "grid"},
        "geometry": square(103.9, 30.5, D),
    }
    bad = {
        "type": "Feature",
        "properties": {"name": f"坏网格{tag}", "kind": "grid"},
        "geometry": {"type": "Point", "coordinates": [103.9, 30.5]},
    }

    def upload(features: list[dict]) -> None:
        doc = json.dumps({"type": "FeatureCollection", "features": features}).encode()
        page.set_input_files(
            "#import-file",
            files=[{"name": "grids.geojson", "mimeType": "application/geo+json", "buffer": doc}],
        )
        page.click("#import-submit")

    def unit_names() -> set[str]:
        units = page.evaluate("fetch('/api/v1/units').then(r => r.json())")
        return {f["properties"]["name"] for f in units["features"]}

    try:
        page.click("a[href='/admin/units/import']")
        page.wait_for_selector("#import-form")
        assert page.text_content(".card h1") == "导入网格边界"
        upload([good, bad])
        page.wait_for_selector('#import-result[data-state="error"]')
        assert page.text_content("#import-result h2") == "未导入任何数据"
        assert (
            # The server's message in the page's language; field names stay as they are.
            f"features[1] (坏网格{tag})：geometry 必须是 Polygon 或 MultiPolygon（多边形），"
            "实际为 Point" in page.text_content("#import-result")
        )
        assert f"好网格{tag}" not in unit_names()
        shot(page, "centre-07-import-error")

        upload([good])
        page.wait_for_selector('#import-result[data-state="ok"]')
        assert page.text_content('[data-list="created"] li') == f"好网格{tag}"
        assert f"好网格{tag}" in unit_names()
        shot(page, "centre-08-import-done")
    finally:
        page.context.close()


def test_only_admins_open_the_import_page(centre_server, make_user):
    http = requests.Session()
    username, password = make_user("dispatcher")
    http.post(
        f"{centre_server.url}/api/v1/session", json={"username": username, "password": password}
    )
    assert http.get(f"{centre_server.url}/admin/units/import").status_code == 403


def test_every_string_of_the_catalogue_has_a_chinese_translation():
    path = ROOT / "tracker/translations/zh_Hans_CN/LC_MESSAGES/messages.po"
    with path.open("rb") as po:
        catalogue = read_po(po)
    untranslated = [m.id for m in catalogue if m.id and not m.string]
    assert untranslated == []
    template = ROOT / "tracker/translations/messages.pot"
    with template.open("rb") as pot:
        expected = {m.id for m in read_po(pot) if m.id}
    assert expected <= {m.id for m in catalogue if m.id}
