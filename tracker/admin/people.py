"""People: list, create, read and change them within the account's scope (docs/admin-api.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import current_app, g

from .. import audit, roster, store
from ..extensions import db
from ..ingest.events import send_to_device
from ..messages import Message
from ..models import Person, User
from ..privacy.policy import policies
from .rules import (
    PERSON_NAME_MAX_CHARS,
    AdminConflict,
    AdminError,
    AdminForbidden,
    AdminNotFound,
    invalid,
    normal_phone,
    phone_problem,
    role_problem,
    text_problem,
)

log = logging.getLogger(__name__)

CREATE_FIELDS = ("name", "role", "phone", "unit_id", "patrol_unit_id")
PATCH_FIELDS = (*CREATE_FIELDS, "active")
# The fields of a person an audit row compares.
AUDITED = ("name", "role", "phone", "unit_id", "patrol_unit_id")


def person_json(row: Any) -> dict[str, Any]:
    """Return a row of store.people.people_rows as the API's PERSON."""
    values = row._asdict()
    for key in ("last_fix_at", "created_at"):
        values[key] = values[key].isoformat() if values[key] is not None else None
    return values


def device_json(device: Any) -> dict[str, Any]:
    """Return a device as the API's DEVICE."""

    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": device.id,
        "person_id": device.person_id,
        "label": device.label,
        "client": device.client,
        "created_at": iso(device.created_at),
        "last_seen_at": iso(device.last_seen_at),
        "revoked_at": iso(device.revoked_at),
    }


def _unit_facts(user: User, unit_id: int) -> tuple[str | None, bool]:
    """Return a unit's kind (None: no such unit) and whether the account manages it.

    Remembered for the rest of the request: a roster names the same few units on
    thousands of rows.
    """
    known = g.setdefault("unit_facts", {})
    key = (user.id, unit_id)
    if key not in known:
        kind = store.people.unit_kind(db.session, unit_id)
        managed = kind is not None and store.people.unit_managed(db.session, user, unit_id)
        known[key] = (kind, managed)
    return known[key]


def _unit_ref(user: User, field: str, value: Any, grid: bool) -> int | None:
    """Return a unit id field's value checked: a unit (a grid, if `grid`) in scope, or None."""
    if value is None:
        if field == "unit_id" and user.unit_id is not None:
            raise invalid(
                field,
                Message(
                    "must be a unit in your scope (your account is limited to unit %(unit_id)s)",
                    unit_id=user.unit_id,
                ),
            )
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, Message("must be a unit id or null"))
    kind, managed = _unit_facts(user, value)
    if kind is None:
        raise invalid(field, Message("no unit with id %(unit_id)s", unit_id=value))
    if grid and kind != "grid":
        raise invalid(
            field, Message("unit %(unit_id)s is a %(kind)s, not a grid", unit_id=value, kind=kind)
        )
    if not managed:
        raise AdminForbidden(
            "%(field)s: unit %(unit_id)s is outside your scope", field=field, unit_id=value
        )
    return value


def check_fields(
    user: User, body: Mapping[str, Any], allowed: tuple[str, ...]
) -> tuple[dict[str, Any], list[AdminError]]:
    """Return the given fields of a person checked and cleaned, and every rule they break.

    Args:
        user: the account making the change (its scope limits the units).
        body: field -> value as sent.
        allowed: the fields that may be given.

    Returns:
        (values, errors): the acceptable values, and one error per broken field, each
        naming its field.
    """
    values: dict[str, Any] = {}
    errors: list[AdminError] = []
    for field in body:
        if field not in allowed:
            errors.append(
                invalid(
                    str(field)[:64],
                    Message("unknown field; allowed: %(fields)s", fields=", ".join(allowed)),
                )
            )
    for field in allowed:
        if field not in body:
            continue
        value = body[field]
        try:
            values[field] = _checked(user, field, value)
        except AdminError as exc:
            errors.append(exc)
    return values, errors


