"""The phone app in real Chromium against the real server: pairing, duty, queue, SOS, tasks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
from sqlalchemy import func, select

from tests.conftest import ROOT, Phone, ServerProcess
from tests.e2e.chromium import wait_until
from tests.e2e.phones import TestPhone
from tracker import store
from tracker.extensions import db
from tracker.models import Position, Shift

ARTIFACTS = ROOT / "var" / "artifacts"
START = (39.9280, 116.4105)  # lat, lon: Jingshan, Beijing
# Only movement keeps a fix in these tests (1 m), never the clock, so each emulated
# position is exactly one fix and the stored track can be compared fix by fix.
SAMPLING = "min_interval_s=3600&min_distance_m=1"


@pytest.fixture(scope="module")
def phone_server(database_url: str) -> Iterator[ServerProcess]:
    """Run a server with the test hook that pushes tasks to phones."""
    proc = ServerProcess(database_url, {"PHONE_TEST_HOOKS": "1"})
    proc.start()
    yield proc
    proc.stop()


@contextmanager
def phone_contexts(browser) -> Iterator[Callable[..., Any]]:
    """Yield a function opening phone-sized browser contexts with location allowed."""
    contexts = []

    def make(base_url: str, locale: str = "en-US") -> Any:
        context = browser.new_context(
            base_url=base_url,
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale=locale,
            permissions=["geolocation"],
            geolocation={"latitude": START[0], "longitude": START[1], "accuracy": 5},
        )
        contexts.append(context)
        return context

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@pytest.fixture()
def context_for(browser) -> Iterator[Callable[..., Any]]:
    """Return a function opening a phone-sized browser context with location allowed."""
    with phone_contexts(browser) as make:
        yield make


class Walk:
    """Moves an emulated phone step by step and remembers every position it emulated."""

    def __init__(self, context: Any, page: Any) -> None:
        """Start at START."""
        self.context, self.page = context, page
        self.emulated: list[tuple[float, float, float]] = []
        self.lat, self.lon = START

    def step(self, lat: float | None = None, lon: float | None = None, accuracy: float = 0):
        """Move about 11 m north (or to lat/lon) and wait until the app has kept the fix."""
        if lat is None or lon is None:
            self.lat += 0.0001
            lat, lon = round(self.lat, 7), self.lon
        accuracy = accuracy or 4.0 + len(self.emulated) % 7
        recorded = self.page.evaluate("window.trackerPhone.recorded")
        self.context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": accuracy})
        wait_for(self.page, f"window.trackerPhone.recorded === {recorded + 1}")
        self.emulated.append((lat, lon, accuracy))


def wait_for(page: Any, expression: str, timeout_s: float = 20) -> None:
    """Poll a JavaScript expression in the page until it is true."""
    wait_until(page, expression, timeout_s)


def shot(page: Any, name: str) -> Path:
    """Save a screenshot of the phone screen to var/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"phone-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_app(context: Any, server: ServerProcess, phone: Phone, query: str = SAMPLING) -> Any:
    """Open the pairing link in a new page and wait until the app runs."""
    page = context.new_page()
    page.goto(f"{server.url}/m?{query}#token={phone.token}")
    wait_for(page, "window.trackerPhone && window.trackerPhone.ready === true")
    # From here on the service worker serves the app shell, with or without a network.
    wait_for(page, "navigator.serviceWorker.controller !== null")
    return page


def go_on_duty(context: Any, page: Any) -> Walk:
    """Tap the duty button, wait for the shift and the first fix, and return the walk."""
    page.click("#duty")
    wait_for(page, "window.trackerPhone.onDuty && window.trackerPhone.dutySynced")
    # Going on duty keeps the position the phone is at: the walk starts there.
    wait_for(page, "window.trackerPhone.recorded === 1")
    walk = Walk(context, page)
    walk.emulated.append((*START, 5.0))
    return walk


def stored_fixes(app, phone: Phone) -> list[tuple[int, int, float, float, float]]:
    """Return (person, device, lat, lon, accuracy) of the phone's stored fixes in ts order."""
    with app.app_context():
        rows = db.session.execute(
            select(
                Position.person_id,
                Position.device_id,
                func.ST_Y(Position.geom),
                func.ST_X(Position.geom),
                Position.accuracy_m,
            )
            .where(Position.device_id == phone.device_id)
            .order_by(Position.ts)
        ).all()
        db.session.remove()
    return [tuple(row) for row in rows]


def expected(walk: Walk, phone: Phone) -> list[tuple[int, int, float, float, float]]:
    """Return what stored_fixes() must hold for a walk: every emulated fix, once, in order."""
    return [(phone.person_id, phone.device_id, lat, lon, acc) for lat, lon, acc in walk.emulated]


