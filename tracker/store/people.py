"""People, units and shifts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, true, update
from sqlalchemy.orm import Session, aliased

from ..models import Device, LatestPosition, Person, Shift, Unit, User
from .scope import on_duty_clause, unit_subtree


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


# --- administration (docs/admin-api.md) ------------------------------------------------
# These scope every account by its unit, admins included: an admin of one street manages
# that street only. (scope.visible_people lets admins read everyone.)


def managed(user: User, unit_column: Any) -> Any:
    """Return a filter keeping rows whose unit the account manages (its unit and below).

    Args:
        user: the staff account; one without a unit manages everything.
        unit_column: the column holding a unit id.

    Returns:
        A SQL boolean expression.
    """
    if user.unit_id is None:
        return true()
    return unit_column.in_(select(unit_subtree(user.unit_id).c.id))


def unit_managed(session: Session, user: User, unit_id: int) -> bool:
    """Return whether the unit exists and the account manages it."""
    stmt = select(Unit.id).where(Unit.id == unit_id, managed(user, Unit.id))
    return session.execute(stmt).first() is not None


def managed_person(session: Session, user: User, person_id: int) -> Person | None:
    """Return the person, locked for update, if the account manages their unit."""
    return session.execute(
        select(Person)
        .where(Person.id == person_id, managed(user, Person.unit_id))
        .with_for_update(of=Person)
    ).scalar_one_or_none()


def _normal_phone_sql(column: Any) -> Any:
    """Return a phone column without spaces and dashes, as numbers are compared."""
    return func.regexp_replace(column, "[ -]", "", "g")


@dataclass(frozen=True, slots=True)
class PeopleFilter:
    """What GET /api/v1/people filters by; None means any."""

    q: str | None = None
    unit_id: int | None = None
    role: str | None = None
    on_duty: bool | None = None
    active: bool | None = None
    person_id: int | None = None


def people_rows(user: User, where: PeopleFilter) -> Select[Any]:
    """Return a select of the people the account manages, one row per PERSON of the API.

    Args:
        user: the staff account (scoped by its unit, admins included).
        where: the filters; `unit_id` includes the units below it, `q` matches a part of
            the name or the phone.

    Returns:
        A select() of id, name, role, phone, unit_id, unit_name, patrol_unit_id,
        patrol_unit_name, active, on_duty, last_fix_at, created_at and devices (the count
        of phones not revoked), ordered by name and id.
    """
    patrol = aliased(Unit)
    devices = (
        select(func.count(Device.id))
        .where(
            Device.person_id == Person.id,
            Device.revoked_at.is_(None),
            Device.label.is_distinct_from("track import"),
        )
        .scalar_subquery()
    )
    on_duty = on_duty_clause(Person.id)
    stmt = (
        select(
            Person.id,
            Person.name,
            Person.role,
            Person.phone,
            Person.unit_id,
            Unit.name.label("unit_name"),
            Person.patrol_unit_id,
            patrol.name.label("patrol_unit_name"),
            Person.active,
            on_duty.label("on_duty"),
            LatestPosition.ts.label("last_fix_at"),
            Person.created_at,
            devices.label("devices"),
        )
        .outerjoin(Unit, Unit.id == Person.unit_id)
        .outerjoin(patrol, patrol.id == Person.patrol_unit_id)
        .outerjoin(LatestPosition, LatestPosition.person_id == Person.id)
        .where(managed(user, Person.unit_id))
        .order_by(Person.name, Person.id)
    )
    if where.person_id is not None:
        stmt = stmt.where(Person.id == where.person_id)
    if where.q:
        pattern = "%" + where.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            Person.name.ilike(pattern, escape="\\")
            | _normal_phone_sql(Person.phone).ilike(pattern.replace(" ", ""), escape="\\")
        )
    if where.unit_id is not None:
        # The scope's subtree is another CTE named unit_subtree: this one needs its own name.
        stmt = stmt.where(Person.unit_id.in_(select(_named_subtree(where.unit_id).c.id)))
    if where.role is not None:
        stmt = stmt.where(Person.role == where.role)
    if where.on_duty is not None:
        stmt = stmt.where(on_duty if where.on_duty else ~on_duty)
    if where.active is not None:
        stmt = stmt.where(Person.active.is_(where.active))
    return stmt


def _named_subtree(root_id: int, name: str = "filter_subtree") -> Any:
    """Return unit_subtree under another name, for a query that already holds one."""
    units = Unit.__table__
    tree = select(units.c.id).where(units.c.id == root_id).cte(name, recursive=True)
    return tree.union_all(select(units.c.id).where(units.c.parent_id == tree.c.id))


def count_rows(session: Session, stmt: Select[Any]) -> int:
    """Return how many rows a select gives (for paging)."""
    counted = select(func.count()).select_from(stmt.order_by(None).subquery())
    return int(session.execute(counted).scalar_one())


def lock_phones(session: Session) -> None:
    """Wait for the transaction-scoped lock under which people's phone numbers change.

    No unique index guards people.phone (numbers are compared without spaces and dashes),
    so whoever checks that a number is free and then stores it holds this lock until commit.
    """
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext("tracker_people_phone"))))


def people_by_phones(session: Session, phones: Iterable[str]) -> dict[str, Person]:
    """Return the people whose phone numbers are among `phones` (without spaces and dashes).

    Args:
        session: a session.
        phones: numbers as compared (see admin.rules.normal_phone).

    Returns:
        number -> the person with it (the lowest id if, from before, several share it).
    """
    wanted = sorted(set(phones))
    if not wanted:
        return {}
    normal = _normal_phone_sql(Person.phone)
    rows = session.execute(
        select(normal.label("normal"), Person).where(normal.in_(wanted)).order_by(Person.id.desc())
    ).all()
    return {row.normal: row.Person for row in rows}


def managed_units(session: Session, user: User) -> list[Any]:
    """Return (id, name, kind) of every unit the account manages."""
    return list(
        session.execute(
            select(Unit.id, Unit.name, Unit.kind).where(managed(user, Unit.id)).order_by(Unit.id)
        )
    )


def unit_kind(session: Session, unit_id: int) -> str | None:
    """Return a unit's kind, or None if there is no such unit."""
    return session.execute(select(Unit.kind).where(Unit.id == unit_id)).scalar()
