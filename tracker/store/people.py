"""People, units and shifts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..models import Device, LatestPosition, Person, Shift, Unit


def add_unit(
    session: Session, name: str, kind: str, parent_id: int | None, boundary_wkt: str | None
) -> Unit:
    """Add a unit; the boundary, if given, is WKT in EPSG:4326 coerced to MultiPolygon."""
    unit = Unit(name=name, kind=kind, parent_id=parent_id)
    if boundary_wkt is not None:
        unit.boundary = func.ST_Multi(func.ST_GeomFromText(boundary_wkt, 4326))
    session.add(unit)
    session.flush()
    return unit


def add_person(
    session: Session, name: str, role: str, unit_id: int | None, phone: str | None
) -> Person:
    """Add a person."""
    person = Person(name=name, role=role, unit_id=unit_id, phone=phone)
    session.add(person)
    session.flush()
    return person


def open_shift(session: Session, person_id: int) -> Shift:
    """Return the person's open shift, starting one if they are off duty."""
    shift = session.execute(
        select(Shift).where(Shift.person_id == person_id, Shift.ended_at.is_(None))
    ).scalar_one_or_none()
    if shift is None:
        shift = Shift(person_id=person_id)
        session.add(shift)
        session.flush()
        session.refresh(shift)
    return shift


def close_shift(session: Session, person_id: int, reason: str = "phone") -> Shift | None:
    """End the person's open shift, if any, saying why, and return it."""
    shift = session.execute(
        select(Shift)
        .where(Shift.person_id == person_id, Shift.ended_at.is_(None))
        .with_for_update()
    ).scalar_one_or_none()
    if shift is not None:
        shift.ended_at = session.execute(select(func.now())).scalar_one()
        shift.end_reason = reason
        session.flush()
    return shift


def close_idle_shifts(session: Session, now: datetime, idle_since: datetime) -> list[Any]:
    """Close the open shifts with no fix and no connected phone since `idle_since`.

    A shift's last sign of life is the newest of: its start, the person's newest fix, and
    the last time a socket of one of their devices was connected (refreshed while it stays
    connected). A person whose browser closed, or whose phone died, stays on duty no longer
    than SHIFT_IDLE_CLOSE_S.

    Args:
        session: the session (the caller commits).
        now: the time written as the shift's end (tests inject it).
        idle_since: shifts with no sign of life after this are closed.

    Returns:
        Rows (shift_id, person_id) of the shifts closed.
    """
    last_fix = (
        select(func.max(LatestPosition.ts))
        .where(LatestPosition.person_id == Shift.person_id)
        .scalar_subquery()
    )
    last_socket = (
        select(func.max(Device.last_socket_at))
        .where(Device.person_id == Shift.person_id)
        .scalar_subquery()
    )
    last_sign = func.greatest(Shift.started_at, last_fix, last_socket)
    return list(
        session.execute(
            update(Shift)
            .where(Shift.ended_at.is_(None), last_sign < idle_since)
            .values(ended_at=now, end_reason="silent")
            .returning(Shift.id.label("shift_id"), Shift.person_id)
            .execution_options(synchronize_session=False)
        )
    )


def person_unit(session: Session, person_id: int) -> int | None:
    """Return the unit a person belongs to, if any."""
    return session.execute(select(Person.unit_id).where(Person.id == person_id)).scalar()


def assign_patrol_unit(session: Session, person_id: int, unit_id: int | None) -> bool:
    """Assign a person to a grid (None clears it); return False if no such person."""
    result = session.execute(
        update(Person).where(Person.id == person_id).values(patrol_unit_id=unit_id)
    )
    return result.rowcount == 1


def person_by_name(session: Session, name: str) -> Person | None:
    """Return the first person with exactly this name."""
    return session.execute(
        select(Person).where(Person.name == name).order_by(Person.id).limit(1)
    ).scalar_one_or_none()


def set_person_active(session: Session, person_id: int, active: bool) -> bool:
    """Deactivate or reactivate a person; return False if nothing changed."""
    result = session.execute(
        update(Person)
        .where(Person.id == person_id, Person.active.is_(not active))
        .values(active=active)
    )
    return result.rowcount == 1
