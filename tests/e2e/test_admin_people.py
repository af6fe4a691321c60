"""The administration pages in Chromium against the real server, each step checked in PostGIS.

An office adds a person and issues a phone in the browser, and the pairing link on the page
pairs a phone whose fixes are stored; a roster with a bad row is refused whole and then
imported; revoking a phone on the page cuts it off; a viewer gets no administration.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from tests.conftest import ROOT, Phone, ServerProcess
from tests.e2e.chromium import wait_until
from tests.e2e.phones import TestPhone, now_ms
from tests.e2e.staff import wait_for
from tests.e2e.test_phone import go_on_duty, phone_contexts

openpyxl = pytest.importorskip("openpyxl")

DOCS_IMG = ROOT / "docs" / "img"
ARTIFACTS = ROOT / "var" / "artifacts"
CUTOFF_INTERVAL_S = 1.0
HEADERS = ["姓名", "手机号", "角色", "单位", "巡查网格"]


@pytest.fixture(scope="module")
def admin_server(database_url: str) -> Iterator[ServerProcess]:
    """Run a server whose pairing links point at itself and that cuts revoked phones in 1 s."""
    proc = ServerProcess(
        database_url,
        {
            "CUTOFF_INTERVAL_S": str(CUTOFF_INTERVAL_S),
            # Only movement keeps a fix (1 m), so each emulated position is one stored fix.
            "PHONE_MIN_INTERVAL_S": "3600",
            "PHONE_MIN_DISTANCE_M": "1",
        },
    )
    proc.env["PUBLIC_URL"] = proc.url
    proc.start()
    yield proc
    proc.stop()


def staff_page(browser, server: ServerProcess, make_user, role: str = "admin", path="/admin"):
    """Return a page of a new staff account in Chinese, logged in over the API, at `path`."""
    username, password = make_user(role)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    answer = context.request.post(
        f"{server.url}/api/v1/session", data={"username": username, "password": password}
    )
    assert answer.status == 200
    page = context.new_page()
    page.goto(f"{server.url}{path}")
    return page


def open_people(browser, server, make_user):
    """Return the people page of a new admin once its first list has loaded."""
    page = staff_page(browser, server, make_user)
    wait_until(page, "Number(document.body.dataset.peopleLoaded) >= 1")
    return page


def shot(page, path: Path) -> None:
    """Save a screenshot where the docs (or the artifacts) keep it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def tag() -> str:
    """Return a short unique suffix for names and phone numbers."""
    return uuid.uuid4().hex[:6]


def phone_number() -> str:
    """Return a phone number no other test uses."""
    return f"139{uuid.uuid4().int % 10**8:08d}"


def search(page, query: str) -> None:
    """Type into the people search and wait for the list to reload."""
    loaded = page.evaluate("Number(document.body.dataset.peopleLoaded)")
    page.fill("#filter-q", query)
    wait_until(page, f"Number(document.body.dataset.peopleLoaded) > {loaded}")


