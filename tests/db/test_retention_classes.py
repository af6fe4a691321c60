"""Retention by data class: positions, alerts, incidents and audit rows each at their own age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select

from tracker import store
from tracker.extensions import db
from tracker.models import Alert, AuditEvent, Incident, IncidentEvent, Position
from tracker.privacy import retention

# The injected clock: a moment a day ago, so that rows of other tests (stamped now) are
# younger than every cutoff computed from it.
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


def _incident(session, created_at: datetime, closed_at: datetime | None) -> int:
    """Add an incident with one history row; return its id."""
    incident_id = session.execute(
        insert(Incident)
        .values(
            geom="SRID=4326;POINT(116.4 39.9)",
            description="retention test",
            status="closed" if closed_at else "open",
            created_at=created_at,
            closed_at=closed_at,
        )
        .returning(Incident.id)
    ).scalar_one()
    session.execute(
        insert(IncidentEvent).values(incident_id=incident_id, kind="created", at=created_at)
    )
    return incident_id


def _audit_row(session, at: datetime) -> int:
    """Add an audit row stamped `at`; return its id."""
    return session.execute(
        insert(AuditEvent)
        .values(at=at, actor_name="cli:test", action="track.read", target_kind="person")
        .returning(AuditEvent.id)
    ).scalar_one()


def test_each_class_goes_at_its_own_age(app, runner, make_phone):
    phone = make_phone()
    days = lambda n: NOW - timedelta(days=n)  # noqa: E731
    with app.app_context():
        session = db.session
        for ts in (days(120), days(10)):
            store.positions.ensure_partition(session, ts.date())
        store.positions.insert_positions(
            session,
            [
                store.positions.PositionRow(phone.person_id, phone.device_id, ts, 39.9, 116.4)
                for ts in (days(120), days(10))
            ],
        )
        alerts = {}
        for age in (400, 200):
            alert, _ = store.alerts.insert_alert(
                session, phone.person_id, phone.device_id, "sos", days(age), None, f"{age}"
            )
            alerts[age] = alert.id
        incidents = {
            "closed long ago": _incident(session, days(500), days(380)),
            "closed lately": _incident(session, days(500), days(100)),
            "opened long ago": _incident(session, days(400), None),
            "opened lately": _incident(session, days(30), None),
        }
        audit_rows = {1200: _audit_row(session, days(1200)), 1000: _audit_row(session, days(1000))}
        session.commit()

    result = runner.invoke(args=["partitions", "prune", "--now", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    assert f"partitions older than {days(90).date()} dropped" in result.output
    assert "1 alerts, 2 incidents and 1 audit rows past their retention deleted" in result.output

    with app.app_context():
        session = db.session
        kept_fixes = session.execute(
            select(Position.ts).where(Position.person_id == phone.person_id)
        ).scalars()
        assert list(kept_fixes) == [days(10)]
        assert session.get(Alert, alerts[400]) is None
        assert session.get(Alert, alerts[200]) is not None
        remaining = {
            name for name, incident_id in incidents.items() if session.get(Incident, incident_id)
        }
        assert remaining == {"closed lately", "opened lately"}
        history = session.execute(
            select(func.count())
            .select_from(IncidentEvent)
            .where(IncidentEvent.incident_id == incidents["closed long ago"])
        ).scalar()
        assert history == 0
        assert session.get(AuditEvent, audit_rows[1200]) is None
        assert session.get(AuditEvent, audit_rows[1000]) is not None
        (prune_row,) = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.action == "retention.prune")
                .order_by(AuditEvent.id.desc())
                .limit(1)
            )
            .scalars()
            .all()
        )
        assert prune_row.after["audit_events"] == 1 and prune_row.after["alerts"] == 1


def test_each_age_is_configurable(app):
    """Shorter settings drop younger rows: the ages come from the configuration."""
    config = {
        **app.config,
        "RETENTION_ALERTS_DAYS": 30,
        "RETENTION_INCIDENTS_DAYS": 30,
        "RETENTION_AUDIT_DAYS": 30,
    }
    days = retention.RetentionDays.from_config(config)
    assert (days.positions, days.alerts, days.incidents, days.audit) == (90, 30, 30, 30)
    overridden = retention.RetentionDays.from_config(config, audit=400, alerts=None)
    assert (overridden.alerts, overridden.audit) == (30, 400)
    with app.app_context():
        session = db.session
        old = _audit_row(session, NOW - timedelta(days=31))
        young = _audit_row(session, NOW - timedelta(days=29))
        pruned = retention.prune(session, NOW, days)
        session.commit()
        assert pruned.audit_events >= 1
        assert session.get(AuditEvent, old) is None
        assert session.get(AuditEvent, young) is not None


def test_defaults_follow_the_law(app):
    days = retention.RetentionDays.from_config(app.config)
    assert (days.positions, days.alerts, days.incidents) == (90, 365, 365)
    assert days.audit >= 3 * 365  # PIPL art. 55-56: at least three years


def test_a_bad_clock_is_refused_naming_the_option(runner):
    result = runner.invoke(args=["partitions", "prune", "--now", "yesterday"])
    assert result.exit_code == 1
    assert "--now: must be an ISO-8601 date-time" in result.output
    result = runner.invoke(args=["partitions", "prune", "--now", "2026-01-01T00:00:00"])
    assert "--now: must include a UTC offset" in result.output
