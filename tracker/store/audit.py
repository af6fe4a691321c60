"""The audit trail: one append-only table of changes (and, later, of reads)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..models import AuditEvent


def add_audit_event(
    session: Session,
    *,
    actor_id: int | None,
    actor_name: str,
    address: str | None,
    action: str,
    target_kind: str,
    target_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Add one audit row in the caller's transaction (it commits with the change)."""
    session.add(
        AuditEvent(
            actor_id=actor_id,
            actor_name=actor_name,
            address=address,
            action=action,
            target_kind=target_kind,
            target_id=target_id,
            before=before,
            after=after,
        )
    )
