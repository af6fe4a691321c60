"""History endpoints on real PostGIS: timeline, who was near, replay, scope and errors."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from geographiclib.geodesic import Geodesic
from sqlalchemy import text

from tracker import store
from tracker.extensions import db

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai
LAT0, LON0 = 31.2304, 121.4737
WINDOW = {"from": "2026-03-02T07:00:00Z", "to": "2026-03-02T10:00:00Z"}


def login(client, make_user, unit_id=None):
    """Log a viewer in, scoped to unit_id (None sees everyone)."""
    username, password = make_user("viewer", unit_id)
    response = client.post("/api/v1/session", json={"username": username, "password": password})
    assert response.status_code == 200


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


def wander(seed, centre_lat, centre_lon, spread_deg, n=120):
    """Return n fixes a minute apart scattered around a centre (seeded)."""
    rng = random.Random(seed)
    return [
        (
            T0 + timedelta(minutes=i),
            centre_lat + rng.uniform(-spread_deg, spread_deg),
            centre_lon + rng.uniform(-spread_deg, spread_deg),
            rng.choice([5.0, 20.0, 150.0]),
        )
        for i in range(n)
    ]


def test_near_equals_a_brute_force_geodesic_check(app, client, make_phone, make_user):
    phones = [make_phone(name=f"near-{i}") for i in range(4)]
    tracks = {p.person_id: wander(i, LAT0, LON0, 0.004) for i, p in enumerate(phones)}
    for phone in phones:
        store_fixes(app, phone, tracks[phone.person_id])
    login(client, make_user)
    lat, lon, radius_m = LAT0 + 0.001, LON0 - 0.0005, 150.0
    start, end = T0 + timedelta(minutes=10), T0 + timedelta(minutes=70)
    response = client.get(
        "/api/v1/near",
        query_string={
            "lat": lat,
            "lon": lon,
            "radius_m": radius_m,
            "from": start.isoformat(),
            "to": end.isoformat(),
        },
    )
    assert response.status_code == 200
    expected = {}
    for person_id, fixes in tracks.items():
        inside = [
            (ts, Geodesic.WGS84.Inverse(lat, lon, la, lo)["s12"])
            for ts, la, lo, acc in fixes
            if start <= ts < end
            and acc <= 100
            and Geodesic.WGS84.Inverse(lat, lon, la, lo)["s12"] <= radius_m
        ]
        if inside:
            expected[person_id] = (
                min(t for t, _ in inside),
                max(t for t, _ in inside),
                min(d for _, d in inside),
            )
    got = {p["person_id"]: p for p in response.json["people"] if p["person_id"] in tracks}
    assert expected, "the test point must catch someone"
    assert set(got) == set(expected)
    for person_id, (entered, left, closest_m) in expected.items():
        assert datetime.fromisoformat(got[person_id]["entered"]) == entered
        assert datetime.fromisoformat(got[person_id]["left"]) == left
        assert got[person_id]["closest_m"] == pytest.approx(closest_m, abs=0.1)
    closest = [p["closest_m"] for p in response.json["people"]]
    assert closest == sorted(closest)


def test_street_viewer_never_sees_another_streets_people(
    app, client, make_phone, make_unit, make_user
):
    street_a, street_b = make_unit(kind="street"), make_unit(kind="street")
    mine = make_phone(unit_id=make_unit(kind="grid", parent_id=street_a))
    theirs = make_phone(unit_id=street_b)
    for phone in (mine, theirs):
        store_fixes(app, phone, wander(7, LAT0, LON0, 0.0002, n=60))  # the same place
    login(client, make_user, street_a)
    near = client.get(
        "/api/v1/near", query_string={"lat": LAT0, "lon": LON0, "radius_m": 500, **WINDOW}
    )
    assert [p["person_id"] for p in near.json["people"]] == [mine.person_id]
    for selection in (
        {"unit_id": street_a},
        {"person_ids": f"{mine.person_id},{theirs.person_id}"},
    ):
        replay = client.get("/api/v1/replay", query_string={**WINDOW, **selection})
        assert replay.status_code == 200
        assert [p["person_id"] for p in replay.json["people"]] == [mine.person_id]
        assert len(replay.json["people"][0]["t"]) > 0
    assert (
        client.get("/api/v1/replay", query_string={**WINDOW, "unit_id": street_b}).status_code
        == 404
    )
    url = f"/api/v1/people/{theirs.person_id}/timeline"
    assert client.get(url, query_string={"date": "2026-03-02"}).status_code == 404
    ok = client.get(
        f"/api/v1/people/{mine.person_id}/timeline", query_string={"date": "2026-03-02"}
    )
    assert ok.status_code == 200 and len(ok.json["series"]["t"]) > 0


def test_timeline_of_a_real_hike_finds_the_labelled_stops(
    app, client, runner, make_phone, make_user, gpx_dir
):
    person = make_phone().person_id
    result = runner.invoke(args=["import-track", str(person), str(gpx_dir / "korita-zbevnica.gpx")])
    assert result.exit_code == 0, result.output
    login(client, make_user)
    response = client.get(f"/api/v1/people/{person}/timeline", query_string={"date": "2010-10-03"})
    assert response.status_code == 200
    body = response.json
    # Labelled by reading the trace's 513 timed fixes (one every ~11 s while walking):
    # the recorder went quiet, without moving more than ~20 m, at 09:36:30-09:48:33,
    # 10:18:59-10:23:43 (plus ~25 s of slow fixes on the same spot before), 10:52-11:13
    # and 11:34-12:08 UTC (with a few creeping fixes either side); every other gap is
    # under 2 min or moves on. Times below are UTC, ±1 min.
    labelled = [("09:36", "09:48"), ("10:18", "10:23"), ("10:50", "11:13"), ("11:32", "12:11")]
    stops = [
        (
            datetime.fromisoformat(s["arrived"]).astimezone(UTC),
            datetime.fromisoformat(s["left"]).astimezone(UTC),
        )
        for s in body["stops"]
    ]
    assert len(stops) == len(labelled)
    for (arrived, left), (want_in, want_out) in zip(stops, labelled, strict=True):
        day = "2010-10-03T"
        assert abs(arrived - datetime.fromisoformat(f"{day}{want_in}Z")) <= timedelta(minutes=1)
        assert abs(left - datetime.fromisoformat(f"{day}{want_out}Z")) <= timedelta(minutes=1)
    assert len(body["trips"]) == 4  # between the stops, and the walk out after the last
    assert body["distance_m"] == pytest.approx(sum(t["distance_m"] for t in body["trips"]), abs=1)
    assert body["distance_m"] < body["raw_distance_m"]
    assert body["dropped"] == {"accuracy": 0, "duplicate": 0, "speed": 0}
    assert len(body["track"]["coordinates"]) == len(body["series"]["t"]) == 513
    track = client.get(
        f"/api/v1/people/{person}/track",
        query_string={"from": "2010-10-03T00:00:00Z", "to": "2010-10-04T00:00:00Z"},
    )
    props = track.json["properties"]
    assert props["distance_kind"] == "raw"
    assert props["filtered_distance_m"] == pytest.approx(body["distance_m"], abs=1)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/near", {"lon": 1, "radius_m": 10, **WINDOW}, "lat"),
        ("/api/v1/near", {"lat": 1, "lon": 1, "radius_m": 6000, **WINDOW}, "radius_m"),
        (
            "/api/v1/near",
            {
                "lat": 1,
                "lon": 1,
                "radius_m": 10,
                "from": WINDOW["from"],
                "to": "2026-03-05T00:00:00Z",
            },
            "to",
        ),
        (
            "/api/v1/near",
            {"lat": 1, "lon": 1, "radius_m": 10, "from": "yesterday", "to": WINDOW["to"]},
            "from",
        ),
        ("/api/v1/replay", {**WINDOW, "person_ids": "1,x"}, "person_ids"),
        ("/api/v1/replay", WINDOW, "unit_id"),
        ("/api/v1/replay", {"from": WINDOW["to"], "to": WINDOW["from"], "unit_id": 1}, "from"),
        ("/api/v1/replay", {**WINDOW, "unit_id": 1, "step_s": "0"}, "step_s"),
        ("/api/v1/replay", {**WINDOW, "person_ids": "1", "bbox": "1,2,3"}, "bbox"),
        ("/api/v1/replay", {**WINDOW, "person_ids": "1", "bbox": "3,2,1,4"}, "bbox"),
        ("/api/v1/replay", {**WINDOW, "unit_id": 1, "step_s": "x"}, "step_s"),
    ],
)
def test_bad_parameters_give_400_naming_the_field(client, make_user, path, params, field):
    login(client, make_user)
    response = client.get(path, query_string=params)
    assert response.status_code == 400
    assert response.json["error"].startswith(f"{field}:")


def test_bad_timeline_date_gives_400(client, make_phone, make_user):
    person = make_phone().person_id
    login(client, make_user)
    url = f"/api/v1/people/{person}/timeline"
    assert client.get(url, query_string={"date": "2026-13-01"}).json["error"].startswith("date:")
    long = {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}
    assert client.get(url, query_string=long).json["error"].startswith("to:")


def decoded(person: dict) -> list[tuple[float, float, float]]:
    """Return a replay person's delta columns as (t, lat, lon), as the page decodes them."""
    rows, t, lat, lon = [], 0, 0, 0
    for dt, dlat, dlon in zip(person["t"], person["lat"], person["lon"], strict=True):
        t, lat, lon = t + dt, lat + dlat, lon + dlon
        rows.append((t, lat / 1e6, lon / 1e6))
    return rows


