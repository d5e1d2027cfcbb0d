"""Rate limits: DRF throttles per user, per anonymous address and per costly action, the
same limits for the browser's costly views, and the login lockout's answer (django-axes).

Rates live in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (from THROTTLE_* variables) and
are read at request time. Counters live in the default cache: Redis when REDIS_URL is
set, so every server process shares them; in-process memory otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle


class _RateFromSettings:
    """DRF reads rates once, at import; these read them on each request, so a rate is
    a setting like any other (and tests can change it)."""

    scope: str | None

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if self.scope not in rates:
            raise ImproperlyConfigured(f"No throttle rate for scope {self.scope!r}.")
        return rates[self.scope]  # None: no limit


class AnonThrottle(_RateFromSettings, AnonRateThrottle):
    """Anonymous requests, per client address (`THROTTLE_ANON`)."""


class UserThrottle(_RateFromSettings, UserRateThrottle):
    """Every API request of a user, per user (`THROTTLE_USER`)."""


class ScopedThrottle(_RateFromSettings, ScopedRateThrottle):
    """Costly writes, per user (per address when anonymous): views name their scope
    (`throttle_scope = "imports"`, `"pulls"`, `"evaluations"`, `"logins"`). Reads of
    the same view are not counted."""

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the throttles see it: REMOTE_ADDR, or with NUM_PROXIES
    trusted proxies in front, the address the outermost of them saw (X-Forwarded-For).
    django-axes uses it too (AXES_CLIENT_IP_CALLABLE), so both count the same client."""
    ident = AnonRateThrottle().get_ident(request)
    return ident or None


def too_many_requests(request: HttpRequest, wait: float | None, *, message: str) -> HttpResponse:
    """429 with Retry-After (whole seconds) and a page saying when to try again."""
    seconds = max(1, math.ceil(wait or 1))
    body = render_to_string(
        "ops/too_many_requests.html", {"message": message, "seconds": seconds}, request=request
    )
    response = HttpResponse(body, status=429)
    response["Retry-After"] = str(seconds)
    return response


def refused(request: HttpRequest, scope: str, *, reads: bool = False) -> HttpResponse | None:
    """The 429 answer when ``request`` is over the scoped rate ``scope`` (same counters
    as the API), None when it may go on. POSTs are counted; reads only with
    ``reads=True`` (a GET that does costly work, such as rendering a PDF)."""
    limiter = ScopedThrottle()
    view = SimpleNamespace(throttle_scope=scope)
    allowed = (
        ScopedRateThrottle.allow_request(limiter, request, view)
        if reads
        else limiter.allow_request(request, view)
    )
    if allowed:
        return None
    return too_many_requests(request, limiter.wait(), message="Too many requests of this kind.")


def throttle(scope: str) -> Callable:
    """Apply the scoped rate `scope` to a browser view's POSTs (same counters as the API)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return refused(request, scope) or view(request, *args, **kwargs)

        return wrapped

    return decorator


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """django-axes' answer once an account is locked out at this address: 429 with
    Retry-After (the cool-off time), never a hint whether the password was right."""
    cool_off = settings.AXES_COOLOFF_TIME
    return too_many_requests(
        request,
        cool_off.total_seconds(),
        message="Too many failed logins for this account. Try again later.",
    )
