"""Prometheus: a PromQL query through the HTTP API, answered by exactly one series.

Source:  config {"url": Prometheus's base address, "headers": {name: value}},
         credentials {"headers": {name: value}} (secret), as for http_json.
Metric:  query = PromQL;
         options {"mode": "instant" (the current value, the default) or "range" (one
                  value per step over the window), "step": seconds between range values
                  (default: the metric's granularity)}.

Values are returned as Prometheus sends them, strings such as "0.97": the shared
validation turns them into numbers. "NaN", "+Inf" and "-Inf" samples of a range answer
are skipped and counted on the PullRun (``samples_skipped``); an instant answer that
is one of them fails the pull with a message naming the sample's time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import ValidationError

from outcomes.connectors import http
from outcomes.connectors.base import FetchRequest, PullError, RawPoint, describe_raw

_OPTIONS = ("mode", "step")
_MODES = ("instant", "range")
# Prometheus answers these with a JSON body that says what is wrong with the query.
_QUERY_ERROR_STATUSES = (400, 422)
# The errorType values of Prometheus's HTTP API; any other text is not repeated to readers.
_ERROR_TYPES = frozenset(
    {"bad_data", "execution", "timeout", "canceled", "internal", "unavailable", "not_found"}
)


_HISTOGRAM_MESSAGE = (
    "The series holds no plain value (a native histogram?); reduce it to a number, e.g. "
    "with histogram_quantile(0.9, ...)."
)


def _unix(moment: datetime) -> str:
    return f"{moment.timestamp():.3f}".rstrip("0").rstrip(".")


def _unexpected(what: str, quoted: str = "") -> PullError:
    """`quoted` (from the answer) goes only into the editors' text."""
    template = (
        "Prometheus gave an answer of an unexpected shape ({what}); check that the address "
        "is Prometheus's (or a compatible API's) base address."
    )
    return PullError(
        template.format(what=what),
        full=template.format(what=f"{what}: {quoted}") if quoted else None,
    )


def _one_series(result: Any, query: str) -> dict[str, Any]:
    if not isinstance(result, list):
        raise _unexpected("the result is not a list of series")
    if not result:
        raise PullError(
            "The query returned no series; check the metric name and labels, or widen "
            "the time window."
        )
    if len(result) > 1:
        raise PullError(
            f"The query returned {len(result)} series but a metric needs exactly one; "
            f"aggregate them, e.g. sum({query})."
        )
    series = result[0]
    if not isinstance(series, dict):
        raise _unexpected("a series is not an object")
    return series


def _sample(sample: Any) -> tuple[Any, Any]:
    if not (isinstance(sample, list) and len(sample) == 2):
        raise _unexpected("a sample is not [timestamp, value]")
    return sample[0], sample[1]


