"""Fixtures shared by the outcomes tests."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.fixture
def helix_demo(db, tmp_path, settings, django_capture_on_commit_callbacks):
    """`make run`'s demo organisation, loaded as `load_demo` and `load_demo_metrics`
    load it (the warehouse source reads a SQLite file under ``tmp_path``)."""
    settings.METRICS_SQLITE_DIRS = [str(tmp_path)]
    call_command("load_demo", stdout=None)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo_metrics")
