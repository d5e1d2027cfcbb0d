"""HTTP JSON: GET a JSON document and pick the value(s), and their periods, by JSONPath.

Source:  config {"url": base address, "headers": {name: value}} (not secret),
         credentials {"headers": {name: value}} (secret; they win over same-named ones).
Metric:  query = JSONPath of the value(s);
         options {"path": appended to the base address, may carry a query string,
                  "period_path": JSONPath of the periods, one per value}.
"""

from __future__ import annotations

import functools
from typing import Any

from django.core.exceptions import ValidationError
from jsonpath_ng import JSONPath
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext import parse as parse_jsonpath

from outcomes.connectors import http
from outcomes.connectors.base import (
    PERIOD_UNIT_OPTION,
    FetchRequest,
    PullError,
    RawPoint,
    period_unit_problem,
)

_OPTIONS = ("path", "period_path", PERIOD_UNIT_OPTION)


@functools.lru_cache(maxsize=4096)
def _parsed(path: str) -> JSONPath:
    # Parsing builds a PLY parser each time (milliseconds); a metric's path never changes.
    return parse_jsonpath(path)


def _compile(path: object) -> JSONPath:
    if not isinstance(path, str) or not path.strip():
        raise ValidationError("Enter a JSONPath, e.g. $.data.value.")
    try:
        return _parsed(path)
    except JSONPathError as e:
        raise ValidationError(f"This is not a valid JSONPath: {e}") from e


def _url(base: str, path: str) -> str:
    if not path:
        return base
    if path.startswith("?"):
        return base + path
    # Always a "/" between the two: a path can then never change the host
    # (base "https://api.example.com" + "@elsewhere.example" would).
    return base.rstrip("/") + "/" + path.lstrip("/")


def _scalar(value: Any, query: str, what: str) -> Any:
    # Shared validation would refuse these too, but only here can we say which JSONPath
    # to change.
    if isinstance(value, dict):
        raise PullError(
            f"The JSONPath {query} found an object where {what} was expected; point it at "
            f"a field inside (e.g. {query}.value)."
        )
    if isinstance(value, list):
        raise PullError(
            f"The JSONPath {query} found a list where {what} was expected; use {query}[*] "
            "to take its items."
        )
    return value


class HttpJsonConnector:
    kind = "http_json"
    uses_window = False  # the URL is fixed: it answers with what it has
    samples_periods = False

    def validate_source(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        http.validate_http_source(config, credentials)

    def validate_metric(self, query: str, options: dict[str, Any]) -> None:
        errors: dict[str, list[str]] = {}
        try:
            _compile(query)
        except ValidationError as e:
            errors["query"] = e.messages
        for name in options:
            if name not in _OPTIONS:
                errors[f"options.{name}"] = [
                    "Unknown option: the options are path, period_path and period_unit."
                ]
        path = options.get("path", "")
        if not isinstance(path, str):
            errors["options.path"] = ["The path must be text, e.g. /stats?team=a."]
        if problem := period_unit_problem(options):
            errors[f"options.{PERIOD_UNIT_OPTION}"] = [problem]
        if "period_path" in options:
            try:
                _compile(options["period_path"])
            except ValidationError as e:
                errors["options.period_path"] = e.messages
        if errors:
            raise ValidationError(errors)

    def fetch(self, request: FetchRequest) -> list[RawPoint]:
        url = _url(request.config["url"], request.options.get("path") or "")
        document = http.get_json(
            url,
            headers=http.source_headers(request.config, request.credentials),
            timeout=request.timeout,
            max_bytes=request.max_bytes,
        )
        values = [m.value for m in _compile(request.query).find(document)]
        if not values:
            raise PullError(f"The JSONPath {request.query} found nothing in the response.")
        values = [_scalar(v, request.query, "a value") for v in values]

        period_path = request.options.get("period_path")
        if period_path:
            periods = [m.value for m in _compile(period_path).find(document)]
            if len(periods) != len(values):
                raise PullError(
                    f"The JSONPath {request.query} found {len(values)} values but "
                    f"options.period_path {period_path} found {len(periods)} periods; "
                    "they must pair up one to one."
                )
            periods = [_scalar(p, period_path, "a period") for p in periods]
            return list(zip(periods, values, strict=True))

        if len(values) > 1:
            raise PullError(
                f"The JSONPath {request.query} found {len(values)} values; narrow it to one, "
                "or set options.period_path to the JSONPath of their periods."
            )
        return [(None, values[0])]


CONNECTOR = HttpJsonConnector()
