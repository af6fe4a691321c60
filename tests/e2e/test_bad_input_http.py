"""Malformed HTTP input is answered 4xx (or a GPS app's 200 with a rejection), never 5xx."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.test_map_scope import api_session

DEEP = "[" * 100_000 + "]" * 100_000


def post_json_text(url: str, body: str, **headers: str) -> requests.Response:
    """POST a body as application/json without letting requests encode it."""
    return requests.post(
        url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=15
    )


@pytest.mark.parametrize(
    "path", ["/api/v1/session", "/api/v1/positions", "/overland", "/owntracks/x", "/osmand"]
)
def test_json_nested_100000_deep_is_a_400(server, make_phone, path):
    p = make_phone()
    response = post_json_text(f"{server.url}{path}", DEEP, Authorization=f"Bearer {p.token}")
    assert response.status_code == 400, response.text[:200]


def test_osmand_timestamp_without_a_utc_instant_is_a_rejection_not_a_crash(server, make_phone):
    p = make_phone()
    response = requests.get(
        f"{server.url}/osmand",
        params={"id": p.token, "lat": 39.9, "lon": 116.4, "timestamp": "9999-12-31T23:59:59-23:59"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["stored"] == 0
    assert response.json()["rejected"] == [
        {"index": 0, "error": "ts: outside the years 1 to 9999 in UTC"}
    ]


@pytest.mark.parametrize("lat", ["1_0", "nan", " 39.9", "0x10", "39,9"])
def test_osmand_reads_only_plain_decimal_numbers(server, make_phone, lat):
    p = make_phone()
    response = requests.get(
        f"{server.url}/osmand",
        params={"id": p.token, "lat": lat, "lon": 116.4, "timestamp": 1_700_000_000},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("lat: must be a decimal number")


def test_osmand_latitude_minus_one_is_a_real_latitude(server, make_phone):
    p = make_phone()
    import time

    response = requests.get(
        f"{server.url}/osmand",
        params={"id": p.token, "lat": -1, "lon": -1, "timestamp": int(time.time()) - 5},
        timeout=10,
    )
    assert response.status_code == 200 and response.json()["stored"] == 1


def test_overland_geometry_that_is_not_an_object_is_a_400(server, make_phone):
    p = make_phone()
    response = requests.post(
        f"{server.url}/overland",
        json={"locations": [{"type": "Feature", "geometry": [116.4, 39.9], "properties": {}}]},
        headers={"Authorization": f"Bearer {p.token}"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json() == {
        "result": "error",
        "error": "locations[0].geometry: must be a GeoJSON Point object",
    }


def test_owntracks_tst_beyond_any_date_is_a_400(server, make_phone):
    p = make_phone()
    response = requests.post(
        f"{server.url}/owntracks/{p.token}",
        data='{"_type": "location", "tst": 1e308, "lat": 39.9, "lon": 116.4}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json() == {"error": "tst: must be epoch seconds between 1970 and 9999"}


@pytest.mark.parametrize("limit", ["-1", "0", "abc", "1e9", "99999999999999999999"])
def test_alerts_limit_out_of_range_is_a_400(server, make_user, limit):
    http = api_session(server.url, *make_user("viewer"))
    response = http.get(f"{server.url}/api/v1/alerts", params={"limit": limit}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"].startswith("limit: ")


@pytest.mark.parametrize(
    "params",
    [
        {"to": "0001-01-01T00:00:00+23:59"},
        {"to": "9999-12-31T23:59:59-23:59"},
        {"from": "9999-12-31T23:59:59-23:59"},
    ],
)
def test_track_times_without_a_utc_instant_are_a_400(server, make_user, make_phone, params):
    p = make_phone()
    http = api_session(server.url, *make_user("admin"))
    for suffix in ("", ".gpx", ".csv"):
        response = http.get(
            f"{server.url}/api/v1/people/{p.person_id}/track{suffix}", params=params, timeout=10
        )
        assert response.status_code == 400, response.text[:200]
        assert response.json()["error"] == (
            f"{next(iter(params))}: outside the years 1 to 9999 in UTC"
        )
