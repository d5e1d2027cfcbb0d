"""The OpenAPI schema's view (apart from valuetree.openapi, which the schema generator
itself imports: drf-spectacular's views import the generator)."""

from __future__ import annotations

from typing import Any

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
