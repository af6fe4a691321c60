"""Report queries: the people and grids of a report, shifts, alerts, tasks, coverage, kept figures.

The fixes of a report are read with store.history.replay_fixes(), the same query that
feeds the replay, and filtered in Python by tracker.history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson
from geoalchemy2 import WKTElement
from sqlalchemy import CTE, Select, Text, bindparam, cast, delete, func, null, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..models import (
    Alert,
    DailyReport,
    Person,
    Position,
    ReportGridDay,
    ReportPersonDay,
    Shift,
    Task,
    Unit,
    User,
)
from .scope import in_scope, unit_subtree


def _report_units(unit_id: int) -> CTE:
    """Return a recursive CTE of a report's unit and the units below it (its own name)."""
    units = Unit.__table__
    tree = select(units.c.id).where(units.c.id == unit_id).cte("report_units", recursive=True)
    return tree.union_all(select(units.c.id).where(units.c.parent_id == tree.c.id))


def report_people(user: User, unit_id: int | None) -> Select[Any]:
    """Return a select of the people a report covers.

    Args:
        user: the staff account; people outside its scope never appear.
        unit_id: people of this unit and the units below it, and people who patrol a grid
            there; None for everyone the account sees.

    Returns:
        A select() of id, name, role, unit_id, patrol_unit_id, by id.
    """
    stmt = select(Person.id, Person.name, Person.role, Person.unit_id, Person.patrol_unit_id).where(
        in_scope(user, Person.id)
    )
    if unit_id is not None:
        tree = select(_report_units(unit_id).c.id)
        stmt = stmt.where(or_(Person.unit_id.in_(tree), Person.patrol_unit_id.in_(tree)))
    return stmt.order_by(Person.id)


def report_grids(user: User, unit_id: int | None) -> Select[Any]:
    """Return a select of the grids with a boundary that a report covers.

    Args:
        user: the staff account; grids outside its unit's subtree never appear.
        unit_id: grids at or below this unit; None for every grid the account sees.

    Returns:
        A select() of id, name, parent_id, wkb (the boundary, WKB) and area_m2, by id.
    """
    stmt = select(
        Unit.id,
        Unit.name,
        Unit.parent_id,
        func.ST_AsBinary(Unit.boundary).label("wkb"),
        func.ST_Area(func.geography(Unit.boundary)).label("area_m2"),
    ).where(Unit.kind == "grid", Unit.boundary.isnot(None))
    if user.unit_id is not None:
        stmt = stmt.where(Unit.id.in_(select(unit_subtree(user.unit_id).c.id)))
    if unit_id is not None:
        stmt = stmt.where(Unit.id.in_(select(_report_units(unit_id).c.id)))
    return stmt.order_by(Unit.id)


def grids_by_id(grid_ids: Sequence[int]) -> Select[Any]:
    """Return a select of the boundaries of grids by id (people's assigned grids).

    Args:
        grid_ids: the grids.

    Returns:
        A select() of id, name, wkb.
    """
    return select(Unit.id, Unit.name, func.ST_AsBinary(Unit.boundary).label("wkb")).where(
        Unit.id.in_(list(grid_ids)), Unit.boundary.isnot(None)
    )


def unit_names(session: Session, unit_ids: Sequence[int]) -> dict[int, str]:
    """Return the names of units by id."""
    rows = session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(list(unit_ids))))
    return {row.id: row.name for row in rows}


def shifts(person_ids: Sequence[int], start: datetime, end: datetime) -> Select[Any]:
    """Return a select of the shifts that overlap a window.

    Args:
        person_ids: whose shifts.
        start: first instant of the window.
        end: first instant after it.

    Returns:
        A select() of person_id, started_at, ended_at (NULL while open).
    """
    return (
        select(Shift.person_id, Shift.started_at, Shift.ended_at)
        .where(
            Shift.person_id.in_(list(person_ids)),
            Shift.started_at < end,
            or_(Shift.ended_at.is_(None), Shift.ended_at > start),
        )
        .order_by(Shift.person_id, Shift.started_at)
    )


