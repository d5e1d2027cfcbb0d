"""The API's JSON parser: every JSON body goes through the safe document limits.

DRF's own parser decodes with the standard library, which recurses once per level of
nesting: a body nested 100,000 deep is a RecursionError (a 500). This one decodes with
orjson and then holds the body to ``valuetree.documents``' limits — nesting, number of
values, and no NUL character in any text or key (PostgreSQL cannot store it, in a
column or inside a JSON field) — so every endpoint refuses such a body with a 400
naming the path, before a serializer sees it.
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from valuetree import documents


class JSONParser(parsers.JSONParser):
    """``application/json`` bodies, decoded by ``documents.load_json``."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return documents.load_json(stream.read())
        except documents.ImportFailed as failed:
            raise ParseError(
                {
                    problem.path or "non_field_errors": [problem.message]
                    for problem in failed.problems
                }
            ) from None