def assert_same_track(app, walk: Walk, phone: Phone) -> None:
    """Compare the emulated walk and the stored fixes one by one."""
    stored = stored_fixes(app, phone)
    want = expected(walk, phone)
    assert len(stored) == len(want), f"{len(stored)} stored, {len(want)} emulated"
    for got, exp in zip(stored, want, strict=True):
        assert got[:2] == exp[:2]
        assert got[2] == pytest.approx(exp[2], abs=1e-9)
        assert got[3] == pytest.approx(exp[3], abs=1e-9)
        assert got[4] == pytest.approx(exp[4])


def open_shift(app, phone: Phone) -> bool:
    """Return whether the phone's person has an open shift."""
    with app.app_context():
        shift = db.session.execute(
            select(Shift.id).where(Shift.person_id == phone.person_id, Shift.ended_at.is_(None))
        ).first()
        db.session.remove()
    return shift is not None


def test_pair_go_on_duty_and_fixes_reach_postgis(app, make_phone, phone_server, context_for):
    phone = make_phone(name="王芳")
    context = context_for(phone_server.url)
    page = context.new_page()
    page.goto(f"{phone_server.url}/m?{SAMPLING}")
    wait_for(page, "window.trackerPhone && window.trackerPhone.ready === true")
    assert page.is_visible("#unpaired") and not page.is_visible("#paired")
    shot(page, "1-not-paired")

    # Opened while the app is open, the link changes only the hash: no page load.
    page.goto(f"{phone_server.url}/m?{SAMPLING}#token={phone.token}")
    wait_for(page, "window.trackerPhone.token !== null")
    assert "token" not in page.url, "the token must leave the address bar"
    assert page.evaluate("localStorage.getItem('tracker.token')") == phone.token
    wait_for(page, "window.trackerPhone.connection === 'connected'")
    assert page.inner_text("#conn-text") == "Connected"
    wait_for(page, "document.getElementById('person-name').textContent === '王芳'")
    assert phone.token not in page.inner_text("body"), "the token must stay off the screen"
    shot(page, "2-paired-off-duty")
    # The GPS apps' settings show the token only on a deliberate request.
    page.click("#setup summary")
    assert not page.is_visible("#setup-values")
    page.click("#setup-show")
    assert page.inner_text("#setup-token") == phone.token
    assert page.inner_text("#setup-url") == f"{phone_server.url}/osmand"
    page.click("#setup summary")
    # <details> fires `toggle` in a later task: wait for the page to clear the values.
    wait_for(page, "document.getElementById('setup-token').textContent === ''")
    assert phone.token not in page.content()

    walk = go_on_duty(context, page)
    assert open_shift(app, phone)
    for _ in range(8):
        walk.step()
    wait_for(page, "window.trackerPhone.queued === 0 && window.trackerPhone.stored === 9")
    wait_for(page, "document.getElementById('queued').textContent === '0'")
    assert "±" in page.inner_text("#last-fix")
    assert_same_track(app, walk, phone)
    shot(page, "3-on-duty")

    requests.post(
        f"{phone_server.url}/m/_test/task",
        json={
            "device_id": phone.device_id,
            "task": {
                "id": 7,
                "incident_id": 3,
                "description": "Check gate 3",
                "category": "safety_hazard",
                "distance_m": 240.4,
                "status": "sent",
            },
        },
        timeout=5,
    ).raise_for_status()
    page.wait_for_selector("#tasks .task-title:text('Check gate 3')", timeout=5000)
    assert page.inner_text("#tasks .task-category") == "Safety hazard"
    assert page.inner_text("#tasks .task-body") == "About 240 m from you"
    assert page.inner_text("#tasks .task-status") in ("Waiting", "Delivered")
    # The phone answers a `sent` task with `delivered`; this task exists nowhere but in the
    # hook, so the server refuses the update for good and the outbox does not keep it.
    wait_for(page, "window.trackerPhone.taskUpdatesQueued === 0")
    assert page.inner_text("#tasks .task-open") == "Open"
    shot(page, "4-task")

    page.click("#duty")
    wait_for(page, "!window.trackerPhone.onDuty && window.trackerPhone.dutySynced")
    assert not open_shift(app, phone)