def test_admin_adds_a_person_issues_a_phone_and_its_pairing_link_reports_fixes(
    admin_server, browser, make_user, make_unit, sql
):
    street = make_unit(f"测试街道{tag()}", "street")
    grid_name = f"第3网格{tag()}"
    grid = make_unit(grid_name, "grid", street)
    name, number = f"王芳{tag()}", phone_number()
    page = open_people(browser, admin_server, make_user)
    try:
        page.click("#add-person")
        page.fill("#person-name", name)
        page.select_option("#person-role", "grid_worker")
        page.fill("#person-phone", number)
        page.select_option("#person-unit", str(grid))
        page.select_option("#person-grid", str(grid))
        page.click("#person-save")
        page.wait_for_selector("#person-ok:not([hidden])")
        assert page.inner_text("#person-ok") == f"已添加 {name}。"
        ((person_id, role, phone, unit_id, patrol_id, active),) = sql(
            "SELECT id, role, phone, unit_id, patrol_unit_id, active FROM people WHERE name = :n",
            n=name,
        )
        assert (role, phone, unit_id, patrol_id, active) == (
            "grid_worker",
            number,
            grid,
            grid,
            True,
        )
        # The shared test database holds many people: find the new one as an office would.
        search(page, name)
        row = page.wait_for_selector(f'#people-rows tr[data-person-id="{person_id}"]')
        assert grid_name in row.inner_text() and "网格员" in row.inner_text()

        page.fill("#issue-label", "红米 12")
        page.click("#issue-submit")
        page.wait_for_selector("#issued:not([hidden])")
        pairing_url = page.get_attribute("#issued-link", "href")
        assert pairing_url.startswith(f"{admin_server.url}/m#token=")
        token = pairing_url.split("#token=", 1)[1]
        qr_src = page.get_attribute("#issued-qr img", "src")
        assert qr_src.startswith("data:image/svg+xml") and "<svg" in unquote(qr_src)
        assert page.inner_text("#setup-server") == admin_server.url
        assert page.inner_text("#setup-device") == token
        assert page.inner_text("#setup-osmand") == f"{admin_server.url}/osmand?id={token}"
        assert page.inner_text("#setup-owntracks") == f"{admin_server.url}/owntracks/{token}"
        shot(page, ARTIFACTS / "admin-issued-zh.png")
        ((device_id, label, revoked),) = sql(
            "SELECT id, label, revoked_at FROM devices WHERE person_id = :p", p=person_id
        )
        assert (label, revoked) == ("红米 12", None)

        # The print stylesheet prints the card alone.
        page.emulate_media(media="print")
        assert page.is_visible("#issued-card") and not page.is_visible("#people-table")
        assert not page.is_visible("#issued-print")
        page.emulate_media(media="screen")

        page.click("#issued-done")
        assert token not in page.content(), "the token must leave the page once it is closed"
        page.wait_for_selector(f'#device-rows tr[data-device-id="{device_id}"]')
        shot(page, DOCS_IMG / "admin-people-zh.png")

        with phone_contexts(browser) as make_context:
            context = make_context(admin_server.url, locale="zh-CN")
            phone_page = context.new_page()
            phone_page.goto(pairing_url)
            wait_until(phone_page, "window.trackerPhone && window.trackerPhone.ready === true")
            wait_until(phone_page, "window.trackerPhone.connection === 'connected'")
            assert "token" not in phone_page.url
            wait_until(
                phone_page,
                f"document.getElementById('person-name').textContent === {name!r}",
            )
            walk = go_on_duty(context, phone_page)
            for _ in range(3):
                walk.step()
            wait_until(phone_page, "window.trackerPhone.stored === 4")
            wait_until(phone_page, "window.trackerPhone.queued === 0")
            assert_same_track_sql(sql, walk, Phone(person_id, device_id, token, grid))
        # The page shows what the phone reported with: the server records a web-app socket
        # in its next connection sweep (every CUTOFF_INTERVAL_S).
        client = "SELECT client FROM devices WHERE id = :d"
        assert wait_for(lambda: sql(client, d=device_id) == [("webapp",)], 10)
        page.click(f'#people-rows tr[data-person-id="{person_id}"]')
        wait_until(
            page,
            f"document.querySelector('#device-rows tr[data-device-id=\"{device_id}\"]')"
            "?.textContent.includes('手机应用')",
        )
    finally:
        page.context.close()


def assert_same_track_sql(sql, walk, phone: Phone) -> None:
    """Compare the phone's stored fixes in PostGIS with the emulated walk, fix by fix."""
    rows = sql(
        "SELECT person_id, device_id, ST_Y(geom), ST_X(geom), accuracy_m FROM positions"
        " WHERE device_id = :d ORDER BY ts",
        d=phone.device_id,
    )
    want = [(phone.person_id, phone.device_id, lat, lon, acc) for lat, lon, acc in walk.emulated]
    assert len(rows) == len(want), f"{len(rows)} stored, {len(want)} emulated"
    for got, exp in zip(rows, want, strict=True):
        assert tuple(got[:2]) == exp[:2]
        assert got[2:] == pytest.approx(exp[2:], abs=1e-7)


