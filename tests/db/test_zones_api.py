"""Boundary import, coverage and alerts through the API and the CLI."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from tracker import store
from tracker.extensions import db
from tracker.models import Unit


def box(x0, y0, size=0.01):
    """Return a square Polygon geometry."""
    return {
        "type": "Polygon",
        "coordinates": [
            [[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size], [x0, y0]]
        ],
    }


def collection(tag, grids=(("A", 116.40), ("B", 116.41)), extra=()):
    """Return a FeatureCollection: a district, a street, grids below it."""
    feats = [
        {
            "type": "Feature",
            "properties": {"name": f"区{tag}", "kind": "district"},
            "geometry": box(116.39, 39.89, 0.05),
        },
        {
            "type": "Feature",
            "properties": {"name": f"街道{tag}", "kind": "street", "parent": f"区{tag}"},
            "geometry": box(116.40, 39.90, 0.03),
        },
    ]
    feats += [
        {
            "type": "Feature",
            "properties": {"name": f"网格{tag}{g}", "kind": "grid", "parent": f"街道{tag}"},
            "geometry": box(x, 39.90),
        }
        for g, x in grids
    ]
    return {"type": "FeatureCollection", "features": feats + list(extra)}


def unit_count(app):
    """Return how many units exist."""
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Unit)).scalar_one()


def login(client, make_user, role, unit_id=None):
    """Log a new staff account in."""
    username, password = make_user(role, unit_id)
    client.post("/api/v1/session", json={"username": username, "password": password})


def test_import_creates_then_updates_and_reports_repairs(app, client, make_user):
    tag = uuid.uuid4().hex[:6]
    login(client, make_user, "admin")
    first = client.post("/api/v1/units/import", json=collection(tag))
    assert first.status_code == 200
    assert first.json["created"] == [f"区{tag}", f"街道{tag}", f"网格{tag}A", f"网格{tag}B"]
    before = unit_count(app)
    bow_tie = {
        "type": "Polygon",
        "coordinates": [
            [[116.40, 39.90], [116.41, 39.91], [116.41, 39.90], [116.40, 39.91], [116.40, 39.90]]
        ],
    }
    doc = collection(tag)
    doc["features"][2]["geometry"] = bow_tie
    again = client.post("/api/v1/units/import", json=doc)
    assert again.status_code == 200
    assert again.json["created"] == [] and len(again.json["updated"]) == 4
    assert unit_count(app) == before
    (repaired,) = again.json["repaired"]
    assert repaired.startswith(f"features[2] (网格{tag}A): Self-intersection")
    with app.app_context():
        valid, kind = db.session.execute(
            select(func.ST_IsValid(Unit.boundary), func.GeometryType(Unit.boundary)).where(
                Unit.name == f"网格{tag}A"
            )
        ).one()
    assert valid is True and kind == "MULTIPOLYGON"


def test_invalid_feature_is_named_and_nothing_is_imported(app, client, make_user):
    login(client, make_user, "admin")
    before = unit_count(app)
    point = {
        "type": "Feature",
        "properties": {"name": "坏网格", "kind": "grid"},
        "geometry": {"type": "Point", "coordinates": [116.4, 39.9]},
    }
    response = client.post("/api/v1/units/import", json=collection("x", extra=[point]))
    assert response.status_code == 400
    assert response.json["error"] == (
        "features[4] (坏网格): geometry must be Polygon or MultiPolygon, got Point"
    )
    orphan = {
        "type": "Feature",
        "properties": {"name": "孤儿", "kind": "grid", "parent": "nowhere"},
        "geometry": box(1, 1),
    }
    response = client.post("/api/v1/units/import", json=collection("y", extra=[orphan]))
    assert response.json["error"] == "features[4] (孤儿): properties.parent 'nowhere' is not a unit"
    far = {
        "type": "Feature",
        "properties": {"name": "投影", "kind": "grid"},
        "geometry": box(500000, 4400000),
    }
    response = client.post("/api/v1/units/import", json=collection("z", extra=[far]))
    assert "is not WGS-84 longitude/latitude" in response.json["error"]
    assert unit_count(app) == before


def test_a_scoped_admin_imports_only_inside_its_scope(app, client, make_user):
    tag = uuid.uuid4().hex[:6]
    login(client, make_user, "admin")
    assert client.post("/api/v1/units/import", json=collection(tag)).status_code == 200
    with app.app_context():
        street = db.session.execute(select(Unit.id).where(Unit.name == f"街道{tag}")).scalar_one()
    client.delete("/api/v1/session")
    login(client, make_user, "admin", street)
    before = unit_count(app)
    # A new district with its own street and grids is outside the scope.
    outside = collection(f"{tag}x")
    refused = client.post("/api/v1/units/import", json=outside)
    assert refused.status_code == 403
    assert refused.json["error"] == "units: the file creates or changes units outside your scope"
    assert unit_count(app) == before
    grid_only = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": f"网格{tag}C", "kind": "grid", "parent": f"街道{tag}"},
                "geometry": box(116.42, 39.90),
            }
        ],
    }
    accepted = client.post("/api/v1/units/import", json=grid_only)
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["created"] == [f"网格{tag}C"]
    assert unit_count(app) == before + 1


def test_only_admins_import(client, make_user):
    login(client, make_user, "dispatcher")
    assert client.post("/api/v1/units/import", json=collection("d")).status_code == 403


def test_cli_import_and_assign(app, runner, tmp_path, make_phone):
    tag = uuid.uuid4().hex[:6]
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps(collection(tag)), encoding="utf-8")
    result = runner.invoke(args=["units", "import", str(path)])
    assert result.exit_code == 0 and "4 units created, 0 updated" in result.output
    assert "0 units created, 4 updated" in runner.invoke(args=["units", "import", str(path)]).output
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature"}]}))
    bad = runner.invoke(args=["units", "import", str(path)])
    assert bad.exit_code == 1 and "nothing imported: features[0]: properties.name" in bad.output
    with app.app_context():
        grid = db.session.execute(select(Unit.id).where(Unit.name == f"网格{tag}A")).scalar()
    person = make_phone().person_id
    assigned = runner.invoke(args=["people", "assign", str(person), "--grid", str(grid)])
    assert assigned.exit_code == 0, assigned.output


def test_coverage_and_grid_people_are_scoped(app, client, make_user, make_phone):
    tag = uuid.uuid4().hex[:6]
    login(client, make_user, "admin")
    # Grids of their own, away from other tests' grids, so matching is unambiguous.
    client.post("/api/v1/units/import", json=collection(tag, grids=(("A", 100.40), ("B", 100.41))))
    with app.app_context():
        ids = dict(
            db.session.execute(select(Unit.name, Unit.id).where(Unit.name.like(f"%{tag}%"))).all()
        )
    grid_a, grid_b, street = ids[f"网格{tag}A"], ids[f"网格{tag}B"], ids[f"街道{tag}"]
    inside = make_phone(unit_id=grid_a)
    visitor = make_phone(unit_id=grid_b)
    now = datetime.now(UTC)
    with app.app_context():
        store.people.assign_patrol_unit(db.session, inside.person_id, grid_a)
        store.people.open_shift(db.session, inside.person_id)
        store.positions.ensure_partition(db.session, now.date())
        store.positions.insert_positions(
            db.session,
            [
                store.positions.PositionRow(
                    inside.person_id, inside.device_id, now, 39.905, 100.405
                ),
                store.positions.PositionRow(
                    visitor.person_id, visitor.device_id, now, 39.905, 100.406
                ),
            ],
        )
        store.zones.match_grids(db.session, [inside.person_id, visitor.person_id])
        db.session.commit()
    people = client.get(f"/api/v1/units/{grid_a}/people").json
    assert {p["person_id"] for p in people["people"]} == {inside.person_id, visitor.person_id}
    assert (people["inside"], people["assigned"], people["on_duty"]) == (2, 1, 1)
    grids = {g["unit_id"]: g for g in client.get("/api/v1/coverage").json["grids"]}
    assert grids[grid_a] == {
        "unit_id": grid_a,
        "name": f"网格{tag}A",
        "inside": 2,
        "assigned": 1,
        "on_duty_inside": 1,
    }
    assert grids[grid_b]["inside"] == 0
    # On duty but silent for longer than STALE_AFTER_S: no longer covers the grid.
    with app.app_context():
        db.session.execute(
            text(
                "UPDATE latest_positions SET ts = ts - interval '20 minutes' WHERE person_id = :p"
            ),
            {"p": inside.person_id},
        )
        db.session.commit()
    grids = {g["unit_id"]: g for g in client.get("/api/v1/coverage").json["grids"]}
    assert (grids[grid_a]["inside"], grids[grid_a]["on_duty_inside"]) == (2, 0)
    client.delete("/api/v1/session")
    login(client, make_user, "viewer", grid_b)
    assert client.get(f"/api/v1/units/{grid_a}/people").status_code == 404
    scoped = client.get("/api/v1/coverage").json["grids"]
    assert [g["unit_id"] for g in scoped] == [grid_b]
    client.delete("/api/v1/session")
    login(client, make_user, "viewer", street)
    assert {g["unit_id"] for g in client.get("/api/v1/coverage").json["grids"]} == {grid_a, grid_b}


def test_alerts_are_scoped_filtered_and_acknowledged(app, client, make_user, make_phone, make_unit):
    grid_a, grid_b = make_unit(), make_unit()
    a, b = make_phone(unit_id=grid_a), make_phone(unit_id=grid_b)
    now = datetime.now(UTC)
    with app.app_context():
        for phone, kind in ((a, "sos"), (a, "zone_exit"), (b, "sos")):
            store.alerts.insert_alert(
                db.session,
                phone.person_id,
                phone.device_id,
                kind,
                now - timedelta(seconds=len(kind)),
                (39.9, 116.4),
                None,
            )
        db.session.commit()
    login(client, make_user, "viewer", grid_a)
    mine = client.get("/api/v1/alerts").json["alerts"]
    assert {(x["person_id"], x["kind"]) for x in mine} == {
        (a.person_id, "sos"),
        (a.person_id, "zone_exit"),
    }
    assert [x["kind"] for x in client.get("/api/v1/alerts?kind=sos").json["alerts"]] == ["sos"]
    assert client.get("/api/v1/alerts?kind=fire").status_code == 400
    sos_id = next(x["id"] for x in mine if x["kind"] == "sos")
    assert client.post(f"/api/v1/alerts/{sos_id}/acknowledge", json={}).status_code == 403
    client.delete("/api/v1/session")
    login(client, make_user, "dispatcher", grid_b)
    assert client.post(f"/api/v1/alerts/{sos_id}/acknowledge", json={}).status_code == 404
    client.delete("/api/v1/session")
    username, password = make_user("dispatcher", grid_a)
    client.post("/api/v1/session", json={"username": username, "password": password})
    done = client.post(f"/api/v1/alerts/{sos_id}/acknowledge", json={})
    assert done.json == {"id": sos_id, "acknowledged_by": username}
    assert client.post(f"/api/v1/alerts/{sos_id}/acknowledge", json={}).status_code == 404
    still_open = client.get("/api/v1/alerts?open=1").json["alerts"]
    assert [x["kind"] for x in still_open] == ["zone_exit"]
    acked = next(x for x in client.get("/api/v1/alerts").json["alerts"] if x["id"] == sos_id)
    assert acked["acknowledged_by"] == username and acked["acknowledged_at"]
