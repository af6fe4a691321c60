"""Devices: token lookups for ingest, issuing and revoking."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Select,
    func,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from ..models import (
    Device,
    Person,
)


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """The device and person behind a token."""

    device_id: int
    person_id: int


def device_by_token_hash(session: Session, token_hash: str) -> DeviceIdentity | None:
    """Return the active device with this token hash, if any.

    Args:
        session: a session.
        token_hash: the SHA-256 hex digest of the token.

    Returns:
        The device identity, or None for an unknown, revoked or inactive one.
    """
    row = session.execute(
        select(Device.id, Device.person_id)
        .join(Person, Person.id == Device.person_id)
        .where(
            Device.token_hash == token_hash,
            Device.revoked_at.is_(None),
            Person.active.is_(True),
        )
    ).first()
    return DeviceIdentity(device_id=row.id, person_id=row.person_id) if row else None


# What may travel inside an array literal: these never need quoting.
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_CLIENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")  # devices.client is 16 characters

_DEVICES_BY_TOKEN_HASHES = text(
    """
SELECT d.token_hash, d.id, d.person_id
FROM devices d JOIN people p ON p.id = d.person_id
WHERE d.token_hash = ANY(CAST(:hashes AS text[])) AND d.revoked_at IS NULL AND p.active
"""
)


def devices_by_token_hashes(
    session: Session, token_hashes: Sequence[str]
) -> dict[str, DeviceIdentity]:
    """Return the active devices of many token hashes at once.

    Args:
        session: a session.
        token_hashes: SHA-256 hex digests of tokens.

    Returns:
        token hash -> device, for the hashes of active devices of active people only.
    """
    if not token_hashes:
        return {}
    # Hex digests only, so the set travels as one array literal: after a restart this
    # looks up thousands of tokens at once, and an IN list of bound values cost more in
    # Python than the query in PostgreSQL.
    if not all(_HEX_DIGEST.fullmatch(h) for h in token_hashes):
        raise ValueError("token_hashes: must be SHA-256 hex digests")
    rows = session.execute(
        _DEVICES_BY_TOKEN_HASHES, {"hashes": "{" + ",".join(sorted(set(token_hashes))) + "}"}
    ).all()
    return {row.token_hash: DeviceIdentity(row.id, row.person_id) for row in rows}


def inactive_devices(session: Session, device_ids: Iterable[int]) -> set[int]:
    """Return those of the devices that may no longer send anything.

    Args:
        session: a session.
        device_ids: devices with open connections.

    Returns:
        The ids of the devices that are revoked, gone, or whose person is deactivated.
    """
    wanted = set(device_ids)
    if not wanted:
        return set()
    active = session.execute(
        select(Device.id)
        .join(Person, Person.id == Device.person_id)
        .where(
            Device.id.in_(sorted(wanted)),
            Device.revoked_at.is_(None),
            Person.active.is_(True),
        )
    ).scalars()
    return wanted - set(active)


def locked_in_id_order(*conditions: ColumnElement[bool]) -> Select[tuple[int]]:
    """Return a subquery of the ids of the devices matching `conditions`, locked in id order.

    Every statement that updates several devices picks them through this. An UPDATE locks
    rows in the order its plan happens to visit them (the heap's order for a sequential
    scan, an IN list's order for a nested loop), and two statements locking the same
    devices in different orders at once (the group commit marking devices seen, a burst of
    new GPS apps recording their client) deadlock: PostgreSQL breaks that only after its
    deadlock_timeout, a second later, by failing one of them. Sorting before the lock makes
    every such statement take the locks in the same order. FOR NO KEY UPDATE is the lock an
    UPDATE of non-key columns takes anyway, so it blocks nothing more, not the foreign-key
    checks of positions being inserted.
    """
    return (
        select(Device.id)
        .where(*conditions)
        .order_by(Device.id)
        .with_for_update(key_share=True)
        .correlate_except(Device)  # its own FROM devices, never the outer UPDATE's
    )


def add_device(session: Session, person_id: int, label: str | None, token_hash: str) -> Device:
    """Add a device with the hash of its freshly issued token."""
    device = Device(person_id=person_id, label=label, token_hash=token_hash)
    session.add(device)
    session.flush()
    return device


def revoke_device(session: Session, device_id: int) -> bool:
    """Revoke a device; return False if it does not exist or was already revoked."""
    result = session.execute(
        update(Device)
        .where(Device.id == device_id, Device.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return result.rowcount == 1


IMPORT_DEVICE_LABEL = "track import"


def import_device(session: Session, person_id: int, token_hash: str) -> int:
    """Return the id of the person's device for imported tracks, creating it if needed.

    Imported fixes are deduplicated by (device, ts) like live ones, so re-importing a file
    stores nothing twice. The device's token is never shown: it cannot send live fixes.
    """
    device_id = session.execute(
        select(Device.id).where(Device.person_id == person_id, Device.label == IMPORT_DEVICE_LABEL)
    ).scalar()
    if device_id is None:
        device_id = add_device(session, person_id, IMPORT_DEVICE_LABEL, token_hash).id
    return device_id


def active_devices(session: Session, person_id: int) -> list[int]:
    """Return the ids of a person's devices that are not revoked."""
    return list(
        session.execute(
            select(Device.id).where(Device.person_id == person_id, Device.revoked_at.is_(None))
        ).scalars()
    )


def revoke_labelled_devices(session: Session, person_ids: Sequence[int], label: str) -> None:
    """Revoke the people's active devices that carry a label (e.g. the simulator's)."""
    session.execute(
        update(Device)
        .where(
            Device.id.in_(
                locked_in_id_order(
                    Device.person_id.in_(person_ids),
                    Device.label == label,
                    Device.revoked_at.is_(None),
                )
            )
        )
        .values(revoked_at=func.now())
    )


def phone_devices(session: Session, person_id: int) -> list[int]:
    """Return the ids of a person's devices that still report (not revoked, not imports)."""
    return list(
        session.execute(
            select(Device.id).where(
                Device.person_id == person_id,
                Device.revoked_at.is_(None),
                Device.label.is_distinct_from(IMPORT_DEVICE_LABEL),
            )
        ).scalars()
    )


# Only the devices whose client changes are locked (in id order, as locked_in_id_order
# explains) and written: after a restart every GPS app's first request reaches each
# process, and all but the first find the client already recorded.
_SET_DEVICE_CLIENTS = text(
    """
WITH reported AS (
    SELECT * FROM unnest(CAST(:ids AS integer[]), CAST(:clients AS text[])) AS r(id, client)
), changed AS MATERIALIZED (
    SELECT d.id, r.client FROM devices d JOIN reported r ON r.id = d.id
    WHERE d.client IS DISTINCT FROM r.client
    ORDER BY d.id FOR NO KEY UPDATE OF d
)
UPDATE devices d SET client = changed.client FROM changed WHERE d.id = changed.id
"""
)


def set_device_clients(session: Session, clients: Mapping[int, str]) -> None:
    """Record which client last reported with each device (webapp, osmand, owntracks, …).

    One statement for all of them: a thousand GPS apps reconnecting at once must not each
    take a pooled connection for this.
    """
    if clients:
        if not all(_CLIENT_NAME.fullmatch(name) for name in clients.values()):
            raise ValueError("clients: names are lower-case words (webapp, osmand, …)")
        ids = sorted(clients)
        session.execute(
            _SET_DEVICE_CLIENTS,
            {
                "ids": "{" + ",".join(map(str, ids)) + "}",
                "clients": "{" + ",".join(clients[i] for i in ids) + "}",
            },
        )


def mark_webapp_sockets(session: Session, device_ids: Iterable[int]) -> None:
    """Record that these devices connected a socket of our web app just now."""
    wanted = sorted(set(device_ids))
    if wanted:
        session.execute(
            update(Device)
            .where(Device.id.in_(locked_in_id_order(Device.id.in_(wanted))))
            .values(client="webapp", last_socket_at=func.now())
        )


def touch_sockets(session: Session, device_ids: Iterable[int]) -> None:
    """Record that these devices have a socket connected now (see close_idle_shifts)."""
    wanted = sorted(set(device_ids))
    if wanted:
        session.execute(
            update(Device)
            .where(Device.id.in_(locked_in_id_order(Device.id.in_(wanted))))
            .values(last_socket_at=func.now())
        )


def devices_of_person(session: Session, person_id: int) -> list[Device]:
    """Return a person's phones, revoked ones included, oldest first (not the import device)."""
    return list(
        session.execute(
            select(Device)
            .where(
                Device.person_id == person_id,
                Device.label.is_distinct_from(IMPORT_DEVICE_LABEL),
            )
            .order_by(Device.id)
        ).scalars()
    )


def devices_of_people(session: Session, person_ids: Sequence[int]) -> dict[int, int]:
    """Return how many phones that are not revoked each of these people has."""
    if not person_ids:
        return {}
    rows = session.execute(
        select(Device.person_id, func.count(Device.id))
        .where(
            Device.person_id.in_(sorted(set(person_ids))),
            Device.revoked_at.is_(None),
            Device.label.is_distinct_from(IMPORT_DEVICE_LABEL),
        )
        .group_by(Device.person_id)
    ).all()
    return {person_id: count for person_id, count in rows}
