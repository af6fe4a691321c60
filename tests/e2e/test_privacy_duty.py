"""The tracking policy's defaults on a real server: only on-duty fixes are kept.

An install that sets nothing keeps a GPS app's fixes only while the person is on duty, and
staff start and end that duty on /admin; the phone app says when its fixes are not kept;
the simulator's people are on duty, so the demo map moves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text

from tests.conftest import ROOT
from tests.e2e.chromium import wait_until
from tests.e2e.phones import TestPhone
from tests.e2e.staff import login, staff_session
from tests.e2e.staff import wait_for as wait_until_true
from tests.e2e.test_admin_people import open_people, search
from tests.e2e.test_metrics_server import moved, osmand_path, scrape, stored_count
from tests.e2e.test_phone import go_on_duty, open_app, phone_contexts, wait_for


def shift_audit(sql, person_id: int) -> list[Any]:
    """Return the person's shift audit rows (action, actor, before, after), oldest first."""
    return sql(
        "SELECT action, actor_name, before, after FROM audit_events WHERE target_kind = "
        "'person' AND target_id = :p AND action LIKE 'person.shift%' ORDER BY id",
        p=person_id,
    )


def gps_app_user_and_dispatcher(server, make_unit, make_phone, make_user):
    """Return a person of a new unit with a phone, their dispatcher's name and session, and
    the URL that starts and ends the person's shift."""
    unit_id = make_unit()
    phone = make_phone(unit_id=unit_id)
    username, password = make_user("dispatcher", unit_id)
    staff = login(server, username, password)
    return phone, username, staff, f"{server.url}/api/v1/people/{phone.person_id}/duty"


def on_live_map(server, http, person_id: int) -> bool:
    """Return whether the staff session's live map shows the person."""
    features = http.get(f"{server.url}/api/v1/live", timeout=10).json()["features"]
    return person_id in {f["properties"]["person_id"] for f in features}


def test_a_fresh_install_acknowledges_off_duty_gps_app_fixes_stores_none_and_counts_them(
    product_policy_server, make_phone, database_url
):
    server = product_policy_server
    phone = make_phone()  # no unit: the install's default policy applies
    before = scrape(server)
    for minutes_ago in (4, 3, 2):
        answer = osmand_path(server, phone.token, minutes_ago)
        assert answer.status_code == 200, answer.text
        assert (answer.json()["stored"], answer.json()["not_kept"]) == (0, 1)
    after = scrape(server)
    off = 'tracker_positions_discarded_total{path="osmand",reason="off_duty"}'
    assert moved(before, after, off) == 3
    assert moved(before, after, 'tracker_positions_stored_total{path="osmand"}') == 0
    assert stored_count(database_url, phone.person_id) == 0


def test_staff_start_and_end_a_gps_app_users_shift_and_only_fixes_on_duty_are_kept(
    product_policy_server, make_user, make_unit, make_phone, database_url, sql
):
    server = product_policy_server
    phone, username, staff, duty = gps_app_user_and_dispatcher(
        server, make_unit, make_phone, make_user
    )
    socket = TestPhone(server.url, phone.token).connect()
    pushed: list[Any] = []
    socket.client.on("duty", pushed.append, namespace="/device")
    try:
        started = staff.put(duty, json={"on": True}, timeout=10)
        assert started.status_code == 200, started.text
        assert started.json()["on_duty"] is True
        kept = osmand_path(server, phone.token, 2).json()
        assert (kept["stored"], kept.get("not_kept")) == (1, None)
        assert stored_count(database_url, phone.person_id) == 1
        assert on_live_map(server, staff, phone.person_id)

        ended = staff.put(duty, json={"on": False}, timeout=10)
        assert ended.status_code == 200 and ended.json()["on_duty"] is False
        dropped = osmand_path(server, phone.token, 1).json()
        assert (dropped["stored"], dropped["not_kept"]) == (0, 1)
        assert stored_count(database_url, phone.person_id) == 1
        # Off duty, and LIVE_SHOWS_OFF_DUTY is 0 by default.
        assert not on_live_map(server, staff, phone.person_id)
        # The person's phone app, if connected, hears both.
        assert wait_until_true(lambda: pushed == [{"on": True}, {"on": False}])
    finally:
        socket.close()

    # Ending it again changes nothing and records nothing.
    assert staff.put(duty, json={"on": False}, timeout=10).status_code == 200
    rows = shift_audit(sql, phone.person_id)
    assert [(r.action, r.actor_name) for r in rows] == [
        ("person.shift_start", username),
        ("person.shift_end", username),
    ]
    assert rows[0].before == {"on_duty": False} and rows[0].after["on_duty"] is True
    shift = sql("SELECT id, end_reason FROM shifts WHERE person_id = :p", p=phone.person_id)
    assert [(s.id, s.end_reason) for s in shift] == [(rows[1].after["shift_id"], "staff")]


