"""Grids and zones: who is inside which grid, watch states for the alert rules, coverage,
and boundary checks for imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    case,
    func,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..models import (
    LatestPosition,
    Person,
    Shift,
    Unit,
    User,
    WatchState,
)
from .latest import _newest_lat_lon
from .scope import in_scope, on_duty_clause, unit_subtree


def match_grids(session: Session, person_ids: Sequence[int]) -> None:
    """Set each person's latest_positions.grid_id to the grid that contains their fix.

    Args:
        session: a session; the caller commits.
        person_ids: whose newest fixes changed.
    """
    lp = LatestPosition.__table__
    grid = (
        select(Unit.id)
        .where(Unit.kind == "grid", func.ST_Covers(Unit.boundary, lp.c.geom))
        # Nested or overlapping grids: the smallest one is the most specific.
        .order_by(func.ST_Area(Unit.boundary))
        .limit(1)
        .scalar_subquery()
    )
    # Only rows whose grid changes are rewritten: most fixes stay in the same grid, and each
    # rewrite of this hot table is a dead row for vacuum and a lock the writer may meet.
    session.execute(
        update(lp)
        .where(lp.c.person_id.in_(sorted(set(person_ids))), lp.c.grid_id.is_distinct_from(grid))
        .values(grid_id=grid)
    )


_ENSURE_WATCH_STATES = text(
    """
INSERT INTO watch_states (person_id)
SELECT unnest(CAST(:person_ids AS integer[]))
ON CONFLICT (person_id) DO NOTHING
"""
)


def ensure_watch_states(session: Session, person_ids: Iterable[int]) -> None:
    """Create missing watch_states rows so that they can be locked and updated."""
    ids = sorted(set(person_ids))
    if ids:
        # One array parameter, so the statement is compiled once however many people come.
        session.execute(_ENSURE_WATCH_STATES, {"person_ids": ids})


def zone_facts(session: Session, person_ids: Sequence[int]) -> list[Any]:
    """Return, per person, what the rules need: newest fix, zone distance, duty, states.

    The watch_states rows are locked, so two processes never judge one person at once.

    Args:
        session: a session inside a transaction.
        person_ids: the people to judge.

    Returns:
        Rows with person_id, device_id, ts, lat, lon, accuracy_m, battery, on_duty,
        patrol_unit_id, signed_distance_m (negative inside; None without a zone), and the
        watch state columns zone_inside, signal_lost, battery_low.
    """
    zone = Unit.__table__.alias("zone")
    point_geog = func.geography(LatestPosition.geom)
    signed = case(
        (
            func.ST_Covers(zone.c.boundary, LatestPosition.geom),
            -func.ST_Distance(func.geography(func.ST_Boundary(zone.c.boundary)), point_geog),
        ),
        else_=func.ST_Distance(func.geography(zone.c.boundary), point_geog),
    )
    on_duty = on_duty_clause(Person.id)
    stmt = (
        select(
            LatestPosition.person_id,
            LatestPosition.device_id,
            LatestPosition.ts,
            *_newest_lat_lon(),
            LatestPosition.accuracy_m,
            LatestPosition.battery,
            on_duty.label("on_duty"),
            Person.patrol_unit_id,
            case((zone.c.boundary.is_(None), None), else_=signed).label("signed_distance_m"),
            WatchState.zone_inside,
            WatchState.signal_lost,
            WatchState.battery_low,
        )
        .join(Person, Person.id == LatestPosition.person_id)
        .join(WatchState, WatchState.person_id == LatestPosition.person_id)
        .outerjoin(zone, zone.c.id == Person.patrol_unit_id)
        .where(LatestPosition.person_id.in_(sorted(set(person_ids))))
        .with_for_update(of=WatchState)
    )
    return list(session.execute(stmt))


def set_watch_state(session: Session, person_id: int, **states: bool | None) -> None:
    """Record the rules' new conclusions about a person."""
    session.execute(
        update(WatchState)
        .where(WatchState.person_id == person_id)
        .values(**states, updated_at=func.now())
    )


