"""The Celery app: configured from Django settings (CELERY_*), tasks found in each app.

Run a worker with `celery -A config worker -Q pulls,verdicts,reports,celery --pool threads`
and one beat with `celery -A config beat`; `make run` starts both.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("valuetree")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
