"""Benchmark: publishing a value review and reading it back (issue 12, DESIGN.md §7).

Run from the repository root::

    .venv/bin/python bench/review.py [--runs 3]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/valuetree_bench .venv/bin/python bench/review.py

It builds, in a throw-away database, a 10,010-node tree (10 goals × 10 bets × 99
initiatives) with two measures per initiative (19,800), each with a current verdict,
and a 1,010-node tree of the same shape (10 × 10 × 9). For each it measures:

- ``publish``: ``review_publish`` of a fresh draft (snapshot with the roll-up, metric
  health, hash, changes against the previous review);
- ``published_read``: loading the published review and building what the API sends
  (``review_data`` + ``review_json`` + orjson), which reads only the snapshot;
- ``tree_read`` (the baseline, same run): ``tree_get`` of the same tree rendered by the
  API's ``json_response``.

It prints one JSON object on stdout. Targets: the query counts of publish and of the
published read are equal at both sizes; at 10,000 nodes publish ≤ 5× and the published
read ≤ 2× the whole-tree read (medians).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import django  # noqa: E402  (after _common, which sets Django up)
import orjson  # noqa: E402
from _common import (
    check,
    count_queries,
    database_vendor,
    log,
    log_queries,
    median_ms,
    throwaway_database,
    timed_ms,
)
from django.utils import timezone  # noqa: E402

from outcomes.models import Measure, ValueReview, Verdict  # noqa: E402
from outcomes.reviews import export, selectors, services  # noqa: E402
from tests.factories import bulk_tree, make_role_users, make_tree  # noqa: E402
from valuetree import selectors as tree_selectors  # noqa: E402
from valuetree.apis import json_response  # noqa: E402
from valuetree.models import Node  # noqa: E402

SIZES = {"small": (10, 10, 9), "large": (10, 10, 99)}
MEASURES_PER_INITIATIVE = 2
MAX_PUBLISH_RATIO = 5.0
MAX_READ_RATIO = 2.0
STATUSES = ("on_track", "at_risk", "off_track", "achieved", "missed", "stale")


def build(users: dict[str, Any], slug: str, shape: tuple[int, int, int]) -> Any:
    tree = make_tree(users, slug=slug, name=slug.title())
    goals, bets, initiatives = shape
    started = time.perf_counter()
    bulk_tree(
        tree, goals=goals, bets=bets, initiatives=initiatives, measures=MEASURES_PER_INITIATIVE
    )
    now = timezone.now()
    measure_ids = list(Measure.objects.filter(node__tree=tree).values_list("id", flat=True))
    Verdict.objects.bulk_create(
        (
            Verdict(
                measure_id=measure_id,
                evaluated_at=now,
                as_of=now,
                status=STATUSES[index % len(STATUSES)],
                judged_status=STATUSES[index % len(STATUSES)],
                progress=(index % 100) / 100,
                expected_progress=0.5,
                forecast_value=50.0,
                forecast_low=40.0,
                forecast_high=60.0,
                forecast_probability=0.4,
            )
            for index, measure_id in enumerate(measure_ids)
        ),
        batch_size=2000,
    )
    log(
        f"{slug}: {Node.objects.filter(tree=tree).count()} nodes, {len(measure_ids)} measures "
        f"with verdicts in {time.perf_counter() - started:.1f}s"
    )
    return tree_selectors.trees_for_user(users["owner"]).get(pk=tree.pk)


def measure(users: dict[str, Any], tree: Any, runs: int) -> dict[str, Any]:
    def tree_read() -> bytes:
        return json_response(tree_selectors.tree_get(tree=tree)).content

    def published_read(review_id: int) -> bytes:
        review = ValueReview.objects.select_related("tree").get(pk=review_id)
        return orjson.dumps(export.review_json(selectors.review_data(review)), default=float)

    def publish() -> ValueReview:
        draft = services.review_start(tree=tree, by=users["owner"])
        elapsed, review = timed_ms(lambda: services.review_publish(review=draft, by=None))
        publish_samples.append(elapsed)
        return review

    # A first published review, so every timed publish also computes real changes.
    first = services.review_publish(
        review=services.review_start(tree=tree, by=users["owner"]), by=None
    )
    body = published_read(first.pk)
    check(
        len(orjson.loads(body)["snapshot"]["nodes"]) == Node.objects.filter(tree=tree).count(),
        "the published review holds every node",
    )
    tree_read()

    draft = services.review_start(tree=tree, by=users["owner"])
    publish_queries, statements = count_queries(
        lambda: services.review_publish(review=draft, by=None)
    )
    log_queries(f"{tree.slug}: publish", statements)
    read_queries, statements = count_queries(lambda: published_read(draft.pk))
    log_queries(f"{tree.slug}: published read", statements)
    tree_queries, _ = count_queries(tree_read)

    publish_samples: list[float] = []
    read_samples: list[float] = []
    tree_samples: list[float] = []
    for _ in range(runs):
        review = publish()
        read_samples.append(timed_ms(lambda review=review: published_read(review.pk))[0])
        tree_samples.append(timed_ms(tree_read)[0])
    tree_ms = median_ms(tree_samples)
    return {
        "nodes": Node.objects.filter(tree=tree).count(),
        "measures_with_verdicts": Measure.objects.filter(node__tree=tree).count(),
        "snapshot_bytes": len(orjson.dumps(review.snapshot)),
        "publish": {"queries": publish_queries, "median_ms": median_ms(publish_samples)},
        "published_read": {
            "queries": read_queries,
            "median_ms": median_ms(read_samples),
            "response_bytes": len(body),
        },
        "tree_read": {"queries": tree_queries, "median_ms": tree_ms},
        "ratio_publish_to_tree_read": round(median_ms(publish_samples) / tree_ms, 3),
        "ratio_published_read_to_tree_read": round(median_ms(read_samples) / tree_ms, 3),
        "runs": runs,
    }


def run(runs: int) -> dict[str, Any]:
    users = make_role_users()
    results = {
        name: measure(users, build(users, name, shape), runs) for name, shape in SIZES.items()
    }
    small, large = results["small"], results["large"]
    equal = (
        small["publish"]["queries"] == large["publish"]["queries"]
        and small["published_read"]["queries"] == large["published_read"]["queries"]
    )
    return {
        "benchmark": "review",
        "database": database_vendor(),
        "django": django.get_version(),
        **results,
        "targets": {
            "queries_equal_at_both_sizes": True,
            "max_publish_ratio": MAX_PUBLISH_RATIO,
            "max_published_read_ratio": MAX_READ_RATIO,
        },
        "met": {
            "queries_equal_at_both_sizes": equal,
            "max_publish_ratio": large["ratio_publish_to_tree_read"] <= MAX_PUBLISH_RATIO,
            "max_published_read_ratio": large["ratio_published_read_to_tree_read"]
            <= MAX_READ_RATIO,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be ≥ 1")
    with throwaway_database():
        result = run(args.runs)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
