"""/metrics on the real server: the counters move by exactly the fixes sent; off-duty fixes."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import requests
from sqlalchemy import create_engine, text

from tests.e2e.phones import TestPhone
from tests.e2e.staff import staff_session

SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$")


def scrape(server) -> dict[str, float]:
    """Return every sample of /metrics as {'name{labels}': value}."""
    response = requests.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for line in response.text.splitlines():
        if match := SAMPLE.match(line):
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def moved(before: dict[str, float], after: dict[str, float], name: str) -> float:
    """Return how much one sample grew between two scrapes."""
    return after.get(name, 0.0) - before.get(name, 0.0)


def fixes(count: int, start_minutes_ago: int = 30) -> list[dict]:
    """Return `count` valid fixes a minute apart, in the protocol's shape."""
    start = datetime.now(UTC) - timedelta(minutes=start_minutes_ago)
    return [
        {
            "ts": int((start + timedelta(minutes=n)).timestamp() * 1000),
            "lat": 39.9 + n / 1e4,
            "lon": 116.4,
        }
        for n in range(count)
    ]


def stored_count(database_url: str, person_id: int) -> int:
    """Return how many positions of a person the database holds."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM positions WHERE person_id = :p"), {"p": person_id}
            ).scalar()
    finally:
        engine.dispose()


def test_counters_move_by_exactly_the_positions_sent(server, make_phone, database_url):
    phone = make_phone()
    headers = {"Authorization": f"Bearer {phone.token}"}
    batch = fixes(5)
    before = scrape(server)
    first = requests.post(
        f"{server.url}/api/v1/positions", json={"positions": batch}, headers=headers, timeout=10
    )
    assert first.json()["stored"] == 5
    again = requests.post(
        f"{server.url}/api/v1/positions", json={"positions": batch}, headers=headers, timeout=10
    )
    assert again.json()["duplicates"] == 5
    bad = [*fixes(1, 5), {"ts": batch[0]["ts"] + 1, "lat": 91, "lon": 116.4}]
    third = requests.post(
        f"{server.url}/api/v1/positions", json={"positions": bad}, headers=headers, timeout=10
    )
    assert third.json()["stored"] == 1 and len(third.json()["rejected"]) == 1
    for minutes_ago in (3, 2):
        assert osmand_path(server, phone.token, minutes_ago).status_code == 200
    after = scrape(server)
    api = '{path="api"}'
    assert moved(before, after, f"tracker_positions_received_total{api}") == 12
    assert moved(before, after, f"tracker_positions_stored_total{api}") == 6
    assert moved(before, after, f"tracker_positions_duplicated_total{api}") == 5
    assert moved(before, after, 'tracker_positions_rejected_total{path="api",reason="lat"}') == 1
    assert moved(before, after, 'tracker_positions_stored_total{path="osmand"}') == 2
    assert moved(before, after, 'tracker_ingest_ack_seconds_count{path="api"}') == 3
    assert moved(before, after, "tracker_group_commit_rows_sum") >= 8
    assert stored_count(database_url, phone.person_id) == 8
    # No label names a person or a device.
    assert str(phone.person_id) not in "".join(k for k in after if "person" in k)
    for name in (
        "tracker_writer_queue_rows",
        "tracker_db_pool_connections_in_use",
        "tracker_devices_connected",
        "tracker_viewers_connected",
        "tracker_group_commit_duration_seconds_count",
    ):
        assert name in after


def osmand_path(server, token: str, minutes_ago: int) -> requests.Response:
    """Send one OsmAnd fix to the /osmand path with the token in the query."""
    ts = int((datetime.now(UTC) - timedelta(minutes=minutes_ago)).timestamp())
    return requests.get(
        f"{server.url}/osmand",
        params={"id": token, "lat": 39.91, "lon": 116.41, "timestamp": ts},
        timeout=10,
    )


def test_off_duty_fixes_are_answered_200_stored_nowhere_and_counted(
    server, make_user, make_phone, make_unit, database_url
):
    unit_id = make_unit(name=f"on-duty-only-{uuid.uuid4().hex[:6]}")
    phone = make_phone(unit_id=unit_id)
    admin = staff_session(server, make_user)
    policy = admin.put(
        f"{server.url}/api/v1/units/{unit_id}/tracking-policy",
        json={"tracking_policy": "on_duty"},
        timeout=10,
    )
    assert policy.status_code == 200, policy.text
    before = scrape(server)
    for minutes_ago in (4, 3, 2):
        answer = osmand_path(server, phone.token, minutes_ago)
        assert answer.status_code == 200
        assert answer.json()["stored"] == 0 and answer.json()["not_kept"] == 1
    after = scrape(server)
    off = 'tracker_positions_discarded_total{path="osmand",reason="off_duty"}'
    assert moved(before, after, off) == 3
    assert moved(before, after, 'tracker_positions_stored_total{path="osmand"}') == 0
    assert stored_count(database_url, phone.person_id) == 0

    # On duty (the phone app's `duty` event), the same kind of fix is kept.
    device = TestPhone(server.url, phone.token).connect()
    try:
        assert device.call("duty", {"on": True})["ok"] is True
        ack = device.send(fixes(1, 1))
        assert ack["stored"] == 1 and "not_kept" not in ack
    finally:
        device.close()
    assert stored_count(database_url, phone.person_id) == 1


def test_duty_hours_keep_only_fixes_within_them(server, make_user, make_phone, make_unit):
    unit_id = make_unit()
    phone = make_phone(unit_id=unit_id)
    admin = staff_session(server, make_user)
    # A one-hour window that ends an hour ago (in the server's history time zone).
    now_local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    start, end = now_local - timedelta(hours=3), now_local - timedelta(hours=1)
    hours = f"{start:%H}:00-{end:%H}:00"
    policy = admin.put(
        f"{server.url}/api/v1/units/{unit_id}/tracking-policy",
        json={"tracking_policy": "duty_hours", "duty_hours": hours},
        timeout=10,
    )
    assert policy.status_code == 200, policy.text
    assert policy.json()["duty_start"] == f"{start:%H}:00"
    headers = {"Authorization": f"Bearer {phone.token}"}
    inside = int((now_local - timedelta(hours=2)).replace(minute=5).timestamp() * 1000)
    outside = int(datetime.now(UTC).timestamp() * 1000) - 1000
    ack = requests.post(
        f"{server.url}/api/v1/positions",
        json={"positions": [{"ts": inside, "lat": 39.9, "lon": 116.4},
                            {"ts": outside, "lat": 39.9, "lon": 116.4}]},
        headers=headers,
        timeout=10,
    ).json()  # fmt: skip
    assert (ack["stored"], ack["not_kept"]) == (1, 1)
    bad = admin.put(
        f"{server.url}/api/v1/units/{unit_id}/tracking-policy",
        json={"tracking_policy": "duty_hours", "duty_hours": "8-18"},
        timeout=10,
    )
    assert bad.status_code == 400 and bad.json()["error"].startswith("duty_hours:")


def test_the_live_map_hides_off_duty_people_unless_the_unit_allows(
    server, make_user, make_phone, make_unit
):
    unit_id = make_unit()
    phone = make_phone(unit_id=unit_id)
    admin = staff_session(server, make_user)
    headers = {"Authorization": f"Bearer {phone.token}"}
    requests.post(
        f"{server.url}/api/v1/positions",
        json={"positions": fixes(1, 1)},
        headers=headers,
        timeout=10,
    )

    def on_map() -> bool:
        features = admin.get(f"{server.url}/api/v1/live", timeout=10).json()["features"]
        return phone.person_id in {f["properties"]["person_id"] for f in features}

    for shows, expected in ((False, False), (True, True)):
        response = admin.put(
            f"{server.url}/api/v1/units/{unit_id}/tracking-policy",
            json={"tracking_policy": "always", "live_shows_off_duty": shows},
            timeout=10,
        )
        assert response.status_code == 200
        assert on_map() is expected
