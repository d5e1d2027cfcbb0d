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
