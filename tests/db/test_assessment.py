"""Patrol reports on real PostGIS: a recorded trace through an imported grid, duty across
midnight, late fixes, scope, the audit trail, XLSX equal to JSON, and bad input."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import openpyxl
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiLineString, Point, box, mapping
from sqlalchemy import select, text

from tracker import store
from tracker.assessment.rules import Rule
from tracker.extensions import db
from tracker.history.filter import Fix, Rules, filter_fixes
from tracker.models import AuditEvent, Shift

SHANGHAI = ZoneInfo("Asia/Shanghai")
GAP_S = 300.0  # REPORTS_GAP_S's default: a longer step between kept fixes is lost signal
RADIUS_M = 25.0  # REPORTS_COVERAGE_RADIUS_M's default


def login(client, make_user, unit_id=None):
    """Log a viewer in, scoped to unit_id (None sees everyone)."""
    username, password = make_user("viewer", unit_id)
    response = client.post("/api/v1/session", json={"username": username, "password": password})
    assert response.status_code == 200
    return username


def add_shift(app, person_id, start, end):
    """Store a finished shift."""
    with app.app_context():
        db.session.add(Shift(person_id=person_id, started_at=start, ended_at=end))
        db.session.commit()


def store_fixes(app, phone, fixes):
    """Store (datetime, lat, lon, accuracy_m) fixes for a phone."""
    with app.app_context():
        for day in {ts.date() for ts, *_ in fixes}:
            store.positions.ensure_partition(db.session, day)
        store.positions.insert_positions(
            db.session,
            [
                store.positions.PositionRow(phone.person_id, phone.device_id, ts, lat, lon, acc)
                for ts, lat, lon, acc in fixes
            ],
        )
        db.session.commit()


def stored_fixes(app, person_id):
    """Return a person's stored fixes, oldest first, as tracker.history fixes."""
    with app.app_context():
        rows = db.session.execute(
            text(
                "SELECT extract(epoch FROM ts) AS epoch, ST_Y(geom) AS lat, ST_X(geom) AS lon,"
                " accuracy_m, speed_mps FROM positions WHERE person_id = :p ORDER BY ts"
            ),
            {"p": person_id},
        )
        return [Fix(float(r.epoch), r.lat, r.lon, r.accuracy_m, r.speed_mps) for r in rows]


