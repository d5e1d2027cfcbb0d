"""A metric's page in a real browser: check in values and see Plotly draw them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from outcomes import pulling
from tests.factories import make_metric

# Screenshots taken on purpose (to look at); test-artifacts/browser/ holds failures only.
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "screenshots"


def test_an_editor_checks_in_values_and_the_chart_draws_them(
    tree,
    page: Page,
    live_server: LiveServer,
    login: Callable[[Page, str, str], None],
    requested_urls: list[str],
):
    metric = make_metric(tree, kind="push", source_name="Check-ins", name="Reorder rate")
    pulling.observations_push(metric=metric, raw_points=[("2026-01-01", 10), ("2026-02-01", 12)])
    page.goto("/accounts/login/")
    login(page, "editor", "pw-editor")

    page.goto(f"/metrics/{metric.pk}/")
    form = page.locator("form", has=page.get_by_role("heading", name="Check in one value"))
    form.get_by_label("Value").fill("14.5")
    form.get_by_label("Period").fill("2026-03-01")
    form.get_by_role("button", name="Check in").click()

    expect(page).to_have_url(f"{live_server.url}/metrics/{metric.pk}/")
    chart = page.locator("#metric-chart")
    # Plotly replaced the no-JavaScript note with its SVG, one point per value.
    expect(chart.locator("svg.main-svg").first).to_be_visible()
    expect(chart.locator(".scatterlayer .point")).to_have_count(3)
    assert list(metric.observations.values_list("value", flat=True)) == [10.0, 12.0, 14.5]
    assert "/static/vendor/plotly/plotly.min.js" in {
        url.removeprefix(live_server.url) for url in requested_urls
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "metric-chart.png"), full_page=True)