def test_an_office_starts_and_ends_a_shift_on_the_people_page(
    product_policy_server, browser, make_user, make_unit, make_phone, sql
):
    unit_id = make_unit()
    phone = make_phone(unit_id=unit_id)
    ((name,),) = sql("SELECT name FROM people WHERE id = :p", p=phone.person_id)
    page = open_people(browser, product_policy_server, make_user)
    try:
        search(page, name)
        page.click(f'#people-rows tr[data-person-id="{phone.person_id}"]')
        page.wait_for_selector("#person-duty:not([hidden])")
        assert page.inner_text("#person-duty") == "开始执勤"
        page.click("#person-duty")
        page.wait_for_selector("#person-ok:not([hidden])")
        assert page.inner_text("#person-ok") == f"{name} 已开始执勤。"
        wait_until(page, "document.querySelector('#person-duty').textContent === '结束执勤'")
        assert sql("SELECT id FROM shifts WHERE person_id = :p AND ended_at IS NULL",
                   p=phone.person_id)  # fmt: skip
        page.click("#person-duty")
        wait_until(page, "document.querySelector('#person-duty').textContent === '开始执勤'")
        assert page.inner_text("#person-ok") == f"{name} 已结束执勤。"
        shifts = sql("SELECT end_reason FROM shifts WHERE person_id = :p", p=phone.person_id)
        assert [s.end_reason for s in shifts] == ["staff"]
    finally:
        page.context.close()


def test_viewers_other_units_bad_bodies_and_deactivated_people_are_refused(
    product_policy_server, make_user, make_unit, make_phone, sql
):
    server = product_policy_server
    unit_id, other_unit = make_unit(), make_unit()
    phone = make_phone(unit_id=unit_id)
    duty = f"{server.url}/api/v1/people/{phone.person_id}/duty"
    viewer = staff_session(server, make_user, "viewer", unit_id)
    assert viewer.put(duty, json={"on": True}, timeout=10).status_code == 403
    outsider = staff_session(server, make_user, "admin", other_unit)
    answer = outsider.put(duty, json={"on": True}, timeout=10)
    assert answer.status_code == 404 and answer.json()["error"] == "person: not found"
    admin = staff_session(server, make_user, "admin", unit_id)
    for body in ({"on": "yes"}, {}, ["on"]):
        refused = admin.put(duty, json=body, timeout=10)
        assert refused.status_code == 400, body
    assert refused.json()["error"].startswith("body:")
    assert admin.put(duty, json={}, timeout=10).json()["error"] == "on: must be true or false"
    off = admin.patch(
        f"{server.url}/api/v1/people/{phone.person_id}", json={"active": False}, timeout=10
    )
    assert off.status_code == 200
    deactivated = admin.put(duty, json={"on": True}, timeout=10)
    assert deactivated.status_code == 409, deactivated.text
    assert shift_audit(sql, phone.person_id) == []
    assert sql("SELECT id FROM shifts WHERE person_id = :p", p=phone.person_id) == []


