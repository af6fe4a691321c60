"""Record who changed or read what, when, from where, with the values before and after.

Call record() inside the transaction of the change, before its commit: the audit row and
the change are stored together or not at all. Call record_read() when a staff account
reads a person's whereabouts (a track, an export, a replay, a report): it is stored in its
own short transaction, so a read that changes nothing still leaves its trace. Staff
requests are attributed to the logged-in account and the client's address; anything else
(the CLI, background jobs) to `cli:<operating-system user>`.
"""

from __future__ import annotations

import getpass
from datetime import date, datetime
from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from . import store
from .extensions import db


def _json_ready(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return values with dates as ISO text, so they can be stored as JSON."""
    if values is None:
        return None
    return {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in values.items()}


def _actor() -> tuple[int | None, str, str | None]:
    """Return (user id, name, address) of whoever makes the current change."""
    if has_request_context() and current_user.is_authenticated:
        return current_user.id, current_user.username, request.remote_addr
    if has_request_context():
        return None, "anonymous", request.remote_addr
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return None, f"cli:{who}"[:64], None


def record(
    action: str,
    target_kind: str,
    target_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add an audit row for a change, in the change's transaction.

    Args:
        action: what was done, as `<kind>.<verb>` (e.g. `person.update`, `device.revoke`).
        target_kind: person, device, user, unit, incident.
        target_id: the id of what changed.
        before: the changed fields' values before (None for a creation).
        after: their values after (None for a deletion).
    """
    actor_id, actor_name, address = _actor()
    store.audit.add_audit_event(
        db.session,
        actor_id=actor_id,
        actor_name=actor_name,
        address=address,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        before=_json_ready(before),
        after=_json_ready(after),
    )


def record_read(
    action: str,
    target_kind: str,
    target_id: int | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit row for a read of someone's data, committed at once on its own.

    Args:
        action: what was read, as `<kind>.<verb>` (e.g. `track.read`, `report.person_days`).
        target_kind: person, unit, incident, device, user.
        target_id: the id of whom or what was read.
        detail: the parameters of the read (period, format, radius); stored as `after`.
    """
    actor_id, actor_name, address = _actor()
    store.audit.add_event_now(
        db.engine,
        actor_id=actor_id,
        actor_name=actor_name,
        address=address,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        detail=_json_ready(detail),
    )


def record_access(
    action: str,
    *,
    user_id: int | None,
    username: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit row for a login, failed login or session end, committed at once.

    Args:
        action: `session.login`, `session.login_failed`, `session.logout`, `session.end_all`.
        user_id: the account (None when a failed login names no account).
        username: the account's name, or the name a failed login typed (cut to 64).
        detail: anything else worth keeping (why sessions ended, how many).
    """
    actor_id, actor_name, address = _actor()
    if has_request_context() and actor_id is None:
        # A failed login: the actor is whoever the login names, as typed.
        actor_id, actor_name = user_id, username[:64]
    store.audit.add_event_now(
        db.engine,
        actor_id=actor_id,
        actor_name=actor_name,
        address=address,
        action=action,
        # The target is the account's logins: `session` with the account's id, apart from
        # the `user` rows of changes to the account itself.
        target_kind="session",
        target_id=user_id,
        detail=_json_ready(detail),
    )
