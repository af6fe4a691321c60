"""Units and grids through the administration API, checked in PostGIS and audit_events."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select, text

from tracker import store
from tracker.extensions import db
from tracker.models import AuditEvent, Unit


def box(x0, y0, size=0.01):
    """Return a square Polygon geometry."""
    return {
        "type": "Polygon",
        "coordinates": [
            [[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size], [x0, y0]]
        ],
    }


BOW_TIE = {
    "type": "Polygon",
    "coordinates": [
        [[116.40, 39.90], [116.41, 39.91], [116.41, 39.90], [116.40, 39.91], [116.40, 39.90]]
    ],
}


def login(client, make_user, role, unit_id=None):
    """Log a new staff account in; return its user name."""
    username, password = make_user(role, unit_id)
    answer = client.post("/api/v1/session", json={"username": username, "password": password})
    assert answer.status_code == 200
    return username


def tag():
    """Return a fresh suffix for unit names."""
    return uuid.uuid4().hex[:6]


def unit_row(app, unit_id):
    """Return a unit's name, kind, parent and boundary (GeoJSON) from PostGIS, or None."""
    with app.app_context():
        return db.session.execute(
            select(
                Unit.name, Unit.kind, Unit.parent_id, func.ST_AsGeoJSON(Unit.boundary, 15)
            ).where(Unit.id == unit_id)
        ).first()


def audit_rows(app, unit_id):
    """Return the audit rows of a unit, oldest first."""
    with app.app_context():
        return db.session.execute(
            select(AuditEvent.action, AuditEvent.actor_name, AuditEvent.before, AuditEvent.after)
            .where(AuditEvent.target_kind == "unit", AuditEvent.target_id == unit_id)
            .order_by(AuditEvent.id)
        ).all()


@pytest.fixture()
def street(make_unit):
    """Return (district id, street id) for a fresh district with one street."""
    district = make_unit(f"区{tag()}", "district")
    return district, make_unit(f"街道{tag()}", "street", district)


def test_create_rename_move_delete_are_stored_and_audited(app, client, make_user, street):
    district, street_id = street
    username = login(client, make_user, "admin")
    name = f"网格{tag()}"
    created = client.post(
        "/api/v1/units",
        json={
            "name": f"  {name} ",
            "kind": "grid",
            "parent_id": street_id,
            "boundary": box(116.4, 39.9),
        },
    )
    assert created.status_code == 201, created.json
    unit = created.json["unit"]
    assert unit["name"] == name and unit["parent_id"] == street_id
    assert created.json["repair"] is None and created.json["overlaps"] == []
    assert 800_000 < unit["area_m2"] < 1_000_000  # 0.01° × 0.01° at 40° N
    row = unit_row(app, unit["id"])
    assert row[:3] == (name, "grid", street_id)
    assert json.loads(row[3])["coordinates"][0] == box(116.4, 39.9)["coordinates"]

    other = client.post(
        "/api/v1/units", json={"name": f"街道{tag()}", "kind": "street", "parent_id": district}
    )
    renamed = client.patch(f"/api/v1/units/{unit['id']}", json={"name": name + "东"})
    moved = client.patch(
        f"/api/v1/units/{unit['id']}", json={"parent_id": other.json["unit"]["id"]}
    )
    assert renamed.status_code == 200 and moved.status_code == 200
    assert unit_row(app, unit["id"])[:3] == (name + "东", "grid", other.json["unit"]["id"])

    assert client.delete(f"/api/v1/units/{unit['id']}").status_code == 204
    assert unit_row(app, unit["id"]) is None
    actions = [(r.action, r.actor_name) for r in audit_rows(app, unit["id"])]
    assert actions == [
        ("unit.create", username),
        ("unit.update", username),
        ("unit.update", username),
        ("unit.delete", username),
    ]
    rows = audit_rows(app, unit["id"])
    assert rows[1].before == {"name": name} and rows[1].after == {"name": name + "东"}
    assert rows[2].before == {"parent_id": street_id}
    assert rows[3].before["name"] == name + "东" and rows[3].after is None
    assert rows[0].after["boundary"]["type"] == "MultiPolygon"


