"""Alerts: storing one exactly once, listing and acknowledging them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..models import (
    Alert,
    Person,
    User,
)
from .scope import in_scope


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A stored alert, with its point as lon/lat."""

    id: int
    person_id: int
    device_id: int | None
    kind: str
    ts: datetime
    received_at: datetime
    lat: float | None
    lon: float | None
    note: str | None
    # Facts the page words in its own language (docs/command-centre.md): distance_m and
    # inside for zone alerts, battery, minutes, task_id and incident_id.
    details: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the alert as JSON-ready values."""
        return {
            "id": self.id,
            "person_id": self.person_id,
            "device_id": self.device_id,
            "kind": self.kind,
            "ts": self.ts.isoformat(),
            "received_at": self.received_at.isoformat(),
            "lat": self.lat,
            "lon": self.lon,
            "note": self.note,
            "details": self.details,
        }


def _alert_columns() -> tuple[Any, ...]:
    """Return the columns that make an AlertRow."""
    return (
        Alert.id,
        Alert.person_id,
        Alert.device_id,
        Alert.kind,
        Alert.ts,
        Alert.received_at,
        func.ST_Y(Alert.geom).label("lat"),
        func.ST_X(Alert.geom).label("lon"),
        Alert.note,
        Alert.details,
    )


def insert_alert(
    session: Session,
    person_id: int,
    device_id: int | None,
    kind: str,
    ts: datetime,
    point: tuple[float, float] | None,
    note: str | None,
    details: dict[str, Any] | None = None,
) -> tuple[AlertRow, bool]:
    """Store an alert once per (device, kind, ts); the caller commits.

    Args:
        session: a session.
        person_id: whom the alert is about.
        device_id: the device that raised it, if any.
        kind: sos, zone_exit, zone_enter, signal_lost, signal_back, low_battery or
            task_undelivered.
        ts: when it happened, by the device's clock.
        point: (lat, lon) in WGS-84 degrees, or None when no fix was known.
        note: free text from the person (SOS); machine alerts leave it None.
        details: the alert's facts as data, worded by the page in its language.

    Returns:
        The stored alert, and True if it is new (False: the same alert was stored before).
    """
    geom = None
    if point is not None:
        lat, lon = point
        geom = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
    stmt = (
        pg_insert(Alert)
        .values(
            person_id=person_id,
            device_id=device_id,
            kind=kind,
            ts=ts,
            geom=geom,
            note=note,
            details=details,
        )
        .on_conflict_do_nothing(constraint="uq_alerts_device_kind_ts")
        .returning(Alert.id)
    )
    new_id = session.execute(stmt).scalar()
    if new_id is not None:
        where = Alert.id == new_id
    else:
        where = and_(Alert.device_id == device_id, Alert.kind == kind, Alert.ts == ts)
    row = session.execute(select(*_alert_columns()).where(where)).one()
    return AlertRow(*row), new_id is not None


def alerts_of_person(person_id: int) -> Select[Any]:
    """Return a select of a person's alerts as AlertRow columns, oldest first.

    Args:
        person_id: whose alerts.

    Returns:
        A select() of the AlertRow columns.
    """
    return (
        select(*_alert_columns()).where(Alert.person_id == person_id).order_by(Alert.ts, Alert.id)
    )


def alerts_for(user: User, kind: str | None, open_only: bool, limit: int) -> Select[Any]:
    """Return a select of the alerts about people in scope, newest first.

    Args:
        user: the staff account whose scope applies.
        kind: only this kind, if given.
        open_only: only alerts nobody has acknowledged.
        limit: at most this many.

    Returns:
        A select() of alert columns with the person's name and role.
    """
    stmt = (
        select(
            *_alert_columns(),
            Person.name.label("person_name"),
            Person.role.label("person_role"),
            Alert.acknowledged_at,
            User.username.label("acknowledged_by"),
        )
        .join(Person, Person.id == Alert.person_id)
        .outerjoin(User, User.id == Alert.acknowledged_by)
        .where(in_scope(user, Alert.person_id))
        .order_by(Alert.received_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    if kind is not None:
        stmt = stmt.where(Alert.kind == kind)
    if open_only:
        stmt = stmt.where(Alert.acknowledged_at.is_(None))
    return stmt


def acknowledge_alert(session: Session, user: User, alert_id: int) -> bool:
    """Record who acknowledged an alert in scope, and when; False if not found or done."""
    result = session.execute(
        update(Alert)
        .where(
            Alert.id == alert_id,
            Alert.acknowledged_at.is_(None),
            in_scope(user, Alert.person_id),
        )
        .values(acknowledged_at=func.now(), acknowledged_by=user.id)
    )
    return result.rowcount == 1
