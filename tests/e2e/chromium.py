"""How the browser tests and bench/map_browser.py start Debian's Chromium."""

from __future__ import annotations

import shutil
import time
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


def wait_until(page: Any, expression: str, timeout_s: float = 30) -> None:
    """Wait until a JavaScript expression is truthy in the page, checked on every frame.

    Not page.wait_for_function: Playwright runs its predicate through eval() in the page,
    which the app's Content-Security-Policy (no 'unsafe-eval') refuses. A function given to
    page.evaluate() is compiled by the DevTools protocol, which the policy does not govern.
    As with wait_for_function's default polling, the check runs in an animation frame, after
    the frame's own callbacks (a render the page scheduled) have run; a navigation restarts it.
    """
    from playwright.sync_api import Error

    check = f"""timeoutMs => new Promise((resolve, reject) => {{
        const end = performance.now() + timeoutMs;
        const check = () => {{
            let value;
            try {{ value = ({expression}); }} catch (error) {{ reject(error); return; }}
            if (value) resolve(true);
            else if (performance.now() > end) resolve(false);
            else requestAnimationFrame(check);
        }};
        requestAnimationFrame(check);
    }})"""
    deadline = time.monotonic() + timeout_s
    while True:
        left_ms = max(0.0, deadline - time.monotonic()) * 1000
        try:
            if page.evaluate(check, left_ms):
                return
        except Error as error:
            if "context was destroyed" not in error.message:
                raise
        if time.monotonic() >= deadline:
            raise AssertionError(f"still false after {timeout_s} s: {expression}")
