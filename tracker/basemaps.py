"""Basemaps as configuration: presets, validation, and the list the map pages draw from.

An office lists its basemaps in BASEMAPS (a JSON list in the environment) or in the JSON
file BASEMAPS_FILE; every `.pmtiles` file in BASEMAP_DIR is added after them, and a plain
background (`none`) comes last, so a map always opens. The first entry is the default.
Each entry comes out as what the browser needs (tile URLs, the PMTiles file's URL, the
coordinate system to draw in); no entry ever carries a `key` field. A key written into
the configuration ends up in tile URLs only for presets whose key is meant for browsers
(天地图's browser keys, restricted by domain); a key the proxy adds never reaches the app.
See docs/basemaps.md.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

KINDS = ("xyz", "wmts", "pmtiles", "none")
CRS = ("wgs84", "gcj02", "bd09")
# File names served from BASEMAP_DIR: no path separators, no dot files.
PMTILES_NAME = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff][A-Za-z0-9_.\-\u4e00-\u9fff]*\.pmtiles$")
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_TEMPLATE_KEYS = ("{z}", "{x}", "{y}")


class BasemapConfigError(ValueError):
    """A basemap entry that cannot be used; the message names the entry and the field."""


@dataclass(frozen=True)
class Basemap:
    """One basemap as the map pages draw it."""

    id: str
    name_zh: str
    name_en: str
    kind: str
    crs: str = "wgs84"
    attribution: str = ""
    # Raster layers drawn bottom to top: each {"tiles": [url, ...], "tile_size", "scheme",
    # "max_zoom"}; 天地图 draws its label layer (cva_w, cia_w) over the base layer.
    layers: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    file: str | None = None  # kind pmtiles: the file's name in BASEMAP_DIR

    def public(self, default: bool) -> dict[str, Any]:
        """Return the entry as GET /api/v1/basemaps and the pages' settings show it."""
        answer: dict[str, Any] = {
            "id": self.id,
            "name": {"zh": self.name_zh, "en": self.name_en},
            "kind": self.kind,
            "crs": self.crs,
            "attribution": self.attribution,
            "default": default,
        }
        if self.kind in ("xyz", "wmts"):
            answer["layers"] = [dict(layer) for layer in self.layers]
        if self.kind == "pmtiles":
            answer["url"] = f"/api/v1/basemaps/files/{quote(self.file or '')}"
        return answer


TIANDITU = "© 天地图 Tianditu"
# 天地图's Web Mercator ("_w") layers through its WMTS KVP interface, on eight hosts.
_TIANDITU_URL = (
    "https://t{n}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}"
)
PRESETS: dict[str, dict[str, Any]] = {
    "tianditu_vec": {
        "name": {"zh": "天地图·矢量", "en": "Tianditu · streets"},
        "tianditu": ("vec", "cva"),
    },
    "tianditu_img": {
        "name": {"zh": "天地图·影像", "en": "Tianditu · imagery"},
        "tianditu": ("img", "cia"),
    },
    "amap": {
        "name": {"zh": "高德地图", "en": "AMap"},
        "kind": "xyz",
        "crs": "gcj02",
        "url": [
            f"https://webrd0{n}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
            "&x={x}&y={y}&z={z}"
            for n in range(1, 5)
        ],
        "attribution": "© 高德地图 AutoNavi",
        "max_zoom": 18,
    },
    "tencent": {
        "name": {"zh": "腾讯地图", "en": "Tencent Maps"},
        "kind": "xyz",
        "crs": "gcj02",
        # Tencent numbers rows from the south (TMS).
        "url": [
            f"https://rt{n}.map.gtimg.com/tile?z={{z}}&x={{x}}&y={{y}}&styleid=1000&scene=0"
            for n in range(4)
        ],
        "scheme": "tms",
        "attribution": "© 腾讯地图 Tencent",
        "max_zoom": 18,
    },
    "wmts": {"name": {"zh": "WMTS 底图", "en": "WMTS basemap"}, "kind": "wmts"},
    "xyz": {"name": {"zh": "内网底图", "en": "Intranet basemap"}, "kind": "xyz"},
}


def _text(entry: Mapping[str, Any], name: str, label: str, default: str = "") -> str:
    """Return a string field of an entry, or raise naming it."""
    value = entry.get(name, default)
    if not isinstance(value, str):
        raise BasemapConfigError(f"{label}: {name} must be a string")
    return value


def _names(entry: Mapping[str, Any], label: str, fallback: Mapping[str, str]) -> tuple[str, str]:
    """Return the (zh, en) names of an entry: {"zh", "en"}, or one string for both."""
    name = entry.get("name", fallback)
    if isinstance(name, str):
        name = {"zh": name, "en": name}
    if not isinstance(name, Mapping):
        raise BasemapConfigError(f"{label}: name must be a string or {{'zh', 'en'}}")
    zh = name.get("zh") or name.get("en")
    en = name.get("en") or name.get("zh")
    if not isinstance(zh, str) or not isinstance(en, str) or not zh.strip():
        raise BasemapConfigError(f"{label}: name must not be empty")
    return zh.strip()[:100], en.strip()[:100]


