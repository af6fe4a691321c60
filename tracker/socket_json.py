"""The JSON codec of Socket.IO packets: orjson on the hot path, the standard library's rules kept.

Every batch from a phone is one packet to decode and one ack to encode. python-socketio's
default decoder builds a new `json.JSONDecoder` for every packet (it passes `parse_int` to
cap integer sizes) and parses numbers in Python; orjson does the same work in a fraction of
the time. Where orjson refuses what the standard decoder accepts (NaN and Infinity
literals, numbers beyond the range of a double), the packet is decoded the standard way
instead, so that such values still reach validation and are rejected with the field named,
as before. (orjson reads integers beyond 64 bits as floats, never as costly big integers;
validation turns every number into a float anyway.)

The same decoder serves HTTP request bodies (JSONProvider), and a packet that cannot be
decoded at all still reaches the namespace as a `malformed` event (TolerantPacket), so that
every event a phone sends is answered: a phone resends whatever gets no answer, forever.
"""

from __future__ import annotations

from typing import Any

import orjson
from engineio import json as engineio_json
from flask.json.provider import DefaultJSONProvider
from socketio import packet as sio_packet

# The event a packet that cannot be decoded is delivered as; its one argument says why.
MALFORMED_EVENT = "malformed"


def loads(data: str | bytes, **kwargs: Any) -> Any:
    """Decode one packet's (or request body's) JSON; any failure is a ValueError."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        # Keeps Engine.IO's guard against enormous integer literals.
        return engineio_json.loads(data, **kwargs)
    except RecursionError:
        # orjson stops at 1,024 levels; the standard decoder recurses until Python's stack
        # limit, which must not escape as anything but "not valid JSON".
        raise ValueError("JSON nested too deeply") from None


def dumps(obj: Any, **kwargs: Any) -> str:
    """Encode one packet's JSON (compact, like python-socketio's own separators)."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        # Non-string keys or types orjson does not know: the standard encoder decides.
        return engineio_json.dumps(obj, **kwargs)


class TolerantPacket(sio_packet.Packet):
    """A Socket.IO packet whose undecodable event becomes a `malformed` event, keeping its id.

    python-socketio drops such a packet with a traceback and sends no ack, so the phone
    would wait and resend it forever.
    """

    def decode(self, encoded_packet: Any) -> int:
        """Decode a packet; an event whose data is unusable is turned into MALFORMED_EVENT."""
        try:
            attachments = super().decode(encoded_packet)
        except ValueError as exc:
            if self.packet_type != sio_packet.EVENT:
                raise
            self.data = [MALFORMED_EVENT, f"packet: not valid JSON ({exc})"[:200]]
            return 0
        if self.packet_type == sio_packet.EVENT and not (
            isinstance(self.data, list) and self.data and isinstance(self.data[0], str)
        ):
            self.data = [MALFORMED_EVENT, "packet: must be a list whose first item is the event"]
        return attachments


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, decoding request bodies with loads() above."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Decode a request body; any failure is a ValueError (Flask then answers 400)."""
        return loads(s)
