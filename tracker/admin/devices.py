"""Phones: issue a token with its pairing code, list and revoke (docs/admin-api.md)."""

from __future__ import annotations

import logging
from typing import Any

import qrcode
import qrcode.image.svg
from flask import current_app

from .. import audit, roster, store
from ..auth import hash_token, new_device_token
from ..extensions import db
from ..messages import Message
from ..models import Device, User
from .people import device_json
from .rules import AdminNotFound, invalid, label_problem

log = logging.getLogger(__name__)


def pairing_url(token: str) -> str:
    """Return the link that pairs our phone app with a token (PUBLIC_URL/m#token=...)."""
    return f"{current_app.config['PUBLIC_URL']}/m#token={token}"


def qr_svg(text: str) -> str:
    """Return a QR code of `text` as SVG text."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode")


def setup_values(token: str) -> dict[str, str]:
    """Return what to type into the GPS apps for a token (docs/protocol.md)."""
    base = current_app.config["PUBLIC_URL"]
    return {
        "server_url": base,
        "device_id": token,
        "osmand_url": f"{base}/osmand",
        "owntracks_url": f"{base}/owntracks/{token}",
    }


def check_label(body: Any, allowed: tuple[str, ...] = ("label",)) -> str | None:
    """Return the `label` of a body checked (None when absent or null), or refuse it."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise invalid("body", Message("must be a JSON object"))
    unknown = sorted(str(k)[:64] for k in body if k not in allowed)
    if unknown:
        raise invalid(
            unknown[0], Message("unknown field; allowed: %(fields)s", fields=", ".join(allowed))
        )
    label = body.get("label")
    if label is None:
        return None
    label = label.strip() if isinstance(label, str) else label
    if problem := label_problem(label):
        raise invalid("label", problem)
    return label


def issue(person_id: int, label: str | None) -> tuple[Device, str]:
    """Add a device with a fresh token in the caller's transaction, audited.

    Returns:
        The device and its token (shown once; only its hash is stored).
    """
    token = new_device_token()
    device = store.devices.add_device(db.session, person_id, label, hash_token(token))
    audit.record(
        "device.issue", "device", device.id, None, {"person_id": person_id, "label": label}
    )
    return device, token


def issued_json(device: Device, token: str) -> dict[str, Any]:
    """Return an issued DEVICE with its token, pairing link, QR code and GPS-app setup."""
    url = pairing_url(token)
    return {
        **device_json(device),
        "token": token,
        "pairing_url": url,
        "qr_svg": qr_svg(url),
        "setup": setup_values(token),
    }


def _managed_person_or_404(user: User, person_id: int) -> None:
    """Refuse a person that is unknown or outside the account's scope."""
    if store.people.managed_person(db.session, user, person_id) is None:
        raise AdminNotFound("person: not found")


def person_devices(user: User, person_id: int) -> list[dict[str, Any]]:
    """Return the DEVICEs of a person the account manages."""
    _managed_person_or_404(user, person_id)
    return [device_json(d) for d in store.devices.devices_of_person(db.session, person_id)]


def issue_for(user: User, person_id: int, body: Any) -> dict[str, Any]:
    """Issue a phone to a person the account manages and commit; the token is in the answer."""
    _managed_person_or_404(user, person_id)
    label = check_label(body)
    device, token = issue(person_id, label)
    db.session.commit()
    db.session.refresh(device)
    log.info("device %d issued to person %d", device.id, person_id)
    return issued_json(device, token)


def revoke(user: User, device_id: int) -> dict[str, Any]:
    """Revoke a device of a person the account manages and commit; return the DEVICE.

    Revoking a revoked device changes nothing and answers it as it is.
    """
    device = db.session.get(Device, device_id)
    if device is None or store.people.managed_person(db.session, user, device.person_id) is None:
        db.session.rollback()
        raise AdminNotFound("device: not found")
    if roster.revoke(device):
        db.session.commit()
        roster.announce_revoked([device.id])
        log.info("device %d revoked", device.id)
    else:
        db.session.rollback()
    return device_json(db.session.get(Device, device_id))
