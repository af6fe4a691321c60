"""Where simulated phones go: patrol walks inside an area, or recorded traces replayed."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from shapely import Point
from shapely.geometry.base import BaseGeometry

METRES_PER_DEGREE = 111_320.0


def random_point_in(area: BaseGeometry, rng: random.Random) -> tuple[float, float]:
    """Return a uniformly random (lat, lon) inside an area of lon/lat coordinates."""
    west, south, east, north = area.bounds
    for _ in range(10_000):
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        if area.contains(Point(lon, lat)):
            return lat, lon
    point = area.representative_point()
    return point.y, point.x


@dataclass
class PatrolWalk:
    """A person walking at about 1.4 m/s, turning gently, staying inside their area."""

    area: BaseGeometry
    rng: random.Random
    lat: float = 0.0
    lon: float = 0.0
    heading_rad: float = 0.0
    speed_mps: float = 1.4

    def __post_init__(self) -> None:
        """Start at a random point inside the area, facing a random way."""
        self.lat, self.lon = random_point_in(self.area, self.rng)
        self.heading_rad = self.rng.uniform(0, 2 * math.pi)

    def step(self, seconds: float) -> tuple[float, float, float, float]:
        """Walk for `seconds`; return (lat, lon, heading_deg, speed_mps)."""
        for _ in range(8):
            heading = self.heading_rad + self.rng.gauss(0, 0.35)
            speed = max(0.0, self.rng.gauss(self.speed_mps, 0.2))
            metres = speed * seconds
            lat = self.lat + metres * math.cos(heading) / METRES_PER_DEGREE
            lon = self.lon + metres * math.sin(heading) / (
                METRES_PER_DEGREE * math.cos(math.radians(self.lat))
            )
            if self.area.contains(Point(lon, lat)):
                self.lat, self.lon, self.heading_rad = lat, lon, heading
                return lat, lon, math.degrees(heading) % 360, speed
            # Hit the boundary: turn round, as a patrol does at the edge of its grid.
            self.heading_rad += math.pi / 2 + self.rng.uniform(0, math.pi)
        return self.lat, self.lon, math.degrees(self.heading_rad) % 360, 0.0


@dataclass
class TraceReplay:
    """A recorded trace, moved so that it starts at a chosen point, replayed point by point."""

    points: Sequence[tuple[float, float]]
    start_lat: float
    start_lon: float
    index: int = 0

    def step(self, seconds: float) -> tuple[float, float, float, float]:
        """Return the next point of the trace (looping), with heading and speed from the last."""
        first_lat, first_lon = self.points[0]
        lat0, lon0 = self.points[(self.index - 1) % len(self.points)]
        lat1, lon1 = self.points[self.index % len(self.points)]
        self.index += 1
        d_north = (lat1 - lat0) * METRES_PER_DEGREE
        d_east = (lon1 - lon0) * METRES_PER_DEGREE * math.cos(math.radians(lat1))
        heading = math.degrees(math.atan2(d_east, d_north)) % 360
        speed = math.hypot(d_north, d_east) / seconds if self.index > 1 else 0.0
        return (
            lat1 - first_lat + self.start_lat,
            lon1 - first_lon + self.start_lon,
            heading,
            min(speed, 60.0),
        )