def test_scoped_admin_stays_inside_its_street(app, client, make_user, make_unit, street):
    district, street_id = street
    elsewhere = make_unit(f"街道{tag()}", "street", district)
    foreign_grid = make_unit(f"网格{tag()}", "grid", elsewhere)
    login(client, make_user, "admin", street_id)
    mine = client.post(
        "/api/v1/units", json={"name": f"社区{tag()}", "kind": "community", "parent_id": street_id}
    )
    assert mine.status_code == 201
    mine_id = mine.json["unit"]["id"]

    refused = [
        client.post("/api/v1/units", json={"name": "x", "kind": "grid", "parent_id": elsewhere}),
        client.post("/api/v1/units", json={"name": "x", "kind": "district", "parent_id": None}),
        client.patch(f"/api/v1/units/{foreign_grid}", json={"name": "x"}),
        client.delete(f"/api/v1/units/{foreign_grid}"),
        client.patch(f"/api/v1/units/{mine_id}", json={"parent_id": elsewhere}),
        client.patch(f"/api/v1/units/{street_id}", json={"parent_id": None}),
    ]
    assert [r.status_code for r in refused] == [403] * 6, [r.json for r in refused]
    assert refused[0].json["error"] == f"parent_id: unit {elsewhere} is outside your scope"
    assert refused[2].json["error"] == f"unit_id: unit {foreign_grid} is outside your scope"
    assert unit_row(app, mine_id)[2] == street_id
    assert unit_row(app, foreign_grid) is not None
    # Below itself: refused as a rule, not as scope.
    child = client.post(
        "/api/v1/units", json={"name": f"网格{tag()}", "kind": "grid", "parent_id": mine_id}
    )
    below = client.patch(f"/api/v1/units/{mine_id}", json={"parent_id": child.json["unit"]["id"]})
    assert below.status_code == 400 and "cannot move below itself" in below.json["error"]


@pytest.mark.parametrize("role", ["dispatcher", "viewer"])
def test_dispatchers_and_viewers_cannot_change_units(app, client, make_user, street, role):
    _, street_id = street
    login(client, make_user, role)
    answers = [
        client.post("/api/v1/units", json={"name": "x", "kind": "grid", "parent_id": street_id}),
        client.patch(f"/api/v1/units/{street_id}", json={"name": "x"}),
        client.delete(f"/api/v1/units/{street_id}"),
    ]
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert answers[0].json["error"] == "role: needs admin"
    assert unit_row(app, street_id)[0] != "x"
    assert client.get("/api/v1/units/export.geojson").status_code == 200


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"name": "", "kind": "grid"}, "name: must not be empty"),
        ({"name": "a", "kind": "block"}, "kind: must be one of district, street, community, grid"),
        ({"name": "a", "kind": "district"}, "kind: a district cannot be below a street"),
        ({"name": "a", "kind": "grid", "colour": "red"}, "colour: not a field of a unit"),
        (
            {"name": "a", "kind": "grid", "boundary": {"type": "LineString", "coordinates": []}},
            "boundary: geometry must be Polygon or MultiPolygon, got LineString",
        ),
        (
            {
                "name": "a",
                "kind": "grid",
                "boundary": {
                    "type": "Polygon",
                    "coordinates": [[[116.4, 39.9], [116.5, 39.9], [116.5, 40.0]]],
                },
            },
            "boundary: geometry.coordinates[0] has 3 positions; a ring needs at least 4",
        ),
        (
            {
                "name": "a",
                "kind": "grid",
                "boundary": {
                    "type": "Polygon",
                    "coordinates": [[[116.4, 39.9], [116.5, 39.9], [116.6, 39.9], [116.4, 39.9]]],
                },
            },
            "boundary: geometry encloses no area",
        ),
        (
            {
                "name": "a",
                "kind": "grid",
                "boundary": {
                    "type": "Polygon",
                    "coordinates": [[[216.4, 39.9], [116.5, 39.9], [116.5, 40.0], [216.4, 39.9]]],
                },
            },
            "boundary: coordinate [216.4, 39.9] at geometry.coordinates[0][0] is not WGS-84",
        ),
    ],
)
def test_bad_fields_are_refused_naming_the_rule(app, client, make_user, street, body, error):
    _, street_id = street
    login(client, make_user, "admin")
    with app.app_context():
        before = db.session.execute(select(func.count()).select_from(Unit)).scalar()
        audits = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar()
    answer = client.post("/api/v1/units", json={"parent_id": street_id, **body})
    assert answer.status_code == 400
    assert answer.json["error"].startswith(error), answer.json
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Unit)).scalar() == before
        assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar() == audits


