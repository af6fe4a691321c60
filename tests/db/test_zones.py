"""Grid matching and the alert rules on PostGIS, driven fix by fix with an injected clock."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import gpxpy
import pytest
from sqlalchemy import select, text

from tracker import store
from tracker.extensions import db
from tracker.models import LatestPosition
from tracker.zones.rules import BatteryRule, ZoneRule
from tracker.zones.watcher import check_signals, evaluate_fixes

ZONE = ZoneRule(15, 100)
BATTERY = BatteryRule(0.15)


def square(lat: float, lon: float, half_m: float) -> str:
    """Return a GeoJSON square polygon of half-side half_m metres around a point."""
    dlat = half_m / 111_320
    dlon = half_m / (111_320 * math.cos(math.radians(lat)))
    ring = [
        [lon - dlon, lat - dlat],
        [lon + dlon, lat - dlat],
        [lon + dlon, lat + dlat],
        [lon - dlon, lat + dlat],
        [lon - dlon, lat - dlat],
    ]
    return f'{{"type": "Polygon", "coordinates": [{ring}]}}'


@pytest.fixture()
def ctx(app):
    """Run the test inside an app context; clean up committed rows afterwards."""
    with app.app_context():
        yield db.session


def make_patroller(session, grid_id: int | None, on_duty: bool = True):
    """Commit a person with a device, assigned to a grid and on duty; return ids."""
    person = store.people.add_person(session, "巡逻员", "patrol", None, None)
    device = store.devices.add_device(session, person.id, None, f"{person.id:064d}")
    store.people.assign_patrol_unit(session, person.id, grid_id)
    if on_duty:
        store.people.open_shift(session, person.id)
    session.commit()
    return person.id, device.id


def feed(session, person_id, device_id, fixes):
    """Store fixes one at a time, judging each, as the watcher does; return the alert kinds."""
    kinds = []
    for ts, lat, lon, extra in fixes:
        store.positions.ensure_partition(session, ts.astimezone(UTC).date())
        store.positions.insert_positions(
            session, [store.positions.PositionRow(person_id, device_id, ts, lat, lon, **extra)]
        )
        kinds += [a.kind for a in evaluate_fixes([person_id], ZONE, BATTERY)]
        session.commit()
    return kinds


def recorded_trace(gpx_dir):
    """Return a real car trace (it leaves its start and comes back), moved to the last hour."""
    with open(gpx_dir / "around-visnjan-with-car.gpx", encoding="utf-8") as f:
        points = [p for t in gpxpy.parse(f).tracks for s in t.segments for p in s.points]
    shift = datetime.now(UTC) - timedelta(minutes=30) - points[0].time
    return [(p.time + shift, p.latitude, p.longitude, {"accuracy_m": 5.0}) for p in points]


def test_recorded_trace_crossing_the_border_raises_one_exit_and_one_enter(ctx, gpx_dir):
    trace = recorded_trace(gpx_dir)
    start_lat, start_lon = trace[0][1], trace[0][2]
    grid_id, _, _ = store.zones.upsert_unit(
        ctx, "start grid", "grid", None, square(start_lat, start_lon, 150)
    )
    person_id, device_id = make_patroller(ctx, grid_id)
    kinds = feed(ctx, person_id, device_id, trace)
    assert [k for k in kinds if k.startswith("zone")] == ["zone_exit", "zone_enter"]
    latest = ctx.get(LatestPosition, person_id)
    assert latest.grid_id == grid_id  # back where it started
    stored = ctx.execute(
        text("SELECT kind, ts FROM alerts WHERE person_id = :p ORDER BY ts"), {"p": person_id}
    ).all()
    assert [a.kind for a in stored] == ["zone_exit", "zone_enter"]


def test_walking_along_the_border_raises_nothing(ctx):
    lat0, lon0 = 39.93, 116.41
    grid_id, _, _ = store.zones.upsert_unit(
        ctx, "border grid", "grid", None, square(lat0, lon0, 200)
    )
    person_id, device_id = make_patroller(ctx, grid_id)
    east_edge = lon0 + 200 / (111_320 * math.cos(math.radians(lat0)))
    t0 = datetime.now(UTC) - timedelta(minutes=20)
    # Start well inside, then walk north along the east edge with ±10 m of GPS jitter.
    fixes = [(t0, lat0, lon0, {"accuracy_m": 8.0})]
    for i in range(120):
        jitter_m = 10 * math.sin(i * 1.7)
        lon = east_edge + jitter_m / (111_320 * math.cos(math.radians(lat0)))
        lat = lat0 - 0.0015 + i * 0.000025
        fixes.append((t0 + timedelta(seconds=5 * (i + 1)), lat, lon, {"accuracy_m": 8.0}))
    assert feed(ctx, person_id, device_id, fixes) == []


def test_off_duty_people_raise_no_zone_alerts(ctx):
    grid_id, _, _ = store.zones.upsert_unit(
        ctx, "quiet grid", "grid", None, square(39.9, 116.4, 100)
    )
    person_id, device_id = make_patroller(ctx, grid_id, on_duty=False)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    fixes = [(t0, 39.9, 116.4, {}), (t0 + timedelta(seconds=5), 39.91, 116.4, {})]
    assert feed(ctx, person_id, device_id, fixes) == []


def test_low_battery_alerts_once(ctx):
    person_id, device_id = make_patroller(ctx, None)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    levels = [0.5, 0.14, 0.12, 0.16, 0.10, 0.3, 0.1]
    fixes = [
        (t0 + timedelta(seconds=i), 39.9, 116.4 + i / 1e4, {"battery": b})
        for i, b in enumerate(levels)
    ]
    assert feed(ctx, person_id, device_id, fixes) == ["low_battery", "low_battery"]


def test_signal_lost_after_timeout_and_back_with_the_next_fix(ctx):
    person_id, device_id = make_patroller(ctx, None)
    last_fix = datetime.now(UTC)  # after the shift started
    feed(ctx, person_id, device_id, [(last_fix, 39.9, 116.4, {})])
    lost_after = timedelta(minutes=5)

    def lost_at(now):
        kinds = [(a.kind, a.person_id) for a in check_signals(now, lost_after)]
        ctx.commit()
        return [k for k, p in kinds if p == person_id]

    assert lost_at(last_fix + timedelta(minutes=4, seconds=59)) == []
    assert lost_at(last_fix + timedelta(minutes=5, seconds=1)) == ["signal_lost"]
    assert lost_at(last_fix + timedelta(minutes=9)) == []  # once, not every check
    back = feed(ctx, person_id, device_id, [(datetime.now(UTC), 39.9, 116.41, {})])
    assert back == ["signal_back"]
    assert lost_at(datetime.now(UTC) + timedelta(minutes=6)) == ["signal_lost"]


def test_silence_of_someone_off_duty_is_not_an_alert(ctx):
    person_id, device_id = make_patroller(ctx, None, on_duty=False)
    feed(ctx, person_id, device_id, [(datetime.now(UTC) - timedelta(hours=1), 39.9, 116.4, {})])
    found = [
        a
        for a in check_signals(datetime.now(UTC), timedelta(minutes=5))
        if a.person_id == person_id
    ]
    ctx.commit()
    assert found == []


def test_grid_matching_picks_the_containing_grid(ctx):
    a, _, _ = store.zones.upsert_unit(ctx, "grid A", "grid", None, square(30.0, 120.0, 300))
    b, _, _ = store.zones.upsert_unit(ctx, "grid B", "grid", None, square(30.0, 120.01, 300))
    person_id, device_id = make_patroller(ctx, None)
    now = datetime.now(UTC)
    feed(ctx, person_id, device_id, [(now - timedelta(seconds=9), 30.0, 120.0, {})])
    assert (
        ctx.execute(
            select(LatestPosition.grid_id).where(LatestPosition.person_id == person_id)
        ).scalar()
        == a
    )
    feed(ctx, person_id, device_id, [(now - timedelta(seconds=5), 30.0, 120.01, {})])
    assert (
        ctx.execute(
            select(LatestPosition.grid_id).where(LatestPosition.person_id == person_id)
        ).scalar()
        == b
    )
    feed(ctx, person_id, device_id, [(now - timedelta(seconds=1), 31.0, 121.0, {})])
    assert (
        ctx.execute(
            select(LatestPosition.grid_id).where(LatestPosition.person_id == person_id)
        ).scalar()
        is None
    )
