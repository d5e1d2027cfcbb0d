"""Logging in through the real form, in a real browser."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer


@pytest.mark.usefixtures("tree")  # make_role_users() + make_tree(users), from tests/conftest.py
def test_viewer_logs_in_and_sees_their_tree(
    page: Page,
    live_server: LiveServer,
    login: Callable[[Page, str, str], None],
    requested_urls: list[str],
):
    page.goto("/")
    header = page.locator(".site-header")
    expect(header).to_contain_text("Log in")
    header.get_by_role("link", name="Log in", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")

    login(page, "viewer", "pw-viewer")

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator(".site-header__user")).to_contain_text("viewer")
    expect(page.get_by_text("Signed in as viewer")).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Tree", exact=True))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("A vision")
    expect(row.get_by_role("cell").last).to_have_text("viewer")

    # Everything came from the live server (no CDN), the stylesheet and htmx included.
    paths = {url.removeprefix(live_server.url) for url in requested_urls}
    assert [url for url in requested_urls if not url.startswith(f"{live_server.url}/")] == []
    assert {"/", "/accounts/login/", "/static/css/valuetree.css"} <= paths
    assert "/static/vendor/htmx/htmx.min.js" in paths


@pytest.mark.usefixtures("tree")
def test_wrong_password_shows_the_error_and_stays_on_the_login_page(
    page: Page,
    live_server: LiveServer,
    login: Callable[[Page, str, str], None],
    requested_urls: list[str],
):
    login(page, "viewer", "not-the-password")

    expect(page.get_by_role("alert")).to_contain_text(
        "Please enter a correct username and password."
    )
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    expect(page.get_by_label("Username", exact=True)).to_have_value("viewer")
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    expect(page.get_by_text("Signed in as")).to_have_count(0)
    assert [url for url in requested_urls if not url.startswith(f"{live_server.url}/")] == []