def test_errors_are_localized(client, make_user, street):
    _, street_id = street
    login(client, make_user, "admin")
    client.set_cookie("lang", "zh_CN")
    answer = client.post("/api/v1/units", json={"name": "", "kind": "grid", "parent_id": street_id})
    assert answer.json["error"] == "name: must not be empty"
    assert answer.json["message"] == "name：不能为空"


def test_bow_tie_is_repaired_and_overlaps_with_siblings_are_reported(
    app, client, make_user, street
):
    _, street_id = street
    login(client, make_user, "admin")
    first = client.post(
        "/api/v1/units",
        json={"name": f"网格{tag()}", "kind": "grid", "parent_id": street_id, "boundary": BOW_TIE},
    )
    assert first.status_code == 201
    repair = first.json["repair"]
    assert repair["reason"].startswith("Self-intersection")
    assert repair["parts"] == 2 and repair["area_after_m2"] > 400_000
    assert repair["area_change"] == pytest.approx(
        repair["area_after_m2"] - repair["area_before_m2"], abs=0.2
    )
    with app.app_context():
        valid, parts = db.session.execute(
            select(func.ST_IsValid(Unit.boundary), func.ST_NumGeometries(Unit.boundary)).where(
                Unit.id == first.json["unit"]["id"]
            )
        ).one()
    assert valid and parts == 2

    second = client.post(
        "/api/v1/units",
        json={
            "name": f"网格{tag()}",
            "kind": "grid",
            "parent_id": street_id,
            "boundary": box(116.405, 39.90, 0.01),
        },
    )
    overlaps = second.json["overlaps"]
    assert [o["unit_id"] for o in overlaps] == [first.json["unit"]["id"]]
    assert overlaps[0]["area_m2"] > 100_000
    # Sharing an edge is no overlap; moving onto the sibling is.
    third = client.post(
        "/api/v1/units",
        json={
            "name": f"网格{tag()}",
            "kind": "grid",
            "parent_id": street_id,
            "boundary": box(116.42, 39.90),
        },
    )
    assert third.json["overlaps"] == []
    touching = client.patch(
        f"/api/v1/units/{third.json['unit']['id']}", json={"boundary": box(116.41, 39.90, 0.006)}
    )
    assert [o["unit_id"] for o in touching.json["overlaps"]] == [second.json["unit"]["id"]]


def test_deleting_a_unit_that_is_not_empty_is_409(
    app, client, make_user, make_unit, make_phone, street
):
    district, street_id = street
    grid = make_unit(f"网格{tag()}", "grid", street_id)
    make_phone(unit_id=street_id)
    make_user("viewer", street_id)
    with app.app_context():
        person = store.people.add_person(db.session, f"p{tag()}", "patrol", None, None)
        person.patrol_unit_id = grid
        db.session.commit()
    login(client, make_user, "admin")
    answer = client.delete(f"/api/v1/units/{street_id}")
    assert answer.status_code == 409
    assert answer.json["error"] == (
        f"unit_id: unit {street_id} is not empty: 1 units below, 1 people, 1 staff accounts"
    )
    assert answer.json["left"] == {"units": 1, "people": 1, "users": 1, "patrol_assignments": 0}
    patrol = client.delete(f"/api/v1/units/{grid}")
    assert patrol.status_code == 409 and "1 patrol assignments" in patrol.json["error"]
    assert unit_row(app, street_id) is not None and unit_row(app, grid) is not None
    assert client.delete("/api/v1/units/999999999").status_code == 404


