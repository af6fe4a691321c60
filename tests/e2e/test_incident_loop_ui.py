"""The closed incident loop in the command centre: a real server, real Chromium, PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.conftest import ROOT, ServerProcess
from tests.e2e.chromium import wait_until
from tests.e2e.phones import TestPhone, now_ms
from tests.e2e.test_command_centre import admin_http, click_map_at, jump_to, street_with_grid
from tests.e2e.test_map_page import open_map, poll, shot

DOCS_IMG = ROOT / "docs" / "img"


@pytest.fixture(scope="module")
def loop_server(database_url: str) -> Iterator[ServerProcess]:
    """Run a server that pushes the feed every 0.5 s."""
    proc = ServerProcess(database_url, {"LIVE_INTERVAL": "0.5", "COVERAGE_REFRESH_S": "2"})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def pg(database_url: str) -> Iterator[Engine]:
    """Return an engine to read what the server stored."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def row(pg: Engine, sql: str, **params: Any) -> dict[str, Any] | None:
    """Return the first row of a query as a dict."""
    with pg.connect() as connection:
        found = connection.execute(text(sql), params).mappings().first()
    return dict(found) if found else None


def rows(pg: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Return every row of a query as dicts."""
    with pg.connect() as connection:
        return [dict(r) for r in connection.execute(text(sql), params).mappings()]


def on_duty(server: ServerProcess, token: str, lat: float, lon: float, age_s: int = 0) -> TestPhone:
    """Connect a phone, start its shift and report one fix `age_s` seconds old."""
    phone = TestPhone(server.url, token).connect()
    assert phone.call("duty", {"on": True})["ok"]
    fix = {"ts": now_ms() - age_s * 1000, "lat": lat, "lon": lon, "accuracy": 5}
    assert phone.send([fix])["ok"]
    return phone


def act(page, button: str, note: str | None, within: str = "#incident-body") -> None:
    """Press an action button of the incident panel, write the note and confirm."""
    page.click(f"{within} {button}")
    form = "#incident-body .action-form"
    page.wait_for_selector(form)
    if note is not None:
        page.fill(f"{form} .action-note", note)
    page.click(f"{form} .action-confirm")
    page.wait_for_selector(form, state="detached")


def wait_status(page, status: str) -> None:
    """Wait until the open incident panel shows a status."""
    page.wait_for_selector(f'#incident-body[data-status="{status}"]', timeout=10_000)


def test_dispatcher_closes_the_loop_and_postgres_follows_every_step(
    loop_server, pg, browser, make_user, make_phone
):
    lon, lat = 104.2460, 30.5570  # away from other tests' people
    http = admin_http(loop_server, make_user)
    street_id, grid_id, _ = street_with_grid(loop_server, http, lon, lat)
    first = make_phone("grid_worker", grid_id, name="李强 Li Qiang")
    second = make_phone("patrol", grid_id, name="张伟 Zhang Wei")
    phones = [
        on_duty(loop_server, first.token, lat + 0.0004, lon),
        on_duty(loop_server, second.token, lat - 0.0012, lon),
    ]
    page = open_map(browser, loop_server.url, *make_user("dispatcher", street_id), locale="zh-CN")
    try:
        # Create: a click on the map, a category and a description.
        jump_to(page, lon, lat, 16)
        page.click("#new-incident")
        page.wait_for_selector("#place-hint:not([hidden])")
        click_map_at(page, lon + 0.0006, lat)
        page.wait_for_selector("#incident-form:not([hidden])")
        wait_until(page, "document.querySelector('#incident-category option[value=sanitation]')")
        page.select_option("#incident-category", "sanitation")
        page.fill("#incident-description", "垃圾堆放 Rubbish dumped")
        page.click("#incident-submit")
        page.wait_for_selector(".candidate-list li")
        incident_id = int(page.get_attribute("#incident-body", "data-incident-id"))
        stored = row(pg, "SELECT status, category FROM incidents WHERE id = :id", id=incident_id)
        assert stored == {"status": "open", "category": "sanitation"}
        assert "环境卫生" in page.text_content('#incident-body [data-fact="category"]')

        # Assign the nearest.
        page.check(f'.candidate-list [data-person="{first.person_id}"] input')
        page.click("#assign-selected")
        task_row = f'.task-list [data-person="{first.person_id}"]'
        page.wait_for_selector(f'{task_row}[data-status="sent"]')
        task = row(
            pg,
            "SELECT id, status FROM tasks WHERE incident_id = :id AND person_id = :p",
            id=incident_id,
            p=first.person_id,
        )
        assert task is not None and task["status"] == "sent"
        assert row(pg, "SELECT status FROM incidents WHERE id = :id", id=incident_id) == {
            "status": "assigned"
        }
        task_id = task["id"]

        # Cancel that task, with a note.
        act(page, f'[data-task-id="{task_id}"] .task-cancel', "派错人了")
        page.wait_for_selector(f'{task_row}[data-status="cancelled"]')
        assert page.text_content(f"{task_row} .task-status") == "已取消"
        cancelled = row(pg, "SELECT status, cancelled_at FROM tasks WHERE id = :id", id=task_id)
        assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] is not None
        assert row(pg, "SELECT status FROM incidents WHERE id = :id", id=incident_id) == {
            "status": "open"
        }
        event = row(
            pg,
            "SELECT note FROM incident_events WHERE incident_id = :id AND kind = 'cancelled'",
            id=incident_id,
        )
        assert event == {"note": "派错人了"}

        # Send the same person again (the cancelled task goes back to sent), then reassign it.
        page.wait_for_selector(f'.candidate-list [data-person="{first.person_id}"] input')
        page.check(f'.candidate-list [data-person="{first.person_id}"] input')
        page.click("#assign-selected")
        page.wait_for_selector(f'{task_row}[data-status="sent"]')
        page.click(f'#incident-body [data-task-id="{task_id}"] .task-reassign')
        page.wait_for_selector("#incident-body .action-form .action-person")
        page.select_option("#incident-body .action-form .action-person", str(second.person_id))
        page.fill("#incident-body .action-form .action-note", "张伟离得更近")
        page.click("#incident-body .action-form .action-confirm")
        second_row = f'.task-list [data-person="{second.person_id}"]'
        page.wait_for_selector(f'{second_row}[data-status="sent"]')
        page.wait_for_selector(f'{task_row}[data-status="cancelled"]')
        statuses = {
            r["person_id"]: r["status"]
            for r in rows(
                pg, "SELECT person_id, status FROM tasks WHERE incident_id = :id", id=incident_id
            )
        }
        assert statuses == {first.person_id: "cancelled", second.person_id: "sent"}
        assert row(
            pg,
            "SELECT count(*) AS n FROM incident_events WHERE incident_id = :id"
            " AND kind = 'reassigned'",
            id=incident_id,
        ) == {"n": 1}

        # Mark handled: the note is required, the page says so before asking the server.
        page.click("#incident-body .action-handle")
        page.click("#incident-body .action-form .action-confirm")
        page.wait_for_selector("#incident-body .action-form .form-error:not([hidden])")
        assert page.text_content("#incident-body .action-form .form-error") == "请填写备注。"
        page.fill("#incident-body .action-form .action-note", "已清运完毕")
        page.click("#incident-body .action-form .action-confirm")
        wait_status(page, "handled")
        assert page.text_content("#incident-body .incident-status") == "处置完毕"
        handled = row(pg, "SELECT status, handled_at FROM incidents WHERE id = :id", id=incident_id)
        assert handled["status"] == "handled" and handled["handled_at"] is not None
        assert row(
            pg,
            "SELECT note FROM incident_events WHERE incident_id = :id AND kind = 'handled'",
            id=incident_id,
        ) == {"note": "已清运完毕"}
        assert page.is_hidden("#incident-body .action-handle") or not page.query_selector(
            "#incident-body .action-handle"
        )

        # Verify and close (核查通过).
        act(page, ".action-close", "现场核查通过")
        wait_status(page, "closed")
        closed = row(pg, "SELECT status, closed_at FROM incidents WHERE id = :id", id=incident_id)
        assert closed["status"] == "closed" and closed["closed_at"] is not None

        # Reopen, with a note: back to the status its tasks give it.
        act(page, ".action-reopen", "居民反映仍有垃圾")
        wait_status(page, "assigned")
        assert row(pg, "SELECT status FROM incidents WHERE id = :id", id=incident_id) == {
            "status": "assigned"
        }
        kinds = [
            r["kind"]
            for r in rows(
                pg,
                "SELECT kind FROM incident_events WHERE incident_id = :id ORDER BY at, id",
                id=incident_id,
            )
        ]
        assert kinds[0] == "created" and kinds[-3:] == ["handled", "closed", "reopened"]
        assert "cancelled" in kinds and "reassigned" in kinds
        shown = page.eval_on_selector_all(
            "#incident-body .history li", "items => items.map(i => i.dataset.kind)"
        )
        assert shown[-3:] == ["handled", "closed", "reopened"]
        history = page.text_content("#incident-body .history")
        assert "重新打开" in history and "居民反映仍有垃圾" in history and "核查通过" in history

        # The list follows: the incident is listed with its status.
        page.click("#incident-back")
        page.wait_for_selector(f'#incident-list [data-incident-id="{incident_id}"]')
        assert (
            page.get_attribute(f'#incident-list [data-incident-id="{incident_id}"]', "data-status")
            == "assigned"
        )
        page.click(f'#incident-list [data-incident-id="{incident_id}"]')
        page.wait_for_selector(f'#incident-body[data-incident-id="{incident_id}"]')
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.locator("#ops").screenshot(path=str(DOCS_IMG / "incident-panel-zh.png"))
        shot(page, "loop-01-reopened")
    finally:
        for phone in phones:
            phone.close()
        page.context.close()


def test_a_viewer_sees_the_incident_but_no_action(loop_server, browser, make_user, make_phone):
    lon, lat = 104.3060, 30.5170
    http = admin_http(loop_server, make_user)
    street_id, grid_id, _ = street_with_grid(loop_server, http, lon, lat)
    person = make_phone("volunteer", grid_id, name="王芳 Wang Fang")
    phone = on_duty(loop_server, person.token, lat, lon)
    # A dispatcher of the street creates it, so that it belongs to the viewer's scope.
    http = requests.Session()
    username, password = make_user("dispatcher", street_id)
    login = {"username": username, "password": password}
    assert http.post(f"{loop_server.url}/api/v1/session", json=login).status_code == 200
    created = http.post(
        f"{loop_server.url}/api/v1/incidents",
        json={"lat": lat, "lon": lon, "description": "井盖缺失 Missing manhole cover"},
    )
    assert created.status_code == 201
    incident_id = created.json()["incident"]["id"]
    assigned = http.post(
        f"{loop_server.url}/api/v1/incidents/{incident_id}/assign",
        json={"person_ids": [person.person_id]},
    )
    assert assigned.status_code == 200
    page = open_map(browser, loop_server.url, *make_user("viewer", street_id), locale="zh-CN")
    try:
        assert page.is_hidden("#new-incident")
        page.click("[data-tab=incidents]")
        page.wait_for_selector(f'#incident-list [data-incident-id="{incident_id}"]')
        page.click(f'#incident-list [data-incident-id="{incident_id}"]')
        page.wait_for_selector(f'#incident-body[data-incident-id="{incident_id}"] .task-list li')
        assert page.query_selector_all("#incident-body button") == []
        assert page.query_selector("#assign-selected") is None
        assert page.query_selector(".candidate-list") is None
        assert "王芳 Wang Fang" in page.text_content("#incident-body .task-list")
    finally:
        phone.close()
        page.context.close()


def test_on_duty_counts_split_into_reporting_and_silent(
    loop_server, browser, make_user, make_phone
):
    lon, lat = 104.3660, 30.4770
    http = admin_http(loop_server, make_user)
    street_id, grid_id, _ = street_with_grid(loop_server, http, lon, lat)
    reporting = make_phone("patrol", grid_id, name="在报 Reporting")
    silent = make_phone("volunteer", grid_id, name="无信号 Silent")
    phones = [
        on_duty(loop_server, reporting.token, lat, lon),
        on_duty(loop_server, silent.token, lat + 0.0005, lon, age_s=900),  # STALE_AFTER_S 300
    ]
    page = open_map(browser, loop_server.url, *make_user("dispatcher", street_id), locale="zh-CN")
    try:
        wait_until(page, "document.getElementById('count-reporting').textContent === '1'")
        wait_until(page, "document.getElementById('count-silent').textContent === '1'")
        assert "在岗·上报中" in page.text_content('[data-duty-split="reporting"]')
        assert "在岗·无信号" in page.text_content('[data-duty-split="silent"]')
        ids = {reporting.person_id, silent.person_id}

        def shown() -> set[int]:
            return set(page.evaluate("window.__tracker.drawnIds()")) & ids

        assert poll(lambda: shown() == ids, 3.0)
        page.click('[data-duty-split="silent"]')
        assert poll(lambda: shown() == {silent.person_id}, 3.0)
        assert page.get_attribute('[data-duty-split="silent"]', "aria-pressed") == "true"
        page.click('[data-duty-split="reporting"]')
        assert poll(lambda: shown() == {reporting.person_id}, 3.0)
        page.click('[data-duty-split="reporting"]')  # again: everyone on duty
        assert poll(lambda: shown() == ids, 3.0)
    finally:
        for phone in phones:
            phone.close()
        page.context.close()


def test_alerts_are_worded_from_their_details_in_the_pages_language(
    loop_server, pg, browser, make_user, make_phone
):
    lon, lat = 104.4260, 30.4370
    http = admin_http(loop_server, make_user)
    street_id, grid_id, _ = street_with_grid(loop_server, http, lon, lat)
    person = make_phone("grid_worker", grid_id, name="赵磊 Zhao Lei")
    facts = [
        ("zone_exit", {"distance_m": 43, "inside": False}, "离开网格 · 距边界 43 米"),
        (
            "zone_enter",
            {"distance_m": 12, "inside": True},
            "进入网格（回到责任网格）· 距边界 12 米",
        ),
        ("low_battery", {"battery": 0.12}, "电量 12%"),
        ("signal_lost", {"minutes": 5}, "已 5 分钟无定位"),
    ]
    ids = {}
    with pg.begin() as connection:
        for kind, details, _ in facts:
            ids[kind] = connection.execute(
                text(
                    "INSERT INTO alerts (person_id, kind, ts, details, note)"
                    " VALUES (:p, :kind, now(), CAST(:details AS jsonb), NULL) RETURNING id"
                ),
                {"p": person.person_id, "kind": kind, "details": json.dumps(details)},
            ).scalar_one()
        ids["old"] = connection.execute(
            text(
                "INSERT INTO alerts (person_id, kind, ts, note)"
                " VALUES (:p, 'zone_exit', now(), 'left zone (old wording)') RETURNING id"
            ),
            {"p": person.person_id},
        ).scalar_one()
    page = open_map(browser, loop_server.url, *make_user("dispatcher", street_id), locale="zh-CN")
    try:
        for kind, _, expected in facts:
            item = f'#alert-list [data-alert-id="{ids[kind]}"]'
            page.wait_for_selector(item)
            assert page.text_content(f"{item} .alert-facts") == expected
        old = f'#alert-list [data-alert-id="{ids["old"]}"]'
        assert page.text_content(f"{old} .alert-note") == "left zone (old wording)"
        assert page.query_selector(f"{old} .alert-facts") is None
        shot(page, "loop-02-alert-facts-zh")
        page.click("[data-lang-choice=en]")
        wait_until(page, "document.body.dataset.synced")
        item = f'#alert-list [data-alert-id="{ids["zone_exit"]}"] .alert-facts'
        page.wait_for_selector(item)
        assert page.text_content(item) == "Left the grid · 43 m from its boundary"
    finally:
        page.context.close()
