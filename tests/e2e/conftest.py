"""Browser fixtures: Playwright driving Debian's Chromium (no downloaded browsers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.chromium import launch


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Launch one headless Chromium for the session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        yield browser
        browser.close()
