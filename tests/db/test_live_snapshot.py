"""The live map's compact snapshot (GET /api/v1/live?format=columns) against PostGIS."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import update

from tests.db.test_api import login, store_fixes
from tracker import store
from tracker.extensions import db
from tracker.models import Unit
from tracker.privacy.policy import policies


def people_of(columns: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Return a columns answer as person id -> that person's fields."""
    fields = [key for key in columns if key not in ("format", "count", "read_at")]
    assert all(len(columns[key]) == columns["count"] for key in fields)
    return {
        person_id: {key: columns[key][i] for key in fields}
        for i, person_id in enumerate(columns["person_id"])
    }


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
    people = people_of(columns)
    # The scope holds for this form too: grid B's person is not there.
    assert b.person_id not in people
    mine = people[a.person_id]
    assert (mine["lon"], mine["lat"]) == (116.45, 39.95)
    assert mine["role"] == "patrol" and mine["unit_id"] == grid_a and mine["on_duty"] is True
    for feature in features:
        expected = dict(feature["properties"])
        expected["lon"], expected["lat"] = feature["geometry"]["coordinates"]
        expected["ts_ms"] = round(datetime.fromisoformat(expected.pop("ts")).timestamp() * 1000)
        del expected["age_s"]
        assert people[expected["person_id"]] == expected


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
