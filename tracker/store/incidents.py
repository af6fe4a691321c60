"""Dispatch: incidents, tasks, their history, and the nearest people to a point."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, aliased

from ..models import (
    Device,
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
        A select() of rows: person_id, name, role, unit_id, ts, lat, lon, distance_m,
        reachable (whether a phone of theirs can receive tasks).
    """
    target = func.geography(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326))
    geog = func.geography(LatestPosition.geom)
    on_duty = on_duty_clause(Person.id)
    return (
        select(
            *_person_with_fix(),
            func.ST_Distance(geog, target).label("distance_m"),
            _reachable(Person.id).label("reachable"),
        )
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
    session: Session,
    user: User,
    lat: float,
    lon: float,
    description: str,
    category: str | None = None,
) -> Incident:
    """Create an incident at a point, in the creating account's unit; log its creation."""
    incident = Incident(
        geom=func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326),
        description=description,
        category=category,
        unit_id=user.unit_id,
        created_by=user.id,
    )
    session.add(incident)
    session.flush()
    session.add(IncidentEvent(incident_id=incident.id, kind="created", user_id=user.id))
    return incident


@dataclass(frozen=True)
class IncidentFilter:
    """What the incidents list may be narrowed to (every field optional)."""

    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    unit_id: int | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def _incidents() -> Select[Any]:
    """Return a select of incidents with their reporter, newest first (no scope applied)."""
    reporter = aliased(Person, name="reporter")
    return (
        select(
            Incident.id,
            Incident.description,
            Incident.category,
            Incident.status,
            Incident.unit_id,
            Incident.created_at,
            Incident.handled_at,
            Incident.closed_at,
            Incident.reported_by.label("reporter_id"),
            reporter.name.label("reporter_name"),
            func.ST_Y(Incident.geom).label("lat"),
            func.ST_X(Incident.geom).label("lon"),
        )
        .outerjoin(reporter, reporter.id == Incident.reported_by)
        .order_by(Incident.created_at.desc(), Incident.id.desc())
    )


def incident_row(session: Session, incident_id: int) -> Any:
    """Return one incident as incidents_for() lists it (the caller checked the scope)."""
    return session.execute(_incidents().where(Incident.id == incident_id)).one()


def incidents_for(user: User, where: IncidentFilter | None = None) -> Select[Any]:
    """Return a select of the incidents a staff account may see, newest first.

    Args:
        user: whose scope applies.
        where: narrower filters; a `unit_id` includes the units below it.
    """
    stmt = _incidents()
    if user.unit_id is not None:
        stmt = stmt.where(Incident.unit_id.in_(select(unit_subtree(user.unit_id).c.id)))
    if where is not None:
        if where.statuses:
            stmt = stmt.where(Incident.status.in_(where.statuses))
        if where.categories:
            stmt = stmt.where(Incident.category.in_(where.categories))
        if where.unit_id is not None:
            stmt = stmt.where(Incident.unit_id.in_(select(unit_subtree(where.unit_id).c.id)))
        if where.created_from is not None:
            stmt = stmt.where(Incident.created_at >= where.created_from)
        if where.created_to is not None:
            stmt = stmt.where(Incident.created_at < where.created_to)
    return stmt


def count_rows(session: Session, stmt: Select[Any]) -> int:
    """Return how many rows a select gives (for paging)."""
    counted = select(func.count()).select_from(stmt.order_by(None).subquery())
    return int(session.execute(counted).scalar_one())


def _reachable(person_id: Any) -> Any:
    """Whether a person has a device that can receive tasks: our web app, or not yet used.

    GPS apps report over HTTP and have no socket; a device that has never reported may
    still be opened in the web app, so it counts as reachable.
    """
    return exists().where(
        Device.person_id == person_id,
        Device.revoked_at.is_(None),
        or_(Device.client.is_(None), Device.client == "webapp"),
    )


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
                Task.delivered_at,
                Task.accepted_at,
                Task.declined_at,
                Task.done_at,
                Task.cancelled_at,
                Task.distance_m,
                Task.note,
                _reachable(Task.person_id).label("reachable"),
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
                IncidentEvent.task_id,
                IncidentEvent.note,
            )
            .outerjoin(Person, Person.id == IncidentEvent.person_id)
            .outerjoin(User, User.id == IncidentEvent.user_id)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.at, IncidentEvent.id)
        )
    )


def log_incident_event(
    session: Session,
    incident_id: int,
    kind: str,
    *,
    person_id: int | None = None,
    user_id: int | None = None,
    task_id: int | None = None,
    note: str | None = None,
) -> None:
    """Add one step to an incident's history."""
    session.add(
        IncidentEvent(
            incident_id=incident_id,
            kind=kind,
            person_id=person_id,
            user_id=user_id,
            task_id=task_id,
            note=note,
        )
    )


