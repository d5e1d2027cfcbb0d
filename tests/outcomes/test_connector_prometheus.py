from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError

from outcomes.connectors.base import FetchRequest, PullError, TransientPullError
from outcomes.connectors.prometheus import CONNECTOR
from tests.stub_http import StubServer

SINCE = datetime(2026, 3, 1, tzinfo=UTC)  # 1772323200
UNTIL = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)  # 1772454600


@pytest.fixture
def stub(settings):
    with StubServer() as server:
        settings.METRICS_ALLOWED_HOSTS = [server.host_port]
        yield server


def fetch(stub, query="sum(up)", *, options=None, base=""):
    return CONNECTOR.fetch(
        FetchRequest(
            config={"url": stub.url + base},
            credentials={"headers": {"Authorization": "Bearer abc"}},
            query=query,
            options=options or {},
            since=SINCE,
            until=UNTIL,
            step_seconds=3600,
            timeout=5,
        )
    )


def parameters(request) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(request.path).query).items()}


# Answers in Prometheus's own format (https://prometheus.io/docs/prometheus/latest/querying/api/).
def success(result_type, result):
    return (200, {}, {"status": "success", "data": {"resultType": result_type, "result": result}})


def vector(*values):
    return success(
        "vector",
        [{"metric": {"job": f"job{i}"}, "value": [1772454600, v]} for i, v in enumerate(values)],
    )


def matrix(*series):
    return success(
        "matrix", [{"metric": {"job": f"job{i}"}, "values": s} for i, s in enumerate(series)]
    )


def error(status, error_type, message):
    return (status, {}, {"status": "error", "errorType": error_type, "error": message})


class TestInstant:
    def test_vector_with_one_series(self, stub):
        stub.route("/api/v1/query", vector("0.97"))
        assert fetch(stub, "avg(slo_ratio)") == [(None, "0.97")]
        sent = stub.requests[0]
        assert parameters(sent) == {"query": "avg(slo_ratio)", "time": "1772454600"}
        assert sent.headers["authorization"] == "Bearer abc"

    def test_scalar(self, stub):
        stub.route("/api/v1/query", success("scalar", [1772454600, "42"]))
        assert fetch(stub, "scalar(sum(up))") == [(None, "42")]

    def test_base_address_with_a_path_prefix(self, stub):
        stub.route("/prometheus/api/v1/query", vector("1"))
        assert fetch(stub, base="/prometheus/") == [(None, "1")]

    @pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf"])
    def test_a_non_finite_single_value_fails_naming_the_sample_time(self, stub, value):
        stub.route("/api/v1/query", vector(value))
        with pytest.raises(PullError, match=f"answered {re.escape(value)} ") as error:
            fetch(stub)
        assert "for the sample at 2026-03-02 12:30:00 UTC" in str(error.value)

    def test_a_non_finite_scalar_fails_too(self, stub):
        stub.route("/api/v1/query", success("scalar", [1772454600, "NaN"]))
        with pytest.raises(PullError, match="2026-03-02 12:30:00 UTC"):
            fetch(stub, "scalar(sum(up))")

    def test_no_series(self, stub):
        stub.route("/api/v1/query", vector())
        with pytest.raises(PullError, match="The query returned no series"):
            fetch(stub)

    def test_several_series_must_be_aggregated(self, stub):
        stub.route("/api/v1/query", vector("1", "0", "1"))
        with pytest.raises(PullError, match="returned 3 series.*sum\\(up\\)"):
            fetch(stub, "up")

    def test_range_vector_in_instant_mode(self, stub):
        stub.route("/api/v1/query", matrix([[1772454600, "1"]]))
        with pytest.raises(PullError, match='returned a range vector.*options.mode to "range"'):
            fetch(stub, "up[5m]")


class TestRange:
    def test_matrix_with_one_series(self, stub):
        values = [[1772323200, "1"], [1772326800.5, "2.5"], [1772330400, "NaN"]]
        stub.route("/api/v1/query_range", matrix(values))
        points = fetch(stub, "sum(rate(x[5m]))", options={"mode": "range", "step": 900})
        assert points == [(1772323200, "1"), (1772326800.5, "2.5"), (1772330400, "NaN")]
        assert parameters(stub.requests[0]) == {
            "query": "sum(rate(x[5m]))",
            "start": "1772323200",
            "end": "1772454600",
            "step": "900",
        }

    def test_step_defaults_to_the_metric_granularity(self, stub):
        stub.route("/api/v1/query_range", matrix([[1772323200, "1"]]))
        fetch(stub, options={"mode": "range"})
        assert parameters(stub.requests[0])["step"] == "3600"

    def test_no_series(self, stub):
        stub.route("/api/v1/query_range", matrix())
        with pytest.raises(PullError, match="The query returned no series"):
            fetch(stub, options={"mode": "range"})

    def test_several_series_must_be_aggregated(self, stub):
        stub.route("/api/v1/query_range", matrix([[1, "1"]], [[1, "2"]]))
        with pytest.raises(PullError, match="returned 2 series.*sum\\(rate\\(x\\[5m\\]\\)\\)"):
            fetch(stub, "rate(x[5m])", options={"mode": "range"})


