"""The ingest endpoints' query parsing reads every query as urllib's parse_qsl does."""

from urllib.parse import parse_qsl

from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.ingest.http import Request

# Pieces that make the parser's edge cases: separators, empty names and values, escapes
# (which take parse_qsl itself) and text that only looks escaped.
PIECES = st.sampled_from([*"ab=&.;-_01 ?#", "%", "+", "%20", "%zz", "é", "id", "lat"])


@settings(max_examples=2000)
@given(st.lists(PIECES, max_size=30).map("".join))
def test_query_parameters_are_those_of_parse_qsl_first_value_first(query):
    expected: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        expected.setdefault(name, value)
    assert Request({"QUERY_STRING": query}, 1024).args == expected


def test_a_traccar_client_query():
    query = "id=abc&lat=39.9&lon=116.4&timestamp=1764633600&hdop=5&speed=1.2&lat=0&flag"
    assert Request({"QUERY_STRING": query}, 1024).args == {
        "id": "abc",
        "lat": "39.9",
        "lon": "116.4",
        "timestamp": "1764633600",
        "hdop": "5",
        "speed": "1.2",
        "flag": "",
    }
