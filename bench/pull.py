"""Benchmark: pull throughput through real Celery workers on Redis (DESIGN.md §7).

Run from the repository root (PostgreSQL and Redis must be up)::

    .venv/bin/python bench/pull.py [--metrics 1000] [--workers 2] [--threads 8]

1,000 HTTP JSON metrics against a local stub that answers after 50 ms. The metrics
are claimed as beat would, one pull task each is queued on Redis, and real worker
processes (`celery worker --pool threads`) pull them into a throw-away PostgreSQL
database. It prints one JSON object: pulls per minute, and their ratio to the
concurrency limit, all worker threads × 60 s / 0.05 s — what the threads could do if a
pull cost nothing but the source's latency. Target: ratio ≥ 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta

# The workers are other processes on the same database: an in-memory SQLite test
# database cannot be shared, so this benchmark runs on PostgreSQL.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/valuetree")

from _common import check, database_vendor, log, throwaway_database  # noqa: E402
from _source import LeanSource  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from outcomes import pulling  # noqa: E402
from outcomes.models import Observation, PullRun, PullStatus  # noqa: E402
from outcomes.services import metric_create, metric_source_create  # noqa: E402
from tests.factories import make_role_users, make_tree  # noqa: E402
from tests.workers import (  # noqa: E402
    Worker,
    database_url_of,
    send_pulls,
    shared_redis_url,
    worker_env,
)

LATENCY = 0.05
TARGET_RATIO = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    # 2 x 4 on this 2-core machine: more threads only queue up for the same CPU.
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    args = parser.parse_args()
    check(database_vendor() == "postgresql", "bench/pull.py needs DATABASE_URL on PostgreSQL")

    with throwaway_database(), LeanSource({"value": 42.5}, latency=LATENCY) as stub:
        settings.METRICS_ALLOWED_HOSTS = [stub.host_port]
        tree = make_tree(make_role_users(), slug="pull-bench", name="Pull bench")
        source = metric_source_create(
            tree=tree, kind="http_json", name="Stub", config={"url": stub.url}
        )
        for number in range(args.metrics):
            metric_create(
                source=source,
                name=f"KPI {number}",
                query="$.value",
                options={"path": f"/kpi?n={number}"},
                granularity="hour",
                schedule_interval=timedelta(hours=1),
            )
        log(f"{args.metrics} metrics created")

        broker = shared_redis_url(db=14)
        env = worker_env(
            database_url=database_url_of(connection),
            broker_url=broker,
            METRICS_ALLOWED_HOSTS=stub.host_port,
        )
        workers = [
            Worker(env, threads=args.threads, queues="pulls", name=f"bench-{n}")
            for n in range(args.workers)
        ]
        try:
            for worker in workers:
                worker.start()
            claimed = pulling.metrics_claim_due()
            check(len(claimed) == args.metrics, f"claimed {len(claimed)} of {args.metrics}")

            started = time.perf_counter()
            send_pulls(broker, claimed)
            deadline = started + 600
            while PullRun.objects.exclude(status=PullStatus.RUNNING).count() < args.metrics:
                check(time.perf_counter() < deadline, "the pulls did not finish in 10 minutes")
                time.sleep(0.25)  # a lighter poll leaves the CPU to the workers
            elapsed = time.perf_counter() - started
        finally:
            for worker in workers:
                worker.stop()

        failed = PullRun.objects.filter(status=PullStatus.FAILED).values_list("error", flat=True)
        check(not failed, f"{len(failed)} pulls failed, e.g. {failed[:1]}")
        check(Observation.objects.count() == args.metrics, "not one observation per metric")
        durations = sorted(PullRun.objects.values_list("duration_ms", flat=True))
        pull_ms_median = durations[len(durations) // 2]
        check(stub.requests == args.metrics, f"{stub.requests} requests to the source")

    threads = args.workers * args.threads
    pulls_per_minute = args.metrics / elapsed * 60
    limit_per_minute = threads * 60 / LATENCY
    ratio = pulls_per_minute / limit_per_minute
    result = {
        "benchmark": "pull",
        "database": "postgresql",
        "broker": "redis",
        "metrics": args.metrics,
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "source_latency_s": LATENCY,
        "elapsed_s": round(elapsed, 2),
        "pull_ms_median": pull_ms_median,
        "pulls_per_minute": round(pulls_per_minute),
        "concurrency_limit_per_minute": round(limit_per_minute),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
    }
    print(json.dumps(result))
    if not result["meets_target"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
