"""Retention drops whole old days of positions and keeps everything else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tracker import store
from tracker.extensions import db
from tracker.models import Alert, LatestPosition, Position


def test_prune_drops_old_days_only(app, runner, make_phone):
    phone = make_phone()
    now = datetime.now(UTC).replace(microsecond=0)
    old, recent = now - timedelta(days=120), now - timedelta(days=10)
    with app.app_context():
        for ts in (old, recent):
            store.positions.ensure_partition(db.session, ts.date())
        store.positions.insert_positions(
            db.session,
            [
                store.positions.PositionRow(phone.person_id, phone.device_id, ts, 39.9, 116.4)
                for ts in (old, recent)
            ],
        )
        store.alerts.insert_alert(
            db.session, phone.person_id, phone.device_id, "sos", old, (39.9, 116.4), "old alert"
        )
        db.session.commit()
    result = runner.invoke(args=["partitions", "prune", "--retention-days", "90"])
    assert result.exit_code == 0, result.output
    assert "partitions older than" in result.output
    with app.app_context():
        days = store.positions.partition_days(db.session)
        assert old.date() not in days and recent.date() in days
        kept = (
            db.session.execute(select(Position.ts).where(Position.person_id == phone.person_id))
            .scalars()
            .all()
        )
        assert kept == [recent]
        assert db.session.get(LatestPosition, phone.person_id).ts == recent
        assert (
            db.session.execute(
                select(func.count()).select_from(Alert).where(Alert.person_id == phone.person_id)
            ).scalar()
            == 1
        )
    again = runner.invoke(args=["partitions", "prune", "--retention-days", "90"])
    assert "0 partitions older than" in again.output
