"""/device hardening: every event is answered, and a revoked phone can do nothing."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.phones import TestPhone, now_ms

REVOKED = {"ok": False, "error": "auth.token: this device has been revoked"}


@pytest.fixture(scope="module")
def engine(database_url):
    """Return an engine on the test database, to check what the server stored."""
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


def alert_count(engine, person_id: int) -> int:
    """Return how many alerts a person has."""
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM alerts WHERE person_id = :p"), {"p": person_id}
        ).scalar_one()


def raw_call(phone: TestPhone, body: str, timeout: float = 10) -> list:
    """Send `body` as the data part of a /device EVENT packet with an ack id; return the ack.

    python-socketio's client only sends what it could encode itself; this writes the
    packet's text by hand, as a broken or hostile client would.
    """
    answered = threading.Event()
    result: list = []

    def on_ack(*args):
        result.extend(args)
        answered.set()

    ack_id = phone.client._generate_ack_id("/device", on_ack)
    phone.client.eio.send(f"2/device,{ack_id}{body}")
    assert answered.wait(timeout), f"no ack for {body[:60]!r}"
    return result


@pytest.mark.parametrize(
    "body",
    [
        '["positions", {"positions": [',  # cut off
        '["positions", ' + "[" * 100_000 + "]" * 100_000 + "]",  # nested 100,000 deep
        '{"positions": []}',  # not a list
        "[]",  # no event name
        "[42, {}]",  # event name not a string
        '"positions"',
    ],
)
def test_an_undecodable_packet_is_answered_and_the_connection_keeps_working(
    server, make_phone, engine, body
):
    p = make_phone()
    phone = TestPhone(server.url, p.token).connect()
    ack = raw_call(phone, body)
    assert len(ack) == 1 and ack[0]["ok"] is False
    assert ack[0]["error"].startswith("packet: ")
    assert "retry" not in ack[0]
    assert phone.send([{"ts": now_ms(), "lat": 39.9, "lon": 116.4}])["stored"] == 1
    phone.close()


def test_unknown_events_and_extra_arguments_are_answered_without_retry(server, make_phone):
    p = make_phone()
    phone = TestPhone(server.url, p.token).connect()
    assert phone.call("teleport", {}) == {"ok": False, "error": "event: unknown event 'teleport'"}
    # Two payloads where the protocol has one: the second is ignored, not a crash.
    ack = phone.client.call("duty", ({"on": True}, {"extra": 1}), namespace="/device", timeout=10)
    assert ack["ok"] is True and ack["on"] is True
    ack = phone.client.call(
        "positions",
        ({"positions": [{"ts": now_ms(), "lat": 39.9, "lon": 116.4}]}, "x"),
        namespace="/device",
        timeout=10,
    )
    assert ack["ok"] is True and ack["stored"] == 1
    phone.close()


def test_sos_times_outside_the_accepted_window_are_rejected(server, make_phone, engine):
    p = make_phone()
    phone = TestPhone(server.url, p.token).connect()
    for ts, error in [
        ("2999-01-01T00:00:00Z", "ts: more than 300 s in the future"),
        ("9999-12-31T23:59:59-23:59", "ts: outside the years 1 to 9999 in UTC"),
        ("2001-01-01T00:00:00Z", "ts: older than 604800 s"),
    ]:
        assert phone.call("sos", {"ts": ts, "lat": 39.9, "lon": 116.4}) == {
            "ok": False,
            "error": error,
        }
    assert alert_count(engine, p.person_id) == 0
    phone.close()


def test_a_revoked_devices_open_socket_is_refused_on_every_event_and_closed(
    server, make_phone, runner, engine
):
    p = make_phone()
    phone = TestPhone(server.url, p.token).connect()
    assert phone.call("duty", {"on": True})["ok"] is True
    result = runner.invoke(args=["devices", "revoke", str(p.device_id)])
    assert result.exit_code == 0, result.output
    revoked_at = time.monotonic()
    # Each event checks the device itself, before the periodic sweep closes the socket.
    assert phone.call("duty", {"on": False}) == REVOKED
    assert phone.call("sos", {"ts": now_ms(), "lat": 39.9, "lon": 116.4}) == REVOKED
    assert phone.call("task_update", {"id": 1, "status": "accepted"}) == REVOKED
    assert phone.wait_disconnected(timeout=5)
    assert time.monotonic() - revoked_at < 5
    assert alert_count(engine, p.person_id) == 0


def test_an_idle_revoked_socket_is_told_and_closed_by_the_sweep(server, make_phone, runner):
    p = make_phone()
    phone = TestPhone(server.url, p.token).connect()
    told = threading.Event()
    phone.client.on("revoked", lambda *_: told.set(), namespace="/device")
    result = runner.invoke(args=["devices", "revoke", str(p.device_id)])
    assert result.exit_code == 0, result.output
    # CUTOFF_INTERVAL_S is 2 s: the socket is told and closed within a few seconds,
    # without sending anything.
    assert told.wait(6)
    assert phone.wait_disconnected(timeout=3)
