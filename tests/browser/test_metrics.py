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


def test_an_editor_adds_and_edits_a_metric_in_dialogs_without_a_page_load(
    tree,
    page: Page,
    login: Callable[[Page, str, str], None],
):
    from outcomes import services
    from outcomes.models import Metric

    services.metric_source_create(
        tree=tree, kind="http_json", name="Stats API", config={"url": "https://stats.example"}
    )
    login(page, "editor", "pw-editor")
    page.goto(f"/trees/{tree.slug}/metrics/")
    # A mark on the window: a page load would wipe it.
    page.evaluate("window.__noPageLoad = true")

    page.get_by_role("link", name="Add a metric").click()
    dialog = page.locator("dialog#dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="Add a metric to “Stats API”")).to_be_visible()
    # Only an HTTP JSON metric's fields: no Prometheus mode.
    expect(dialog.get_by_label("Path", exact=True)).to_be_visible()
    expect(dialog.locator("[name=mode]")).to_have_count(0)
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    # A refused form stays in the dialog with its error.
    dialog.get_by_label("Name", exact=True).fill("Orders")
    dialog.get_by_label("JSONPath of the value").fill("$[[[")
    dialog.get_by_label("Pull every (minutes)").fill("30")
    dialog.get_by_role("button", name="Add metric").click()
    expect(dialog.locator("#id_query_error")).to_contain_text("JSONPath")
    dialog.get_by_label("JSONPath of the value").fill("$.orders")
    dialog.get_by_role("button", name="Add metric").click()

    expect(dialog).to_be_hidden()
    expect(page.locator("#messages")).to_contain_text("Metric “Orders” added.")
    metric = Metric.objects.get(name="Orders")
    link = page.locator(f"#metric-link-{metric.pk}")
    expect(link).to_have_text("Orders")
    expect(link).to_be_focused()

    page.get_by_role("link", name="Edit Orders").click()
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Name", exact=True)).to_have_value("Orders")
    dialog.get_by_label("Name", exact=True).fill("Orders per day")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(f"#metric-link-{metric.pk}")).to_have_text("Orders per day")
    assert Metric.objects.get(pk=metric.pk).name == "Orders per day"
    assert page.evaluate("window.__noPageLoad") is True
    assert page.url.endswith(f"/trees/{tree.slug}/metrics/")
