"""What the map's search box reads as coordinates and incident numbers (static/js/search.js)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

NODE = shutil.which("node") or "/usr/bin/node"
MODULE = (ROOT / "static/js/search.js").as_uri()


def parse(texts: list[str]) -> list[dict]:
    """Return {coords, incident} for each text, as the page's module reads it."""
    script = (
        # i18n.js reads the page's catalogue at import: give it an empty page.
        "globalThis.document = { getElementById: () => null, body: { dataset: {} } };"
        f"const s = await import({json.dumps(MODULE)});"
        "const texts = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(texts.map(t =>"
        " ({coords: s.parseCoordinates(t), incident: s.parseIncidentNumber(t)}))));"
    )
    out = subprocess.run(
        [NODE, "--no-warnings", "--input-type=module", "-e", script, json.dumps(texts)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


# 天安门, 39°54′31″N 116°23′51″E, typed the ways people copy coordinates.
TIANANMEN = (116 + 23 / 60 + 51 / 3600, 39 + 54 / 60 + 31 / 3600)


@pytest.mark.parametrize(
    "text",
    [
        "39°54'31\"N 116°23'51\"E",
        "39°54′31″N, 116°23′51″E",
        "北纬39度54分31秒 东经116度23分51秒",
        "N39°54'31\" E116°23'51\"",
        "116°23'51\"E 39°54'31\"N",
        "39.908611, 116.3975",
        "116.3975,39.908611",
        "39.908611 116.3975",
        "39.908611，116.3975",
    ],
)
def test_degrees_minutes_seconds_and_decimals_find_the_same_place(text):
    ((answer),) = parse([text])
    lon, lat = answer["coords"]
    assert lon == pytest.approx(TIANANMEN[0], abs=2e-6)
    assert lat == pytest.approx(TIANANMEN[1], abs=2e-6)
    assert answer["incident"] is None


def test_southern_and_western_hemispheres():
    sydney, new_york, minus = parse(
        ["33°52'8\"S 151°12'33\"E", "40.7128 N 74.006 W", "-33.86, 151.2"]
    )
    assert sydney["coords"] == pytest.approx(
        [151 + 12 / 60 + 33 / 3600, -(33 + 52 / 60 + 8 / 3600)]
    )
    assert new_york["coords"] == pytest.approx([-74.006, 40.7128])
    assert minus["coords"] == pytest.approx([151.2, -33.86])


@pytest.mark.parametrize(
    "text", ["王芳", "12", "39.9 116.3 5", "39°60' 116°", "95.1, 200.2", "第3网格", ""]
)
def test_what_is_not_two_angles_is_not_a_place(text):
    ((answer),) = parse([text])
    assert answer["coords"] is None


def test_incident_numbers():
    answers = parse(["#12", "＃7", "事件 31", "incident 5", "Incident #8", "12", "#x"])
    assert [a["incident"] for a in answers] == [12, 7, 31, 5, 8, None, None]
