"""The dashboard in a real browser: Debian's chromium (/usr/bin/chromium, headless) driven by
Playwright for Python, against `depot serve` started by the test. Playwright's own browser
downloads are never used (no `playwright install`).

Without /usr/bin/chromium (or the playwright package) the browser tests are skipped with the reason,
except under CI (the CI environment variable set), where that is a failure: scripts/setup.sh
installs both.

Screenshots of every stage go to tests/artifacts/screenshots/; with DEPOT_SAVE_SCREENSHOTS=1 the
deployment page is also saved as docs/dashboard.png."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.controller.dashboard.browser import CHROMIUM, DOCS_SCREENSHOT, SCREENSHOTS, TIMEOUT_MS, unavailable


# Module scope, not session: Playwright's sync API keeps an event loop running on this thread
# while it is open, and every later test calling asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser():
    reason = unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run under CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        # One headless browser for the whole session (the machine is shared: keep it light).
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                                          "--disable-extensions", "--disable-background-networking"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(browser):
    """``new_page()``: a page in a fresh context (its own sessionStorage). Uncaught JavaScript errors
    fail the test."""
    contexts, errors = [], []

    def make():
        context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture
def shot(request):
    """``shot(page, name)``: a screenshot into tests/artifacts/screenshots/<test>-<n>-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    counter = iter(range(1, 1000))

    def take(page, name: str, *, docs: bool = False) -> Path:
        path = SCREENSHOTS / f"{test}-{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=False)
        if docs and os.environ.get("DEPOT_SAVE_SCREENSHOTS") == "1":
            DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS_SCREENSHOT), full_page=False)
        return path

    return take