def import_grid(runner, tmp_path, name, polygon, parent_id):
    """Import one grid from a GeoJSON file with `flask units import`; return its id."""
    path = tmp_path / f"{name}.geojson"
    feature = {
        "type": "Feature",
        "properties": {"name": name, "kind": "grid", "parent": parent_id},
        "geometry": mapping(polygon),
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    result = runner.invoke(args=["units", "import", str(path)])
    assert result.exit_code == 0, result.output
    with runner.app.app_context():
        return db.session.execute(
            text("SELECT id FROM units WHERE name = :n AND kind = 'grid'"), {"n": name}
        ).scalar_one()


def independent_figures(fixes, grid_lonlat):
    """Return inside_s, outside_s, tracked_s and coverage % with pyproj and Shapely only.

    The same filtered points, the rule of docs/reports.md: a step between kept fixes of at
    most GAP_S belongs where it starts; coverage is the grid's area within RADIUS_M of the
    tracked steps, in the grid's UTM zone.
    """
    centre = grid_lonlat.centroid
    zone = math.floor((centre.x + 180) / 6) + 1
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{32600 + zone}", always_xy=True)
    xy = [to_utm.transform(f.lon, f.lat) for f in fixes]
    grid_m = shapely.transform(
        grid_lonlat, lambda c: np.column_stack(to_utm.transform(c[:, 0], c[:, 1]))
    )
    inside_s = outside_s = 0.0
    lines, current = [], []
    for i in range(len(fixes) - 1):
        dt = fixes[i + 1].t - fixes[i].t
        if not 0 < dt <= GAP_S:
            if len(current) > 1:
                lines.append(current)
            current = []
            continue
        if grid_m.covers(Point(xy[i])):
            inside_s += dt
        else:
            outside_s += dt
        if not current:
            current = [xy[i]]
        current.append(xy[i + 1])
    if len(current) > 1:
        lines.append(current)
    covered = MultiLineString([LineString(line) for line in lines]).buffer(RADIUS_M, quad_segs=8)
    coverage_pct = 100 * covered.intersection(grid_m).area / grid_m.area
    return inside_s, outside_s, inside_s + outside_s, coverage_pct


def test_a_recorded_hike_through_an_imported_grid_matches_shapely_and_pyproj(
    app, client, runner, make_phone, make_unit, make_user, gpx_dir, tmp_path
):
    street = make_unit(kind="street")
    phone = make_phone(role="grid_worker", unit_id=street)
    result = runner.invoke(
        args=["import-track", str(phone.person_id), str(gpx_dir / "korita-zbevnica.gpx")]
    )
    assert result.exit_code == 0, result.output
    raw = stored_fixes(app, phone.person_id)
    kept = filter_fixes(raw, Rules()).fixes
    # A grid over the middle of the hike's longitudes: the walk goes in and comes out.
    lons, lats = [f.lon for f in kept], [f.lat for f in kept]
    west, east = min(lons), max(lons)
    grid = box(
        west + 0.35 * (east - west),
        min(lats) - 0.001,
        west + 0.7 * (east - west),
        max(lats) + 0.001,
    )
    grid_id = import_grid(runner, tmp_path, f"hike-grid-{phone.person_id}", grid, street)
    assert (
        runner.invoke(
            args=["people", "assign", str(phone.person_id), "--grid", str(grid_id)]
        ).exit_code
        == 0
    )
    start = datetime.fromtimestamp(raw[0].t, UTC) - timedelta(minutes=5)
    end = datetime.fromtimestamp(raw[-1].t, UTC) + timedelta(minutes=5)
    add_shift(app, phone.person_id, start, end)
    day = start.astimezone(SHANGHAI).date().isoformat()
    assert end.astimezone(SHANGHAI).date().isoformat() == day

    login(client, make_user)
    query = {"from": day, "to": day, "unit_id": street}
    people = client.get("/api/v1/reports/person-days", query_string=query)
    assert people.status_code == 200, people.json
    (row,) = [r for r in people.json["rows"] if r["person_id"] == phone.person_id]
    inside_s, outside_s, tracked_s, coverage_pct = independent_figures(kept, grid)
    assert inside_s > 600 and outside_s > 600, "the grid must split the walk"
    # Stated tolerance: 1 s for times (the JSON rounds to seconds), 0.5 percentage points
    # for coverage (the report buffers simplified pieces, the test the whole track as it
    # is; both with 8 segments a quarter circle).
    assert row["inside_s"] == pytest.approx(inside_s, abs=1)
    assert row["outside_s"] == pytest.approx(outside_s, abs=1)
    assert row["duty_s"] == pytest.approx((end - start).total_seconds(), abs=1)
    assert row["lost_s"] == pytest.approx((end - start).total_seconds() - tracked_s, abs=1)
    assert row["fixes"] == len(raw)
    assert row["grid_id"] == grid_id
    assert row["longest_absence_s"] <= row["outside_s"]
    # The distance and stops are those of the person's day page: one definition.
    timeline = client.get(
        f"/api/v1/people/{phone.person_id}/timeline", query_string={"date": day}
    ).json
    assert row["distance_m"] == pytest.approx(timeline["distance_m"], abs=0.1)
    assert row["stops"] == len(timeline["stops"])

    grids = client.get("/api/v1/reports/grid-days", query_string=query)
    assert grids.status_code == 200
    (grid_row,) = [r for r in grids.json["rows"] if r["grid_id"] == grid_id]
    assert 5 < coverage_pct < 95
    assert grid_row["coverage_pct"] == pytest.approx(coverage_pct, abs=0.5)
    assert grid_row["covered_s"] == pytest.approx(inside_s, abs=1)
    assert grid_row["people"] == [
        {"person_id": phone.person_id, "name": row["name"], "inside_s": round(inside_s)}
    ]
    picture = client.get(
        "/api/v1/reports/coverage",
        query_string={"grid_id": grid_id, "date": day, "unit_id": street},
    )
    assert picture.status_code == 200
    covered = shapely.from_geojson(picture.json["covered"])
    assert covered.within(grid.buffer(1e-6))
    assert picture.json["coverage_pct"] == pytest.approx(grid_row["coverage_pct"], abs=0.01)


def test_duty_time_splits_a_shift_across_midnight_in_the_report_zone(
    app, client, make_phone, make_unit, make_user
):
    street = make_unit(kind="street")
    phone = make_phone(unit_id=street)
    local = lambda d, h, m=0: datetime(2026, 5, d, h, m, tzinfo=SHANGHAI)  # noqa: E731
    add_shift(app, phone.person_id, local(11, 22), local(12, 2))  # crosses midnight
    add_shift(app, phone.person_id, local(12, 8), local(12, 12, 30))
    add_shift(app, phone.person_id, local(13, 23, 30), local(14, 0, 15))
    login(client, make_user)
    response = client.get(
        "/api/v1/reports/person-days",
        query_string={"from": "2026-05-11", "to": "2026-05-14", "unit_id": street},
    )
    assert response.status_code == 200
    duty = {r["date"]: r["duty_s"] for r in response.json["rows"]}
    assert duty == {
        "2026-05-11": 2 * 3600,
        "2026-05-12": 2 * 3600 + 4.5 * 3600,
        "2026-05-13": 30 * 60,
        "2026-05-14": 15 * 60,
    }
    # Without fixes the whole duty is lost signal.
    assert all(r["lost_s"] == r["duty_s"] for r in response.json["rows"])


def walk(start, minutes, lat=31.2304, lon=121.4737):
    """Return fixes every 10 s walking east at ~1.2 m/s from a point."""
    return [
        (start + timedelta(seconds=10 * i), lat, lon + i * 12 / 95_000, 5.0)
        for i in range(minutes * 6)
    ]


def kept_rows(app, table, column, ident):
    """Return (inputs_key, computed_at) of the kept report rows of a person or grid."""
    with app.app_context():
        return db.session.execute(
            text(f"SELECT inputs_key, computed_at FROM {table} WHERE {column} = :id"),
            {"id": ident},
        ).all()


def test_late_fixes_change_the_report_of_their_day(
    app, client, runner, make_phone, make_unit, make_user
):
    street = make_unit(kind="street")
    # A grid around the morning's walk and far beyond it to the east.
    grid = make_unit(kind="grid", parent_id=street)
    with app.app_context():
        db.session.execute(
            text(
                "UPDATE units SET boundary = ST_Multi(ST_MakeEnvelope(121.4730, 31.2300,"
                " 121.6200, 31.2310, 4326)) WHERE id = :id"
            ),
            {"id": grid},
        )
        db.session.commit()
    phone = make_phone(unit_id=street)
    assert (
        runner.invoke(
            args=["people", "assign", str(phone.person_id), "--grid", str(grid)]
        ).exit_code
        == 0
    )
    morning = datetime(2026, 6, 2, 8, 0, tzinfo=SHANGHAI)
    add_shift(app, phone.person_id, morning, morning + timedelta(hours=4))
    store_fixes(app, phone, walk(morning, 60))
    # A colleague on a parallel street of the same grid, whose day stays as it is.
    colleague = make_phone(unit_id=street)
    add_shift(app, colleague.person_id, morning, morning + timedelta(hours=4))
    store_fixes(app, colleague, walk(morning, 60, lat=31.2308))
    login(client, make_user)
    query = {"from": "2026-06-02", "unit_id": street}

    def report():
        rows = client.get("/api/v1/reports/person-days", query_string=query).json["rows"]
        (row,) = [r for r in rows if r["person_id"] == phone.person_id]
        (grid_row,) = client.get("/api/v1/reports/grid-days", query_string=query).json["rows"]
        return row, grid_row

    before, grid_before = report()
    assert before["lost_s"] == pytest.approx(3 * 3600 + 10, abs=1)
    # The figures are kept, and a second report reads them: the same answer, not recomputed.
    (kept,) = kept_rows(app, "report_person_days", "person_id", phone.person_id)
    (kept_grid,) = kept_rows(app, "report_grid_days", "grid_id", grid)
    assert report() == (before, grid_before)
    assert kept_rows(app, "report_person_days", "person_id", phone.person_id) == [kept]
    assert kept_rows(app, "report_grid_days", "grid_id", grid) == [kept_grid]

    # The phone was offline from 09:00 and uploads two hours of fixes in the afternoon.
    store_fixes(
        app, phone, walk(morning + timedelta(hours=1), 120, lon=121.4737 + 360 * 12 / 95_000)
    )
    after, grid_after = report()
    assert after["fixes"] == before["fixes"] + 720
    assert after["lost_s"] == pytest.approx(3600 + 10, abs=1)
    assert after["distance_m"] > before["distance_m"] * 2.5
    assert after["last_fix"] > before["last_fix"]
    assert after["inside_s"] > before["inside_s"] + 7000
    assert grid_after["coverage_pct"] > grid_before["coverage_pct"] * 2
    assert grid_after["covered_s"] > grid_before["covered_s"] + 7000
    assert kept_rows(app, "report_person_days", "person_id", phone.person_id)[0][0] != kept[0]
    # The grid-day is kept under its new key; the old key's row waits for RETENTION_DAYS.
    assert len({key for key, _ in kept_rows(app, "report_grid_days", "grid_id", grid)}) == 2
    # The grid was measured again with the colleague's kept track: the same as from scratch.
    with app.app_context():
        db.session.execute(
            text("DELETE FROM report_person_days WHERE person_id IN (:a, :b)"),
            {"a": phone.person_id, "b": colleague.person_id},
        )
        db.session.execute(text("DELETE FROM report_grid_days WHERE grid_id = :g"), {"g": grid})
        db.session.commit()
    assert report() == (after, grid_after)
    # So does a shift corrected afterwards.
    with app.app_context():
        db.session.execute(
            text("UPDATE shifts SET ended_at = ended_at + interval '1 hour' WHERE person_id = :p"),
            {"p": phone.person_id},
        )
        db.session.commit()
    longer, _ = report()
    assert longer["duty_s"] == after["duty_s"] + 3600
    assert longer["lost_s"] == pytest.approx(after["lost_s"] + 3600, abs=1)


def test_a_streets_and_the_districts_coverage_of_a_grid_are_kept_side_by_side(
    app, client, make_phone, make_unit, make_user
):
    district = make_unit(kind="district")
    streets = [make_unit(kind="street", parent_id=district) for _ in range(2)]
    grid = make_unit(kind="grid", parent_id=streets[0])
    with app.app_context():
        db.session.execute(
            text(
                "UPDATE units SET boundary = ST_Multi(ST_MakeEnvelope(121.4730, 31.2300,"
                " 121.4800, 31.2310, 4326)) WHERE id = :id"
            ),
            {"id": grid},
        )
        db.session.commit()
    morning = datetime(2026, 6, 2, 8, 0, tzinfo=SHANGHAI)
    # One of the grid's street walks its south edge, one of the next street its north edge.
    for street, lat in ((streets[0], 31.2301), (streets[1], 31.2309)):
        phone = make_phone(unit_id=street)
        add_shift(app, phone.person_id, morning, morning + timedelta(hours=2))
        store_fixes(app, phone, walk(morning, 60, lat=lat))
    login(client, make_user)

    def coverage_pct(unit):
        query = {"from": "2026-06-02", "unit_id": unit}
        rows = client.get("/api/v1/reports/grid-days", query_string=query).json["rows"]
        return next(r["coverage_pct"] for r in rows if r["grid_id"] == grid)

    street_pct, district_pct = coverage_pct(streets[0]), coverage_pct(district)
    assert 0 < street_pct < district_pct
    kept = sorted(kept_rows(app, "report_grid_days", "grid_id", grid))
    assert len(kept) == 2
    # The nightly run's order, and the morning's: each reads its own kept row.
    assert (coverage_pct(district), coverage_pct(streets[0])) == (district_pct, street_pct)
    assert sorted(kept_rows(app, "report_grid_days", "grid_id", grid)) == kept


def test_a_day_with_an_open_shift_is_computed_every_time(
    app, client, make_phone, make_unit, make_user
):
    street = make_unit(kind="street")
    phone = make_phone(unit_id=street)
    today = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    with app.app_context():
        db.session.add(Shift(person_id=phone.person_id, started_at=today))
        db.session.commit()
    login(client, make_user)
    query = {"from": today.date().isoformat(), "unit_id": street}
    first = client.get("/api/v1/reports/person-days", query_string=query).json["rows"][0]
    second = client.get("/api/v1/reports/person-days", query_string=query).json["rows"][0]
    assert second["duty_s"] >= first["duty_s"] > 0  # an open shift lasts until now
    kept = kept_rows(app, "report_person_days", "person_id", phone.person_id)
    assert "old" not in [key for key, _ in kept]


def test_a_street_scoped_account_reports_only_its_street_and_each_read_is_audited(
    app, client, make_phone, make_unit, make_user
):
    street_a, street_b = make_unit(kind="street"), make_unit(kind="street")
    grid_a = make_unit(kind="grid", parent_id=street_a)
    grid_b = make_unit(kind="grid", parent_id=street_b)
    with app.app_context():
        for grid in (grid_a, grid_b):
            db.session.execute(
                text(
                    "UPDATE units SET boundary = ST_Multi(ST_MakeEnvelope(121.47, 31.23,"
                    " 121.48, 31.24, 4326)) WHERE id = :id"
                ),
                {"id": grid},
            )
        db.session.commit()
    mine = make_phone(unit_id=grid_a)
    theirs = make_phone(unit_id=grid_b)
    username = login(client, make_user, street_a)
    query = {"from": "2026-06-03"}
    people = client.get("/api/v1/reports/person-days", query_string=query)
    assert people.status_code == 200
    ids = {r["person_id"] for r in people.json["rows"]}
    assert mine.person_id in ids and theirs.person_id not in ids
    grids = client.get("/api/v1/reports/grid-days", query_string=query).json["rows"]
    assert {r["grid_id"] for r in grids} == {grid_a}
    refused = client.get("/api/v1/reports/person-days", query_string={**query, "unit_id": street_b})
    assert refused.status_code == 400
    assert refused.json["error"] == "unit_id: no such unit in your scope"
    picture = client.get(
        "/api/v1/reports/coverage", query_string={"grid_id": grid_b, "date": "2026-06-03"}
    )
    assert picture.status_code == 400
    assert client.get("/api/v1/reports/assessment", query_string=query).status_code == 200
    with app.app_context():
        actions = db.session.execute(
            select(AuditEvent.action, AuditEvent.target_id).where(AuditEvent.actor_name == username)
        ).all()
    assert sorted(a for a, _ in actions if a.startswith("report.")) == [
        "report.assessment",
        "report.grid_days",
        "report.person_days",
    ]


def test_the_xlsx_holds_the_same_figures_as_the_json(app, client, make_phone, make_unit, make_user):
    street = make_unit(kind="street")
    phone = make_phone(unit_id=street, name="王芳")
    morning = datetime(2026, 6, 4, 8, 0, tzinfo=SHANGHAI)
    add_shift(app, phone.person_id, morning, morning + timedelta(hours=2))
    store_fixes(app, phone, walk(morning, 90))
    login(client, make_user)
    query = {"from": "2026-06-04", "unit_id": street}
    (row,) = client.get("/api/v1/reports/person-days", query_string=query).json["rows"]
    english = {"Accept-Language": "en"}
    response = client.get("/api/v1/reports/person-days.xlsx", query_string=query, headers=english)
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["Person-days"]
    header, *cells = list(book.active.values)
    (values,) = cells
    sheet = dict(zip(header, values, strict=True))
    assert sheet["Name"] == "王芳"
    assert sheet["On duty (h)"] == round(row["duty_s"] / 3600, 2) == 2.0
    assert sheet["Distance (km)"] == round(row["distance_m"] / 1000, 3)
    assert sheet["Lost signal (min)"] == round(row["lost_s"] / 60, 1)
    assert sheet["First fix"] == row["first_fix"]
    assert sheet["Stops"] == row["stops"]
    # A name typed as a formula stays text in the spreadsheet and the CSV.
    with app.app_context():
        db.session.execute(
            text("UPDATE people SET name = '=HYPERLINK(\"http://x\")' WHERE id = :id"),
            {"id": phone.person_id},
        )
        db.session.commit()
    risky = client.get("/api/v1/reports/person-days.xlsx", query_string=query, headers=english)
    cell = openpyxl.load_workbook(io.BytesIO(risky.data)).active["C2"]
    assert cell.data_type == "s" and cell.value == '=HYPERLINK("http://x")'
    risky_csv = client.get("/api/v1/reports/person-days.csv", query_string=query).data
    assert "'=HYPERLINK" in risky_csv.decode("utf-8-sig")
    csv_text = client.get(
        "/api/v1/reports/person-days.csv", query_string=query, headers=english
    ).data
    assert csv_text.decode("utf-8-sig").splitlines()[0].startswith("Date,Person ID,Name")
    zh = client.get(
        "/api/v1/reports/person-days.xlsx", query_string=query, headers={"Accept-Language": "zh-CN"}
    )
    zh_book = openpyxl.load_workbook(io.BytesIO(zh.data))
    assert zh_book.sheetnames == ["人员日报"]
    assert "在岗时长（小时）" in next(zh_book.active.values)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({}, "from: is required"),
        ({"from": "2026-13-01"}, "from: must be a date YYYY-MM-DD"),
        ({"from": "2026-06-05", "to": "2026-06-04"}, "to: must not be before from"),
        ({"from": "2026-01-01", "to": "2026-03-01"}, "to: at most 31 days from from"),
        ({"from": "2026-06-05", "unit_id": "x"}, "unit_id: must be an integer"),
        ({"from": "2026-06-05", "unit_id": "999999"}, "unit_id: no such unit in your scope"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_rule(client, make_user, query, error):
    login(client, make_user)
    response = client.get("/api/v1/reports/person-days", query_string=query)
    assert response.status_code == 400
    assert response.json["error"] == error


def square_grid(app, parent_id, make_unit, lat=31.2304, lon=121.4737, size_deg=0.004):
    """Return a new grid under parent_id with a square boundary whose SW corner is given."""
    grid = make_unit(kind="grid", parent_id=parent_id)
    with app.app_context():
        db.session.execute(
            text(
                "UPDATE units SET boundary = ST_Multi(ST_MakeEnvelope(:w, :s, :e, :n, 4326))"
                " WHERE id = :id"
            ),
            {"w": lon, "s": lat, "e": lon + size_deg, "n": lat + size_deg, "id": grid},
        )
        db.session.commit()
    return grid


def test_assessment_scores_people_and_grids_by_the_configured_rule(
    app, client, runner, make_phone, make_unit, make_user, monkeypatch
):
    street = make_unit(kind="street")
    grid = square_grid(app, street, make_unit, lat=31.30, lon=121.50)
    worker = make_phone(role="grid_worker", unit_id=grid)
    idler = make_phone(role="grid_worker", unit_id=grid)
    for phone in (worker, idler):
        assert (
            runner.invoke(
                args=["people", "assign", str(phone.person_id), "--grid", str(grid)]
            ).exit_code
            == 0
        )
    monday = datetime(2026, 6, 8, 8, 0, tzinfo=SHANGHAI)
    add_shift(app, worker.person_id, monday, monday + timedelta(hours=7))
    add_shift(app, idler.person_id, monday, monday + timedelta(hours=1))
    store_fixes(app, worker, walk(monday, 30, lat=31.3005, lon=121.5002))
    monkeypatch.setitem(
        app.config,
        "ASSESSMENT_RULES",
        json.dumps(
            [
                {
                    "unit_id": street,
                    "role": "grid_worker",
                    "min_duty_h": 6,
                    "min_coverage_pct": 1,
                    "max_off_post_min": 600,
                    "pass_score": 0,
                }
            ]
        ),
    )
    login(client, make_user)
    response = client.get(
        "/api/v1/reports/assessment",
        query_string={"from": "2026-06-08", "unit_id": street, "period": "week"},
    )
    assert response.status_code == 200, response.json
    rows = {(r["kind"], r["id"]): r for r in response.json["rows"]}
    grid_days = client.get(
        "/api/v1/reports/grid-days", query_string={"from": "2026-06-08", "unit_id": street}
    ).json["rows"]
    coverage = grid_days[0]["coverage_pct"]
    assert 1 < coverage < 85
    good, bad = rows[("person", worker.person_id)], rows[("person", idler.person_id)]
    assert good["passed"] and good["reasons"] == []
    assert good["duty_h"] == 7 and good["coverage_pct"] == pytest.approx(coverage, abs=0.01)
    assert not bad["passed"] and bad["reasons"] == ["duty_h"]
    assert bad["score"] == good["score"] == Rule().score(coverage)
    # The grid gets the default rule (the configured one names a role): 85 % is required.
    assert rows[("grid", grid)]["reasons"] == ["duty_h", "coverage_pct", "score"]
    english = client.get(
        "/api/v1/reports/assessment.xlsx",
        query_string={"from": "2026-06-08", "unit_id": street},
        headers={"Accept-Language": "en"},
    )
    header, *cells = list(openpyxl.load_workbook(io.BytesIO(english.data)).active.values)
    sheet = [dict(zip(header, c, strict=True)) for c in cells]
    (idler_row,) = [r for r in sheet if r["Kind"] == "Person" and r["ID"] == idler.person_id]
    assert idler_row["Result"] == "Fail"
    assert idler_row["Reasons"] == "on duty 1.0 h of 6.0 h required"


def test_the_daily_command_writes_each_units_file_and_the_ui_lists_it_in_scope(
    app, client, runner, make_phone, make_unit, make_user, monkeypatch, tmp_path
):
    monkeypatch.setitem(app.config, "REPORTS_DIR", tmp_path)
    monkeypatch.setitem(app.config, "REPORTS_DAILY_KINDS", ("street",))
    street_a, street_b = make_unit(kind="street"), make_unit(kind="street")
    square_grid(app, street_a, make_unit)
    phone = make_phone(unit_id=street_a, name="李强")
    add_shift(
        app,
        phone.person_id,
        datetime(2026, 6, 9, 8, tzinfo=SHANGHAI),
        datetime(2026, 6, 9, 10, tzinfo=SHANGHAI),
    )
    with app.app_context():  # figures kept from a day past the retention
        db.session.execute(
            text(
                "INSERT INTO report_person_days (person_id, day, inputs_key, figures, grid_steps)"
                " VALUES (:p, current_date - 400, 'old', '{}', '{}')"
            ),
            {"p": phone.person_id},
        )
        db.session.commit()
    for _ in range(2):  # a second run (cron retried) replaces, it does not add
        result = runner.invoke(args=["reports", "daily", "--date", "2026-06-09"])
        assert result.exit_code == 0, result.output
        assert "daily reports for 2026-06-09 written" in result.output
    assert (tmp_path / f"2026-06-09-unit{street_a}.xlsx").exists()
    kept = kept_rows(app, "report_person_days", "person_id", phone.person_id)
    assert "old" not in [key for key, _ in kept]
    assert not list(tmp_path.glob(".*.tmp"))
    login(client, make_user, street_a)
    listed = client.get("/api/v1/reports/daily").json["reports"]
    assert [(r["unit_id"], r["date"]) for r in listed] == [(street_a, "2026-06-09")]
    download = client.get(listed[0]["url"])
    assert download.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(download.data))
    assert len(book.sheetnames) == 3
    names = [row[2] for row in list(book.worksheets[0].values)[1:]]
    assert names == ["李强"]
    with app.app_context():
        other = db.session.execute(
            text("SELECT id FROM daily_reports WHERE unit_id = :u"), {"u": street_b}
        ).scalar_one()
    assert client.get(f"/api/v1/reports/daily/{other}.xlsx").status_code == 404
    bad = runner.invoke(args=["reports", "daily", "--date", "9 June"])
    assert bad.exit_code == 1 and "--date: must be a date YYYY-MM-DD" in bad.output