def silent_people(session: Session, cutoff: datetime) -> list[Any]:
    """Return on-duty people with no fix since `cutoff` who are not yet flagged silent.

    A person who has not sent any fix since going on duty counts from the shift's start.

    Args:
        session: a session inside a transaction.
        cutoff: the time before which the newest fix counts as lost.

    Returns:
        Rows with person_id, last_seen, lat and lon (None without any fix).
    """
    last_seen = func.coalesce(func.greatest(LatestPosition.ts, Shift.started_at), Shift.started_at)
    stmt = (
        select(
            Shift.person_id,
            last_seen.label("last_seen"),
            *_newest_lat_lon(),
        )
        .outerjoin(LatestPosition, LatestPosition.person_id == Shift.person_id)
        .outerjoin(WatchState, WatchState.person_id == Shift.person_id)
        .where(
            Shift.ended_at.is_(None),
            last_seen < cutoff,
            func.coalesce(WatchState.signal_lost, False).is_(False),
        )
    )
    return list(session.execute(stmt))


def clear_off_duty_flags(session: Session) -> None:
    """Forget silence and zone conclusions of people who went off duty."""
    open_shift = on_duty_clause(WatchState.person_id)
    session.execute(
        update(WatchState)
        .where(~open_shift, (WatchState.signal_lost.is_(True)) | WatchState.zone_inside.isnot(None))
        .values(signal_lost=False, zone_inside=None, updated_at=func.now())
    )


def coverage(user: User, fresh_since: datetime) -> Select[Any]:
    """Return a select of every grid in scope: people inside now, assigned, on duty inside.

    Only people who are on duty *and still reporting* cover a grid: someone whose last fix
    is older than `fresh_since` may have walked away long ago.

    Args:
        user: the staff account whose scope applies.
        fresh_since: fixes older than this do not count as covering.

    Returns:
        A select() of rows: unit_id, name, inside, assigned, on_duty_inside.
    """
    on_duty = on_duty_clause(LatestPosition.person_id)
    inside = (
        select(func.count())
        .where(LatestPosition.grid_id == Unit.id)
        .correlate(Unit)
        .scalar_subquery()
    )
    on_duty_inside = (
        select(func.count())
        .where(LatestPosition.grid_id == Unit.id, LatestPosition.ts >= fresh_since, on_duty)
        .correlate(Unit)
        .scalar_subquery()
    )
    assigned = (
        select(func.count())
        .where(Person.patrol_unit_id == Unit.id, Person.active.is_(True))
        .correlate(Unit)
        .scalar_subquery()
    )
    stmt = select(
        Unit.id.label("unit_id"),
        Unit.name,
        inside.label("inside"),
        assigned.label("assigned"),
        on_duty_inside.label("on_duty_inside"),
    ).where(Unit.kind == "grid")
    if user.unit_id is not None:
        stmt = stmt.where(Unit.id.in_(select(unit_subtree(user.unit_id).c.id)))
    return stmt.order_by(Unit.id)


def grid_people(user: User, unit_id: int) -> Select[Any]:
    """Return a select of the visible people inside a grid now or assigned to it.

    Args:
        user: the staff account whose scope applies.
        unit_id: the grid.

    Returns:
        A select() of rows: person_id, name, role, inside, assigned, on_duty, ts.
    """
    on_duty = on_duty_clause(Person.id)
    return (
        select(
            Person.id.label("person_id"),
            Person.name,
            Person.role,
            (LatestPosition.grid_id == unit_id).label("inside"),
            (Person.patrol_unit_id == unit_id).label("assigned"),
            on_duty.label("on_duty"),
            LatestPosition.ts,
        )
        .outerjoin(LatestPosition, LatestPosition.person_id == Person.id)
        .where(
            (LatestPosition.grid_id == unit_id) | (Person.patrol_unit_id == unit_id),
            in_scope(user, Person.id),
        )
        .order_by(Person.name)
    )


