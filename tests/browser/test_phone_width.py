"""Every page of the demo fits a phone (390 px wide): nothing makes the page itself
scroll sideways; wide tables and charts scroll inside their own box (issue 15)."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page

from tests.browser.test_accessibility import PAGES, demo  # noqa: F401 (a fixture)

PHONE = {"width": 390, "height": 844}


def test_no_page_of_the_demo_scrolls_sideways_on_a_phone(page: Page, login: Callable, demo):  # noqa: F811
    page.set_viewport_size(PHONE)
    login(page, "demo", "valuetree-demo")
    wide = {}
    for name in sorted(PAGES):
        url = PAGES[name]()
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            wide[url] = width
    assert wide == {}
