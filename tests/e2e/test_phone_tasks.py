"""The phone app's tasks and unpaired state in real Chromium against the real server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from tests.conftest import Phone, ServerProcess
from tests.e2e.test_phone import START, open_app, phone_contexts, shot, wait_for
from tracker.extensions import db
from tracker.models import Task

# About 222 m north of where the emulated phone stands.
INCIDENT = (START[0] + 0.002, START[1])
VISIBLE_BUTTONS = """["task-accept", "task-done", "task-decline"].filter(
    (id) => document.getElementById(id).checkVisibility())"""


@pytest.fixture()
def context_for(browser) -> Iterator[Callable[..., Any]]:
    """Return a function opening a phone-sized browser context with location allowed."""
    with phone_contexts(browser) as make:
        yield make


def staff(server: ServerProcess, make_user) -> requests.Session:
    """Return a requests session logged in as a new dispatcher who sees everyone."""
    http = requests.Session()
    username, password = make_user("dispatcher")
    http.post(
        f"{server.url}/api/v1/session",
        json={"username": username, "password": password},
        timeout=10,
    ).raise_for_status()
    return http


def send_task(server: ServerProcess, http: requests.Session, phone: Phone, what: str) -> int:
    """Create an incident near the phone, send its person, and return the task id."""
    created = http.post(
        f"{server.url}/api/v1/incidents",
        json={"lat": INCIDENT[0], "lon": INCIDENT[1], "description": what, "category": "other"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    incident_id = created.json()["incident"]["id"]
    assigned = http.post(
        f"{server.url}/api/v1/incidents/{incident_id}/assign",
        json={"person_ids": [phone.person_id]},
        timeout=10,
    )
    assert assigned.status_code == 200, assigned.text
    (task,) = [t for t in assigned.json()["tasks"] if t["person_id"] == phone.person_id]
    return task["id"]


def task_row(app, task_id: int) -> Task:
    """Return the task as PostGIS holds it now."""
    with app.app_context():
        task = db.session.execute(select(Task).where(Task.id == task_id)).scalar_one()
        db.session.expunge(task)
        db.session.remove()
    return task


def wait_for_row(app, task_id: int, status: str, timeout_s: float = 10) -> Task:
    """Wait until the tasks table shows `status` for a task; return the row."""
    deadline = time.monotonic() + timeout_s
    while (task := task_row(app, task_id)).status != status:
        assert time.monotonic() < deadline, f"task {task_id} is {task.status}, not {status}"
        time.sleep(0.1)
    return task


def shown(task_id: int) -> str:
    """Return the expression that the phone shows a task with no answer left to send."""
    return (
        f"window.trackerPhone.tasks.some((t) => t.id === {task_id}) && "
        "window.trackerPhone.taskUpdatesQueued === 0"
    )


def open_task(page: Any, task_id: int) -> None:
    """Open a task's screen from its card and wait until its map shows both points."""
    page.click(f"#tasks [data-task-id='{task_id}'] .task-open")
    wait_for(page, "!document.getElementById('task-view').hidden")
    wait_for(page, 'JSON.stringify(window.trackerPhone.taskMap) === \'["task","me"]\'')