def _checked(user: User, field: str, value: Any) -> Any:
    """Return one field's value checked and cleaned, or raise the rule it breaks."""
    if field == "name":
        value = value.strip() if isinstance(value, str) else value
        if problem := text_problem(value, PERSON_NAME_MAX_CHARS):
            raise invalid(field, problem)
        return value
    if field == "role":
        if problem := role_problem(value, current_app.config["PERSON_ROLES"]):
            raise invalid(field, problem)
        return value
    if field == "phone":
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        value = value.strip() if isinstance(value, str) else value
        if problem := phone_problem(value):
            raise invalid(field, problem)
        return value
    if field in ("unit_id", "patrol_unit_id"):
        return _unit_ref(user, field, value, grid=field == "patrol_unit_id")
    if field == "active":
        if not isinstance(value, bool):
            raise invalid(field, Message("must be true or false"))
        return value
    raise AssertionError(field)


def phone_taken(phone: str | None, person_id: int | None) -> AdminConflict | None:
    """Return the conflict if another person has this number; hold lock_phones first."""
    if phone is None:
        return None
    owner = store.people.people_by_phones(db.session, [normal_phone(phone)]).get(
        normal_phone(phone)
    )
    if owner is None or owner.id == person_id:
        return None
    return AdminConflict(
        "%(field)s: %(phone)s belongs to person %(person_id)s",
        field="phone",
        phone=phone,
        person_id=owner.id,
    )


def _body(body: Any) -> Mapping[str, Any]:
    """Return the request body, or refuse one that is not a JSON object."""
    if not isinstance(body, dict):
        raise invalid("body", Message("must be a JSON object"))
    return body


def person(user: User, person_id: int) -> dict[str, Any]:
    """Return a PERSON the account manages, with its DEVICEs.

    Raises:
        AdminNotFound: unknown, or outside the account's scope.
    """
    stmt = store.people.people_rows(user, store.people.PeopleFilter(person_id=person_id))
    row = db.session.execute(stmt).first()
    if row is None:
        raise AdminNotFound("person: not found")
    answer = person_json(row)
    answer["devices"] = [
        device_json(d) for d in store.devices.devices_of_person(db.session, person_id)
    ]
    return answer


def _row(user: User, person_id: int) -> dict[str, Any]:
    """Return the PERSON (device count) of a person just changed."""
    stmt = store.people.people_rows(user, store.people.PeopleFilter(person_id=person_id))
    return person_json(db.session.execute(stmt).one())


def create(user: User, body: Any) -> dict[str, Any]:
    """Add a person from a POST body and commit; return the PERSON.

    Raises:
        AdminError: a field breaks a rule, is outside the scope, or the phone is taken.
    """
    values, errors = check_fields(user, _body(body), CREATE_FIELDS)
    for required in ("name", "role"):
        if required not in body:
            errors.append(invalid(required, Message("is required")))
    if "unit_id" not in body and user.unit_id is not None:
        errors.append(
            invalid(
                "unit_id",
                Message(
                    "must be a unit in your scope (your account is limited to unit %(unit_id)s)",
                    unit_id=user.unit_id,
                ),
            )
        )
    if errors:
        raise errors[0]
    added = add(values)
    db.session.commit()
    log.info("person %d added", added.id)
    return _row(user, added.id)


def add(values: Mapping[str, Any], phone_checked: bool = False) -> Person:
    """Add a person with checked values in the caller's transaction, audited.

    Args:
        values: the checked fields.
        phone_checked: the caller holds lock_phones and has checked every number already
            (a roster import checks thousands in one query; one query per row scans the
            table each time).

    Raises:
        AdminConflict: another person has the phone number.
    """
    if not phone_checked:
        store.people.lock_phones(db.session)
        if conflict := phone_taken(values.get("phone"), None):
            raise conflict
    added = store.people.add_person(
        db.session, values["name"], values["role"], values.get("unit_id"), values.get("phone")
    )
    if values.get("patrol_unit_id") is not None:
        store.people.assign_patrol_unit(db.session, added.id, values["patrol_unit_id"])
    after = {field: values.get(field) for field in AUDITED}
    audit.record("person.create", "person", added.id, None, after)
    return added


