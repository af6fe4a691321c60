"""The WGS-84 to GCJ-02 transform of the map page (static/js/gcj02.js), run under Node."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.conftest import ROOT
from tracker.geo import haversine_m

NODE = shutil.which("node") or "/usr/bin/node"


def run_js(calls: list[tuple[str, float, float]]) -> list[list[float]]:
    """Return the results of gcj02.js functions called on (name, lon, lat) triples."""
    script = (
        "const g = require(process.argv[1]);"
        "const calls = JSON.parse(process.argv[2]);"
        "console.log(JSON.stringify(calls.map(([f, lon, lat]) => g[f](lon, lat))));"
    )
    out = subprocess.run(
        [NODE, "-e", script, str(ROOT / "static/js/gcj02.js"), json.dumps(calls)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def test_matches_the_reference_value_in_beijing():
    # The value published with the widely used coordtransform library.
    [(lon, lat)] = run_js([("wgs84ToGcj02", 116.404, 39.915)])
    assert lon == pytest.approx(116.41024449916938, abs=1e-12)
    assert lat == pytest.approx(39.91640428150164, abs=1e-12)


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(116.404, 39.915), (121.4737, 31.2304), (114.0579, 22.5431), (104.0665, 30.5728)],
)
def test_shift_is_a_few_hundred_metres_in_china(lon, lat):
    [(glon, glat)] = run_js([("wgs84ToGcj02", lon, lat)])
    assert 100 < haversine_m(lat, lon, glat, glon) < 800


@pytest.mark.parametrize(("lon", "lat"), [(2.3522, 48.8566), (-74.006, 40.7128), (151.2, -33.9)])
def test_points_outside_china_are_unchanged(lon, lat):
    assert run_js([("wgs84ToGcj02", lon, lat), ("gcj02ToWgs84", lon, lat)]) == [
        [lon, lat],
        [lon, lat],
    ]


def test_inverse_undoes_the_shift_to_a_centimetre():
    points = [(116.404, 39.915), (121.4737, 31.2304), (87.6168, 43.8256)]
    shifted = run_js([("wgs84ToGcj02", lon, lat) for lon, lat in points])
    back = run_js([("gcj02ToWgs84", lon, lat) for lon, lat in shifted])
    for (lon, lat), (blon, blat) in zip(points, back, strict=True):
        assert haversine_m(lat, lon, blat, blon) < 0.01
