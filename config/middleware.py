"""Middleware of the deployment: the limit on request bodies."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    """Refuse a request whose declared body is larger than `REQUEST_MAX_BYTES` with 413,
    before anything reads it.

    Django's `DATA_UPLOAD_MAX_MEMORY_SIZE` counts only non-file fields and is checked
    while parsing; this limit covers file uploads and raw bodies too. A body without a
    length (chunked) is bounded by DATA_UPLOAD_MAX_MEMORY_SIZE when it is read.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.REQUEST_MAX_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number."}, status=400)
        if limit and length > limit:
            return JsonResponse(
                {
                    "detail": f"The request body is {length:,} bytes; at most {limit:,} are "
                    "accepted (REQUEST_MAX_BYTES)."
                },
                status=413,
            )
        return self.get_response(request)


class HealthCheckMiddleware:
    """Answer GET /healthz and /readyz first of all (ops/views.py).

    Before SecurityMiddleware and CommonMiddleware, so a probe reaches them by any host
    name and over plain HTTP (a container's health check at http://localhost:8000),
    and no session, CSRF or authentication runs. Every other path goes on as usual.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info.rstrip("/")
        if path in ("/healthz", "/readyz") and request.method in ("GET", "HEAD"):
            from ops import views

            return views.healthz(request) if path == "/healthz" else views.readyz(request)
        return self.get_response(request)
