"""The staff REST API through the Flask test client, against PostGIS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tracker import store
from tracker.extensions import db


def login(client, username, password):
    """Log a staff account in through the API."""
    return client.post("/api/v1/session", json={"username": username, "password": password})


def store_fixes(app, phone, *fixes):
    """Store (seconds_ago, lat, lon) fixes for a phone directly."""
    now = datetime.now(UTC)
    with app.app_context():
        for day in {now.date(), (now - timedelta(hours=1)).date()}:
            store.positions.ensure_partition(db.session, day)
        store.positions.insert_positions(
            db.session,
            [
                store.positions.PositionRow(
                    phone.person_id, phone.device_id, now - timedelta(seconds=s), lat, lon
                )
                for s, lat, lon in fixes
            ],
        )
        db.session.commit()


@pytest.mark.parametrize("path", ["/api/v1/live", "/api/v1/people/1/track", "/api/v1/session"])
def test_reads_need_a_session(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.json == {"error": "session: log in first"}


def test_login_logout_and_bad_credentials(client, make_user):
    username, password = make_user("viewer")
    assert login(client, username, "wrong").status_code == 401
    assert login(client, "nobody", "wrong").status_code == 401
    assert login(client, username, None).status_code == 400
    response = login(client, username, password)
    assert response.status_code == 200
    assert response.json["role"] == "viewer"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/api/v1/session").json["username"] == username
    assert client.delete("/api/v1/session").status_code == 204
    assert client.get("/api/v1/live").status_code == 401


def test_password_is_stored_hashed(app, make_user):
    username, password = make_user("viewer")
    with app.app_context():
        stored = store.accounts.user_by_username(db.session, username).password_hash
    assert password not in stored and stored.startswith("scrypt:")


def test_cross_site_state_change_is_refused(client, make_user):
    username, password = make_user("admin")
    login(client, username, password)
    evil = client.delete("/api/v1/session", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    form = client.post("/api/v1/session", data={"username": username, "password": password})
    assert form.status_code == 415
    assert client.get("/api/v1/session").status_code == 200


def test_live_is_scoped_and_filtered_by_bbox(app, client, make_unit, make_phone, make_user):
    grid_a, grid_b = make_unit(), make_unit()
    a, b = make_phone(unit_id=grid_a), make_phone(unit_id=grid_b)
    store_fixes(app, a, (5, 39.95, 116.45))
    store_fixes(app, b, (5, 31.23, 121.47))
    login(client, *make_user("viewer", grid_a))
    ids = {f["properties"]["person_id"] for f in client.get("/api/v1/live").json["features"]}
    assert a.person_id in ids and b.person_id not in ids
    feature = next(
        f
        for f in client.get("/api/v1/live").json["features"]
        if f["properties"]["person_id"] == a.person_id
    )
    assert feature["geometry"] == {"type": "Point", "coordinates": [116.45, 39.95]}
    assert 4 <= feature["properties"]["age_s"] < 60
    assert set(feature["properties"]) >= {
        "person_id",
        "name",
        "role",
        "unit_id",
        "ts",
        "accuracy",
        "speed",
        "heading",
        "battery",
        "on_duty",
        "age_s",
    }
    client.delete("/api/v1/session")
    login(client, *make_user("admin"))
    in_box = client.get("/api/v1/live?bbox=121,31,122,32").json["features"]
    ids = {f["properties"]["person_id"] for f in in_box}
    assert b.person_id in ids and a.person_id not in ids


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "10,0,5,1", "0,0,1,nan"])
def test_bad_bbox_names_the_parameter(client, make_user, bbox):
    login(client, *make_user("admin"))
    response = client.get(f"/api/v1/live?bbox={bbox}")
    assert response.status_code == 400
    assert response.json["error"].startswith("bbox:")


def test_track_is_scoped_and_windowed(app, client, make_unit, make_phone, make_user):
    grid_a, grid_b = make_unit(), make_unit()
    a = make_phone(unit_id=grid_a)
    store_fixes(app, a, (300, 39.90, 116.40), (200, 39.91, 116.40), (100, 39.92, 116.40))
    login(client, *make_user("dispatcher", grid_b))
    assert client.get(f"/api/v1/people/{a.person_id}/track").status_code == 404
    client.delete("/api/v1/session")
    login(client, *make_user("dispatcher", grid_a))
    track = client.get(f"/api/v1/people/{a.person_id}/track").json
    assert track["type"] == "Feature"
    assert track["geometry"]["type"] == "LineString"
    assert track["geometry"]["coordinates"] == [[116.4, 39.9], [116.4, 39.91], [116.4, 39.92]]
    assert track["properties"]["points"] == 3
    assert track["properties"]["distance_m"] == pytest.approx(2223.9, rel=5e-3)
    since = (datetime.now(UTC) - timedelta(seconds=150)).isoformat()
    recent = client.get(f"/api/v1/people/{a.person_id}/track", query_string={"from": since}).json
    assert recent["properties"]["points"] == 1
    assert recent["geometry"] == {"type": "Point", "coordinates": [116.4, 39.92]}
    simple = client.get(f"/api/v1/people/{a.person_id}/track?simplify=50").json
    # The three fixes lie on one meridian: simplified, the middle one goes; counts stay exact.
    assert simple["geometry"]["coordinates"] == [[116.4, 39.9], [116.4, 39.92]]
    assert simple["properties"]["points"] == 3
    assert simple["properties"]["distance_m"] == track["properties"]["distance_m"]
    assert client.get(f"/api/v1/people/{a.person_id}/track?simplify=-1").status_code == 400
    bad = client.get(f"/api/v1/people/{a.person_id}/track?from=yesterday")
    assert bad.status_code == 400 and bad.json["error"] == "from: not an ISO-8601 date-time"


def test_http_fallback_stores_and_answers_like_the_socket(client, make_phone, app):
    phone = make_phone()
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    payload = {
        "positions": [
            {"ts": now_ms, "lat": 39.9, "lon": 116.4},
            {"ts": now_ms, "lat": 39.9, "lon": 116.4},
            {"ts": now_ms - 1000, "lat": 91, "lon": 116.4},
        ]
    }
    headers = {"Authorization": f"Bearer {phone.token}"}
    response = client.post("/api/v1/positions", json=payload, headers=headers)
    assert response.status_code == 200
    assert response.json == {
        "ok": True,
        "stored": 1,
        "duplicates": 1,
        "rejected": [{"index": 2, "error": "lat: must be between -90 and 90"}],
    }
    with app.app_context():
        assert store.tracks.count_positions(db.session, phone.person_id) == 1
    assert client.post("/api/v1/positions", json=payload).status_code == 401
    assert (
        client.post(
            "/api/v1/positions", json=payload, headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    bad = client.post(
        "/api/v1/positions", data="{oops", headers=headers, content_type="application/json"
    )
    assert (bad.status_code, bad.json["error"]) == (400, "payload: not valid JSON")
    empty = client.post("/api/v1/positions", json={"positions": []}, headers=headers)
    assert empty.status_code == 400
    huge = {"positions": [{"ts": now_ms, "lat": 39.9, "lon": 116.4, "pad": "x" * 300_000}]}
    assert client.post("/api/v1/positions", json=huge, headers=headers).status_code == 413


@pytest.mark.parametrize("hops, status", [(1, 401), (0, 403)])
def test_forwarded_headers_are_trusted_only_behind_a_configured_proxy(database_url, hops, status):
    from tracker import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "PROXY_HOPS": hops})
    headers = {
        "Origin": "https://tracker.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "tracker.example",
        "X-Forwarded-For": "10.1.2.3",
    }
    response = app.test_client().post(
        "/api/v1/session", json={"username": "nobody", "password": "x"}, headers=headers
    )
    # Behind nginx the browser's origin matches and the login is judged (401, bad password);
    # without a proxy configured, forged headers are ignored and the origin check refuses it.
    assert response.status_code == status
    with app.app_context():
        db.engine.dispose()
