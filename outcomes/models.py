"""Measures of success attached to value tree nodes, and the metrics that feed them.

A MetricSource (one per place the numbers live) has Metrics; each pull of a metric is a
PullRun and writes Observations, one per (metric, period). Verdicts and reviews build
on these (DESIGN.md §3–5).
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from valuetree.models import MAX_WEIGHT

# The largest magnitude of a measured value (baselines, targets, observations): far
# beyond any count, amount or ratio a measure tracks, and far enough from the float
# maximum that differences, slopes and sums over a series stay finite.
MAX_ABS_VALUE = 1e15
"""Measured values lie in [-1e15, 1e15]."""
SHORTEST_INTERVAL = timedelta(minutes=1)
LONGEST_INTERVAL = timedelta(days=366)
"""A pull schedule runs every minute at most, every 366 days at least."""
LONGEST_EXPECTED_FREQUENCY = timedelta(days=3660)
"""A metric may expect a value as rarely as once in ten years."""


def value_validators() -> list:
    return [MinValueValidator(-MAX_ABS_VALUE), MaxValueValidator(MAX_ABS_VALUE)]


def value_in_range(field: str) -> Q:
    return Q(**{f"{field}__gte": -MAX_ABS_VALUE}) & Q(**{f"{field}__lte": MAX_ABS_VALUE})


class Direction(models.TextChoices):
    INCREASE = "increase", "Increase"
    DECREASE = "decrease", "Decrease"
    AT_LEAST = "at_least", "At least"
    AT_MOST = "at_most", "At most"


class MeasureKind(models.TextChoices):
    LEADING = "leading", "Leading"
    LAGGING = "lagging", "Lagging"


class Measure(models.Model):
    node = models.ForeignKey("valuetree.Node", on_delete=models.CASCADE, related_name="measures")
    name = models.CharField(max_length=200)
    unit = models.CharField(
        max_length=50,
        blank=True,
        help_text="%, EUR, days, count…",
    )
    direction = models.CharField(max_length=10, choices=Direction.choices)
    baseline_value = models.FloatField(validators=value_validators())
    baseline_date = models.DateField()
    target_value = models.FloatField(validators=value_validators())
    target_date = models.DateField()
    kind = models.CharField(max_length=10, choices=MeasureKind.choices, default=MeasureKind.LAGGING)
    weight = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(MAX_WEIGHT)],
        help_text="Its weight among the node's measures in the roll-up, 0–1000.",
    )
    metric = models.ForeignKey(
        "Metric",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="measures",
        help_text="Where this measure's numbers come from.",
    )
    is_guardrail = models.BooleanField(
        default=False, help_text="A guardrail can only lower its node's verdict."
    )
    is_value_measure = models.BooleanField(
        default=False,
        help_text="Its delivered fraction turns the node's expected value into realised value.",
    )
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["node_id", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(direction__in=Direction.values), name="measure_direction_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=MeasureKind.values), name="measure_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(target_date__gt=F("baseline_date")),
                name="measure_target_after_baseline",
            ),
            models.CheckConstraint(
                condition=Q(weight__gte=0) & Q(weight__lte=MAX_WEIGHT), name="measure_weight_0_1000"
            ),
            models.CheckConstraint(
                condition=value_in_range("baseline_value") & value_in_range("target_value"),
                name="measure_values_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The rule of the ``measure_target_after_baseline`` constraint, said at its field:
        ``full_clean`` then skips the constraint's own wording, and the tree import's
        bulk path (``clean_fields`` and ``clean``, no constraint queries) refuses it
        instead of failing at the database."""
        # Dates only: a value clean_fields refused is still the raw input here.
        if (
            type(self.baseline_date) is date
            and type(self.target_date) is date
            and self.target_date <= self.baseline_date
        ):
            raise ValidationError(
                {"target_date": "The target date must be after the baseline date."}
            )