def change(target: Person, values: Mapping[str, Any]) -> tuple[bool, list[int]]:
    """Change a person's checked fields in the caller's transaction, audited.

    Returns:
        (whether anything changed, the devices to tell they are refused after the commit).

    Raises:
        AdminConflict: another person has the new phone number.
    """
    if "phone" in values:
        store.people.lock_phones(db.session)
        if conflict := phone_taken(values["phone"], target.id):
            raise conflict
    before = {f: getattr(target, f) for f in AUDITED if f in values}
    after = {f: values[f] for f in AUDITED if f in values}
    before = {f: v for f, v in before.items() if v != after[f]}
    after = {f: after[f] for f in before}
    for field, value in after.items():
        setattr(target, field, value)
    refused: list[int] = []
    changed = bool(after)
    if after:
        db.session.flush()
        audit.record("person.update", "person", target.id, before, after)
    if "active" in values and values["active"] != target.active:
        refused = roster.set_active(target.id, values["active"])
        db.session.expire(target, ["active"])
        changed = True
    return changed, refused


def update(user: User, person_id: int, body: Any) -> dict[str, Any]:
    """Change a person from a PATCH body and commit; return the PERSON.

    `active: false` refuses the person's phones and ends their shift.

    Raises:
        AdminError: unknown or not visible (404), a field breaks a rule (400), is outside
            the scope (403), or the phone is taken (409).
    """
    target = store.people.managed_person(db.session, user, person_id)
    if target is None:
        raise AdminNotFound("person: not found")
    values, errors = check_fields(user, _body(body), PATCH_FIELDS)
    if errors:
        raise errors[0]
    _, refused = change(target, values)
    db.session.commit()
    roster.announce_revoked(refused)
    return _row(user, person_id)


def set_duty(user: User, person_id: int, body: Any) -> dict[str, Any]:
    """Start or end a person's shift from a `{"on": true|false}` body and commit, audited.

    For people whose GPS app has no duty button (Traccar Client, OsmAnd, ...): under the
    `on_duty` policy their fixes are kept only while a shift is open. The shift is the one
    the phone app's 开始执勤 opens, so this process keeps the person's fixes from the next
    one on, and the person's phone app, if open, shows the change.

    Raises:
        AdminError: unknown or not visible (404), `on` is not a boolean (400), or the
            person is deactivated (409).
    """
    target = store.people.managed_person(db.session, user, person_id)
    if target is None:
        raise AdminNotFound("person: not found")
    on = _body(body).get("on")
    if not isinstance(on, bool):
        raise invalid("on", Message("must be true or false"))
    if on and not target.active:
        raise AdminConflict("person: deactivated; reactivate them before starting a shift")
    # Starting a shift that is open, or ending one that is not, changes and records nothing.
    shift = None
    if on and not store.privacy.is_on_duty(db.session, person_id):
        shift = store.people.open_shift(db.session, person_id)
    elif not on:
        shift = store.people.close_shift(db.session, person_id, "staff")
    if shift is not None:
        audit.record(
            "person.shift_start" if on else "person.shift_end",
            "person",
            person_id,
            {"on_duty": not on},
            {"on_duty": on, "shift_id": shift.id},
        )
    ended = None if on or shift is None else (shift.started_at, shift.ended_at)
    db.session.commit()
    policies.note_duty(person_id, on, ended)
    if shift is not None:
        log.info("person %d %s duty by staff account %d", person_id, "on" if on else "off", user.id)
        for device_id in store.devices.active_devices(db.session, person_id):
            send_to_device(device_id, "duty", {"on": on})
    return _row(user, person_id)
