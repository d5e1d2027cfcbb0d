"""The pull path end to end: a real Redis, a real Celery worker, a local HTTP source.

The worker is a separate process on the test database, so these tests commit
(transaction=True) and run in the PostgreSQL pass, which CI always runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection

from outcomes import pulling
from outcomes.models import Metric, Observation, PullRun, PullStatus
from tests.factories import make_metric
from tests.stub_http import StubServer
from tests.workers import (
    database_url_of,
    running_worker,
    send_pulls,
    send_task,
    shared_redis_url,
    worker_env,
)

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the worker shares the test database: PostgreSQL pass only",
    ),
]


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, worker=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tail = worker.log_tail() if worker else ""
    pytest.fail(f"Timed out waiting for {what}.\n{tail}")


@pytest.fixture
def stub():
    with StubServer() as server:
        yield server


@pytest.fixture
def broker():
    return shared_redis_url(db=13)


@pytest.fixture
def env(broker, stub):
    return worker_env(
        database_url=database_url_of(connection),
        broker_url=broker,
        METRICS_ALLOWED_HOSTS=stub.host_port,
    )


def http_metric(tree, stub, path: str, **fields) -> Metric:
    return make_metric(
        tree,
        kind="http_json",
        source_name="Stub",
        config={"url": stub.url},
        query=fields.pop("query", "$.rows[*].value"),
        options={"path": path, "period_path": "$.rows[*].day"},
        schedule_interval=timedelta(hours=1),
        **fields,
    )


def series(*values: float) -> dict:
    return {"rows": [{"day": f"2026-01-0{i + 1}", "value": v} for i, v in enumerate(values)]}


def test_beat_fan_out_reaches_the_worker_and_stores_or_refuses(tree, stub, broker, env, settings):
    settings.METRICS_ALLOWED_HOSTS = [stub.host_port]
    stub.route("/good", (200, {}, series(1, 2, 3)))
    stub.route("/missing", (404, {}, {"error": "no such KPI"}))
    stub.route("/nan", (200, {}, '{"rows": [{"day": "2026-01-01", "value": "NaN"}]}'))
    good = http_metric(tree, stub, "/good", name="Good")
    missing = http_metric(tree, stub, "/missing", name="Missing")
    nan = http_metric(tree, stub, "/nan", name="NaN")

    with running_worker(env) as worker:
        # What beat sends every minute: the worker claims and fans out by itself.
        send_task(broker, "outcomes.tasks.pull_due_metrics", queue="celery")
        wait_for(
            lambda: (
                PullRun.objects.exclude(status=PullStatus.RUNNING).count() == 3
                and not Metric.objects.filter(claimed_at__isnull=False).exists()
            ),
            timeout=60,
            what="three finished pulls",
            worker=worker,
        )

    rows = Observation.objects.filter(metric=good).order_by("period_start")
    assert [(o.period_start.date().isoformat(), o.value) for o in rows] == [
        ("2026-01-01", 1.0),
        ("2026-01-02", 2.0),
        ("2026-01-03", 3.0),
    ]
    assert not Observation.objects.filter(metric__in=[missing, nan]).exists()
    runs = {run.metric_id: run for run in PullRun.objects.all()}
    assert runs[good.pk].status == PullStatus.SUCCEEDED
    assert runs[missing.pk].status == PullStatus.FAILED
    assert "HTTP 404" in runs[missing.pk].error
    assert "the value ('NaN') is not a finite number" in runs[nan.pk].error
    # Each was claimed and moved on to its next hourly slot.
    for metric in Metric.objects.all():
        assert metric.next_pull_at > metric.created_at
        assert metric.next_pull_at.minute == metric.next_pull_at.second == 0


def test_a_transient_failure_is_retried_by_the_worker(tree, stub, broker, env, settings):
    settings.METRICS_ALLOWED_HOSTS = [stub.host_port]
    answers = iter([(503, {}, "busy"), (200, {}, series(5))])
    stub.route("/flaky", lambda path, headers: next(answers))
    flaky = http_metric(tree, stub, "/flaky", name="Flaky")
    assert pulling.metric_claim(metric=flaky)

    with running_worker(env) as worker:
        send_pulls(broker, [flaky.pk])
        wait_for(
            lambda: PullRun.objects.filter(status=PullStatus.SUCCEEDED).exists(),
            timeout=60,
            what="the retry to succeed",
            worker=worker,
        )

    runs = list(PullRun.objects.order_by("started_at").values_list("attempt", "status", "error"))
    assert runs[0][:2] == (1, PullStatus.FAILED)
    assert "HTTP 503" in runs[0][2] and runs[0][2].endswith("It will be tried again.")
    assert runs[1] == (2, PullStatus.SUCCEEDED, "")
    assert list(flaky.observations.values_list("value", flat=True)) == [5.0]
    flaky.refresh_from_db()
    assert flaky.claimed_at is None
