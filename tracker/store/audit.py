"""The audit trail: one append-only table of changes, reads and logins.

The table refuses UPDATE and DELETE (a trigger, migrations 0011 and 0012); the only ways
to remove or rewrite rows are the database functions audit_prune() (retention) and
audit_pseudonymise() (a person's erasure), called here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, func, insert, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..models import AuditEvent, Person, User
from .scope import unit_subtree


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


def add_event_now(
    engine: Engine,
    *,
    actor_id: int | None,
    actor_name: str,
    address: str | None,
    action: str,
    target_kind: str,
    target_id: int | None,
    detail: dict[str, Any] | None,
) -> None:
    """Add one audit row in its own transaction, on a connection of its own.

    For reads, logins, failed logins and session ends: the request's session is left
    alone, since the event may happen in the middle of other work, and its trace must be
    stored whether or not that work commits.
    """
    with engine.begin() as connection:
        connection.execute(
            insert(AuditEvent).values(
                actor_id=actor_id,
                actor_name=actor_name,
                address=address,
                action=action,
                target_kind=target_kind,
                target_id=target_id,
                before=None,
                after=detail,
            )
        )


def audit_trail(
    actor: User,
    *,
    person_id: int | None = None,
    actor_name: str | None = None,
    action: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    before_id: int | None = None,
) -> Select[Any]:
    """Return a select of the audit rows an admin may search, newest first.

    Args:
        actor: the admin; one with a unit sees the rows made by accounts of that unit and
            below, and the rows about people of that unit and below.
        person_id: only rows about this person (as the target, or among a replay's people).
        actor_name: only rows made by this staff account (its user name, or `cli:...`).
        action: only this action (`track.read`), or every action of a kind (`track.`).
        start: only rows at or after this time.
        end: only rows before this time.
        before_id: only rows older than this id (the next page).

    Returns:
        A select() of AuditEvent rows, ordered by id descending.
    """
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc())
    if actor.unit_id is not None:
        subtree = select(unit_subtree(actor.unit_id).c.id)
        stmt = stmt.where(
            or_(
                AuditEvent.actor_id.in_(select(User.id).where(User.unit_id.in_(subtree))),
                (AuditEvent.target_kind == "person")
                & AuditEvent.target_id.in_(select(Person.id).where(Person.unit_id.in_(subtree))),
            )
        )
    if person_id is not None:
        stmt = stmt.where(about_person(person_id))
    if actor_name is not None:
        stmt = stmt.where(AuditEvent.actor_name == actor_name)
    if action is not None:
        if action.endswith("."):
            stmt = stmt.where(AuditEvent.action.startswith(action, autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == action)
    if start is not None:
        stmt = stmt.where(AuditEvent.at >= start)
    if end is not None:
        stmt = stmt.where(AuditEvent.at < end)
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)
    return stmt


def about_person(person_id: int) -> Any:
    """Return a filter keeping the audit rows about one person.

    Args:
        person_id: the person.

    Returns:
        A clause: the person is the target, or one of the people a replay showed.
    """
    return or_(
        (AuditEvent.target_kind == "person") & (AuditEvent.target_id == person_id),
        AuditEvent.after.contains({"person_ids": [person_id]}),
    )


def prune_audit(conn: Connection | Session, older_than: datetime) -> int:
    """Delete audit rows older than a time, through the one function the trigger allows.

    Args:
        conn: a connection or session; the caller commits.
        older_than: rows before this time go.

    Returns:
        How many rows were deleted.
    """
    return int(conn.execute(select(func.audit_prune(older_than))).scalar_one())


def pseudonymise_person(conn: Connection | Session, person_id: int, pseudonym: str) -> int:
    """Replace a person's name in the audit rows about them, through audit_pseudonymise().

    Args:
        conn: a connection or session; the caller commits.
        person_id: the erased person.
        pseudonym: what stands for their name from now on.

    Returns:
        How many rows were rewritten.
    """
    return int(conn.execute(select(func.audit_pseudonymise(person_id, pseudonym))).scalar_one())


def events_of_person(session: Session, person_id: int) -> Iterable[AuditEvent]:
    """Return every audit row about a person, oldest first (for their export).

    Args:
        session: a session.
        person_id: the person.

    Returns:
        AuditEvent rows.
    """
    return (
        session.execute(select(AuditEvent).where(about_person(person_id)).order_by(AuditEvent.id))
        .scalars()
        .all()
    )


def count_events(session: Session, person_id: int | None = None) -> int:
    """Return how many audit rows there are (about one person, if given)."""
    stmt = select(func.count()).select_from(AuditEvent)
    if person_id is not None:
        stmt = stmt.where(about_person(person_id))
    return int(session.execute(stmt).scalar_one())
