"""The /device protocol against the real gevent server process, over websockets."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import gpxpy
import pytest
import requests
from sqlalchemy import create_engine, text

from tests.e2e.phones import TestPhone, now_ms


@pytest.fixture(scope="module")
def engine(database_url):
    """Return an engine on the test database, to check what the server stored."""
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


def stored_rows(engine, person_id: int) -> list[tuple]:
    """Return (device_id, ts, lat, lon) of a person's stored positions in time order."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT device_id, ts, ST_Y(geom), ST_X(geom) FROM positions "
                "WHERE person_id = :p ORDER BY ts"
            ),
            {"p": person_id},
        ).all()


def fix(ts: int, lat: float = 39.93, lon: float = 116.41, **extra) -> dict:
    """Return a position item."""
    return {"ts": ts, "lat": lat, "lon": lon, **extra}


@pytest.mark.parametrize(
    "token, reason",
    [
        (None, "auth.token: a device token is required"),
        ("", "auth.token: a device token is required"),
        ("not-a-token", "auth.token: unknown or revoked device token"),
    ],
)
def test_connection_without_a_valid_token_is_refused(server, token, reason):
    phone = TestPhone(server.url, token)
    with pytest.raises(Exception, match="failed to connect"):
        phone.connect()
    assert phone.refusal == {"message": reason}


def test_mixed_batch_gets_exact_counts_and_stores_only_valid_items(server, make_phone, engine):
    p = make_phone()
    phone = TestPhone(server.url, p.token).connect()
    t = now_ms()
    ack = phone.send(
        [
            fix(t - 3000, accuracy=5, speed=1.2, heading=90, battery=0.8),
            fix(t - 2000, lat=91),
            fix(t - 3000),  # the same fix twice in one batch
            fix(t - 1000, lon="116"),
            fix(t - 1000, lat=39.94),
        ]
    )
    assert ack == {
        "ok": True,
        "stored": 2,
        "duplicates": 1,
        "rejected": [
            {"index": 1, "error": "lat: must be between -90 and 90"},
            {"index": 3, "error": "lon: must be a number, got str"},
        ],
    }
    rows = stored_rows(engine, p.person_id)
    assert [(r.device_id, r.ts, r[2]) for r in rows] == [
        (p.device_id, datetime.fromtimestamp((t - 3000) / 1000, UTC), 39.93),
        (p.device_id, datetime.fromtimestamp((t - 1000) / 1000, UTC), 39.94),
    ]
    phone.close()


def test_values_the_fast_json_decoder_refuses_still_get_item_errors(server, make_phone, engine):
    # Python's json writes NaN, Infinity and big integers as bare literals. The server's
    # packet decoder (orjson) refuses them, so the packet must be decoded the standard way
    # and each such item rejected with its field named, while the rest is stored.
    p = make_phone()
    phone = TestPhone(server.url, p.token).connect()
    t = now_ms()
    ack = phone.send(
        [
            fix(t - 4000, lat=float("nan")),
            fix(t - 3000, lon=float("inf")),
            fix(t - 2000, accuracy=10**30),
            fix(t - 1000, lat=39.95),
        ]
    )
    assert ack == {
        "ok": True,
        "stored": 2,
        "duplicates": 0,
        "rejected": [
            {"index": 0, "error": "lat: must be a finite number"},
            {"index": 1, "error": "lon: must be a finite number"},
        ],
    }
    rows = stored_rows(engine, p.person_id)
    assert [(r.ts, r[2]) for r in rows] == [
        (datetime.fromtimestamp((t - 2000) / 1000, UTC), 39.93),
        (datetime.fromtimestamp((t - 1000) / 1000, UTC), 39.95),
    ]
    # The connection keeps working with ordinary packets afterwards.
    assert phone.send([fix(t, lat=39.96)])["stored"] == 1
    phone.close()


def test_resend_after_a_lost_ack_stores_nothing_twice(server, make_phone, engine):
    p = make_phone()
    t = now_ms()
    batch = [fix(t - 10_000 + 100 * i, lat=39.9 + i / 1e4) for i in range(50)]
    first = TestPhone(server.url, p.token).connect()
    # Send and drop the connection before reading the ack: the phone never learns the result.
    first.client.emit(
        "positions", {"positions": batch}, namespace="/device", callback=lambda *_: None
    )
    first.client.disconnect()
    second = TestPhone(server.url, p.token).connect()
    ack = second.send(batch)
    assert ack["ok"] is True
    assert ack["stored"] + ack["duplicates"] == 50
    assert len(stored_rows(engine, p.person_id)) == 50
    assert second.send(batch) == {"ok": True, "stored": 0, "duplicates": 50, "rejected": []}
    assert len(stored_rows(engine, p.person_id)) == 50
    second.close()