def alert_counts(
    person_ids: Sequence[int], start: datetime, end: datetime, zone: str
) -> Select[Any]:
    """Return a select of how many alerts of each kind each person raised each day.

    Args:
        person_ids: whose alerts.
        start: first instant of the window.
        end: first instant after it.
        zone: the IANA time zone whose days count.

    Returns:
        A select() of person_id, day, kind, n.
    """
    day = func.date(func.timezone(zone, Alert.ts)).label("day")
    return (
        select(Alert.person_id, day, Alert.kind, func.count().label("n"))
        .where(Alert.person_id.in_(list(person_ids)), Alert.ts >= start, Alert.ts < end)
        .group_by(Alert.person_id, day, Alert.kind)
    )


def tasks(person_ids: Sequence[int], start: datetime, end: datetime) -> Select[Any]:
    """Return a select of the tasks people were sent in a window.

    Args:
        person_ids: whose tasks.
        start: first instant of the window (of assigned_at).
        end: first instant after it.

    Returns:
        A select() of person_id, assigned_at, accepted_at, done_at, status.
    """
    return select(
        Task.person_id, Task.assigned_at, Task.accepted_at, Task.done_at, Task.status
    ).where(Task.person_id.in_(list(person_ids)), Task.assigned_at >= start, Task.assigned_at < end)


# The covered share of one grid (tracker.assessment.coverage.area_share() says why each
# step is there). `pieces` are the track pieces near the grid, in walking order; each is
# clipped to the grid's box grown by the margin, projected with the grid to the UTM zone
# of the grid's centre, simplified (Douglas-Peucker), and cut into pieces of at most
# :piece_vertices vertices that share their ends. Those are taken in a fixed stride
# (golden ratio) so that the first rounds spread over the grid. Each round of `rounds`
# takes the next :per_round pieces that still come within the radius of what is left of
# the grid (the LIMIT stops the scan there: unnest WITH ORDINALITY comes in order) and
# takes the union of their buffers away from it; it stops when nothing is left or no
# piece is. The pieces skipped over cannot come nearer later: what is left only shrinks.
_AREA_SHARE = text(
    """
    WITH RECURSIVE grid AS (
        SELECT ST_Transform(g.geom, g.srid) AS geom_m, g.srid,
               ST_Expand(g.geom::box2d, :margin_deg) AS box
        FROM (
            SELECT geom,
                   CASE WHEN ST_Y(ST_Centroid(geom)) >= 0 THEN 32600 ELSE 32700 END
                   + LEAST(60, floor((ST_X(ST_Centroid(geom)) + 180) / 6)::int + 1) AS srid
            FROM (SELECT ST_GeomFromWKB(:grid, 4326) AS geom) AS given
        ) AS g
    ), lines AS MATERIALIZED (
        SELECT t.k, d.path,
               ARRAY(
                   SELECT (v).geom
                   FROM ST_DumpPoints(
                       ST_Simplify(ST_Transform(d.geom, grid.srid), :simplify_m, true)
                   ) AS v
                   ORDER BY (v).path
               ) AS vertices
        FROM unnest(CAST(:pieces AS bytea[])) WITH ORDINALITY AS t(wkb, k)
        CROSS JOIN grid
        CROSS JOIN LATERAL ST_Dump(ST_ClipByBox2D(ST_GeomFromWKB(t.wkb, 4326), grid.box)) AS d
        WHERE ST_GeometryType(d.geom) = 'ST_LineString' AND NOT ST_IsEmpty(d.geom)
    ), pieces AS MATERIALIZED (
        SELECT row_number() OVER (ORDER BY k, path, c) - 1 AS n,
               ST_MakeLine(
                   vertices[c * (:piece_vertices - 1) + 1 : (c + 1) * (:piece_vertices - 1) + 1]
               ) AS geom
        FROM lines
        CROSS JOIN LATERAL
            generate_series(0, (cardinality(vertices) - 2) / (:piece_vertices - 1)) AS c
        WHERE cardinality(vertices) >= 2
    ), spread AS MATERIALIZED (
        SELECT array_agg(geom ORDER BY n * 0.6180339887498949 - floor(n * 0.6180339887498949), n)
               AS geoms
        FROM pieces
    ), rounds AS (
        SELECT 0::bigint AS taken, geom_m AS left_m FROM grid
        UNION ALL
        SELECT batch.taken, ST_Difference(r.left_m, batch.covered)
        FROM rounds AS r
        CROSS JOIN spread
        CROSS JOIN LATERAL (
            SELECT r.taken + max(near.i) AS taken,
                   ST_Union(ST_Buffer(near.geom, :radius_m, 'quad_segs=8')) AS covered
            FROM (
                SELECT u.i, u.geom
                FROM unnest(spread.geoms[r.taken + 1 :]) WITH ORDINALITY AS u(geom, i)
                WHERE ST_DWithin(u.geom, r.left_m, :radius_m)
                ORDER BY u.i
                LIMIT :per_round
            ) AS near
        ) AS batch
        WHERE batch.taken IS NOT NULL AND NOT ST_IsEmpty(r.left_m)
    ), last_round AS (
        SELECT left_m FROM rounds ORDER BY taken DESC LIMIT 1
    )
    SELECT CASE WHEN ST_Area(grid.geom_m) > 0
                THEN GREATEST(0, LEAST(1, 1 - ST_Area(last_round.left_m) / ST_Area(grid.geom_m)))
                ELSE 0 END AS share,
           CASE WHEN :geometry AND EXISTS (SELECT FROM pieces) THEN ST_AsGeoJSON(
               ST_Transform(ST_Difference(grid.geom_m, last_round.left_m), 4326), 6
           ) END AS geojson
    FROM grid CROSS JOIN last_round
    """
).bindparams(bindparam("grid", type_=BYTEA), bindparam("pieces", type_=ARRAY(BYTEA)))