class TestErrors:
    @pytest.mark.parametrize(
        "answer",
        [
            error(400, "bad_data", 'invalid parameter "query": 1:6: parse error: unexpected "}"'),
            error(422, "execution", "expanding series: too many samples"),
        ],
    )
    def test_prometheus_error_is_shown_to_editors_only(self, stub, answer):
        stub.route("/api/v1/query", answer)
        with pytest.raises(PullError) as caught:
            fetch(stub, "sum(up})")
        assert type(caught.value) is PullError
        assert caught.value.full == f"Prometheus refused the query: {answer[2]['error']}"
        assert str(caught.value) == (
            f"Prometheus refused the query ({answer[2]['errorType']}; its message is shown "
            "to the source's editors)."
        )

    def test_an_error_echoing_the_request_is_not_repeated_to_readers(self, stub):
        # Whatever answers at the address may put the request's headers in its error.
        stub.route(
            "/api/v1/query",
            lambda path, headers: error(400, headers["authorization"], headers["authorization"]),
        )
        with pytest.raises(PullError) as caught:
            fetch(stub, "up")
        assert "Bearer" not in str(caught.value)
        assert str(caught.value) == (
            "Prometheus refused the query (its message is shown to the source's editors)."
        )

    def test_unavailable_is_transient(self, stub):
        stub.route("/api/v1/query", error(503, "timeout", "query timed out"))
        with pytest.raises(TransientPullError, match="HTTP 503 Service Unavailable"):
            fetch(stub)

    def test_400_without_a_prometheus_body(self, stub):
        stub.route("/api/v1/query", (400, {}, "<html>Bad Request</html>"))
        with pytest.raises(PullError, match="HTTP 400 without a Prometheus error"):
            fetch(stub)

    def test_not_prometheus(self, stub):
        stub.route("/api/v1/query", (200, {}, {"hello": "world"}))
        with pytest.raises(PullError, match="unexpected shape"):
            fetch(stub)

    def test_string_result(self, stub):
        stub.route("/api/v1/query", success("string", [1772454600, "hello"]))
        with pytest.raises(PullError, match="returned a string, not a number"):
            fetch(stub, '"hello"')

    def test_native_histogram(self, stub):
        series = {"metric": {}, "histogram": [1772454600, {"count": "3", "sum": "4"}]}
        stub.route("/api/v1/query", success("vector", [series]))
        with pytest.raises(PullError, match="native histogram"):
            fetch(stub)

    def test_native_histogram_in_a_range_answer(self, stub):
        """It was "an answer of an unexpected shape; check the address", which is right."""
        series = {"metric": {}, "histograms": [[1772454600, {"count": "3", "sum": "4"}]]}
        stub.route("/api/v1/query_range", success("matrix", [series]))
        with pytest.raises(PullError, match="native histogram"):
            fetch(stub, options={"mode": "range"})


class TestValidation:
    def test_valid_source(self):
        CONNECTOR.validate_source(
            {"url": "https://prometheus.example.com", "headers": {}}, {"headers": {"X-Scope": "a"}}
        )

    @pytest.mark.parametrize(
        ("config", "credentials", "key"),
        [
            ({"url": "prometheus:9090"}, {}, "config.url"),
            ({"url": "https://p.example.com", "timeout": 3}, {}, "config.timeout"),
            (
                {"url": "https://p.example.com"},
                {"headers": {"Bad Name": "x"}},
                "credentials.headers",
            ),
        ],
    )
    def test_invalid_source(self, config, credentials, key):
        with pytest.raises(ValidationError) as caught:
            CONNECTOR.validate_source(config, credentials)
        assert list(caught.value.message_dict) == [key]

    @pytest.mark.parametrize(
        "options", [{}, {"mode": "instant"}, {"mode": "range"}, {"mode": "range", "step": 60}]
    )
    def test_valid_metric(self, options):
        CONNECTOR.validate_metric("sum(rate(http_requests_total[5m]))", options)

    @pytest.mark.parametrize(
        ("query", "options", "key"),
        [
            ("  ", {}, "query"),
            ("up", {"mode": "stream"}, "options.mode"),
            ("up", {"step": 0}, "options.step"),
            ("up", {"step": "5m"}, "options.step"),
            ("up", {"step": True}, "options.step"),
            ("up", {"lookback": "5m"}, "options.lookback"),
        ],
    )
    def test_invalid_metric(self, query, options, key):
        with pytest.raises(ValidationError) as caught:
            CONNECTOR.validate_metric(query, options)
        assert list(caught.value.message_dict) == [key]
