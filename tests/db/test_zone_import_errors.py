"""Bad grid files posted to the import API: 400 naming the feature and the rule, nothing stored."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from tracker.extensions import db
from tracker.models import Unit

from .test_zones_api import box, collection, login, unit_count

RING = [[116.40, 39.90], [116.41, 39.90], [116.41, 39.91], [116.40, 39.91], [116.40, 39.90]]
RING_RULE = "a ring needs at least 4, the last equal to the first"


def feature(name, geometry, **props):
    """Return a grid Feature with this geometry."""
    return {
        "type": "Feature",
        "properties": {"name": name, "kind": "grid", **props},
        "geometry": geometry,
    }


def polygon(*rings):
    """Return a Polygon geometry with these rings."""
    return {"type": "Polygon", "coordinates": list(rings)}


def refused(app, client, doc, raw=None):
    """Post a document that must be refused; return the error after checking nothing changed."""
    before = unit_count(app)
    response = client.post(
        "/api/v1/units/import",
        data=raw if raw is not None else json.dumps(doc),
        content_type="application/json",
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert unit_count(app) == before
    # No Accept-Language: the staff's Chinese, a different text naming the same paths.
    assert response.json["message"] != response.json["error"], response.json
    return response.json["error"]


@pytest.fixture()
def admin(client, make_user):
    """Log an admin in."""
    login(client, make_user, "admin")


@pytest.mark.parametrize(
    ("geometry", "rule"),
    [
        (polygon(RING[:1] + RING[2:3]), f"geometry.coordinates[0] has 2 positions; {RING_RULE}"),
        (
            polygon([RING[0], RING[2], RING[0]]),
            f"geometry.coordinates[0] has 3 positions; {RING_RULE}",
        ),
        (
            polygon(RING, [[116.401, 39.901], [116.402, 39.902]]),
            f"geometry.coordinates[1] has 2 positions; {RING_RULE}",
        ),
        (
            {"type": "MultiPolygon", "coordinates": [[RING], [RING[:3]]]},
            f"geometry.coordinates[1][0] has 3 positions; {RING_RULE}",
        ),
        (
            polygon(RING[:4]),
            "geometry.coordinates[0] is not closed: its last position must equal its first",
        ),
        (polygon([]), f"geometry.coordinates[0] has 0 positions; {RING_RULE}"),
        (polygon(5), "geometry.coordinates[0] must be a ring (a list of positions)"),
        (
            {"type": "Polygon", "coordinates": []},
            "geometry.coordinates must be a polygon (a non-empty list of rings)",
        ),
        (
            {"type": "MultiPolygon", "coordinates": []},
            "geometry.coordinates must be a non-empty list of polygons",
        ),
        # One level of nesting short: a ring where the polygon should be.
        (
            {"type": "Polygon", "coordinates": RING},
            "geometry.coordinates[0][0] must be a position [lon, lat]",
        ),
        (
            polygon([RING[0], [116.41, "39.90"], *RING[2:]]),
            "geometry.coordinates[0][1] must be a position [lon, lat]",
        ),
        (
            polygon([RING[0], [116.41, False], *RING[2:]]),
            "geometry.coordinates[0][1] must be a position [lon, lat]",
        ),
        (
            polygon([[float("nan"), 39.9], *RING[1:4], [float("nan"), 39.9]]),
            "geometry.coordinates[0][0] must be finite numbers, got [nan, 39.9]",
        ),
        (
            polygon([RING[0], [116.41, float("inf")], *RING[2:]]),
            "geometry.coordinates[0][1] must be finite numbers, got [116.41, inf]",
        ),
        (
            polygon([RING[0], [116.41, 91], *RING[2:]]),
            "coordinate [116.41, 91.0] at geometry.coordinates[0][1] is not WGS-84 "
            "longitude/latitude (lon -180..180, lat -90..90)",
        ),
        (
            {"type": ["Polygon"], "coordinates": [RING]},
            "geometry must be Polygon or MultiPolygon, got ['Polygon']",
        ),
        (
            {**box(116.4, 39.9), "crs": {"type": "name", "properties": {"name": ["EPSG:4326"]}}},
            "geometry.crs: must be WGS-84 longitude/latitude (EPSG:4326), got ['EPSG:4326']",
        ),
        (
            {**box(116.4, 39.9), "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}},
            "geometry.crs: must be WGS-84 longitude/latitude (EPSG:4326), got EPSG:3857",
        ),
    ],
)
def test_malformed_rings_and_coordinates_are_named(app, client, admin, geometry, rule):
    doc = collection(uuid.uuid4().hex[:6], extra=[feature("坏网格", geometry)])
    assert refused(app, client, doc) == f"features[4] (坏网格): {rule}"


@pytest.mark.parametrize(
    "ring",
    [
        # Four positions, one place: ST_MakeValid leaves a point.
        [RING[0]] * 4,
        # Collinear: ST_MakeValid leaves a line.
        [[116.40, 39.90], [116.405, 39.90], [116.41, 39.90], [116.40, 39.90]],
    ],
)
def test_a_boundary_the_repair_leaves_without_area_is_refused(app, client, admin, ring):
    doc = collection(uuid.uuid4().hex[:6], extra=[feature("线", polygon(ring))])
    error = refused(app, client, doc)
    assert error.startswith("features[4] (线): geometry encloses no area (")
    assert error.endswith("); ST_MakeValid would leave no polygon of it")


@pytest.mark.parametrize(
    ("props", "rule"),
    [
        (
            {"kind": "zone"},
            "properties.kind must be one of district, street, community, grid, got 'zone'",
        ),
        ({"name": "网" * 101}, "properties.name must be at most 100 characters, got 101"),
        ({"name": "第1\u0000网格"}, "properties.name must not contain control characters"),
        ({"name": "  "}, "properties.name must be a non-empty string"),
    ],
)
def test_bad_names_and_kinds_are_named(app, client, admin, props, rule):
    bad = feature("坏网格", box(116.4, 39.9))
    bad["properties"].update(props)
    error = refused(app, client, collection(uuid.uuid4().hex[:6], extra=[bad]))
    label = "features[4]" if "name" in props else "features[4] (坏网格)"
    assert error == f"{label}: {rule}"


def test_properties_must_be_an_object(app, client, admin):
    bad = {"type": "Feature", "properties": ["name", "kind"], "geometry": box(116.4, 39.9)}
    error = refused(app, client, collection(uuid.uuid4().hex[:6], extra=[bad]))
    assert error == "features[4]: properties must be an object"


def test_a_unit_twice_in_one_file_is_refused(app, client, admin):
    tag = uuid.uuid4().hex[:6]
    again = feature(f"网格{tag}A", box(116.42, 39.90), parent=f"街道{tag}")
    assert refused(app, client, collection(tag, extra=[again])) == (
        f"features[4] (网格{tag}A): same name, kind and parent as features[2] (网格{tag}A); "
        "each unit may appear once"
    )


def test_parents_must_come_first_and_be_unambiguous(app, client, admin):
    tag = uuid.uuid4().hex[:6]
    child = feature(f"子{tag}", box(116.40, 39.90), parent=f"后{tag}")
    later = feature(f"后{tag}", box(116.40, 39.90, 0.05))
    doc = {"type": "FeatureCollection", "features": [child, later]}
    assert refused(app, client, doc) == (
        f"features[0] (子{tag}): properties.parent '后{tag}' comes later in the file; "
        "a parent must come before its children"
    )
    # The same street name under two districts: a child naming it is ambiguous.
    doc = collection(tag)
    doc["features"][1:1] = [
        {
            "type": "Feature",
            "properties": {"name": f"区{tag}二", "kind": "district"},
            "geometry": box(116.50, 39.89, 0.05),
        },
        {
            "type": "Feature",
            "properties": {"name": f"街道{tag}", "kind": "street", "parent": f"区{tag}二"},
            "geometry": box(116.50, 39.90, 0.03),
        },
    ]
    assert refused(app, client, doc) == (
        f"features[4] (网格{tag}A): properties.parent '街道{tag}' matches several units in the file"
    )


def test_bodies_that_are_not_json_are_refused(app, client, admin):
    body_rule = "body: must be a GeoJSON FeatureCollection in JSON"
    assert refused(app, client, None, raw="{not json") == body_rule
    assert refused(app, client, None, raw="[" * 100_000) == body_rule
    assert refused(app, client, [1, 2]) == "file: must be a GeoJSON FeatureCollection"


def test_a_failed_reimport_leaves_existing_boundaries_as_they_were(app, client, admin):
    tag = uuid.uuid4().hex[:6]
    assert client.post("/api/v1/units/import", json=collection(tag)).status_code == 200

    def boundaries():
        with app.app_context():
            rows = db.session.execute(
                select(Unit.name, func.ST_AsText(Unit.boundary)).where(Unit.name.like(f"%{tag}%"))
            ).all()
        return dict(rows)

    before = boundaries()
    doc = collection(tag, grids=(("A", 116.43), ("B", 116.44)))  # both grids move...
    doc["features"].append(feature("两点", polygon(RING[:2])))  # ...but the file is bad
    assert (
        refused(app, client, doc)
        == f"features[4] (两点): geometry.coordinates[0] has 2 positions; {RING_RULE}"
    )
    assert boundaries() == before


def test_altitudes_are_dropped_not_refused(app, client, admin):
    tag = uuid.uuid4().hex[:6]
    with_z = feature(f"高{tag}", polygon([[*p, 44.5] for p in RING]))
    response = client.post(
        "/api/v1/units/import", json={"type": "FeatureCollection", "features": [with_z]}
    )
    assert response.status_code == 200, response.json
    assert response.json["created"] == [f"高{tag}"]
    with app.app_context():
        dims = db.session.execute(
            select(func.ST_NDims(Unit.boundary)).where(Unit.name == f"高{tag}")
        ).scalar_one()
    assert dims == 2
