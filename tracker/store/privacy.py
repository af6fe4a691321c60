"""Privacy: tracking policies, legal bases, retention by data class, export and erasure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..models import (
    Alert,
    Device,
    Incident,
    IncidentEvent,
    LatestPosition,
    Person,
    Position,
    ReportPersonDay,
    Shift,
    Task,
    Unit,
    WatchState,
)
from .audit import pseudonymise_person


def ping(session: Session) -> None:
    """Ask the database the cheapest question, raising if it does not answer.

    Args:
        session: a session.
    """
    session.execute(text("SELECT 1")).scalar_one()


def schema_revision(session: Session) -> str | None:
    """Return the Alembic revision the database is at, or None before the first migration.

    Args:
        session: a session.

    Returns:
        The revision id.
    """
    exists = session.execute(text("SELECT to_regclass('alembic_version')")).scalar()
    if exists is None:
        return None
    return session.execute(text("SELECT version_num FROM alembic_version")).scalar()


# --- tracking policies -----------------------------------------------------------------


def unit_policies(session: Session) -> Sequence[Any]:
    """Return every unit's own tracking settings (NULL where it inherits).

    Args:
        session: a session.

    Returns:
        Rows of id, parent_id, tracking_policy, duty_start, duty_end, live_shows_off_duty.
    """
    return session.execute(
        select(
            Unit.id,
            Unit.parent_id,
            Unit.tracking_policy,
            Unit.duty_start,
            Unit.duty_end,
            Unit.live_shows_off_duty,
        )
    ).all()


def people_units(session: Session) -> dict[int, int | None]:
    """Return every person's unit.

    Args:
        session: a session.

    Returns:
        person id -> unit id (None for people without a unit).
    """
    return dict(session.execute(select(Person.id, Person.unit_id)).tuples().all())


def on_duty_people(session: Session) -> set[int]:
    """Return the ids of the people with an open shift.

    Args:
        session: a session.

    Returns:
        The set of person ids.
    """
    return set(session.execute(select(Shift.person_id).where(Shift.ended_at.is_(None))).scalars())


# A shift's (start, end).
Span = tuple[datetime, datetime]


def ended_shifts(session: Session, ended_after: datetime) -> dict[int, list[Span]]:
    """Return the shifts that ended after `ended_after`: person id -> [(start, end)].

    Args:
        session: a session.
        ended_after: the oldest end wanted.
    """
    shifts: dict[int, list[Span]] = {}
    rows = session.execute(
        select(Shift.person_id, Shift.started_at, Shift.ended_at).where(
            Shift.ended_at > ended_after
        )
    )
    for person_id, started_at, ended_at in rows:
        shifts.setdefault(person_id, []).append((started_at, ended_at))
    return shifts


def is_on_duty(session: Session, person_id: int) -> bool:
    """Return whether a person has an open shift.

    Args:
        session: a session.
        person_id: the person.

    Returns:
        True while they are on duty.
    """
    open_shift = select(Shift.id).where(Shift.person_id == person_id, Shift.ended_at.is_(None))
    return session.execute(open_shift.limit(1)).first() is not None


def set_unit_policy(
    session: Session,
    unit_id: int,
    tracking_policy: str | None,
    duty_start: time | None,
    duty_end: time | None,
    live_shows_off_duty: bool | None,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Set a unit's tracking settings; return them before and after, or None if no such unit.

    Args:
        session: a session; the caller commits.
        unit_id: the unit.
        tracking_policy: `always`, `on_duty`, `duty_hours`, or None to inherit.
        duty_start: start of the duty hours (local time), for `duty_hours`.
        duty_end: their end; before duty_start means they pass midnight.
        live_shows_off_duty: whether the live map shows its off-duty people; None inherits.

    Returns:
        The four settings as they were and as they are, or None when there is no such unit.
    """
    unit = session.get(Unit, unit_id)
    if unit is None:
        return None
    before = unit_policy_json(unit)
    unit.tracking_policy = tracking_policy
    unit.duty_start = duty_start
    unit.duty_end = duty_end
    unit.live_shows_off_duty = live_shows_off_duty
    session.flush()
    return before, unit_policy_json(unit)


