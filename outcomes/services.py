"""Writes to measures, metric sources and metrics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from outcomes import connectors
from outcomes.credentials import credentials_decrypt, credentials_encrypt, credentials_rotate
from outcomes.models import Direction, Measure, Metric, MetricSource, SourceKind, VerdictPolicy
from outcomes.pulling import next_pull_after, schedule_validate
from valuetree.models import Node, ValueTree

MEASURE_FIELDS = (
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
    "is_value_measure",
    "metric",
)


def measure_validate(measure: Measure) -> None:
    """Field checks plus the rules that tie fields together, with messages a user can act on."""
    measure.full_clean()
    if measure.metric_id is not None and measure.metric.source.tree_id != measure.node.tree_id:
        raise ValidationError({"metric": "Choose a metric of this tree."})
    if measure.direction == Direction.INCREASE and measure.target_value <= measure.baseline_value:
        raise ValidationError(
            {"target_value": "An 'increase' measure needs a target above its baseline."}
        )
    if measure.direction == Direction.DECREASE and measure.target_value >= measure.baseline_value:
        raise ValidationError(
            {"target_value": "A 'decrease' measure needs a target below its baseline."}
        )


def _measure_build(*, node_id: int, position: int, fields: dict[str, Any]) -> Measure:
    unknown = set(fields) - set(MEASURE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
    measure = Measure(node_id=node_id, position=position, **fields)
    measure_validate(measure)
    return measure


@transaction.atomic
def measure_create(*, node: Node, **fields: Any) -> Measure:
    top = Measure.objects.filter(node=node).aggregate(top=Max("position"))["top"]
    measure = _measure_build(node_id=node.pk, position=0 if top is None else top + 1, fields=fields)
    measure.save()
    return measure


def measure_update(*, measure: Measure, **fields: Any) -> Measure:
    unknown = set(fields) - set(MEASURE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be changed here."))
    for name, value in fields.items():
        setattr(measure, name, value)
    measure_validate(measure)
    measure.save()
    return measure


def measure_delete(*, measure: Measure) -> None:
    measure.delete()


def measure_create_at(node_id: int, position: int, fields: dict[str, Any]) -> Measure:
    """Create a measure at a given position (tree import, where the node is new)."""
    measure = _measure_build(node_id=node_id, position=position, fields=fields)
    measure.save()
    return measure


# --- Metric sources -------------------------------------------------------------------

SOURCE_FIELDS = ("kind", "name", "config")
METRIC_FIELDS = (
    "name",
    "query",
    "options",
    "unit",
    "granularity",
    "schedule_interval",
    "schedule_cron",
    "timezone",
    "expected_frequency",
    "is_active",
)


def _source_validate(source: MetricSource, credentials: dict[str, Any]) -> None:
    source.full_clean(exclude=["credentials_encrypted"])
    if not isinstance(source.config, dict):
        raise ValidationError({"config": "The configuration must be an object."})
    if not isinstance(credentials, dict):
        raise ValidationError({"credentials": "The credentials must be an object."})
    connectors.get(source.kind).validate_source(source.config, credentials)


@transaction.atomic
def metric_source_create(
    *,
    tree: ValueTree,
    kind: str,
    name: str,
    config: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
    owner: Any = None,
) -> MetricSource:
    source = MetricSource(tree=tree, kind=kind, name=name, config=config or {}, owner=owner)
    _source_validate(source, credentials or {})
    source.credentials_encrypted = credentials_encrypt(credentials or {})
    source.save()
    return source


@transaction.atomic
def metric_source_update(
    *, source: MetricSource, credentials: dict[str, Any] | None = None, **fields: Any
) -> MetricSource:
    """Change a source. `credentials=None` keeps the stored ones; `{}` clears them."""
    unknown = set(fields) - {"name", "config", "owner"}
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed here."))
    for name, value in fields.items():
        setattr(source, name, value)
    kept = credentials is None
    if (
        kept
        and source.credentials_encrypted
        and _origin(source.config) != _origin(MetricSource.objects.get(pk=source.pk).config)
    ):
        # Stored secrets go only where they were entered for: otherwise an editor who
        # never saw them could point the source at a server of their own and read them.
        raise ValidationError(
            {
                "credentials": "The address changed: enter the credentials again (or send "
                "{} to remove them); stored ones are never sent to a new address."
            }
        )
    effective = credentials_decrypt(source.credentials_encrypted) if kept else credentials
    _source_validate(source, effective)
    if not kept:
        source.credentials_encrypted = credentials_encrypt(credentials)
    source.save()
    return source


def _origin(config: Any) -> tuple[str, str, int | None] | None:
    """Scheme, host and port of a source's URL (SQLAlchemy or HTTP), to compare."""
    url = config.get("url") if isinstance(config, dict) else None
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
        return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)
    except ValueError:
        return ("", url, None)


