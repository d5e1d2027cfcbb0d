"""The API's conventions, in one place so that every endpoint (and every new one) keeps
them and the OpenAPI schema says what the server does (issue 14 §7).

- **Lists are paginated**: every endpoint that answers a list of rows answers DRF's
  page object ``{count, next, previous, results}`` (``?page=``), through
  ``PaginatedActions.paginated``; drf-spectacular documents a ``many=True`` response
  of a view with a ``pagination_class`` that way. Views that set
  ``pagination_class = None`` answer, and document, a bare array.
- **List filters apply to the list**: ``?stage=live`` filters ``GET /data-products/``
  and is ignored by ``/data-products/{slug}/links/``; a view names the other actions
  its filters apply to in ``filter_actions``.
- **Errors have one shape per kind**, documented on every operation by
  ``add_error_responses``: 400 ``ValidationErrors`` (field → messages, nested for
  nested input; ``non_field_errors`` for the whole input), 401/403/404 and any other
  error ``ErrorDetail`` (``{"detail": "..."}``).
- **Input is typed**: serializers derive from ``valuetree.strict`` (``Serializer``,
  ``ModelSerializer``), filter sets from ``valuetree.strict.FilterSet``: a value of
  the wrong JSON type, a boolean query value other than ``true``/``false`` or an empty
  filter value is a 400, as the schema promises.
- **Bodies are JSON** unless a view names its parsers (CSV, YAML, uploads).
- ``/api/schema/?format=json`` is JSON, ``?format=yaml`` (the default) YAML; a URL
  under ``/api/`` that no route serves is a JSON 404 (``valuetree.schema_view``).

A new endpoint inherits all of this by deriving from these classes; the fuzzer
(tests/test_api_fuzz.py) holds every operation of the schema to it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework.response import Response

ERROR_DETAIL = {
    "type": "object",
    "description": "Why the request was refused, in words a user can act on.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERRORS = {
    "type": "object",
    "description": "What is wrong with the input: each field (or a document's path) with "
    "its messages, nested objects and lists for nested input; `non_field_errors` for the "
    "input as a whole; `detail` when the body could not be read at all.",
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {}},
            {"type": "object"},
            {"type": "string"},
        ]
    },
}
ERROR_RESPONSES = {
    "400": ("ValidationErrors", "The input is invalid; nothing was changed."),
    "401": ("ErrorDetail", "No valid credentials were given."),
    "403": ("ErrorDetail", "Your role does not allow this."),
    "404": ("ErrorDetail", "No such object, or one you may not see."),
    "default": ("ErrorDetail", "Another error (405, 406, 409, 413, 415, 429)."),
}


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation documents 400, 401, 403, 404
    and a default error, each with its shape, unless it documents its own."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorDetail", ERROR_DETAIL)
    schemas.setdefault("ValidationErrors", VALIDATION_ERRORS)
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code, (component, description) in ERROR_RESPONSES.items():
                if code in responses:
                    continue
                responses[code] = {
                    "description": description,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{component}"}
                        }
                    },
                }
    return result


class AutoSchema(SpectacularAutoSchema):
    """Documents filter parameters only on the actions that apply them."""

    def get_filter_backends(self) -> list[Any]:
        action = getattr(self.view, "action", None)
        if action is not None and action not in filter_actions_of(self.view):
            return []
        return super().get_filter_backends()


def filter_actions_of(view: Any) -> frozenset[str]:
    return frozenset({"list", *getattr(view, "filter_actions", ())})


class PaginatedActions:
    """For viewsets: list filters only where they belong, and paginated extra lists.

    ``get_object()`` runs ``filter_queryset()``; without this, ``?stage=live`` on a
    product's sub-action would hide the product itself (a 404)."""

    filter_actions: tuple[str, ...] = ()

    def filter_queryset(self, queryset: Any) -> Any:
        if getattr(self, "action", None) not in filter_actions_of(self):
            return queryset
        return super().filter_queryset(queryset)

    def paginated(
        self, items: Any, serializer_class: type, *, context: dict[str, Any] | None = None
    ) -> Response:
        """A page of ``items`` (a queryset or a list), serialised, as the list answers."""
        page = self.paginate_queryset(items)
        data = serializer_class(page, many=True, context=context or {}).data
        return self.get_paginated_response(data)
