"""Existing GPS apps' real requests, byte for byte (timestamps moved to now), on the real server.

The requests come from the apps' own repositories and the Traccar server's protocol tests
(tests/data/client-payloads.json, copied from the project's reference data).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from sqlalchemy import create_engine, text

from tracker import create_app, store
from tracker.auth import hash_token
from tracker.extensions import db

PAYLOADS = json.loads((Path(__file__).parent.parent / "data/client-payloads.json").read_text())
KNOT = 1852 / 3600


def samples(prefix: str) -> list:
    """Return the reference requests of the entry whose name starts with prefix."""
    (key,) = [k for k in PAYLOADS if k.startswith(prefix)]
    return PAYLOADS[key]


NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)


def moved(value: str, when: datetime = NOW) -> str:
    """Return a timestamp value moved to when, in the same format as the original."""
    if re.fullmatch(r"\d{13}", value):
        return str(int(when.timestamp() * 1000))
    if re.fullmatch(r"\d{1,10}", value):
        return str(int(when.timestamp()))
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\dZ", value):
        return quote(when.strftime("%Y-%m-%dT%H:%M:%SZ"), safe="-")
    if re.fullmatch(r"\d{4}-\d\d-\d\d\+\d\d%3A\d\d%3A\d\d", value):
        return when.strftime("%Y-%m-%d+%H") + when.strftime("%%3A%M%%3A%S")
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value):
        return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}%2B02:00", value):
        local = when.astimezone(UTC) + timedelta(hours=2)
        return local.strftime("%Y-%m-%dT%H:%M:%S.000") + "%2B02:00"
    raise AssertionError(f"unknown timestamp format {value!r}")


def move_query(query: str, when: datetime = NOW) -> str:
    """Move every timestamp parameter of a raw query string to `when`, keeping its format."""
    names = ("timestamp", "time", "timeoffset")

    def repl(match: re.Match) -> str:
        return f"{match.group(1)}={moved(match.group(2), when)}"

    pattern = r"(?<![\w])(" + "|".join(names) + r")=([^&\n]*)"
    return re.sub(pattern, repl, query)


@pytest.fixture(scope="module")
def sample_devices(database_url):
    """Register a device per app identifier used in the samples; return {token: person_id}."""
    tokens = [
        "123456789012345",
        "902064",
        "353861053849681",
        "123456",
        "48241179",
        "658765",
        "8737767034",
        "gpslogger-token-0001",
        "owntracks-token-0001",
        "overland-token-0001",
    ]
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    people = {}
    with app.app_context():
        for token in tokens:
            person = store.people.add_person(db.session, f"app {token}", "patrol", None, None)
            store.devices.add_device(db.session, person.id, "existing app", hash_token(token))
            people[token] = person.id
        db.session.commit()
        db.engine.dispose()
    return people


@pytest.fixture(scope="module")
def engine(database_url):
    """Return an engine on the test database."""
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


def stored(engine, person_id: int) -> list:
    """Return a person's stored positions."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT ts, ST_Y(geom) AS lat, ST_X(geom) AS lon, accuracy_m, altitude_m, "
                "speed_mps, heading_deg, battery FROM positions WHERE person_id = :p "
                "ORDER BY ts"
            ),
            {"p": person_id},
        ).all()


def send_twice(method, url, **kwargs):
    """Send a request twice, as an app resending after a lost answer; return both responses."""
    return [requests.request(method, url, timeout=10, **kwargs) for _ in range(2)]


def check(row, lat, lon, accuracy=None, altitude=None, speed=None, heading=None, battery=None):
    """Assert a stored row's values, in stored units."""
    assert (row.lat, row.lon) == (pytest.approx(lat), pytest.approx(lon))
    for got, want in (
        (row.accuracy_m, accuracy),
        (row.altitude_m, altitude),
        (row.speed_mps, speed),
        (row.heading_deg, heading),
        (row.battery, battery),
    ):
        assert got == (None if want is None else pytest.approx(want, rel=1e-6, abs=1e-6))


OSMAND_EXPECTED = [
    ("902064", dict(lat=42.06288, lon=-88.23412, altitude=224.0, speed=0.0)),
    ("902064", dict(lat=42.06288, lon=-88.23412, altitude=224.0, speed=0.0)),
    ("353861053849681", dict(lat=49.60688, lon=6.15788, altitude=384.7, speed=0.0)),
    ("123456", dict(lat=60.0, lon=30.0)),
]


