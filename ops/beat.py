"""Celery beat's scheduler with a heartbeat: beat itself records each tick in the database.

Settings: `CELERY_BEAT_SCHEDULER = "ops.beat:HeartbeatScheduler"`. `/readyz` reads the
heartbeat; a beat that hangs or died stops it, whatever the workers do.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.beat import PersistentScheduler
from django.db import DatabaseError, close_old_connections

from ops.services import heartbeat_record

logger = logging.getLogger(__name__)

# Beat wakes at least this often (seconds), and records a heartbeat at most this often.
HEARTBEAT_EVERY = 15.0


class HeartbeatScheduler(PersistentScheduler):
    _last_beat = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        now = time.monotonic()
        if now - self._last_beat >= HEARTBEAT_EVERY:
            try:
                close_old_connections()
                heartbeat_record(name="beat")
                self._last_beat = now
            except DatabaseError as error:
                # The database may be back on the next tick; beat keeps sending meanwhile,
                # and /readyz shows the heartbeat growing old.
                logger.warning("beat could not record its heartbeat: %s", type(error).__name__)
        return min(super().tick(*args, **kwargs), HEARTBEAT_EVERY)
