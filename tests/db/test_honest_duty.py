"""Duty made honest: revoking the last phone, deactivating, and silent shifts end a shift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from tracker import roster, store
from tracker.dispatch.watcher import close_idle_shifts
from tracker.extensions import db
from tracker.models import Device, Shift


def open_shift_of(person_id):
    return db.session.execute(
        select(Shift).where(Shift.person_id == person_id).order_by(Shift.id.desc())
    ).scalar_one()


def test_revoking_the_last_phone_closes_the_shift(app, make_phone):
    phone = make_phone()
    with app.app_context():
        second = store.devices.add_device(db.session, phone.person_id, "spare", "f" * 64)
        store.people.open_shift(db.session, phone.person_id)
        db.session.commit()
        assert roster.revoke_device(db.session.get(Device, second.id))
        assert open_shift_of(phone.person_id).ended_at is None  # one phone still reports
        assert roster.revoke_device(db.session.get(Device, phone.device_id))
        shift = open_shift_of(phone.person_id)
        assert shift.ended_at is not None and shift.end_reason == "revoked"
        assert not roster.revoke_device(db.session.get(Device, phone.device_id))


def test_deactivating_a_person_closes_the_shift(app, make_phone):
    phone = make_phone()
    with app.app_context():
        store.people.open_shift(db.session, phone.person_id)
        db.session.commit()
        assert roster.set_person_active(phone.person_id, False)
        assert open_shift_of(phone.person_id).end_reason == "deactivated"
        assert store.devices.inactive_devices(db.session, [phone.device_id]) == {phone.device_id}
        assert not roster.set_person_active(phone.person_id, False)
        assert roster.set_person_active(phone.person_id, True)
        assert store.devices.inactive_devices(db.session, [phone.device_id]) == set()


def test_a_silent_shift_closes_after_the_idle_time(app, make_phone):
    quiet, connected = make_phone(), make_phone()
    idle = timedelta(minutes=30)
    with app.app_context():
        for phone in (quiet, connected):
            store.people.open_shift(db.session, phone.person_id)
        db.session.commit()
        started = open_shift_of(quiet.person_id).started_at
        # The second phone's socket was seen 20 minutes after the shift began.
        db.session.execute(
            update(Device)
            .where(Device.id == connected.device_id)
            .values(last_socket_at=started + timedelta(minutes=20))
        )
        db.session.commit()

        early = close_idle_shifts(started + timedelta(minutes=29), idle)
        assert quiet.person_id not in early
        later = started + timedelta(minutes=31)
        closed = close_idle_shifts(later, idle)
        db.session.commit()
        assert quiet.person_id in closed and connected.person_id not in closed
        shift = open_shift_of(quiet.person_id)
        assert (shift.ended_at, shift.end_reason) == (later, "silent")
        assert open_shift_of(connected.person_id).ended_at is None
        assert connected.person_id in close_idle_shifts(started + timedelta(minutes=51), idle)
        db.session.rollback()


def test_the_phone_closing_a_shift_says_so(app, make_phone):
    phone = make_phone()
    with app.app_context():
        store.people.open_shift(db.session, phone.person_id)
        store.people.close_shift(db.session, phone.person_id)
        db.session.commit()
        assert open_shift_of(phone.person_id).end_reason == "phone"
        assert datetime.now(UTC) - open_shift_of(phone.person_id).ended_at < timedelta(minutes=5)
