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
from jsonpath_ng import jsonpath as base
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext import filter as ext_filter
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


# A JSONPath may only select parts of the document, never compute new values: an API
# that echoes the request would otherwise let sub(), split(), str(), len() or arithmetic
# turn a secret header into text that redaction does not recognise, and an ordering or
# regex filter (<, >, =~) would let pulls guess it one character at a time.
_SELECTING = (
    base.Root,
    base.This,
    base.Fields,
    base.Index,
    base.Slice,
    base.Wildcard,
    base.Parent,
)
_COMBINING = (base.Child, base.Where, base.Descendants, base._Union, base._Intersect)
_FILTER_OPERATORS = frozenset({"==", "=", "!=", None, "!"})  # None: "has this field"


def _refuse_transforms(node: object) -> None:
    """ValidationError unless `node` (a parsed JSONPath) only selects: fields, indices,
    slices, wildcards, descendants, unions, `where` and equality filters."""
    kind = type(node)
    if kind in _SELECTING:
        return
    if kind in _COMBINING or kind is base.WhereNot:
        _refuse_transforms(node.left)
        _refuse_transforms(node.right)
        return
    if kind is ext_filter.Filter:
        for expression in node.expressions:
            _refuse_transforms(expression)
        return
    if kind in (ext_filter.And, ext_filter.Or):
        for operand in node.operands:
            _refuse_transforms(operand)
        return
    if kind is ext_filter.Expression and node.op in _FILTER_OPERATORS:
        _refuse_transforms(node.target)
        if isinstance(node.value, base.JSONPath):
            _refuse_transforms(node.value)
        return
    raise ValidationError(
        f"This JSONPath uses {_name(node)}, which is not accepted: a path may only pick "
        "values (fields, [n], [*], .., and filters that compare with == or !=)."
    )


def _name(node: object) -> str:
    if isinstance(node, ext_filter.Expression):
        return f"the comparison {node.op}"
    return {
        "Sub": "sub()",
        "Split": "split()",
        "Str": "str()",
        "Len": "`len`",
        "Keys": "`keys`",
        "Path": "`path`",
        "SortedThis": "sorting",
        "Operation": "arithmetic",
    }.get(type(node).__name__, type(node).__name__)


@functools.lru_cache(maxsize=4096)
def _parsed(path: str) -> base.JSONPath:
    # Parsing builds a PLY parser each time (milliseconds); a metric's path never changes.
    parsed = parse_jsonpath(path)
    _refuse_transforms(parsed)
    return parsed


def _compile(path: object) -> base.JSONPath:
    if not isinstance(path, str) or not path.strip():
        raise ValidationError("Enter a JSONPath, e.g. $.data.value.")
    try:
        return _parsed(path)
    except JSONPathError as e:
        raise ValidationError(f"This is not a valid JSONPath: {e}") from e


def _compile_for_pull(path: str, where: str) -> base.JSONPath:
    # A path stored before a rule tightened fails the pull with the rule, not a crash.
    try:
        return _compile(path)
    except ValidationError as e:
        raise PullError(f"{where}: {' '.join(e.messages)}") from None


def _url(address: str, path: str) -> str:
    if not path:
        return address
    if path.startswith("?"):
        return address + path
    # Always a "/" between the two: a path can then never change the host
    # (base "https://api.example.com" + "@elsewhere.example" would).
    return address.rstrip("/") + "/" + path.lstrip("/")


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

    def origin(self, config: dict[str, Any]) -> tuple[str, str, int] | None:
        return http.source_origin(config)

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
        values = [m.value for m in _compile_for_pull(request.query, "The query").find(document)]
        if not values:
            raise PullError(f"The JSONPath {request.query} found nothing in the response.")
        values = [_scalar(v, request.query, "a value") for v in values]

        period_path = request.options.get("period_path")
        if period_path:
            periods = [
                m.value
                for m in _compile_for_pull(period_path, "options.period_path").find(document)
            ]
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
