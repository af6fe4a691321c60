"""Queries on a real PostGIS: storing positions, latest positions, tracks and scope."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from tracker import store
from tracker.geo import haversine_m
from tracker.models import LatestPosition, Position, User

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture()
def person(session):
    """Return (person_id, device_id) for a fresh person with one device."""
    p = store.people.add_person(session, "测试 Test", "patrol", None, None)
    d = store.devices.add_device(session, p.id, None, "h" * 64)
    for day in {NOW.date(), (NOW - timedelta(days=1)).date()}:
        store.positions.ensure_partition(session, day)
    return p.id, d.id


def row(person, seconds_ago: float, lat=39.9, lon=116.4, **extra):
    """Return a PositionRow for `person` at NOW - seconds_ago."""
    person_id, device_id = person
    return store.positions.PositionRow(
        person_id, device_id, NOW - timedelta(seconds=seconds_ago), lat, lon, **extra
    )


def test_insert_reports_new_rows_and_skips_resends(session, person):
    first = [row(person, 30), row(person, 20)]
    assert len(store.positions.insert_positions(session, first)) == 2
    again = store.positions.insert_positions(session, [row(person, 20), row(person, 10)])
    assert again == {(person[1], NOW - timedelta(seconds=10))}
    assert store.tracks.count_positions(session, person[0]) == 3


def test_values_are_stored_in_their_units(session, person):
    store.positions.insert_positions(
        session,
        [
            row(
                person,
                5,
                lat=39.91,
                lon=116.42,
                accuracy_m=4.0,
                altitude_m=50.5,
                speed_mps=1.5,
                heading_deg=90.0,
                battery=0.75,
            )
        ],
    )
    stored = session.execute(select(Position).where(Position.person_id == person[0])).scalar_one()
    assert (stored.accuracy_m, stored.altitude_m, stored.speed_mps) == (4.0, 50.5, 1.5)
    assert (stored.heading_deg, stored.battery) == (90.0, 0.75)
    assert stored.ts == NOW - timedelta(seconds=5)


def test_latest_position_moves_only_forward(session, person):
    store.positions.insert_positions(
        session, [row(person, 10, lat=39.1), row(person, 30, lat=39.3)]
    )
    latest = session.get(LatestPosition, person[0])
    assert latest.ts == NOW - timedelta(seconds=10)
    # A late-arriving older fix is stored in the track but does not replace the newest.
    store.positions.insert_positions(session, [row(person, 20, lat=39.2)])
    session.expire_all()
    assert session.get(LatestPosition, person[0]).ts == NOW - timedelta(seconds=10)
    store.positions.insert_positions(session, [row(person, 1, lat=39.4)])
    session.expire_all()
    assert session.get(LatestPosition, person[0]).ts == NOW - timedelta(seconds=1)


def test_revoked_devices_are_not_touched(session, person):
    assert store.positions.touch_devices(session, [person[1]]) == {person[1]}
    assert store.devices.revoke_device(session, person[1]) is True
    assert store.devices.revoke_device(session, person[1]) is False
    assert store.positions.touch_devices(session, [person[1]]) == set()


def test_token_lookup_finds_active_devices_and_refuses_anything_but_digests(session):
    from tracker.auth import hash_token

    active = store.people.add_person(session, "在岗 Active", "patrol", None, None)
    gone = store.people.add_person(session, "离岗 Gone", "patrol", None, None)
    kept = store.devices.add_device(session, active.id, None, hash_token("kept"))
    revoked = store.devices.add_device(session, active.id, None, hash_token("revoked"))
    store.devices.add_device(session, gone.id, None, hash_token("gone"))
    store.devices.revoke_device(session, revoked.id)
    gone.active = False
    session.flush()
    hashes = [hash_token(t) for t in ("kept", "revoked", "gone", "never issued")]
    assert store.devices.devices_by_token_hashes(session, hashes) == {
        hash_token("kept"): store.devices.DeviceIdentity(kept.id, active.id)
    }
    # The hashes travel as one array literal: anything that could break out of it is
    # refused before it reaches the database.
    with pytest.raises(ValueError, match="token_hashes"):
        store.devices.devices_by_token_hashes(session, [hash_token("kept"), "a,b}"])


def test_track_is_time_ordered_with_geodesic_length(session, person):
    points = [(39.900, 116.400), (39.901, 116.401), (39.903, 116.400), (39.905, 116.402)]
    # Insert out of order: the track must still follow the timestamps.
    rows = [row(person, 40 - 10 * i, lat=lat, lon=lon) for i, (lat, lon) in enumerate(points)]
    store.positions.insert_positions(session, list(reversed(rows)))
    result = store.tracks.track(session, person[0], NOW - timedelta(hours=1), NOW)
    assert result.points == 4
    assert json.loads(result.geometry_geojson)["coordinates"] == [[lon, lat] for lat, lon in points]
    expected = sum(haversine_m(*a, *b) for a, b in zip(points, points[1:], strict=False))
    # PostGIS measures on the WGS-84 spheroid, the check on a sphere: within 0.5 %.
    assert result.distance_m == pytest.approx(expected, rel=5e-3)
    assert result.started_at == NOW - timedelta(seconds=40)
    assert result.ended_at == NOW - timedelta(seconds=10)


def test_track_window_excludes_other_times_and_people(session, person):
    other = store.people.add_person(session, "other", "volunteer", None, None)
    other_device = store.devices.add_device(session, other.id, None, "o" * 64)
    store.positions.insert_positions(
        session,
        [
            row(person, 7200),
            row(person, 60),
            store.positions.PositionRow(
                other.id, other_device.id, NOW - timedelta(seconds=30), 39.9, 116.4
            ),
        ],
    )
    result = store.tracks.track(session, person[0], NOW - timedelta(hours=1), NOW)
    assert result.points == 1
    empty = store.tracks.track(session, person[0], NOW - timedelta(days=3), NOW - timedelta(days=2))
    assert (empty.points, empty.geometry_geojson, empty.distance_m) == (0, None, 0)


def test_scope_covers_the_unit_subtree_only(session):
    district = store.people.add_unit(session, "district", "district", None, None)
    street = store.people.add_unit(session, "street", "street", district.id, None)
    grid = store.people.add_unit(session, "grid", "grid", street.id, None)
    elsewhere = store.people.add_unit(session, "elsewhere", "street", None, None)
    in_grid = store.people.add_person(session, "in grid", "volunteer", grid.id, None)
    in_street = store.people.add_person(session, "in street", "volunteer", street.id, None)
    outside = store.people.add_person(session, "outside", "volunteer", elsewhere.id, None)
    unassigned = store.people.add_person(session, "no unit", "volunteer", None, None)

    def visible(user: User) -> set[int]:
        ids = set(session.execute(store.scope.visible_people(user)).scalars())
        return ids & {in_grid.id, in_street.id, outside.id, unassigned.id}

    assert visible(User(role="viewer", unit_id=street.id)) == {in_grid.id, in_street.id}
    assert visible(User(role="dispatcher", unit_id=grid.id)) == {in_grid.id}
    # An admin is scoped by its unit like any account; only an account without one sees all.
    assert visible(User(role="admin", unit_id=street.id)) == {in_grid.id, in_street.id}
    assert visible(User(role="admin", unit_id=None)) == {
        in_grid.id,
        in_street.id,
        outside.id,
        unassigned.id,
    }
    assert (
        store.scope.can_see_person(session, User(role="viewer", unit_id=grid.id), outside.id)
        is False
    )


def test_latest_positions_bbox_and_duty(session, person):
    store.positions.insert_positions(session, [row(person, 5, lat=39.95, lon=116.45)])
    admin = User(role="admin", unit_id=None)
    inside = session.execute(store.latest.latest_positions(admin, (116.4, 39.9, 116.5, 40.0))).all()
    assert [r.person_id for r in inside if r.person_id == person[0]] == [person[0]]
    assert inside[[r.person_id for r in inside].index(person[0])].on_duty is False
    outside = session.execute(
        store.latest.latest_positions(admin, (100.0, 20.0, 101.0, 21.0))
    ).all()
    assert person[0] not in [r.person_id for r in outside]
    store.people.open_shift(session, person[0])
    rows = session.execute(store.latest.latest_positions(admin, None)).all()
    assert next(r for r in rows if r.person_id == person[0]).on_duty is True
    shift = store.people.close_shift(session, person[0])
    assert shift is not None and shift.ended_at is not None
    assert store.people.close_shift(session, person[0]) is None


def test_open_shift_is_idempotent(session, person):
    first = store.people.open_shift(session, person[0])
    assert store.people.open_shift(session, person[0]).id == first.id


def test_the_apps_connections_run_without_jit(session):
    # A JIT compile of the group commit took 400-500 ms; see tracker/config.py.
    assert session.execute(text("SHOW jit")).scalar() == "off"
