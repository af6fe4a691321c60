"""How much of a grid the day's on-duty tracks came near: the one place that decides it.

Today every grid is measured by area (`area`): the share of the grid's area within the
radius of the tracks, computed in PostGIS (`area_share()`, docs/reports.md); this module
chooses the pieces near each grid and the method's parameters. Where an office imports
street centre-lines or checkpoints, add a method here that measures those instead
(centre-line length within the radius ÷ centre-line length, or checkpoints visited ÷
checkpoints) and choose it per grid in `method_for()`; the tracks, their pieces and the
report rows stay as they are.
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
# Buffers are made of pieces of at most this many vertices: a walking phone's zigzag
# makes the offset curves of a longer piece cross themselves, and GEOS's cost grows
# faster than the piece (10 vertices: a third of the time of 40 for the same area).
PIECE_VERTICES = 10
# Pieces buffered together before the uncovered rest of the grid is measured again.
PIECES_PER_ROUND = 16
METRES_PER_DEG_LAT = 111_320.0


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
    margin_deg = margin(radius_m)
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
        known = {g: key for g, key in keys.items() if key is not None}
        for grid_id, ratio in store.assessment.cached_grid_days(session, known, day).items():
            out[grid_id] = (float(ratio), None)
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
        for grid_id in todo:
            near = tree.query(grown(grids[grid_id].bounds))
            if len(near):
                fresh[grid_id] = area_share(
                    session, grids[grid_id], geoms[near], radius_m, geometry
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


def margin(radius_m: float) -> float:
    """Return the degrees to grow a grid's box by so that it holds every track near it."""
    # A degree of longitude is shortest at the poles; 60° covers every city on Earth.
    return (radius_m * 1.01 + 1) / METRES_PER_DEG_LAT / 0.5


def area_share(
    session: Session,
    grid: BaseGeometry,
    pieces: np.ndarray,
    radius_m: float,
    geometry: bool = False,
) -> tuple[float, str | None]:
    """Return the share of a grid's area within radius_m of track pieces, and that area.

    Computed in PostGIS, one statement per grid (store.assessment.area_share()). The
    pieces are clipped to the grid's box grown by the radius (nothing farther can cover
    the grid), projected with the grid to the UTM zone of its centre (a conformal
    projection a few km across), simplified by Douglas-Peucker (at most a tenth of the
    radius off the track: a phone's jitter otherwise makes the buffers 10x slower for
    0.02 % of the area), cut into pieces of PIECE_VERTICES and buffered by the radius
    (8 segments a quarter circle). Rather than unioning every buffer, the buffers are
    taken away from the grid PIECES_PER_ROUND at a time, and each round takes only pieces
    that still come within the radius of what is left: a grid walked all day is covered
    after a few hundred of its thousands of pieces, and the rest are never buffered. The
    result is the area of the same union of buffers inside the grid.

    Args:
        session: a session.
        grid: the grid's boundary, WGS-84.
        pieces: LineStrings in WGS-84 near the grid (person_days.track_pieces()).
        radius_m: how near counts as covered.
        geometry: also return the covered area as GeoJSON (WGS-84, 6 decimals).

    Returns:
        (share 0..1, GeoJSON text or None).
    """
    return store.assessment.area_share(
        session,
        shapely.to_wkb(grid),
        shapely.to_wkb(pieces).tolist(),
        radius_m,
        margin_deg=margin(radius_m),
        simplify_m=radius_m / 10,
        piece_vertices=PIECE_VERTICES,
        per_round=PIECES_PER_ROUND,
        geometry=geometry,
    )
