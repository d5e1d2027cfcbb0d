"""Benchmark: evaluating every measure against a raw latest-observation query (DESIGN.md §7).

Run from the repository root::

    .venv/bin/python bench/verdicts.py [--measures 10000] [--per-metric 100]

It runs on PostgreSQL, the production database, unless DATABASE_URL says otherwise
(on the embedded SQLite the same run measured a ratio of about 14: no LATERAL probe,
and inserts limited to ~60 rows by SQLite's bound-parameter cap).

10,000 measures, each on its own metric with 100 daily observations (1,000,000 in
all). It times `measures_evaluate()` over all of them (verdicts with forecasts,
stored) and, in the same run, one raw SQL query for the latest observation of every
metric, and prints one JSON object with both, the queries evaluation took and their
ratio. Target: ratio ≤ 5.0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/valuetree")

from _common import (  # noqa: E402
    check,
    count_queries,
    database_vendor,
    log,
    median_ms,
    throwaway_database,
    timed_ms,
)
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402

from outcomes.evaluation import measures_evaluate  # noqa: E402
from outcomes.models import Measure, Metric, MetricSource, Observation, Verdict  # noqa: E402
from tests.factories import bulk_tree, make_role_users, make_tree  # noqa: E402

TARGET_RATIO = 5.0
AT = datetime(2026, 6, 1, tzinfo=UTC)

LATEST_SQL = {
    "postgresql": (
        "SELECT DISTINCT ON (metric_id) metric_id, period_start, value "
        "FROM outcomes_observation ORDER BY metric_id, period_start DESC"
    ),
    # SQLite returns the bare columns of the row that holds the MAX().
    "sqlite": (
        "SELECT metric_id, MAX(period_start), value FROM outcomes_observation GROUP BY metric_id"
    ),
}

FILL_SQL = {
    "postgresql": (
        "INSERT INTO outcomes_observation (metric_id, period_start, value, pulled_at) "
        "SELECT m.id, timestamptz '2026-01-01 00:00+00' + g * interval '1 day', "
        "(m.id % 50) + g * 0.4 + ((m.id * 7 + g * 13) % 10) * 0.1, now() "
        "FROM outcomes_metric m CROSS JOIN generate_series(0, {n} - 1) AS g"
    ),
    "sqlite": (
        "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < {n}) "
        "INSERT INTO outcomes_observation (metric_id, period_start, value, pulled_at) "
        "SELECT m.id, strftime('%Y-%m-%d %H:%M:%S', '2026-01-01', '+' || g.n || ' days'), "
        "(m.id % 50) + g.n * 0.4 + ((m.id * 7 + g.n * 13) % 10) * 0.1, datetime('now') "
        "FROM outcomes_metric m CROSS JOIN g"
    ),
}


def build(measures: int, per_metric: int) -> None:
    users = make_role_users()
    tree = make_tree(users, slug="verdict-bench", name="Verdict bench")
    bets = max(1, measures // 1000)
    bulk_tree(tree, goals=10, bets=bets, initiatives=measures // (10 * bets), measures=1)
    source = MetricSource.objects.create(tree=tree, kind="push", name="Bench")
    rows = list(Measure.objects.order_by("id"))
    metrics = Metric.objects.bulk_create(
        Metric(source=source, name=f"KPI {n}", granularity="day") for n in range(len(rows))
    )
    for measure, metric in zip(rows, metrics, strict=True):
        measure.metric_id = metric.pk
    Measure.objects.bulk_update(rows, ["metric"], batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute(FILL_SQL[database_vendor()].replace("{n}", str(per_metric)))
    log(f"{len(rows)} measures, {Observation.objects.count():,} observations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measures", type=int, default=10_000)
    parser.add_argument("--per-metric", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with throwaway_database():
        build(args.measures, args.per_metric)
        vendor = database_vendor()

        def latest() -> int:
            with connection.cursor() as cursor:
                cursor.execute(LATEST_SQL[vendor])
                return len(cursor.fetchall())

        check(latest() == args.measures, "the raw query does not see every metric")
        raw_ms = median_ms([timed_ms(latest)[0] for _ in range(args.runs)])
        queries, statements = count_queries(lambda: measures_evaluate(at=AT))
        evaluate_samples = []
        for _ in range(args.runs):
            elapsed, written = timed_ms(lambda: measures_evaluate(at=AT))
            check(written == args.measures, f"{written} verdicts written")
            evaluate_samples.append(elapsed)
        evaluate_ms = median_ms(evaluate_samples)
        current = Verdict.objects.filter(is_current=True).count()
        check(current == args.measures, f"{current} current verdicts")
        statuses = dict(
            Verdict.objects.filter(is_current=True)
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        )
        log(f"statuses: {statuses}")

    ratio = evaluate_ms / raw_ms
    result = {
        "benchmark": "verdicts",
        "database": vendor,
        "measures": args.measures,
        "observations": args.measures * args.per_metric,
        "evaluate_ms": evaluate_ms,
        "evaluate_queries": queries,
        "raw_latest_ms": raw_ms,
        "ratio": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }
    print(json.dumps(result))
    if not result["meets_target"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
