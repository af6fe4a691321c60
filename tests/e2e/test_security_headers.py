"""Security headers on every answer, and every page working under the CSP in Chromium."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.conftest import ServerProcess, free_port
from tests.e2e.chromium import wait_until
from tracker.web.phone import icon_png
from tracker.web.security import tile_origin

START = (39.9280, 116.4105)  # lat, lon: Jingshan, Beijing
# Collects every CSP violation the page's document sees, from before its first script.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} ` +
      `(${event.sourceFile}:${event.lineNumber})`,
  );
});
"""
# Engine.IO's first long-polling request: the handshake a client makes without websockets.
POLLING_HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


class TileServer:
    """A basemap on another origin: every tile is the same PNG, and requests are counted."""

    def __init__(self) -> None:
        """Listen on a free port of the loopback interface."""
        png = icon_png(192)
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                # MapLibre fetches tiles with CORS.
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        self.origin = f"http://127.0.0.1:{free_port()}"
        self.httpd = ThreadingHTTPServer(("127.0.0.1", int(self.origin.rsplit(":", 1)[1])), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def tiles() -> Iterator[TileServer]:
    """Serve tiles from an origin other than the app's."""
    server = TileServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def csp_server(database_url: str, tiles: TileServer) -> Iterator[ServerProcess]:
    """Run a server whose basemap comes from the tile server, so the CSP must name it."""
    proc = ServerProcess(database_url, {"MAP_TILE_URL": f"{tiles.origin}/{{z}}/{{x}}/{{y}}.png"})
    proc.start()
    yield proc
    proc.stop()


def directives(policy: str) -> dict[str, list[str]]:
    """Split a Content-Security-Policy into its directives and their sources."""
    parsed = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        parsed[name] = sources
    return parsed


def assert_security_headers(response: requests.Response, tile_server: str) -> None:
    """Check one answer's security headers."""
    headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "geolocation=(self)" in headers["Permissions-Policy"]
    assert "camera=()" in headers["Permissions-Policy"]
    policy = directives(headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["font-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["worker-src"] == ["'self'", "blob:"]
    assert policy["img-src"] == ["'self'", "data:", "blob:", tile_server]
    assert policy["connect-src"][0] == "'self'" and policy["connect-src"][-1] == tile_server
    assert "unsafe" not in headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/login", "text/html"),
        ("/api/v1/session", "application/json"),
        ("/osmand", "application/json"),
        ("/static/js/login.js", "text/javascript"),
        ("/m", "text/html"),
        ("/m/sw.js", "text/javascript"),
        ("/no/such/page", "text/html"),
        (POLLING_HANDSHAKE, "text/plain"),
    ],
)
def test_every_kind_of_answer_carries_the_security_headers(csp_server, tiles, path, content_type):
    response = requests.get(csp_server.url + path, timeout=5, allow_redirects=False)
    assert response.headers["Content-Type"].startswith(content_type)
    assert_security_headers(response, tiles.origin)


def test_views_keep_the_headers_they_set_themselves(csp_server):
    response = requests.get(csp_server.url + "/m/sw.js", timeout=5)
    assert response.headers["Service-Worker-Allowed"] == "/m"
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "url, origin",
    [
        (None, None),
        ("https://tiles.example/{z}/{x}/{y}.png", "https://tiles.example"),
        ("http://10.1.2.3:8081/osm/{z}/{x}/{y}.png?key=k", "http://10.1.2.3:8081"),
        ("https://{s}.tile.example.org/{z}/{x}/{y}.png", "https://*.tile.example.org"),
        ("//tiles.example/{z}/{x}/{y}.png", "tiles.example"),
        ("/tiles/{z}/{x}/{y}.png", None),
        ("https://user:secret@tiles.example/{z}/{x}/{y}.png", "https://tiles.example"),
        ("https://tiles.example;script-src *", None),
        ("javascript://tiles.example/{z}", None),
    ],
)
def test_the_tile_servers_origin_comes_from_the_url_template(url, origin):
    assert tile_origin(url) == origin


class CspWatch:
    """The CSP violations the pages of one browser context report, and their console lines."""

    def __init__(self, browser: Any, **context_options: Any) -> None:
        """Open a context that watches every page from its first script on."""
        self.context = browser.new_context(**context_options)
        self.context.add_init_script(WATCH_CSP)
        self.console: list[str] = []
        self.errors: list[str] = []
        self.context.on("console", self._console)
        self.context.on("weberror", lambda error: self.errors.append(str(error.error)))

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.console.append(message.text)

    def violations(self, page: Any) -> list[str]:
        """Return what the page's document and the console reported so far."""
        return page.evaluate("window.__cspViolations") + self.console

    def close(self) -> None:
        """Close the context."""
        self.context.close()


@pytest.fixture()
def watch(browser) -> Iterator[Any]:
    """Return a function opening a watched browser context; close them all afterwards."""
    watches: list[CspWatch] = []

    def make(**context_options: Any) -> CspWatch:
        watches.append(CspWatch(browser, **context_options))
        return watches[-1]

    yield make
    for opened in watches:
        opened.close()


