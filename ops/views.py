"""Liveness and readiness, for load balancers, orchestrators and monitoring.

Served by `HealthCheckMiddleware` before host validation, HTTPS redirects and
authentication: a probe inside a container reaches them at http://localhost. They
answer JSON with no names, addresses or secrets.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from ops import selectors


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers requests. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every check passes, else 503; each check with its figures."""
    ready, checks = selectors.readiness()
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )
