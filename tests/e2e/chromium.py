"""How the browser tests and bench/map_browser.py start Debian's Chromium."""

from __future__ import annotations

import shutil
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Playwright's own browser downloads are not reachable here: Debian's package is used.
# ANGLE on SwiftShader gives WebGL without a GPU (the map draws with MapLibre GL); the
# other flags keep Chromium from reaching for the network in the background.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


def launch(playwright: Any) -> Any:
    """Launch headless Chromium with Playwright (a sync_playwright() handle)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
