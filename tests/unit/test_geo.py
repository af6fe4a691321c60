"""Geometry helpers."""

import pytest

from tracker.geo import GeometryError, boundary_from_geojson, haversine_m

SQUARE = [[116.40, 39.92], [116.41, 39.92], [116.41, 39.93], [116.40, 39.93], [116.40, 39.92]]


def test_polygon_feature_becomes_multipolygon():
    geom, repaired = boundary_from_geojson(
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [SQUARE]}}
    )
    assert geom.geom_type == "MultiPolygon"
    assert not repaired
    assert geom.bounds == (116.40, 39.92, 116.41, 39.93)


def test_bow_tie_is_repaired_and_reported():
    bow_tie = [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]
    geom, repaired = boundary_from_geojson({"type": "Polygon", "coordinates": [bow_tie]})
    assert repaired
    assert geom.is_valid
    assert geom.area == pytest.approx(0.5)


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"type": "Point", "coordinates": [1, 2]}, "must be Polygon or MultiPolygon, got Point"),
        ({"type": "Polygon", "coordinates": [[[500, 0], [501, 0], [501, 1], [500, 0]]]}, "WGS-84"),
        ({"type": "FeatureCollection", "features": []}, "expected exactly one feature, got 0"),
        ({"type": "Polygon", "coordinates": "nope"}, "malformed coordinates"),
    ],
)
def test_unusable_geometry_is_refused_with_reason(doc, message):
    with pytest.raises(GeometryError, match=message):
        boundary_from_geojson(doc)


def test_haversine_one_degree_of_latitude():
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-4)
    assert haversine_m(39.9, 116.4, 39.9, 116.4) == 0
