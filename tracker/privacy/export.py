"""Everything stored about one person, as JSON and as GPX (PIPL art. 45: a copy on request)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy.orm import Session

from .. import store
from ..ingest import tracks

PERSON_FIELDS = (
    "id",
    "name",
    "role",
    "phone",
    "unit_id",
    "patrol_unit_id",
    "active",
    "created_at",
    "legal_basis",
    "legal_basis_at",
    "legal_basis_note",
)


def _plain(value: Any) -> Any:
    """Return a value as JSON can hold it (times as ISO-8601, addresses as text)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def person_export(session: Session, person_id: int) -> dict[str, Any] | None:
    """Return every stored row about a person, or None if there is no such person.

    Args:
        session: a session.
        person_id: the person.

    Returns:
        `person`, `positions` (every stored fix), the other tables' rows about them, and
        `audit` (who changed or read their data, and when).
    """
    person = store.privacy.person_record(session, person_id)
    if person is None:
        return None
    positions = [
        _plain(dict(row._mapping)) for row in store.privacy.person_positions(session, person_id)
    ]
    audit_rows = [
        {
            "at": event.at,
            "actor_name": event.actor_name,
            "address": event.address,
            "action": event.action,
            "target_kind": event.target_kind,
            "target_id": event.target_id,
            "before": event.before,
            "after": event.after,
        }
        for event in store.audit.events_of_person(session, person_id)
    ]
    return {
        "format": "tracker-person-export/1",
        "person": _plain({field: getattr(person, field) for field in PERSON_FIELDS}),
        "positions": positions,
        **_plain(store.privacy.person_rows(session, person_id)),
        "audit": _plain(audit_rows),
    }


def person_gpx(session: Session, person_id: int) -> str | None:
    """Return every stored fix of a person as one GPX 1.1 track, or None if no such person.

    Args:
        session: a session.
        person_id: the person.

    Returns:
        The GPX document.
    """
    person = store.privacy.person_record(session, person_id)
    if person is None:
        return None
    return tracks.write_gpx(
        f"person {person_id}", store.privacy.person_positions(session, person_id)
    )