@pytest.mark.parametrize(
    "payload, error",
    [
        ([], "payload: must be an object, got list"),
        ({"positions": "many"}, "positions: must be a list"),
        ({"positions": []}, "positions: must hold 1 to 500 items, got 0"),
        ({"positions": [fix(0)] * 501}, "positions: must hold 1 to 500 items, got 501"),
        ({"positions": [fix(0, note="x" * 300_000)]}, "payload: larger than 262144 bytes"),
    ],
)
def test_whole_payload_errors_store_nothing_and_keep_the_connection(
    server, make_phone, engine, payload, error
):
    p = make_phone()
    phone = TestPhone(server.url, p.token).connect()
    assert phone.call("positions", payload) == {"ok": False, "error": error}
    assert stored_rows(engine, p.person_id) == []
    assert phone.send([fix(now_ms())])["stored"] == 1
    phone.close()


def test_revoked_device_is_cut_off(server, make_phone, runner, engine):
    p = make_phone()
    phone = TestPhone(server.url, p.token).connect()
    assert phone.send([fix(now_ms() - 1000)])["stored"] == 1
    result = runner.invoke(args=["devices", "revoke", str(p.device_id)])
    assert result.exit_code == 0, result.output
    ack = phone.send([fix(now_ms())])
    assert ack == {"ok": False, "error": "auth.token: this device has been revoked"}
    assert phone.wait_disconnected()
    assert len(stored_rows(engine, p.person_id)) == 1
    again = TestPhone(server.url, p.token)
    with pytest.raises(Exception, match="failed to connect"):
        again.connect()
    assert again.refusal == {"message": "auth.token: unknown or revoked device token"}


def test_duty_opens_and_closes_a_shift(server, make_phone, engine):
    p = make_phone()
    phone = TestPhone(server.url, p.token).connect()
    on = phone.call("duty", {"on": True})
    assert on["ok"] is True and on["on"] is True and on["ended_at"] is None
    assert phone.call("duty", {"on": True})["shift_id"] == on["shift_id"]
    off = phone.call("duty", {"on": False})
    assert off["ok"] is True and off["shift_id"] == on["shift_id"] and off["ended_at"]
    assert phone.call("duty", {"on": "yes"}) == {"ok": False, "error": "on: must be true or false"}
    with engine.connect() as conn:
        shifts = conn.execute(
            text("SELECT started_at, ended_at FROM shifts WHERE person_id = :p"), {"p": p.person_id}
        ).all()
    assert len(shifts) == 1 and shifts[0].ended_at > shifts[0].started_at
    phone.close()


def test_real_gpx_trace_comes_back_point_for_point(server, make_phone, make_user, gpx_dir):
    with open(gpx_dir / "around-visnjan-with-car.gpx", encoding="utf-8") as f:
        gpx = gpxpy.parse(f)
    points = [pt for track in gpx.tracks for seg in track.segments for pt in seg.points]
    assert len(points) > 90
    # Recorded in 2020: shift the whole trace so that it ends a minute ago.
    shift = datetime.now(UTC) - timedelta(minutes=1) - points[-1].time
    items = [
        {
            "ts": (pt.time + shift).isoformat(),
            "lat": pt.latitude,
            "lon": pt.longitude,
            "altitude": pt.elevation,
        }
        for pt in points
    ]
    p = make_phone(role="patrol")
    phone = TestPhone(server.url, p.token).connect()
    stored = sum(phone.send(items[i : i + 40])["stored"] for i in range(0, len(items), 40))
    assert stored == len(points)
    phone.close()

    http = requests.Session()
    username, password = make_user("viewer")
    assert (
        http.post(
            f"{server.url}/api/v1/session", json={"username": username, "password": password}
        ).status_code
        == 200
    )
    track = http.get(
        f"{server.url}/api/v1/people/{p.person_id}/track",
        params={"from": items[0]["ts"], "to": datetime.now(UTC).isoformat()},
    ).json()
    coords = track["geometry"]["coordinates"]
    assert track["properties"]["points"] == len(points)
    assert coords == [pytest.approx([pt.longitude, pt.latitude], abs=1e-9) for pt in points]
    assert track["properties"]["started_at"] == (points[0].time + shift).isoformat()
    # gpxpy measures the same trace in 2-D on its own; PostGIS measures on the spheroid.
    expected_m = sum(seg.length_2d() for t in gpx.tracks for seg in t.segments)
    assert track["properties"]["distance_m"] == pytest.approx(expected_m, rel=5e-3)


def test_concurrent_phones_with_overlapping_resends_store_each_fix_once(server, make_phone, engine):
    p = make_phone()
    t = now_ms() - 60_000
    batches = [
        [fix(t + 100 * (j + k), lat=39.9 + (j + k) / 1e5) for k in range(40)]
        for j in range(0, 400, 20)
    ]  # consecutive batches overlap by half
    acks: list[dict] = []
    lock = threading.Lock()

    def run(my_batches):
        phone = TestPhone(server.url, p.token).connect()
        for batch in my_batches:
            ack = phone.send(batch)
            with lock:
                acks.append(ack)
        phone.close()

    threads = [threading.Thread(target=run, args=(batches[i::5],)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    unique = {item["ts"] for batch in batches for item in batch}
    assert all(ack["ok"] for ack in acks)
    assert sum(ack["stored"] for ack in acks) == len(unique)
    assert sum(ack["duplicates"] for ack in acks) == sum(map(len, batches)) - len(unique)
    assert len(stored_rows(engine, p.person_id)) == len(unique)
