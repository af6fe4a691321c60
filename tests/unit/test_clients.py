"""Mapping of GPS apps' formats onto /device items: units, timestamps, unknown values."""

import pytest

from tracker.ingest.clients import (
    ClientFormatError,
    from_osmand,
    from_overland,
    from_owntracks,
    from_traccar_json,
    parse_form_text,
    parse_timestamp,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1377177267", 1377177267000),
        ("1442068686579", 1442068686579),
        ("1377177267.5", 1377177267500),
        ("2016-01-27T18:55:47Z", "2016-01-27T18:55:47+00:00"),
        ("2014-06-04 09:10:11", "2014-06-04T09:10:11+00:00"),
        ("2015-10-01T08:00:00-0700", "2015-10-01T08:00:00-07:00"),
    ],
)
def test_timestamp_forms(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["", None, "soon", "nan"])
def test_bad_timestamps_name_the_parameter(value):
    with pytest.raises(ClientFormatError, match="^timestamp: "):
        parse_timestamp(value)


def test_osmand_units_knots_percent_and_aliases():
    request = from_osmand(
        {
            "deviceid": "t",
            "location": "39.9,116.4",
            "timestamp": "1700000000",
            "speed": "10",
            "heading": "370",
            "alt": "5",
            "acc": "3",
            "batt": "57",
        }
    )
    (item,) = request.positions
    assert request.token == "t"
    assert item == {
        "ts": 1700000000000,
        "lat": 39.9,
        "lon": 116.4,
        "speed": pytest.approx(5.1444, rel=1e-4),
        "heading": 10.0,
        "altitude": 5.0,
        "accuracy": 3.0,
        "battery": pytest.approx(0.57),
    }


def test_gpslogger_spd_is_metres_per_second_and_minus_one_is_unknown():
    (item,) = from_osmand(
        {
            "lat": "1",
            "lon": "2",
            "time": "2016-03-05T19:24:29.949Z",
            "spd": "3.5",
            "dir": "-1",
            "batt": "-1",
        },
        "tok",
    ).positions
    assert item["speed"] == 3.5
    assert "heading" not in item and "battery" not in item


def test_traccar_json_unknowns_are_dropped():
    body = {
        "device_id": "658765",
        "location": {
            "timestamp": "2025-05-09T04:11:30.579Z",
            "coords": {
                "latitude": 37.7,
                "longitude": -122.4,
                "speed": -1,
                "heading": -1,
                "accuracy": 5,
                "altitude": 0,
            },
            "battery": {"level": -1},
        },
    }
    request = from_traccar_json(body)
    assert request.token == "658765"
    assert request.positions == [
        {
            "ts": "2025-05-09T04:11:30.579000+00:00",
            "lat": 37.7,
            "lon": -122.4,
            "accuracy": 5.0,
            "altitude": 0.0,
        }
    ]


def test_owntracks_kmh_and_percent_other_types_ignored():
    (item,) = from_owntracks(
        {
            "_type": "location",
            "lat": 1,
            "lon": 2,
            "tst": 1700000000,
            "vel": 36,
            "batt": 50,
            "cog": 90,
        }
    ).positions
    assert item["speed"] == pytest.approx(10.0)
    assert (item["battery"], item["heading"], item["ts"]) == (0.5, 90.0, 1700000000000)
    assert from_owntracks({"_type": "waypoint"}).positions == []


def test_overland_reports_the_bad_feature():
    with pytest.raises(ClientFormatError, match=r"^locations\[1\].geometry"):
        from_overland(
            {
                "locations": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [1, 2]},
                        "properties": {"timestamp": "2015-10-01T08:00:00Z"},
                    },
                    {"type": "Feature", "geometry": {"type": "LineString", "coordinates": []}},
                ]
            }
        )


def test_form_text_with_a_free_text_line():
    assert parse_form_text("This my post body\nlat=1.5&lon=2&note=a+b") == {
        "lat": "1.5",
        "lon": "2",
        "note": "a b",
    }
