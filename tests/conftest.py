from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import make_role_users, make_tree


@pytest.fixture
def users(db):
    return make_role_users()


@pytest.fixture
def tree(users):
    return make_tree(users)


@pytest.fixture
def client_for():
    """An API client logged in as the given user (None: anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture(autouse=True)
def notification_emails_run_at_once(monkeypatch):
    """Notification e-mails go through a Celery task (valuetree/tasks.py); the unit tests'
    in-memory broker has no worker, so the task runs in place when queued."""
    from valuetree import tasks

    monkeypatch.setattr(
        tasks.email_notification,
        "delay",
        lambda notification_id: tasks.email_notification.apply(args=[notification_id]),
    )


def pytest_collection_modifyitems(items):
    """Every transactional test (``transaction=True``, ``transactional_db``, a live
    server) restores the migrated rows it flushes (serialized rollback).

    The suite runs on several processes (pytest-xdist), each taking whole files, so a
    transactional test can run between ordinary ones: without this, its flush left the
    next transactional test's restore colliding with content types made again by
    post_migrate, and the ordinary tests after it without the migrated rows."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is None or "django_db_serialized_rollback" in names:
            continue
        marker = item.get_closest_marker("django_db")
        transaction = bool(
            marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
        )
        if transaction or "transactional_db" in names or "live_server" in names:
            names.append("django_db_serialized_rollback")
