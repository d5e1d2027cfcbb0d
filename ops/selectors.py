"""Reads of the operations app: is the service ready to do its work?"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from kombu import Connection

from ops.models import Heartbeat


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        # The class only: a driver's message may quote the connection string.
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True}


def _broker() -> dict[str, Any]:
    """Connect to the Celery broker once, with a short timeout."""
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            connect_timeout=settings.READY_BROKER_TIMEOUT,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        ) as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
    except Exception as error:  # any transport's failure means "not ready"; reported by class
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True}


def _heartbeat(beats: dict[str, datetime], name: str, max_age: int, now: datetime) -> dict:
    at = beats.get(name)
    if at is None:
        return {"ok": False, "error": f"no heartbeat from {name} yet"}
    age = max(0, round((now - at).total_seconds()))
    return {"ok": age <= max_age, "age_seconds": age, "max_age_seconds": max_age}


def _late_metrics(now: datetime) -> dict[str, Any]:
    from outcomes.selectors import metrics_late

    max_late = settings.READY_MAX_LATE_PULL
    count, oldest = metrics_late(due_before=now - timedelta(seconds=max_late))
    return {
        "ok": count == 0,
        "late": count,
        "oldest_late_seconds": None if oldest is None else round((now - oldest).total_seconds()),
        "max_late_seconds": max_late,
    }


def readiness(*, now: datetime | None = None) -> tuple[bool, dict[str, Any]]:
    """Whether the whole service works, and each check: `(ready, {name: {"ok", ...}})`.

    Checks: the database answers; the broker accepts a connection; beat's heartbeat
    (written by beat on each tick, ops/beat.py) and a worker's (a task beat sends) are
    recent; no pulled metric is later than READY_MAX_LATE_PULL. Counts and ages only:
    no names, addresses or error texts, because anyone may read it.
    """
    now = now or timezone.now()
    checks: dict[str, Any] = {"database": _database(), "broker": _broker()}
    if checks["database"]["ok"]:
        beats = dict(Heartbeat.objects.values_list("name", "at"))
        checks["beat"] = _heartbeat(beats, "beat", settings.READY_BEAT_MAX_AGE, now)
        checks["worker"] = _heartbeat(beats, "worker", settings.READY_WORKER_MAX_AGE, now)
        checks["metrics"] = _late_metrics(now)
    return all(check["ok"] for check in checks.values()), checks
