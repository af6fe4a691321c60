"""The audit page in a real browser, in Chinese: who read whose track; erase a person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import create_engine, text

from tests.e2e.chromium import wait_until
from tests.e2e.staff import staff_session


def admin_basis(database_url: str, person_id: int) -> tuple:
    """Return a person's legal basis and note as stored."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return tuple(
                conn.execute(
                    text("SELECT legal_basis, legal_basis_note FROM people WHERE id = :p"),
                    {"p": person_id},
                ).one()
            )
    finally:
        engine.dispose()


def test_admin_sees_who_read_a_track_and_erases_the_person(
    browser, server, make_user, make_phone, database_url
):
    phone = make_phone(name="审计 测试")
    ts = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
    stored = requests.post(
        f"{server.url}/api/v1/positions",
        json={"positions": [{"ts": ts, "lat": 39.9, "lon": 116.4}]},
        headers={"Authorization": f"Bearer {phone.token}"},
        timeout=10,
    )
    assert stored.json()["stored"] == 1
    reader = staff_session(server, make_user, "dispatcher")
    assert reader.get(f"{server.url}/api/v1/people/{phone.person_id}/track").status_code == 200
    username, password = make_user("admin")
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(f"{server.url}/login")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/")
        page.goto(f"{server.url}/admin/audit?person_id={phone.person_id}")
        wait_until(page, "document.querySelectorAll('#audit-rows tr').length > 0", 20)
        assert page.inner_text("h1") == "审计日志"
        rows = page.locator("#audit-rows tr")
        assert rows.count() == 1
        assert "查看轨迹" in rows.first.inner_text()
        assert f"?person_id={phone.person_id}" in page.get_attribute("#audit-csv", "href")
        assert page.is_visible("#person-actions")

        page.select_option("#basis", "consent")
        page.fill("#basis-note", "表格 2026-17")
        page.click("#basis-form button[type=submit]")
        wait_until(page, "!document.getElementById('person-message').hidden", 20)
        assert "处理依据" in page.inner_text("#person-message")
        wait_until(
            page,
            "document.querySelector('#audit-rows tr')?.dataset.action === 'person.legal_basis'",
        )
        basis = admin_basis(database_url, phone.person_id)
        assert basis == ("consent", "表格 2026-17")

        page.on("dialog", lambda dialog: dialog.accept())
        page.click("#person-erase")
        wait_until(
            page, "document.getElementById('person-message').textContent.includes('已删除')", 20
        )
        assert "已删除" in page.inner_text("#person-message")
        wait_until(
            page, "document.querySelector('#audit-rows tr')?.dataset.action === 'person.erase'"
        )
    finally:
        context.close()
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            left = conn.execute(
                text("SELECT count(*) FROM positions WHERE person_id = :p"), {"p": phone.person_id}
            ).scalar()
            name = conn.execute(
                text("SELECT name FROM people WHERE id = :p"), {"p": phone.person_id}
            ).scalar()
    finally:
        engine.dispose()
    assert (left, name) == (0, f"erased-{phone.person_id}")


def test_the_audit_page_is_for_admins(server, make_user):
    dispatcher = staff_session(server, make_user, "dispatcher")
    assert dispatcher.get(f"{server.url}/admin/audit", timeout=10).status_code == 403