def roster_file(path: Path, rows: list[list[Any]]) -> Path:
    """Write an XLSX roster with the Chinese headers and `rows`; return its path."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "花名册"
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def row_actions(page) -> list[str]:
    """Return the action the preview shows for each row."""
    return page.eval_on_selector_all("#roster-rows tr", "rows => rows.map(r => r.dataset.action)")


def check_roster(page, path: Path) -> None:
    """Choose a roster file on the page and wait for its preview."""
    page.evaluate("document.getElementById('roster-table').hidden = true")
    page.set_input_files("#roster-file", str(path))
    page.click("#roster-preview")
    page.wait_for_selector("#roster-table:not([hidden])")


def test_a_roster_with_a_bad_row_is_refused_whole_then_imported_and_unchanged_again(
    admin_server, browser, make_user, make_unit, sql, tmp_path
):
    community_name = f"测试社区{tag()}"
    community = make_unit(community_name, "community")
    grid_name = f"花名册网格{tag()}"
    grid = make_unit(grid_name, "grid", community)
    numbers = [phone_number() for _ in range(3)]
    names = [f"{surname}{tag()}" for surname in ("李娜", "张伟", "刘洋")]
    good = [
        [names[0], numbers[0], "志愿者", community_name, grid_name],
        [names[1], numbers[1], "街巷长", community_name, None],
        [names[2], numbers[2], "巡逻队员", community_name, grid_name],
    ]
    bad = [list(row) for row in good]
    bad[1][2] = "厨师"  # row 3 of the sheet: no such role
    page = staff_page(browser, admin_server, make_user, path="/admin/rosters")
    try:
        check_roster(page, roster_file(tmp_path / "bad.xlsx", bad))
        assert page.is_disabled("#roster-import")
        assert page.get_attribute("#roster-result", "data-state") == "error"
        errors = page.inner_text("#roster-errors")
        assert "第 3 行" in errors and "角色" in errors, errors
        assert page.get_attribute('#roster-rows tr[data-row="3"]', "class") == "has-error"
        assert "角色" in page.inner_text('#roster-rows tr[data-row="3"] .row-errors')
        shot(page, ARTIFACTS / "admin-roster-refused-zh.png")
        # Not only the page: the server refuses the whole file too, and stores nothing.
        http = page.context.request
        refused = http.post(
            f"{admin_server.url}/api/v1/roster/import",
            data={"file_base64": base64.b64encode((tmp_path / "bad.xlsx").read_bytes()).decode()},
        )
        assert refused.status == 400
        assert sql("SELECT id FROM people WHERE phone = ANY(:p)", p=numbers) == []

        fixed = roster_file(tmp_path / "fixed.xlsx", good)
        check_roster(page, fixed)
        assert page.get_attribute("#roster-result", "data-state") == "ok"
        assert not page.is_disabled("#roster-import")
        actions = row_actions(page)
        assert actions == ["create", "create", "create"]
        page.click("#roster-import")
        page.wait_for_selector("#issue-box:not([hidden])")
        assert "新增 3" in page.inner_text("#roster-status")
        stored = sql(
            "SELECT name, phone, role, unit_id, patrol_unit_id, id FROM people"
            " WHERE phone = ANY(:p) ORDER BY phone",
            p=numbers,
        )
        assert [tuple(row[:5]) for row in stored] == sorted(
            [
                (names[0], numbers[0], "volunteer", community, grid),
                (names[1], numbers[1], "street_chief", community, None),
                (names[2], numbers[2], "patrol", community, grid),
            ],
            key=lambda row: row[1],
        )
        person_ids = sorted(row[5] for row in stored)

        page.fill("#sheet-label", "集合发放")
        page.click("#sheet-issue")
        page.wait_for_selector("#sheet:not([hidden])")
        cards = page.query_selector_all("#sheet-cards .sheet-card")
        assert sorted(int(card.get_attribute("data-person-id")) for card in cards) == person_ids
        assert set(page.inner_text("#sheet-cards").split("\n")) >= set(names)
        for card in cards:
            assert card.get_attribute("data-pairing-url").startswith(f"{admin_server.url}/m#token=")
            assert card.query_selector("img").get_attribute("src").startswith("data:image/svg+xml")
        devices = sql(
            "SELECT person_id, label FROM devices WHERE person_id = ANY(:p) AND revoked_at IS NULL"
            " ORDER BY person_id",
            p=person_ids,
        )
        assert [tuple(row) for row in devices] == [(pid, "集合发放") for pid in person_ids]
        page.emulate_media(media="print")
        assert page.is_visible("#sheet-cards") and not page.is_visible("#roster-form")
        page.locator("#sheet").screenshot(path=str(DOCS_IMG / "admin-sheet-zh.png"))
        page.emulate_media(media="screen")

        check_roster(page, fixed)
        actions = row_actions(page)
        assert actions == ["unchanged", "unchanged", "unchanged"]
        assert len(sql("SELECT id FROM people WHERE phone = ANY(:p)", p=numbers)) == 3
    finally:
        page.context.close()


def test_revoking_a_phone_in_the_page_cuts_it_off_within_the_cutoff_interval(
    admin_server, browser, make_user, make_phone, sql
):
    person = make_phone(name=f"吊销测试{tag()}")
    (name,) = sql("SELECT name FROM people WHERE id = :p", p=person.person_id)[0]
    phone = TestPhone(admin_server.url, person.token).connect()
    page = open_people(browser, admin_server, make_user)
    try:
        assert phone.send([{"ts": now_ms(), "lat": 39.91, "lon": 116.39}])["ok"]
        search(page, name)
        page.click(f'#people-rows tr[data-person-id="{person.person_id}"]')
        revoke = f'#device-rows tr[data-device-id="{person.device_id}"] button.revoke'
        page.wait_for_selector(revoke)
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(revoke)
        clicked = time.monotonic()
        assert phone.wait_disconnected(timeout=CUTOFF_INTERVAL_S + 1.0), "socket still open"
        print(f"phone socket closed {time.monotonic() - clicked:.2f} s after the revoke click")
        wait_until(page, f"!document.querySelector('{revoke}')")
        ((revoked_at,),) = sql("SELECT revoked_at FROM devices WHERE id = :d", d=person.device_id)
        assert revoked_at is not None

        later = TestPhone(admin_server.url, person.token)
        with pytest.raises(Exception):  # noqa: B017 - the refusal's type is python-socketio's
            later.connect()
        assert later.refusal is not None
        answer = requests.post(
            f"{admin_server.url}/osmand",
            params={"id": person.token, "lat": 39.92, "lon": 116.4, "timestamp": now_ms() // 1000},
            timeout=5,
        )
        assert answer.status_code == 404  # what OsmAnd-style apps get for a revoked token
        (count,) = sql("SELECT count(*) FROM positions WHERE device_id = :d", d=person.device_id)[0]
        assert count == 1, "only the fix sent before the revoke is stored"
    finally:
        phone.close()
        page.context.close()


def test_a_viewer_has_no_administration(admin_server, browser, make_user, make_phone):
    page = staff_page(browser, admin_server, make_user, role="viewer", path="/")
    try:
        wait_until(page, "document.body.dataset.synced", 15)
        assert page.query_selector("#admin-link") is None
        for path in ("/admin", "/admin/rosters", "/admin/staff"):
            answer = page.goto(f"{admin_server.url}{path}")
            assert answer.status == 403, path
            assert page.query_selector("#person-form, #roster-form, #user-form") is None
        # The server refuses the changes too, whatever a page shows.
        http = page.context.request
        person = make_phone()
        changed = http.patch(
            f"{admin_server.url}/api/v1/people/{person.person_id}", data={"name": "x"}
        )
        assert changed.status == 403
        added = http.post(f"{admin_server.url}/api/v1/people", data={"name": "x", "role": "patrol"})
        assert added.status == 403
    finally:
        page.context.close()


def test_a_dispatcher_has_people_and_rosters_but_no_staff_accounts(
    admin_server, browser, make_user
):
    page = staff_page(browser, admin_server, make_user, role="dispatcher", path="/")
    try:
        wait_until(page, "document.body.dataset.synced", 15)
        page.click("#admin-link")
        page.wait_for_url(f"{admin_server.url}/admin")
        wait_until(page, "Number(document.body.dataset.peopleLoaded) >= 1")
        assert page.query_selector('.admin-nav a[href="/admin/staff"]') is None
        assert page.goto(f"{admin_server.url}/admin/staff").status == 403
    finally:
        page.context.close()


def test_an_admin_adds_a_staff_account_resets_its_password_and_disables_it(
    admin_server, browser, make_user, make_unit, sql
):
    unit = make_unit(f"账号街道{tag()}", "street")
    username, password = f"zhang{tag()}", uuid.uuid4().hex
    page = staff_page(browser, admin_server, make_user, path="/admin/staff")
    try:
        page.wait_for_selector("#user-rows tr")
        page.fill("#user-name", username)
        page.fill("#user-password", password)
        page.select_option("#user-role", "dispatcher")
        page.select_option("#user-unit", str(unit))
        page.click("#user-form button[type=submit]")
        row = f'#user-rows tr[data-username="{username}"]'
        page.wait_for_selector(row)
        ((user_id, role, unit_id, active),) = sql(
            "SELECT id, role, unit_id, active FROM users WHERE username = :u", u=username
        )
        assert (role, unit_id, active) == ("dispatcher", unit, True)

        # The new account logs in; disabling it in the page ends that session at once.
        http = requests.Session()
        login = {"username": username, "password": password}
        assert http.post(f"{admin_server.url}/api/v1/session", json=login).status_code == 200
        assert http.get(f"{admin_server.url}/api/v1/session").status_code == 200
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f"{row} button.toggle")
        page.wait_for_selector(f"{row}.inactive")
        assert "已结束" in page.inner_text("#user-message")
        assert sql("SELECT active FROM users WHERE id = :u", u=user_id) == [(False,)]
        assert http.get(f"{admin_server.url}/api/v1/session").status_code == 401

        page.click(f"{row} button.toggle")
        page.wait_for_selector(f"{row}:not(.inactive)")
        new_password = uuid.uuid4().hex
        page.click(f"{row} button.reset")
        page.fill(f"{row} .reset-form input", new_password)
        page.click(f"{row} .reset-form button")
        page.wait_for_selector("#user-message:has-text('密码已更改')")
        login["password"] = new_password
        assert http.post(f"{admin_server.url}/api/v1/session", json=login).status_code == 200
        shot(page, ARTIFACTS / "admin-staff-zh.png")
    finally:
        page.context.close()
