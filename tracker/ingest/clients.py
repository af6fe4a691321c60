"""Map the request formats of existing GPS apps onto /device position items.

Pure functions, no Flask: each takes what the app sent and returns the device token it
carried and the items in the /device protocol's units (docs/protocol.md), so that the
same validation, deduplication and group commit apply to every client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

KNOT_MPS = 1852 / 3600
KMH_MPS = 1000 / 3600
# Epoch values above this are milliseconds: as seconds they would be after the year 5138.
EPOCH_MS_THRESHOLD = 100_000_000_000


class ClientFormatError(ValueError):
    """The request is not in the client's format; the message names the parameter."""


@dataclass
class ClientRequest:
    """What a client sent, mapped onto the /device protocol."""

    token: str | None
    positions: list[dict[str, Any]]
    alarm: str | None = None
    ignored: list[str] = field(default_factory=list)


# A decimal number as the apps write it. Python's float() also reads "1_0", "nan",
# "infinity" and surrounding white space, none of which an app means as a number.
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _decimal(value: Any, name: str) -> float | None:
    """Return a parameter as a float; None when absent or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ClientFormatError(f"{name}: must be a number")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer beyond a double: validation names the field
            return math.inf
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise ClientFormatError(f"{name}: must be a decimal number, got {str(value)[:40]!r}")
    return float(value)


def _number(value: Any, name: str) -> float | None:
    """Return an optional parameter as a float; None when absent, empty or -1 (unknown)."""
    number = _decimal(value, name)
    return None if number == -1 else number


def _scaled(value: float | None, factor: float) -> float | None:
    """Return value * factor, keeping None."""
    return None if value is None else value * factor


def parse_timestamp(value: Any, name: str = "timestamp") -> int | str:
    """Return a client timestamp as epoch milliseconds or an ISO-8601 string with offset.

    Accepts epoch seconds, epoch milliseconds, ISO-8601, and `yyyy-MM-dd HH:mm:ss` (UTC).
    """
    if value is None or value == "":
        raise ClientFormatError(f"{name}: is required")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ClientFormatError(f"{name}: must be a number or a date-time string")
    text = str(value).strip()
    if isinstance(value, int | float) or _DECIMAL.fullmatch(text):
        try:
            epoch = float(value) if isinstance(value, float) else float(text)
        except OverflowError:
            epoch = math.inf
        if not math.isfinite(epoch):
            raise ClientFormatError(f"{name}: must be a finite number")
        return int(epoch if abs(epoch) >= EPOCH_MS_THRESHOLD else epoch * 1000)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ClientFormatError(
            f"{name}: not epoch seconds, epoch milliseconds, ISO-8601 or yyyy-MM-dd HH:mm:ss"
        ) from None
    if parsed.tzinfo is None:
        # OsmAnd's `yyyy-MM-dd HH:mm:ss` form is UTC by definition.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def _first(params: Mapping[str, str], *names: str) -> str | None:
    """Return the first parameter present among names."""
    for name in names:
        if name in params and params[name] != "":
            return params[name]
    return None


def parse_form_text(body: str) -> dict[str, str]:
    """Parse `a=1&b=2` text where lines may also separate pairs (GPSLogger's custom bodies).

    Parts without `=` (such as a free-text first line) are ignored.
    """
    from urllib.parse import unquote_plus

    params: dict[str, str] = {}
    for line in body.splitlines():
        for part in line.split("&"):
            key, sep, value = part.partition("=")
            if sep and key:
                params.setdefault(unquote_plus(key.strip()), unquote_plus(value))
    return params


def from_osmand(params: Mapping[str, str], path_token: str | None = None) -> ClientRequest:
    """Map an OsmAnd-protocol request (Traccar Client, OsmAnd, GPSLogger) to positions.

    Args:
        params: the query-string or form parameters.
        path_token: a token given in the URL path instead of `id`.

    Returns:
        The token and one position.

    Raises:
        ClientFormatError: a required parameter is missing or unreadable.
    """
    token = path_token or _first(params, "id", "deviceid")
    location = params.get("location")
    if location:
        lat_text, sep, lon_text = location.partition(",")
        if not sep:
            raise ClientFormatError("location: must be lat,lon")
    else:
        lat_text, lon_text = params.get("lat"), params.get("lon")
    # -1 means "unknown" only for optional values; it is a real latitude or longitude.
    lat = _decimal(lat_text, "lat")
    lon = _decimal(lon_text, "lon")
    if lat is None or lon is None:
        raise ClientFormatError("lat, lon: are required (or location=lat,lon)")
    item: dict[str, Any] = {
        "ts": parse_timestamp(_first(params, "timestamp", "time"), "timestamp"),
        "lat": lat,
        "lon": lon,
    }
    # OsmAnd and Traccar send `speed` in knots; GPSLogger's %SPD placeholder is m/s and is
    # sent as `spd` in the documented template, so the unit follows the parameter's name.
    if params.get("speed") not in (None, ""):
        item["speed"] = _scaled(_number(params["speed"], "speed"), KNOT_MPS)
    elif params.get("spd") not in (None, ""):
        item["speed"] = _number(params["spd"], "spd")
    heading = _first(params, "bearing", "heading", "dir")
    item["heading"] = _number(heading, "bearing")
    item["altitude"] = _number(_first(params, "altitude", "alt"), "altitude")
    item["accuracy"] = _number(_first(params, "accuracy", "acc"), "accuracy")
    item["battery"] = _scaled(_number(_first(params, "batt", "battery"), "batt"), 0.01)
    if item["heading"] is not None:
        item["heading"] %= 360
    alarm = params.get("alarm") or None
    return ClientRequest(token, [_drop_unknown(item)], alarm=alarm)


def from_traccar_json(body: Any) -> ClientRequest:
    """Map the JSON body of Traccar Client 9 (`device_id`, `location.coords`...) to positions."""
    if not isinstance(body, dict) or not isinstance(body.get("location"), dict):
        raise ClientFormatError("location: must be an object")
    location = body["location"]
    coords = location.get("coords")
    if not isinstance(coords, dict):
        raise ClientFormatError("location.coords: must be an object")
    battery = location.get("battery") if isinstance(location.get("battery"), dict) else {}
    item: dict[str, Any] = {
        "ts": parse_timestamp(location.get("timestamp"), "location.timestamp"),
        "lat": coords.get("latitude"),
        "lon": coords.get("longitude"),
        "accuracy": _number(coords.get("accuracy"), "location.coords.accuracy"),
        "altitude": _number(coords.get("altitude"), "location.coords.altitude"),
        "speed": _number(coords.get("speed"), "location.coords.speed"),
        "heading": _number(coords.get("heading"), "location.coords.heading"),
        "battery": _number(battery.get("level"), "location.battery.level"),
    }
    device_id = body.get("device_id")
    token = str(device_id) if device_id not in (None, "") else None
    alarm = (
        location.get("extras", {}).get("alarm")
        if isinstance(location.get("extras"), dict)
        else None
    )
    return ClientRequest(token, [_drop_unknown(item)], alarm=alarm)


def from_owntracks(body: Any) -> ClientRequest:
    """Map an OwnTracks HTTP message; only `_type: location` carries a position."""
    if not isinstance(body, dict):
        raise ClientFormatError("body: must be a JSON object")
    kind = body.get("_type")
    if kind != "location":
        return ClientRequest(None, [], ignored=[str(kind)])
    if "tst" not in body:
        raise ClientFormatError("tst: is required")
    tst = body["tst"]
    if isinstance(tst, bool) or not isinstance(tst, int | float):
        raise ClientFormatError("tst: must be epoch seconds")
    if not (isinstance(tst, int) or math.isfinite(tst)) or not 0 <= tst < 253402300800:
        raise ClientFormatError("tst: must be epoch seconds between 1970 and 9999")
    item: dict[str, Any] = {
        "ts": int(tst * 1000),
        "lat": body.get("lat"),
        "lon": body.get("lon"),
        "accuracy": _number(body.get("acc"), "acc"),
        "altitude": _number(body.get("alt"), "alt"),
        "speed": _scaled(_number(body.get("vel"), "vel"), KMH_MPS),
        "heading": _number(body.get("cog"), "cog"),
        "battery": _scaled(_number(body.get("batt"), "batt"), 0.01),
    }
    return ClientRequest(None, [_drop_unknown(item)])


def from_overland(body: Any) -> ClientRequest:
    """Map an Overland batch of GeoJSON Point features to positions."""
    if not isinstance(body, dict) or not isinstance(body.get("locations"), list):
        raise ClientFormatError("locations: must be a list of GeoJSON Point features")
    items = []
    for index, feature in enumerate(body["locations"]):
        where = f"locations[{index}]"
        if not isinstance(feature, dict):
            raise ClientFormatError(f"{where}: must be a GeoJSON Feature")
        geometry = feature.get("geometry")
        if not isinstance(geometry, dict):
            raise ClientFormatError(f"{where}.geometry: must be a GeoJSON Point object")
        coords = geometry.get("coordinates")
        if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
            raise ClientFormatError(f"{where}.geometry: must be a Point with coordinates")
        props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        items.append(
            _drop_unknown(
                {
                    "ts": parse_timestamp(props.get("timestamp"), f"{where}.properties.timestamp"),
                    "lat": coords[1],
                    "lon": coords[0],
                    "accuracy": _number(props.get("horizontal_accuracy"), "horizontal_accuracy"),
                    "altitude": _number(props.get("altitude"), "altitude"),
                    "speed": _number(props.get("speed"), "speed"),
                    "heading": _number(props.get("course"), "course"),
                    "battery": _number(props.get("battery_level"), "battery_level"),
                }
            )
        )
    return ClientRequest(None, items)


def _drop_unknown(item: dict[str, Any]) -> dict[str, Any]:
    """Remove optional fields that the client reported as unknown."""
    return {key: value for key, value in item.items() if value is not None}
