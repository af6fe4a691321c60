"""Staff sessions end when they should, and failed logins are throttled, on a real server."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import ROOT, ServerProcess
from tests.e2e.test_map_scope import LiveViewer, api_session

WRONG = "wrong password"


@pytest.fixture(scope="module")
def strict_server(database_url):
    """Run a server whose login limits are short enough to wait out in a test."""
    proc = ServerProcess(
        database_url,
        {
            "LOGIN_LIMIT_ACCOUNT": "10 per 8 seconds",
            "LOGIN_LIMIT_ADDRESS": "20 per 8 seconds",
            "CUTOFF_INTERVAL_S": "0.5",
        },
    )
    proc.start()
    yield proc
    proc.stop()


def login(url: str, username: str, password: str) -> requests.Response:
    """Post a login and return the answer."""
    return requests.post(
        f"{url}/api/v1/session", json={"username": username, "password": password}, timeout=10
    )


def copy_of(http: requests.Session) -> requests.Session:
    """Return a second client holding a copy of the session cookie, as a thief would."""
    thief = requests.Session()
    thief.cookies.set("session", http.cookies["session"])
    return thief


def whoami(http: requests.Session, url: str) -> int:
    """Return the status of GET /api/v1/session."""
    return http.get(f"{url}/api/v1/session", timeout=5).status_code


def test_a_copied_cookie_stops_working_after_logout(server, make_user):
    username, password = make_user("viewer")
    http = api_session(server.url, username, password)
    thief = copy_of(http)
    assert whoami(thief, server.url) == 200
    assert http.delete(f"{server.url}/api/v1/session", timeout=5).status_code == 204
    assert whoami(thief, server.url) == 401
    assert whoami(http, server.url) == 401
    # Another login of the same account is not affected by that logout.
    assert whoami(api_session(server.url, username, password), server.url) == 200


def test_a_password_change_ends_every_session(server, make_user, runner):
    username, password = make_user("dispatcher")
    first, second = (api_session(server.url, username, password) for _ in range(2))
    thief = copy_of(first)
    result = runner.invoke(
        args=["users", "passwd", username, "--password-stdin"], input="a-new-password-123\n"
    )
    assert result.exit_code == 0, result.output
    assert [whoami(h, server.url) for h in (first, second, thief)] == [401, 401, 401]
    assert login(server.url, username, password).status_code == 401
    assert login(server.url, username, "a-new-password-123").status_code == 200


def test_disabling_an_account_ends_its_sessions_and_logins(server, make_user, runner):
    username, password = make_user("viewer")
    http = api_session(server.url, username, password)
    result = runner.invoke(args=["users", "disable", username])
    assert result.exit_code == 0, result.output
    assert whoami(http, server.url) == 401
    assert login(server.url, username, password).status_code == 401
    result = runner.invoke(args=["users", "enable", username])
    assert result.exit_code == 0, result.output
    # Enabling lets the account log in again, but does not revive the old cookie.
    assert whoami(http, server.url) == 401
    assert login(server.url, username, password).status_code == 200


def test_an_admin_ends_all_sessions_of_an_account_in_scope(server, make_user, make_unit, app):
    street = make_unit(kind="street")
    other_street = make_unit(kind="street")
    grid = make_unit(kind="grid", parent_id=street)
    admin = api_session(server.url, *make_user("admin", street))
    target_name, target_password = make_user("viewer", grid)
    target = api_session(server.url, target_name, target_password)
    outside_name, outside_password = make_user("viewer", other_street)
    outside = api_session(server.url, outside_name, outside_password)
    viewer = api_session(server.url, *make_user("viewer", street))

    from tracker import store
    from tracker.extensions import db

    with app.app_context():
        target_id = store.accounts.user_by_username(db.session, target_name).id
        outside_id = store.accounts.user_by_username(db.session, outside_name).id

    url = f"{server.url}/api/v1/users/{{}}/sessions"
    # A viewer may not; an admin may not reach an account outside its unit.
    assert viewer.delete(url.format(target_id), timeout=5).status_code == 403
    assert admin.delete(url.format(outside_id), timeout=5).status_code == 404
    assert whoami(outside, server.url) == 200
    answer = admin.delete(url.format(target_id), timeout=5)
    assert answer.status_code == 200 and answer.json() == {"ended": 1}
    assert whoami(target, server.url) == 401
    assert whoami(admin, server.url) == 200


def test_a_live_connection_is_closed_when_its_login_ends(strict_server, make_user):
    username, password = make_user("viewer")
    http = api_session(strict_server.url, username, password)
    viewer = LiveViewer(strict_server.url, http.cookies["session"]).connect()
    assert viewer.client.connected
    assert http.delete(f"{strict_server.url}/api/v1/session", timeout=5).status_code == 204
    deadline = time.monotonic() + 5
    while viewer.client.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not viewer.client.connected
    # And the copied cookie cannot open a new one.
    again = LiveViewer(strict_server.url, http.cookies.get("session") or "x")
    with pytest.raises(Exception, match="connect"):
        again.connect()


def test_failed_logins_are_throttled_per_account_then_the_window_passes(strict_server, make_user):
    username, password = make_user("viewer")
    answers = [login(strict_server.url, username, WRONG) for _ in range(30)]
    assert [a.status_code for a in answers[:10]] == [401] * 10
    assert {a.status_code for a in answers[10:]} == {429}
    throttled = answers[-1]
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= 9
    assert throttled.json()["retry_after_s"] == retry_after
    assert throttled.json()["error"].startswith("login: too many failed attempts")
    # The right password is refused too while the account is throttled ...
    assert login(strict_server.url, username, password).status_code == 429
    # ... the same account name in other letter case counts as the same account ...
    assert login(strict_server.url, username.upper(), WRONG).status_code == 429
    # ... and works once the window has passed.
    time.sleep(retry_after + 0.5)
    assert login(strict_server.url, username, password).status_code == 200


def test_failed_logins_are_throttled_per_address(strict_server, make_user):
    time.sleep(8.5)  # let the previous test's failures leave the window
    names = [make_user("viewer")[0] for _ in range(21)]
    answers = [login(strict_server.url, name, WRONG).status_code for name in names]
    assert answers[:20] == [401] * 20
    assert answers[20] == 429


def test_the_login_page_says_in_chinese_how_long_to_wait(strict_server, make_user, browser):
    username, _ = make_user("viewer")
    time.sleep(8.5)  # start with an empty address window
    for _ in range(10):
        login(strict_server.url, username, WRONG)
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{strict_server.url}/login")
        page.fill("#username", username)
        page.fill("#password", WRONG)
        page.click("button[type=submit]")
        page.wait_for_selector("#login-error:not([hidden])")
        message = page.inner_text("#login-error")
        assert message.startswith("失败次数过多，请在 ") and message.endswith(" 秒后重试。")
        seconds = int(message.removeprefix("失败次数过多，请在 ").removesuffix(" 秒后重试。"))
        assert 1 <= seconds <= 9
        page.screenshot(path=str(ROOT / "var" / "artifacts" / "login-throttled.png"))
    finally:
        context.close()


def test_an_authorization_header_does_not_skip_the_cross_site_check(server, make_user):
    http = api_session(server.url, *make_user("admin"))
    evil = {"Origin": "https://evil.example", "Authorization": "Bearer anything"}
    refused = http.delete(f"{server.url}/api/v1/session", headers=evil, timeout=5)
    assert refused.status_code == 403
    assert refused.json() == {"error": "origin: cross-site request refused"}
    # A form post (not JSON) with the cookie and a bearer header is refused as well.
    form = http.post(
        f"{server.url}/api/v1/incidents",
        data={"lat": "39.9", "lon": "116.4"},
        headers={"Authorization": "Bearer anything"},
        timeout=5,
    )
    assert form.status_code == 415
    assert whoami(http, server.url) == 200
