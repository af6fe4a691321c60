"""Socket.IO rooms that carry the scope of command-centre viewers.

A viewer joins exactly one room when it connects: `scope:all` for an admin or an account
without a unit, otherwise `scope:unit:<id>` for its own unit. Anything about a person is
emitted to `scope:all` and to the room of the person's unit and of every unit above it,
so each viewer receives what its scope covers and nothing else. Rooms work unchanged
across processes through the Socket.IO message queue.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from .. import store
from ..models import User

ALL = "scope:all"


def unit_room(unit_id: int) -> str:
    """Return the room of the viewers scoped to a unit."""
    return f"scope:unit:{unit_id}"


def viewer_room(user: User) -> str:
    """Return the one room a staff account's live connection joins."""
    if user.unit_id is None:
        return ALL
    return unit_room(user.unit_id)


def rooms_for_unit(session: Session, unit_id: int | None) -> list[str]:
    """Return the rooms that may see people of a unit (None: people without a unit)."""
    if unit_id is None:
        return [ALL]
    return [ALL, *(unit_room(uid) for uid in store.scope.unit_ancestors(session, unit_id))]


def rooms_for_person(session: Session, person_id: int) -> list[str]:
    """Return the rooms that may see a person."""
    return rooms_for_unit(session, store.people.person_unit(session, person_id))
