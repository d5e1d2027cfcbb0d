"""axe-core in a real browser over every page of the demo: no serious or critical
violation (issue 15). The demo is loaded as `make run` loads it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command
from playwright.sync_api import Page

from outcomes.models import Measure, Metric
from valuetree.models import DataProduct, Node

SLUG = "helix-diagnostics"
BLOCKING = {"serious", "critical"}


def _pages() -> dict[str, Callable[[], str]]:
    def initiative() -> str:
        node = Node.objects.filter(tree__slug=SLUG, kind="initiative", measures__isnull=False)
        return f"/nodes/{node.order_by('id').first().pk}/"

    def metric() -> str:
        return f"/metrics/{Metric.objects.order_by('id').first().pk}/"

    def measure_chart() -> str:
        measure = Measure.objects.filter(metric__isnull=False).order_by("id").first()
        return f"/dashboard/measures/{measure.pk}/"

    def product() -> str:
        return f"/data-products/{DataProduct.objects.order_by('slug').first().slug}/"

    return {
        "home": lambda: "/",
        "outline": lambda: f"/trees/{SLUG}/",
        "diagram": lambda: f"/trees/{SLUG}/?view=diagram",
        "node": initiative,
        "metrics": lambda: f"/trees/{SLUG}/metrics/",
        "metric": metric,
        "dashboard": lambda: "/dashboard/",
        "measure-chart": measure_chart,
        "think-again": lambda: f"/trees/{SLUG}/think-again/",
        "catalogue": lambda: "/data-products/",
        "board": lambda: "/data-products/board/",
        "product": product,
        "import": lambda: "/data-products/import/",
        "notifications": lambda: "/notifications/",
        "settings": lambda: f"/trees/{SLUG}/settings/",
        "search": lambda: "/search/?q=sample",
    }


PAGES = _pages()


@pytest.fixture
def demo(live_server):
    call_command("load_demo", verbosity=0)
    call_command("load_demo_metrics", url=live_server.url + "/", verbosity=0)


def test_no_page_has_a_serious_accessibility_violation(page: Page, login: Callable, demo):
    """Every page in one test: the demo (about 3 s to load) is loaded once, and the
    failure lists every page with its violations, not only the first."""
    login(page, "demo", "valuetree-demo")
    failures = {}
    for name in sorted(PAGES):
        url = PAGES[name]()
        response = page.goto(url)
        if response is None or response.status != 200:
            failures[name] = f"{url}: answered {response and response.status}"
            continue
        page.wait_for_load_state("networkidle")
        results = Axe().run(page)
        blocking = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5], v["help"])
            for v in results.response["violations"]
            if v["impact"] in BLOCKING
        ]
        if blocking:
            failures[name] = f"{url}: {blocking}"
    assert failures == {}
