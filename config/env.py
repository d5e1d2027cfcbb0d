"""Typed readers for settings that come from the environment.

Each helper raises ImproperlyConfigured on a value it cannot use, so a typo in a
deployment fails at start-up with a message naming the variable.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def default_site_url(port: str | None) -> str:
    """The address links in e-mails point at when ``SITE_URL`` is not set: the one
    ``make run`` serves on. ``PORT`` is what scripts/run takes: a port (``8010``) or an
    address with one (``0.0.0.0:8010``, shown as 127.0.0.1 because 0.0.0.0 is not an
    address a mail reader can open). Without it, http://127.0.0.1:8000."""
    address = (port or "").strip() or "127.0.0.1:8000"
    if ":" not in address:
        address = f"127.0.0.1:{address}"
    host, _, number = address.rpartition(":")
    if not number.isdigit():
        raise ImproperlyConfigured(f"PORT must be a port or host:port, got {port!r}")
    if host in {"", "0.0.0.0", "::", "[::]"}:  # noqa: S104 — a listen address, not a bind
        host = "127.0.0.1"
    return f"http://{host}:{number}"