@pytest.mark.parametrize("index", range(4))
def test_osmand_query_variants(server, sample_devices, engine, index):
    raw = samples("osmand_query_variants")[index]
    token, expected = OSMAND_EXPECTED[index]
    when = NOW - timedelta(seconds=index)
    query = move_query(raw.split("?", 1)[1], when)
    before = len(stored(engine, sample_devices[token]))
    first, again = send_twice("GET", f"{server.url}/osmand?{query}")
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["stored"], again.json()["duplicates"]) == (1, 1)
    rows = stored(engine, sample_devices[token])
    assert len(rows) == before + 1
    row = next(r for r in rows if r.ts == when)
    check(row, **expected)


@pytest.mark.parametrize("prefix", ["traccar_android_legacy_query", "traccar_ios_legacy_query"])
def test_traccar_legacy_posts_with_empty_body(server, sample_devices, engine, prefix):
    """These fixtures report (0, 0): answered 200 so the app moves on, and not stored."""
    for raw in samples(prefix):
        query = move_query(raw.split("?", 1)[1])
        response = requests.post(f"{server.url}/osmand?{query}", data=b"", timeout=10)
        assert response.status_code == 200
        assert response.json()["rejected"] == [
            {"index": 0, "error": "lat/lon: (0, 0) is not a real fix"}
        ]
    assert stored(engine, sample_devices["123456789012345"]) == []


def test_traccar_alarm_becomes_one_sos_alert(server, sample_devices, engine):
    raw = samples("traccar_android_legacy_query")[1]
    assert "alarm=alert%20message" in raw
    query = move_query(raw.split("?", 1)[1], NOW - timedelta(seconds=7))
    first, again = send_twice("POST", f"{server.url}/osmand?{query}", data=b"")
    assert (first.status_code, again.status_code) == (200, 200)
    with engine.connect() as conn:
        alerts = conn.execute(
            text("SELECT kind, note, ts, geom FROM alerts WHERE person_id = :p AND ts = :ts"),
            {"p": sample_devices["123456789012345"], "ts": NOW - timedelta(seconds=7)},
        ).all()
    assert [(a.kind, a.note, a.ts, a.geom) for a in alerts] == [
        ("sos", "alert message", NOW - timedelta(seconds=7), None)
    ]


