"""Staff accounts: list, add and change them within an admin's scope (docs/admin-api.md)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from .. import audit, store
from ..auth import hash_password
from ..extensions import db
from ..messages import Message
from ..models import STAFF_ROLES, User
from .rules import (
    AdminConflict,
    AdminForbidden,
    AdminNotFound,
    invalid,
    password_problem,
    role_problem,
    username_problem,
)

log = logging.getLogger(__name__)

CREATE_FIELDS = ("username", "password", "role", "unit_id")
PATCH_FIELDS = ("role", "unit_id", "active", "password")


def user_json(row: Any) -> dict[str, Any]:
    """Return a row of store.accounts.users_in_scope as the API's USER."""
    values = row._asdict()
    values["created_at"] = values["created_at"].isoformat()
    return values


def _admin_only(actor: User) -> None:
    """Refuse anyone but an admin."""
    if actor.role != "admin":
        raise AdminForbidden("role: needs admin")


def _body(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """Return the body, refusing one that is not an object or has unknown fields."""
    if not isinstance(body, dict):
        raise invalid("body", Message("must be a JSON object"))
    for field in body:
        if field not in allowed:
            raise invalid(
                str(field)[:64],
                Message("unknown field; allowed: %(fields)s", fields=", ".join(allowed)),
            )
    return body


def _unit(actor: User, value: Any) -> int | None:
    """Return a staff account's unit checked: in the admin's scope (required if scoped)."""
    if value is None:
        if actor.unit_id is not None:
            raise invalid(
                "unit_id",
                Message(
                    "must be a unit in your scope (your account is limited to unit %(unit_id)s)",
                    unit_id=actor.unit_id,
                ),
            )
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("unit_id", Message("must be a unit id or null"))
    if store.people.unit_kind(db.session, value) is None:
        raise invalid("unit_id", Message("no unit with id %(unit_id)s", unit_id=value))
    if not store.people.unit_managed(db.session, actor, value):
        raise AdminForbidden(
            "%(field)s: unit %(unit_id)s is outside your scope", field="unit_id", unit_id=value
        )
    return value


def _checked(actor: User, field: str, value: Any) -> Any:
    """Return one field of a staff account checked, or raise the rule it breaks."""
    problem: Message | None = None
    if field == "username":
        problem = username_problem(value)
    elif field == "password":
        problem = password_problem(value)
    elif field == "role":
        problem = role_problem(value, STAFF_ROLES)
    elif field == "active" and not isinstance(value, bool):
        problem = Message("must be true or false")
    elif field == "unit_id":
        return _unit(actor, value)
    if problem is not None:
        raise invalid(field, problem)
    return value


def _row(actor: User, user_id: int) -> dict[str, Any]:
    """Return the USER of an account the admin manages."""
    return user_json(db.session.execute(store.accounts.users_in_scope(actor, user_id)).one())


def users(actor: User) -> list[dict[str, Any]]:
    """Return the USERs the admin manages."""
    _admin_only(actor)
    return [user_json(r) for r in db.session.execute(store.accounts.users_in_scope(actor))]


def create(actor: User, body: Any) -> dict[str, Any]:
    """Add a staff account and commit; return the USER.

    Raises:
        AdminError: not an admin (403), a field breaks a rule (400), the unit is outside
            the scope (403), or the user name is taken (409).
    """
    _admin_only(actor)
    body = _body(body, CREATE_FIELDS)
    for required in ("username", "password", "role"):
        if required not in body:
            raise invalid(required, Message("is required"))
    values = {f: _checked(actor, f, body.get(f)) for f in CREATE_FIELDS}
    taken = AdminConflict(
        "%(field)s: a staff account named %(username)r already exists",
        field="username",
        username=values["username"],
    )
    if store.accounts.user_by_username(db.session, values["username"]) is not None:
        raise taken
    try:
        added = store.accounts.add_user(
            db.session,
            values["username"],
            hash_password(values["password"]),
            values["role"],
            values["unit_id"],
        )
    except IntegrityError:
        db.session.rollback()  # added by someone else meanwhile
        raise taken from None
    after = {"username": added.username, "role": added.role, "unit_id": added.unit_id}
    audit.record("user.create", "user", added.id, None, after)
    db.session.commit()
    log.info("user %s added user %s", actor.username, added.username)
    return _row(actor, added.id)


def update(actor: User, user_id: int, body: Any) -> dict[str, Any]:
    """Change a staff account and commit; `active: false` or a password ends its sessions.

    Raises:
        AdminError: not an admin (403), unknown or outside the scope (404), a field breaks
            a rule (400), or the new unit is outside the scope (403).
    """
    _admin_only(actor)
    target = store.accounts.staff_account_in_scope(db.session, actor, user_id)
    if target is None:
        raise AdminNotFound("user: not found")
    body = _body(body, PATCH_FIELDS)
    values = {f: _checked(actor, f, body[f]) for f in PATCH_FIELDS if f in body}
    if target.id == actor.id and (
        values.get("active") is False or values.get("role", "admin") != "admin"
    ):
        field = "active" if values.get("active") is False else "role"
        raise invalid(field, Message("you cannot disable or demote your own account"))
    changed(target, values)
    db.session.commit()
    return _row(actor, user_id)


def changed(target: User, values: dict[str, Any]) -> int:
    """Apply checked changes to a staff account in the caller's transaction, audited.

    Returns:
        How many open sessions were ended (a new password, or disabled).
    """
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field in ("role", "unit_id", "active"):
        if field in values and getattr(target, field) != values[field]:
            before[field], after[field] = getattr(target, field), values[field]
            setattr(target, field, values[field])
    ended = 0
    if "password" in values:
        target.password_hash = hash_password(values["password"])
        after["password_changed"] = True
        ended = store.accounts.end_user_sessions(db.session, target.id, "password")
    if after.get("active") is False:
        ended += store.accounts.end_user_sessions(db.session, target.id, "disabled")
    if after:
        db.session.flush()
        audit.record("user.update", "user", target.id, before, after)
    return ended
