"""Record who changed what, when, from where, with the values before and after.

Call record() inside the transaction of the change, before its commit: the audit row and
the change are stored together or not at all. Staff requests are attributed to the
logged-in account and the client's address; anything else (the CLI, background jobs) to
`cli:<operating-system user>`.
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
