"""The report's fast geometry equals the plain computation it replaces: intervals, pieces
and the grid a fix is in (the covered share of a grid: tests/db/test_coverage.py)."""

from __future__ import annotations

import math
import random

import numpy as np
import shapely

from tracker.assessment.grid_days import GridIndex, merge_sorted
from tracker.assessment.periods import merge
from tracker.assessment.person_days import cut_lines, track_pieces
from tracker.history.filter import Fix, Track

LAT, LON = 39.90, 116.30
PER_DEG_LAT = 111_320.0
PER_DEG_LON = PER_DEG_LAT * math.cos(math.radians(LAT))


def walk(seed: int, n: int, size_m: float = 300.0) -> np.ndarray:
    """Return n lon/lat points of a jittery walk that turns back at the edges of a square."""
    rng = random.Random(seed)
    x, y, heading = size_m / 2, size_m / 2, 0.0
    out = []
    for _ in range(n):
        heading += rng.gauss(0, 0.3)
        x += 6.5 * math.cos(heading)
        y += 6.5 * math.sin(heading)
        if not (-40 < x < size_m + 40 and -40 < y < size_m + 40):
            heading += math.pi
        out.append(
            (LON + (x + rng.gauss(0, 4)) / PER_DEG_LON, LAT + (y + rng.gauss(0, 4)) / PER_DEG_LAT)
        )
    return np.array(out)


def square(x0_m: float, y0_m: float, size_m: float) -> shapely.Polygon:
    """Return a lon/lat square with its south-west corner x0_m east, y0_m north of the origin."""
    west, south = LON + x0_m / PER_DEG_LON, LAT + y0_m / PER_DEG_LAT
    return shapely.box(west, south, west + size_m / PER_DEG_LON, south + size_m / PER_DEG_LAT)


def test_merge_sorted_is_merge():
    """Merged in numpy, sorted intervals give what periods.merge() gives."""
    rng = random.Random(1)
    for _ in range(200):
        starts = sorted(rng.uniform(0, 1000) for _ in range(rng.randint(0, 40)))
        intervals = [(a, a + rng.choice([0.5, 5.0, 50.0])) for a in starts]
        # Steps that touch end to start, as consecutive fixes do.
        intervals += [(b, b + 3.0) for _, b in intervals[:5]]
        intervals.sort()
        got = merge_sorted(np.array([a for a, _ in intervals]), np.array([b for _, b in intervals]))
        assert got == merge(intervals)


def test_pieces_are_the_lines_cut_with_shared_ends():
    """Pieces have at most `size` vertices and rejoin to the simplified lines."""
    lines = [walk(2, 333), walk(3, 2), walk(4, 41), walk(5, 40)]
    for size in (2, 10, 40):
        pieces = cut_lines(np.array([shapely.LineString(a) for a in lines]), size)
        assert all(2 <= n <= size for n in shapely.get_num_coordinates(pieces))
        rejoined, i = [], 0
        for line in lines:
            coords = [pieces[i].coords[0]]
            while len(coords) < len(line):
                coords += pieces[i].coords[1:]
                i += 1
            rejoined.append(np.array(coords))
        assert i == len(pieces)
        for line, again in zip(lines, rejoined, strict=True):
            assert np.array_equal(line, again)
    simplified = track_pieces(lines, simplify_m=2.5)
    assert shapely.get_num_coordinates(simplified).sum() < sum(len(a) for a in lines) + len(
        simplified
    )


def test_locate_puts_a_fix_in_the_smallest_grid_that_covers_it():
    """A nested grid wins over its parent, whichever way the fixes are placed."""
    grids = {1: square(0, 0, 900), 2: square(300, 300, 300), 3: square(2000, 0, 300)}
    for geom in grids.values():
        shapely.prepare(geom)
    points = np.vstack([walk(6, 500, 900), [[LON - 1, LAT - 1]]])
    fixes = Track.of([Fix(float(i), lat, lon) for i, (lon, lat) in enumerate(points)])
    index = GridIndex(grids)
    near = index.locate(fixes)
    index.MAX_CANDIDATES = 0  # the point-by-point way
    assert np.array_equal(near, index.locate(fixes))
    assert set(near.tolist()) == {-1, 1, 2}
    inside_2 = shapely.intersects_xy(grids[2], points[:, 0], points[:, 1])
    assert np.array_equal(near == 2, inside_2)
