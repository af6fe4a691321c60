"""Coverage in PostGIS equals the plain computation it replaces: the grid's area within the
radius of every buffered piece, computed here with Shapely and pyproj."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from tests.unit.test_assessment_geometry import square, walk
from tracker.assessment import coverage
from tracker.assessment.person_days import cut_lines, track_pieces

RADIUS_M = 25.0
TO_UTM = Transformer.from_crs(4326, 32650, always_xy=True)  # the test grids' zone


def metres(geoms):
    """Return lon/lat geometries in UTM zone 50N."""
    return shapely.transform(
        geoms, lambda xy: np.column_stack(TO_UTM.transform(xy[:, 0], xy[:, 1]))
    )


def full_union_share(grid, pieces):
    """Return the share of the grid within RADIUS_M of every piece, all buffered, in Shapely."""
    west, south, east, north = grid.bounds
    grow = coverage.margin(RADIUS_M)
    clipped = shapely.get_parts(
        shapely.clip_by_rect(pieces, west - grow, south - grow, east + grow, north + grow)
    )
    clipped = clipped[~shapely.is_empty(clipped)]
    simplified = shapely.simplify(metres(clipped), RADIUS_M / 10, preserve_topology=False)
    buffers = shapely.buffer(cut_lines(simplified, coverage.PIECE_VERTICES), RADIUS_M)
    grid_m = metres(grid)
    return shapely.union_all(buffers).intersection(grid_m).area / grid_m.area


@pytest.mark.parametrize("seed", [7, 8])
def test_area_share_is_the_union_of_every_buffer(session, seed):
    """Taking buffers away a round at a time, skipping far pieces, gives the full union's area."""
    grid = square(0, 0, 300)
    lines = [walk(seed, 1500), walk(seed + 100, 300)]
    pieces = np.array(track_pieces(lines, simplify_m=2.5), dtype=object)
    share, covered = coverage.area_share(session, grid, pieces, RADIUS_M, geometry=True)
    expected = full_union_share(grid, pieces)
    assert 0.3 < expected < 0.999
    assert share == pytest.approx(expected, abs=1e-6)
    assert metres(shapely.from_geojson(covered)).area / metres(grid).area == pytest.approx(
        share, abs=1e-3
    )


def test_a_grid_walked_all_day_is_covered_before_every_piece_is_buffered(session):
    """The rounds stop once nothing is left: the share is still that of the full union."""
    grid = square(0, 0, 150)
    lines = [walk(seed, 3000, size_m=150) for seed in (9, 10)]
    pieces = np.array(track_pieces(lines, simplify_m=2.5), dtype=object)
    share, covered = coverage.area_share(session, grid, pieces, RADIUS_M)
    assert covered is None
    assert share == pytest.approx(full_union_share(grid, pieces), abs=1e-6)
    assert share == pytest.approx(1.0, abs=1e-9)


def test_pieces_beyond_the_radius_cover_nothing(session):
    """A track just outside the grid's grown box, or none at all, covers 0 %."""
    grid = square(0, 0, 300)
    far = np.array(track_pieces([walk(11, 200, size_m=100) + [0.01, 0]]), dtype=object)
    assert coverage.area_share(session, grid, far, RADIUS_M, geometry=True) == (0.0, None)
    empty = np.zeros(0, dtype=object)
    assert coverage.area_share(session, grid, empty, RADIUS_M, geometry=True) == (0.0, None)
