"""One person's recorded track: as a line for the map, and as points for exports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from ..models import (
    Position,
)


@dataclass(frozen=True, slots=True)
class Track:
    """A person's positions between two instants, as one line."""

    geometry_geojson: str | None
    points: int
    distance_m: float
    started_at: datetime | None
    ended_at: datetime | None


def track(
    session: Session,
    person_id: int,
    start: datetime,
    end: datetime,
    simplify_m: float | None = None,
) -> Track:
    """Return a person's track in time order, with its geodesic length.

    Args:
        session: a session.
        person_id: whose track.
        start: first instant included.
        end: first instant excluded.
        simplify_m: if given, drop vertices that move the line by less than about this
            many metres (Douglas-Peucker), for display; length and counts stay exact.

    Returns:
        The track; its geometry is None when there are no positions.
    """
    built = (
        select(
            func.ST_MakeLine(aggregate_order_by(Position.geom, Position.ts)).label("line"),
            func.count().label("points"),
            func.min(Position.ts).label("started_at"),
            func.max(Position.ts).label("ended_at"),
        )
        .where(and_(Position.person_id == person_id, Position.ts >= start, Position.ts < end))
        .subquery()
    )
    shown = built.c.line
    if simplify_m:
        # Degrees of latitude are ~111 km everywhere; good enough for a display tolerance.
        # Plain Douglas-Peucker: a display line need not keep topology, and this is several
        # times faster than ST_SimplifyPreserveTopology; `true` keeps at least two points.
        shown = func.ST_Simplify(built.c.line, simplify_m / 111_320, True)
    row = session.execute(
        select(
            func.ST_AsGeoJSON(shown).label("geojson"),
            built.c.points,
            func.coalesce(func.ST_Length(func.geography(built.c.line)), 0).label("distance_m"),
            built.c.started_at,
            built.c.ended_at,
        )
    ).one()
    return Track(row.geojson, row.points, float(row.distance_m), row.started_at, row.ended_at)


def count_positions(session: Session, person_id: int | None = None) -> int:
    """Return how many positions are stored, for everyone or one person."""
    stmt = select(func.count()).select_from(Position)
    if person_id is not None:
        stmt = stmt.where(Position.person_id == person_id)
    return session.execute(stmt).scalar_one()


def track_points(person_id: int, start: datetime, end: datetime) -> Select[Any]:
    """Return a select of a person's positions in time order, with lon/lat.

    Args:
        person_id: whose positions.
        start: first instant included.
        end: first instant excluded.

    Returns:
        A select() of rows: ts, lat, lon, accuracy_m, altitude_m, speed_mps, heading_deg,
        battery.
    """
    return (
        select(
            Position.ts,
            func.ST_Y(Position.geom).label("lat"),
            func.ST_X(Position.geom).label("lon"),
            Position.accuracy_m,
            Position.altitude_m,
            Position.speed_mps,
            Position.heading_deg,
            Position.battery,
        )
        .where(Position.person_id == person_id, Position.ts >= start, Position.ts < end)
        .order_by(Position.ts)
    )
