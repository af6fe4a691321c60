"""The live map's compact snapshot (GET /api/v1/live?format=columns) against PostGIS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import update

from tests.db.test_api import login, store_fixes
from tracker import store
from tracker.extensions import db
from tracker.models import Unit
from tracker.privacy.policy import policies


def people_of(columns: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Return a columns answer as person id -> that person's fields, roles named."""
    fields = [key for key in columns if key not in ("format", "count", "read_at", "roles")]
    assert all(len(columns[key]) == columns["count"] for key in fields)
    people = {
        person_id: {key: columns[key][i] for key in fields}
        for i, person_id in enumerate(columns["person_id"])
    }
    for person in people.values():
        person["role"] = columns["roles"][person["role"]]
    return people


def test_columns_hold_what_the_geojson_holds(app, client, make_unit, make_phone, make_user):
    grid_a, grid_b = make_unit(), make_unit()
    a, b = make_phone("patrol", grid_a), make_phone(unit_id=grid_b)
    store_fixes(app, a, (30, 39.9, 116.4), (5, 39.95, 116.45))
    store_fixes(app, b, (5, 31.23, 121.47))
    with app.app_context():
        store.people.open_shift(db.session, a.person_id)
        db.session.commit()
    login(client, *make_user("viewer", grid_a))

    features = client.get("/api/v1/live").json["features"]
    columns = client.get("/api/v1/live?format=columns").json

    assert columns["format"] == "columns" and columns["count"] == len(features)
    # Each role is named once; `role` holds indexes into the names.
    assert sorted(columns["roles"]) == columns["roles"] and "patrol" in columns["roles"]
    assert all(isinstance(code, int) for code in columns["role"])
    people = people_of(columns)
    # The scope holds for this form too: grid B's person is not there.
    assert b.person_id not in people
    mine = people[a.person_id]
    assert (mine["lon"], mine["lat"]) == (116.45, 39.95)
    assert mine["role"] == "patrol" and mine["unit_id"] == grid_a and mine["on_duty"] is True
    for feature in features:
        expected = dict(feature["properties"])
        lon, lat = feature["geometry"]["coordinates"]
        expected["lon"], expected["lat"] = round(lon, 6), round(lat, 6)
        if expected["heading"] is not None:
            expected["heading"] = round(expected["heading"])
        expected["ts_ms"] = round(datetime.fromisoformat(expected.pop("ts")).timestamp() * 1000)
        del expected["age_s"]
        assert people[expected["person_id"]] == expected


def test_columns_round_coordinates_to_6_decimals_and_headings_to_degrees(
    app, client, make_phone, make_user
):
    phone = make_phone()
    now = datetime.now(UTC)
    with app.app_context():
        store.positions.ensure_partition(db.session, now.date())
        store.positions.insert_positions(
            db.session,
            [
                store.positions.PositionRow(
                    phone.person_id,
                    phone.device_id,
                    now,
                    39.912345678,
                    116.401234449,
                    speed_mps=1.5,
                    heading_deg=123.6,
                )
            ],
        )
        db.session.commit()
    login(client, *make_user("admin"))
    geojson = next(
        f for f in client.get("/api/v1/live").json["features"] if f["id"] == phone.person_id
    )
    person = people_of(client.get("/api/v1/live?format=columns").json)[phone.person_id]
    # About 0.1 m: the GeoJSON answer keeps every digit.
    assert (person["lat"], person["lon"]) == (39.912346, 116.401234)
    assert geojson["geometry"]["coordinates"] == [116.401234449, 39.912345678]
    # Whole degrees, what the map draws; the speed as stored.
    assert person["heading"] == 124 and person["speed"] == 1.5


def test_columns_hide_off_duty_people_where_the_unit_says_so(
    app, client, make_unit, make_phone, make_user
):
    grid = make_unit()
    on, off = make_phone(unit_id=grid), make_phone(unit_id=grid)
    store_fixes(app, on, (5, 39.95, 116.45))
    store_fixes(app, off, (5, 39.96, 116.46))
    with app.app_context():
        store.people.open_shift(db.session, on.person_id)
        db.session.execute(update(Unit).where(Unit.id == grid).values(live_shows_off_duty=False))
        db.session.commit()
    policies.load()
    try:
        login(client, *make_user("admin"))
        shown = set(client.get("/api/v1/live?format=columns").json["person_id"])
        assert on.person_id in shown and off.person_id not in shown
    finally:
        with app.app_context():
            db.session.execute(update(Unit).where(Unit.id == grid).values(live_shows_off_duty=None))
            db.session.commit()
        policies.load()


def test_columns_of_an_empty_box_are_empty_arrays(client, make_user):
    login(client, *make_user("admin"))
    answer = client.get("/api/v1/live?format=columns&bbox=-10,-10,-9,-9").json
    assert answer["count"] == 0 and answer["person_id"] == [] and answer["ts_ms"] == []
    assert answer["roles"] == [] and answer["role"] == []


def test_an_unknown_format_names_the_parameter(client, make_user):
    login(client, *make_user("admin"))
    response = client.get("/api/v1/live?format=csv")
    assert response.status_code == 400 and response.json["error"].startswith("format:")


def test_received_since_catches_up_from_read_at(app, client, make_phone, make_user):
    early, late = make_phone(), make_phone()
    store_fixes(app, early, (5, 39.95, 116.45))
    login(client, *make_user("admin"))
    first = client.get("/api/v1/live?format=columns").json
    assert early.person_id in first["person_id"] and late.person_id not in first["person_id"]
    store_fixes(app, late, (5, 39.96, 116.46))
    since = quote(first["read_at"])
    missed = client.get(f"/api/v1/live?format=columns&received_since={since}").json
    # Only what the server received after the first read: the late fix, not the early one.
    assert missed["person_id"] == [late.person_id]
    assert datetime.fromisoformat(missed["read_at"]) >= datetime.fromisoformat(first["read_at"])
    bad = client.get("/api/v1/live?format=columns&received_since=yesterday")
    assert bad.status_code == 400 and bad.json["error"].startswith("received_since:")
