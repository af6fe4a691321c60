"""Reports from phones (事件上报): the incidents people report, and their photos."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..models import Incident, IncidentEvent, IncidentPhoto, LatestPosition, Person


def reported_incident(session: Session, person_id: int, key: str) -> Any | None:
    """Return the incident a person's report with this key made, if it is stored.

    Args:
        session: a session.
        person_id: the reporter.
        key: the phone's own id of the report.

    Returns:
        A row (id, unit_id, photos), photos being how many photos it has, or None.
    """
    photos = (
        select(func.count())
        .select_from(IncidentPhoto)
        .where(IncidentPhoto.incident_id == Incident.id)
        .scalar_subquery()
    )
    return session.execute(
        select(Incident.id, Incident.unit_id, photos.label("photos")).where(
            Incident.reported_by == person_id, Incident.report_key == key
        )
    ).first()


def newest_fix(session: Session, person_id: int) -> tuple[float, float] | None:
    """Return a person's newest stored fix as (lat, lon), or None if there is none.

    Args:
        session: a session.
        person_id: the person.

    Returns:
        (lat, lon) from latest_positions, or None.
    """
    row = session.execute(
        select(func.ST_Y(LatestPosition.geom), func.ST_X(LatestPosition.geom)).where(
            LatestPosition.person_id == person_id
        )
    ).first()
    return None if row is None else (row[0], row[1])


def add_reported_incident(
    session: Session,
    person_id: int,
    key: str,
    category: str,
    note: str,
    point: tuple[float, float],
    reported_at: datetime,
) -> int | None:
    """Create the incident a report describes, in the reporter's unit; log it as `reported`.

    A report whose key this person already used creates nothing: a concurrent resend that
    committed first wins the unique constraint, and this insert waits for it and skips.

    Args:
        session: a session; the caller commits.
        person_id: the reporter.
        key: the phone's own id of the report.
        category: a configured category id.
        note: what the reporter wrote; becomes the description.
        point: (lat, lon) in WGS-84.
        reported_at: when the phone says it was reported; the history's `reported` step
            keeps it (never later than now).

    Returns:
        The new incident's id, or None if this person's key is already stored.
    """
    lat, lon = point
    stmt = (
        pg_insert(Incident)
        .values(
            geom=func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326),
            description=note,
            status="open",
            category=category,
            unit_id=select(Person.unit_id).where(Person.id == person_id).scalar_subquery(),
            reported_by=person_id,
            report_key=key,
        )
        .on_conflict_do_nothing(constraint="uq_incidents_reported_by_key")
        .returning(Incident.id)
    )
    incident_id = session.execute(stmt).scalar()
    if incident_id is None:
        return None
    session.add(
        IncidentEvent(
            incident_id=incident_id,
            kind="reported",
            person_id=person_id,
            at=func.least(reported_at, func.now()),
        )
    )
    session.flush()
    return incident_id


def add_photos(
    session: Session, incident_id: int, photos: Sequence[tuple[str, str, int, int, int]]
) -> None:
    """Record an incident's photos, whose files are already stored.

    Args:
        session: a session; the caller commits.
        incident_id: the incident.
        photos: (sha256, content_type, bytes, width, height) of each, in the order sent;
            no SHA-256 twice.
    """
    session.add_all(
        IncidentPhoto(
            incident_id=incident_id,
            sha256=sha256,
            content_type=content_type,
            bytes=size,
            width=width,
            height=height,
        )
        for sha256, content_type, size, width, height in photos
    )
    session.flush()


def _photo_columns() -> tuple[Any, ...]:
    """Return the columns that describe a stored photo."""
    return (
        IncidentPhoto.id,
        IncidentPhoto.sha256,
        IncidentPhoto.content_type,
        IncidentPhoto.bytes,
        IncidentPhoto.width,
        IncidentPhoto.height,
    )


def incident_photos(session: Session, incident_id: int) -> list[Any]:
    """Return an incident's photos in the order they were stored.

    Args:
        session: a session.
        incident_id: the incident.

    Returns:
        Rows (id, sha256, content_type, bytes, width, height), by id.
    """
    return list(
        session.execute(
            select(*_photo_columns())
            .where(IncidentPhoto.incident_id == incident_id)
            .order_by(IncidentPhoto.id)
        )
    )


def photo_of_incident(session: Session, incident_id: int, photo_id: int) -> Any | None:
    """Return one photo of an incident, or None if the incident has no such photo.

    Args:
        session: a session.
        incident_id: the incident.
        photo_id: the photo.

    Returns:
        A row (id, sha256, content_type, bytes, width, height), or None.
    """
    return session.execute(
        select(*_photo_columns()).where(
            IncidentPhoto.id == photo_id, IncidentPhoto.incident_id == incident_id
        )
    ).first()


def own_reports(session: Session, person_id: int, since: datetime) -> list[Any]:
    """Return a person's reports created since a time, newest first (the phone's list).

    Args:
        session: a session.
        person_id: the reporter.
        since: the oldest creation time included.

    Returns:
        Rows (key, incident_id, status, category, created_at).
    """
    return list(
        session.execute(
            select(
                Incident.report_key.label("key"),
                Incident.id.label("incident_id"),
                Incident.status,
                Incident.category,
                Incident.created_at,
            )
            .where(Incident.reported_by == person_id, Incident.created_at >= since)
            .order_by(Incident.created_at.desc(), Incident.id.desc())
        )
    )