def test_replay_columns_decode_to_the_stored_fixes_and_thin_by_slot(
    app, client, make_phone, make_user
):
    phone = make_phone()
    # A fix every 5 s for 10 minutes, walking north; one inaccurate fix among them.
    fixes = [
        (T0 + timedelta(seconds=5 * i), LAT0 + i * 0.00004, LON0, 150.0 if i == 7 else 5.0)
        for i in range(120)
    ]
    store_fixes(app, phone, fixes)
    login(client, make_user)
    window = {"from": T0.isoformat(), "to": (T0 + timedelta(minutes=10)).isoformat()}
    query = {**window, "person_ids": str(phone.person_id)}

    every = client.get("/api/v1/replay", query_string=query).json
    assert every["encoding"] == "delta" and every["step_s"] == 1
    kept = [(ts, lat, lon) for ts, lat, lon, acc in fixes if acc <= 100]
    got = decoded(every["people"][0])
    assert [t for t, _, _ in got] == [round((ts - T0).total_seconds()) for ts, _, _ in kept]
    for (_, lat, lon), (_, want_lat, want_lon) in zip(got, kept, strict=True):
        assert (lat, lon) == pytest.approx((want_lat, want_lon), abs=5e-7)

    # Thinned to 30 s: the first accurate fix of each 30-second slot (T0 is on a slot edge).
    thinned = client.get("/api/v1/replay", query_string={**query, "step_s": 30}).json
    slots: dict[int, datetime] = {}
    for ts, _, _ in kept:
        slots.setdefault(int((ts - T0).total_seconds()) // 30, ts)
    times = [t for t, _, _ in decoded(thinned["people"][0])]
    assert times == [round((ts - T0).total_seconds()) for ts in slots.values()]
    assert times[:3] == [0, 30, 60]


def test_a_month_of_timeline_sends_every_stop_but_a_thinned_series(
    app, client, make_phone, make_user, monkeypatch
):
    from tracker.api import history

    monkeypatch.setattr(history, "MAX_SERIES_POINTS", 20)
    phone = make_phone()
    # Two days, one fix a minute for two hours each: 240 fixes.
    fixes = [
        (T0 + timedelta(days=d, minutes=i), LAT0 + i * 0.0005, LON0, 5.0)
        for d in range(2)
        for i in range(120)
    ]
    store_fixes(app, phone, fixes)
    login(client, make_user)
    url = f"/api/v1/people/{phone.person_id}/timeline"
    span = {"from": T0.isoformat(), "to": (T0 + timedelta(days=3)).isoformat()}
    month = client.get(url, query_string=span).json
    assert month["series_every"] == 12
    assert len(month["series"]["t"]) == len(month["track"]["coordinates"]) == 20
    one_day = client.get(url, query_string={"date": "2026-03-02"}).json
    assert one_day["series_every"] == 1
    # The distance comes from every fix (a straight walk each day, and the way back to the
    # start overnight), not from the thinned track.
    g = Geodesic.WGS84
    every_fix = math.fsum(
        g.Inverse(a[1], a[2], b[1], b[2])["s12"] for a, b in zip(fixes, fixes[1:], strict=False)
    )
    assert month["distance_m"] == pytest.approx(every_fix, rel=0.001)


def test_near_an_area_equals_a_brute_force_point_in_polygon_check(
    app, client, make_phone, make_user
):
    from shapely.geometry import Point, Polygon

    phones = [make_phone(name=f"area-{i}") for i in range(3)]
    tracks = {p.person_id: wander(20 + i, LAT0, LON0, 0.004) for i, p in enumerate(phones)}
    for phone in phones:
        store_fixes(app, phone, tracks[phone.person_id])
    login(client, make_user)
    # A triangle around the centre, about 500 m a side.
    ring = [(LON0 - 0.003, LAT0 - 0.002), (LON0 + 0.003, LAT0 - 0.002), (LON0, LAT0 + 0.003)]
    area = Polygon(ring)
    start, end = T0, T0 + timedelta(hours=2)
    geojson = {"type": "Polygon", "coordinates": [[*map(list, ring), list(ring[0])]]}
    response = client.get(
        "/api/v1/near",
        query_string={
            "area": json.dumps(geojson),
            "from": start.isoformat(),
            "to": end.isoformat(),
        },
    )
    assert response.status_code == 200, response.json
    expected = {}
    for person_id, fixes in tracks.items():
        inside = [ts for ts, la, lo, acc in fixes if acc <= 100 and area.contains(Point(lo, la))]
        if inside:
            expected[person_id] = (min(inside), max(inside))
    got = {p["person_id"]: p for p in response.json["people"] if p["person_id"] in tracks}
    assert expected and set(got) == set(expected)
    for person_id, (entered, left) in expected.items():
        assert datetime.fromisoformat(got[person_id]["entered"]) == entered
        assert datetime.fromisoformat(got[person_id]["left"]) == left
        assert got[person_id]["closest_m"] == 0


@pytest.mark.parametrize(
    ("area", "rule"),
    [
        ("not json", "must be a GeoJSON Polygon"),
        ('{"type": "Point", "coordinates": [121, 31]}', "must be a GeoJSON Polygon"),
        (
            '{"type": "Polygon", "coordinates": [[[121, 31], [122, 31], [122, 32], [121, 31]]]}',
            "at most 0.5° across",
        ),
        (
            '{"type": "Polygon", "coordinates":'
            " [[[121, 31], [121.01, 31.01], [121.01, 31], [121, 31.01], [121, 31]]]}",
            "not a valid polygon",
        ),
    ],
)
def test_a_bad_area_gives_400_naming_the_rule(client, make_user, area, rule):
    login(client, make_user)
    response = client.get("/api/v1/near", query_string={"area": area, **WINDOW})
    assert response.status_code == 400
    assert response.json["error"].startswith("area:") and rule in response.json["error"]


def test_replay_of_a_viewport_lists_only_people_seen_in_it(
    app, client, make_phone, make_unit, make_user
):
    unit = make_unit(kind="street")
    near, far = make_phone(unit_id=unit), make_phone(unit_id=unit)
    store_fixes(app, near, wander(3, LAT0, LON0, 0.0005, n=30))
    store_fixes(app, far, wander(4, LAT0 + 0.05, LON0, 0.0005, n=30))
    login(client, make_user)
    box = f"{LON0 - 0.01},{LAT0 - 0.01},{LON0 + 0.01},{LAT0 + 0.01}"
    answer = client.get("/api/v1/replay", query_string={**WINDOW, "unit_id": unit, "bbox": box})
    assert answer.status_code == 200, answer.json
    assert [p["person_id"] for p in answer.json["people"]] == [near.person_id]


def test_a_track_read_in_binary_equals_the_stored_rows(app, make_phone):
    # read_track() reads the fixes with binary COPY, numpy decoding each field in place:
    # it must give exactly what a plain query gives, unknown values included.
    phone = make_phone(name="binary")
    rng = random.Random(5)
    fixes = [
        (
            T0 + timedelta(seconds=5 * i, microseconds=rng.randrange(1_000_000)),
            LAT0 + rng.uniform(-0.01, 0.01),
            LON0 + rng.uniform(-0.01, 0.01),
            rng.choice([None, 3.5, 17.25, 0.1]),
            rng.choice([None, 0.0, 1.3]),
        )
        for i in range(500)
    ]
    shuffled = fixes[:]
    rng.shuffle(shuffled)
    with app.app_context():
        store.positions.ensure_partition(db.session, T0.date())
        store.positions.insert_positions(
            db.session,
            [
                store.positions.PositionRow(
                    phone.person_id, phone.device_id, ts, lat, lon, acc, None, speed
                )
                for ts, lat, lon, acc, speed in shuffled
            ],
        )
        db.session.commit()
        admin = store.accounts.add_user(db.session, "binary-reader", "x", "admin", None)
        start, end = T0 - timedelta(hours=1), T0 + timedelta(hours=2)
        # A sequential scan returns the rows as stored, shuffled: the packed rows come in
        # no order, and read_track() must sort them.
        db.session.execute(text("SET LOCAL enable_indexscan = off"))
        db.session.execute(text("SET LOCAL enable_bitmapscan = off"))
        track = store.history.read_track(
            db.session, store.history.fix_columns(admin, phone.person_id, start, end)
        )
        rows = db.session.execute(store.history.fixes(admin, phone.person_id, start, end)).all()
        db.session.rollback()
    assert len(track) == len(rows) == len(fixes)
    assert track.t.tolist() == [r.ts.timestamp() for r in rows]
    assert track.lat.tolist() == [r.lat for r in rows]
    assert track.lon.tolist() == [r.lon for r in rows]
    # REAL columns come as their exact float4 values; the text protocol sends the
    # shortest decimal that rounds to the same float4.
    for column, name in ((track.accuracy_m, "accuracy_m"), (track.speed_mps, "speed_mps")):
        stored = [getattr(r, name) for r in rows]
        assert [None if math.isnan(v) else v for v in column.tolist()] == [
            None if v is None else float(np.float32(v)) for v in stored
        ]
