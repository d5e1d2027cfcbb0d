"""The shared pull path: periods, values, schedule, claims, pulls, health and pushes.

Connectors are replaced by a fake here; they have their own tests against real servers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from outcomes import connectors, pulling
from outcomes.connectors import PullError, TransientPullError
from outcomes.models import Metric, Observation, PullRun, PullStatus
from tests.factories import make_metric

AMS = ZoneInfo("Europe/Amsterdam")


class FakeConnector:
    """Answers with whatever the test sets: a list of raw points or an exception."""

    kind = "sql"
    uses_window = True
    samples_periods = False

    def __init__(self) -> None:
        self.answer: list | Exception = [(None, 1.0)]
        self.requests: list = []

    def validate_source(self, config, credentials) -> None:
        pass

    def validate_metric(self, query, options) -> None:
        pass

    def fetch(self, request):
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def fake(monkeypatch):
    fake = FakeConnector()
    real_get = connectors.get
    monkeypatch.setattr(connectors, "get", lambda kind: fake if kind == "sql" else real_get(kind))
    return fake


@pytest.fixture
def metric(tree, fake) -> Metric:
    return make_metric(
        tree,
        kind="sql",
        credentials={"password": "hunter2-secret"},
        query="select 1",
        schedule_interval=timedelta(hours=1),
    )


@pytest.fixture
def push_metric(tree) -> Metric:
    return make_metric(tree, kind="push", source_name="Pushed")


def claimed(metric: Metric) -> Metric:
    assert pulling.metric_claim(metric=metric)
    metric.refresh_from_db()
    return metric


# --- Periods and values ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("granularity", "moment", "expected"),
    [
        (
            "minute",
            datetime(2026, 3, 4, 10, 17, 42, tzinfo=UTC),
            datetime(2026, 3, 4, 10, 17, tzinfo=UTC),
        ),
        ("hour", datetime(2026, 3, 4, 10, 17, tzinfo=UTC), datetime(2026, 3, 4, 10, tzinfo=UTC)),
        # Days, weeks and months are cut in the metric's zone: 00:30 in Amsterdam is still
        # the previous day in UTC.
        ("day", datetime(2026, 3, 4, 23, 30, tzinfo=UTC), datetime(2026, 3, 4, 23, tzinfo=UTC)),
        ("week", datetime(2026, 3, 5, 12, tzinfo=UTC), datetime(2026, 3, 1, 23, tzinfo=UTC)),
        ("month", datetime(2026, 3, 17, 12, tzinfo=UTC), datetime(2026, 2, 28, 23, tzinfo=UTC)),
    ],
)
def test_period_start_cuts_in_the_metric_zone(granularity, moment, expected):
    assert pulling.period_start(moment, granularity, AMS) == expected


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (3, 3.0),
        (2.5, 2.5),
        (Decimal("1.25"), 1.25),
        ("  42.5 ", 42.5),
        ("-1e3", -1000.0),
        ("+.5", 0.5),
        ("7.", 7.0),
    ],
)
def test_parse_value_accepts_numbers(raw, value):
    assert pulling.parse_value(raw) == value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "'abc' is not a number"),
        ("NaN", "not a finite number"),
        (float("nan"), "not a finite number"),
        ("inf", "not a finite number"),
        (float("-inf"), "not a finite number"),
        (Decimal("1e400"), "not a finite number"),
        (True, "True is not a number"),
        (None, "None is not a number"),
        ({"v": 1}, "a dict is not a number"),
        ([1], "a list is not a number"),
        ("1_000", "'1_000' is not a number"),
        ("١٢٣", "'١٢٣' is not a number"),  # Arabic-Indic digits
        ("１２", "'１２' is not a number"),  # fullwidth digits
        ("1,5", "'1,5' is not a number"),
        ("0x10", "'0x10' is not a number"),
        # Just past the bound: it said "1e+15 is beyond ±1e+15".
        (1_000_000_100_000_000, r"^1000000100000000\.0 is beyond ±1e\+15"),
        ("-1e308", r"^-1e\+308 is beyond ±1e\+15"),
    ],
)
def test_parse_value_refuses_what_is_not_a_finite_number(raw, message):
    """Also what float() would read but a person might not: "1_000", other scripts' digits."""
    with pytest.raises(ValueError, match=message):
        pulling.parse_value(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-04", datetime(2026, 3, 4, tzinfo=AMS)),
        (date(2026, 3, 4), datetime(2026, 3, 4, tzinfo=AMS)),
        ("2026-03-04T10:00:00Z", datetime(2026, 3, 4, 10, tzinfo=UTC)),
        ("2026-03-04T10:00:00", datetime(2026, 3, 4, 10, tzinfo=AMS)),
        (1772618400, datetime(2026, 3, 4, 10, tzinfo=UTC)),
        ("1772618400.0", datetime(2026, 3, 4, 10, tzinfo=UTC)),
    ],
)
def test_parse_period(raw, expected):
    assert pulling.parse_period(raw, AMS) == expected