def test_task_screen_steps_through_the_states_and_postgis_follows(
    app, make_phone, make_user, server, context_for
):
    phone = make_phone(name="李强")
    http = staff(server, make_user)
    context = context_for(server.url, locale="zh-CN")
    page = open_app(context, server, phone)
    wait_for(page, "window.trackerPhone.synced >= 1")
    assert page.inner_text("#person-name") == "李强"

    task_id = send_task(server, http, phone, "垃圾堆放 rubbish")
    # The phone acknowledges delivery on its own, through its outbox.
    wait_for(page, shown(task_id))
    delivered = wait_for_row(app, task_id, "delivered")
    assert delivered.delivered_at is not None and delivered.accepted_at is None
    card = f"#tasks [data-task-id='{task_id}']"
    wait_for(page, f"document.querySelector(\"{card} .task-status\").textContent === '已送达'")
    assert page.inner_text(f"{card} .task-title") == "垃圾堆放 rubbish"

    open_task(page, task_id)
    assert page.inner_text("#task-status") == "已送达"
    assert page.inner_text("#task-category") == "其他"
    assert page.inner_text("#task-distance") == "距离你约 222 米"
    assert page.evaluate(VISIBLE_BUTTONS) == ["task-accept", "task-done", "task-decline"]
    assert page.inner_text("#task-accept") == "接受"
    shot(page, "11-task-delivered-zh")

    page.click("#task-accept")
    accepted = wait_for_row(app, task_id, "accepted")
    wait_for(page, "document.getElementById('task-status').textContent === '已接受'")
    wait_for(page, "window.trackerPhone.taskUpdatesQueued === 0")
    assert page.evaluate(VISIBLE_BUTTONS) == ["task-done", "task-decline"]
    assert accepted.accepted_at is not None and accepted.done_at is None

    page.click("#task-done")
    done = wait_for_row(app, task_id, "done")
    wait_for(page, "document.getElementById('task-status').textContent === '已完成'")
    assert page.evaluate(VISIBLE_BUTTONS) == []
    assert done.delivered_at <= done.accepted_at <= done.done_at
    shot(page, "12-task-done-zh")

    # A second task: declined with a reason, which the incident's history keeps.
    page.click("#task-back")
    declined_id = send_task(server, http, phone, "占道 vending")
    wait_for(page, shown(declined_id))
    wait_for_row(app, declined_id, "delivered")
    open_task(page, declined_id)
    page.click("#task-decline")
    assert page.is_visible("#decline-form") and not page.is_visible("#task-buttons")
    page.fill("#decline-reason", "不在辖区 not my area")
    page.click("#decline-confirm")
    declined = wait_for_row(app, declined_id, "declined")
    assert declined.note == "不在辖区 not my area" and declined.declined_at is not None
    wait_for(page, "document.getElementById('task-status').textContent === '已拒绝'")
    assert page.evaluate(VISIBLE_BUTTONS) == []


def test_a_cancelled_task_shows_cancelled_and_offers_nothing(
    app, make_phone, make_user, server, context_for
):
    phone = make_phone()
    http = staff(server, make_user)
    context = context_for(server.url, locale="zh-CN")
    page = open_app(context, server, phone)
    wait_for(page, "window.trackerPhone.synced >= 1")
    task_id = send_task(server, http, phone, "井盖缺失 manhole")
    wait_for(page, shown(task_id))
    incident_id = task_row(app, task_id).incident_id
    open_task(page, task_id)
    cancelled = http.post(
        f"{server.url}/api/v1/incidents/{incident_id}/tasks/{task_id}/cancel",
        json={"note": "duplicate"},
        timeout=10,
    )
    assert cancelled.status_code == 200, cancelled.text
    wait_for(page, "document.getElementById('task-status').textContent === '已取消'")
    assert page.evaluate(VISIBLE_BUTTONS) == []
    assert task_row(app, task_id).status == "cancelled"
    shot(page, "13-task-cancelled-zh")


def test_an_answer_made_offline_survives_a_reload_and_is_applied_once(
    app, make_phone, make_user, server, context_for
):
    phone = make_phone()
    http = staff(server, make_user)
    context = context_for(server.url)
    page = open_app(context, server, phone)
    wait_for(page, "window.trackerPhone.synced >= 1")
    task_id = send_task(server, http, phone, "Fallen tree")
    wait_for(page, shown(task_id))
    wait_for_row(app, task_id, "delivered")

    context.set_offline(True)
    wait_for(page, "window.trackerPhone.connection !== 'connected'")
    open_task(page, task_id)
    page.click("#task-accept")
    wait_for(page, "window.trackerPhone.taskUpdatesQueued === 1")
    assert page.inner_text("#task-status") == "Accepted"
    assert page.is_visible("#task-sending")

    # Reloaded offline, the app comes from the service worker and the answer from IndexedDB.
    page.reload()
    wait_for(page, "window.trackerPhone && window.trackerPhone.ready === true")
    wait_for(page, "window.trackerPhone.taskUpdatesQueued === 1")
    assert task_row(app, task_id).status == "delivered"

    context.set_offline(False)
    wait_for(page, "window.trackerPhone.taskUpdatesQueued === 0", timeout_s=30)
    accepted = wait_for_row(app, task_id, "accepted")
    detail = http.get(f"{server.url}/api/v1/incidents/{accepted.incident_id}", timeout=10).json()
    kinds = [h["kind"] for h in detail["history"] if h["task_id"] == task_id]
    assert kinds.count("accepted") == 1, kinds


