"""Changes to people and their phones that must keep duty honest.

Revoking a person's last phone, or deactivating the person, ends their shift: nobody can
report for them any more, so coverage must not count them on duty, and no `signal_lost`
should follow. The CLI and the administration pages both come through here.
"""

from __future__ import annotations

import logging

from . import audit, store
from .extensions import db, socketio
from .ingest.events import NAMESPACE, REVOKED_ACK, device_room
from .models import Device

log = logging.getLogger(__name__)


def revoke_device(device: Device) -> bool:
    """Revoke a device and commit; close the shift if it was the person's last phone.

    Returns:
        False if the device was already revoked.
    """
    if not store.devices.revoke_device(db.session, device.id):
        db.session.rollback()
        return False
    audit.record("device.revoke", "device", device.id, {"revoked_at": None}, {"revoked": True})
    last_phone = not store.devices.phone_devices(db.session, device.person_id)
    if last_phone and store.people.close_shift(db.session, device.person_id, "revoked"):
        log.info("shift of person %d closed: its last device was revoked", device.person_id)
    db.session.commit()
    # Every process closes the device's sockets within CUTOFF_INTERVAL_S by itself; with
    # Redis the phones also hear it at once through the message queue.
    socketio.emit("revoked", REVOKED_ACK, namespace=NAMESPACE, to=device_room(device.id))
    return True


def set_person_active(person_id: int, active: bool) -> bool:
    """Deactivate (closing the shift; phones are refused) or reactivate a person; commit.

    Returns:
        False if the person already was in that state.
    """
    if not store.people.set_person_active(db.session, person_id, active):
        db.session.rollback()
        return False
    audit.record(
        "person.reactivate" if active else "person.deactivate",
        "person",
        person_id,
        {"active": not active},
        {"active": active},
    )
    if not active:
        store.people.close_shift(db.session, person_id, "deactivated")
    db.session.commit()
    if not active:
        for device_id in store.devices.active_devices(db.session, person_id):
            socketio.emit("revoked", REVOKED_ACK, namespace=NAMESPACE, to=device_room(device_id))
    return True