def area_share(
    session: Session,
    grid_wkb: bytes,
    pieces_wkb: Sequence[bytes],
    radius_m: float,
    margin_deg: float,
    simplify_m: float,
    piece_vertices: int,
    per_round: int,
    geometry: bool = False,
) -> tuple[float, str | None]:
    """Return the share of a grid's area within radius_m of track pieces, in PostGIS.

    Args:
        session: a session.
        grid_wkb: the grid's boundary, WKB in WGS-84.
        pieces_wkb: the LineStrings near the grid, WKB in WGS-84, in walking order.
        radius_m: how near counts as covered, metres.
        margin_deg: the degrees to grow the grid's box by before clipping the pieces.
        simplify_m: the Douglas-Peucker tolerance in the grid's UTM zone, metres.
        piece_vertices: the most vertices of a buffered piece (at least 2).
        per_round: the pieces buffered together before what is left is measured again.
        geometry: also return the covered area as GeoJSON (WGS-84, 6 decimals).

    Returns:
        (share 0..1, GeoJSON text or None); (0.0, None) without pieces near the grid.
    """
    if not pieces_wkb:
        return 0.0, None
    # PostGIS's function costs make the planner JIT-compile this statement, which took
    # 0.8 to 1.7 s, more than ten times as long as running it. Local: until the
    # transaction ends.
    session.execute(select(func.set_config("jit", "off", True)))
    row = session.execute(
        _AREA_SHARE,
        {
            "grid": grid_wkb,
            "pieces": list(pieces_wkb),
            "radius_m": radius_m,
            "margin_deg": margin_deg,
            "simplify_m": simplify_m,
            "piece_vertices": piece_vertices,
            "per_round": per_round,
            "geometry": geometry,
        },
    ).one()
    return float(row.share), row.geojson


def grid_geojson(session: Session, grid_id: int) -> str | None:
    """Return a grid's boundary as GeoJSON text."""
    return session.execute(
        select(func.ST_AsGeoJSON(Unit.boundary, 6)).where(Unit.id == grid_id)
    ).scalar()


