"""Basemaps as configuration: presets, validation, keys, offline files and the CSP."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tracker import basemaps
from tracker.basemaps import BasemapConfigError
from tracker.web.security import content_security_policy


def config(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    """Return the settings tracker.basemaps reads, with BASEMAP_DIR in tmp_path."""
    base = {"BASEMAPS": "", "BASEMAPS_FILE": "", "MAP_TILE_URL": None, "MAP_GCJ02": False}
    return {**base, "BASEMAP_DIR": tmp_path, **settings}


def listing(tmp_path: Path, entries: list[Any]) -> list[dict[str, Any]]:
    """Return what GET /api/v1/basemaps lists for a BASEMAPS list."""
    return basemaps.listing(config(tmp_path, BASEMAPS=json.dumps(entries)))


def test_with_nothing_configured_the_map_still_has_a_plain_background(tmp_path):
    (only,) = listing(tmp_path, [])
    assert only["kind"] == "none" and only["default"] is True
    assert only["name"] == {"zh": "无底图", "en": "No basemap"}


def test_tianditu_vector_and_imagery_come_with_their_label_layers(tmp_path):
    vec, img, _none = listing(
        tmp_path,
        [{"preset": "tianditu_vec", "key": "k123"}, {"preset": "tianditu_img", "key": "k123"}],
    )
    assert vec["id"] == "tianditu_vec" and vec["default"] is True and img["default"] is False
    assert vec["name"] == {"zh": "天地图·矢量", "en": "Tianditu · streets"}
    assert vec["crs"] == "wgs84" and vec["kind"] == "xyz"
    base, labels = vec["layers"]
    assert "LAYER=vec&" in base["tiles"][0] and "/vec_w/wmts?" in base["tiles"][0]
    assert "LAYER=cva&" in labels["tiles"][0] and "/cva_w/wmts?" in labels["tiles"][0]
    assert [layer["tiles"][0].split("LAYER=")[1][:3] for layer in img["layers"]] == ["img", "cia"]
    # Eight hosts, each with the browser key and the z/x/y of a Web Mercator WMTS.
    assert {t.split(".")[0] for t in base["tiles"]} == {f"https://t{n}" for n in range(8)}
    assert all(t.endswith("&tk=k123") for t in base["tiles"])
    assert "TILEMATRIXSET=w" in base["tiles"][0]
    assert "TILEMATRIX={z}&TILEROW={y}&TILECOL={x}" in base["tiles"][0]


def test_a_key_the_proxy_adds_never_reaches_the_browser(tmp_path):
    (vec, _none) = listing(tmp_path, [{"preset": "tianditu_vec", "proxy": "/tianditu/"}])
    answer = json.dumps(vec)
    assert "tk=" not in answer and "key" not in vec
    assert vec["layers"][0]["tiles"] == [
        "/tianditu/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec&STYLE=default"
        "&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
    ]


def test_amap_and_tencent_draw_in_gcj02_and_tencent_counts_rows_from_the_south(tmp_path):
    amap, tencent, _none = listing(tmp_path, [{"preset": "amap"}, {"preset": "tencent"}])
    assert amap["crs"] == tencent["crs"] == "gcj02"
    assert amap["layers"][0]["scheme"] == "xyz" and tencent["layers"][0]["scheme"] == "tms"
    assert len(amap["layers"][0]["tiles"]) == 4


def test_a_generic_wmts_and_an_intranet_xyz(tmp_path):
    wmts, xyz, _none = listing(
        tmp_path,
        [
            {
                "preset": "wmts",
                "id": "city",
                "name": {"zh": "市政务底图", "en": "City GIS"},
                "url": "https://gis.city.example/wmts?token=abc",
                "layer": "city:vec",
                "tile_matrix_set": "EPSG:3857",
                "tile_matrix_prefix": "EPSG:3857:",
            },
            {
                "preset": "xyz",
                "url": "http://10.1.2.3/tiles/{z}/{x}/{y}.png",
                "crs": "bd09",
                "attribution": "市测绘院",
            },
        ],
    )
    (tiles,) = wmts["layers"][0]["tiles"]
    assert tiles.startswith("https://gis.city.example/wmts?token=abc&SERVICE=WMTS&REQUEST=GetTile")
    assert "LAYER=city:vec" in tiles and "TILEMATRIXSET=EPSG:3857&" in tiles
    assert tiles.endswith("TILEMATRIX=EPSG:3857:{z}&TILEROW={y}&TILECOL={x}")
    assert wmts["name"]["zh"] == "市政务底图" and wmts["kind"] == "wmts"
    assert xyz["id"] == "xyz" and xyz["crs"] == "bd09" and xyz["attribution"] == "市测绘院"
    assert xyz["name"] == {"zh": "内网底图", "en": "Intranet basemap"}


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"kind": "xyz"}, "BASEMAPS[0]: url must be a URL template"),
        ({"kind": "xyz", "url": "https://t/{z}/{x}.png"}, "needs {z}, {x} and {y}"),
        ({"kind": "tiles", "url": "https://t/{z}/{x}/{y}"}, "kind must be one of"),
        ({"kind": "none", "crs": "utm"}, "crs must be one of wgs84, gcj02, bd09"),
        ({"preset": "tianditu_vec"}, "needs either key (a browser key) or proxy"),
        ({"preset": "google"}, "preset must be one of"),
        ({"kind": "pmtiles", "file": "../etc/passwd"}, "file must be a .pmtiles name"),
        ({"kind": "wmts", "url": "https://gis/wmts"}, "a wmts basemap needs layer"),
        ({"kind": "xyz", "url": "https://t/{z}/{x}/{y}?k={key}"}, "url has {key} but no key"),
        ({"kind": "none", "id": "a b"}, "id must be 1-64 letters"),
    ],
)
def test_an_unusable_entry_is_refused_naming_the_field(tmp_path, entry, message):
    with pytest.raises(BasemapConfigError, match=re.escape(message)):
        listing(tmp_path, [entry])


def test_ids_are_unique_and_the_list_is_a_list(tmp_path):
    with pytest.raises(BasemapConfigError, match="id none is used twice"):
        listing(tmp_path, [{"kind": "none", "id": "none"}, {"kind": "none", "id": "none"}])
    with pytest.raises(BasemapConfigError, match="must be a JSON list"):
        basemaps.listing(config(tmp_path, BASEMAPS='{"kind": "none"}'))


def test_the_file_setting_and_the_old_single_url_setting(tmp_path):
    path = tmp_path / "basemaps.json"
    path.write_text(json.dumps([{"preset": "amap"}]), encoding="utf-8")
    (amap, _none) = basemaps.listing(config(tmp_path, BASEMAPS_FILE=str(path)))
    assert amap["id"] == "amap"
    old = basemaps.listing(
        config(tmp_path, MAP_TILE_URL="https://tiles.example/{z}/{x}/{y}.png", MAP_GCJ02=True)
    )
    assert old[0]["layers"][0]["tiles"] == ["https://tiles.example/{z}/{x}/{y}.png"]
    assert old[0]["crs"] == "gcj02"


def test_pmtiles_files_in_the_folder_appear_after_the_configured_ones(tmp_path):
    (tmp_path / "北京.pmtiles").write_bytes(b"x")
    (tmp_path / "named.pmtiles").write_bytes(b"x")
    (tmp_path / ".hidden.pmtiles").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    entries = [
        {"preset": "amap"},
        {"id": "city", "kind": "pmtiles", "file": "named.pmtiles", "name": "城区"},
    ]
    amap, city, beijing, none = listing(tmp_path, entries)
    assert city["url"] == "/api/v1/basemaps/files/named.pmtiles" and city["name"]["en"] == "城区"
    assert beijing["kind"] == "pmtiles" and beijing["name"] == {
        "zh": "北京（离线）",
        "en": "北京 (offline)",
    }
    assert beijing["url"] == "/api/v1/basemaps/files/%E5%8C%97%E4%BA%AC.pmtiles"
    assert none["kind"] == "none" and amap["default"] is True


def test_the_csp_names_every_tile_server_once(tmp_path):
    settings = config(
        tmp_path,
        BASEMAPS=json.dumps(
            [
                {"preset": "tianditu_vec", "key": "k"},
                {"preset": "amap"},
                {"preset": "xyz", "url": "/tiles/{z}/{x}/{y}.png"},
            ]
        ),
    )
    policy = content_security_policy(basemaps.tile_urls(settings), "http://127.0.0.1:5000")
    img_src = next(d for d in policy.split("; ") if d.startswith("img-src")).split()[1:]
    assert img_src[:3] == ["'self'", "data:", "blob:"]
    hosts = img_src[3:]
    assert len(hosts) == len(set(hosts)) == 12  # t0-t7 of 天地图, webrd01-04 of AMap
    assert "https://t0.tianditu.gov.cn" in hosts and "https://webrd04.is.autonavi.com" in hosts