def test_a_revoked_phone_shows_the_unpaired_state_and_offers_no_duty_or_sos(
    app, make_phone, runner, server, context_for
):
    phone = make_phone()
    context = context_for(server.url, locale="zh-CN")
    page = open_app(context, server, phone)
    page.click("#duty")
    wait_for(page, "window.trackerPhone.onDuty && window.trackerPhone.dutySynced")
    wait_for(page, "window.trackerPhone.recorded === 1")
    assert page.is_visible("#sos") and page.is_visible("#duty")
    assert phone.token not in page.inner_text("body"), "the token must not be on the screen"

    result = runner.invoke(args=["devices", "revoke", str(phone.device_id)])
    assert result.exit_code == 0, result.output
    # An idle connection is told by the server's sweep (CUTOFF_INTERVAL_S, 2 s).
    wait_for(page, "window.trackerPhone.revoked === true", timeout_s=10)
    wait_for(page, "document.getElementById('unpaired').checkVisibility()")
    unpaired = "此手机已解除配对，请向所在单位索取新的配对码"
    assert page.inner_text("#unpaired-title") == unpaired
    for control in ("#sos", "#duty", "#report-open", "#paired"):
        assert not page.is_visible(control), control
    assert page.evaluate("window.trackerPhone.onDuty") is False
    shot(page, "14-unpaired-zh")

    # Sampling has stopped: a new position is not kept.
    context.set_geolocation({"latitude": START[0] + 0.01, "longitude": START[1], "accuracy": 5})
    time.sleep(1.5)
    assert page.evaluate("window.trackerPhone.recorded") == 1

    # The state outlives a reload, and the app does not try the refused token again.
    page.reload()
    wait_for(page, "window.trackerPhone && window.trackerPhone.ready === true")
    assert page.inner_text("#unpaired-title") == unpaired
    assert not page.is_visible("#sos") and not page.is_visible("#duty")
    time.sleep(1.5)
    assert page.evaluate("window.trackerPhone.connection") == "offline"
    assert page.evaluate("window.trackerPhone.recorded") == 0

    # A new pairing link brings the phone back.
    issued = runner.invoke(args=["devices", "issue", str(phone.person_id)])
    assert issued.exit_code == 0, issued.output
    token = issued.output.rstrip("\n").split("\n")[-1]
    page.goto(f"{server.url}/m#token={token}")
    wait_for(page, "window.trackerPhone.connection === 'connected'")
    assert page.is_visible("#sos") and page.is_visible("#duty")
    assert not page.is_visible("#unpaired")


def test_a_phone_refused_at_connect_shows_the_unpaired_state(
    make_phone, runner, server, context_for
):
    phone = make_phone()
    result = runner.invoke(args=["devices", "revoke", str(phone.device_id)])
    assert result.exit_code == 0, result.output
    context = context_for(server.url)
    page = context.new_page()
    page.goto(f"{server.url}/m#token={phone.token}")
    wait_for(page, "window.trackerPhone && window.trackerPhone.revoked === true")
    assert (
        page.inner_text("#unpaired-title")
        == "This phone has been unpaired; ask your office for a new code"
    )
    assert not page.is_visible("#sos") and not page.is_visible("#duty")