@pytest.mark.parametrize("raw", ["yesterday", "", "2026-13-01", [2026], 1e20])
def test_parse_period_refuses_nonsense(raw):
    with pytest.raises(ValueError, match="period|timestamp"):
        pulling.parse_period(raw, AMS)


def test_points_validate_files_values_under_their_period(metric):
    now = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
    metric.granularity = "day"
    points = pulling.points_validate(
        [("2026-03-02", "5"), ("2026-03-01", 4), (None, 6.5)], metric=metric, now=now
    )
    assert [(p.period_start.date().isoformat(), p.value) for p in points] == [
        ("2026-03-01", 4.0),
        ("2026-03-02", 5.0),
        ("2026-03-04", 6.5),
    ]


@pytest.mark.parametrize(
    ("raw_points", "message"),
    [
        ([], "returned no values"),
        (
            [("2026-03-01", 1), ("2026-03-01T12:00:00Z", 2)],
            "Value 2: a second value for the period",
        ),
        ([("2026-03-05", 1)], "Value 1: period 2026-03-05 00:00 UTC is in the future"),
        (
            [("2026-03-01", 1), ("2026-03-02", "NaN")],
            "Value 2: the value \\('NaN'\\) is not a finite number",
        ),
    ],
)
def test_points_validate_refuses(metric, raw_points, message):
    now = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
    with pytest.raises(PullError, match=message):
        pulling.points_validate(raw_points, metric=metric, now=now)


def test_points_validate_caps_the_number_of_points(metric, settings):
    settings.METRICS_MAX_POINTS = 3
    now = timezone.now()
    raw = [(now - timedelta(days=day), day) for day in range(4)]
    with pytest.raises(PullError, match="returned 4 values; at most 3"):
        pulling.points_validate(raw, metric=metric, now=now)


# --- Schedule and claims --------------------------------------------------------------


def test_interval_schedule_is_aligned_to_the_clock(metric):
    metric.schedule_interval = timedelta(minutes=15)
    moment = datetime(2026, 3, 4, 10, 7, 13, tzinfo=UTC)
    assert pulling.next_pull_after(metric, moment) == datetime(2026, 3, 4, 10, 15, tzinfo=UTC)
    # Strictly after: a pull claimed on the slot moves on to the next slot.
    slot = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)
    assert pulling.next_pull_after(metric, slot) == datetime(2026, 3, 4, 10, 30, tzinfo=UTC)