def save_daily_report(session: Session, unit_id: int, day: date, file_name: str, size: int) -> None:
    """Record that the daily report of a unit and day was written (again, if it was).

    Args:
        session: a session; the caller commits.
        unit_id: the unit.
        day: the day reported.
        file_name: the file's name in REPORTS_DIR.
        size: its size in bytes.
    """
    stmt = pg_insert(DailyReport).values(unit_id=unit_id, day=day, file_name=file_name, bytes=size)
    session.execute(
        stmt.on_conflict_do_update(
            constraint="uq_daily_reports_unit_day",
            set_={"file_name": file_name, "bytes": size, "created_at": func.now()},
        )
    )


def daily_reports(user: User, limit: int = 200) -> Select[Any]:
    """Return a select of the daily reports of the units an account sees, newest first.

    Args:
        user: the staff account.
        limit: at most this many.

    Returns:
        A select() of id, unit_id, unit_name, day, file_name, bytes, created_at.
    """
    stmt = select(
        DailyReport.id,
        DailyReport.unit_id,
        Unit.name.label("unit_name"),
        DailyReport.day,
        DailyReport.file_name,
        DailyReport.bytes,
        DailyReport.created_at,
    ).join(Unit, Unit.id == DailyReport.unit_id)
    if user.unit_id is not None:
        stmt = stmt.where(DailyReport.unit_id.in_(select(unit_subtree(user.unit_id).c.id)))
    return stmt.order_by(DailyReport.day.desc(), DailyReport.unit_id).limit(limit)


def daily_report(user: User, report_id: int) -> Select[Any]:
    """Return a select of one daily report, if its unit is in the account's scope."""
    return daily_reports(user, limit=1).where(DailyReport.id == report_id)


def report_units(session: Session, kinds: Sequence[str]) -> list[Any]:
    """Return the units a daily report is written for.

    Args:
        session: a session.
        kinds: the unit kinds that get one (district, street, ...).

    Returns:
        Rows of id, name, kind, by id.
    """
    stmt = select(Unit.id, Unit.name, Unit.kind).where(Unit.kind.in_(list(kinds)))
    return list(session.execute(stmt.order_by(Unit.id)))


def all_grids(session: Session) -> list[Any]:
    """Return every grid with a boundary (id, wkb): fixes are placed among all of them.

    Args:
        session: a session.

    Returns:
        Rows of id and wkb, by id.
    """
    stmt = select(Unit.id, func.ST_AsBinary(Unit.boundary).label("wkb")).where(
        Unit.kind == "grid", Unit.boundary.isnot(None)
    )
    return list(session.execute(stmt.order_by(Unit.id)))


def fix_signatures(
    session: Session, person_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, tuple[int, float]]:
    """Return each person's number of fixes in a window and the newest received_at.

    A fix stored late, or one removed, changes the signature of its day.

    Args:
        session: a session.
        person_ids: whose fixes.
        start: first instant of the window.
        end: first instant after it.

    Returns:
        person id -> (count, newest received_at as epoch seconds); people without fixes
        are absent.
    """
    rows = session.execute(
        select(
            Position.person_id,
            func.count().label("n"),
            func.extract("epoch", func.max(Position.received_at)).label("newest"),
        )
        .where(Position.person_id.in_(list(person_ids)), Position.ts >= start, Position.ts < end)
        .group_by(Position.person_id)
    )
    return {row.person_id: (row.n, float(row.newest)) for row in rows}


def cached_person_days(
    session: Session, person_ids: Sequence[int], day: date, grid_steps: bool = True
) -> dict[int, Any]:
    """Return the kept report figures of people's day.

    Args:
        session: a session.
        person_ids: whose.
        day: the day.
        grid_steps: also read the time in each grid (grid-days need it, person-days not).

    Returns:
        person id -> row of inputs_key, figures and grid_steps (None when not asked for);
        the track is read apart, only when a grid's coverage must be computed again
        (person_day_tracks()).
    """
    # As text, parsed by orjson: the driver's json module took most of a warm report.
    steps = cast(ReportPersonDay.grid_steps, Text) if grid_steps else null()
    rows = session.execute(
        select(
            ReportPersonDay.person_id,
            ReportPersonDay.inputs_key,
            cast(ReportPersonDay.figures, Text).label("figures"),
            steps.label("grid_steps"),
        ).where(ReportPersonDay.person_id.in_(list(person_ids)), ReportPersonDay.day == day)
    )
    return {
        row.person_id: KeptPersonDay(
            row.inputs_key,
            orjson.loads(row.figures),
            orjson.loads(row.grid_steps) if row.grid_steps is not None else None,
        )
        for row in rows
    }