def add_task(
    session: Session, incident: Incident, person_id: int, user: User, distance_m: float | None
) -> Task | None:
    """Send a person to an incident; None if they already have a standing task for it.

    A person whose task for this incident was cancelled or declined is sent it again: the
    same row goes back to `sent` with its step times cleared.
    """
    stmt = (
        pg_insert(Task)
        .values(
            incident_id=incident.id,
            person_id=person_id,
            assigned_by=user.id,
            distance_m=distance_m,
        )
        .on_conflict_do_update(
            constraint="uq_tasks_incident_person",
            set_={
                "status": "sent",
                "assigned_by": user.id,
                "assigned_at": func.now(),
                "distance_m": distance_m,
                "delivered_at": None,
                "accepted_at": None,
                "declined_at": None,
                "done_at": None,
                "cancelled_at": None,
                "note": None,
                "undelivered_alerted": False,
            },
            where=Task.status.in_(("cancelled", "declined")),
        )
        .returning(Task.id)
    )
    task_id = session.execute(stmt).scalar()
    if task_id is None:
        return None
    log_incident_event(
        session, incident.id, "assigned", person_id=person_id, user_id=user.id, task_id=task_id
    )
    session.flush()
    task = session.get(Task, task_id)
    if task is not None:
        session.refresh(task)
    return task


def person_task(session: Session, person_id: int, task_id: int) -> Task | None:
    """Return a task of this person, locked for update."""
    return session.execute(
        select(Task).where(Task.id == task_id, Task.person_id == person_id).with_for_update()
    ).scalar_one_or_none()


def incident_task(session: Session, incident_id: int, task_id: int) -> Task | None:
    """Return a task of this incident, locked for update."""
    return session.execute(
        select(Task).where(Task.id == task_id, Task.incident_id == incident_id).with_for_update()
    ).scalar_one_or_none()


_STEP_TIME = {
    "delivered": "delivered_at",
    "accepted": "accepted_at",
    "declined": "declined_at",
    "done": "done_at",
    "cancelled": "cancelled_at",
}


def move_task(
    session: Session,
    task: Task,
    status: str,
    now: datetime,
    *,
    user_id: int | None = None,
    note: str | None = None,
) -> None:
    """Set a task's status and the time of that step, and log it in the incident history.

    Steps skipped on the way keep a time too: a task done straight from `delivered` was
    accepted at the same moment, and any answer implies delivery.
    """
    task.status = status
    setattr(task, _STEP_TIME[status], now)
    if status in ("accepted", "declined", "done") and task.delivered_at is None:
        task.delivered_at = now
    if status == "done" and task.accepted_at is None:
        task.accepted_at = now
    if note is not None:
        task.note = note
    log_incident_event(
        session,
        task.incident_id,
        status,
        person_id=task.person_id,
        user_id=user_id,
        task_id=task.id,
        note=note,
    )
    session.flush()


def locked_incident(session: Session, incident_id: int) -> Incident:
    """Return an incident locked for update (its status is rolled up from its tasks)."""
    return session.execute(
        select(Incident).where(Incident.id == incident_id).with_for_update()
    ).scalar_one()


def task_statuses(session: Session, incident_id: int) -> list[str]:
    """Return the statuses of an incident's tasks."""
    return list(
        session.execute(select(Task.status).where(Task.incident_id == incident_id)).scalars()
    )


def standing_tasks(session: Session, incident_id: int) -> list[Task]:
    """Return an incident's tasks that are not final, locked for update."""
    return list(
        session.execute(
            select(Task)
            .where(
                Task.incident_id == incident_id, Task.status.in_(("sent", "delivered", "accepted"))
            )
            .order_by(Task.id)
            .with_for_update()
        ).scalars()
    )


def _phone_tasks() -> Select[Any]:
    """Return a select of tasks with what a phone shows of their incident."""
    return select(
        Task.id,
        Task.incident_id,
        Task.status,
        Task.assigned_at,
        Task.distance_m,
        Task.note,
        Incident.description,
        Incident.category,
        func.ST_Y(Incident.geom).label("lat"),
        func.ST_X(Incident.geom).label("lon"),
    ).join(Incident, Incident.id == Task.incident_id)


def phone_task(session: Session, task_id: int) -> Any:
    """Return one task as a phone receives it."""
    return session.execute(_phone_tasks().where(Task.id == task_id)).one()


def tasks_for_phone(session: Session, person_id: int, final_since: datetime) -> list[Any]:
    """Return what a phone shows after (re)connecting: standing tasks, and recent final ones.

    Args:
        session: the session.
        person_id: whose tasks.
        final_since: final tasks (declined, done, cancelled) that ended before this are left
            out.
    """
    ended = func.coalesce(Task.cancelled_at, Task.done_at, Task.declined_at, Task.assigned_at)
    return list(
        session.execute(
            _phone_tasks()
            .where(
                Task.person_id == person_id,
                or_(Task.status.in_(("sent", "delivered", "accepted")), ended >= final_since),
            )
            .order_by(Task.assigned_at, Task.id)
        )
    )


def undelivered_tasks(session: Session, sent_before: datetime) -> list[Any]:
    """Claim the tasks still `sent` since before a time and not yet alerted about.

    Marks them alerted in the caller's transaction; SKIP LOCKED lets several processes run
    the check without alerting twice.
    """
    claimed = (
        select(Task.id)
        .where(
            Task.status == "sent",
            Task.undelivered_alerted.is_(False),
            Task.assigned_at < sent_before,
        )
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return list(
        session.execute(
            update(Task)
            .where(Task.id.in_(claimed))
            .values(undelivered_alerted=True)
            .returning(Task.id, Task.incident_id, Task.person_id, Task.assigned_at)
            .execution_options(synchronize_session=False)
        )
    )


def incident_point(session: Session, incident_id: int) -> tuple[float, float]:
    """Return an incident's (lat, lon)."""
    row = session.execute(
        select(func.ST_Y(Incident.geom), func.ST_X(Incident.geom)).where(Incident.id == incident_id)
    ).one()
    return row[0], row[1]
