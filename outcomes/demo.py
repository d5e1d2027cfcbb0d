"""Demo metrics for the Helix Diagnostics tree that work with no network at all.

- "Helix warehouse (demo)": a SQL source over a SQLite file of daily KPIs that
  `manage.py load_demo_metrics` writes into METRICS_SQLITE_DIRS, from each measure's
  baseline date up to today;
- "Lab floor live feed (demo)": an HTTP JSON source reading `/demo/live-metrics/`, an
  endpoint this server answers itself (DEMO_ENDPOINTS), whose values move every minute;
- "Monthly check-ins": a push source, filled by a few check-ins.

The demo starts with a year of history (the warehouse metrics are pulled once, the
live feed's past year is written, the check-ins go back to their baseline), and the
measures of the bets and initiatives marked as value measures (diagnostics.yaml)
turn their expected value into realised value on the dashboard from the start.

Every pulled demo metric is pulled every minute, so a new user sees pull runs within a
minute of `make run`.
"""

from __future__ import annotations

import math
import random
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from outcomes import pulling, services
from outcomes.evaluation import measures_evaluate
from outcomes.models import Measure, Metric, MetricSource, PullTrigger, SourceKind
from valuetree.models import ValueTree

DEMO_TREE = "helix-diagnostics"
WAREHOUSE_SOURCE = "Helix warehouse (demo)"
LIVE_SOURCE = "Lab floor live feed (demo)"
PUSH_SOURCE = "Monthly check-ins"
WAREHOUSE_FILE = "helix_demo_warehouse.sqlite3"
EVERY_MINUTE = timedelta(minutes=1)
HISTORY_DAYS = 365  # the history the demo starts with (pulling.FIRST_PULL_LOOKBACK)


@dataclass(frozen=True)
class DemoMetric:
    measure: str  # the demo measure it feeds, by name
    source: str
    name: str  # its key in the demo warehouse (and the seed of its made-up values)
    # How far along the planned trajectory the made-up values run (1.0: on plan).
    pace: float = 1.0

    @property
    def words(self) -> str:
        """The metric's name as people read it: "Turnaround hours"."""
        return WORDS.get(self.name) or self.name.replace("_", " ").capitalize()


# Metric names as the product owner reads them (the keys stay the warehouse's).
WORDS = {
    "sla_percent": "Share released within SLA (%)",
    "event_trail_percent": "Samples with a full event trail (%)",
    "report_opened_by_8": "Reports opened by 08:00",
    "queue_to_action_minutes": "Queue to staff action (minutes)",
}

WAREHOUSE_METRICS = [
    DemoMetric(
        "Median sample-to-result turnaround, routine chemistry",
        WAREHOUSE_SOURCE,
        "turnaround_hours",
        0.9,
    ),
    DemoMetric("Results released within contractual SLA", WAREHOUSE_SOURCE, "sla_percent", 0.6),
    DemoMetric("Samples with a complete event trail", WAREHOUSE_SOURCE, "event_trail_percent", 1.1),
    DemoMetric(
        "Spread in analyser utilisation between hub labs",
        WAREHOUSE_SOURCE,
        "utilisation_spread",
        0.3,
    ),
]
LIVE_METRIC = DemoMetric(
    "Median time from queue forming to staff action", LIVE_SOURCE, "queue_to_action_minutes"
)
PUSH_METRIC = DemoMetric(
    "Lab managers opening the report before 08:00", PUSH_SOURCE, "report_opened_by_8"
)


def warehouse_path() -> Path:
    return Path(settings.METRICS_SQLITE_DIRS[0]) / WAREHOUSE_FILE


def trajectory(measure: Measure, day: date, pace: float, rng: random.Random) -> float:
    """A made-up value on the way from baseline to target, `pace` times the planned speed."""
    span = (measure.target_date - measure.baseline_date).days
    done = min(max((day - measure.baseline_date).days / span, 0.0), 1.5)
    planned = measure.baseline_value + (measure.target_value - measure.baseline_value) * done * pace
    noise = abs(measure.target_value - measure.baseline_value) * 0.03 * rng.gauss(0, 1)
    return round(planned + noise, 2)


def warehouse_build(measures: dict[str, Measure], today: date) -> Path:
    """(Re)write the demo warehouse: table kpi_daily(kpi, day, value)."""
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE IF EXISTS kpi_daily")
        db.execute("CREATE TABLE kpi_daily (kpi TEXT NOT NULL, day TEXT NOT NULL, value REAL)")
        for spec in WAREHOUSE_METRICS:
            measure = measures[spec.measure]
            rng = random.Random(spec.name)
            day = measure.baseline_date
            rows = []
            while day <= today:
                rows.append((spec.name, day.isoformat(), trajectory(measure, day, spec.pace, rng)))
                day += timedelta(days=1)
            db.executemany("INSERT INTO kpi_daily VALUES (?, ?, ?)", rows)
    db.close()
    return path


def live_value(moment: datetime) -> float:
    """Minutes from queue to action on the lab floor: drifts down, wobbles by the minute."""
    days = (moment.date() - date(2025, 6, 30)).days
    trend = max(95 - days * 0.12, 35)
    return round(trend + 6 * math.sin(moment.minute / 60 * 2 * math.pi), 1)


