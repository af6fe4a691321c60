"""Validate position batches from phones; pure functions, no Flask and no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import isfinite
from typing import Any, NamedTuple

# accuracy, altitude, speed, heading and battery are stored as PostgreSQL `real`
# (IEEE-754 single precision): larger magnitudes cannot be stored at all, and non-zero
# magnitudes below half the smallest single-precision number would round to zero, which
# PostgreSQL refuses as an underflow instead of rounding.
REAL_MAX = 3.4028234663852886e38
REAL_SMALLEST = 1e-45
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PayloadError(ValueError):
    """The whole payload is unusable; nothing of it is stored."""


class Fix(NamedTuple):
    """One validated GPS fix, in stored units.

    A named tuple rather than a frozen dataclass: tens of thousands are built per second on
    the ingest path, and a frozen dataclass pays for a setattr call per field.
    """

    ts: datetime
    lat: float
    lon: float
    accuracy_m: float | None = None
    altitude_m: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None
    battery: float | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the item at `index` of a batch was not stored."""

    index: int
    error: str

    def as_dict(self) -> dict[str, Any]:
        """Return the rejection as it appears in an acknowledgement."""
        return {"index": self.index, "error": self.error}


@dataclass(frozen=True, slots=True)
class Limits:
    """The rules a batch is checked against."""

    max_items: int = 500
    max_future: timedelta = timedelta(minutes=5)
    # Live fixes must be recent; imports of recorded tracks use `earliest` instead.
    max_age: timedelta | None = timedelta(days=7)
    earliest: datetime | None = None


class ItemError(ValueError):
    """One field of one item breaks a rule."""


def _number(item: dict[str, Any], field: str, required: bool) -> float | None:
    """Return item[field] as a finite float, or raise ItemError naming the field."""
    value = item.get(field)
    # Exact type checks: JSON decoders give plain int and float, and bool (a subclass of
    # int) must not pass as 1.
    if type(value) is float:
        number = value
    elif type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            raise ItemError(f"{field}: must be a finite number") from None
    elif value is None:
        if required:
            raise ItemError(f"{field}: is required")
        return None
    else:
        raise ItemError(f"{field}: must be a number, got {type(value).__name__}")
    if not isfinite(number):
        raise ItemError(f"{field}: must be a finite number")
    return number


def _real(item: dict[str, Any], field: str) -> float | None:
    """Return optional item[field] as a float that a `real` column stores, or raise ItemError."""
    number = _number(item, field, required=False)
    if number is None:
        return None
    magnitude = abs(number)
    if magnitude > REAL_MAX:
        raise ItemError(f"{field}: must be at most 3.4e38 in magnitude")
    if magnitude < REAL_SMALLEST:
        # What single precision would round it to anyway.
        return 0.0
    return number


def parse_ts(value: Any) -> datetime:
    """Parse an ISO-8601 string with a UTC offset, or integer epoch milliseconds."""
    if isinstance(value, bool):
        raise ItemError("ts: must be an ISO-8601 string or integer epoch milliseconds")
    if isinstance(value, int):
        try:
            # Integer arithmetic: exact to the millisecond up to the year 9999, where a
            # division into float seconds is not.
            return _EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            raise ItemError("ts: epoch milliseconds outside the years 1 to 9999") from None
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise ItemError("ts: not an ISO-8601 date-time") from None
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise ItemError("ts: must include a UTC offset (e.g. Z or +08:00)")
        try:
            return ts.astimezone(UTC)
        except OverflowError:
            # 9999-12-31T23:59:59-23:59 is a valid string but has no UTC instant in range.
            raise ItemError("ts: outside the years 1 to 9999 in UTC") from None
    if isinstance(value, float):
        raise ItemError("ts: epoch milliseconds must be an integer")
    if value is None:
        raise ItemError("ts: is required")
    raise ItemError("ts: must be an ISO-8601 string or integer epoch milliseconds")


