"""GET /healthz (liveness) and /readyz (database, broker, beat, worker, late pulls)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from ops import tasks
from ops.beat import HeartbeatScheduler
from ops.models import Heartbeat
from ops.services import heartbeat_record
from outcomes.models import Metric
from tests.factories import make_metric
from tests.workers import SHARED_REDIS, free_port, redis_ready


@pytest.fixture
def alive(db):
    heartbeat_record(name="beat")
    heartbeat_record(name="worker")


def test_healthz_answers_any_host_over_http_without_touching_the_database(client, settings):
    # No `db` fixture: a query would raise.
    settings.ALLOWED_HOSTS = ["valuetree.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    answer = client.get("/healthz", HTTP_HOST="localhost:8000")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert client.get("/healthz/", HTTP_HOST="10.0.0.7").status_code == 200


def test_readyz_is_ready_when_every_part_works(client, alive, settings):
    # The machine's Redis: only a connection, nothing written.
    settings.CELERY_BROKER_URL = f"{SHARED_REDIS}/0"
    assert redis_ready(settings.CELERY_BROKER_URL), "Redis at 127.0.0.1:6379 is down"
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "beat", "worker", "metrics"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["metrics"]["late"] == 0


def test_readyz_answers_503_without_heartbeats(client, db):
    answer = client.get("/readyz")
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["beat"] == {"ok": False, "error": "no heartbeat from beat yet"}
    assert checks["worker"]["ok"] is False
    assert checks["database"]["ok"] is True


def test_readyz_answers_503_when_beat_stopped(client, alive, settings):
    Heartbeat.objects.filter(name="beat").update(at=timezone.now() - timedelta(seconds=300))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    beat = answer.json()["checks"]["beat"]
    assert beat["ok"] is False
    assert beat["age_seconds"] >= 300
    assert beat["max_age_seconds"] == settings.READY_BEAT_MAX_AGE


def test_readyz_names_no_broker_address_or_password_when_the_broker_is_down(
    client, alive, settings
):
    settings.CELERY_BROKER_URL = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["broker"]["ok"] is False
    assert "hunter2" not in answer.content.decode()
    assert "127.0.0.1" not in answer.content.decode()


def test_readyz_counts_late_pulls_without_naming_them(client, alive, tree):
    now = timezone.now()
    pulled = {
        "kind": "http_json",
        "source_name": "Feed",
        "config": {"url": "https://example.com/x"},
        "query": "$.value",
        "schedule_interval": timedelta(hours=1),
    }
    late = make_metric(tree, name="Secret revenue", **pulled)
    on_time = make_metric(tree, name="On time", **pulled)
    stuck = make_metric(tree, name="Stuck", **pulled)
    pushed = make_metric(tree, name="Pushed")
    Metric.objects.filter(pk=late.pk).update(next_pull_at=now - timedelta(hours=2))
    Metric.objects.filter(pk=on_time.pk).update(next_pull_at=now - timedelta(seconds=20))
    Metric.objects.filter(pk=stuck.pk).update(claimed_at=now - timedelta(hours=1))
    Metric.objects.filter(pk=pushed.pk).update(next_pull_at=now - timedelta(days=9))

    answer = client.get("/readyz")
    assert answer.status_code == 503
    metrics = answer.json()["checks"]["metrics"]
    assert metrics["ok"] is False
    assert metrics["late"] == 2
    assert 7190 <= metrics["oldest_late_seconds"] <= 7300
    assert "Secret revenue" not in answer.content.decode()


def test_beat_records_its_heartbeat_on_each_tick(db, tmp_path, monkeypatch):
    # Beat closes stale connections first; here that would be the test's transaction.
    monkeypatch.setattr("ops.beat.close_old_connections", lambda: None)
    scheduler = HeartbeatScheduler(app=celery_app, schedule_filename=str(tmp_path / "beat"))
    try:
        next_tick = scheduler.tick()
    finally:
        scheduler.close()
    beat = Heartbeat.objects.get(name="beat")
    assert timezone.now() - beat.at < timedelta(seconds=60)
    assert next_tick <= 15


def test_worker_heartbeat_task_records_it(db):
    tasks.worker_heartbeat()
    assert Heartbeat.objects.filter(name="worker").exists()


def test_a_starting_worker_records_its_heartbeat_at_once(db):
    tasks._worker_started()
    assert Heartbeat.objects.filter(name="worker").exists()
