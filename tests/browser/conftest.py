"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Every test in this package is marked ``browser`` (the PostgreSQL pass of ``scripts/test``
deselects them: they test the UI, not the database). Chromium comes only from Debian's
``chromium`` package; Playwright's own browser download is never used. Without it the
tests skip, except under ``CI=true``, where a missing browser is a failure.

A failing test leaves a full-page screenshot in ``test-artifacts/browser/<test>.png``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root in containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
HERE = Path(__file__).parent
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"true", "1"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tryfirst: the mark must be on before `-m "not browser"` deselects.
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    # Keep each phase's report on the item so the `page` fixture's teardown can tell
    # whether the test failed and a screenshot is worth taking.
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        message = (
            f"{CHROMIUM} is missing: install Debian's chromium package "
            "(scripts/test does it with apt-get)"
        )
        if in_ci():
            pytest.fail(f"CI must run the browser tests, but {message}.", pytrace=False)
        pytest.skip(f"browser tests need Chromium; {message}")
    # Playwright's sync API keeps an asyncio event loop registered as running in this
    # thread for as long as it is started, and Django takes that for async code:
    # - every ORM call the test makes here (factories, the flush between tests) would
    #   raise SynchronousOnlyOperation. Nothing here is async (the test and the live
    #   server's thread only share the database), so the guard is switched off, but
    #   only while Playwright runs (this fixture is package-scoped): the rest of the
    #   suite keeps it.
    # - `django.db.connections` would hand this thread new connection objects, private
    #   to the "async context". They would lack what pytest-django set up on the real
    #   ones (the serialized database for rollback) and, on in-memory SQLite, would
    #   not be the connection the live server shares. So the same objects are put back.
    wrappers = {alias: connections[alias] for alias in connections}
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            for alias, wrapper in wrappers.items():
                connections[alias] = wrapper
            yield playwright
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the whole package; each test gets its own context."""
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def requested_urls() -> list[str]:
    """Every network URL (http, https, ws) the `page` asked for, refused ones included."""
    return []


@pytest.fixture
def page(
    request: pytest.FixtureRequest,
    browser: Browser,
    live_server: LiveServer,
    django_db_serialized_rollback: None,
    requested_urls: list[str],
) -> Iterator[Page]:
    """A page in a fresh browser context whose relative URLs go to the live server.

    The live server needs a transactional database, whose flush after each test also
    empties the rows that migrations created (the Leadership group); serialized
    rollback puts them back before the next test.

    Requests to any other origin are recorded and refused, so a stray CDN link fails
    fast and visibly instead of hanging on a machine without internet.
    """
    origin = _origin(live_server.url)
    context = browser.new_context(base_url=live_server.url)
    context.route(
        lambda url: _is_network(url) and _origin(url) != origin, lambda route: route.abort()
    )
    page = context.new_page()
    page.on("request", lambda req: _is_network(req.url) and requested_urls.append(req.url))
    yield page
    reports = request.node.stash.get(REPORTS, {})
    if any(report.failed for report in reports.values()):
        artifacts = request.config.rootpath / "test-artifacts" / "browser"
        artifacts.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        page.screenshot(path=artifacts / f"{name}.png", full_page=True)
    context.close()


@pytest.fixture
def login() -> Callable[[Page, str, str], None]:
    """Log in through the real login form, as a person would."""

    def log_in(page: Page, username: str, password: str) -> None:
        page.goto("/accounts/login/")
        expect(page.get_by_role("heading", name="Log in to Valuetree")).to_be_visible()
        page.get_by_label("Username", exact=True).fill(username)
        page.get_by_label("Password", exact=True).fill(password)
        # Wait for the form's answer, so that a `goto` right after cannot cancel it.
        with page.expect_response(
            lambda response: (
                response.request.method == "POST"
                and urlsplit(response.url).path == "/accounts/login/"
            )
        ):
            page.get_by_role("button", name="Log in", exact=True).click()

    return log_in


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _is_network(url: str) -> bool:
    """data:, blob: and about: URLs never leave the browser."""
    return urlsplit(url).scheme in {"http", "https", "ws", "wss"}