def live_metrics_view(request: HttpRequest) -> JsonResponse:
    """GET /demo/live-metrics/: what the demo's HTTP JSON source reads."""
    now = timezone.now()
    return JsonResponse(
        {"as_of": now.isoformat(), "floor": {"queue_to_action_minutes": live_value(now)}}
    )


def _source(tree: ValueTree, name: str, kind: str, config: dict[str, Any]) -> MetricSource:
    source = MetricSource.objects.filter(tree=tree, name=name).first()
    if source is None:
        return services.metric_source_create(tree=tree, kind=kind, name=name, config=config)
    if source.config != config:
        services.metric_source_update(source=source, config=config)
    return source


def _metric(source: MetricSource, measure: Measure, name: str, **fields: Any) -> Metric:
    metric = Metric.objects.filter(source=source, name=name).first()
    if metric is None:
        metric = services.metric_create(source=source, name=name, unit=measure.unit, **fields)
    if measure.metric_id != metric.pk:
        services.measure_update(measure=measure, metric=metric)
    return metric


@transaction.atomic
def load_demo_metrics(*, base_url: str, today: date | None = None) -> dict[str, Any]:
    """Create (or refresh) the demo sources and metrics and link them to their measures."""
    tree = ValueTree.objects.get(slug=DEMO_TREE)
    today = today or timezone.localdate()
    names = {spec.measure for spec in [*WAREHOUSE_METRICS, LIVE_METRIC, PUSH_METRIC]}
    measures = {
        measure.name: measure
        for measure in Measure.objects.filter(node__tree=tree, name__in=names).select_related(
            "node"
        )
    }
    missing = names - set(measures)
    if missing:
        raise ValueError(f"The demo tree has no measures named {sorted(missing)}.")
    path = warehouse_build(measures, today)

    warehouse = _source(tree, WAREHOUSE_SOURCE, SourceKind.SQL, {"url": f"sqlite:///{path}"})
    pulled = []
    for spec in WAREHOUSE_METRICS:
        metric = _metric(
            warehouse,
            measures[spec.measure],
            spec.words,
            query=(
                "SELECT day, value FROM kpi_daily "
                f"WHERE kpi = '{spec.name}' AND day >= date(:since) ORDER BY day"
            ),
            granularity="day",
            schedule_interval=EVERY_MINUTE,
            expected_frequency=timedelta(days=2),
        )
        pulled.append(metric)
    # A year of history from the start, so verdicts (and the realised value of the
    # value measures) are there before the first scheduled pull: one ordinary first
    # pull (FIRST_PULL_LOOKBACK) of each warehouse metric, in this process; the
    # warehouse is a local file, so this needs no network.
    for metric in pulled:
        if not metric.observations.exists() and pulling.metric_claim(metric=metric):
            pulling.metric_pull(metric_id=metric.pk, trigger=PullTrigger.MANUAL)
    live = _source(
        tree,
        LIVE_SOURCE,
        SourceKind.HTTP_JSON,
        {"url": base_url.rstrip("/") + "/demo/live-metrics/"},
    )
    feed = _metric(
        live,
        measures[LIVE_METRIC.measure],
        LIVE_METRIC.words,
        query="$.floor.queue_to_action_minutes",
        granularity="minute",
        schedule_interval=EVERY_MINUTE,
    )
    if not feed.observations.exists():
        # The feed answers only its current value; its past year, a value a day at
        # 12:00 UTC, is what it answered then (live_value is a function of the time),
        # and this minute's value makes it fresh until the first pull.
        now = timezone.now()
        moments = [
            *(
                datetime.combine(today - timedelta(days=days), time(12), tzinfo=UTC)
                for days in range(HISTORY_DAYS, 0, -1)
            ),
            now.astimezone(UTC).replace(second=0, microsecond=0),
        ]
        pulling.observations_write(
            metric=feed,
            points=[pulling.Point(moment, live_value(moment)) for moment in moments],
            run=None,
            pulled_at=now,
        )
    push = _source(tree, PUSH_SOURCE, SourceKind.PUSH, {})
    checked_in = _metric(
        push,
        measures[PUSH_METRIC.measure],
        PUSH_METRIC.words,
        granularity="month",
        expected_frequency=timedelta(days=45),
    )
    if not checked_in.observations.exists():
        measure = measures[PUSH_METRIC.measure]
        rng = random.Random(PUSH_METRIC.name)
        months = []
        month = measure.baseline_date.replace(day=1)
        while month <= today and len(months) < 24:
            months.append((month, trajectory(measure, month, 0.8, rng)))
            month = (month + timedelta(days=32)).replace(day=1)
        pulling.observations_push(
            metric=checked_in, raw_points=months, trigger=PullTrigger.CHECK_IN
        )
    # The review history: two published reviews, decisions, learnings, a draft.
    from outcomes.reviews.demo import load_demo_reviews

    load_demo_reviews(tree=tree, today=today)
    # A review schedule delivering reports (e-mail with PDF; Slack when configured).
    from outcomes.reports.demo import load_demo_schedule

    load_demo_schedule(tree=tree, today=today)
    # Verdicts from the start: the pulls add theirs within a minute.
    transaction.on_commit(
        lambda: measures_evaluate(
            measure_ids=Measure.objects.filter(node__tree=tree).values_list("id", flat=True)
        )
    )
    return {
        "tree": tree,
        "warehouse": path,
        "metrics": Metric.objects.filter(source__tree=tree).count(),
    }
