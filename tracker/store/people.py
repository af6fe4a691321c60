"""People, units and shifts."""

from __future__ import annotations

from sqlalchemy import (
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..models import (
    Person,
    Shift,
    Unit,
)


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


def close_shift(session: Session, person_id: int) -> Shift | None:
    """End the person's open shift, if any, and return it."""
    shift = session.execute(
        select(Shift)
        .where(Shift.person_id == person_id, Shift.ended_at.is_(None))
        .with_for_update()
    ).scalar_one_or_none()
    if shift is not None:
        shift.ended_at = session.execute(select(func.now())).scalar_one()
        session.flush()
    return shift


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
