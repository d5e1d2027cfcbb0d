from __future__ import annotations

from django.apps import AppConfig


class ValuetreeConfig(AppConfig):
    name = "valuetree"
    verbose_name = "Value trees"
