"""Chaos: 1,000 pulls in flight, `kill -9` the worker, restart Redis — nothing lost, nothing doubled.

The test runs its own Redis on its own port with AOF (appendfsync always), so a
restart keeps every queued message. After the crash the unfinished pulls come back two
ways: the sweeper re-claims metrics whose claim grew old, and Redis gives back the
messages the dead worker had taken but not acknowledged (acks_late). Either way a pull
is idempotent, so every metric must end with exactly its own observations.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection

from outcomes import pulling
from outcomes.models import Metric, MetricSource, Observation, PullRun, PullStatus
from outcomes.services import metric_create, metric_source_create
from tests.stub_http import StubServer
from tests.workers import RedisServer, Worker, database_url_of, send_pulls, worker_env

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the worker shares the test database: PostgreSQL pass only",
    ),
]

METRICS = 1000
DAYS = 3


def expected_rows(number: int) -> list[tuple[datetime, float]]:
    return [(datetime(2026, 1, 1 + day, tzinfo=UTC), number * 10.0 + day) for day in range(DAYS)]


def answer(path: str, headers: dict) -> tuple[int, dict, dict]:
    number = int(parse_qs(urlsplit(path).query)["n"][0])
    return (
        200,
        {},
        {"rows": [{"day": p.date().isoformat(), "value": v} for p, v in expected_rows(number)]},
    )


def wait_for_dead_backends(timeout: float = 20) -> None:
    """Until the killed worker's database sessions are gone: a statement it sent just
    before the kill may still commit until then."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)
    pytest.fail("the killed worker's database sessions did not go away")


def test_no_observation_is_lost_or_doubled_when_the_worker_and_redis_die(tree, tmp_path, settings):
    redis = RedisServer(tmp_path)
    redis.start()
    stub = StubServer(latency=0.05)
    stub.route("/kpi", answer)
    worker = None
    try:
        with stub:
            settings.METRICS_ALLOWED_HOSTS = [stub.host_port]
            source = metric_source_create(
                tree=tree, kind="http_json", name="Stub", config={"url": stub.url}
            )
            numbers = {}
            for number in range(METRICS):
                metric = metric_create(
                    source=source,
                    name=f"KPI {number}",
                    query="$.rows[*].value",
                    options={"path": f"/kpi?n={number}", "period_path": "$.rows[*].day"},
                    schedule_interval=timedelta(hours=1),
                )
                numbers[metric.pk] = number
            claimed = pulling.metrics_claim_due()
            assert sorted(claimed) == sorted(numbers)

            env = worker_env(
                database_url=database_url_of(connection),
                broker_url=redis.url,
                METRICS_ALLOWED_HOSTS=stub.host_port,
                CELERY_VISIBILITY_TIMEOUT="10",
            )
            worker = Worker(env, threads=8, queues="pulls", name="chaos")
            worker.start()
            send_pulls(redis.url, claimed)

            # Let a good part run, then pull the plug on everything at once.
            deadline = time.monotonic() + 120
            while PullRun.objects.filter(status=PullStatus.SUCCEEDED).count() < 150:
                assert time.monotonic() < deadline, (
                    "no progress before the crash\n" + worker.log_tail()
                )
                time.sleep(0.05)
            worker.kill()
            wait_for_dead_backends()
            done_at_crash = PullRun.objects.filter(status=PullStatus.SUCCEEDED).count()
            in_flight_at_crash = PullRun.objects.filter(status=PullStatus.RUNNING).count()
            redis.restart()
            assert done_at_crash < METRICS, "the crash came too late to test anything"

            worker = Worker(env, threads=8, queues="pulls", name="chaos-2")
            worker.start()
            # What beat's sweeper does every minute, with a short fuse for the test.
            settings.PULL_STUCK_AFTER = 5
            deadline = time.monotonic() + 240
            while (
                Metric.objects.filter(claimed_at__isnull=False).exists()
                or PullRun.objects.filter(status=PullStatus.RUNNING).exists()
            ):
                assert time.monotonic() < deadline, (
                    f"{Metric.objects.filter(claimed_at__isnull=False).count()} metrics never "
                    "finished\n" + worker.log_tail()
                )
                requeued = pulling.metrics_sweep_stuck()
                if requeued:
                    send_pulls(redis.url, requeued, trigger="sweeper")
                time.sleep(1)
            worker.stop()
            worker = None
    finally:
        if worker is not None:
            worker.kill()
        redis.kill()

    # Row by row: each metric has exactly its own observations, no more, no fewer.
    stored: dict[int, list[tuple[datetime, float]]] = {pk: [] for pk in numbers}
    for metric_id, period, value in Observation.objects.order_by(
        "metric_id", "period_start"
    ).values_list("metric_id", "period_start", "value"):
        stored[metric_id].append((period, value))
    wrong = {numbers[pk]: rows for pk, rows in stored.items() if rows != expected_rows(numbers[pk])}
    assert wrong == {}
    assert Observation.objects.count() == METRICS * DAYS
    # Every metric got a successful pull; the pulls cut off by the crash are on record.
    succeeded = set(
        PullRun.objects.filter(status=PullStatus.SUCCEEDED).values_list("metric_id", flat=True)
    )
    assert succeeded == set(numbers)
    abandoned = PullRun.objects.filter(status=PullStatus.ABANDONED).count()
    assert abandoned == in_flight_at_crash
    assert MetricSource.objects.count() == 1
