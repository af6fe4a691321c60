"""History queries: a person's fixes, who was near a place, replay data; all scoped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Select, func, select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from ..history.filter import Track
from ..models import Person, Position, Unit, User
from .scope import bbox_filter, in_scope

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fixes(user: User, person_id: int, start: datetime, end: datetime) -> Select[Any]:
    """Return a select of a visible person's fixes in time order.

    Args:
        user: the staff account; a person outside its scope gives no rows.
        person_id: whose fixes.
        start: first instant included.
        end: first instant excluded.

    Returns:
        A select() of ts, lat, lon, accuracy_m, speed_mps.
    """
    return (
        select(
            Position.ts,
            func.ST_Y(Position.geom).label("lat"),
            func.ST_X(Position.geom).label("lon"),
            Position.accuracy_m,
            Position.speed_mps,
        )
        .where(
            Position.person_id == person_id,
            Position.ts >= start,
            Position.ts < end,
            in_scope(user, Position.person_id),
        )
        .order_by(Position.ts)
    )


def fix_columns(user: User, person_id: int, start: datetime, end: datetime) -> Select[Any]:
    """Return a select of a visible person's fixes, packed for read_track().

    Args:
        user: the staff account; a person outside its scope gives no rows.
        person_id: whose fixes.
        start: first instant included.
        end: first instant excluded.

    Returns:
        A select() of one bytea: the fixes, packed by _packed().
    """
    return select(
        _packed(_track_columns(Position.ts, Position.geom, Position.accuracy_m, Position.speed_mps))
    ).where(
        Position.person_id == person_id,
        Position.ts >= start,
        Position.ts < end,
        in_scope(user, Position.person_id),
    )


# A month of 5 s fixes is half a million rows: as Python tuples they took longer than
# the query. So fixes travel packed into one bytea, each value in its binary form, for
# numpy to read in place: a timestamptz as microseconds since 2000-01-01 UTC, a REAL as
# float4 (converting in SQL with extract(epoch) and casts took longer than reading the
# rows). (Binary COPY would do the same, but psycopg2 cannot COPY under gevent.)
_SEND = {">i4": "int4send", ">i8": "timestamptz_send", ">f8": "float8send", ">f4": "float4send"}
_TRACK_TYPES = (">i8", ">f8", ">f8", ">f4", ">f4")
_PG_EPOCH_US = 946_684_800 * 1_000_000


def _track_columns(ts: Any, geom: Any, accuracy_m: Any, speed_mps: Any) -> list[tuple[Any, str]]:
    """Return the columns of a Track with their binary types; NaN for an unknown value."""
    nan = text("'NaN'::real")
    return [
        (ts, ">i8"),
        (func.ST_Y(geom), ">f8"),
        (func.ST_X(geom), ">f8"),
        (func.coalesce(accuracy_m, nan), ">f4"),
        (func.coalesce(speed_mps, nan), ">f4"),
    ]


def _packed(columns: Sequence[tuple[Any, str]]) -> Any:
    """Return an aggregate of the rows as one bytea: each value sent in binary.

    The rows come in no particular order (ordering inside the aggregate sorted them
    again, doubling the query's time); _unpacked() sorts them.
    """
    row = None
    for column, kind in columns:
        value = getattr(func, _SEND[kind])(column)
        row = value if row is None else row.op("||")(value)
    return func.string_agg(row, text("''::bytea"))


def _unpacked(
    session: Session, stmt: Select[Any], types: Sequence[str], order_by: Sequence[int]
) -> list[np.ndarray]:
    """Run a select of _packed() and return its columns, one array each.

    Args:
        session: the session.
        stmt: the select.
        types: each column's binary type (numpy's big-endian codes).
        order_by: the columns the rows are sorted by, first key first.
    """
    packed = session.execute(stmt).scalar()
    row = np.dtype([(f"v{i}", kind) for i, kind in enumerate(types)])
    rows = np.frombuffer(packed or b"", dtype=row)
    columns = [
        rows[f"v{i}"].astype(np.dtype(kind).newbyteorder("=")) for i, kind in enumerate(types)
    ]
    keys = [columns[i] for i in order_by]
    if _in_order(keys):  # the index scan's order, nearly always
        return columns
    order = np.lexsort(keys[::-1])
    return [column[order] for column in columns]


def _in_order(keys: Sequence[np.ndarray]) -> bool:
    """Return whether rows are sorted by keys (first key first)."""
    if not len(keys[0]):
        return True
    later = np.zeros(len(keys[0]) - 1, dtype=bool)  # decided: a later row sorts after
    for key in keys:
        step = np.diff(key)
        if ((step < 0) & ~later).any():
            return False
        later |= step > 0
    return True


def read_track(session: Session, stmt: Select[Any]) -> Track:
    """Run a select of fix_columns() and return its fixes as one Track, in time order."""
    ts, lat, lon, accuracy_m, speed_mps = _unpacked(session, stmt, _TRACK_TYPES, [0])
    return Track(_epoch_s(ts), lat, lon, accuracy_m, speed_mps)


def _epoch_s(pg_us: np.ndarray) -> np.ndarray:
    """Return binary timestamptz values as epoch seconds (one rounding, as a cast would)."""
    return (pg_us + _PG_EPOCH_US) / 1e6


def _degrees_around(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """Return a lon/lat box that surely holds every point within radius_m of (lat, lon)."""
    # 1 % and 1 m of margin over a spherical degree; the exact test is ST_DWithin.
    dlat = (radius_m * 1.01 + 1) / 110_574
    dlon = (
        dlat * 110_574 / (111_320 * max(math.cos(math.radians(min(abs(lat) + dlat, 89.9))), 1e-3))
    )
    return max(lon - dlon, -180), max(lat - dlat, -90), min(lon + dlon, 180), min(lat + dlat, 90)


def people_near(
    user: User,
    place_wkt: str,
    bounds: tuple[float, float, float, float],
    radius_m: float,
    start: datetime,
    end: datetime,
    max_accuracy_m: float | None = None,
) -> Select[Any]:
    """Return a select of the visible people who were within radius_m of a place.

    The time bounds on `ts` (the partition key) limit the read to the window's
    partitions; a lon/lat box on the GiST index narrows the rows before the exact
    geodesic ST_DWithin on geography.

    Args:
        user: the staff account; people outside its scope never appear.
        place_wkt: a point or an area (polygon), WGS-84 WKT.
        bounds: the place's lon/lat box (west, south, east, north).
        radius_m: how near, geodesic metres; 0 with an area means inside it.
        start: first instant included.
        end: first instant excluded.
        max_accuracy_m: if given, fixes worse than this (the history accuracy rule) are
            not counted.

    Returns:
        A select() of person_id, name, role, entered, left (the first and last ts within
        the radius) and closest_m (0 inside an area), closest first.
    """
    west, south, east, north = bounds
    # The margin in longitude is widest at the box's most poleward edge.
    _, _, dlon, _ = _degrees_around(max(abs(south), abs(north)), 0.0, radius_m)
    dlat = (radius_m * 1.01 + 1) / 110_574
    near_box = (
        max(west - dlon, -180),
        max(south - dlat, -90),
        min(east + dlon, 180),
        min(north + dlat, 90),
    )
    place = func.geography(func.ST_GeomFromText(place_wkt, 4326))
    here = func.geography(Position.geom)
    conditions = [
        Position.ts >= start,
        Position.ts < end,
        bbox_filter(Position.geom, near_box),
        func.ST_DWithin(here, place, radius_m),
        in_scope(user, Position.person_id),
    ]
    if max_accuracy_m is not None:
        conditions.append(Position.accuracy_m.is_(None) | (Position.accuracy_m <= max_accuracy_m))
    near = (
        select(
            Position.person_id,
            func.min(Position.ts).label("entered"),
            func.max(Position.ts).label("left"),
            func.min(func.ST_Distance(here, place)).label("closest_m"),
        )
        .where(*conditions)
        .group_by(Position.person_id)
        .subquery()
    )
    return (
        select(
            near.c.person_id,
            Person.name,
            Person.role,
            near.c.entered,
            near.c.left,
            near.c.closest_m,
        )
        .join(Person, Person.id == near.c.person_id)
        .order_by(near.c.closest_m, near.c.person_id)
    )


def replay_people(
    user: User,
    unit_id: int | None = None,
    person_ids: Sequence[int] | None = None,
    seen_in: tuple[tuple[float, float, float, float], datetime, datetime] | None = None,
) -> Select[Any]:
    """Return a select of the visible people chosen for a replay.

    Args:
        user: the staff account; the choice is always intersected with its scope.
        unit_id: everyone in this unit and the units below it.
        person_ids: or these people.
        seen_in: (lon/lat box, start, end): only those with a fix in the box then (the
            map's viewport).

    Returns:
        A select() of id, name, role, by id.
    """
    stmt = select(Person.id, Person.name, Person.role).where(in_scope(user, Person.id))
    if unit_id is not None:
        # A CTE of its own name: in_scope() may already hold scope.unit_subtree().
        units = Unit.__table__
        chosen = select(units.c.id).where(units.c.id == unit_id).cte("chosen_units", recursive=True)
        chosen = chosen.union_all(select(units.c.id).where(units.c.parent_id == chosen.c.id))
        stmt = stmt.where(Person.unit_id.in_(select(chosen.c.id)))
    if person_ids is not None:
        stmt = stmt.where(Person.id.in_(list(person_ids)))
    if seen_in is not None:
        box, start, end = seen_in
        stmt = stmt.where(
            select(Position.person_id)
            .where(
                Position.person_id == Person.id,
                Position.ts >= start,
                Position.ts < end,
                bbox_filter(Position.geom, box),
            )
            .exists()
        )
    return stmt.order_by(Person.id)


def replay_fixes(
    person_ids: Sequence[int],
    start: datetime,
    end: datetime,
    step_s: int = 1,
    max_accuracy_m: float | None = None,
) -> Select[Any]:
    """Return a select of the fixes of people (already scoped) in a window, thinned.

    Args:
        person_ids: whose fixes; the caller took them from replay_people().
        start: first instant included.
        end: first instant excluded.
        step_s: keep the first fix of each person in each step_s-second slot (slots are
            aligned to the epoch, so the pieces of a range fetched apart agree); 1 keeps all.
        max_accuracy_m: drop fixes less accurate than this before thinning, so that a bad
            fix never stands for its slot (the outlier rules' accuracy limit).

    Returns:
        A select() of one bytea: person_id and the columns of fix_columns(), packed, for
        read_person_tracks() (which sorts them by person and time).
    """
    chosen = select(
        Position.person_id, Position.ts, Position.geom, Position.accuracy_m, Position.speed_mps
    ).where(Position.person_id.in_(list(person_ids)), Position.ts >= start, Position.ts < end)
    if max_accuracy_m is not None:
        chosen = chosen.where(
            (Position.accuracy_m <= max_accuracy_m) | Position.accuracy_m.is_(None)
        )
    if step_s > 1:
        slot = func.date_bin(timedelta(seconds=step_s), Position.ts, EPOCH)
        chosen = chosen.ext(distinct_on(Position.person_id, slot)).order_by(
            Position.person_id, slot, Position.ts
        )
    # The coordinates are taken from the geometry after thinning, for the kept rows only.
    kept = chosen.subquery("kept")
    columns = _track_columns(kept.c.ts, kept.c.geom, kept.c.accuracy_m, kept.c.speed_mps)
    return select(_packed([(kept.c.person_id, ">i4"), *columns]))


def read_person_tracks(session: Session, stmt: Select[Any]) -> dict[int, Track]:
    """Run a select of replay_fixes() and return each person's fixes as a Track."""
    # Thinning sorts every fix of the window: an hour of 1,000 people spilled to disk
    # with the default 4 MB and took half as long again.
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    person, ts, lat, lon, accuracy_m, speed_mps = _unpacked(
        session, stmt, (">i4", *_TRACK_TYPES), [0, 1]
    )
    t = _epoch_s(ts)
    edges = np.flatnonzero(np.diff(person)) + 1
    starts = np.concatenate(([0], edges)).tolist()
    ends = np.concatenate((edges, [len(person)])).tolist()
    return {
        int(person[a]): Track(t[a:b], lat[a:b], lon[a:b], accuracy_m[a:b], speed_mps[a:b])
        for a, b in zip(starts, ends, strict=True)
        if b > a
    }


def grids_at(
    session: Session, points: Sequence[tuple[float, float]]
) -> list[tuple[int, str] | None]:
    """Return, for each (lat, lon), the id and name of the smallest grid covering it.

    One query for all the points (a month's timeline has hundreds of stops).

    Args:
        session: a session.
        points: (lat, lon) pairs.

    Returns:
        (grid id, grid name) or None for each point, in the order given.
    """
    if not points:
        return []
    rows = session.execute(
        text(
            """
            SELECT p.n, g.id, g.name
            FROM unnest(CAST(:lats AS float8[]), CAST(:lons AS float8[]))
                 WITH ORDINALITY AS p(lat, lon, n)
            CROSS JOIN LATERAL (
                SELECT u.id, u.name FROM units u
                WHERE u.kind = 'grid'
                  AND ST_Covers(u.boundary, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
                ORDER BY ST_Area(u.boundary) LIMIT 1
            ) g
            """
        ),
        {"lats": [lat for lat, _ in points], "lons": [lon for _, lon in points]},
    )
    found: list[tuple[int, str] | None] = [None] * len(points)
    for n, grid_id, name in rows:
        found[n - 1] = (grid_id, name)
    return found


def grid_at(session: Session, lat: float, lon: float) -> tuple[int, str] | None:
    """Return the id and name of the smallest grid that covers a point, or None.

    Args:
        session: a session.
        lat: the point's latitude.
        lon: the point's longitude.

    Returns:
        (grid id, grid name), or None outside every grid.
    """
    return grids_at(session, [(lat, lon)])[0]