def _single_value(sample: Any) -> Any:
    """The value of an instant answer's one sample. NaN or ±Inf (a stale series, a
    division by zero) is a failed pull naming the sample's time: there is no value to
    store, and unlike a range answer there is no other sample to keep."""
    moment, value = _sample(sample)
    if isinstance(value, str) and value.strip() in ("NaN", "+Inf", "-Inf", "Inf"):
        try:
            when = datetime.fromtimestamp(float(moment), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        except (TypeError, ValueError, OverflowError, OSError):
            # Not a time: described, not quoted (readers see this message).
            when = f"a time that is {describe_raw(moment)}"
        raise PullError(
            f"Prometheus answered {value.strip()} for the sample at {when} (a stale series "
            "or a division by zero): there is no number to store. Guard the query, e.g. "
            "with `> 0` or `or vector(0)`, or use a range query, whose NaN steps are skipped."
        )
    return value


class PrometheusConnector:
    kind = "prometheus"
    uses_window = True
    samples_periods = True

    def validate_source(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        http.validate_http_source(config, credentials)

    def origin(self, config: dict[str, Any]) -> tuple[str, str, int] | None:
        return http.source_origin(config)

    def validate_metric(self, query: str, options: dict[str, Any]) -> None:
        errors: dict[str, list[str]] = {}
        if not isinstance(query, str) or not query.strip():
            errors["query"] = ["Enter a PromQL query, e.g. sum(rate(http_requests_total[5m]))."]
        for name in options:
            if name not in _OPTIONS:
                errors[f"options.{name}"] = ["Unknown option: the options are mode and step."]
        if options.get("mode", "instant") not in _MODES:
            errors["options.mode"] = ['The mode is "instant" or "range".']
        step = options.get("step")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step <= 0):
            errors["options.step"] = ["The step is a whole number of seconds above 0."]
        if errors:
            raise ValidationError(errors)

    def fetch(self, request: FetchRequest) -> list[RawPoint]:
        base = request.config["url"].rstrip("/")
        if request.options.get("mode", "instant") == "range":
            step = request.options.get("step") or request.step_seconds
            parameters = {
                "query": request.query,
                "start": _unix(request.since),
                "end": _unix(request.until),
                "step": str(step),
            }
            data = self._get(f"{base}/api/v1/query_range?{urlencode(parameters)}", request)
            if data.get("resultType") != "matrix":
                raise _unexpected(
                    "a range query returned another resultType than matrix",
                    repr(data.get("resultType"))[:100],
                )
            series = _one_series(data.get("result"), request.query)
            if "values" not in series and "histograms" in series:
                # Native histograms come as "histograms" instead of "values": the address
                # is right, the query is what to change.
                raise PullError(_HISTOGRAM_MESSAGE)
            values = series.get("values")
            if not isinstance(values, list):
                raise _unexpected("the series has no values")
            return [_sample(sample) for sample in values]

        parameters = {"query": request.query, "time": _unix(request.until)}
        data = self._get(f"{base}/api/v1/query?{urlencode(parameters)}", request)
        result_type = data.get("resultType")
        if result_type == "scalar":
            return [(None, _single_value(data.get("result")))]
        if result_type == "vector":
            series = _one_series(data.get("result"), request.query)
            if "value" not in series:
                # Native histograms come as "histogram" instead of "value".
                raise PullError(_HISTOGRAM_MESSAGE)
            return [(None, _single_value(series["value"]))]
        if result_type == "matrix":
            raise PullError(
                "The query returned a range vector; drop the [range] selector or aggregate "
                'it (e.g. rate(...[5m])), or set options.mode to "range".'
            )
        if result_type == "string":
            raise PullError("The query returned a string, not a number.")
        raise _unexpected("an unknown resultType", repr(result_type)[:100])

    def _get(self, url: str, request: FetchRequest) -> dict[str, Any]:
        """The `data` of a successful answer; PullError with Prometheus's own reason if not."""
        response = http.http_get(
            url,
            headers=http.merge_headers(
                {"Accept": "application/json"},
                http.source_headers(request.config, request.credentials),
            ),
            timeout=request.timeout,
            max_bytes=request.max_bytes,
            accept=_QUERY_ERROR_STATUSES,
        )
        try:
            answer = http.parse_json(response.body)
        except PullError:
            if response.status in _QUERY_ERROR_STATUSES:
                # Not Prometheus's JSON error: a proxy in front of it, most likely.
                raise PullError(
                    f"The source answered HTTP {response.status} without a Prometheus error; "
                    "check the address."
                ) from None
            raise
        if not isinstance(answer, dict):
            raise _unexpected("the answer is not a JSON object")
        if answer.get("status") == "error":
            # Prometheus's reason quotes the query, but whatever answers at this address
            # may echo the request's headers in it.
            kind = answer.get("errorType")
            kind = f"{kind}; " if kind in _ERROR_TYPES else ""
            raise PullError(
                f"Prometheus refused the query ({kind}its message is shown to the source's "
                "editors).",
                full=f"Prometheus refused the query: {str(answer.get('error'))[:1000]}",
            )
        if answer.get("status") != "success" or not isinstance(answer.get("data"), dict):
            raise _unexpected("no successful status and data")
        return answer["data"]


CONNECTOR = PrometheusConnector()
