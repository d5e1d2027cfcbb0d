"""Writes of the operations app: heartbeats."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from ops.models import Heartbeat


def heartbeat_record(*, name: str, at: datetime | None = None) -> datetime:
    """Record that the process `name` (`beat`, `worker`) is alive at `at` (default now)."""
    at = at or timezone.now()
    Heartbeat.objects.update_or_create(name=name, defaults={"at": at})
    return at
