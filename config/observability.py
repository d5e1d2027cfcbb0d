"""Logs and error reports: JSON log lines in production, Sentry when SENTRY_DSN is set.

Nothing here may carry a credential out: Sentry gets no request bodies, cookies or
authorization headers, no local variables of stack frames (a pull holds decrypted
source credentials in them), and every known secret of the settings is blanked
wherever it appears in an event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

FILTERED = "[Filtered]"
# The request headers an error report may keep; every other one is dropped.
SAFE_HEADERS = {"accept", "accept-language", "content-length", "content-type", "host", "user-agent"}
# Addresses whose last part is their credential (a signed token): a calendar feed and a
# report's one-click unsubscribe link (outcomes/urls.py).
CAPABILITY_PATHS = re.compile(r"(/reports/(?:calendar|unsubscribe)/)[^/?#]+")


JSON_FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": ["levelname", "name", "message"],
    "rename_fields": {"levelname": "level", "name": "logger"},
    "timestamp": True,
}


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """Django's LOGGING: one JSON object per line (`fmt="json"`) or plain text."""
    formatters = {
        "json": JSON_FORMATTER,
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt}},
        "root": {"handlers": ["console"], "level": level},
    }


def gunicorn_logging_config() -> dict[str, Any]:
    """Gunicorn's own logs (errors on stderr, the access log on stdout) as JSON lines."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": JSON_FORMATTER},
        "handlers": {
            "error_console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["error_console"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }


def _secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    # Short values would blank common words; every real secret is longer.
    values = sorted(
        {value for value in secrets if value and len(value) >= 8}, key=len, reverse=True
    )
    return re.compile("|".join(re.escape(value) for value in values)) if values else None


def _blank(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(FILTERED, value)
    if isinstance(value, dict):
        return {key: _blank(item, pattern) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_blank(item, pattern) for item in value]
    return value


def scrub_event(event: dict[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
    """An event fit to leave the service: request bodies, cookies, query values, the
    tokens of capability addresses and all but a few harmless headers removed; the user reduced to an id; any of
    `secrets` blanked wherever it appears (messages, breadcrumbs, exception values)."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        request.pop("env", None)
        headers = request.get("headers") or {}
        request["headers"] = {
            name: value for name, value in headers.items() if name.lower() in SAFE_HEADERS
        }
        if isinstance(request.get("url"), str):
            request["url"] = CAPABILITY_PATHS.sub(rf"\g<1>{FILTERED}", request["url"])
        if request.get("query_string"):
            request["query_string"] = re.sub(
                r"=([^&]*)", f"={FILTERED}", str(request["query_string"])
            )
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {"id": user["id"]} if "id" in user else {}
    pattern = _secret_pattern(secrets)
    return _blank(event, pattern) if pattern else event


def settings_secrets() -> list[str]:
    """Every secret the settings hold: the key, the credential keys, passwords of the
    database, the broker, the cache and the mail server."""
    from urllib.parse import urlsplit

    from django.conf import settings

    found = [settings.SECRET_KEY, *settings.CREDENTIALS_KEYS, settings.EMAIL_HOST_PASSWORD]
    found += [database.get("PASSWORD") or "" for database in settings.DATABASES.values()]
    for url in (settings.CELERY_BROKER_URL, getattr(settings, "CACHE_URL", "")):
        try:
            found.append(urlsplit(url or "").password or "")
        except ValueError:
            continue
    return [value for value in found if value]


def sentry_init(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> None:
    """Report errors of the web server and the Celery workers to Sentry (or GlitchTip…)."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        return scrub_event(event, settings_secrets())

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=traces_sample_rate,
        before_send=before_send,
        before_send_transaction=before_send,
    )
