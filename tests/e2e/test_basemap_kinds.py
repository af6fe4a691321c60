"""Basemaps in a real browser: every kind drawn from this machine, offline PMTiles, the switcher.

There are no real tiles here: a small tile server on the loopback interface stands in for
an intranet XYZ or WMTS server (a PNG per tile, coloured by the kind), and a small PMTiles
file is written in the test with the `pmtiles` package, its vector tiles encoded by hand in
the Mapbox Vector Tile format with the layers @protomaps/basemaps styles.
"""

from __future__ import annotations

import io
import json
import math
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image, ImageDraw
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from tests.conftest import ServerProcess, free_port
from tests.e2e.chromium import wait_until
from tests.e2e.test_map_page import open_map, poll, shot
from tests.e2e.test_map_scope import api_session

# 黄化门街, Beijing: where the test city's streets and labels are.
LON, LAT = 116.3935, 39.9245
PMTILES_MAX_ZOOM = 12
COLOURS = {"xyz": (120, 180, 230), "wmts": (230, 200, 120), "gcj": (170, 220, 160)}


# --- a tile server for the raster kinds ------------------------------------------------------
def tile_png(kind: str, label: str) -> bytes:
    """Return a 256 px PNG tile: the kind's colour, a border and the tile's address."""
    image = Image.new("RGB", (256, 256), COLOURS[kind])
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 255, 255), outline=(90, 90, 90))
    draw.text((10, 10), f"{kind} {label}", fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class TileServer:
    """XYZ tiles at /xyz and /gcj/{z}/{x}/{y}.png, WMTS KVP GetTile at /wmts; hits recorded."""

    def __init__(self) -> None:
        """Listen on a free loopback port."""
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                hits.append(self.path)
                parts = urlsplit(self.path)
                kind = parts.path.strip("/").split("/")[0]
                if kind == "wmts":
                    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    ok = q.get("REQUEST") == "GetTile" and q.get("LAYER") == "city"
                    label = f"{q.get('TILEMATRIX')}/{q.get('TILECOL')}/{q.get('TILEROW')}"
                else:
                    ok = kind in COLOURS
                    label = "/".join(parts.path.split("/")[2:])
                if not ok:
                    self.send_error(404)
                    return
                body = tile_png(kind, label)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        port = free_port()
        self.origin = f"http://127.0.0.1:{port}"
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


# --- a small PMTiles vector basemap ---------------------------------------------------------
def _varint(value: int) -> bytes:
    """Return a protobuf varint."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    """Return one protobuf field: a varint or length-delimited bytes."""
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value)


def _zigzag(n: int) -> int:
    """Return a coordinate zigzag-encoded, as MVT geometry parameters are."""
    return (n << 1) ^ (n >> 31)


def _geometry(kind: int, coords: list[tuple[int, int]]) -> list[int]:
    """Return MVT geometry commands for a point, a line or a closed ring (tile units)."""
    if kind == 1:
        (x, y) = coords[0]
        return [1 | 1 << 3, _zigzag(x), _zigzag(y)]
    out = [1 | 1 << 3, _zigzag(coords[0][0]), _zigzag(coords[0][1])]
    body = coords[1:-1] if kind == 3 else coords[1:]
    out.append(2 | len(body) << 3)
    px, py = coords[0]
    for x, y in body:
        out += [_zigzag(x - px), _zigzag(y - py)]
        px, py = x, y
    if kind == 3:
        out.append(7 | 1 << 3)
    return out


def mvt_layer(name: str, features: list[tuple[int, list[tuple[int, int]], dict]]) -> bytes:
    """Return one MVT layer of (geometry type, coordinates, string/int properties)."""
    keys: list[str] = []
    values: list[Any] = []
    body = b""
    for i, (kind, coords, props) in enumerate(features):
        tags = []
        for key, value in props.items():
            if key not in keys:
                keys.append(key)
            if value not in values:
                values.append(value)
            tags += [keys.index(key), values.index(value)]
        packed_tags = b"".join(_varint(t) for t in tags)
        packed_geometry = b"".join(_varint(c) for c in _geometry(kind, coords))
        feature = _field(1, i + 1) + _field(2, packed_tags) + _field(3, kind)
        body += _field(2, feature + _field(4, packed_geometry))
    for key in keys:
        body += _field(3, key)
    for value in values:
        encoded = _field(1, value) if isinstance(value, str) else _field(4, value)
        body += _field(4, encoded)
    return _field(3, _field(15, 2) + _field(1, name) + body + _field(5, 4096))


def tile_xy(lon: float, lat: float, z: int) -> tuple[float, float]:
    """Return the fractional Web Mercator tile coordinates of a point."""
    n = 2**z
    x = (lon + 180) / 360 * n
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return x, y


def vector_tile(z: int, x: int, y: int) -> bytes:
    """Return a tile of the test city: land, a lake, a main road and the city's label."""
    cx, cy = tile_xy(LON, LAT, z)
    # The city's centre inside this tile, in tile units (may fall outside: then clipped).
    px, py = int((cx - x) * 4096), int((cy - y) * 4096)
    full = [(0, 0), (4096, 0), (4096, 4096), (0, 4096), (0, 0)]
    lake = [(px + 300, py + 300), (px + 1200, py + 300), (px + 1200, py + 1000)]
    lake += [(px + 300, py + 1000), (px + 300, py + 300)]
    road = [(0, py - 200), (4096, py - 200)]
    layers = mvt_layer("earth", [(3, full, {"kind": "earth"})])
    layers += mvt_layer("water", [(3, lake, {"kind": "lake", "name": "测试湖"})])
    layers += mvt_layer(
        "roads",
        [(2, road, {"kind": "major_road", "kind_detail": "primary", "name": "测试大街"})],
    )
    if 0 <= px < 4096 and 0 <= py < 4096:
        city = {
            "kind": "locality",
            "name": "测试市",
            "name:zh-Hans": "测试市",
            "name:en": "Testville",
            "script": "Han",
            "min_zoom": 1,
            "population_rank": 12,
        }
        layers += mvt_layer("places", [(1, [(px, py)], city)])
    return layers


def write_pmtiles(path: Path) -> None:
    """Write a PMTiles archive of the test city, zooms 0-12 around it (3 x 3 tiles at 12)."""
    tiles: dict[int, bytes] = {}
    for z in range(PMTILES_MAX_ZOOM + 1):
        cx, cy = tile_xy(LON, LAT, z)
        spread = 1 if z == PMTILES_MAX_ZOOM else 0
        for x in range(int(cx) - spread, int(cx) + spread + 1):
            for y in range(int(cy) - spread, int(cy) + spread + 1):
                tiles[zxy_to_tileid(z, x, y)] = vector_tile(z, x, y)
    with path.open("wb") as f:
        writer = Writer(f)
        for tile_id in sorted(tiles):
            writer.write_tile(tile_id, tiles[tile_id])
        e7 = 10_000_000
        writer.finalize(
            {
                "tile_type": TileType.MVT,
                "tile_compression": Compression.NONE,
                "min_zoom": 0,
                "max_zoom": PMTILES_MAX_ZOOM,
                "min_lon_e7": int((LON - 0.05) * e7),
                "min_lat_e7": int((LAT - 0.05) * e7),
                "max_lon_e7": int((LON + 0.05) * e7),
                "max_lat_e7": int((LAT + 0.05) * e7),
                "center_zoom": 12,
                "center_lon_e7": int(LON * e7),
                "center_lat_e7": int(LAT * e7),
            },
            {"name": "test city", "vector_layers": []},
        )


# --- fixtures shared with the other basemap tests ---------------------------------------------
@pytest.fixture(scope="module")
def tiles() -> Iterator[TileServer]:
    """Serve raster tiles from another loopback origin."""
    server = TileServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def basemap_dir(tmp_path_factory) -> Path:
    """Return a BASEMAP_DIR holding one city extract, city.pmtiles."""
    folder = tmp_path_factory.mktemp("basemaps")
    write_pmtiles(folder / "city.pmtiles")
    return folder


def basemaps_setting(origin: str) -> str:
    """Return BASEMAPS for the test: XYZ, WMTS, a GCJ-02 and a BD-09 XYZ, all local."""
    return json.dumps(
        [
            {"id": "local-xyz", "kind": "xyz", "name": {"zh": "本地瓦片", "en": "Local tiles"},
             "url": f"{origin}/xyz/{{z}}/{{x}}/{{y}}.png", "attribution": "测试瓦片"},
            {"id": "local-wmts", "kind": "wmts", "name": {"zh": "本地WMTS", "en": "Local WMTS"},
             "url": f"{origin}/wmts", "layer": "city"},
            {"id": "local-gcj", "kind": "xyz", "crs": "gcj02",
             "name": {"zh": "火星坐标瓦片", "en": "GCJ-02 tiles"},
             "url": f"{origin}/gcj/{{z}}/{{x}}/{{y}}.png"},
            {"id": "local-bd", "kind": "xyz", "crs": "bd09",
             "name": {"zh": "百度坐标瓦片", "en": "BD-09 tiles"},
             "url": f"{origin}/gcj/{{z}}/{{x}}/{{y}}.png"},
        ]
    )  # fmt: skip


@pytest.fixture(scope="module")
def basemap_server(
    database_url: str, tiles: TileServer, basemap_dir: Path
) -> Iterator[ServerProcess]:
    """Run a server offering the local basemaps and the PMTiles folder."""
    env = {
        "BASEMAPS": basemaps_setting(tiles.origin),
        "BASEMAP_DIR": str(basemap_dir),
        "LIVE_INTERVAL": "0.5",
        "COVERAGE_REFRESH_S": "1",
    }
    proc = ServerProcess(database_url, env)
    proc.start()
    yield proc
    proc.stop()


def choose(server: ServerProcess, username: str, password: str, basemap: str) -> None:
    """Save an account's basemap through the API, as the switcher does."""
    http = api_session(server.url, username, password)
    answer = http.put(f"{server.url}/api/v1/basemaps/preference", json={"basemap": basemap})
    assert answer.status_code == 200, answer.text


def wait_for_basemap(page, basemap: str) -> None:
    """Wait until the map has drawn `basemap` and every tile in view is loaded."""
    wait_until(
        page,
        f"document.getElementById('map').dataset.basemapReady === {json.dumps(basemap)}"
        " && window.__tracker.map.loaded() && window.__tracker.map.areTilesLoaded()",
        20,
    )


def jump(page, lon: float, lat: float, zoom: float) -> None:
    """Centre the map on a WGS-84 point (through the basemap's shift) and wait until drawn."""
    page.evaluate(
        "([lon, lat, zoom]) => new Promise(r => { const t = window.__tracker;"
        " t.map.once('idle', r); t.map.jumpTo({center: t.project(lon, lat), zoom}); })",
        [lon, lat, zoom],
    )


# --- tests -------------------------------------------------------------------------------------
def test_the_api_lists_the_basemaps_the_default_first(basemap_server, make_user):
    assert requests.get(f"{basemap_server.url}/api/v1/basemaps", timeout=5).status_code == 401
    http = api_session(basemap_server.url, *make_user("viewer"))
    answer = http.get(f"{basemap_server.url}/api/v1/basemaps", timeout=5).json()
    ids = [b["id"] for b in answer["basemaps"]]
    assert ids == ["local-xyz", "local-wmts", "local-gcj", "local-bd", "pmtiles-city", "none"]
    assert [b["default"] for b in answer["basemaps"]] == [True] + [False] * 5
    city = answer["basemaps"][4]
    assert city["kind"] == "pmtiles" and city["url"] == "/api/v1/basemaps/files/city.pmtiles"
    assert city["name"] == {"zh": "city（离线）", "en": "city (offline)"}
    assert answer["preference"] == {"basemap": None, "grid_opacity": 1.0, "unit_opacity": 1.0}


def test_the_pmtiles_file_is_served_with_range_requests(basemap_server, basemap_dir, make_user):
    whole = (basemap_dir / "city.pmtiles").read_bytes()
    url = f"{basemap_server.url}/api/v1/basemaps/files/city.pmtiles"
    assert requests.get(url, timeout=5).status_code == 401
    http = api_session(basemap_server.url, *make_user("viewer"))
    first = http.get(url, headers={"Range": "bytes=0-126"}, timeout=5)
    assert first.status_code == 206
    assert first.headers["Content-Range"] == f"bytes 0-126/{len(whole)}"
    assert first.headers["Accept-Ranges"] == "bytes"
    assert first.content == whole[:127] and first.content[:7] == b"PMTiles"
    tail = http.get(url, headers={"Range": f"bytes={len(whole) - 100}-"}, timeout=5)
    assert tail.status_code == 206 and tail.content == whole[-100:]
    assert (
        tail.headers["Content-Range"] == f"bytes {len(whole) - 100}-{len(whole) - 1}/{len(whole)}"
    )
    beyond = http.get(url, headers={"Range": f"bytes={len(whole) + 10}-"}, timeout=5)
    assert beyond.status_code == 416
    assert http.get(url, timeout=5).content == whole
    for name in ("../secret_key", "nothere.pmtiles", "city.txt"):
        assert http.get(f"{url.rsplit('/', 1)[0]}/{name}", timeout=5).status_code == 404


def test_the_offline_basemap_draws_with_chinese_labels_and_no_request_leaves_the_machine(
    basemap_server, browser, make_user, tiles
):
    username, password = make_user("viewer")
    choose(basemap_server, username, password, "pmtiles-city")
    requested: list[str] = []
    ranges: list[int] = []
    context = browser.new_context(viewport={"width": 1200, "height": 800}, locale="zh-CN")
    context.on("request", lambda r: requested.append(r.url))
    errors: list[str] = []
    context.on(
        "response", lambda r: ranges.append(r.status) if r.url.endswith(".pmtiles") else None
    )
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{basemap_server.url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{basemap_server.url}/")
    try:
        wait_for_basemap(page, "pmtiles-city")
        hits_before = len(tiles.hits)
        jump(page, LON, LAT, 13)
        places = "window.__tracker.map.queryRenderedFeatures({layers: ['bm-places_locality']})"
        wait_until(page, f"{places}.length > 0", 20)
        places = page.evaluate(
            "window.__tracker.map.queryRenderedFeatures({layers: ['bm-places_locality']})"
            ".map(f => f.properties['name:zh-Hans'])"
        )
        assert "测试市" in places
        drawn = page.evaluate(
            "[...new Set(window.__tracker.map.queryRenderedFeatures()"
            ".map(f => f.sourceLayer).filter(Boolean))]"
        )
        assert {"earth", "water", "roads", "places"} <= set(drawn)
        # The label's text is Chinese (drawn from the local CJK font) and the style is the
        # Protomaps one, asked for in Simplified Chinese.
        field = json.dumps(page.evaluate(
            "window.__tracker.map.getLayoutProperty('bm-places_locality', 'text-field')"
        ))  # fmt: skip
        assert "name:zh-Hans" in field
        shot(page, "basemap-pmtiles")
        assert ranges and set(ranges) == {206}, ranges
        assert len(tiles.hits) == hits_before, "an online tile server was asked"
        outside = [u for u in requested if not u.startswith((basemap_server.url, "data:", "blob:"))]
        assert outside == [], outside
        # The Latin glyphs (digits, punctuation) came from this server.
        assert any("/api/v1/basemaps/glyphs/Noto%20Sans" in u for u in requested)
        # Under the app's CSP (no eval, workers from blob: only) nothing was refused or failed.
        assert errors == [], errors
    finally:
        context.close()


@pytest.mark.parametrize(
    "basemap, colour",
    [("local-xyz", COLOURS["xyz"]), ("local-wmts", COLOURS["wmts"]), ("none", (238, 241, 244))],
)
def test_each_raster_kind_draws_its_tiles(
    basemap_server, browser, make_user, make_unit, tiles, basemap, colour
):
    # Scoped to a unit of its own: the grids other tests left in the shared database
    # would otherwise be drawn, tinted, over the pixel this test reads.
    username, password = make_user("viewer", make_unit(kind="street"))
    choose(basemap_server, username, password, basemap)
    page = open_map(browser, basemap_server.url, username, password, locale="zh-CN")
    try:
        wait_for_basemap(page, basemap)
        jump(page, LON, LAT, 15)
        wait_for_basemap(page, basemap)
        shot(page, f"basemap-{basemap}")
        # A pixel away from markers and controls has the basemap's colour.
        box = page.locator("#map").bounding_box()
        pixel = page.screenshot(clip={"x": box["x"] + 60, "y": box["y"] + box["height"] - 60,
                                      "width": 1, "height": 1})  # fmt: skip
        rgb = Image.open(io.BytesIO(pixel)).convert("RGB").getpixel((0, 0))
        assert all(abs(a - b) <= 12 for a, b in zip(rgb, colour, strict=True)), rgb
        if basemap == "local-wmts":
            getting = re.compile(r"REQUEST=GetTile.*&TILEMATRIX=1[56]&TILEROW=\d+&TILECOL=\d+$")
            assert any(getting.search(h) for h in tiles.hits), tiles.hits[-5:]
    finally:
        page.context.close()


def test_the_switcher_changes_the_basemap_and_remembers_it_for_the_account(
    basemap_server, browser, make_user
):
    username, password = make_user("dispatcher")
    page = open_map(browser, basemap_server.url, username, password, locale="zh-CN")
    try:
        wait_for_basemap(page, "local-xyz")
        page.click("#basemap-toggle")
        assert page.is_visible("#basemap-panel")
        labels = page.locator("#basemap-panel .basemap-choice").all_text_contents()
        assert labels == [
            "本地瓦片",
            "本地WMTS",
            "火星坐标瓦片",
            "百度坐标瓦片",
            "city（离线）",
            "无底图",
        ]
        page.check('#basemap-panel input[value="local-wmts"]')
        wait_until(page, "document.getElementById('map').dataset.basemap === 'local-wmts'", 10)
        # The grid layers fade with the slider; the unit layers keep theirs.
        page.locator('[data-opacity="grid_opacity"]').fill("40")
        wait_until(
            page,
            "JSON.stringify(window.__tracker.map.getPaintProperty('units-line', 'line-opacity'))"
            ".includes('0.4')",
            5,
        )
        shot(page, "basemap-switcher")
        http = api_session(basemap_server.url, username, password)

        def saved() -> dict:
            return http.get(f"{basemap_server.url}/api/v1/basemaps", timeout=5).json()["preference"]

        wanted = {"basemap": "local-wmts", "grid_opacity": 0.4, "unit_opacity": 1.0}
        assert poll(lambda: saved() == wanted, 5.0), saved()
        # A GCJ-02 basemap redraws everything in its system: the page starts again in it.
        page.check('#basemap-panel input[value="local-gcj"]')
        page.wait_for_load_state("load")
        wait_for_basemap(page, "local-gcj")
        assert page.evaluate("window.__tracker.basemap.crs") == "gcj02"
    finally:
        page.context.close()
    # Another browser of the same account opens on its choice.
    again = open_map(browser, basemap_server.url, username, password, locale="en-US")
    try:
        wait_for_basemap(again, "local-gcj")
        assert again.evaluate("window.__tracker.basemap.id") == "local-gcj"
        slider = again.locator('[data-opacity="grid_opacity"]')
        assert slider.input_value() == "40"
    finally:
        again.context.close()


def test_a_bad_preference_is_refused(basemap_server, make_user):
    http = api_session(basemap_server.url, *make_user("viewer"))
    url = f"{basemap_server.url}/api/v1/basemaps/preference"
    for body, field in [
        ({"basemap": "nowhere"}, "basemap:"),
        ({"basemap": "none", "grid_opacity": 2}, "grid_opacity:"),
        ({"basemap": "none", "unit_opacity": True}, "unit_opacity:"),
        ([], "body:"),
    ]:
        answer = http.put(url, json=body, timeout=5)
        assert answer.status_code == 400 and answer.json()["error"].startswith(field)


def test_replay_day_and_administration_maps_use_the_same_basemap(
    basemap_server, browser, make_user, make_unit, make_phone
):
    username, password = make_user("admin")
    choose(basemap_server, username, password, "local-wmts")
    person = make_phone("volunteer", make_unit(kind="street"))
    page = open_map(browser, basemap_server.url, username, password, locale="zh-CN")
    ready = "document.querySelector('[data-basemap-ready]')?.dataset.basemapReady"
    try:
        for path in ("/replay", f"/people/{person.person_id}/day", "/admin/units"):
            page.goto(f"{basemap_server.url}{path}")
            wait_until(page, f"{ready} === 'local-wmts'", 20)
            assert page.is_visible("#basemap-toggle") and page.is_visible("#fit-area")
            shot(page, f"basemap-page-{path.strip('/').replace('/', '-')}")
    finally:
        page.context.close()
