"""Erase a person: their whereabouts go, their name is replaced, the erasure is recorded.

What is kept: the person row (incidents and tasks point to it) holding only a pseudonym,
deactivated; incidents and their history with the name replaced; the audit rows about
them with the name replaced; and the audit row of the erasure itself, which says who
erased whom and when, and how much went.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from .. import audit, store

log = logging.getLogger(__name__)


def pseudonym(person_id: int) -> str:
    """Return what stands for an erased person's name."""
    return f"erased-{person_id}"


def erase(session: Session, person_id: int) -> dict[str, Any] | None:
    """Erase a person in the caller's transaction, with its audit row; the caller commits.

    Args:
        session: a session (the app's db.session, which audit.record() writes to).
        person_id: the person.

    Returns:
        How many rows of each kind were deleted or rewritten, or None if no such person.
    """
    counts = store.privacy.erase_person(session, person_id, pseudonym(person_id))
    if counts is None:
        return None
    # Recorded after the rewrite, so it keeps nothing but the pseudonym and the counts.
    audit.record("person.erase", "person", person_id, None, {"erased": counts})
    log.info("person %d erased: %s", person_id, counts)
    return counts
