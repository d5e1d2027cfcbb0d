"""Benchmark: the tree editor page against the whole-tree API of the same tree.

Run from the repository root::

    .venv/bin/python bench/editor.py [--runs 5]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/valuetree_bench .venv/bin/python bench/editor.py

For a 1,000-node and a 10,000-node tree (one measure per initiative, each fed by its
own push metric with a year of monthly values and a current verdict, so every card
draws a value, a progress meter, a sparkline and a verdict), it times
``GET /trees/<slug>/`` (the editable outline, as an editor sees it) and
``GET /api/trees/<slug>/`` in the same run, both through a session login, and
prints one JSON object: medians, query counts and the page/API ratio, which the
design holds to ≤ 3.0 (issue 3).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from _common import (
    check,
    count_queries,
    database_vendor,
    log,
    median_ms,
    throwaway_database,
    timed_ms,
)
from django.test import Client  # noqa: E402  (after _common, which sets Django up)

from tests.factories import bulk_tree, make_role_users, make_tree  # noqa: E402

VALUES_PER_METRIC = 12

# (goals, bets per goal, initiatives per bet)
SIZES = {"1000": (10, 9, 10), "10000": (10, 10, 99)}
MAX_RATIO = 3.0
MAX_PAGE_QUERIES = 10


def measure(size: str, shape: tuple[int, int, int], users: dict[str, Any], runs: int) -> dict:
    goals, bets, initiatives = shape
    tree = make_tree(users, slug=f"editor-{size}", name=f"Editor {size}")
    bulk_tree(tree, goals=goals, bets=bets, initiatives=initiatives, measures=1)
    _feed_measures(tree)
    nodes = goals + goals * bets + goals * bets * initiatives
    client = Client()
    client.force_login(users["editor"])
    page_url, api_url = f"/trees/{tree.slug}/", f"/api/trees/{tree.slug}/"

    def get(url: str) -> Any:
        response = client.get(url)
        check(response.status_code == 200, f"GET {url} answered {response.status_code}")
        return response

    # Warm-up, and proof that the page draws every node with its edit controls.
    html = get(page_url).content.decode()
    check(html.count('id="card-') == nodes, "the page does not draw every node")
    check("node__handle" in html, "the page has no edit controls")
    measures = goals * bets * initiatives
    check(html.count('<svg class="sparkline"') == measures, "a measure has no sparkline")
    get(api_url)
    page_queries, _ = count_queries(lambda: get(page_url))
    api_queries, _ = count_queries(lambda: get(api_url))

    page_samples, api_samples = [], []
    for _ in range(runs):  # alternate, so drift on a noisy machine hits both alike
        page_samples.append(timed_ms(lambda: get(page_url))[0])
        api_samples.append(timed_ms(lambda: get(api_url))[0])
    page, api = median_ms(page_samples), median_ms(api_samples)
    log(f"{nodes} nodes: page {page} ms ({page_queries} queries), API {api} ms")
    return {
        "nodes": nodes,
        "page": {"median_ms": page, "queries": page_queries, "bytes": len(html)},
        "api": {"median_ms": api, "queries": api_queries},
        "ratio_page_to_api": round(page / api, 3),
    }


def _feed_measures(tree: Any) -> None:
    """A push metric per measure with monthly values (and their recent_values, as the
    pull path writes them), and every measure evaluated."""
    import datetime as dt

    from django.utils import timezone

    from outcomes.evaluation import measures_evaluate
    from outcomes.models import Measure, Metric, MetricSource, Observation

    source = MetricSource.objects.create(tree=tree, kind="push", name="Bench")
    measures = list(Measure.objects.filter(node__tree=tree).order_by("id"))
    metrics = Metric.objects.bulk_create(
        Metric(source=source, name=f"Metric {m.pk}", granularity="month") for m in measures
    )
    now = timezone.now()
    Observation.objects.bulk_create(
        (
            Observation(
                metric=metric,
                period_start=now - dt.timedelta(days=30 * (VALUES_PER_METRIC - i)),
                value=float(i * 5 + index % 7),
                pulled_at=now,
            )
            for index, metric in enumerate(metrics)
            for i in range(VALUES_PER_METRIC)
        ),
        batch_size=5000,
    )
    for index, metric in enumerate(metrics):
        metric.recent_values = [float(i * 5 + index % 7) for i in range(VALUES_PER_METRIC)]
    Metric.objects.bulk_update(metrics, ["recent_values"], batch_size=5000)
    for measure, metric in zip(measures, metrics, strict=True):
        measure.metric = metric
    Measure.objects.bulk_update(measures, ["metric"], batch_size=5000)
    measures_evaluate(measure_ids=[m.pk for m in measures])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up")
    args = parser.parse_args()
    with throwaway_database():
        users = make_role_users()
        results = {size: measure(size, shape, users, args.runs) for size, shape in SIZES.items()}
        vendor = database_vendor()
    print(
        json.dumps(
            {
                "benchmark": "editor",
                "database": vendor,
                "runs": args.runs,
                "auth": "session (force_login) for both",
                "sizes": results,
                "targets": {"max_ratio": MAX_RATIO, "max_page_queries": MAX_PAGE_QUERIES},
                "met": {
                    "max_ratio": all(r["ratio_page_to_api"] <= MAX_RATIO for r in results.values()),
                    "max_page_queries": all(
                        r["page"]["queries"] <= MAX_PAGE_QUERIES for r in results.values()
                    ),
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
