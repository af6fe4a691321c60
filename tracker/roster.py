"""Changes to people and their phones that must keep duty honest.

Revoking a person's last phone, or deactivating the person, ends their shift: nobody can
report for them any more, so coverage must not count them on duty, and no `signal_lost`
should follow. The CLI and the administration API both come through here: `revoke` and
`deactivate` change and audit inside the caller's transaction, `announce_revoked` tells the
phones after the commit, and `revoke_device` / `set_person_active` do all three.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from . import audit, store
from .extensions import db, socketio
from .ingest.events import NAMESPACE, REVOKED_ACK, device_room
from .models import Device

log = logging.getLogger(__name__)


def revoke(device: Device) -> bool:
    """Revoke a device in the caller's transaction; the last phone closes the shift.

    Returns:
        False if the device was already revoked (nothing changed).
    """
    if not store.devices.revoke_device(db.session, device.id):
        return False
    audit.record("device.revoke", "device", device.id, {"revoked_at": None}, {"revoked": True})
    last_phone = not store.devices.phone_devices(db.session, device.person_id)
    if last_phone and store.people.close_shift(db.session, device.person_id, "revoked"):
        log.info("shift of person %d closed: its last device was revoked", device.person_id)
    return True


def set_active(person_id: int, active: bool) -> list[int]:
    """Deactivate (closing the shift) or reactivate a person in the caller's transaction.

    Returns:
        The devices to tell they are refused, once committed (none when reactivating).

    Raises:
        LookupError: the person already was in that state (nothing changed).
    """
    if not store.people.set_person_active(db.session, person_id, active):
        raise LookupError(person_id)
    audit.record(
        "person.reactivate" if active else "person.deactivate",
        "person",
        person_id,
        {"active": not active},
        {"active": active},
    )
    if active:
        return []
    store.people.close_shift(db.session, person_id, "deactivated")
    return store.devices.active_devices(db.session, person_id)


def announce_revoked(device_ids: Iterable[int]) -> None:
    """Tell the phones of committed revocations that they are refused.

    Every process closes the devices' sockets within CUTOFF_INTERVAL_S by itself; with
    Redis the phones also hear it at once through the message queue.
    """
    for device_id in device_ids:
        socketio.emit("revoked", REVOKED_ACK, namespace=NAMESPACE, to=device_room(device_id))


def revoke_device(device: Device) -> bool:
    """Revoke a device and commit; close the shift if it was the person's last phone.

    Returns:
        False if the device was already revoked.
    """
    if not revoke(device):
        db.session.rollback()
        return False
    db.session.commit()
    announce_revoked([device.id])
    return True


def set_person_active(person_id: int, active: bool) -> bool:
    """Deactivate (closing the shift; phones are refused) or reactivate a person; commit.

    Returns:
        False if the person already was in that state.
    """
    try:
        refused = set_active(person_id, active)
    except LookupError:
        db.session.rollback()
        return False
    db.session.commit()
    announce_revoked(refused)
    return True