def metric_source_delete(*, source: MetricSource) -> None:
    source.delete()


def credentials_rotate_all() -> int:
    """Re-encrypt every source's credentials with the newest key; how many were rewritten."""
    rotated = 0
    for source in MetricSource.objects.exclude(credentials_encrypted="").only(
        "id", "credentials_encrypted"
    ):
        MetricSource.objects.filter(pk=source.pk).update(
            credentials_encrypted=credentials_rotate(source.credentials_encrypted)
        )
        rotated += 1
    return rotated


# --- Metrics --------------------------------------------------------------------------


def _metric_validate(metric: Metric) -> None:
    # The schedule first: its messages say more than the constraints that back it up.
    schedule_validate(
        interval=metric.schedule_interval,
        cron=metric.schedule_cron,
        zone_name=metric.timezone,
        pulled=metric.source.kind != SourceKind.PUSH,
    )
    metric.full_clean()
    if metric.expected_frequency is not None and not (
        timedelta(minutes=1) <= metric.expected_frequency <= timedelta(days=3660)
    ):
        raise ValidationError(
            {"expected_frequency": "Give between one minute and ten years (3660 days)."}
        )
    if not isinstance(metric.options, dict):
        raise ValidationError({"options": "The options must be an object."})
    connectors.get(metric.source.kind).validate_metric(metric.query, metric.options)


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(METRIC_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))


@transaction.atomic
def metric_create(*, source: MetricSource, **fields: Any) -> Metric:
    """A new metric; a pulled one is due at once, so its first value comes within a minute."""
    _check_fields(fields)
    metric = Metric(source=source, **fields)
    _metric_validate(metric)
    if source.kind != SourceKind.PUSH and metric.is_active:
        metric.next_pull_at = timezone.now()
    metric.save()
    return metric


@transaction.atomic
def metric_update(*, metric: Metric, **fields: Any) -> Metric:
    _check_fields(fields)
    schedule_changed = any(
        name in fields and fields[name] != getattr(metric, name)
        for name in ("schedule_interval", "schedule_cron", "timezone", "is_active")
    )
    for name, value in fields.items():
        setattr(metric, name, value)
    _metric_validate(metric)
    # Only what the caller changed: the claim and health columns belong to the pull
    # path, and this copy of them may be stale.
    changed = [*fields, "updated_at"]
    if schedule_changed:
        pulled = metric.source.kind != SourceKind.PUSH and metric.is_active
        metric.next_pull_at = next_pull_after(metric, timezone.now()) if pulled else None
        changed.append("next_pull_at")
    metric.save(update_fields=changed)
    return metric


def metric_delete(*, metric: Metric) -> None:
    metric.delete()


# --- Verdict policy -------------------------------------------------------------------


def verdict_policy_set(
    *, tree_id: int, on_track_within: float, at_risk_within: float
) -> VerdictPolicy:
    """Set a tree's tolerance bands and queue new verdicts for its measures: the bands
    change statuses now, not at the next daily run."""
    from outcomes import tasks

    bands = {"on_track_within": on_track_within, "at_risk_within": at_risk_within}
    if not 0 <= on_track_within <= at_risk_within <= 1:
        raise ValidationError(
            {"at_risk_within": "Give 0 ≤ the on-track band ≤ the at-risk band ≤ 100 %."}
        )
    VerdictPolicy(tree_id=tree_id, **bands).full_clean(validate_unique=False)
    with transaction.atomic():
        policy, _ = VerdictPolicy.objects.update_or_create(tree_id=tree_id, defaults=bands)
        measure_ids = list(
            Measure.objects.filter(node__tree_id=tree_id).values_list("id", flat=True)
        )
        if measure_ids:
            transaction.on_commit(lambda: tasks.evaluate_measures.delay(measure_ids))
    return policy
