"""Page weight (issue 15): at most 1.5 MB of JavaScript on any page before compression,
and the partial plotly.js bundle carries every trace type the figures use."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

from outcomes import dashboard
from outcomes.models import Measure
from tests.factories import make_metric
from valuetree import services

MAX_JS_BYTES = 1_500_000
SCRIPT = re.compile(r'<script[^>]*\ssrc="([^"]+)"')


def _script_bytes(html: str) -> int:
    total = 0
    for src in SCRIPT.findall(html):
        assert src.startswith(settings.STATIC_URL) or src.startswith("/" + settings.STATIC_URL)
        path = finders.find(src.split(settings.STATIC_URL, 1)[1])
        assert path, src
        total += Path(path).stat().st_size
    return total


@pytest.fixture
def pages(tree, users):
    goal = services.node_create(tree=tree, parent=None, title="Goal")
    metric = make_metric(tree, name="Turnaround hours")
    measure = Measure.objects.create(
        node=goal,
        name="Turnaround",
        unit="hours",
        direction="decrease",
        baseline_value=48,
        baseline_date=dt.date(2026, 1, 1),
        target_value=24,
        target_date=dt.date(2027, 1, 1),
        metric=metric,
    )
    return [
        "/",
        f"/trees/{tree.slug}/",
        f"/trees/{tree.slug}/?view=diagram",
        f"/nodes/{goal.pk}/",
        f"/trees/{tree.slug}/metrics/",
        f"/metrics/{metric.pk}/",
        "/dashboard/",
        f"/dashboard/measures/{measure.pk}/",
        f"/trees/{tree.slug}/think-again/",
    ]


@pytest.mark.django_db
def test_no_page_ships_more_than_the_js_budget(client, users, pages):
    client.force_login(users["owner"])
    weights = {}
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        weights[url] = _script_bytes(response.content.decode())
    assert max(weights.values()) <= MAX_JS_BYTES, weights
    # The chart pages do load plotly (else the budget would hold trivially).
    assert weights["/dashboard/"] > 1_000_000, weights


def test_the_bundle_registers_every_trace_type_the_figures_use():
    entry = (Path(settings.BASE_DIR) / "static/vendor/plotly/build/entry.js").read_text()
    bundled = {"scatter"} | set(re.findall(r"plotly\.js/lib/(\w+)", entry)) - {"core"}
    source = Path(dashboard.__file__).read_text()
    # Every "type" in the figure code that is not a shape's, an axis' or an error bar's.
    not_traces = {"line", "rect", "circle", "path", "date", "linear", "log", "category", "data"}
    used = set(re.findall(r'"type": "(\w+)"', source)) - not_traces
    assert used, "no trace types found in outcomes/dashboard.py"
    assert used <= bundled, used - bundled
