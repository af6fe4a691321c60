"""Coordinates between WGS-84 and the basemaps' GCJ-02 and BD-09 (static/js/basemap-coords.js).

The page's module is run under Node with the gcoord build it imports (static/vendor, copied
by scripts/setup.sh). It is checked against values published with the coordtransform
library (wandergis/coordTransform, the reference most Chinese map code is tested against)
and against the published formulas written out here in Python, within a metre.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from tests.conftest import ROOT
from tracker.geo import haversine_m

NODE = shutil.which("node") or "/usr/bin/node"
MODULE = (ROOT / "static/js/basemap-coords.js").as_uri()


def run_js(calls: list[list]) -> list[list[float]]:
    """Return the results of ("project"|"unproject", crs, lon, lat) or ("convert", ...) calls."""
    script = (
        f"import {{ projector, convert }} from {json.dumps(MODULE)};"
        "const calls = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(calls.map(([f, a, ...rest]) =>"
        " f === 'convert' ? convert(...rest, a[0], a[1]) : projector(a)[f](...rest))));"
    )
    out = subprocess.run(
        [NODE, "--no-warnings", "--input-type=module", "-e", script, json.dumps(calls)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


# The Krasovsky 1940 ellipsoid on which GCJ-02 is defined, and the published BD-09 formula.
A, EE = 6378245.0, 0.00669342162296594323
X_PI = math.pi * 3000.0 / 180.0


def _transform_lat(x: float, y: float) -> float:
    """Return GCJ-02's latitude offset polynomial."""
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    """Return GCJ-02's longitude offset polynomial."""
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Return GCJ-02 for a WGS-84 point in China, by the published algorithm."""
    d_lat = _transform_lat(lon - 105.0, lat - 35.0)
    d_lon = _transform_lon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = d_lat * 180.0 / ((A * (1 - EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = d_lon * 180.0 / (A / sqrt_magic * math.cos(rad) * math.pi)
    return lon + d_lon, lat + d_lat


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Return BD-09 for a GCJ-02 point, by Baidu's published formula."""
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def metres(a: list[float] | tuple[float, float], b: list[float] | tuple[float, float]) -> float:
    """Return the distance between two [lon, lat] points in metres."""
    return haversine_m(a[1], a[0], b[1], b[0])


# Across China: Beijing, Shanghai, Chengdu, Ürümqi, Harbin, Sanya, Lhasa, Hong Kong.
PLACES = [
    (116.3975, 39.9087),
    (121.4737, 31.2304),
    (104.0665, 30.5723),
    (87.6168, 43.8256),
    (126.535, 45.8038),
    (109.5119, 18.2528),
    (91.1322, 29.6604),
    (114.1694, 22.3193),
]


def test_the_published_reference_values():
    gcj, gcj_to_bd, bd_to_gcj = run_js(
        [
            ["project", "gcj02", 116.404, 39.915],
            ["convert", ["gcj02", "bd09"], 116.404, 39.915],
            ["convert", ["bd09", "gcj02"], 116.404, 39.915],
        ]
    )
    # coordtransform's README: wgs84togcj02, gcj02tobd09 and bd09togcj02 of (116.404, 39.915).
    assert metres(gcj, (116.41024449916938, 39.91640428150164)) < 0.01
    assert metres(gcj_to_bd, (116.41036949371029, 39.92133699351021)) < 0.01
    assert metres(bd_to_gcj, (116.39762729119315, 39.90865673957631)) < 0.01
    # The shift itself is what makes the basemap matter: hundreds of metres in Beijing.
    assert 500 < metres(gcj, (116.404, 39.915)) < 700


def test_gcj02_and_bd09_agree_with_the_published_formulas_across_china():
    calls = [["project", crs, lon, lat] for crs in ("gcj02", "bd09") for lon, lat in PLACES]
    answers = run_js(calls)
    gcj, bd = answers[: len(PLACES)], answers[len(PLACES) :]
    for (lon, lat), g, b in zip(PLACES, gcj, bd, strict=True):
        expected_gcj = wgs84_to_gcj02(lon, lat)
        assert metres(g, expected_gcj) < 1.0
        assert metres(b, gcj02_to_bd09(*expected_gcj)) < 1.0


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_what_is_drawn_and_clicked_comes_back_within_a_centimetre(crs):
    shifted = run_js([["project", crs, lon, lat] for lon, lat in PLACES])
    back = run_js([["unproject", crs, lon, lat] for lon, lat in shifted])
    for place, shift, returned in zip(PLACES, shifted, back, strict=True):
        assert metres(shift, place) > 100  # really shifted
        assert metres(returned, place) < 0.01


def test_wgs84_basemaps_and_places_outside_china_are_not_shifted():
    paris, sydney, same = run_js(
        [
            ["project", "gcj02", 2.3522, 48.8566],
            ["project", "gcj02", 151.2093, -33.8688],
            ["project", "wgs84", 116.404, 39.915],
        ]
    )
    assert paris == [2.3522, 48.8566] and sydney == [151.2093, -33.8688]
    assert same == [116.404, 39.915]
