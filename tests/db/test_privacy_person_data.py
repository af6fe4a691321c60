"""A person's data: the export holds every stored fix; erasure leaves no whereabouts behind."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import gpxpy
from sqlalchemy import func, insert, select, text

from tracker import audit, store
from tracker.extensions import db
from tracker.models import (
    Alert,
    AuditEvent,
    Device,
    Incident,
    LatestPosition,
    Person,
    Position,
    ReportPersonDay,
)


def login(app, make_user, role="admin", unit_id=None):
    """Return a test client logged in as a new staff account."""
    client = app.test_client()
    username, password = make_user(role, unit_id)
    assert (
        client.post(
            "/api/v1/session", json={"username": username, "password": password}
        ).status_code
        == 200
    )
    return client


def store_days_of_fixes(app, phone) -> list[datetime]:
    """Store fixes of a phone on three different days (latest position included)."""
    now = datetime.now(UTC).replace(microsecond=0)
    times = [now - timedelta(days=d, minutes=m) for d in (0, 3, 20) for m in (1, 2)]
    with app.app_context():
        for ts in times:
            store.positions.ensure_partition(db.session, ts.date())
        store.positions.store_positions(
            db.session,
            [
                store.positions.PositionRow(
                    phone.person_id, phone.device_id, ts, 39.9 + n / 1000, 116.4
                )
                for n, ts in enumerate(times)
            ],
        )
        db.session.commit()
    return sorted(times)


def test_export_holds_every_stored_fix_and_who_looked(app, make_user, make_phone):
    phone = make_phone(name="导出 测试")
    times = store_days_of_fixes(app, phone)
    admin = login(app, make_user)
    admin.get(f"/api/v1/people/{phone.person_id}/track")
    response = admin.get(f"/api/v1/people/{phone.person_id}/export.json")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].endswith(f'person-{phone.person_id}.json"')
    document = json.loads(response.get_data())
    assert document["person"]["name"] == "导出 测试"
    assert [datetime.fromisoformat(p["ts"]) for p in document["positions"]] == times
    assert [d["id"] for d in document["devices"]] == [phone.device_id]
    assert "track.read" in [row["action"] for row in document["audit"]]
    gpx = gpxpy.parse(admin.get(f"/api/v1/people/{phone.person_id}/export.gpx").get_data(True))
    points = [p for t in gpx.tracks for s in t.segments for p in s.points]
    assert [p.time for p in points] == times
    with app.app_context():
        exports = db.session.execute(
            select(AuditEvent.action).where(
                AuditEvent.target_id == phone.person_id,
                AuditEvent.action.startswith("person.export"),
            )
        ).scalars()
        assert sorted(exports) == ["person.export_gpx", "person.export_json"]


def test_export_and_erasure_are_for_admins_in_scope(app, make_user, make_phone, make_unit):
    unit_a, unit_b = make_unit(), make_unit()
    phone = make_phone(unit_id=unit_b)
    dispatcher = login(app, make_user, "dispatcher")
    assert dispatcher.get(f"/api/v1/people/{phone.person_id}/export.json").status_code == 403
    other_admin = login(app, make_user, "admin", unit_a)
    assert other_admin.get(f"/api/v1/people/{phone.person_id}/export.json").status_code == 404
    refused = other_admin.post(
        f"/api/v1/people/{phone.person_id}/erase", json={"confirm": phone.person_id}
    )
    assert refused.status_code == 404


def test_erasure_removes_whereabouts_pseudonymises_and_is_recorded(app, make_user, make_phone):
    phone = make_phone(name="张三丰")
    store_days_of_fixes(app, phone)
    with app.app_context():
        session = db.session
        store.alerts.insert_alert(
            session, phone.person_id, phone.device_id, "sos", datetime.now(UTC), None, "help"
        )
        incident_id = session.execute(
            insert(Incident)
            .values(
                geom="SRID=4326;POINT(116.4 39.9)",
                description="张三丰 reported a fallen tree",
                reported_by=phone.person_id,
            )
            .returning(Incident.id)
        ).scalar_one()
        audit.record("person.update", "person", phone.person_id, {"name": "张三丰"}, {})
        # A report's stored person-day, which keeps that day's track.
        session.execute(
            insert(ReportPersonDay).values(
                person_id=phone.person_id,
                day=datetime.now(UTC).date(),
                inputs_key="k" * 64,
                figures={},
                grid_steps={},
                track="SRID=4326;MULTILINESTRING((116.4 39.9, 116.41 39.91))",
            )
        )
        session.commit()
    admin = login(app, make_user)
    wrong = admin.post(f"/api/v1/people/{phone.person_id}/erase", json={"confirm": 1})
    assert wrong.status_code == 400 and wrong.get_json()["error"].startswith("confirm:")
    response = admin.post(
        f"/api/v1/people/{phone.person_id}/erase", json={"confirm": phone.person_id}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["erased"]["positions"] == 6
    pseudonym = f"erased-{phone.person_id}"
    with app.app_context():
        session = db.session
        for table in (Position, LatestPosition, Alert, Device, ReportPersonDay):
            left = session.execute(
                select(func.count()).select_from(table).where(table.person_id == phone.person_id)
            ).scalar()
            assert left == 0, table.__tablename__
        person = session.get(Person, phone.person_id)
        assert (person.name, person.phone, person.active) == (pseudonym, None, False)
        incident = session.get(Incident, incident_id)
        assert incident.description == f"{pseudonym} reported a fallen tree"
        trail = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.target_kind == "person", AuditEvent.target_id == phone.person_id)
                .order_by(AuditEvent.id)
            )
            .scalars()
            .all()
        )
        assert "张三丰" not in json.dumps([(r.before, r.after) for r in trail], ensure_ascii=False)
        assert trail[0].before == {"name": pseudonym}
        assert trail[-1].action == "person.erase" and trail[-1].after["erased"]["positions"] == 6
        # The exception was for the erasure only: the trail is append-only again.
        with db.engine.connect() as conn:
            refused = None
            try:
                conn.execute(text("UPDATE audit_events SET after = NULL"))
            except Exception as exc:  # noqa: BLE001 - the refusal is what is tested
                refused = exc
            assert refused is not None and "append-only" in str(refused)


def test_cli_export_and_erase(app, runner, make_phone, tmp_path):
    phone = make_phone(name="李四")
    times = store_days_of_fixes(app, phone)
    result = runner.invoke(args=["people", "export", str(phone.person_id), "--to", str(tmp_path)])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / f"person-{phone.person_id}.json").read_text())
    assert len(document["positions"]) == len(times)
    gpx = gpxpy.parse((tmp_path / f"person-{phone.person_id}.gpx").read_text())
    assert sum(len(s.points) for t in gpx.tracks for s in t.segments) == len(times)
    refused = runner.invoke(args=["people", "erase", str(phone.person_id)])
    assert refused.exit_code == 1 and "--yes" in refused.output
    result = runner.invoke(args=["people", "erase", str(phone.person_id), "--yes"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert store.tracks.count_positions(db.session, phone.person_id) == 0
        erasure = db.session.execute(
            select(AuditEvent).where(
                AuditEvent.action == "person.erase", AuditEvent.target_id == phone.person_id
            )
        ).scalar_one()
        assert erasure.actor_name.startswith("cli:")
    missing = runner.invoke(args=["people", "erase", "999999999", "--yes"])
    assert missing.exit_code == 1 and "PERSON_ID: no person with id 999999999" in missing.output


def test_legal_basis_is_recorded_with_its_date(app, make_user, make_phone):
    phone = make_phone()
    admin = login(app, make_user)
    response = admin.put(
        f"/api/v1/people/{phone.person_id}/legal-basis",
        json={"basis": "consent", "note": "signed form 2026-17", "at": "2026-11-30T09:00:00+08:00"},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["legal_basis"] == "consent"
    assert datetime.fromisoformat(body["legal_basis_at"]) == datetime(2026, 11, 30, 1, tzinfo=UTC)
    bad = admin.put(f"/api/v1/people/{phone.person_id}/legal-basis", json={"basis": "because"})
    assert bad.status_code == 400 and bad.get_json()["error"].startswith("basis: must be one of")
    with app.app_context():
        (row,) = db.session.execute(
            select(AuditEvent).where(
                AuditEvent.action == "person.legal_basis", AuditEvent.target_id == phone.person_id
            )
        ).scalars()
        assert row.before["legal_basis"] is None and row.after["legal_basis"] == "consent"
