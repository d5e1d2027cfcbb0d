"""The API's pages (see valuetree/openapi.py for the conventions). A module of its own:
DRF's settings import it while drf-spectacular's generator is still being imported."""

from __future__ import annotations

from typing import Any

from rest_framework import pagination
from rest_framework.exceptions import NotFound


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's pages, with ``?page=`` a whole number ≥ 1 as documented: an empty or other
    value is a 404 "Invalid page", like a page past the end (DRF reads ``?page=`` as 1)."""

    def get_page_number(self, request: Any, paginator: Any) -> Any:
        raw = request.query_params.get(self.page_query_param)
        whole = raw is not None and raw.isascii() and raw.isdigit() and int(raw) >= 1
        if raw is not None and not whole and raw not in self.last_page_strings:
            raise NotFound("Invalid page: give a whole number from 1.")
        return super().get_page_number(request, paginator)
