"""Reads of measures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from cronsim import CronSim
from django.conf import settings
from django.db import connection
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.utils import timezone

from outcomes.models import Measure, Metric, MetricSource, Observation, PullRun, SourceKind
from valuetree.models import Node, ValueTree
from valuetree.selectors import nodes_for_user, trees_for_user

MEASURE_COLUMNS = (
    "id",
    "node_id",
    "name",
    "unit",
    "direction",
    "baseline_value",
    "baseline_date",
    "target_value",
    "target_date",
    "kind",
    "weight",
    "is_guardrail",
    "metric_id",
    "created_at",
    "updated_at",
)


def measures_by_node(
    tree_id: int, node_ids: Collection[int] | None = None
) -> dict[int, list[dict[str, Any]]]:
    """The measures of a tree (or of some of its nodes), grouped by node, in one query."""
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    measures = Measure.objects.filter(node__tree_id=tree_id)
    if node_ids is not None:
        measures = measures.filter(node_id__in=node_ids)
    rows = measures.order_by("node_id", "position", "id").values(*MEASURE_COLUMNS)
    for row in rows:
        grouped[row.pop("node_id")].append(row)
    return grouped


def measures_for_user(user: Any) -> QuerySet[Measure]:
    return Measure.objects.filter(node__in=nodes_for_user(user).values("pk")).select_related("node")


def measure_history(tree_id: int) -> QuerySet[Any]:
    # By the node ids the tree ever had, so measures of deleted nodes keep their history.
    return Measure.history.filter(node_id__in=Node.history.filter(tree_id=tree_id).values("id"))


# --- Metrics --------------------------------------------------------------------------


def metric_sources_for_user(user: Any) -> QuerySet[MetricSource]:
    return MetricSource.objects.filter(tree__in=trees_for_user(user).values("pk")).select_related(
        "tree", "owner"
    )


def metrics_for_user(user: Any) -> QuerySet[Metric]:
    return Metric.objects.filter(source__tree__in=trees_for_user(user).values("pk")).select_related(
        "source", "source__tree"
    )


def expected_frequency(metric: Metric) -> timedelta | None:
    """How often a new value is due: as set, else twice the schedule's step."""
    if metric.expected_frequency:
        return metric.expected_frequency
    if metric.schedule_interval:
        return metric.schedule_interval * 2
    if metric.schedule_cron:
        ticks = CronSim(metric.schedule_cron, timezone.now())
        first = next(ticks)
        return (next(ticks) - first) * 2
    return None


def metric_health(metric: Metric, now: datetime | None = None) -> str:
    """paused, unhealthy (N failures in a row), waiting (no value yet), stale or healthy."""
    now = now or timezone.now()
    if not metric.is_active:
        return "paused"
    if metric.consecutive_failures >= settings.METRICS_UNHEALTHY_AFTER:
        return "unhealthy"
    if metric.last_success_at is None:
        return "waiting"
    frequency = expected_frequency(metric)
    if frequency is not None and now - metric.last_success_at > frequency:
        return "stale"
    return "healthy"


def tree_metrics(tree: ValueTree) -> dict[str, Any]:
    """The metrics page of a tree: sources, metrics with health and last value, recent runs.

    Five queries whatever the number of metrics.
    """
    sources = list(
        MetricSource.objects.filter(tree=tree)
        .select_related("owner")
        .annotate(metric_count=Count("metrics"))
        .order_by("name")
    )
    metrics = list(
        Metric.objects.filter(source__tree=tree)
        .select_related("source")
        .annotate(measure_count=Count("measures"))
        .order_by("source__name", "name")
    )
    latest = latest_observations([metric.pk for metric in metrics])
    now = timezone.now()
    for metric in metrics:
        metric.health = metric_health(metric, now)
        metric.latest = latest.get(metric.pk)
        metric.is_push = metric.source.kind == SourceKind.PUSH
    runs = list(
        PullRun.objects.filter(metric__source__tree=tree)
        .select_related("metric")
        .order_by("-started_at", "-id")[:25]
    )
    return {"sources": sources, "metrics": metrics, "runs": runs}


def latest_observations(metric_ids: Collection[int]) -> dict[int, Observation]:
    """The newest observation of each metric, in one query."""
    if not metric_ids:
        return {}
    newest = Observation.objects.filter(metric_id__in=metric_ids)
    if connection.vendor == "postgresql":
        rows = newest.order_by("metric_id", "-period_start").distinct("metric_id")
    else:
        rows = newest.filter(
            period_start=Subquery(
                Observation.objects.filter(metric_id=OuterRef("metric_id"))
                .order_by("-period_start")
                .values("period_start")[:1]
            )
        )
    return {row.metric_id: row for row in rows}


def metric_observations(
    metric: Metric, *, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[Observation]:
    rows = Observation.objects.filter(metric=metric).order_by("period_start")
    if since is not None:
        rows = rows.filter(period_start__gte=since)
    if until is not None:
        rows = rows.filter(period_start__lt=until)
    return rows


def metric_pull_runs(metric: Metric) -> QuerySet[PullRun]:
    return (
        PullRun.objects.filter(metric=metric).select_related("user").order_by("-started_at", "-id")
    )


def tree_metric_choices(tree_id: int) -> QuerySet[Metric]:
    """The metrics a measure of this tree may point at."""
    return (
        Metric.objects.filter(source__tree_id=tree_id)
        .select_related("source")
        .order_by("source__name", "name")
    )
