"""Time series samples as real sources send them (issue 14 §3): non-finite samples
in series answers are skipped and counted and the pull window moves on; periods in
every precision of ISO 8601, with offsets, as Unix seconds or milliseconds; dates
far outside any metric's life are refused with a message, never a 500."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone as django_timezone

from outcomes import pulling
from outcomes.models import Observation, PullRun, PullStatus, PullTrigger
from tests.factories import make_metric
from tests.stub_http import StubServer

AMS = ZoneInfo("Europe/Amsterdam")

pytestmark = pytest.mark.django_db


# --- Periods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026", datetime(2026, 1, 1, tzinfo=AMS)),
        ("2026-09", datetime(2026, 9, 1, tzinfo=AMS)),
        ("2026-W36", datetime(2026, 8, 31, tzinfo=AMS)),  # the ISO week's Monday
        ("2026-W36-2", datetime(2026, 9, 1, tzinfo=AMS)),
        ("2026-245", datetime(2026, 9, 2, tzinfo=AMS)),  # ordinal day
        ("20260901", datetime(2026, 9, 1, tzinfo=AMS)),
        ("2026-09-01", datetime(2026, 9, 1, tzinfo=AMS)),
        ("2026-09-01T10:00", datetime(2026, 9, 1, 10, tzinfo=AMS)),
        ("2026-09-01T10:00+02:00", datetime(2026, 9, 1, 8, tzinfo=UTC)),
        ("2026-09-01T10:00:00.5-05:30", datetime(2026, 9, 1, 15, 30, 0, 500_000, tzinfo=UTC)),
        ("2026-09-01T08:00Z", datetime(2026, 9, 1, 8, tzinfo=UTC)),
        (1_788_000_000, datetime.fromtimestamp(1_788_000_000, tz=UTC)),
        ("1788000000", datetime.fromtimestamp(1_788_000_000, tz=UTC)),
    ],
)
def test_periods_in_every_iso_precision_and_as_unix_seconds(raw, expected):
    assert pulling.parse_period(raw, AMS) == expected


def test_week_53_is_read_only_in_a_year_that_has_it():
    """isoparse read 2021-W53 (2021 has 52 ISO weeks) as 2022-01-03, silently."""
    assert pulling.parse_period("2020-W53", AMS) == datetime(2020, 12, 28, tzinfo=AMS)
    assert pulling.parse_period("2026W53", AMS) == datetime(2026, 12, 28, tzinfo=AMS)
    for raw in ("2021-W53", "2021W53", "2021-W53-1", "2027-W53"):
        with pytest.raises(ValueError, match="has 52 ISO weeks, not 53"):
            pulling.parse_period(raw, AMS)


def test_week_53_of_a_year_of_52_is_a_400_and_writes_nothing(push_metric, users, client_for):
    client = client_for(users["owner"])
    url = observations_url(push_metric)
    response = client.post(url, [{"period": "2021-W53", "value": 1}], format="json")
    assert response.status_code == 400
    assert "2021 has 52 ISO weeks, not 53" in str(response.json())
    csv = client.post(url, "period,value\n2021-W53,1\n", content_type="text/csv")
    assert csv.status_code == 400
    assert not Observation.objects.exists()


@pytest.mark.parametrize("raw", [1_788_000_000_123, "1788000000123", 1.788000000123e12])
def test_milliseconds_where_the_metric_says_so(raw):
    expected = datetime.fromtimestamp(1_788_000_000.123, tz=UTC)
    assert abs(pulling.parse_period(raw, AMS, unit="ms") - expected) < timedelta(milliseconds=1)
    with pytest.raises(ValueError, match="not a Unix timestamp between 2000 and 2100"):
        pulling.parse_period(raw, AMS)


OUT_OF_RANGE = [
    "0001-01-01",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:30:00+14:00",
    "9999-12-31",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59+14:00",
    "1899-12-31T23:00:00-12:00",
]


@pytest.mark.parametrize("raw", OUT_OF_RANGE)
def test_dates_out_of_range_are_refused_with_a_message(raw):
    with pytest.raises(ValueError, match="outside the years 1900 to 9998"):
        pulling.parse_period(raw, AMS)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-1))),
    ],
)
def test_datetimes_out_of_range_from_a_connector_are_refused(moment):
    with pytest.raises(ValueError, match="outside the years"):
        pulling.parse_period(moment, AMS)


@pytest.fixture
def push_metric(tree):
    return make_metric(tree, kind="push", source_name="Pushed", granularity="day")


def observations_url(metric) -> str:
    return f"/api/metrics/{metric.pk}/observations/"


@pytest.mark.parametrize("period", OUT_OF_RANGE)
def test_out_of_range_pushes_are_a_400(period, push_metric, users, client_for):
    client = client_for(users["owner"])
    response = client.post(
        observations_url(push_metric), [{"period": period, "value": 1}], format="json"
    )
    assert response.status_code == 400
    assert "outside the years 1900 to 9998" in str(response.json())
    csv = client.post(
        observations_url(push_metric), f"period,value\n{period},1\n", content_type="text/csv"
    )
    assert csv.status_code == 400
    assert not Observation.objects.exists()


@pytest.mark.parametrize(
    ("period", "stored"),
    [
        ("2026", datetime(2026, 1, 1, tzinfo=AMS)),
        ("2026-09", datetime(2026, 9, 1, tzinfo=AMS)),
        ("2026-W36", datetime(2026, 8, 31, tzinfo=AMS)),
        ("2026-09-01T23:30-02:00", datetime(2026, 9, 2, tzinfo=AMS)),
    ],
)
def test_reduced_precision_pushes_are_filed_under_their_period(
    period, stored, push_metric, users, client_for, settings
):
    push_metric.timezone = "Europe/Amsterdam"
    push_metric.save()
    response = client_for(users["owner"]).post(
        observations_url(push_metric), [{"period": period, "value": 1}], format="json"
    )
    assert response.status_code == 201, response.json()
    assert Observation.objects.get().period_start == stored


def test_a_push_metric_may_take_periods_in_milliseconds(tree, users, client_for):
    metric = make_metric(
        tree, kind="push", source_name="Pushed", granularity="day", options={"period_unit": "ms"}
    )
    response = client_for(users["owner"]).post(
        observations_url(metric), [{"period": 1_788_000_000_000, "value": 1}], format="json"
    )
    assert response.status_code == 201, response.json()
    assert Observation.objects.get().period_start.date() == date(2026, 8, 29)


def test_an_unknown_period_unit_is_refused(tree):
    with pytest.raises(ValidationError) as error:
        make_metric(tree, kind="push", source_name="P", options={"period_unit": "us"})
    assert "options.period_unit" in error.value.message_dict


# --- Non-finite samples in series answers ------------------------------------------------


@pytest.fixture
def prometheus(settings):
    with StubServer() as server:
        settings.METRICS_ALLOWED_HOSTS = [server.host_port]
        yield server


def matrix(values):
    body = {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
    }
    return (200, {}, body)


def pull(metric) -> PullRun:
    assert pulling.metric_claim(metric=metric)
    return pulling.metric_pull(metric_id=metric.pk, trigger=PullTrigger.SCHEDULE)


def test_the_nan_wedge_case_no_longer_wedges_the_metric(tree, prometheus):
    """shared/cases/prometheus-range-nan-wedge.py: a NaN step in a range answer
    failed every pull, and each asked again from the same start."""
    now = int(time.time())
    t = now - now % 3600
    metric = make_metric(
        tree,
        kind="prometheus",
        config={"url": prometheus.url},
        query="sum(rate(ok[5m])) / sum(rate(all[5m]))",
        options={"mode": "range"},
        granularity="hour",
        timezone="UTC",
        schedule_interval=timedelta(hours=1),
    )
    prometheus.route("/api/v1/query_range", matrix([[t - 3 * 3600, "0.98"]]))
    first = pull(metric)
    assert (first.status, first.values_written, first.samples_skipped) == ("succeeded", 1, 0)

    prometheus.route(
        "/api/v1/query_range",
        matrix(
            [
                [t - 3 * 3600, "0.98"],
                [t - 2 * 3600, "NaN"],
                [t - 3600, "0.97"],
                [t, "0.99"],
                [t, "+Inf"],
                [t, "-Inf"],
            ]
        ),
    )
    second = pull(metric)
    assert (second.status, second.values_written, second.samples_skipped) == (
        PullStatus.SUCCEEDED,
        3,
        3,
    )
    stored = dict(Observation.objects.values_list("period_start", "value"))
    assert stored == {
        datetime.fromtimestamp(t - 3 * 3600, tz=UTC): 0.98,
        datetime.fromtimestamp(t - 3600, tz=UTC): 0.97,
        datetime.fromtimestamp(t, tz=UTC): 0.99,
    }
    third = pull(metric)
    assert third.status == PullStatus.SUCCEEDED
    starts = [
        float(parse_qs(urlsplit(request.path).query)["start"][0])
        for request in prometheus.requests_to("/api/v1/query_range")
    ]
    assert starts[2] > starts[1] > starts[0]


def test_an_answer_of_nothing_but_nan_succeeds_and_the_window_still_moves(tree, prometheus):
    metric = make_metric(
        tree,
        kind="prometheus",
        config={"url": prometheus.url},
        query="up",
        options={"mode": "range"},
        granularity="hour",
        timezone="UTC",
        schedule_interval=timedelta(hours=1),
    )
    now = int(time.time())
    prometheus.route("/api/v1/query_range", matrix([[now - 7200, "NaN"], [now - 3600, "NaN"]]))
    run = pull(metric)
    assert (run.status, run.values_written, run.samples_skipped) == (PullStatus.SUCCEEDED, 0, 2)
    metric.refresh_from_db()
    request = pulling.fetch_request(metric, {}, django_timezone.now())
    assert request.since >= metric.last_success_at - timedelta(hours=1)


def test_text_where_a_sample_should_be_still_fails_the_pull(tree, prometheus):
    metric = make_metric(
        tree,
        kind="prometheus",
        config={"url": prometheus.url},
        query="up",
        options={"mode": "range"},
        granularity="hour",
        timezone="UTC",
        schedule_interval=timedelta(hours=1),
    )
    now = int(time.time())
    prometheus.route("/api/v1/query_range", matrix([[now - 7200, "NaN"], [now - 3600, "abc"]]))
    run = pull(metric)
    assert run.status == PullStatus.FAILED
    # Readers see the sample's shape; the source's editors read its text.
    assert "Value 2: the value (a text of 3 characters) is not a finite number." in run.error
    assert "Value 2: 'abc' is not a number." in run.error_detail


def test_skipped_samples_are_reported_in_the_api(tree, prometheus, users, client_for):
    metric = make_metric(
        tree,
        kind="prometheus",
        config={"url": prometheus.url},
        query="up",
        options={"mode": "range"},
        granularity="hour",
        timezone="UTC",
        schedule_interval=timedelta(hours=1),
    )
    now = int(time.time())
    prometheus.route("/api/v1/query_range", matrix([[now - 7200, "NaN"], [now - 3600, "1"]]))
    pull(metric)
    runs = client_for(users["owner"]).get(f"/api/metrics/{metric.pk}/pull-runs/").json()
    [run] = runs["results"]
    assert (run["values_written"], run["samples_skipped"]) == (1, 1)
