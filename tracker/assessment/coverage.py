"""How much of a grid the day's on-duty tracks came near: the one place that decides it.

Today every grid is measured by area (`area`): the share of the grid's area within the
radius of the tracks, in PostGIS (store.assessment.coverage(), docs/reports.md). Where an
office imports street centre-lines or checkpoints, add a method here that measures those
instead (centre-line length within the radius ÷ centre-line length, or checkpoints visited
÷ checkpoints) with its own store query, and choose it per grid in `method_for()`; the
tracks, their pieces and the report rows stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from .. import store
from .keys import inputs_key

METHODS = ("area",)
# Grids measured per query: each query carries only the track pieces near its grids.
GRIDS_PER_QUERY = 50


def method_for(grid_id: int) -> str:
    """Return the coverage method of a grid: `area` until street data exists."""
    return "area"


@dataclass(slots=True)
class DayTrack:
    """One person-day's on-duty track for coverage: its key, its extent, its pieces."""

    person_id: int
    key: str | None  # the person-day's key; None for one that is not kept
    bounds: tuple[float, float, float, float] | None  # None: no track
    pieces: list[shapely.LineString] | None = None  # None: kept, not read yet


def coverage(
    session: Session,
    grids: Mapping[int, BaseGeometry],
    tracks: Sequence[DayTrack],
    radius_m: float,
    geometry: bool = False,
    day: date | None = None,
    load: Callable[[list[int]], dict[int, list[shapely.LineString]]] | None = None,
) -> dict[int, tuple[float, str | None]]:
    """Return each grid's covered share (0..1) and, if asked, the covered area as GeoJSON.

    Args:
        session: a session.
        grids: the grids' boundaries by id.
        tracks: the person-days' on-duty tracks (pieces from person_days.track_pieces()).
        radius_m: how near counts as covered.
        geometry: also return the covered area (for the coverage map).
        day: the day, to read and keep each grid's share in report_grid_days under the key
            of its boundary and the person-days near it; None computes every grid.
        load: reads the pieces of tracks whose pieces are None, by person id; only the
            tracks near a grid that must be computed again are read.

    Returns:
        A mapping of grid id to (share, GeoJSON or None); grids no track came near are absent.
    """
    by_area = [g for g in grids if method_for(g) == "area"]
    tracks = [t for t in tracks if t.bounds is not None]
    if not by_area or not tracks:
        return {}
    margin_deg = (radius_m * 1.01 + 1) / 111_320 / 0.5
    extents = shapely.STRtree([shapely.box(*t.bounds) for t in tracks])

    def grown(bounds: Sequence[float]) -> BaseGeometry:
        west, south, east, north = bounds
        return shapely.box(
            west - margin_deg, south - margin_deg, east + margin_deg, north + margin_deg
        )

    out: dict[int, tuple[float, str | None]] = {}
    keys: dict[int, str | None] = {}
    if day is not None and not geometry:
        for grid_id in by_area:
            near_keys = {
                tracks[i].key for i in extents.query(grown(grids[grid_id].bounds)).tolist()
            }
            keys[grid_id] = (
                None
                if None in near_keys
                else inputs_key(shapely.to_wkb(grids[grid_id]).hex(), radius_m, sorted(near_keys))
            )
        kept = store.assessment.cached_grid_days(session, by_area, day)
        for grid_id in by_area:
            row = kept.get(grid_id)
            if keys[grid_id] is not None and row is not None and row.inputs_key == keys[grid_id]:
                out[grid_id] = (float(row.coverage_ratio), None)
    todo = [g for g in by_area if g not in out]
    if not todo:
        return out
    needed = sorted(set(extents.query([grown(grids[g].bounds) for g in todo])[1].tolist()))
    unread = [tracks[i].person_id for i in needed if tracks[i].pieces is None]
    loaded = load(unread) if unread and load is not None else {}
    pieces = [
        piece
        for i in needed
        for piece in (
            tracks[i].pieces
            if tracks[i].pieces is not None
            else loaded.get(tracks[i].person_id, [])
        )
    ]
    fresh: dict[int, tuple[float, str | None]] = {}
    if pieces:
        geoms = np.asarray(pieces, dtype=object)
        tree = shapely.STRtree(geoms)
        # Neighbouring grids in one query: sorted by where they lie, cut in runs.
        centres = shapely.centroid([grids[g] for g in todo])
        order = np.lexsort((shapely.get_x(centres), np.round(shapely.get_y(centres), 2)))
        for start in range(0, len(order), GRIDS_PER_QUERY):
            chunk = [todo[i] for i in order[start : start + GRIDS_PER_QUERY]]
            near = tree.query(grown(shapely.total_bounds([grids[g] for g in chunk])))
            if len(near):
                wkts = shapely.to_wkt(geoms[near], rounding_precision=7)
                fresh.update(
                    store.assessment.coverage(session, chunk, list(wkts), radius_m, geometry)
                )
    if day is not None and keys:
        store.assessment.save_grid_days(
            session,
            [
                {
                    "grid_id": g,
                    "day": day,
                    "inputs_key": keys[g],
                    "coverage_ratio": fresh.get(g, (0.0, None))[0],
                }
                for g in todo
                if keys.get(g) is not None
            ],
        )
    out.update(fresh)
    return out