def log_in(page: Any, url: str, username: str, password: str) -> None:
    """Log in through the login form, which must work under the CSP."""
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_login_page_and_live_map_work_under_the_csp(csp_server, tiles, watch, make_user):
    url = csp_server.url
    watched = watch(viewport={"width": 1400, "height": 850}, locale="en-US")
    page = watched.context.new_page()
    page.goto(f"{url}/login")
    assert page.is_visible("#login-form") and page.is_visible("#username")
    assert page.is_visible("[data-lang-choice=en].active")  # lang.js ran
    assert watched.violations(page) == []

    log_in(page, url, *make_user("dispatcher"))
    wait_until(page, "document.body.dataset.synced", 15)
    page.wait_for_selector("#live-status[data-state=live]", timeout=15_000)
    assert page.is_visible("#map canvas.maplibregl-canvas")
    # The map's blob: workers start and fetch raster tiles from the other origin.
    deadline = time.monotonic() + 10
    while not tiles.hits and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert tiles.hits, "the map requested no tile from the tile server"
    page.wait_for_timeout(1000)  # let late fetches, workers and the live feed settle
    assert watched.violations(page) == []
    assert watched.errors == []


def test_import_page_works_under_the_csp(csp_server, watch, make_user):
    url = csp_server.url
    watched = watch(viewport={"width": 1200, "height": 800}, locale="en-US")
    page = watched.context.new_page()
    log_in(page, url, *make_user("admin"))
    page.goto(f"{url}/admin/units/import")
    assert page.is_visible("#import-form")
    # A file the server refuses as a whole: the page posts it and shows why, nothing changes.
    not_a_grid = {"type": "FeatureCollection", "features": [{"type": "Feature"}]}
    page.set_input_files(
        "#import-file",
        files=[
            {
                "name": "bad.geojson",
                "mimeType": "application/json",
                "buffer": json.dumps(not_a_grid).encode(),
            }
        ],
    )
    assert page.text_content("#import-file-name") == "bad.geojson"
    page.click("#import-submit")
    page.wait_for_selector("#import-result[data-state=error]", timeout=10_000)
    assert watched.violations(page) == []
    assert watched.errors == []


def test_phone_app_works_under_the_csp(csp_server, watch, make_phone):
    phone = make_phone("volunteer")
    watched = watch(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        locale="en-US",
        permissions=["geolocation"],
        geolocation={"latitude": START[0], "longitude": START[1], "accuracy": 5},
    )
    page = watched.context.new_page()
    page.goto(f"{csp_server.url}/m#token={phone.token}")
    wait_until(page, "window.trackerPhone && window.trackerPhone.ready === true")
    wait_until(page, "navigator.serviceWorker.controller !== null", 20)
    wait_until(page, "window.trackerPhone.connection === 'connected'", 20)
    assert page.is_visible("#paired") and page.is_hidden("#unpaired")
    page.click("#duty")
    wait_until(page, "window.trackerPhone.onDuty && window.trackerPhone.dutySynced")
    wait_until(page, "window.trackerPhone.stored === 1", 20)
    assert watched.violations(page) == []
    assert watched.errors == []


def test_the_watch_sees_what_the_csp_blocks(csp_server, watch, make_user):
    # The other tests would pass vacuously if violations went unnoticed: here a page sets a
    # style attribute, and the map is told to draw tiles from an origin the policy does not
    # name.
    blocked = f"http://127.0.0.1:{free_port()}"
    elsewhere = f"{blocked}/{{z}}/{{x}}/{{y}}.png"
    watched = watch(viewport={"width": 1200, "height": 800}, locale="en-US")

    def elsewhere_tiles(route: Any) -> None:
        answer = route.fetch()
        page_html = answer.text()
        start = page_html.index('<script type="application/json" id="settings">')
        start = page_html.index(">", start) + 1
        end = page_html.index("</script>", start)
        settings = json.loads(page_html[start:end])
        settings["basemaps"][0]["layers"][0]["tiles"] = [elsewhere]
        route.fulfill(
            body=page_html[:start] + json.dumps(settings) + page_html[end:],
            content_type="text/html",
            headers={"Content-Security-Policy": answer.headers["content-security-policy"]},
        )

    page = watched.context.new_page()
    page.goto(f"{csp_server.url}/login")
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    wait_until(page, "window.__cspViolations.length > 0", 5)
    assert page.evaluate("window.__cspViolations")[0].startswith("style-src-attr blocked inline")
    assert any("Content Security Policy" in line for line in watched.console)
    watched.console.clear()

    log_in(page, csp_server.url, *make_user("viewer"))
    page.route(f"{csp_server.url}/", elsewhere_tiles)
    page.goto(f"{csp_server.url}/")
    deadline = time.monotonic() + 15
    while not (found := watched.violations(page)) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert found, "a tile server outside the policy was not reported"
    assert all(blocked in line for line in found), found
