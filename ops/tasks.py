"""Celery tasks of the operations app."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.db import DatabaseError

from ops.services import heartbeat_record

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, expires=60)
def worker_heartbeat() -> None:
    """Beat, every 30 s: a worker took a message from the broker and reached the database."""
    heartbeat_record(name="worker")


@worker_ready.connect
def _worker_started(**kwargs: object) -> None:
    """A worker that just started says so at once, not only at beat's next send."""
    try:
        heartbeat_record(name="worker")
    except DatabaseError as error:
        # Not fatal: beat's next heartbeat task records it once the database answers.
        logger.warning("the worker could not record its heartbeat: %s", type(error).__name__)