def test_offline_and_reload_lose_nothing_and_store_each_fix_once(
    app, make_phone, phone_server, context_for
):
    phone = make_phone()
    context = context_for(phone_server.url, locale="zh-CN")
    page = open_app(context, phone_server, phone)
    walk = go_on_duty(context, page)
    for _ in range(2):
        walk.step()
    wait_for(page, "window.trackerPhone.stored === 3")

    context.set_offline(True)
    wait_for(page, "window.trackerPhone.connection !== 'connected'")
    for _ in range(6):
        walk.step()
    wait_for(page, "window.trackerPhone.queued === 6")
    wait_for(page, "document.getElementById('queued').textContent === '6'")
    assert page.inner_text("#conn-text") != "已连接"
    shot(page, "5-offline-queued-zh")

    # Reloading offline: the service worker serves the app, IndexedDB still holds the fixes.
    page.reload()
    wait_for(page, "window.trackerPhone && window.trackerPhone.ready === true")
    wait_for(page, "window.trackerPhone.queued === 6")
    assert page.evaluate("window.trackerPhone.onDuty")
    for _ in range(3):
        walk.step()
    wait_for(page, "window.trackerPhone.queued === 9")
    assert len(stored_fixes(app, phone)) == 3

    context.set_offline(False)
    wait_for(page, "window.trackerPhone.queued === 0", timeout_s=40)
    assert_same_track(app, walk, phone)
    shot(page, "6-back-online-zh")


def test_server_restart_while_moving_loses_nothing_and_stores_nothing_twice(
    app, database_url, make_phone, context_for
):
    phone = make_phone()
    server = ServerProcess(database_url)
    server.start()
    try:
        context = context_for(server.url)
        page = open_app(context, server, phone)
        walk = go_on_duty(context, page)
        for _ in range(3):
            walk.step()
        wait_for(page, "window.trackerPhone.stored === 4")
        server.kill()
        for _ in range(4):
            walk.step()
        wait_for(page, "window.trackerPhone.connection !== 'connected'")
        assert page.evaluate("window.trackerPhone.queued") >= 1
        server.start()
        wait_for(page, "window.trackerPhone.connection === 'connected'", timeout_s=40)
        for _ in range(2):
            walk.step()
        wait_for(page, "window.trackerPhone.queued === 0", timeout_s=40)
    finally:
        server.stop()
    assert_same_track(app, walk, phone)


def test_rejected_fix_is_dropped_and_counted(app, make_phone, phone_server, context_for):
    phone = make_phone()
    context = context_for(phone_server.url)
    page = open_app(context, phone_server, phone)
    walk = go_on_duty(context, page)
    walk.step()
    wait_for(page, "window.trackerPhone.stored === 2")
    recorded = page.evaluate("window.trackerPhone.recorded")
    context.set_geolocation({"latitude": 0, "longitude": 0, "accuracy": 0})
    wait_for(page, f"window.trackerPhone.recorded === {recorded + 1}")
    wait_for(page, "window.trackerPhone.rejected === 1 && window.trackerPhone.queued === 0")
    wait_for(page, "document.getElementById('rejected').textContent.includes('1')")
    walk.step(START[0] + 0.01, START[1])
    wait_for(page, "window.trackerPhone.stored === 3 && window.trackerPhone.queued === 0")
    assert page.evaluate("window.trackerPhone.rejected") == 1
    assert_same_track(app, walk, phone)
    shot(page, "7-rejected")


class StaffViewer:
    """A command-centre client logged in with a staff session and connected to /live."""

    def __init__(self, url: str, username: str, password: str) -> None:
        """Log in over the API and connect to /live with the session cookie."""
        http = requests.Session()
        http.post(
            f"{url}/api/v1/session", json={"username": username, "password": password}, timeout=5
        ).raise_for_status()
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        self.alerts: list[tuple[float, dict[str, Any]]] = []
        self.client = socketio.Client(reconnection=False)
        self.client.on("alert", self._on_alert, namespace="/live")
        self.client.connect(
            url,
            namespaces=["/live"],
            headers={"Cookie": cookie},
            transports=["websocket"],
            wait_timeout=10,
        )

    def _on_alert(self, alert: dict[str, Any]) -> None:
        self.alerts.append((time.monotonic(), alert))

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()


