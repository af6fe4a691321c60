"""A person's fixes read as a day: the outlier rules, then stops, trips and distances."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .filter import Filtered, Fix, Rules, Track, filter_fixes
from .stops import Stop, Trip, detect_stops, trips_between


@dataclass(frozen=True, slots=True)
class Settings:
    """The outlier rules and the stop definition."""

    rules: Rules = field(default_factory=Rules)
    stop_radius_m: float = 50.0
    stop_min_s: float = 300.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Return the settings from HISTORY_* configuration values."""
        return cls(
            rules=Rules.from_config(config),
            stop_radius_m=float(config.get("HISTORY_STOP_RADIUS_M", 50.0)),
            stop_min_s=float(config.get("HISTORY_STOP_MIN_S", 300.0)),
        )


@dataclass(frozen=True, slots=True)
class Timeline:
    """The kept fixes of a period, its stops and trips, and its filtered distance."""

    filtered: Filtered
    stops: list[Stop]
    trips: list[Trip]

    @property
    def track(self) -> Track:
        """Return the fixes that passed the outlier rules, as columns."""
        return self.filtered.track

    @property
    def fixes(self) -> list[Fix]:
        """Return the fixes that passed the outlier rules."""
        return self.filtered.fixes

    @property
    def distance_m(self) -> float:
        """Return the filtered distance: the trips' distances; staying adds nothing."""
        return math.fsum(trip.distance_m for trip in self.trips)


def build_timeline(fixes: Sequence[Fix] | Track, settings: Settings | None = None) -> Timeline:
    """Filter a person's fixes and split them into stops and trips.

    Args:
        fixes: the fixes, oldest first, as Fix tuples or a Track.
        settings: rules and stop definition; the defaults when None.

    Returns:
        The timeline.
    """
    settings = settings or Settings()
    filtered = filter_fixes(fixes, settings.rules)
    stops = detect_stops(filtered.track, settings.stop_radius_m, settings.stop_min_s)
    return Timeline(filtered, stops, trips_between(filtered.track, filtered.step, stops))


def filtered_distance_m(fixes: Sequence[Fix] | Track, settings: Settings | None = None) -> float:
    """Return the distance of fixes under the outlier rules, stays adding nothing."""
    return build_timeline(fixes, settings).distance_m
