"""The Socket.IO packet codec: orjson's speed, the standard library's acceptance."""

from __future__ import annotations

import json
import math

import pytest

from tracker import socket_json


def test_ordinary_packets_decode_like_the_standard_library():
    text = '["positions",{"positions":[{"ts":1764230400000,"lat":39.9,"lon":116.4,"battery":1}]}]'
    assert socket_json.loads(text) == json.loads(text)
    assert socket_json.loads(text.encode()) == json.loads(text)


def test_literals_orjson_refuses_are_decoded_the_standard_way():
    decoded = socket_json.loads('{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e400}')
    assert math.isnan(decoded["a"])
    assert decoded["b"] == math.inf and decoded["c"] == -math.inf and decoded["d"] == math.inf


def test_big_integers_decode_to_numbers_validation_can_judge():
    assert socket_json.loads('{"lat": 1' + "0" * 30 + "}")["lat"] == 1e30
    # Beyond a double's range orjson refuses; Engine.IO's guard against costly huge integer
    # literals then applies, as it did before orjson.
    with pytest.raises(ValueError, match="too large"):
        socket_json.loads('{"lat": 1' + "0" * 400 + "}")


def test_malformed_json_still_raises():
    with pytest.raises(ValueError):
        socket_json.loads('{"positions": [')


def test_encoding_is_compact_json_and_falls_back_for_integer_keys():
    ack = {"ok": True, "stored": 2, "duplicates": 0, "rejected": [{"index": 1, "error": "é"}]}
    assert json.loads(socket_json.dumps(ack)) == ack
    assert " " not in socket_json.dumps(ack)
    assert json.loads(socket_json.dumps({1: "x"}, separators=(",", ":"))) == {"1": "x"}
