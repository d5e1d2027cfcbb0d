"""Celery tasks of the operations app."""

from __future__ import annotations

from celery import shared_task

from ops.services import heartbeat_record


@shared_task(ignore_result=True, expires=60)
def worker_heartbeat() -> None:
    """Beat, every 30 s: a worker took a message from the broker and reached the database."""
    heartbeat_record(name="worker")
