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


# Fixtures through which a test reaches the database (pytest-django's, and the
# session's test database itself for tests that hand it to a subprocess).
DATABASE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "django_db_setup",
        "live_server",
        "_django_db_helper",
    }
)


def pytest_addoption(parser):
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        default=False,
        help="Run only the tests that reach the database (a django_db mark or a database "
        "fixture): the second database's pass of scripts/test, where a test that cannot "
        "touch the database would repeat the first pass's result exactly.",
    )


def reaches_the_database(item) -> bool:
    """Whether a collected test can reach the database: a ``django_db`` mark or one of
    :data:`DATABASE_FIXTURES` among its fixtures (pytest-django refuses any other test a
    connection, so everything else runs the same on every database)."""
    names = set(getattr(item, "fixturenames", ()) or ())
    return item.get_closest_marker("django_db") is not None or bool(names & DATABASE_FIXTURES)


def pytest_collection_modifyitems(config, items):
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
    if config.getoption("database_tests_only"):
        kept = [item for item in items if reaches_the_database(item)]
        deselected = [item for item in items if not reaches_the_database(item)]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = kept
