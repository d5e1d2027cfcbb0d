"""Celery tasks of the operations app."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready

from ops.services import heartbeat_record


@shared_task(ignore_result=True, expires=60)
def worker_heartbeat() -> None:
    """Beat, every 30 s: a worker took a message from the broker and reached the database."""
    heartbeat_record(name="worker")


@worker_ready.connect
def _worker_started(**kwargs: object) -> None:
    """A worker that just started says so at once, not only at beat's next send."""
    heartbeat_record(name="worker")
