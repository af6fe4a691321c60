"""The JSON codec of Socket.IO packets: orjson on the hot path, the standard library's rules kept.

Every batch from a phone is one packet to decode and one ack to encode. python-socketio's
default decoder builds a new `json.JSONDecoder` for every packet (it passes `parse_int` to
cap integer sizes) and parses numbers in Python; orjson does the same work in a fraction of
the time. Where orjson refuses what the standard decoder accepts (NaN and Infinity
literals, numbers beyond the range of a double), the packet is decoded the standard way
instead, so that such values still reach validation and are rejected with the field named,
as before. (orjson reads integers beyond 64 bits as floats, never as costly big integers;
validation turns every number into a float anyway.)
"""

from __future__ import annotations

from typing import Any

import orjson
from engineio import json as engineio_json


def loads(data: str | bytes, **kwargs: Any) -> Any:
    """Decode one packet's JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # Keeps Engine.IO's guard against enormous integer literals.
        return engineio_json.loads(data, **kwargs)


def dumps(obj: Any, **kwargs: Any) -> str:
    """Encode one packet's JSON (compact, like python-socketio's own separators)."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        # Non-string keys or types orjson does not know: the standard encoder decides.
        return engineio_json.dumps(obj, **kwargs)
