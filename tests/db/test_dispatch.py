"""Nearest people to an incident: equal to a brute-force geodesic ranking, scoped, fresh only."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from geographiclib.geodesic import Geodesic
from sqlalchemy import insert

from tracker import store
from tracker.dispatch import service
from tracker.extensions import db
from tracker.models import Device, Person, Shift, User

CENTRE = (39.9042, 116.4074)  # lat, lon


@pytest.fixture(scope="module")
def crowd(app):
    """Commit 3,000 people around CENTRE: a mix of units, duty and fix ages. Return them."""
    rng = random.Random(20261127)
    now = datetime.now(UTC)
    with app.app_context():
        unit_a = store.people.add_unit(db.session, "dispatch A", "street", None, None).id
        unit_b = store.people.add_unit(db.session, "dispatch B", "street", None, None).id
        db.session.commit()
        people = []
        for n in range(3000):
            lat = CENTRE[0] + rng.gauss(0, 0.02)
            lon = CENTRE[1] + rng.gauss(0, 0.03)
            people.append(
                {
                    "name": f"crowd {n}",
                    "role": "volunteer",
                    "unit_id": unit_a if n % 2 else unit_b,
                    "on_duty": rng.random() < 0.7,
                    "age_s": rng.choice([5, 30, 120, 400, 1200]),  # > 600 s is stale
                    "lat": lat,
                    "lon": lon,
                }
            )
        ids = (
            db.session.execute(
                insert(Person).returning(Person.id, sort_by_parameter_order=True),
                [{"name": p["name"], "role": p["role"], "unit_id": p["unit_id"]} for p in people],
            )
            .scalars()
            .all()
        )
        device_ids = (
            db.session.execute(
                insert(Device).returning(Device.id, sort_by_parameter_order=True),
                [{"person_id": pid, "token_hash": f"crowd-{pid}"} for pid in ids],
            )
            .scalars()
            .all()
        )
        db.session.execute(
            insert(Shift),
            [{"person_id": pid} for pid, p in zip(ids, people, strict=True) if p["on_duty"]],
        )
        for day in {now.date(), (now - timedelta(hours=1)).date()}:
            store.positions.ensure_partition(db.session, day)
        store.positions.insert_positions(
            db.session,
            [
                store.positions.PositionRow(
                    pid, did, now - timedelta(seconds=p["age_s"]), p["lat"], p["lon"]
                )
                for pid, did, p in zip(ids, device_ids, people, strict=True)
            ],
        )
        db.session.commit()
    for pid, p in zip(ids, people, strict=True):
        p["person_id"] = pid
    return {"people": people, "unit_a": unit_a, "unit_b": unit_b}


def brute_force(people, lat, lon, count, unit_id=None):
    """Rank eligible people by WGS-84 geodesic distance (Karney's algorithm)."""
    eligible = [
        p
        for p in people
        if p["on_duty"] and p["age_s"] < 600 and (unit_id is None or p["unit_id"] == unit_id)
    ]
    ranked = sorted(
        (Geodesic.WGS84.Inverse(lat, lon, p["lat"], p["lon"])["s12"], p["person_id"])
        for p in eligible
    )
    return ranked[:count]


@pytest.mark.parametrize("point", [CENTRE, (39.95, 116.35), (39.80, 116.60)])
def test_nearest_equals_brute_force_geodesic_ranking(app, crowd, point):
    with app.app_context():
        found = service.nearest(User(role="admin", unit_id=None), *point, 10, datetime.now(UTC))
    expected = brute_force(crowd["people"], *point, 10)
    assert [r["person_id"] for r in found] == [pid for _, pid in expected]
    for row, (distance, _) in zip(found, expected, strict=True):
        assert row["distance_m"] == pytest.approx(distance, abs=0.01)


def test_nearest_respects_scope(app, crowd):
    user = User(role="dispatcher", unit_id=crowd["unit_a"])
    with app.app_context():
        found = service.nearest(user, *CENTRE, 25, datetime.now(UTC))
    expected = brute_force(crowd["people"], *CENTRE, 25, unit_id=crowd["unit_a"])
    assert [r["person_id"] for r in found] == [pid for _, pid in expected]
    units = {p["person_id"]: p["unit_id"] for p in crowd["people"]}
    assert {units[r["person_id"]] for r in found} == {crowd["unit_a"]}


def test_stale_and_off_duty_people_are_never_proposed(app, crowd):
    with app.app_context():
        found = service.nearest(User(role="admin", unit_id=None), *CENTRE, 100, datetime.now(UTC))
    by_id = {p["person_id"]: p for p in crowd["people"]}
    assert len(found) == 100
    assert all(by_id[r["person_id"]]["on_duty"] for r in found)
    assert all(by_id[r["person_id"]]["age_s"] < 600 for r in found)
    assert [r["distance_m"] for r in found] == sorted(r["distance_m"] for r in found)