def _tile_urls(value: Any, label: str) -> list[str]:
    """Return an entry's URL template or templates as a list, each http(s) or from this site."""
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise BasemapConfigError(f"{label}: url must be a URL template or a list of them")
    for url in urls:
        if not url.startswith(("http://", "https://", "/")):
            raise BasemapConfigError(f"{label}: url must be http(s):// or start with /: {url}")
    return urls


def _raster_layer(urls: list[str], entry: Mapping[str, Any], label: str) -> dict[str, Any]:
    """Return one raster layer as the page draws it: tiles, tile size, scheme, max zoom."""
    for url in urls:
        if not all(key in url for key in _TEMPLATE_KEYS):
            raise BasemapConfigError(f"{label}: url needs {{z}}, {{x}} and {{y}}: {url}")
    tile_size = entry.get("tile_size", 256)
    max_zoom = entry.get("max_zoom", 18)
    scheme = entry.get("scheme", "xyz")
    if tile_size not in (256, 512):
        raise BasemapConfigError(f"{label}: tile_size must be 256 or 512")
    if not isinstance(max_zoom, int) or not 0 <= max_zoom <= 24:
        raise BasemapConfigError(f"{label}: max_zoom must be an integer from 0 to 24")
    if scheme not in ("xyz", "tms"):
        raise BasemapConfigError(f"{label}: scheme must be xyz or tms")
    return {"tiles": urls, "tile_size": tile_size, "scheme": scheme, "max_zoom": max_zoom}


def _wmts_url(base: str, entry: Mapping[str, Any], label: str) -> str:
    """Return the GetTile KVP template of a Web Mercator WMTS layer."""
    layer = _text(entry, "layer", label)
    if not layer:
        raise BasemapConfigError(f"{label}: a wmts basemap needs layer")
    matrix_set = _text(entry, "tile_matrix_set", label, "GoogleMapsCompatible")
    prefix = _text(entry, "tile_matrix_prefix", label)
    params = {
        "SERVICE": "WMTS",
        "REQUEST": "GetTile",
        "VERSION": "1.0.0",
        "LAYER": layer,
        "STYLE": _text(entry, "style", label, "default"),
        "TILEMATRIXSET": matrix_set,
        "FORMAT": _text(entry, "format", label, "image/png"),
    }
    query = "&".join(f"{k}={quote(v, safe=':/')}" for k, v in params.items())
    tiles = f"TILEMATRIX={quote(prefix, safe=':')}{{z}}&TILEROW={{y}}&TILECOL={{x}}"
    return f"{base}{'&' if '?' in base else '?'}{query}&{tiles}"


def _tianditu_layers(entry: Mapping[str, Any], preset: dict[str, Any], label: str) -> list[str]:
    """Return 天地图's base and label layer templates, with `tk` or through the proxy."""
    key = _text(entry, "key", label)
    proxy = _text(entry, "proxy", label).rstrip("/")
    if bool(key) == bool(proxy):
        raise BasemapConfigError(f"{label}: 天地图 needs either key (a browser key) or proxy")
    templates = []
    for layer in preset["tianditu"]:
        if proxy:
            # The proxy (docs/basemaps.md) adds tk: the app and the browsers never see it.
            url = _TIANDITU_URL.replace("https://t{n}.tianditu.gov.cn", proxy).format(layer=layer)
            templates.append([url])
        else:
            urls = [_TIANDITU_URL.format(n=n, layer=layer) + f"&tk={quote(key)}" for n in range(8)]
            templates.append(urls)
    return templates


