"""One transport per channel (after healthchecks' hc/api/transports.py).

``send()`` returns nothing or raises ``TransportError(message, permanent)``. Transient
errors (SMTP 4xx, a dropped connection, timeouts, HTTP 5xx, 429 with its Retry-After)
are retried by the delivery task with backoff; permanent ones (SMTP 5xx, HTTP 4xx,
a refused address) are not. Messages never quote a webhook's URL: it is the secret.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import orjson
from django.utils import timezone

from outcomes.connectors.base import PullError, TransientPullError
from outcomes.connectors.http import Response, http_post
from outcomes.credentials import redact
from valuetree.mail import EmailTransport, TransportError

__all__ = ["EmailTransport", "SlackTransport", "TeamsTransport", "TransportError"]

# Teams Workflows refuse posts above about 28 KB (PostHog's figure).
TEAMS_MAX_BYTES = 28 * 1024
WEBHOOK_TIMEOUT = 10.0


def _retry_after(value: str | None) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


# --- Webhooks --------------------------------------------------------------------------


def _post(url: str, payload: dict[str, Any], *, service: str) -> Response:
    try:
        return http_post(url, orjson.dumps(payload), timeout=WEBHOOK_TIMEOUT)
    except TransientPullError as e:
        raise TransportError(f"{service}: {redact(str(e), [url])}") from None
    except PullError as e:
        raise TransportError(f"{service}: {redact(str(e), [url])}", permanent=True) from None


def _judge(response: Response, *, url: str, service: str, ok: tuple[int, ...]) -> None:
    status = response.status
    if status in ok:
        return
    # The answer may name the address it was sent to ("no such hook: <url>"): its secret.
    snippet = redact(response.body[:200].decode(errors="replace"), [url])
    if status == 429 or status >= 500:
        raise TransportError(
            f"{service} answered HTTP {status}: {snippet}",
            retry_after=_retry_after(response.headers.get("Retry-After")),
        )
    # 400 (a payload it refuses), 403/404/410 (the webhook was removed): retrying would
    # only repeat the answer.
    raise TransportError(f"{service} answered HTTP {status}: {snippet}", permanent=True)


class SlackTransport:
    """An incoming webhook: 200 "ok" is sent (https://api.slack.com/messaging/webhooks)."""

    def send(self, url: str, payload: dict[str, Any]) -> None:
        _judge(_post(url, payload, service="Slack"), url=url, service="Slack", ok=(200,))


class TeamsTransport:
    """A Teams Workflows webhook ("Post to a channel when a webhook request is
    received"): 200 or 202 is sent."""

    def send(self, url: str, payload: dict[str, Any]) -> None:
        size = len(orjson.dumps(payload))
        if size > TEAMS_MAX_BYTES:
            raise TransportError(
                f"The Teams card is {size} bytes, over the {TEAMS_MAX_BYTES} Teams accepts.",
                permanent=True,
            )
        _judge(_post(url, payload, service="Teams"), url=url, service="Teams", ok=(200, 202))