def upsert_unit(
    session: Session, name: str, kind: str, parent_id: int | None, geojson: str
) -> tuple[int, bool, str | None]:
    """Create or update a unit by (parent, kind, name) with a boundary, repaired if invalid.

    Args:
        session: a session; the caller commits.
        name: the unit's name.
        kind: district, street, community or grid.
        parent_id: the unit above, if any.
        geojson: a Polygon or MultiPolygon geometry in GeoJSON, WGS-84.

    Returns:
        (unit id, created, why the geometry was invalid — None when it was valid).
    """
    geom = func.ST_SetSRID(func.ST_GeomFromGeoJSON(geojson), 4326)
    reason = session.execute(
        select(case((func.ST_IsValid(geom), None), else_=func.ST_IsValidReason(geom)))
    ).scalar()
    boundary = func.ST_Multi(func.ST_CollectionExtract(func.ST_MakeValid(geom), 3))
    stmt = (
        pg_insert(Unit)
        .values(name=name, kind=kind, parent_id=parent_id, boundary=boundary)
        .on_conflict_do_update(
            index_elements=["parent_id", "kind", "name"], set_={"boundary": boundary}
        )
        .returning(Unit.id, literal_column("xmax = 0").label("created"))
    )
    row = session.execute(stmt).one()
    return row.id, row.created, reason


def try_advisory_lock(session: Session, name: str) -> bool:
    """Take a transaction-scoped advisory lock by name, without waiting; return if taken."""
    return bool(
        session.execute(select(func.pg_try_advisory_xact_lock(func.hashtext(name)))).scalar()
    )


def grid_boundaries(session: Session, under_unit_id: int | None) -> list[Any]:
    """Return (id, name, geojson) of the grids with a boundary, optionally under a unit."""
    stmt = select(Unit.id, Unit.name, func.ST_AsGeoJSON(Unit.boundary).label("geojson")).where(
        Unit.kind == "grid", Unit.boundary.isnot(None)
    )
    if under_unit_id is not None:
        stmt = stmt.where(Unit.id.in_(select(unit_subtree(under_unit_id).c.id)))
    return list(session.execute(stmt.order_by(Unit.id)))


def boundary_repair(session: Session, geojson: str) -> tuple[str | None, float]:
    """Return why a boundary is invalid and the area of the polygons ST_MakeValid keeps of it.

    Args:
        session: a session.
        geojson: a Polygon or MultiPolygon geometry in GeoJSON, WGS-84.

    Returns:
        (why the geometry is invalid — None when it is valid, the area in square degrees of
        its polygons after repair — 0 when the repair leaves a line, a point or nothing).
    """
    geom = func.ST_SetSRID(func.ST_GeomFromGeoJSON(geojson), 4326)
    kept = func.ST_CollectionExtract(func.ST_MakeValid(geom), 3)
    row = session.execute(
        select(
            case((func.ST_IsValid(geom), None), else_=func.ST_IsValidReason(geom)),
            func.coalesce(func.ST_Area(kept), 0.0),
        )
    ).one()
    return row[0], float(row[1])


# --- units and grids, as the administration changes them ---------------------------------


def _repaired_boundary(geojson: str | None) -> Any:
    """Return the SQL of a GeoJSON boundary repaired like the import's, or None."""
    if geojson is None:
        return None
    geom = func.ST_SetSRID(func.ST_GeomFromGeoJSON(geojson), 4326)
    return func.ST_Multi(func.ST_CollectionExtract(func.ST_MakeValid(geom), 3))