def test_export_round_trips_through_the_import(app, client, make_user):
    login(client, make_user, "admin")
    suffix = tag()
    district = client.post(
        "/api/v1/units",
        json={
            "name": f"区{suffix}",
            "kind": "district",
            "parent_id": None,
            "boundary": box(116.3, 39.8, 0.3),
        },
    ).json["unit"]["id"]
    street_id = client.post(
        "/api/v1/units",
        json={
            "name": f"街道{suffix}",
            "kind": "street",
            "parent_id": district,
            "boundary": box(116.35, 39.85, 0.1),
        },
    ).json["unit"]["id"]
    grid_ids = [
        client.post(
            "/api/v1/units",
            json={
                "name": f"网格{suffix}{n}",
                "kind": "grid",
                "parent_id": street_id,
                "boundary": box(116.4 + n * 0.0123456789, 39.9, 0.0123456789),
            },
        ).json["unit"]["id"]
        for n in range(2)
    ]
    ids = [district, street_id, *grid_ids]
    with app.app_context():
        before = {
            i: db.session.execute(
                select(func.ST_AsEWKB(Unit.boundary)).where(Unit.id == i)
            ).scalar()
            for i in ids
        }
        audits = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar()
    exported = client.get("/api/v1/units/export.geojson")
    assert exported.status_code == 200 and exported.mimetype == "application/geo+json"
    features = [f for f in exported.json["features"] if f["properties"]["unit_id"] in ids]
    assert [f["properties"]["name"] for f in features] == [
        f"区{suffix}",
        f"街道{suffix}",
        f"网格{suffix}0",
        f"网格{suffix}1",
    ]
    assert features[2]["properties"]["parent"] == f"街道{suffix}"

    imported = client.post(
        "/api/v1/units/import", json={"type": "FeatureCollection", "features": features}
    )
    assert imported.status_code == 200, imported.json
    assert imported.json["created"] == [] and len(imported.json["updated"]) == 4
    assert imported.json["repaired"] == []
    with app.app_context():
        for i in ids:
            after = db.session.execute(
                select(func.ST_AsEWKB(Unit.boundary)).where(Unit.id == i)
            ).scalar()
            assert bytes(after) == bytes(before[i])
        # Nothing changed, so nothing is audited.
        assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar() == audits


def test_import_and_cli_add_are_audited(app, client, make_user, runner, tmp_path):
    login(client, make_user, "admin")
    name = f"区{tag()}"
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": name, "kind": "district"},
                "geometry": box(116.1, 39.1),
            }
        ],
    }
    assert client.post("/api/v1/units/import", json=doc).status_code == 200
    doc["features"][0]["geometry"] = box(116.1, 39.1, 0.02)
    assert client.post("/api/v1/units/import", json=doc).status_code == 200
    with app.app_context():
        unit_id = db.session.execute(select(Unit.id).where(Unit.name == name)).scalar()
    rows = audit_rows(app, unit_id)
    assert [r.action for r in rows] == ["unit.create", "unit.update"]
    assert rows[1].before["boundary"]["coordinates"][0][0][2] == [116.11, 39.11]

    boundary = tmp_path / "b.geojson"
    boundary.write_text(json.dumps(box(116.2, 39.2)))
    result = runner.invoke(
        args=["units", "add", f"区{tag()}", "--kind", "district", "--boundary", str(boundary)]
    )
    assert result.exit_code == 0, result.output
    cli_rows = audit_rows(app, int(result.output.strip().splitlines()[-1]))
    assert [r.action for r in cli_rows] == ["unit.create"]
    assert cli_rows[0].actor_name.startswith("cli:")
    assert cli_rows[0].after["boundary"]["type"] == "MultiPolygon"


def test_unknown_and_duplicate(app, client, make_user, street):
    _, street_id = street
    login(client, make_user, "admin")
    name = f"网格{tag()}"
    assert (
        client.post(
            "/api/v1/units", json={"name": name, "kind": "grid", "parent_id": street_id}
        ).status_code
        == 201
    )
    again = client.post(
        "/api/v1/units", json={"name": name, "kind": "grid", "parent_id": street_id}
    )
    assert again.status_code == 409 and again.json["error"].startswith(
        f"name: a grid named '{name}' already exists"
    )
    assert client.patch("/api/v1/units/999999999", json={"name": "x"}).status_code == 404
    missing = client.post(
        "/api/v1/units", json={"name": "y", "kind": "grid", "parent_id": 999999999}
    )
    assert (
        missing.status_code == 400
        and missing.json["error"] == "parent_id: no unit with id 999999999"
    )
    with app.app_context():
        assert db.session.execute(text("select 1")).scalar() == 1
