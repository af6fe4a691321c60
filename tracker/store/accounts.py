"""Staff accounts and their login sessions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..models import (
    StaffSession,
    Unit,
    User,
)
from .scope import unit_subtree


def add_user(
    session: Session, username: str, password_hash: str, role: str, unit_id: int | None
) -> User:
    """Add a staff account."""
    user = User(username=username, password_hash=password_hash, role=role, unit_id=unit_id)
    session.add(user)
    session.flush()
    return user


def user_by_username(session: Session, username: str) -> User | None:
    """Return the staff account with this user name."""
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def start_staff_session(session: Session, user_id: int, token_hash: str) -> StaffSession:
    """Record a new login of a staff account.

    Args:
        session: a session; the caller commits.
        user_id: the account.
        token_hash: the SHA-256 hex digest of the token the cookie carries.

    Returns:
        The new session row.
    """
    row = StaffSession(user_id=user_id, token_hash=token_hash)
    session.add(row)
    session.flush()
    return row


def user_of_staff_session(session: Session, token_hash: str, oldest: datetime) -> User | None:
    """Return the active account of an open login that started after `oldest`, if any.

    Args:
        session: a session.
        token_hash: the SHA-256 hex digest of the cookie's token.
        oldest: logins that started before this have expired.

    Returns:
        The account, or None for an unknown, ended or expired login or a disabled account.
    """
    return session.execute(
        select(User)
        .join(StaffSession, StaffSession.user_id == User.id)
        .where(
            StaffSession.token_hash == token_hash,
            StaffSession.ended_at.is_(None),
            StaffSession.created_at >= oldest,
            User.active.is_(True),
        )
    ).scalar_one_or_none()


def end_staff_session(session: Session, token_hash: str, reason: str) -> bool:
    """End one login; return whether it was open. The caller commits."""
    ended = session.execute(
        update(StaffSession)
        .where(StaffSession.token_hash == token_hash, StaffSession.ended_at.is_(None))
        .values(ended_at=func.now(), end_reason=reason)
        .returning(StaffSession.id)
    ).first()
    return ended is not None


def end_expired_staff_sessions(
    session: Session, oldest: datetime, token_hash: str | None = None
) -> list[tuple[int, str]]:
    """End the open logins that started before `oldest` (one, or all); the caller commits.

    An expired login is refused whether or not its row is ended; ending it records when
    and why, once, for the audit trail.

    Args:
        session: a session.
        oldest: logins that started before this have expired.
        token_hash: only this login (a request that presented it), or every expired one.

    Returns:
        (user id, user name) of each login ended.
    """
    ended = (
        update(StaffSession)
        .where(StaffSession.ended_at.is_(None), StaffSession.created_at < oldest)
        .values(ended_at=func.now(), end_reason="expired")
        .returning(StaffSession.user_id)
    )
    if token_hash is not None:
        ended = ended.where(StaffSession.token_hash == token_hash)
    user_ids = [row.user_id for row in session.execute(ended)]
    if not user_ids:
        return []
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all())
    return [(user_id, names.get(user_id, "")) for user_id in user_ids]


def end_user_sessions(session: Session, user_id: int, reason: str) -> int:
    """End every open login of an account; return how many there were. The caller commits."""
    ended = session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
        .values(ended_at=func.now(), end_reason=reason)
        .returning(StaffSession.id)
    ).all()
    return len(ended)


def open_staff_sessions(
    session: Session, token_hashes: Iterable[str], oldest: datetime
) -> set[str]:
    """Return those of the logins that are still open, unexpired and of an active account.

    Args:
        session: a session.
        token_hashes: the logins behind open /live connections.
        oldest: logins that started before this have expired.

    Returns:
        The token hashes that may go on.
    """
    wanted = sorted(set(token_hashes))
    if not wanted:
        return set()
    return set(
        session.execute(
            select(StaffSession.token_hash)
            .join(User, User.id == StaffSession.user_id)
            .where(
                StaffSession.token_hash.in_(wanted),
                StaffSession.ended_at.is_(None),
                StaffSession.created_at >= oldest,
                User.active.is_(True),
            )
        ).scalars()
    )


def staff_account_in_scope(session: Session, actor: User, user_id: int) -> User | None:
    """Return the staff account `user_id` if `actor` may manage it, else None.

    An account without a unit manages every account; one with a unit manages the accounts
    of that unit and the units below it.
    """
    stmt = select(User).where(User.id == user_id)
    if actor.unit_id is not None:
        stmt = stmt.where(User.unit_id.in_(select(unit_subtree(actor.unit_id).c.id)))
    return session.execute(stmt).scalar_one_or_none()


def users_in_scope(actor: User, user_id: int | None = None) -> Select[Any]:
    """Return a select of the staff accounts `actor` manages, one row per USER of the API.

    Args:
        actor: the account; one with a unit manages the accounts of that unit and below.
        user_id: only this account, if given.

    Returns:
        A select() of id, username, role, unit_id, unit_name, active, created_at and
        open_sessions (logins not ended), ordered by user name.
    """
    open_sessions = (
        select(func.count(StaffSession.id))
        .where(StaffSession.user_id == User.id, StaffSession.ended_at.is_(None))
        .scalar_subquery()
    )
    stmt = (
        select(
            User.id,
            User.username,
            User.role,
            User.unit_id,
            Unit.name.label("unit_name"),
            User.active,
            User.created_at,
            open_sessions.label("open_sessions"),
        )
        .outerjoin(Unit, Unit.id == User.unit_id)
        .order_by(User.username)
    )
    if actor.unit_id is not None:
        stmt = stmt.where(User.unit_id.in_(select(unit_subtree(actor.unit_id).c.id)))
    if user_id is not None:
        stmt = stmt.where(User.id == user_id)
    return stmt
