"""What the end-to-end tests need to act as command-centre staff: a login, a /live viewer."""

from __future__ import annotations

import time

import requests
import socketio


def login(server, username: str, password: str) -> requests.Session:
    """Return a requests session logged in as an existing staff account."""
    http = requests.Session()
    response = http.post(
        f"{server.url}/api/v1/session",
        json={"username": username, "password": password},
        timeout=10,
    )
    assert response.status_code == 200
    return http


def staff_session(server, make_user, role="admin", unit_id=None):
    """Return a requests session logged in as a new staff account (of a unit, if given)."""
    return login(server, *make_user(role, unit_id))


def live_viewer(server, http):
    """Connect a /live client with the staff session cookie; return it and what it receives."""
    received: dict[str, list] = {"alert": [], "incident": []}
    client = socketio.Client(reconnection=False)
    client.on("alert", lambda data: received["alert"].append(data), namespace="/live")
    client.on("incident", lambda data: received["incident"].append(data), namespace="/live")
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    client.connect(
        server.url,
        namespaces=["/live"],
        transports=["websocket"],
        headers={"Cookie": cookie},
        wait_timeout=10,
    )
    return client, received


def wait_for(predicate, timeout=5.0):
    """Poll until predicate() is true or the timeout passes; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    return predicate()