def test_the_phone_app_goes_on_duty_first_follows_staff_and_says_when_fixes_are_not_kept(
    product_policy_server, browser, make_user, make_unit, make_phone, database_url
):
    server = product_policy_server
    unit_id = make_unit()
    phone = make_phone(unit_id=unit_id)
    admin = staff_session(server, make_user, "admin", unit_id)
    duty = f"{server.url}/api/v1/people/{phone.person_id}/duty"
    with phone_contexts(browser) as make_context:
        context = make_context(server.url, locale="zh-CN")
        page = open_app(context, server, phone)
        page.click("#notice-ok")
        assert page.inner_text("#not-kept") == "未开始执勤：位置不会保存"
        walk = go_on_duty(context, page)
        # The first fix is sent only once the server knows of the shift: it is kept.
        wait_for(page, "window.trackerPhone.queued === 0 && window.trackerPhone.stored === 1")
        assert not page.is_visible("#not-kept")

        # Staff end the shift: the phone follows, stops sampling and says so.
        assert admin.put(duty, json={"on": False}, timeout=10).status_code == 200
        wait_for(page, "window.trackerPhone.onDuty === false")
        assert page.inner_text("#not-kept") == "未开始执勤：位置不会保存"
        assert page.inner_text("#duty") == "开始执勤"
        assert admin.put(duty, json={"on": True}, timeout=10).status_code == 200
        wait_for(page, "window.trackerPhone.onDuty === true")

        # Outside the unit's duty hours the fixes are acknowledged, not kept, and the
        # phone says so instead of counting them as sent.
        now_local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))
        start, end = now_local - timedelta(hours=3), now_local - timedelta(hours=1)
        policy = admin.put(
            f"{server.url}/api/v1/units/{unit_id}/tracking-policy",
            json={"tracking_policy": "duty_hours", "duty_hours": f"{start:%H}:00-{end:%H}:00"},
            timeout=10,
        )
        assert policy.status_code == 200, policy.text
        walk.step()
        wait_for(page, "window.trackerPhone.queued === 0 && window.trackerPhone.notKept === 1")
        banner = page.inner_text("#not-kept")
        assert banner == "未在执勤时间内：最近 1 个位置服务器已收到，但不会保存"
    assert stored_count(database_url, phone.person_id) == 1


def test_the_simulators_people_go_on_duty_so_their_fixes_are_kept(
    product_policy_server, database_url
):
    area = (121.50, 31.30, 121.51, 31.31)
    env = {**os.environ, "DATABASE_URL": database_url, "FLASK_APP": "wsgi"}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "simulate", "--url", product_policy_server.url,
         "--people", "2", "--interval", "0.5", "--duration", "3",
         "--area", ",".join(map(str, area)), "--seed", "11"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert int(summary.split("stored ")[1].split(" ")[0]) >= 2 * 2
    assert "not kept 0" in summary and "waiting 0" in summary


def test_fixes_taken_during_a_shift_are_kept_when_they_arrive_after_it_ended(
    product_policy_server, make_user, make_unit, make_phone, database_url, sql
):
    """A GPS app out of signal sends its fixes late: those taken on duty are still kept."""
    server = product_policy_server
    phone, _, staff, duty = gps_app_user_and_dispatcher(server, make_unit, make_phone, make_user)
    assert staff.put(duty, json={"on": True}, timeout=10).status_code == 200
    # The shift began 10 minutes ago (as if started then); the app was silent since.
    sql_engine = create_engine(database_url)
    with sql_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE shifts SET started_at = now() - interval '10 minutes' "
                "WHERE person_id = :p AND ended_at IS NULL"
            ),
            {"p": phone.person_id},
        )
    sql_engine.dispose()
    assert staff.put(duty, json={"on": False}, timeout=10).status_code == 200

    def sent(minutes_ago: int) -> dict:
        answer = osmand_path(server, phone.token, minutes_ago)
        assert answer.status_code == 200, answer.text
        return answer.json()

    # At once in this process, which noted the end itself ...
    first = sent(5)
    assert (first["stored"], first.get("not_kept")) == (1, None)
    # ... and after the next re-read of the policies (TRACKING_POLICY_REFRESH_S, 10 s),
    # which brings the shift's real start: a fix from before it is not kept.
    time.sleep(11)
    assert sent(3)["stored"] == 1  # this fix starts the re-read
    time.sleep(1)
    assert sent(12)["not_kept"] == 1
    assert sent(4)["stored"] == 1
    ts = sql(
        "SELECT round(extract(epoch FROM now() - ts) / 60) AS m FROM positions "
        "WHERE person_id = :p ORDER BY ts",
        p=phone.person_id,
    )
    assert [int(r.m) for r in ts] == [5, 4, 3]
