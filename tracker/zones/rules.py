"""The alert rules as pure functions: given what was concluded before and a new fact, decide.

No Flask, no database: tests drive them with plain numbers and an injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class ZoneRule:
    """How far past the border a fix must be before the person counts as across it.

    GPS jitter moves a standing person by about their fix's accuracy, so a fix only counts
    as inside (or outside) when it is more than `max(min_margin_m, accuracy)` metres inside
    (or outside) the boundary, capped at `max_margin_m` so that a terrible fix cannot hide
    a real exit for ever. Between the two, the previous conclusion stands: walking along
    the border raises nothing.
    """

    min_margin_m: float = 15.0
    max_margin_m: float = 100.0

    def margin_m(self, accuracy_m: float | None) -> float:
        """Return the hysteresis margin for a fix of this accuracy."""
        return min(max(self.min_margin_m, accuracy_m or 0.0), self.max_margin_m)

    def next_inside(
        self, inside: bool | None, signed_distance_m: float, accuracy_m: float | None
    ) -> bool | None:
        """Return whether the person is now inside their zone.

        Args:
            inside: the previous conclusion (None: not known yet).
            signed_distance_m: distance from the boundary, negative inside the zone.
            accuracy_m: the fix's accuracy radius, if known.

        Returns:
            True, False, or the previous conclusion when the fix is within the margin.
        """
        margin = self.margin_m(accuracy_m)
        if signed_distance_m > margin:
            return False
        if signed_distance_m < -margin:
            return True
        return inside


def zone_alert(before: bool | None, after: bool | None) -> str | None:
    """Return `zone_exit` or `zone_enter` for a change of conclusion, else None.

    The first conclusion about a person (from None) raises nothing: it is where their shift
    started, not a movement.
    """
    if before is True and after is False:
        return "zone_exit"
    if before is False and after is True:
        return "zone_enter"
    return None


@dataclass(frozen=True, slots=True)
class BatteryRule:
    """Low below `low`, and back to normal only above `low + recover_margin`."""

    low: float = 0.15
    recover_margin: float = 0.05

    def next_low(self, was_low: bool, battery: float | None) -> bool:
        """Return whether the battery now counts as low."""
        if battery is None:
            return was_low
        if battery < self.low:
            return True
        if battery > self.low + self.recover_margin:
            return False
        return was_low


def signal_lost(last_fix_at: datetime, now: datetime, after: timedelta) -> bool:
    """Return whether an on-duty person whose newest fix is `last_fix_at` has gone silent."""
    return now - last_fix_at > after