class SourceKind(models.TextChoices):
    PUSH = "push", "Push (API, CSV, check-in)"
    HTTP_JSON = "http_json", "HTTP JSON"
    SQL = "sql", "SQL warehouse"
    PROMETHEUS = "prometheus", "Prometheus"


class MetricSource(models.Model):
    """Where numbers live: a connection (URL, headers) plus encrypted credentials."""

    tree = models.ForeignKey(
        "valuetree.ValueTree", on_delete=models.CASCADE, related_name="metric_sources"
    )
    kind = models.CharField(max_length=20, choices=SourceKind.choices)
    name = models.CharField(max_length=200)
    config = models.JSONField(default=dict, blank=True)
    # A Fernet token of the credentials' JSON (outcomes/credentials.py). Never returned
    # by the API, never logged, never copied into history.
    credentials_encrypted = models.TextField(blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="metric_sources",
    )
    # The data product's port whose contract server the source was made from
    # (services.metric_source_from_port); the connection itself lives in `config`.
    output_port = models.ForeignKey(
        "valuetree.OutputPort",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="metric_sources",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["credentials_encrypted"])

    class Meta:
        ordering = ["tree_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tree", "name"], name="metric_source_name_unique"),
            models.CheckConstraint(
                condition=Q(kind__in=SourceKind.values), name="metric_source_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Granularity(models.TextChoices):
    """The length of one period: every value is filed under the start of its period."""

    MINUTE = "minute", "Minute"
    HOUR = "hour", "Hour"
    DAY = "day", "Day"
    WEEK = "week", "Week (from Monday)"
    MONTH = "month", "Month"


# How many of a metric's newest values Metric.recent_values keeps (a sparkline's points).
RECENT_VALUES = 12


class Metric(models.Model):
    source = models.ForeignKey(MetricSource, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=200)
    # SQL text, a PromQL expression or the JSONPath of the value, by source kind;
    # `options` holds the rest (HTTP path, period JSONPath, Prometheus mode and step).
    query = models.TextField(blank=True, default="")
    options = models.JSONField(default=dict, blank=True)
    unit = models.CharField(max_length=50, blank=True)
    granularity = models.CharField(
        max_length=10, choices=Granularity.choices, default=Granularity.DAY
    )
    schedule_interval = models.DurationField(
        null=True,
        blank=True,
        validators=[MinValueValidator(SHORTEST_INTERVAL), MaxValueValidator(LONGEST_INTERVAL)],
        help_text="Pull this often, one minute to 366 days (or give a cron expression).",
    )
    schedule_cron = models.CharField(
        max_length=100, blank=True, help_text="Five-field cron, e.g. '0 6 * * 1-5'."
    )
    timezone = models.CharField(max_length=64, default="UTC")
    expected_frequency = models.DurationField(
        null=True,
        blank=True,
        validators=[
            MinValueValidator(SHORTEST_INTERVAL),
            MaxValueValidator(LONGEST_EXPECTED_FREQUENCY),
        ],
        help_text="A new value is expected at least this often (one minute to 3660 days); "
        "older means stale.",
    )
    is_active = models.BooleanField(default=True)
    # The schedule and its claim: beat claims due metrics with a conditional UPDATE.
    next_pull_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Health, written with queryset updates by the pull path.
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # The same error quoting what the source answered: for the source's editors only.
    last_error_detail = models.TextField(blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    # The newest values (at most RECENT_VALUES, oldest first), rewritten with every
    # write of observations: the tree page draws a sparkline per measure from this one
    # column instead of sorting every metric's history (issue 15).
    recent_values = models.JSONField(default=list, blank=True)
    # When observations were last written (pulling.observations_write stamps it with
    # the same UPDATE as recent_values): with the newest period it keys the cached
    # forecast fit (outcomes/evaluation.py), so no evaluation scans the history to
    # learn whether it changed.
    observations_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(
        excluded_fields=[
            "next_pull_at",
            "claimed_at",
            "last_success_at",
            "last_failure_at",
            "last_error",
            "last_error_detail",
            "consecutive_failures",
            "recent_values",
            "observations_changed_at",
            "updated_at",
        ]
    )

    class Meta:
        ordering = ["source_id", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "name"], name="metric_name_unique"),
            models.CheckConstraint(
                condition=Q(granularity__in=Granularity.values), name="metric_granularity_valid"
            ),
            models.CheckConstraint(
                condition=~(Q(schedule_interval__isnull=False) & ~Q(schedule_cron="")),
                name="metric_one_schedule",
            ),
            models.CheckConstraint(
                condition=Q(schedule_interval__isnull=True)
                | Q(schedule_interval__gte=timedelta(minutes=1)),
                name="metric_interval_at_least_a_minute",
            ),
            models.CheckConstraint(
                condition=Q(schedule_interval__isnull=True)
                | Q(schedule_interval__lte=LONGEST_INTERVAL),
                name="metric_interval_at_most_366_days",
            ),
            models.CheckConstraint(
                condition=Q(expected_frequency__isnull=True)
                | (
                    Q(expected_frequency__gte=SHORTEST_INTERVAL)
                    & Q(expected_frequency__lte=LONGEST_EXPECTED_FREQUENCY)
                ),
                name="metric_expected_frequency_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Observation(models.Model):
    """One value of a metric for one period. Written by upsert: a period has one row."""

    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="observations")
    period_start = models.DateTimeField()
    value = models.FloatField(validators=value_validators())
    pulled_at = models.DateTimeField()
    pull_run = models.ForeignKey(
        "PullRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="observations"
    )

    class Meta:
        ordering = ["metric_id", "period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "period_start"], name="observation_one_per_period"
            ),
            models.CheckConstraint(
                condition=value_in_range("value"), name="observation_value_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric_id} @ {self.period_start:%Y-%m-%d %H:%M}: {self.value}"


class PullTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Pull now"
    SWEEPER = "sweeper", "Re-queued after a lost pull"
    PUSH = "push", "Pushed"
    UPLOAD = "upload", "CSV upload"
    CHECK_IN = "check_in", "Check-in"


class PullStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ABANDONED = "abandoned", "Abandoned (worker lost)"


class PullRun(models.Model):
    """One attempt to get values for a metric: pulled, pushed or uploaded."""

    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="pull_runs")
    trigger = models.CharField(max_length=20, choices=PullTrigger.choices)
    status = models.CharField(max_length=20, choices=PullStatus.choices, default=PullStatus.RUNNING)
    attempt = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")  # shown to every reader of the tree
    error_detail = models.TextField(blank=True, default="")  # for editors; "" if no more
    values_written = models.PositiveIntegerField(default=0)
    # Samples of a series answer that were NaN or infinite (Prometheus's stale or
    # divided-by-zero steps): skipped, not stored, counted here.
    samples_skipped = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["metric", "-started_at"], name="pull_run_metric_recent"),
            models.Index(fields=["status", "started_at"], name="pull_run_status_started"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_id} {self.status} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class VerdictStatus(models.TextChoices):
    ACHIEVED = "achieved", "Achieved"
    REACHED = "reached", "Reached, must hold"
    ON_TRACK = "on_track", "On track"
    AT_RISK = "at_risk", "At risk"
    OFF_TRACK = "off_track", "Off track"
    MISSED = "missed", "Missed"
    TOO_EARLY = "too_early", "Too early to tell"
    NO_DATA = "no_data", "No data"
    STALE = "stale", "Stale"


