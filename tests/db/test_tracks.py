"""Importing recorded tracks from files, and exporting tracks in the same formats."""

from __future__ import annotations

import csv
import io
import json
import re

import gpxpy
import pytest

from tracker import store
from tracker.extensions import db


def stored_points(app, person_id):
    """Return a person's stored points in time order."""
    from datetime import UTC, datetime

    with app.app_context():
        return db.session.execute(
            store.tracks.track_points(
                person_id, datetime(1900, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
            )
        ).all()


@pytest.fixture()
def visnjan(gpx_dir):
    """Return the path and points of a real recorded car trace."""
    path = gpx_dir / "around-visnjan-with-car.gpx"
    with open(path, encoding="utf-8") as f:
        gpx = gpxpy.parse(f)
    return path, [p for t in gpx.tracks for s in t.segments for p in s.points]


def test_gpx_imports_point_for_point_and_reimport_stores_nothing(app, runner, make_phone, visnjan):
    path, points = visnjan
    person = make_phone().person_id
    result = runner.invoke(args=["import-track", str(person), str(path)])
    assert result.exit_code == 0, result.output
    assert f"{len(points)} points, {len(points)} stored, 0 duplicates, 0 rejected" in result.output
    rows = stored_points(app, person)
    assert [(r.ts, r.lat, r.lon) for r in rows] == [
        (p.time, pytest.approx(p.latitude, abs=1e-9), pytest.approx(p.longitude, abs=1e-9))
        for p in points
    ]
    assert [r.altitude_m for r in rows] == [pytest.approx(p.elevation, rel=1e-6) for p in points]
    again = runner.invoke(args=["import-track", str(person), str(path)])
    assert f"0 stored, {len(points)} duplicates" in again.output
    assert len(stored_points(app, person)) == len(points)


def test_gpx_with_absurd_times_is_rejected_naming_the_rule(
    app, runner, make_phone, visnjan, tmp_path
):
    path, points = visnjan
    broken = tmp_path / "gps-week-rollover.gpx"
    broken.write_text(
        re.sub(r"<time>20\d\d-", "<time>1901-", path.read_text(encoding="utf-8")), encoding="utf-8"
    )
    person = make_phone().person_id
    result = runner.invoke(args=["import-track", str(person), str(broken)])
    assert result.exit_code == 1
    assert f"rejected {len(points)} × ts: before 2000-01-01, the earliest accepted" in result.output
    assert stored_points(app, person) == []


def test_points_without_time_are_reported(app, runner, make_phone, gpx_dir):
    person = make_phone().person_id
    result = runner.invoke(args=["import-track", str(person), str(gpx_dir / "korita-zbevnica.gpx")])
    assert "871 points, 513 stored, 0 duplicates, 358 rejected" in result.output
    assert "rejected 358 × ts: is required" in result.output


def test_csv_and_geojson_import(app, runner, make_phone, tmp_path):
    person = make_phone().person_id
    (tmp_path / "walk.csv").write_text(
        "ts,lat,lon,speed,battery\n"
        "2026-01-02T03:04:05Z,39.9,116.4,1.5,0.5\n"
        "1767323046000,39.91,116.41,,\n"
        "2026-01-02T03:04:07Z,91,116.4,,\n"
    )
    result = runner.invoke(args=["import-track", str(person), str(tmp_path / "walk.csv")])
    assert "3 points, 2 stored, 0 duplicates, 1 rejected" in result.output
    assert "rejected 1 × lat: must be between -90 and 90" in result.output
    (tmp_path / "walk.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [116.42, 39.92]},
                        "properties": {"time": "2026-01-02T03:05:00+08:00", "accuracy": 4},
                    }
                ],
            }
        )
    )
    result = runner.invoke(args=["import-track", str(person), str(tmp_path / "walk.geojson")])
    assert "1 points, 1 stored" in result.output
    rows = stored_points(app, person)
    assert [(r.lat, r.speed_mps, r.battery, r.accuracy_m) for r in rows] == [
        (39.92, None, None, 4.0),
        (39.9, 1.5, 0.5, None),
        (39.91, None, None, None),
    ]
    bad = runner.invoke(args=["import-track", str(person), str(tmp_path / "walk.csv.txt")])
    assert bad.exit_code != 0


def test_exports_round_trip(app, client, runner, make_phone, make_user, visnjan, tmp_path):
    path, points = visnjan
    person = make_phone().person_id
    runner.invoke(args=["import-track", str(person), str(path)])
    username, password = make_user("viewer")
    client.post("/api/v1/session", json={"username": username, "password": password})
    window = {"from": "2020-12-18T00:00:00Z", "to": "2020-12-19T00:00:00Z"}
    gpx_response = client.get(f"/api/v1/people/{person}/track.gpx", query_string=window)
    assert gpx_response.status_code == 200
    assert gpx_response.mimetype == "application/gpx+xml"
    exported = gpxpy.parse(gpx_response.get_data(as_text=True))
    assert [(p.latitude, p.longitude, p.time) for p in exported.tracks[0].segments[0].points] == [
        (pytest.approx(p.latitude, abs=1e-9), pytest.approx(p.longitude, abs=1e-9), p.time)
        for p in points
    ]
    csv_response = client.get(f"/api/v1/people/{person}/track.csv", query_string=window)
    rows = list(csv.DictReader(io.StringIO(csv_response.get_data(as_text=True))))
    assert len(rows) == len(points)
    (tmp_path / "export.csv").write_bytes(csv_response.get_data())
    other = make_phone().person_id
    result = runner.invoke(args=["import-track", str(other), str(tmp_path / "export.csv")])
    assert f"{len(points)} stored" in result.output
    assert [(r.ts, r.lat, r.lon) for r in stored_points(app, other)] == [
        (r.ts, r.lat, r.lon) for r in stored_points(app, person)
    ]
    client.delete("/api/v1/session")
    assert client.get(f"/api/v1/people/{person}/track.gpx").status_code == 401
