from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from outcomes.connectors.base import FetchRequest, PullError
from outcomes.connectors.http_json import CONNECTOR
from tests.stub_http import StubServer


@pytest.fixture
def stub(settings):
    with StubServer() as server:
        settings.METRICS_ALLOWED_HOSTS = [server.host_port]
        yield server


def fetch(stub, query, *, options=None, config=None, credentials=None):
    return CONNECTOR.fetch(
        FetchRequest(
            config={"url": stub.url, **(config or {})},
            credentials=credentials or {},
            query=query,
            options=options or {"path": "/stats"},
            since=datetime(2026, 1, 1, tzinfo=UTC),
            until=datetime(2026, 2, 1, tzinfo=UTC),
            step_seconds=86400,
            timeout=5,
        )
    )


SERIES = {
    "data": {
        "points": [
            {"day": "2026-01-01", "count": 3},
            {"day": "2026-01-02", "count": "4.5"},
            {"day": "2026-01-03", "count": 0},
        ]
    }
}


class TestFetch:
    def test_single_value(self, stub):
        stub.route("/stats", (200, {}, {"value": 0.97}))
        assert fetch(stub, "$.value") == [(None, 0.97)]
        assert stub.requests[0].headers["accept"] == "application/json"

    def test_nested_path_and_filter(self, stub):
        stub.route(
            "/stats", (200, {}, {"teams": [{"name": "a", "nps": 12}, {"name": "b", "nps": 40}]})
        )
        assert fetch(stub, "$.teams[?(@.name == 'b')].nps") == [(None, 40)]

    def test_time_series_with_period_path(self, stub):
        stub.route("/stats", (200, {}, SERIES))
        points = fetch(
            stub,
            "$.data.points[*].count",
            options={"path": "/stats", "period_path": "$.data.points[*].day"},
        )
        assert points == [("2026-01-01", 3), ("2026-01-02", "4.5"), ("2026-01-03", 0)]

    @pytest.mark.parametrize(
        ("base", "path", "requested"),
        [
            ("", "/stats?team=a&range=30d", "/stats?team=a&range=30d"),
            ("/api/v2/", "stats", "/api/v2/stats"),
            ("/api/v2/stats", "?team=a", "/api/v2/stats?team=a"),
            ("/api/v2/stats", "", "/api/v2/stats"),
        ],
    )
    def test_path_is_appended_to_the_base_address(self, stub, base, path, requested):
        stub.route(requested.split("?")[0], (200, {}, {"value": 1}))
        fetch(stub, "$.value", config={"url": stub.url + base}, options={"path": path})
        assert stub.requests[0].path == requested

    def test_no_match(self, stub):
        stub.route("/stats", (200, {}, {"value": 1}))
        with pytest.raises(
            PullError, match="The JSONPath \\$.missing found nothing in the response"
        ):
            fetch(stub, "$.missing")

    def test_periods_and_values_must_pair_up(self, stub):
        stub.route("/stats", (200, {}, {"values": [1, 2, 3], "days": ["2026-01-01", "2026-01-02"]}))
        with pytest.raises(
            PullError,
            match="found 3 values but options.period_path \\$.days\\[\\*\\] found 2 periods",
        ):
            fetch(stub, "$.values[*]", options={"path": "/stats", "period_path": "$.days[*]"})

    def test_several_values_need_a_period_path(self, stub):
        stub.route("/stats", (200, {}, SERIES))
        with pytest.raises(PullError, match="found 3 values; .*options.period_path"):
            fetch(stub, "$.data.points[*].count")

    @pytest.mark.parametrize(
        ("document", "message"),
        [
            ({"value": {"count": 1}}, "found an object where a value was expected"),
            ({"value": [1, 2]}, "found a list where a value was expected; use \\$.value\\[\\*\\]"),
        ],
    )
    def test_value_that_is_not_a_scalar_is_refused(self, stub, document, message):
        stub.route("/stats", (200, {}, document))
        with pytest.raises(PullError, match=message):
            fetch(stub, "$.value")

    def test_values_are_returned_raw(self, stub):
        # Turning values into numbers (and refusing these) is the shared validation's job.
        stub.route("/stats", (200, {}, {"v": ["12", None, "n/a"], "p": [1, 2, 3]}))
        points = fetch(stub, "$.v[*]", options={"path": "/stats", "period_path": "$.p[*]"})
        assert points == [(1, "12"), (2, None), (3, "n/a")]

    def test_credential_headers_are_sent_and_win_over_config_headers(self, stub):
        stub.route("/stats", (200, {}, {"value": 1}))
        fetch(
            stub,
            "$.value",
            config={"headers": {"X-Team": "growth", "X-Api-Key": "placeholder"}},
            credentials={"headers": {"x-api-key": "real-secret"}},
        )
        headers = stub.requests[0].headers
        assert headers["x-team"] == "growth"
        assert headers["x-api-key"] == "real-secret"

    def test_http_errors_come_through(self, stub):
        with pytest.raises(PullError, match="HTTP 404 Not Found"):
            fetch(stub, "$.value", options={"path": "/nowhere"})


class TestValidateSource:
    def test_valid_source(self):
        CONNECTOR.validate_source(
            {"url": "https://metrics.example.com/v1", "headers": {"X-Team": "growth"}},
            {"headers": {"Authorization": "Bearer abc"}},
        )

    @pytest.mark.parametrize(
        ("config", "credentials", "key"),
        [
            ({}, {}, "config.url"),
            ({"url": "ftp://example.com"}, {}, "config.url"),
            ({"url": "https://"}, {}, "config.url"),
            ({"url": "https://example.com", "headers": ["X-A"]}, {}, "config.headers"),
            ({"url": "https://example.com", "headers": {"X A": "1"}}, {}, "config.headers"),
            ({"url": "https://example.com", "headers": {"Host": "evil"}}, {}, "config.headers"),
            ({"url": "https://example.com"}, {"headers": {"X-Key": "a\nb"}}, "credentials.headers"),
            ({"url": "https://example.com"}, {"headers": {"X-Key": 5}}, "credentials.headers"),
            ({"url": "https://example.com", "token": "x"}, {}, "config.token"),
            ({"url": "https://example.com"}, {"password": "x"}, "credentials.password"),
        ],
    )
    def test_invalid_source(self, config, credentials, key):
        with pytest.raises(ValidationError) as caught:
            CONNECTOR.validate_source(config, credentials)
        assert list(caught.value.message_dict) == [key]

    def test_header_value_is_not_echoed(self):
        with pytest.raises(ValidationError) as caught:
            CONNECTOR.validate_source(
                {"url": "https://example.com"}, {"headers": {"X-Key": "s3cret\r\nX-Evil: 1"}}
            )
        assert "s3cret" not in str(caught.value)


class TestValidateMetric:
    @pytest.mark.parametrize(
        "options", [{}, {"path": "/stats?x=1"}, {"path": "/s", "period_path": "$.p[*].day"}]
    )
    def test_valid_metric(self, options):
        CONNECTOR.validate_metric("$.data[*].value", options)

    @pytest.mark.parametrize(
        ("query", "options", "key"),
        [
            ("", {}, "query"),
            ("$.a[", {}, "query"),
            ("foo bar", {}, "query"),
            ("$.v", {"period_path": "$.["}, "options.period_path"),
            ("$.v", {"path": 5}, "options.path"),
            ("$.v", {"method": "POST"}, "options.method"),
        ],
    )
    def test_invalid_metric(self, query, options, key):
        with pytest.raises(ValidationError) as caught:
            CONNECTOR.validate_metric(query, options)
        assert list(caught.value.message_dict) == [key]