class VerdictPolicy(models.Model):
    """A tree's verdict thresholds: the forecast's P(reach) that counts as on track / at
    risk (the status), and how far behind the linear plan still counts as on track / at
    risk (the plan's own verdict, shown beside it). outcomes/verdicts.py."""

    tree = models.OneToOneField(
        "valuetree.ValueTree", on_delete=models.CASCADE, related_name="verdict_policy"
    )
    on_track_within = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Fraction of the baseline→target distance a measure may trail its plan "
        "and still be on track.",
    )
    at_risk_within = models.FloatField(
        default=0.15,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Trailing by more than this is off track.",
    )
    on_track_probability = models.FloatField(
        default=0.55,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A forecast chance of reaching the target at least this high is on track "
        "(a toss-up, within 5 points of 50 %, goes by the plan).",
    )
    at_risk_probability = models.FloatField(
        default=0.4,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Below the on-track chance but at least this high is at risk; lower is "
        "off track.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(on_track_within__gte=0)
                & Q(at_risk_within__gte=F("on_track_within"))
                & Q(at_risk_within__lte=1),
                name="verdict_policy_bands_ordered",
            ),
            models.CheckConstraint(
                condition=Q(at_risk_probability__gte=0)
                & Q(on_track_probability__gte=F("at_risk_probability"))
                & Q(on_track_probability__lte=1),
                name="verdict_policy_probabilities_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tree_id}: {self.on_track_within} / {self.at_risk_within}"


class Verdict(models.Model):
    """One evaluation of a measure at a moment, kept as history.

    `observation_ids` are the newest rows it used (the latest gives the progress); the
    forecast read every observation of the metric up to `latest_period` (at most
    verdicts.FORECAST_MAX_POINTS periods), so every number can be traced to its
    evidence. `reason` says why in words, `forecast_model` names the fitted shape and
    `plan_status` is the straight-line plan's own verdict (outcomes/verdicts.py).
    """

    measure = models.ForeignKey(Measure, on_delete=models.CASCADE, related_name="verdicts")
    evaluated_at = models.DateTimeField()
    as_of = models.DateTimeField()
    status = models.CharField(max_length=10, choices=VerdictStatus.choices)
    judged_status = models.CharField(max_length=10, choices=VerdictStatus.choices)
    progress = models.FloatField(null=True, blank=True)
    expected_progress = models.FloatField()
    latest_value = models.FloatField(null=True, blank=True)
    latest_period = models.DateTimeField(null=True, blank=True)
    observation_ids = models.JSONField(default=list, blank=True)
    forecast_value = models.FloatField(null=True, blank=True)
    forecast_low = models.FloatField(null=True, blank=True)
    forecast_high = models.FloatField(null=True, blank=True)
    forecast_probability = models.FloatField(null=True, blank=True)
    forecast_note = models.CharField(max_length=200, blank=True, default="")
    # The fitted shape (level, linear, hinge, damped, logistic) and why the status, in
    # words; the linear plan's own verdict beside it.
    forecast_model = models.CharField(max_length=10, blank=True, default="")
    reason = models.CharField(max_length=400, blank=True, default="")
    plan_status = models.CharField(max_length=10, blank=True, default="")
    is_current = models.BooleanField(default=True)

    class Meta:
        ordering = ["measure_id", "-evaluated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["measure"],
                condition=Q(is_current=True),
                name="verdict_one_current_per_measure",
            ),
            models.CheckConstraint(
                condition=Q(status__in=VerdictStatus.values), name="verdict_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["measure", "-evaluated_at"], name="verdict_history")]

    def __str__(self) -> str:
        return f"{self.measure_id} {self.status} as of {self.as_of:%Y-%m-%d}"


# Reviews, decisions and learnings live in their own module (DESIGN.md §5b).
# Scheduled review reports and their deliveries (issue 13).
from outcomes.reports.models import (  # noqa: E402, F401
    CalendarToken,
    Delivery,
    ReportUnsubscribe,
    ReviewRender,
    ReviewSchedule,
    ScheduledRun,
)
from outcomes.reviews.models import (  # noqa: E402, F401
    Decision,
    DecisionKind,
    Evidence,
    EvidenceKind,
    Learning,
    LearningKind,
    ReviewAmendment,
    ReviewPolicy,
    ReviewStatus,
    ValueReview,
)