def test_cron_schedule_follows_the_metric_zone(metric):
    metric.schedule_interval = None
    metric.schedule_cron = "0 6 * * 1-5"
    metric.timezone = "Europe/Amsterdam"
    friday_evening = datetime(2026, 3, 6, 18, tzinfo=UTC)
    # Next weekday 06:00 in Amsterdam is Monday 05:00 UTC.
    assert pulling.next_pull_after(metric, friday_evening) == datetime(2026, 3, 9, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({}, "schedule_interval"),
        ({"schedule_interval": timedelta(seconds=30)}, "schedule_interval"),
        ({"schedule_interval": timedelta(hours=1), "schedule_cron": "0 * * * *"}, "schedule_cron"),
        ({"schedule_cron": "every day"}, "schedule_cron"),
        ({"schedule_cron": "0 6 * * *", "timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_a_bad_schedule_is_refused_and_nothing_is_created(tree, fake, fields, key):
    with pytest.raises(ValidationError) as error:
        make_metric(tree, kind="sql", query="select 1", **fields)
    assert key in error.value.message_dict
    assert Metric.objects.count() == 0


def test_a_push_metric_takes_no_schedule(tree):
    with pytest.raises(ValidationError, match="push metric has no schedule"):
        make_metric(tree, kind="push", schedule_interval=timedelta(hours=1))


def test_a_new_pulled_metric_is_due_at_once(metric, push_metric):
    assert metric.next_pull_at is not None
    assert metric.next_pull_at <= timezone.now()
    assert push_metric.next_pull_at is None


def test_claim_due_claims_each_due_metric_once(metric, push_metric, tree, fake):
    later = make_metric(tree, kind="sql", query="select 2", schedule_interval=timedelta(hours=1))
    Metric.objects.filter(pk=later.pk).update(next_pull_at=timezone.now() + timedelta(hours=1))
    paused = make_metric(tree, kind="sql", query="select 3", schedule_interval=timedelta(hours=1))
    Metric.objects.filter(pk=paused.pk).update(is_active=False)
    now = timezone.now()

    assert pulling.metrics_claim_due(now=now) == [metric.pk]
    # A second beat finds nothing: the claim and the new next_pull_at are both written.
    assert pulling.metrics_claim_due(now=now) == []
    metric.refresh_from_db()
    assert metric.claimed_at == now
    assert metric.next_pull_at == pulling.next_pull_after(metric, now)


def test_the_claim_is_conditional_on_what_was_read(metric, monkeypatch):
    """Two beats read the same due row; the second beat's UPDATE must match nothing.

    The first beat claims (and releases, as a finished pull would) while the second is
    between its read and its UPDATE: without the condition on the read `next_pull_at`,
    the second would claim the metric again.
    """
    real_next = pulling.next_pull_after
    nested: list = []

    def first_beat_runs_in_between(m, moment):
        if not nested:
            nested.append("running")
            nested.append(pulling.metrics_claim_due(now=moment))
            Metric.objects.filter(pk=m.pk).update(claimed_at=None)
        return real_next(m, moment)

    monkeypatch.setattr(pulling, "next_pull_after", first_beat_runs_in_between)
    assert pulling.metrics_claim_due() == []
    assert nested == ["running", [metric.pk]]


def test_pull_now_claims_once_and_queues_after_commit(
    metric, django_capture_on_commit_callbacks, monkeypatch
):
    from outcomes import tasks

    queued = []
    monkeypatch.setattr(tasks.pull_metric, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        assert pulling.metric_pull_now(metric=metric) is True
        assert queued == []  # not before the claim commits
    assert pulling.metric_pull_now(metric=metric) is False
    assert queued == [(metric.pk, "manual", None)]


def test_pull_now_moves_the_schedule_and_records_who_asked(
    metric, fake, users, monkeypatch, django_capture_on_commit_callbacks
):
    from outcomes import tasks

    overdue = timezone.now() - timedelta(minutes=5)
    Metric.objects.filter(pk=metric.pk).update(next_pull_at=overdue)
    queued = []
    monkeypatch.setattr(tasks.pull_metric, "delay", lambda *args: queued.append(args))
    metric.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        assert pulling.metric_pull_now(metric=metric, user=users["editor"]) is True
    metric.refresh_from_db()
    assert metric.next_pull_at == pulling.next_pull_after(metric, metric.claimed_at)
    assert metric.next_pull_at > timezone.now()
    # Beat does not pull it again the moment this pull finishes.
    assert metric.pk not in pulling.metrics_claim_due()

    [(metric_id, trigger, user_id)] = queued
    run = pulling.metric_pull(metric_id=metric_id, trigger=trigger, user_id=user_id)
    assert (run.trigger, run.user) == ("manual", users["editor"])
    assert metric.pk not in pulling.metrics_claim_due()


def test_pull_now_refuses_a_push_metric(push_metric):
    with pytest.raises(ValidationError, match="push metric is not pulled"):
        pulling.metric_pull_now(metric=push_metric)


# --- Pulls ----------------------------------------------------------------------------


def test_a_pull_stores_values_and_records_the_run(metric, fake):
    fake.answer = [("2026-03-01", "4"), ("2026-03-02", 5)]
    run = pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")

    assert run.status == PullStatus.SUCCEEDED
    assert run.values_written == 2
    assert run.finished_at is not None and run.duration_ms is not None
    assert list(metric.observations.values_list("value", "pull_run")) == [
        (4.0, run.pk),
        (5.0, run.pk),
    ]
    metric.refresh_from_db()
    assert metric.claimed_at is None
    assert metric.last_success_at == run.started_at
    assert metric.consecutive_failures == 0
    # The connector got the decrypted credentials and the window of interest.
    request = fake.requests[0]
    assert request.credentials == {"password": "hunter2-secret"}
    assert request.until == run.started_at
    assert request.since < request.until


def test_pulling_a_period_again_replaces_its_value(metric, fake):
    fake.answer = [("2026-03-01", 4)]
    pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")
    fake.answer = [("2026-03-01", 7), ("2026-03-02", 8)]
    second = pulling.metric_pull(metric_id=claimed(metric).pk, trigger="manual")

    rows = list(metric.observations.order_by("period_start").values_list("value", "pull_run"))
    assert rows == [(7.0, second.pk), (8.0, second.pk)]
    # The next pull asks from the newest stored period on.
    third_request_since = pulling.fetch_request(metric, {}, timezone.now()).since
    assert third_request_since == metric.observations.latest("period_start").period_start


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        # Readers get the shape of what the source said; its editors read it in error_detail.
        ([("2026-03-01", "abc")], "Value 1: the value (a text of 3 characters) is not a finite"),
        ([("2026-03-01", float("inf"))], "not a finite number"),
        ([], "The source returned no values."),
        (PullError("The JSONPath $.x found nothing in the response"), "found nothing"),
    ],
)
def test_a_failed_pull_stores_nothing_and_keeps_the_last_good_value(metric, fake, answer, message):
    fake.answer = [("2026-03-01", 4)]
    pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")
    fake.answer = answer
    run = pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")

    assert run.status == PullStatus.FAILED
    assert message in run.error
    assert list(metric.observations.values_list("value", flat=True)) == [4.0]
    metric.refresh_from_db()
    assert metric.claimed_at is None
    assert metric.consecutive_failures == 1
    assert metric.last_error == run.error
    if answer == [("2026-03-01", "abc")]:
        assert run.error_detail == metric.last_error_detail == "Value 1: 'abc' is not a number."


def test_a_metric_is_unhealthy_after_n_failures_and_healthy_after_a_success(metric, fake, settings):
    from outcomes.selectors import metric_health

    settings.METRICS_UNHEALTHY_AFTER = 2
    fake.answer = PullError("The source answered HTTP 404 Not Found")
    pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")
    metric.refresh_from_db()
    assert metric_health(metric) == "waiting"
    pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")
    metric.refresh_from_db()
    assert metric_health(metric) == "unhealthy"
    fake.answer = [(None, 1)]
    pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")
    metric.refresh_from_db()
    assert (metric_health(metric), metric.consecutive_failures) == ("healthy", 0)


def test_a_metric_is_stale_when_its_expected_frequency_passes(metric):
    from outcomes.selectors import metric_health

    now = timezone.now()
    metric.last_success_at = now - timedelta(hours=2, minutes=1)  # interval 1 h: due every 2 h
    assert metric_health(metric, now) == "stale"
    metric.expected_frequency = timedelta(hours=3)
    assert metric_health(metric, now) == "healthy"


def test_a_transient_failure_keeps_the_claim_for_the_retry(metric, fake):
    fake.answer = TransientPullError("No complete answer within 10 s")
    with pytest.raises(TransientPullError):
        pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule", final_attempt=False)
    metric.refresh_from_db()
    assert metric.claimed_at is not None
    run = metric.pull_runs.get()
    assert (run.status, run.error) == (
        PullStatus.FAILED,
        "No complete answer within 10 s It will be tried again.",
    )


def test_the_final_transient_failure_releases_the_claim(metric, fake):
    fake.answer = TransientPullError("Connection refused")
    run = pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule", attempt=4)
    metric.refresh_from_db()
    assert (run.status, run.attempt, metric.claimed_at) == (PullStatus.FAILED, 4, None)


def test_an_unexpected_error_closes_the_run_and_propagates(metric, fake):
    fake.answer = ZeroDivisionError("bug")
    with pytest.raises(ZeroDivisionError):
        pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")
    run = metric.pull_runs.get()
    assert (run.status, run.error) == (PullStatus.FAILED, "Unexpected error (see the worker log).")


def test_credentials_never_reach_the_error(metric, fake):
    fake.answer = PullError("login failed with password hunter2-secret for reader")
    run = pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")
    assert "hunter2-secret" not in run.error
    assert run.error == "login failed with password *** for reader"


def test_a_message_delivered_twice_pulls_once(metric, fake):
    pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")
    assert pulling.metric_pull(metric_id=metric.pk, trigger="schedule") is None
    assert PullRun.objects.count() == 1
    assert pulling.metric_pull(metric_id=999_999, trigger="schedule") is None


def test_new_observations_queue_the_evaluation_of_their_measures(
    metric, fake, tree, django_capture_on_commit_callbacks, monkeypatch
):
    from outcomes import tasks
    from outcomes.services import measure_create
    from valuetree import services as tree_services

    goal = tree_services.node_create(tree=tree, parent=None, title="Goal")
    measure = measure_create(
        node=goal,
        name="Signups",
        direction="increase",
        baseline_value=1,
        baseline_date="2026-01-01",
        target_value=2,
        target_date="2027-01-01",
        metric=metric,
    )
    queued = []
    monkeypatch.setattr(tasks.evaluate_measures, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")
    [(measure_ids, changed_at)] = queued
    assert measure_ids == [measure.pk]
    # Taken after the commit: evaluations that began later are known to include it.
    assert datetime.fromisoformat(changed_at) >= PullRun.objects.get().finished_at


def test_the_sweeper_requeues_pulls_that_never_finished(metric, fake, settings):
    settings.PULL_STUCK_AFTER = 60
    now = timezone.now()
    claimed(metric)
    lost = PullRun.objects.create(
        metric=metric, trigger="schedule", started_at=now - timedelta(minutes=5)
    )
    Metric.objects.filter(pk=metric.pk).update(claimed_at=now - timedelta(minutes=5))

    assert pulling.metrics_sweep_stuck(now=now) == [metric.pk]
    assert pulling.metrics_sweep_stuck(now=now) == []  # re-claimed: fresh again
    lost.refresh_from_db()
    assert lost.status == PullStatus.ABANDONED
    assert "worker stopped" in lost.error
    metric.refresh_from_db()
    assert metric.claimed_at == now


# --- Pushes ---------------------------------------------------------------------------


def test_a_push_stores_all_values_as_one_run(push_metric, users):
    run = pulling.observations_push(
        metric=push_metric,
        raw_points=[("2026-03-01", 1), ("2026-03-02", "2.5")],
        user=users["editor"],
    )
    assert (run.trigger, run.status, run.values_written, run.user) == (
        "push",
        "succeeded",
        2,
        users["editor"],
    )
    assert list(push_metric.observations.values_list("value", flat=True)) == [1.0, 2.5]


def test_a_bad_push_changes_nothing(push_metric):
    pulling.observations_push(metric=push_metric, raw_points=[("2026-03-01", 1)])
    with pytest.raises(ValidationError, match=r"Line 3: 'x' is not a number"):
        pulling.observations_push(
            metric=push_metric,
            raw_points=[("2026-03-01", 9), ("2026-03-02", "x")],
            describe=lambda index: f"Line {index + 2}",
        )
    assert list(push_metric.observations.values_list("value", flat=True)) == [1.0]
    assert PullRun.objects.count() == 1


def test_values_cannot_be_pushed_to_a_pulled_metric(metric):
    with pytest.raises(ValidationError, match="pulled from its source"):
        pulling.observations_push(metric=metric, raw_points=[(None, 1)])
    assert Observation.objects.count() == 0


def test_csv_points_keep_line_numbers():
    points, lines = pulling.csv_points("Period,Value\n2026-03-01,1\n\n2026-03-02,2\n")
    assert points == [("2026-03-01", "1"), ("2026-03-02", "2")]
    assert lines == [2, 4]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The file is empty"),
        ("date,amount\n2026-03-01,1\n", "Line 1: the header must name"),
        ("period,value\n", "no values"),
        ("period,value\n2026-03-01,1,9\n", "Line 2: 3 columns, the header has 2"),
    ],
)
def test_csv_points_refuse_bad_files(text, message):
    with pytest.raises(ValidationError, match=message):
        pulling.csv_points(text)


@pytest.mark.parametrize(
    ("fields", "key", "message"),
    [
        ({"schedule_interval": timedelta(days=3_000_000)}, "schedule_interval", "366 days"),
        ({"schedule_cron": "* * * * * *"}, "schedule_cron", "five fields"),
    ],
)
def test_schedules_that_would_overflow_or_beat_the_minute_are_refused(
    tree, fake, fields, key, message
):
    with pytest.raises(ValidationError) as error:
        make_metric(tree, kind="sql", query="select 1", **fields)
    assert message in error.value.message_dict[key][0]


@pytest.mark.parametrize("raw", [20240101, 2024, "1700000000000"])
def test_date_keys_and_years_are_not_read_as_unix_times(raw):
    # As numbers; as text, "2024" and "20240101" are ISO 8601 (test_periods.py).
    with pytest.raises(ValueError, match="not a Unix timestamp between 2000 and 2100"):
        pulling.parse_period(raw, AMS)


def test_a_number_too_large_for_a_float_is_refused_not_crashed():
    with pytest.raises(ValueError, match="too large"):
        pulling.parse_value(10**400)


def test_range_samples_keep_the_last_value_of_a_period(metric):
    now = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
    points = pulling.points_validate(
        [("2026-03-01T00:00:00Z", 1), ("2026-03-01T23:00:00Z", 2)],
        metric=metric,
        now=now,
        keep_last=True,
    )
    assert [(p.period_start.day, p.value) for p in points] == [(1, 2.0)]


def test_retried_attempts_count_as_one_failure(metric, fake):
    fake.answer = TransientPullError("Connection refused")
    with pytest.raises(TransientPullError):
        pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule", final_attempt=False)
    metric.refresh_from_db()
    assert metric.consecutive_failures == 0
    pulling.metric_pull(metric_id=metric.pk, trigger="schedule", attempt=2)
    metric.refresh_from_db()
    assert metric.consecutive_failures == 1


def test_an_edit_does_not_overwrite_the_claim_or_health(metric):
    from outcomes.services import metric_update

    stale_copy = Metric.objects.get(pk=metric.pk)
    claimed(metric)
    Metric.objects.filter(pk=metric.pk).update(consecutive_failures=2, last_error="boom")
    metric_update(metric=stale_copy, unit="%")
    metric.refresh_from_db()
    assert metric.unit == "%"
    assert metric.claimed_at is not None
    assert (metric.consecutive_failures, metric.last_error) == (2, "boom")


def test_claiming_among_some_metrics_leaves_the_others_due(metric, tree, fake):
    other = make_metric(
        tree,
        kind="sql",
        source_name="Other",
        query="select 2",
        schedule_interval=timedelta(hours=1),
    )
    assert pulling.metrics_claim_due(among=Metric.objects.filter(pk=other.pk)) == [other.pk]
    metric.refresh_from_db()
    assert metric.claimed_at is None
    assert metric.next_pull_at <= timezone.now()


def test_csv_that_is_not_csv_is_a_line_numbered_error():
    with pytest.raises(ValidationError, match=r"Line \d+: not readable as CSV"):
        pulling.csv_points("period,value\n2026-03-01," + "x" * 200_000 + "\n")


def test_a_nul_the_source_sent_is_recorded_visibly_on_both_databases(metric, fake):
    # PostgreSQL text cannot hold NUL: the failure must still be recorded, not lost in a 500.
    fake.answer = PullError("The server answered: bad\x00request")
    run = pulling.metric_pull(metric_id=claimed(metric).pk, trigger="schedule")
    run.refresh_from_db()
    metric.refresh_from_db()
    assert run.status == PullStatus.FAILED
    assert "\x00" not in run.error + run.error_detail + metric.last_error
    assert "bad\\x00request" in run.error + run.error_detail