def parse_entry(entry: Any, index: int) -> Basemap:
    """Return the basemap an entry of BASEMAPS describes.

    Args:
        entry: one item of the configured list: {"preset": ...} with overrides, or a full
            entry with id, name, kind, url (or file), crs, attribution.
        index: its place in the list, for the error message.

    Returns:
        The basemap.

    Raises:
        BasemapConfigError: naming the entry and the field that cannot be used.
    """
    label = f"BASEMAPS[{index}]"
    if not isinstance(entry, Mapping):
        raise BasemapConfigError(f"{label}: must be an object")
    preset_name = entry.get("preset")
    preset: dict[str, Any] = {}
    if preset_name is not None:
        if preset_name not in PRESETS:
            raise BasemapConfigError(f"{label}: preset must be one of {', '.join(PRESETS)}")
        preset = PRESETS[preset_name]
    merged = {**preset, **entry}
    ident = merged.get("id") or preset_name or f"basemap{index}"
    if not isinstance(ident, str) or not _ID.match(ident):
        raise BasemapConfigError(f"{label}: id must be 1-64 letters, digits, '-' or '_'")
    zh, en = _names(entry, label, preset.get("name", {"zh": ident, "en": ident}))
    crs = merged.get("crs", "wgs84")
    if crs not in CRS:
        raise BasemapConfigError(f"{label}: crs must be one of {', '.join(CRS)}")
    attribution = _text(merged, "attribution", label)
    if "tianditu" in preset:
        urls = _tianditu_layers(entry, preset, label)
        layers = tuple(_raster_layer(u, merged, label) for u in urls)
        return Basemap(ident, zh, en, "xyz", crs, attribution or TIANDITU, layers)
    kind = merged.get("kind")
    if kind not in KINDS:
        raise BasemapConfigError(f"{label}: kind must be one of {', '.join(KINDS)}")
    if kind == "none":
        return Basemap(ident, zh, en, "none", crs, attribution)
    if kind == "pmtiles":
        file = _text(merged, "file", label)
        if not PMTILES_NAME.match(file):
            raise BasemapConfigError(f"{label}: file must be a .pmtiles name in BASEMAP_DIR")
        return Basemap(ident, zh, en, "pmtiles", crs, attribution, file=file)
    urls = _tile_urls(merged.get("url"), label)
    if kind == "wmts":
        urls = [_wmts_url(url, merged, label) for url in urls]
    key = _text(entry, "key", label)
    if key:
        urls = [url.replace("{key}", quote(key)) for url in urls]
    if any("{key}" in url for url in urls):
        raise BasemapConfigError(f"{label}: url has {{key}} but no key is given")
    return Basemap(ident, zh, en, kind, crs, attribution, (_raster_layer(urls, merged, label),))


def configured(config: Mapping[str, Any]) -> list[Basemap]:
    """Return the basemaps the settings list (BASEMAPS, BASEMAPS_FILE, MAP_TILE_URL).

    Raises:
        BasemapConfigError: when the list or one of its entries cannot be used.
    """
    raw: Any = []
    if text := (config.get("BASEMAPS") or "").strip():
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise BasemapConfigError(f"BASEMAPS: not JSON ({exc})") from None
    elif path := config.get("BASEMAPS_FILE"):
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BasemapConfigError(f"BASEMAPS_FILE: cannot read {path} ({exc})") from None
    elif config.get("MAP_TILE_URL"):
        # The single-URL setting of earlier versions stays a one-line configuration.
        raw = [
            {
                "id": "tiles",
                "name": {"zh": "底图", "en": "Basemap"},
                "kind": "xyz",
                "url": config["MAP_TILE_URL"],
                "attribution": config.get("MAP_TILE_ATTRIBUTION", ""),
                "crs": "gcj02" if config.get("MAP_GCJ02") else "wgs84",
            }
        ]
    if not isinstance(raw, list):
        raise BasemapConfigError("BASEMAPS: must be a JSON list of basemaps")
    basemaps = [parse_entry(entry, i) for i, entry in enumerate(raw)]
    seen: set[str] = set()
    for basemap in basemaps:
        if basemap.id in seen:
            raise BasemapConfigError(f"BASEMAPS: id {basemap.id} is used twice")
        seen.add(basemap.id)
    return basemaps


def pmtiles_files(directory: Path) -> list[Path]:
    """Return the .pmtiles files in BASEMAP_DIR that can be served, by name."""
    try:
        return sorted(p for p in directory.iterdir() if PMTILES_NAME.match(p.name) and p.is_file())
    except FileNotFoundError:
        return []


def available(config: Mapping[str, Any]) -> list[Basemap]:
    """Return every basemap a map page offers, the default first.

    The configured entries come first, then each .pmtiles file of BASEMAP_DIR that no entry
    names (read on every call, so a file copied in appears without a restart), then a
    plain background.
    """
    basemaps = configured(config)
    named = {b.file for b in basemaps if b.kind == "pmtiles"}
    for path in pmtiles_files(Path(config["BASEMAP_DIR"])):
        if path.name not in named:
            stem = path.name.removesuffix(".pmtiles")
            ident = "pmtiles-" + re.sub(r"[^A-Za-z0-9_\-]", "_", stem)[:55]
            name = f"{stem}（离线）", f"{stem} (offline)"
            basemaps.append(Basemap(ident, *name, "pmtiles", attribution="", file=path.name))
    if not any(b.kind == "none" for b in basemaps):
        basemaps.append(Basemap("none", "无底图", "No basemap", "none"))
    return basemaps


def listing(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the basemaps as GET /api/v1/basemaps answers them."""
    return [b.public(i == 0) for i, b in enumerate(available(config))]


def tile_urls(config: Mapping[str, Any]) -> list[str]:
    """Return every raster tile URL template configured, for the Content-Security-Policy."""
    return [url for b in configured(config) for layer in b.layers for url in layer["tiles"]]