def lock_unit_tree(session: Session) -> None:
    """Wait for the transaction-scoped lock on the unit tree, so two moves never make a cycle."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext("units.tree"))))


def unit_details(session: Session, unit_id: int) -> Any | None:
    """Return a unit with its boundary as GeoJSON and its area, locked for the change.

    Args:
        session: a session inside a transaction.
        unit_id: the unit.

    Returns:
        A row with id, name, kind, parent_id, boundary_geojson (None without a boundary)
        and area_m2 (None without a boundary); None if there is no such unit.
    """
    stmt = (
        select(
            Unit.id,
            Unit.name,
            Unit.kind,
            Unit.parent_id,
            func.ST_AsGeoJSON(Unit.boundary, 15).label("boundary_geojson"),
            func.ST_Area(func.geography(Unit.boundary)).label("area_m2"),
        )
        .where(Unit.id == unit_id)
        .with_for_update()
    )
    return session.execute(stmt).first()


def unit_by_key(session: Session, parent_id: int | None, kind: str, name: str) -> int | None:
    """Return the id of the unit with this (parent, kind, name), the key of the import."""
    stmt = select(Unit.id).where(
        Unit.parent_id.is_not_distinct_from(parent_id), Unit.kind == kind, Unit.name == name
    )
    return session.execute(stmt).scalar()


def child_kinds(session: Session, unit_id: int) -> list[str]:
    """Return the kinds of the units directly below a unit."""
    stmt = select(Unit.kind).where(Unit.parent_id == unit_id).distinct()
    return list(session.execute(stmt).scalars())


def create_unit(
    session: Session, name: str, kind: str, parent_id: int | None, geojson: str | None
) -> int:
    """Add a unit; its boundary, if any, is repaired with ST_MakeValid as the import does.

    Args:
        session: a session; the caller commits.
        name: the unit's name.
        kind: district, street, community or grid.
        parent_id: the unit above, if any.
        geojson: a checked Polygon or MultiPolygon in GeoJSON, WGS-84, or None.

    Returns:
        The new unit's id.
    """
    stmt = (
        Unit.__table__.insert()
        .values(name=name, kind=kind, parent_id=parent_id, boundary=_repaired_boundary(geojson))
        .returning(Unit.__table__.c.id)
    )
    return session.execute(stmt).scalar_one()


def update_unit(session: Session, unit_id: int, changes: dict[str, Any]) -> None:
    """Change a unit's name, kind, parent or boundary (GeoJSON text or None), repaired.

    Args:
        session: a session; the caller commits.
        unit_id: the unit.
        changes: the columns to set; `boundary` is GeoJSON text (repaired like the import)
            or None to remove it.
    """
    values = dict(changes)
    if "boundary" in values:
        values["boundary"] = _repaired_boundary(values["boundary"])
    session.execute(update(Unit.__table__).where(Unit.__table__.c.id == unit_id).values(values))


def boundary_areas(session: Session, geojson: str) -> tuple[float, float, int]:
    """Return what ST_MakeValid changes of a boundary: areas before and after, parts after.

    Args:
        session: a session.
        geojson: a Polygon or MultiPolygon in GeoJSON, WGS-84.

    Returns:
        (the area in m² as drawn — the lobes of a self-intersecting ring count with
        opposite signs, so a bow-tie's may be 0, the area in m² after the repair, how many
        polygons the repair leaves).
    """
    geom = func.ST_SetSRID(func.ST_GeomFromGeoJSON(geojson), 4326)
    kept = func.ST_CollectionExtract(func.ST_MakeValid(geom), 3)
    row = session.execute(
        select(
            func.coalesce(func.ST_Area(func.geography(geom)), 0.0),
            func.coalesce(func.ST_Area(func.geography(kept)), 0.0),
            func.coalesce(func.ST_NumGeometries(kept), 0),
        )
    ).one()
    return float(row[0]), float(row[1]), int(row[2])


def sibling_overlaps(session: Session, unit_id: int, min_area_m2: float = 1.0) -> list[Any]:
    """Return the units of the same kind and parent whose boundaries overlap a unit's.

    Args:
        session: a session.
        unit_id: the unit whose boundary is compared.
        min_area_m2: overlaps of at most this many square metres (shared edges, rounding)
            do not count.

    Returns:
        Rows with unit_id, name and area_m2 (of the overlap, on the spheroid), by unit id.
    """
    unit = Unit.__table__.alias("unit")
    sibling = Unit.__table__.alias("sibling")
    area = func.ST_Area(func.geography(func.ST_Intersection(unit.c.boundary, sibling.c.boundary)))
    stmt = (
        select(sibling.c.id.label("unit_id"), sibling.c.name, area.label("area_m2"))
        .select_from(unit)
        .join(
            sibling,
            sibling.c.parent_id.is_not_distinct_from(unit.c.parent_id)
            & (sibling.c.kind == unit.c.kind)
            & (sibling.c.id != unit.c.id)
            & func.ST_Intersects(sibling.c.boundary, unit.c.boundary),
        )
        .where(unit.c.id == unit_id, area > min_area_m2)
        .order_by(sibling.c.id)
    )
    return list(session.execute(stmt))


def unit_contents(session: Session, unit_id: int) -> dict[str, int]:
    """Return what still refers to a unit: units below, people, staff accounts, patrols.

    Args:
        session: a session.
        unit_id: the unit.

    Returns:
        Counts keyed units, people, users and patrol_assignments.
    """

    def count(column: Any) -> Any:
        return select(func.count()).where(column == unit_id).scalar_subquery()

    row = session.execute(
        select(
            count(Unit.parent_id).label("units"),
            count(Person.unit_id).label("people"),
            count(User.unit_id).label("users"),
            count(Person.patrol_unit_id).label("patrol_assignments"),
        )
    ).one()
    return dict(row._mapping)


def delete_unit(session: Session, unit_id: int) -> None:
    """Delete a unit that nothing refers to any more; fixes inside it lose their grid."""
    lp = LatestPosition.__table__
    session.execute(update(lp).where(lp.c.grid_id == unit_id).values(grid_id=None))
    session.execute(Unit.__table__.delete().where(Unit.__table__.c.id == unit_id))


def units_for_export(session: Session, root_id: int | None) -> list[Any]:
    """Return the units with a boundary, parents before children, for a GeoJSON export.

    Args:
        session: a session.
        root_id: export this unit and the units below it; None: every unit.

    Returns:
        Rows with id, name, kind, parent_id, parent_name and geojson (full precision, so
        that importing the file again stores the same coordinates), by depth then id.
    """
    units = Unit.__table__
    top = units.c.id == root_id if root_id is not None else units.c.parent_id.is_(None)
    start = select(units.c.id, literal_column("0").label("depth")).where(top)
    tree = start.cte("export_tree", recursive=True)
    tree = tree.union_all(
        select(units.c.id, (tree.c.depth + 1).label("depth")).where(units.c.parent_id == tree.c.id)
    )
    parent = units.alias("parent")
    stmt = (
        select(
            units.c.id,
            units.c.name,
            units.c.kind,
            units.c.parent_id,
            parent.c.name.label("parent_name"),
            func.ST_AsGeoJSON(units.c.boundary, 15).label("geojson"),
        )
        .join(tree, tree.c.id == units.c.id)
        .outerjoin(parent, parent.c.id == units.c.parent_id)
        .where(units.c.boundary.isnot(None))
        .order_by(tree.c.depth, units.c.id)
    )
    return list(session.execute(stmt))


def unit_boundary_ewkb(session: Session, unit_id: int) -> bytes | None:
    """Return a unit's stored boundary as EWKB, to tell whether an import changed it."""
    stmt = select(func.ST_AsEWKB(Unit.boundary)).where(Unit.id == unit_id)
    value = session.execute(stmt).scalar()
    return bytes(value) if value is not None else None


def unit_boundary_geojson(session: Session, unit_id: int) -> str | None:
    """Return a unit's stored boundary as GeoJSON text (full precision), or None."""
    stmt = select(func.ST_AsGeoJSON(Unit.boundary, 15)).where(Unit.id == unit_id)
    return session.execute(stmt).scalar()


def units_outside_fingerprint(session: Session, root_id: int) -> str:
    """Return a digest of every unit outside a subtree: names, kinds, parents, boundaries.

    An import by a scoped account compares it before and after, in one transaction, to
    refuse a file that would create or change a unit outside the account's scope.
    """
    inside = select(unit_subtree(root_id).c.id)
    row = func.concat_ws(
        "|",
        Unit.id,
        Unit.name,
        Unit.kind,
        Unit.parent_id,
        func.md5(func.coalesce(func.ST_AsEWKB(Unit.boundary), b"")),
    )
    digest = select(
        func.md5(func.coalesce(func.string_agg(row, aggregate_order_by(literal(","), Unit.id)), ""))
    ).where(Unit.id.not_in(inside))
    return str(session.execute(digest).scalar_one())
