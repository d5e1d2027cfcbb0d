"""The OpenAPI schema's view and the JSON answers of /api/ URLs that no view serves
(apart from valuetree.openapi, which the schema generator itself imports:
drf-spectacular's views import the generator)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView
from rest_framework.exceptions import NotFound
from rest_framework.request import Request


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema. ``?format=json`` or ``?format=yaml`` chooses the format
    (DRF's own ``?format=`` override is off: the tree export uses the name)."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        wanted = request.query_params.get("format")
        if wanted:
            renderers = [r for r in self.get_renderers() if r.format == wanted]
            if not renderers:
                if force:  # rendering the 404 below
                    return super().perform_content_negotiation(request, force)
                raise NotFound("Use ?format=json or ?format=yaml.")
            # The plain media type (application/json, application/yaml) of the format.
            renderer = renderers[-1]
            return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for a URL no route matches: JSON under /api/, the site's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: JSON under /api/ (the documented error shape), the site's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)
