"""Dispatch: incidents, tasks, their history, and the nearest people to a point."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..models import (
    Incident,
    IncidentEvent,
    LatestPosition,
    Person,
    Task,
    User,
)
from .latest import _person_with_fix
from .scope import in_scope, on_duty_clause, unit_subtree


def nearest_people(
    user: User, lat: float, lon: float, limit: int, fresh_since: datetime
) -> Select[Any]:
    """Return a select of on-duty people in scope with a recent fix, nearest first.

    Ordering uses the GiST index on geography(geom) (a true k-nearest-neighbour search on
    the sphere); the distance reported is geodesic on the WGS-84 spheroid. Sphere and
    spheroid can disagree on near ties, so callers ask for a few more rows than they show
    and re-sort by `distance_m`.

    Args:
        user: the staff account whose scope applies.
        lat: the incident's latitude.
        lon: the incident's longitude.
        limit: how many rows.
        fresh_since: fixes older than this count as stale.

    Returns:
        A select() of rows: person_id, name, role, unit_id, ts, lat, lon, distance_m.
    """
    target = func.geography(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326))
    geog = func.geography(LatestPosition.geom)
    on_duty = on_duty_clause(Person.id)
    return (
        select(*_person_with_fix(), func.ST_Distance(geog, target).label("distance_m"))
        .join(Person, Person.id == LatestPosition.person_id)
        .where(
            on_duty,
            Person.active.is_(True),
            LatestPosition.ts >= fresh_since,
            in_scope(user, Person.id),
        )
        .order_by(geog.op("<->")(target))
        .limit(limit)
    )


def add_incident(
    session: Session, user: User, lat: float, lon: float, description: str
) -> Incident:
    """Create an incident at a point, in the creating account's unit; log its creation."""
    incident = Incident(
        geom=func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326),
        description=description,
        unit_id=user.unit_id if user.role != "admin" else None,
        created_by=user.id,
    )
    session.add(incident)
    session.flush()
    session.add(IncidentEvent(incident_id=incident.id, kind="created", user_id=user.id))
    return incident


def incidents_for(user: User) -> Select[Any]:
    """Return a select of the incidents a staff account may see, newest first."""
    stmt = select(
        Incident.id,
        Incident.description,
        Incident.status,
        Incident.unit_id,
        Incident.created_at,
        func.ST_Y(Incident.geom).label("lat"),
        func.ST_X(Incident.geom).label("lon"),
    ).order_by(Incident.created_at.desc(), Incident.id.desc())
    if user.role != "admin" and user.unit_id is not None:
        stmt = stmt.where(Incident.unit_id.in_(select(unit_subtree(user.unit_id).c.id)))
    return stmt


def incident_tasks(session: Session, incident_id: int) -> list[Any]:
    """Return an incident's tasks with the assignees' names, in assignment order."""
    return list(
        session.execute(
            select(
                Task.id,
                Task.person_id,
                Person.name,
                Task.status,
                Task.assigned_at,
                Task.distance_m,
            )
            .join(Person, Person.id == Task.person_id)
            .where(Task.incident_id == incident_id)
            .order_by(Task.id)
        )
    )


def incident_history(session: Session, incident_id: int) -> list[Any]:
    """Return an incident's events in time order, naming who did each."""
    return list(
        session.execute(
            select(
                IncidentEvent.at,
                IncidentEvent.kind,
                IncidentEvent.person_id,
                Person.name.label("person_name"),
                User.username,
            )
            .outerjoin(Person, Person.id == IncidentEvent.person_id)
            .outerjoin(User, User.id == IncidentEvent.user_id)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.at, IncidentEvent.id)
        )
    )


def add_task(
    session: Session, incident: Incident, person_id: int, user: User, distance_m: float | None
) -> Task | None:
    """Send a person to an incident; None if they already have a task for it."""
    stmt = (
        pg_insert(Task)
        .values(
            incident_id=incident.id,
            person_id=person_id,
            assigned_by=user.id,
            distance_m=distance_m,
        )
        .on_conflict_do_nothing(constraint="uq_tasks_incident_person")
        .returning(Task.id)
    )
    task_id = session.execute(stmt).scalar()
    if task_id is None:
        return None
    session.add(
        IncidentEvent(
            incident_id=incident.id, kind="assigned", person_id=person_id, user_id=user.id
        )
    )
    if incident.status == "open":
        incident.status = "assigned"
    session.flush()
    return session.get(Task, task_id)


def person_task(session: Session, person_id: int, task_id: int) -> Task | None:
    """Return a task of this person, locked for update."""
    return session.execute(
        select(Task).where(Task.id == task_id, Task.person_id == person_id).with_for_update()
    ).scalar_one_or_none()


def advance_task(session: Session, task: Task, status: str) -> Incident:
    """Move a task to `accepted` or `done`, log it, and roll the incident's status up."""
    task.status = status
    session.add(IncidentEvent(incident_id=task.incident_id, kind=status, person_id=task.person_id))
    session.flush()
    incident = session.execute(
        select(Incident).where(Incident.id == task.incident_id).with_for_update()
    ).scalar_one()
    statuses = set(
        session.execute(select(Task.status).where(Task.incident_id == incident.id)).scalars()
    )
    if statuses == {"done"}:
        incident.status = "done"
    elif statuses & {"accepted", "done"}:
        incident.status = "accepted"
    session.flush()
    return incident


def incident_point(session: Session, incident_id: int) -> tuple[float, float]:
    """Return an incident's (lat, lon)."""
    row = session.execute(
        select(func.ST_Y(Incident.geom), func.ST_X(Incident.geom)).where(Incident.id == incident_id)
    ).one()
    return row[0], row[1]
