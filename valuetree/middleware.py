"""Requests whose URL holds a NUL character are refused before any view runs.

PostgreSQL cannot store or even compare text holding NUL (``\\u0000``): a slug or a
search term with one in the URL reached the database and answered 500. Bodies are
refused where they are parsed (``valuetree.parsers``, ``valuetree.documents``,
Django's form fields); this covers the path and the query string, for every page and
endpoint at once.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from valuetree.documents import NUL_MESSAGE


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = _nul_in_url(request)
        if where is not None:
            message = f"{where}: {NUL_MESSAGE}"
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _nul_in_url(request: HttpRequest) -> str | None:
    """ "path", or the name of the query parameter that holds a NUL, or None."""
    if "\x00" in request.path:
        return "path"
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return key.replace("\x00", "\\u0000")
    return None