def test_sos_reaches_staff_in_scope_within_2_s_and_is_stored_once(
    app, make_phone, make_unit, make_user, phone_server, context_for
):
    unit, other_unit = make_unit(), make_unit()
    phone = make_phone(unit_id=unit)
    in_scope = StaffViewer(phone_server.url, *make_user("dispatcher", unit))
    out_of_scope = StaffViewer(phone_server.url, *make_user("dispatcher", other_unit))
    context = context_for(phone_server.url)
    page = open_app(context, phone_server, phone)
    walk = go_on_duty(context, page)
    walk.step()
    page.fill("#sos-note", "fell on the stairs")
    box = page.locator("#sos").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    time.sleep(0.5)
    page.mouse.up()
    assert page.evaluate("window.trackerPhone.sos.length") == 0, "a short press must not send"
    page.mouse.down()
    wait_for(page, "window.trackerPhone.sos.length === 1", timeout_s=5)
    raised = time.monotonic()
    page.mouse.up()
    deadline = raised + 2.0
    while not in_scope.alerts and time.monotonic() < deadline:
        time.sleep(0.02)
    assert in_scope.alerts, "the SOS did not reach the command centre within 2 s"
    latency_s = in_scope.alerts[0][0] - raised
    print(f"SOS reached /live {latency_s * 1000:.0f} ms after the long press completed")
    wait_for(page, "window.trackerPhone.sos[0].receivedAt !== null")
    shot(page, "8-sos-received")

    with app.app_context():
        alerts = db.session.execute(store.alerts.alerts_of_person(phone.person_id)).all()
        db.session.remove()
    assert len(alerts) == 1
    alert = store.alerts.AlertRow(*alerts[0])
    assert (alert.kind, alert.device_id) == ("sos", phone.device_id)
    assert alert.note == "fell on the stairs"
    assert (alert.lat, alert.lon) == pytest.approx(walk.emulated[-1][:2])
    pushed = in_scope.alerts[0][1]
    assert (pushed["id"], pushed["kind"], pushed["person_id"]) == (alert.id, "sos", phone.person_id)

    sent = page.evaluate("window.trackerPhone.sos[0]")
    resend = TestPhone(phone_server.url, phone.token).connect()
    try:
        ack = resend.call(
            "sos", {"ts": sent["ts"], "lat": sent["lat"], "lon": sent["lon"], "note": sent["note"]}
        )
    finally:
        resend.close()
    assert ack["ok"] is True and ack["duplicate"] is True and ack["alert_id"] == alert.id
    time.sleep(0.5)  # a resend must not be pushed again; give a wrong push time to arrive
    in_scope.close()
    out_of_scope.close()
    assert len(in_scope.alerts) == 1
    assert out_of_scope.alerts == []


def test_queue_cap_drops_the_oldest_and_tells_the_user(app, make_phone, phone_server, context_for):
    phone = make_phone()
    context = context_for(phone_server.url)
    page = open_app(context, phone_server, phone, query=f"{SAMPLING}&queue_cap=20")
    context.set_offline(True)
    wait_for(page, "window.trackerPhone.connection !== 'connected'")
    walk = go_on_duty_offline(context, page)
    for _ in range(25):
        walk.step()
    wait_for(page, "window.trackerPhone.queued === 20 && window.trackerPhone.capped === 6")
    wait_for(page, "document.getElementById('capped').textContent.includes('6')")
    shot(page, "9-queue-cap")
    context.set_offline(False)
    wait_for(page, "window.trackerPhone.queued === 0", timeout_s=40)
    walk.emulated = walk.emulated[-20:]
    assert_same_track(app, walk, phone)


def go_on_duty_offline(context: Any, page: Any) -> Walk:
    """Tap the duty button without a connection and wait for the first fix."""
    page.click("#duty")
    wait_for(page, "window.trackerPhone.onDuty && window.trackerPhone.recorded === 1")
    walk = Walk(context, page)
    walk.emulated.append((*START, 5.0))
    return walk


# 24 hours of one fix every 5 seconds, written straight into the app's IndexedDB queue.
FILL_QUEUE = """
async ([n, startMs]) => {
  const db = await new Promise((resolve, reject) => {
    const req = indexedDB.open("tracker-phone");
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const tx = db.transaction("fixes", "readwrite");
  const store = tx.objectStore("fixes");
  for (let i = 0; i < n; i++) {
    store.add({ts: startMs + i * 5000, lat: 39.9 + i * 1e-6, lon: 116.4, accuracy: 8});
  }
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}
"""


def test_a_day_offline_is_kept_and_flushed_in_bounded_batches(
    app, make_phone, phone_server, context_for
):
    phone = make_phone()
    context = context_for(phone_server.url)
    page = open_app(context, phone_server, phone)
    context.set_offline(True)
    wait_for(page, "window.trackerPhone.connection !== 'connected'")
    n = 24 * 3600 // 5
    start_ms = int(time.time() * 1000) - 24 * 3600 * 1000
    page.evaluate(FILL_QUEUE, [n, start_ms])
    page.reload()
    wait_for(page, f"window.trackerPhone.ready && window.trackerPhone.queued === {n}")
    wait_for(page, f"document.getElementById('queued').textContent === '{n}'")
    shot(page, "10-a-day-queued")

    began = time.monotonic()
    context.set_offline(False)
    wait_for(page, "window.trackerPhone.queued === 0", timeout_s=300)
    print(f"flushed {n} queued fixes in {time.monotonic() - began:.1f} s")
    with app.app_context():
        stored = db.session.execute(
            select(func.count(), func.min(Position.ts), func.max(Position.ts)).where(
                Position.device_id == phone.device_id
            )
        ).one()
        db.session.remove()
    assert stored[0] == n
    assert int(stored[1].timestamp() * 1000) == start_ms
    assert int(stored[2].timestamp() * 1000) == start_ms + (n - 1) * 5000
    assert page.evaluate("window.trackerPhone.stored + window.trackerPhone.duplicates") == n
