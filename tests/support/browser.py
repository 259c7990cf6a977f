"""One headless chromium for the session's browser tests (test_console_browser, test_ofrep_web_provider),
and the guard that keeps their pages offline. A pytest plugin (tests/conftest.py loads it): the
browser is launched once, by the first test that asks for it, and each test gets a fresh context.

Needs Debian's `chromium` (apt-get install chromium; .ci/run does); Playwright drives it, no browser
download. Playwright is imported only when a browser is asked for: `make unit` does not pay for it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Route

CHROMIUM = os.environ.get("GRAPHFLAGS_CHROMIUM", "/usr/bin/chromium")
# Headless, and nothing of Chromium's own phoning home (updates, safe browsing, first-run pages).
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
LOCAL = {"127.0.0.1", "localhost", "::1", "[::1]"}
# Generous: the shared test machine may be busy; nothing here is a timing assertion.
WAIT_MS = 30_000


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: the browser tests need Debian's chromium (apt-get install chromium)")
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=WAIT_MS)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


class Offline:
    """A browser context whose every non-local request is refused and recorded."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.refused: list[str] = []

    async def guard(self, route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL:
            await route.continue_()
        else:
            self.refused.append(route.request.url)
            await route.abort("internetdisconnected")


@pytest.fixture
async def offline(browser: Browser) -> AsyncIterator[Offline]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    guard = Offline(context)
    await context.route("**/*", guard.guard)
    try:
        yield guard
    finally:
        await context.close()
    assert guard.refused == [], f"the page tried to leave the service: {guard.refused}"
