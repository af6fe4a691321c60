"""Days of the configured time zone and arithmetic on time intervals (epoch seconds)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[float, float]  # [start, end) in epoch seconds


@dataclass(frozen=True, slots=True)
class Day:
    """A calendar day of the report's time zone as an epoch-second interval."""

    day: date
    start: float
    end: float

    @property
    def length_s(self) -> float:
        """Return the length of the day: 23 or 25 h on a daylight-saving change."""
        return self.end - self.start


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """Return the first instant of a day in a zone."""
    return datetime.combine(day, time.min, zone)


def days(first: date, last: date, zone: ZoneInfo) -> list[Day]:
    """Return the days from first to last inclusive, each as its epoch-second interval."""
    out = []
    day = first
    while day <= last:
        out.append(
            Day(
                day,
                midnight(day, zone).timestamp(),
                midnight(day + timedelta(days=1), zone).timestamp(),
            )
        )
        day += timedelta(days=1)
    return out


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Return the union of intervals as sorted, disjoint, non-empty intervals."""
    out: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def clip(intervals: Iterable[Interval], start: float, end: float) -> list[Interval]:
    """Return the parts of intervals that lie within [start, end)."""
    return [(max(a, start), min(b, end)) for a, b in intervals if min(b, end) > max(a, start)]


def total_s(intervals: Iterable[Interval]) -> float:
    """Return the summed length of intervals (overlaps counted twice: merge first)."""
    return sum(b - a for a, b in intervals)


def gaps(intervals: Sequence[Interval], start: float, end: float) -> list[Interval]:
    """Return the parts of [start, end) that merged, sorted intervals leave uncovered."""
    out: list[Interval] = []
    cursor = start
    for a, b in intervals:
        if b <= start or a >= end:
            continue
        if a > cursor:
            out.append((cursor, min(a, end)))
        cursor = max(cursor, b)
    if cursor < end:
        out.append((cursor, end))
    return out


def hourly_s(intervals: Iterable[Interval], day: Day) -> list[float]:
    """Return how many seconds of each hour of the day the intervals cover."""
    hours = int(round(day.length_s / 3600))
    out = [0.0] * hours
    for a, b in intervals:
        a, b = max(a, day.start), min(b, day.end)
        while a < b:
            hour = min(int((a - day.start) // 3600), hours - 1)
            edge = min(b, day.start + (hour + 1) * 3600)
            out[hour] += edge - a
            a = edge
    return out
