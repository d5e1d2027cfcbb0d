from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Running the service: liveness and readiness, the heartbeats of beat and workers."""

    name = "ops"
    verbose_name = "Operations"
