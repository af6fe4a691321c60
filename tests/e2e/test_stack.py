"""Several server processes: Redis shares the live feed, nginx fails phones over to a survivor."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import socketio

from tests.conftest import ROOT, Phone, ServerProcess, free_port
from tests.e2e.phones import ResendingPhone, TestPhone, count, now_ms

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def wait_for_port(port: int, proc: subprocess.Popen, what: str, log: Path) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited; see {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}; see {log}")


def stop_process(proc: subprocess.Popen | None) -> None:
    """Stop a child process and its group, gracefully first."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture()
def stack_dir() -> Iterator[Path]:
    """Return a directory under var/ for one test's Redis and nginx, removed afterwards."""
    path = ROOT / "var" / f"stack-test-{uuid.uuid4().hex[:8]}"
    (path / "log").mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def redis_url(stack_dir: Path) -> Iterator[str]:
    """Run a private redis-server on a free port: no other run's messages can reach ours."""
    port = free_port()
    log = stack_dir / "log" / "redis.log"
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(stack_dir), "--logfile", str(log)],
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(port, proc, "redis-server", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc)


@pytest.fixture()
def trackers(database_url: str, redis_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Run two tracker processes that share one live feed through Redis."""
    env = {"SOCKETIO_MESSAGE_QUEUE": redis_url, "SECRET_KEY": uuid.uuid4().hex}
    servers = (ServerProcess(database_url, env), ServerProcess(database_url, env))
    try:
        for server in servers:
            # Logs are kept per port; the tests read who connected where from a fresh one.
            server.log_path.unlink(missing_ok=True)
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture()
def nginx_url(stack_dir: Path, trackers: tuple[ServerProcess, ServerProcess]) -> Iterator[str]:
    """Run nginx with the config scripts/stack.sh renders, in front of both processes."""
    port = free_port()
    env = {
        **os.environ,
        "STACK_DIR": str(stack_dir),
        "STACK_LISTEN": f"127.0.0.1:{port}",
        "STACK_UPSTREAMS": " ".join(f"127.0.0.1:{s.port}" for s in trackers),
    }
    rendered = subprocess.run(
        ["bash", str(ROOT / "scripts/stack.sh"), "nginx-conf"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    conf = stack_dir / "nginx.conf"
    conf.write_text(rendered)
    (stack_dir / "tmp").mkdir()
    log = stack_dir / "log" / "nginx-error.log"
    proc = subprocess.Popen(
        [NGINX, "-p", str(stack_dir), "-c", str(conf), "-e", str(log), "-g", "daemon off;"],
        start_new_session=True,
    )
    try:
        wait_for_port(port, proc, "nginx", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def log_in(url: str, make_user) -> requests.Session:
    """Log a new admin in at `url`, as a browser on that origin would."""
    http = requests.Session()
    username, password = make_user("admin")
    response = http.post(
        f"{url}/api/v1/session",
        json={"username": username, "password": password},
        headers={"Origin": url},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return http


def viewer_at(url: str, http: requests.Session) -> tuple[socketio.Client, list[dict]]:
    """Connect a /live viewer to `url` with a session cookie; return it and its positions."""
    received: list[dict] = []
    client = socketio.Client(reconnection=False)
    client.on("positions", lambda data: received.extend(data["positions"]), namespace="/live")
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    client.connect(
        url,
        namespaces=["/live"],
        transports=["websocket"],
        headers={"Cookie": cookie},
        wait_timeout=10,
    )
    return client, received


def connected_to(server: ServerProcess, person: Phone) -> int:
    """Return how many times a server process accepted a connection of a person's device."""
    return server.logs().count(f"device {person.device_id} of person {person.person_id} connected")


def test_viewer_on_one_process_sees_a_phone_on_another(trackers, nginx_url, make_phone, make_user):
    a, b = trackers
    person = make_phone()
    # Logged in through nginx: the session works on every process behind it.
    viewer, received = viewer_at(b.url, log_in(nginx_url, make_user))
    phone = TestPhone(a.url, person.token).connect()
    try:
        fix = {"ts": now_ms(), "lat": 31.2304, "lon": 121.4737}
        assert phone.send([fix])["stored"] == 1
        deadline = time.monotonic() + 2.0
        seen: list[dict] = []
        while not seen and time.monotonic() < deadline:
            seen = [m for m in list(received) if m["person_id"] == person.person_id]
            time.sleep(0.02)
        assert seen, "process B's viewer did not see process A's phone within 2 s"
        assert (seen[0]["lat"], seen[0]["lon"]) == (fix["lat"], fix["lon"])
        assert connected_to(a, person) == 1
        assert connected_to(b, person) == 0
    finally:
        phone.close()
        viewer.disconnect()


def test_phone_through_nginx_fails_over_when_its_process_is_killed(
    trackers, nginx_url, make_phone, database_url
):
    person = make_phone()
    phone = ResendingPhone(nginx_url, person.token)
    thread = threading.Thread(target=phone.run)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while phone.stored < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert phone.stored >= 50, "the phone never got its fixes stored through nginx"
        (first,) = [s for s in trackers if connected_to(s, person)]
        (survivor,) = [s for s in trackers if s is not first]
        first.kill()  # SIGKILL: acks in flight are lost
        stored_at_kill = phone.stored
        deadline = time.monotonic() + 15
        while phone.stored < stored_at_kill + 100 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        phone.stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert phone.failures > 0, "the kill was not noticed: the test proved nothing"
    assert connected_to(survivor, person) >= 1, "the phone did not fail over"
    assert phone.stored >= stored_at_kill + 100, "nothing was stored after the failover"
    assert phone.unacked == []
    assert count(database_url, person.person_id) == phone.generated
    assert phone.stored <= phone.generated <= phone.stored + phone.duplicates


REVOKED = {"ok": False, "error": "auth.token: this device has been revoked"}


def test_a_revoked_phone_is_refused_on_every_process_and_closed(
    trackers, nginx_url, make_phone, runner
):
    person = make_phone()
    phones = [TestPhone(url, person.token).connect() for url in (*[s.url for s in trackers],)]
    phones.append(TestPhone(nginx_url, person.token).connect())
    try:
        assert all(p.call("duty", {"on": True})["ok"] for p in phones)
        result = runner.invoke(args=["devices", "revoke", str(person.device_id)])
        assert result.exit_code == 0, result.output
        for phone in phones:
            if not phone.client.connected:
                continue  # the sweep was quicker than this loop
            for event, payload in [
                ("positions", {"positions": [{"ts": now_ms(), "lat": 39.9, "lon": 116.4}]}),
                ("duty", {"on": False}),
                ("sos", {"ts": now_ms(), "lat": 39.9, "lon": 116.4}),
                ("task_update", {"id": 1, "status": "done"}),
            ]:
                try:
                    assert phone.call(event, payload, timeout=5) == REVOKED
                except socketio.exceptions.BadNamespaceError:
                    break  # closed after the refusal, as it should be
        assert all(p.wait_disconnected(timeout=6) for p in phones)
        assert count_alerts_and_positions(runner, person.person_id) == (0, 0)
    finally:
        for phone in phones:
            phone.close()


def count_alerts_and_positions(runner, person_id: int) -> tuple[int, int]:
    """Return how many alerts and positions a person has, read through the app."""
    from sqlalchemy import func, select

    from tracker.extensions import db
    from tracker.models import Alert, Position

    with runner.app.app_context():
        alerts = db.session.scalar(
            select(func.count()).select_from(Alert).where(Alert.person_id == person_id)
        )
        positions = db.session.scalar(
            select(func.count()).select_from(Position).where(Position.person_id == person_id)
        )
        return alerts, positions


def test_logout_on_one_process_ends_the_session_on_the_other(trackers, make_user):
    a, b = trackers
    http = log_in(a.url, make_user)
    viewer, _ = viewer_at(b.url, http)
    try:
        assert http.get(f"{b.url}/api/v1/session", timeout=5).status_code == 200
        assert http.delete(f"{a.url}/api/v1/session", headers={"Origin": a.url}).status_code == 204
        cookie = {c.name: c.value for c in http.cookies}
        assert requests.get(f"{b.url}/api/v1/session", cookies=cookie, timeout=5).status_code == 401
        deadline = time.monotonic() + 6
        while viewer.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not viewer.connected, "process B kept a /live connection of an ended login"
    finally:
        if viewer.connected:
            viewer.disconnect()


def test_failed_logins_count_across_processes_through_redis(trackers, make_user):
    a, b = trackers
    username, password = make_user("viewer")
    answers = [
        requests.post(
            f"{(a, b)[i % 2].url}/api/v1/session",
            json={"username": username, "password": "wrong"},
            timeout=10,
        ).status_code
        for i in range(12)
    ]
    # LOGIN_LIMIT_ACCOUNT is 10 per 5 minutes, shared by both processes.
    assert answers == [401] * 10 + [429] * 2
    for server in (a, b):
        right = requests.post(
            f"{server.url}/api/v1/session",
            json={"username": username, "password": password},
            timeout=10,
        )
        assert right.status_code == 429
