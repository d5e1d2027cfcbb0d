from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """The last sign of life of a background process: `beat` (written by the scheduler
    itself on each tick) or `worker` (written by a task beat sends every 30 s)."""

    name = models.CharField(max_length=50, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
