"""Errors as Sentry sees them: run with SENTRY_DSN pointing at a local capture server.

`python -m tests.ops.sentry_probe` makes one API request that fails with a 500 (its
request carries a token, a cookie, a secret header and a password in the body; the
error's message quotes the SECRET_KEY) and runs one Celery task that fails the same
way, then flushes the Sentry client. Prints the statuses.
"""

from __future__ import annotations

import os
from unittest import mock

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["ALLOWED_HOSTS"] = "testserver"

import django  # noqa: E402

django.setup()

import sentry_sdk  # noqa: E402
from celery import shared_task  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

# The secrets come from the environment, so that no line of this file (which Sentry
# quotes as source context) holds one.
SECRET = os.environ["PROBE_SECRET"]


def failing_list(*args, **kwargs):
    credentials = {"password": f"{SECRET}-local-variable"}  # noqa: F841 (must not be sent)
    raise RuntimeError(f"the view failed near {settings.SECRET_KEY}")


@shared_task
def failing_task(metric_id: int) -> None:
    token = f"{SECRET}-task-local"  # noqa: F841 (must not be sent)
    raise RuntimeError(f"the task failed near {settings.SECRET_KEY}")


def main() -> None:
    client = APIClient()
    client.raise_request_exception = False
    client.force_authenticate(get_user_model()(pk=1, username="probe"))
    client.cookies["sessionid"] = f"{SECRET}-cookie"
    with mock.patch("valuetree.apis.TreeViewSet.list", failing_list):
        answer = client.post(
            f"/api/trees/?token={SECRET}-query",
            {"password": f"{SECRET}-body"},
            format="json",
            HTTP_AUTHORIZATION=f"Token {SECRET}-header",
            HTTP_X_API_KEY=f"{SECRET}-api-key",
        )
        answer = client.get(
            f"/api/trees/?token={SECRET}-query",
            HTTP_AUTHORIZATION=f"Token {SECRET}-header",
            HTTP_X_API_KEY=f"{SECRET}-api-key",
        )
    result = failing_task.apply(args=[7])
    sentry_sdk.flush(timeout=10)
    print(answer.status_code, result.state)


if __name__ == "__main__":
    main()