@dataclass(frozen=True, slots=True)
class _Window:
    """The accepted range of fix times for one batch, worked out once per batch."""

    latest: datetime
    earliest: datetime | None
    too_old: str

    @classmethod
    def of(cls, now: datetime, limits: Limits) -> _Window:
        """Return the window that `limits` allow at `now`."""
        candidates = []
        if limits.max_age is not None:
            candidates.append(
                (now - limits.max_age, f"older than {int(limits.max_age.total_seconds())} s")
            )
        if limits.earliest is not None:
            candidates.append(
                (
                    limits.earliest,
                    f"before {limits.earliest.date().isoformat()}, the earliest accepted",
                )
            )
        earliest, too_old = max(candidates, key=lambda c: c[0]) if candidates else (None, "")
        return cls(now + limits.max_future, earliest, f"ts: {too_old}")

    def check(self, ts: datetime, limits: Limits) -> datetime:
        """Return ts if it falls in the window, or raise ItemError saying which end it misses."""
        if ts > self.latest:
            raise ItemError(
                f"ts: more than {int(limits.max_future.total_seconds())} s in the future"
            )
        if self.earliest is not None and ts < self.earliest:
            raise ItemError(self.too_old)
        return ts


def parse_recent_ts(value: Any, now: datetime, limits: Limits) -> datetime:
    """Parse a time (as parse_ts) that must fall in the window `limits` allow at `now`."""
    return _Window.of(now, limits).check(parse_ts(value), limits)


def parse_fix(item: Any, now: datetime, limits: Limits) -> Fix:
    """Validate one item of a batch and return it as a Fix, or raise ItemError."""
    return _parse_fix(item, _Window.of(now, limits), limits)


def _parse_fix(item: Any, window: _Window, limits: Limits) -> Fix:
    """Validate one item against a batch's time window; see parse_fix()."""
    if type(item) is not dict:
        raise ItemError(f"item: must be an object, got {type(item).__name__}")
    ts = window.check(parse_ts(item.get("ts")), limits)
    lat = _number(item, "lat", required=True)
    lon = _number(item, "lon", required=True)
    assert lat is not None and lon is not None
    if not -90 <= lat <= 90:
        raise ItemError("lat: must be between -90 and 90")
    if not -180 <= lon <= 180:
        raise ItemError("lon: must be between -180 and 180")
    if lat == 0 and lon == 0:
        # (0, 0) is what broken GPS stacks report when they have no fix.
        raise ItemError("lat/lon: (0, 0) is not a real fix")
    accuracy = _real(item, "accuracy")
    if accuracy is not None and accuracy < 0:
        raise ItemError("accuracy: must be >= 0")
    speed = _real(item, "speed")
    if speed is not None and speed < 0:
        raise ItemError("speed: must be >= 0")
    heading = _real(item, "heading")
    if heading is not None and not 0 <= heading < 360:
        raise ItemError("heading: must be in [0, 360)")
    battery = _real(item, "battery")
    if battery is not None and not 0 <= battery <= 1:
        raise ItemError("battery: must be between 0 and 1")
    altitude = _real(item, "altitude")
    return Fix(ts, lat, lon, accuracy, altitude, speed, heading, battery)


def parse_batch(
    payload: Any, now: datetime, limits: Limits
) -> tuple[list[tuple[int, Fix]], list[Rejection]]:
    """Split a `positions` payload into valid fixes (with their indexes) and rejections.

    Args:
        payload: the decoded JSON object `{"positions": [...]}`.
        now: the server's current time, aware.
        limits: the rules to apply.

    Returns:
        (fixes, rejections): each valid item with its index in the batch, and the rest.

    Raises:
        PayloadError: the payload as a whole is malformed; nothing may be stored.
    """
    if not isinstance(payload, dict):
        raise PayloadError(f"payload: must be an object, got {type(payload).__name__}")
    items = payload.get("positions")
    if not isinstance(items, list):
        raise PayloadError("positions: must be a list")
    if not 1 <= len(items) <= limits.max_items:
        raise PayloadError(f"positions: must hold 1 to {limits.max_items} items, got {len(items)}")
    fixes: list[tuple[int, Fix]] = []
    rejections: list[Rejection] = []
    window = _Window.of(now, limits)
    for index, item in enumerate(items):
        try:
            fixes.append((index, _parse_fix(item, window, limits)))
        except ItemError as exc:
            rejections.append(Rejection(index, str(exc)))
    return fixes, rejections