class KeptPersonDay(NamedTuple):
    """A kept person-day: its key, its figures and its time in each grid (if read)."""

    inputs_key: str
    figures: dict[str, Any]
    grid_steps: dict[str, list[list[float]]] | None


def person_day_tracks(session: Session, person_ids: Sequence[int], day: date) -> dict[int, bytes]:
    """Return the kept on-duty tracks (WKB MULTILINESTRING) of people's day, by person."""
    rows = session.execute(
        select(
            ReportPersonDay.person_id, func.ST_AsBinary(ReportPersonDay.track).label("wkb")
        ).where(
            ReportPersonDay.person_id.in_(list(person_ids)),
            ReportPersonDay.day == day,
            ReportPersonDay.track.isnot(None),
        )
    )
    return {row.person_id: bytes(row.wkb) for row in rows}


def save_person_days(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Keep computed person-day figures, replacing older ones of the same person and day.

    Args:
        session: a session; the caller commits.
        rows: dicts of person_id, day, inputs_key, figures, grid_steps and track (WKT of a
            MULTILINESTRING, or None).
    """
    if not rows:
        return
    values = [
        {**row, "track": WKTElement(row["track"], srid=4326) if row["track"] else None}
        for row in rows
    ]
    stmt = pg_insert(ReportPersonDay).values(values)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["person_id", "day"],
            set_={
                "inputs_key": stmt.excluded.inputs_key,
                "figures": stmt.excluded.figures,
                "grid_steps": stmt.excluded.grid_steps,
                "track": stmt.excluded.track,
                "computed_at": func.now(),
            },
        )
    )


def cached_grid_days(session: Session, keys: Mapping[int, str], day: date) -> dict[int, float]:
    """Return the kept coverage of grids' day computed from the given inputs.

    Args:
        session: a session.
        keys: grid id -> the key of what its coverage would be computed from now.
        day: the day.

    Returns:
        grid id -> coverage ratio, for the grids whose coverage is kept under that key.
    """
    if not keys:
        return {}
    rows = session.execute(
        select(ReportGridDay.grid_id, ReportGridDay.inputs_key, ReportGridDay.coverage_ratio).where(
            ReportGridDay.grid_id.in_(list(keys)),
            ReportGridDay.day == day,
            ReportGridDay.inputs_key.in_(sorted(set(keys.values()))),
        )
    )
    return {row.grid_id: row.coverage_ratio for row in rows if keys[row.grid_id] == row.inputs_key}


def save_grid_days(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Keep computed grid-day coverage (grid_id, day, inputs_key, coverage_ratio dicts).

    A grid-day may be kept under several keys: a street's report counts the street's
    people, the district's everyone's. Keys of inputs that changed stay until prune_kept().
    """
    if not rows:
        return
    stmt = pg_insert(ReportGridDay).values(list(rows))
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["grid_id", "day", "inputs_key"],
            set_={"coverage_ratio": stmt.excluded.coverage_ratio, "computed_at": func.now()},
        )
    )


def prune_kept(session: Session, before: date) -> int:
    """Delete kept report figures of days before a date: they hold tracks (retention).

    Args:
        session: a session; the caller commits.
        before: the first day kept.

    Returns:
        How many person-days were deleted.
    """
    session.execute(delete(ReportGridDay).where(ReportGridDay.day < before))
    result = session.execute(delete(ReportPersonDay).where(ReportPersonDay.day < before))
    return result.rowcount or 0