def test_traccar_legacy_form_body_with_real_values(server, sample_devices, engine):
    """The same parameters in a form body (empty query), with a position and units that show."""
    raw = samples("traccar_android_legacy_query")[0].split("?", 1)[1]
    body = move_query(raw).replace("lat=0.0", "lat=39.9").replace("lon=0.0", "lon=116.4")
    body = body.replace("speed=0.0", "speed=10.0").replace("batt=0.0", "batt=57.0")
    body = body.replace("bearing=0.0", "bearing=270.0").replace("accuracy=0.0", "accuracy=6.0")
    response = requests.post(
        f"{server.url}/osmand",
        data=body,
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and response.json()["stored"] == 1
    (row,) = stored(engine, sample_devices["123456789012345"])
    check(
        row, 39.9, 116.4, accuracy=6.0, altitude=0.0, speed=10 * KNOT, heading=270.0, battery=0.57
    )


TRACCAR_JSON_EXPECTED = [
    ("48241179", dict(lat=37.4219983, lon=-122.084, accuracy=5, altitude=5, speed=0, battery=1)),
    ("658765", dict(lat=37.785834, lon=-122.406417, accuracy=5, altitude=0)),
    (
        "8737767034",
        dict(
            lat=-6.1148096,
            lon=106.6837015,
            accuracy=3.8,
            altitude=35.7,
            speed=18.67,
            heading=63,
            battery=0.79,
        ),
    ),
]


@pytest.mark.parametrize("index", range(3))
def test_traccar_client_9_json(server, sample_devices, engine, index):
    body = json.loads(json.dumps(samples("traccar_client_v9")[index]))
    body["location"]["timestamp"] = moved(body["location"]["timestamp"])
    token, expected = TRACCAR_JSON_EXPECTED[index]
    first, again = send_twice("POST", f"{server.url}/osmand", json=body)
    assert (first.status_code, again.status_code) == (200, 200)
    (row,) = stored(engine, sample_devices[token])
    check(row, **expected)


GPSLOGGER_EXPECTED = [
    dict(lat=12.193, lon=19.111, accuracy=8, altitude=45, speed=9005.0, heading=359, battery=0.91),
    dict(lat=12.193, lon=19.456, accuracy=0, altitude=0, speed=0, heading=0, battery=0),
    dict(lat=12.193, lon=19.111, accuracy=8, altitude=45, speed=9001.0, heading=359, battery=0.91),
]


def test_gpslogger_custom_urls_and_body(server, sample_devices, engine):
    token = "gpslogger-token-0001"
    get_1, get_2, post_body = samples("gpslogger_custom_url")
    for n, raw in enumerate([get_1, get_2]):
        query = move_query(raw.split("?", 1)[1])
        first, again = send_twice("GET", f"{server.url}/osmand/{token}?{query}")
        assert (first.status_code, again.json()["duplicates"]) == (200, 1), first.text
        rows = stored(engine, sample_devices[token])
        assert len(rows) == 1
        check(rows[0], **GPSLOGGER_EXPECTED[n])
        with engine.begin() as conn:  # the next sample reuses the same moved timestamp
            conn.execute(
                text("DELETE FROM positions WHERE person_id = :p"), {"p": sample_devices[token]}
            )
    body = move_query(post_body)
    first, again = send_twice(
        "POST",
        f"{server.url}/osmand/{token}",
        data=body.encode(),
        headers={"Content-Type": "text/plain"},
    )
    assert first.status_code == 200 and first.json()["stored"] == 1, first.text
    (row,) = stored(engine, sample_devices[token])
    check(row, **GPSLOGGER_EXPECTED[2])


OWNTRACKS_EXPECTED = [
    dict(lat=51.0, lon=0.0, accuracy=5, altitude=50, speed=0, battery=1.0),
    dict(lat=46.0681247, lon=11.1512805, accuracy=15, altitude=440, speed=0, battery=0.46),
    dict(lat=37, lon=-122, accuracy=5, altitude=0),
]


def test_owntracks_locations_with_basic_auth(server, sample_devices, engine):
    token = "owntracks-token-0001"
    for n, message in enumerate(samples("owntracks_http_json")):
        message = dict(message, tst=int(NOW.timestamp()) - n)
        first, again = send_twice(
            "POST", f"{server.url}/owntracks", json=message, auth=("volunteer", token)
        )
        assert (first.status_code, first.json(), again.json()) == (200, [], [])
    rows = stored(engine, sample_devices[token])
    assert len(rows) == 3
    for row, expected in zip(reversed(rows), OWNTRACKS_EXPECTED, strict=True):
        check(row, **expected)
    transition = {"_type": "transition", "event": "leave", "tst": int(time.time())}
    response = requests.post(f"{server.url}/owntracks/{token}", json=transition, timeout=10)
    assert (response.status_code, response.json()) == (200, [])
    assert len(stored(engine, sample_devices[token])) == 3
    wrong = requests.post(f"{server.url}/owntracks", json=message, auth=("v", "nope"), timeout=10)
    assert wrong.status_code == 401


def test_overland_batch_with_bearer_token(server, sample_devices, engine):
    token = "overland-token-0001"
    (batch,) = samples("overland_geojson_batch")
    batch = json.loads(json.dumps(batch))
    local = NOW.astimezone(UTC) - timedelta(hours=7)
    batch["locations"][0]["properties"]["timestamp"] = local.strftime("%Y-%m-%dT%H:%M:%S-0700")
    first, again = send_twice(
        "POST", f"{server.url}/overland", json=batch, headers={"Authorization": f"Bearer {token}"}
    )
    assert first.json() == {"result": "ok", "stored": 1, "duplicates": 0, "rejected": []}
    assert again.json()["duplicates"] == 1
    (row,) = stored(engine, sample_devices[token])
    assert row.ts == NOW
    check(row, 37.3318, -122.030581, accuracy=30, altitude=0, speed=4, battery=0.8)
    unauthorised = requests.post(f"{server.url}/overland", json=batch, timeout=10)
    assert unauthorised.status_code == 401 and unauthorised.json()["result"] == "error"


@pytest.mark.parametrize(
    "query, status, error",
    [
        ("id=902064&lat=1", 400, "lat, lon: are required (or location=lat,lon)"),
        (
            "id=902064&lat=1&lon=2&timestamp=soon",
            400,
            "timestamp: not epoch seconds, epoch milliseconds, ISO-8601 or yyyy-MM-dd HH:mm:ss",
        ),
        (
            "id=unknown-device&lat=1&lon=2&timestamp=1",
            404,
            "auth.token: unknown or revoked device token",
        ),
    ],
)
def test_osmand_errors_name_the_parameter(server, sample_devices, query, status, error):
    response = requests.get(f"{server.url}/osmand?{query}", timeout=10)
    assert response.status_code == status
    assert response.json()["error"] == error
