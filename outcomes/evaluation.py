"""Evaluating measures in bulk: observations in, stored verdicts out (DESIGN.md §5).

The arithmetic is in outcomes/verdicts.py; this module only feeds it from the database
and stores what it says. A batch of measures costs a constant number of queries: the
measures, their trees' policies, one aggregate per metric (count, newest period, newest
write: the key of its fit), the history of the metrics whose key changed (at most
FORECAST_MAX_POINTS each), then one UPDATE and one INSERT.

Fits are cached per process by that key, so a metric with no new or changed observation
is not refitted (a worker's nightly run and the re-evaluations after edits reuse them).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Max, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber
from django.utils import timezone

from outcomes import verdicts
from outcomes.models import Measure, Observation, Verdict, VerdictPolicy
from outcomes.pulling import GRANULARITY_SECONDS
from outcomes.selectors import expected_frequency

BATCH = 2000
FIT_CACHE_SIZE = 50_000
MEASURE_COLUMNS = (
    "id",
    "unit",
    "direction",
    "baseline_value",
    "baseline_date",
    "target_value",
    "target_date",
    "is_guardrail",
    "weight",
    "metric_id",
    "metric__expected_frequency",
    "metric__schedule_interval",
    "metric__schedule_cron",
    "metric__granularity",
)


def _batches(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _staleness(metric: Any) -> timedelta | None:
    """How old the newest period may start before the measure is stale: the metric's
    expected frequency plus one period (a daily value starts at midnight)."""
    frequency = expected_frequency(metric)
    if frequency is None:
        return None
    return frequency + timedelta(seconds=GRANULARITY_SECONDS[metric.granularity])


Row = tuple[int, datetime, float]  # observation id, period, value
FitKey = tuple[Any, ...]


class _FitCache:
    """Per-process LRU of (key → (fit, evidence rows)) by metric; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[int, tuple[FitKey, verdicts.Fit | str, list[Row]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, metric_id: int, key: FitKey) -> tuple[verdicts.Fit | str, list[Row]] | None:
        with self._lock:
            item = self._items.get(metric_id)
            if item is None or item[0] != key:
                return None
            self._items.move_to_end(metric_id)
            return item[1], item[2]

    def put(self, metric_id: int, key: FitKey, fit: verdicts.Fit | str, rows: list[Row]) -> None:
        with self._lock:
            self._items[metric_id] = (key, fit, rows)
            self._items.move_to_end(metric_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


fit_cache = _FitCache(FIT_CACHE_SIZE)


def _fit_keys(metric_ids: Iterable[int], at: datetime) -> dict[int, FitKey]:
    """What identifies each metric's observations up to `at`: count, newest period and
    newest write (an upsert of an old period stamps its row's pulled_at). Not a sum of
    values: a parallel aggregate adds floats in any order, so it is not stable."""
    ids = sorted(set(metric_ids))
    if not ids:
        return {}
    rows = (
        Observation.objects.filter(metric_id__in=ids, period_start__lte=at)
        .order_by()
        .values("metric_id")
        .annotate(n=Count("id"), newest=Max("period_start"), pulled=Max("pulled_at"))
        .values_list("metric_id", "n", "newest", "pulled")
    )
    return {metric_id: (n, newest, pulled) for metric_id, n, newest, pulled in rows}


def _recent_observations(
    metric_ids: Iterable[int], at: datetime, limit: int = verdicts.FORECAST_MAX_POINTS
) -> dict[int, list[Row]]:
    """The newest observations up to `at` of each metric, oldest first, in one query.

    Periods come as seconds since the epoch: the driver parses a timestamp about thirty
    times slower than a number.
    """
    ids = sorted(set(metric_ids))
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        # One index probe per metric (metric_id, period_start): a window function would
        # number every observation of every metric first.
        sql = (
            "SELECT m.id, o.id, EXTRACT(EPOCH FROM o.period_start), o.value "
            "FROM unnest(%s::bigint[]) AS m(id) CROSS JOIN LATERAL ("
            "  SELECT id, period_start, value FROM outcomes_observation"
            "  WHERE metric_id = m.id AND period_start <= %s"
            "  ORDER BY period_start DESC LIMIT %s) AS o"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [ids, at, limit])
            rows = cursor.fetchall()
    else:
        rows = (
            Observation.objects.filter(metric_id__in=ids, period_start__lte=at)
            .annotate(
                rank=Window(
                    RowNumber(), partition_by=[F("metric_id")], order_by=F("period_start").desc()
                ),
                epoch=RawSQL(
                    "CAST(strftime('%%s', outcomes_observation.period_start) AS INTEGER)", ()
                ),
            )
            .filter(rank__lte=limit)
            .values_list("metric_id", "id", "epoch", "value")
        )
    grouped: dict[int, list[tuple[int, datetime, float]]] = defaultdict(list)
    for metric_id, observation_id, epoch, value in rows:
        period = datetime.fromtimestamp(float(epoch), tz=UTC)
        grouped[metric_id].append((observation_id, period, value))
    for series in grouped.values():
        series.sort(key=lambda row: row[1])
    return grouped


def measures_evaluate(
    *, measure_ids: Iterable[int] | None = None, at: datetime | None = None
) -> int:
    """Evaluate measures (default: all) as of `at` (default: now); how many verdicts."""
    at = at or timezone.now()
    ids = list(
        Measure.objects.values_list("id", flat=True)
        if measure_ids is None
        else Measure.objects.filter(pk__in=list(measure_ids)).values_list("id", flat=True)
    )
    written = 0
    for batch in _batches(sorted(ids), BATCH):
        written += _evaluate_batch(batch, at)
    return written


def measures_evaluate_restored(node_ids: list[int]) -> None:
    """The measures of nodes a trash restore recreated (valuetree/trash.py) get their
    verdicts right after the restore commits, in the same request, so the page the
    person returns to shows them: the restored measures are new rows, and their
    metrics may have had values all along. Only measures with a metric: the others
    have nothing to evaluate. A restore is rare and one subtree; the evaluation is
    batched (BATCH) like any other."""
    measure_ids = list(
        Measure.objects.filter(node_id__in=node_ids, metric__isnull=False).values_list(
            "id", flat=True
        )
    )
    if measure_ids:
        transaction.on_commit(lambda: measures_evaluate(measure_ids=measure_ids))


def _metric_fits(metric_ids: Iterable[int], at: datetime) -> dict[int, tuple[Any, list[Row]]]:
    """Each metric's fit up to `at` and its newest EVIDENCE_POINTS rows, from the cache
    when its key is unchanged; the others' histories in one query."""
    keys = _fit_keys(metric_ids, at)
    found: dict[int, tuple[Any, list[Row]]] = {}
    for metric_id, key in keys.items():
        cached = fit_cache.get(metric_id, key)
        if cached is not None:
            found[metric_id] = cached
    missing = [metric_id for metric_id in keys if metric_id not in found]
    for metric_id, rows in _recent_observations(missing, at).items():
        usable = [row for row in rows if math.isfinite(row[2])]
        fit = verdicts.fit_history([row[1] for row in usable], [row[2] for row in usable])
        evidence = usable[-verdicts.EVIDENCE_POINTS :]
        fit_cache.put(metric_id, keys[metric_id], fit, evidence)
        found[metric_id] = (fit, evidence)
    return found


def _evaluate_batch(ids: list[int], at: datetime) -> int:
    # Plain rows, not model instances: at 10,000 measures the instances cost more
    # than the arithmetic.
    measures = list(
        Measure.objects.filter(pk__in=ids)
        .annotate(tree_id=F("node__tree_id"))
        .values(*MEASURE_COLUMNS, "tree_id")
    )
    tolerances = {
        policy.tree_id: verdicts.Tolerance(
            on_track_within=policy.on_track_within,
            at_risk_within=policy.at_risk_within,
            on_track_probability=policy.on_track_probability,
            at_risk_probability=policy.at_risk_probability,
        )
        for policy in VerdictPolicy.objects.filter(tree_id__in={m["tree_id"] for m in measures})
    }
    # One per metric, from plain attributes: a Metric instance per measure costs more
    # than its verdict.
    staleness = {
        m["metric_id"]: _staleness(
            SimpleNamespace(
                expected_frequency=m["metric__expected_frequency"],
                schedule_interval=m["metric__schedule_interval"],
                schedule_cron=m["metric__schedule_cron"] or "",
                granularity=m["metric__granularity"],
            )
        )
        for m in {m["metric_id"]: m for m in measures if m["metric_id"]}.values()
    }
    fits = _metric_fits(staleness.keys(), at)
    now = timezone.now()
    new = []
    no_history = (f"too few observations (0; {verdicts.FORECAST_MIN_POINTS} needed)", [])
    for measure in measures:
        spec = verdicts.MeasureSpec(
            direction=measure["direction"],
            baseline_value=measure["baseline_value"],
            baseline_date=measure["baseline_date"],
            target_value=measure["target_value"],
            target_date=measure["target_date"],
            is_guardrail=measure["is_guardrail"],
            weight=measure["weight"],
            expected_frequency=staleness.get(measure["metric_id"]),
        )
        fit, rows_used = fits.get(measure["metric_id"], no_history)
        verdict = verdicts.evaluate(
            spec,
            [(period, value) for _, period, value in rows_used],
            at,
            tolerances.get(measure["tree_id"], verdicts.DEFAULT_TOLERANCE),
            unit=measure["unit"],
            fit=fit,
        )
        forecast = verdict.forecast
        new.append(
            Verdict(
                measure_id=measure["id"],
                evaluated_at=now,
                as_of=at,
                status=verdict.status,
                judged_status=verdict.judged_status or verdict.status,
                progress=verdict.progress,
                expected_progress=verdict.expected_progress,
                latest_value=verdict.latest_value,
                latest_period=verdict.latest_period,
                observation_ids=[rows_used[index][0] for index in verdict.used_indexes],
                forecast_value=forecast.value,
                forecast_low=forecast.low,
                forecast_high=forecast.high,
                forecast_probability=forecast.probability,
                forecast_note=(forecast.reason or "")[:200],
                forecast_model=forecast.model,
                plan_status=verdict.plan_status or "",
                reason=verdict.reason[:400],
            )
        )
    with transaction.atomic():
        Verdict.objects.filter(measure_id__in=ids, is_current=True).update(is_current=False)
        # A measure deleted since it was read (a queued evaluation outlives it) gets no
        # verdict: checked after the write above took the write lock (SQLite), with
        # the measures locked against deletion until commit (PostgreSQL).
        alive = set(
            Measure.objects.select_for_update()
            .filter(pk__in=[v.measure_id for v in new])
            .values_list("id", flat=True)
        )
        new = [v for v in new if v.measure_id in alive]
        Verdict.objects.bulk_create(new, batch_size=1000)
    return len(new)