def unit_policy_json(unit: Unit) -> dict[str, Any]:
    """Return a unit's own tracking settings as JSON-ready values."""
    return {
        "tracking_policy": unit.tracking_policy,
        "duty_start": unit.duty_start.isoformat("minutes") if unit.duty_start else None,
        "duty_end": unit.duty_end.isoformat("minutes") if unit.duty_end else None,
        "live_shows_off_duty": unit.live_shows_off_duty,
    }


def set_legal_basis(
    session: Session, person_id: int, basis: str | None, note: str | None, at: datetime | None
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Record a person's legal basis for tracking; return it before and after, or None.

    Args:
        session: a session; the caller commits.
        person_id: the person.
        basis: one of the PIPL bases (models.Person), or None to clear it.
        note: what it rests on (a signed form's number, the duty roster's name).
        at: when it was given; None with a basis means now.

    Returns:
        The basis, its date and note as they were and as they are, or None when there is no
        such person.
    """
    person = session.get(Person, person_id)
    if person is None:
        return None
    before = _legal_basis_json(person)
    person.legal_basis = basis
    person.legal_basis_note = note
    person.legal_basis_at = (
        None if basis is None else at or session.execute(select(func.now())).scalar_one()
    )
    session.flush()
    return before, _legal_basis_json(person)


def _legal_basis_json(person: Person) -> dict[str, Any]:
    """Return a person's legal basis, its date and note."""
    return {
        "legal_basis": person.legal_basis,
        "legal_basis_at": person.legal_basis_at.isoformat() if person.legal_basis_at else None,
        "legal_basis_note": person.legal_basis_note,
    }


# --- retention by data class -------------------------------------------------------------


def prune_alerts(conn: Connection | Session, older_than: datetime) -> int:
    """Delete alerts raised before a time.

    Args:
        conn: a connection or session; the caller commits.
        older_than: alerts whose `ts` is before this go.

    Returns:
        How many were deleted.
    """
    result = conn.execute(delete(Alert).where(Alert.ts < older_than))
    return int(result.rowcount or 0)


def prune_incidents(conn: Connection | Session, older_than: datetime) -> int:
    """Delete incidents that ended (or, if never ended, began) before a time.

    Their tasks, history and photo rows go with them (ON DELETE CASCADE); the photo files
    are left to tracker.media.

    Args:
        conn: a connection or session; the caller commits.
        older_than: the limit.

    Returns:
        How many incidents were deleted.
    """
    ended = func.coalesce(Incident.closed_at, Incident.handled_at, Incident.created_at)
    result = conn.execute(delete(Incident).where(ended < older_than))
    return int(result.rowcount or 0)


# --- a person's data -----------------------------------------------------------------------


def person_record(session: Session, person_id: int) -> Person | None:
    """Return a person's own row.

    Args:
        session: a session.
        person_id: the person.

    Returns:
        The Person, or None.
    """
    return session.get(Person, person_id)


def person_positions(session: Session, person_id: int) -> Sequence[Any]:
    """Return every stored fix of a person, oldest first.

    Args:
        session: a session.
        person_id: the person.

    Returns:
        Rows of ts, received_at, device_id, lat, lon, accuracy_m, altitude_m, speed_mps,
        heading_deg, battery.
    """
    return session.execute(
        select(
            Position.ts,
            Position.received_at,
            Position.device_id,
            func.ST_Y(Position.geom).label("lat"),
            func.ST_X(Position.geom).label("lon"),
            Position.accuracy_m,
            Position.altitude_m,
            Position.speed_mps,
            Position.heading_deg,
            Position.battery,
        )
        .where(Position.person_id == person_id)
        .order_by(Position.ts, Position.device_id)
    ).all()


def person_rows(session: Session, person_id: int) -> dict[str, list[dict[str, Any]]]:
    """Return everything else stored about a person, table by table, as plain values.

    Args:
        session: a session.
        person_id: the person.

    Returns:
        devices, shifts, alerts, tasks, incident_events and reported incidents.
    """
    tables: dict[str, Any] = {
        "devices": select(
            Device.id, Device.label, Device.client, Device.created_at, Device.last_seen_at,
            Device.revoked_at,
        ).where(Device.person_id == person_id),
        "shifts": select(Shift.id, Shift.started_at, Shift.ended_at, Shift.end_reason).where(
            Shift.person_id == person_id
        ),
        "alerts": select(
            Alert.id, Alert.kind, Alert.ts, Alert.note, Alert.details,
            func.ST_Y(Alert.geom).label("lat"), func.ST_X(Alert.geom).label("lon"),
            Alert.acknowledged_at,
        ).where(Alert.person_id == person_id),
        "tasks": select(
            Task.id, Task.incident_id, Task.status, Task.assigned_at, Task.delivered_at,
            Task.accepted_at, Task.declined_at, Task.done_at, Task.cancelled_at, Task.note,
        ).where(Task.person_id == person_id),
        "incident_events": select(
            IncidentEvent.id, IncidentEvent.incident_id, IncidentEvent.at, IncidentEvent.kind,
            IncidentEvent.note,
        ).where(IncidentEvent.person_id == person_id),
        "reported_incidents": select(
            Incident.id, Incident.description, Incident.category, Incident.status,
            Incident.created_at, func.ST_Y(Incident.geom).label("lat"),
            func.ST_X(Incident.geom).label("lon"),
        ).where(Incident.reported_by == person_id),
    }  # fmt: skip
    return {
        name: [dict(row._mapping) for row in session.execute(stmt.order_by(text("1")))]
        for name, stmt in tables.items()
    }


def erase_person(session: Session, person_id: int, pseudonym: str) -> dict[str, int] | None:
    """Erase a person's whereabouts and name; keep the bare row that incidents point to.

    Deletes their positions (every partition), newest fix, alerts, shifts, phones and the
    reports' stored person-days (which hold a track);
    replaces their name where it was written into incidents, tasks and incident history,
    and in the audit rows about them (through audit_pseudonymise()); the person row keeps
    only the pseudonym, deactivated.

    Args:
        session: a session; the caller commits (with the erasure's own audit row).
        person_id: the person.
        pseudonym: what stands for their name from now on.

    Returns:
        How many rows of each kind were deleted or rewritten, or None if no such person.
    """
    person = session.get(Person, person_id, with_for_update=True)
    if person is None:
        return None
    name = person.name
    counts: dict[str, int] = {}
    for label, stmt in (
        ("positions", delete(Position).where(Position.person_id == person_id)),
        ("latest_positions", delete(LatestPosition).where(LatestPosition.person_id == person_id)),
        ("alerts", delete(Alert).where(Alert.person_id == person_id)),
        ("shifts", delete(Shift).where(Shift.person_id == person_id)),
        ("watch_states", delete(WatchState).where(WatchState.person_id == person_id)),
        ("devices", delete(Device).where(Device.person_id == person_id)),
        # The reports' stored person-days hold the day's track.
        (
            "report_person_days",
            delete(ReportPersonDay).where(ReportPersonDay.person_id == person_id),
        ),
    ):
        counts[label] = int(session.execute(stmt).rowcount or 0)
    rewritten = 0
    # A one-character name would rewrite that character everywhere.
    if len(name) >= 2:
        for column in (Incident.description, Task.note, IncidentEvent.note):
            table = column.class_
            result = session.execute(
                update(table)
                .where(column.contains(name, autoescape=True))
                .values({column.key: func.replace(column, name, pseudonym)})
            )
            rewritten += int(result.rowcount or 0)
    counts["incident_texts"] = rewritten
    counts["audit_events"] = pseudonymise_person(session, person_id, pseudonym)
    person.name = pseudonym
    person.phone = None
    person.active = False
    person.legal_basis_note = None
    session.flush()
    return counts
