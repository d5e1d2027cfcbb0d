"""The outcome dashboard in a real browser: Plotly draws every chart from the server's figures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.db.models import F
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from outcomes.models import Measure, Verdict
from tests.factories import bulk_tree
from valuetree.models import Node, NodeKind

# Screenshots taken on purpose (to look at); test-artifacts/browser/ holds failures only.
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "screenshots"
STATUSES = (
    "achieved",
    "reached",
    "on_track",
    "at_risk",
    "off_track",
    "missed",
    "too_early",
    "no_data",
    "stale",
)


def test_leadership_sees_the_dashboard_drawn(
    tree,
    page: Page,
    live_server: LiveServer,
    login: Callable[[Page, str, str], None],
    requested_urls: list[str],
):
    bulk_tree(tree, goals=3, bets=3, initiatives=3, measures=1)
    Node.objects.filter(tree=tree, kind=NodeKind.BET).update(
        investment_amount=F("id") * 1000, expected_value_amount=F("id") * 2500
    )
    now = timezone.now()
    Verdict.objects.bulk_create(
        Verdict(
            measure_id=measure_id,
            evaluated_at=now,
            as_of=now,
            status=STATUSES[index % len(STATUSES)],
            judged_status=STATUSES[index % len(STATUSES)],
            progress=None
            if STATUSES[index % len(STATUSES)] in ("no_data", "too_early", "stale")
            else 0.5,
            expected_progress=0.5,
        )
        for index, measure_id in enumerate(
            Measure.objects.order_by("id").values_list("id", flat=True)
        )
    )
    login(page, "leadership", "pw-leadership")

    page.goto("/dashboard/")

    expect(page.get_by_role("heading", name="Outcome dashboard")).to_be_visible()
    charts = page.locator(".js-plotly-plot")
    expect(charts).to_have_count(4)
    for chart_id in ("status-chart", "values-chart", "bubbles-chart", "sunburst-chart"):
        expect(page.locator(f"#{chart_id} .main-svg").first).to_be_visible()
    expect(page.locator("#status-chart .bars .point")).to_have_count(len(STATUSES))
    expect(page.locator("#sunburst-chart .slice").first).to_be_visible()
    assert "/static/vendor/plotly/plotly.min.js" in {
        url.removeprefix(live_server.url) for url in requested_urls
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # The tree filter is a plain GET form.
    page.locator("select[name=tree]").select_option(label="Tree")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(f"{live_server.url}/dashboard/?tree={tree.pk}&domain=&period=")
    expect(page.locator("#sunburst-chart .main-svg").first).to_be_visible()
