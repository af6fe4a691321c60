"""How much of a grid the day's on-duty tracks came near: the one place that decides it.

Today every grid is measured by area (`area`): the share of the grid's area within the
radius of the tracks, in PostGIS (store.assessment.coverage(), docs/reports.md). Where an
office imports street centre-lines or checkpoints, add a method here that measures those
instead (centre-line length within the radius ÷ centre-line length, or checkpoints visited
÷ checkpoints) with its own store query, and choose it per grid in `method_for()`; the
tracks, their pieces and the report rows stay as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from .. import store

METHODS = ("area",)


def method_for(grid_id: int) -> str:
    """Return the coverage method of a grid: `area` until street data exists."""
    return "area"


def coverage(
    session: Session,
    grid_ids: Sequence[int],
    track_pieces: Sequence[str],
    radius_m: float,
    geometry: bool = False,
) -> dict[int, tuple[float, str | None]]:
    """Return each grid's covered share (0..1) and, if asked, the covered area as GeoJSON.

    Args:
        session: a session.
        grid_ids: the grids.
        track_pieces: the on-duty tracks as WKT LINESTRING pieces (person_days.track_pieces()).
        radius_m: how near counts as covered.
        geometry: also return the covered area (for the coverage map).

    Returns:
        A mapping of grid id to (share, GeoJSON or None); grids no track came near are absent.
    """
    by_area = [g for g in grid_ids if method_for(g) == "area"]
    return store.assessment.coverage(session, by_area, track_pieces, radius_m, geometry)
