"""Evaluating measures in bulk: observations in, stored verdicts out (DESIGN.md §5).

The arithmetic is in outcomes/verdicts.py; this module only feeds it from the database
and stores what it says. A batch of measures costs a constant number of queries: the
measures, their trees' policies, one probe per metric (its last observation write and
newest row: the key of its fit, see ``_fit_keys``), the history of the metrics whose
key changed (at most FORECAST_MAX_POINTS each), then one UPDATE and one INSERT (a COPY
on PostgreSQL).

Fits are cached per process by that key, so a metric with no new or changed observation
is not refitted (a worker's nightly run and the re-evaluations after edits reuse them).
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.db import connection, transaction
from django.db.models import F, OuterRef, Subquery, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber
from django.utils import timezone

from outcomes import verdicts
from outcomes.models import Measure, Metric, Observation, Verdict, VerdictPolicy
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


def _ids(ids: list[int]) -> list[int] | RawSQL:
    """The right-hand side of an ``__in`` filter on ids: on PostgreSQL one array
    parameter (``IN (SELECT unnest(%s))``) instead of one placeholder per id, whose
    conversion costs the driver more than the query (0.1 s per 2,000 ids); the list
    itself elsewhere."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (list(ids),))
    return ids


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
    """What identifies each metric's observations up to `at`, without reading its
    history: when observations were last written (``Metric.observations_changed_at``,
    stamped by every write through pulling.observations_write) and the newest row up to
    `at` (period, write time, id: one index probe per metric on PostgreSQL). Metrics
    without an observation up to `at` are left out.

    With no write since, the newest period up to `at` fixes which rows count, whatever
    `at` is. Rows written around observations_write (raw SQL) are seen when they are
    newer than the cached newest row; a backfill or correction of older periods must
    go through observations_write to be seen.
    """
    ids = sorted(set(metric_ids))
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        sql = (
            "SELECT m.id, m.observations_changed_at, o.period_start, o.pulled_at, o.id "
            "FROM outcomes_metric m CROSS JOIN LATERAL ("
            "  SELECT id, period_start, pulled_at FROM outcomes_observation"
            "  WHERE metric_id = m.id AND period_start <= %s"
            "  ORDER BY period_start DESC LIMIT 1) AS o "
            "WHERE m.id = ANY(%s)"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [at, ids])
            rows = cursor.fetchall()
    else:
        newest = Observation.objects.filter(
            metric_id=OuterRef("pk"), period_start__lte=at
        ).order_by("-period_start")
        rows = (
            Metric.objects.filter(pk__in=ids)
            .annotate(
                newest_period=Subquery(newest.values("period_start")[:1]),
                newest_pulled=Subquery(newest.values("pulled_at")[:1]),
                newest_id=Subquery(newest.values("id")[:1]),
            )
            .filter(newest_id__isnull=False)
            .values_list(
                "id", "observations_changed_at", "newest_period", "newest_pulled", "newest_id"
            )
        )
    return {metric_id: tuple(key) for metric_id, *key in rows}


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


# How much later than a change an evaluation must have begun to be known to include
# it: room for the clocks of the web server and the worker to differ.
COALESCE_MARGIN = timedelta(seconds=1)


def measures_evaluate(
    *,
    measure_ids: Iterable[int] | None = None,
    at: datetime | None = None,
    changed_at: datetime | None = None,
) -> int:
    """Evaluate measures (default: all) as of `at` (default: now); how many verdicts.

    `changed_at`: when the values these measures read last changed (committed). A
    measure whose current verdict is as of `changed_at` + COALESCE_MARGIN or later is
    skipped: that evaluation began after the change committed, so it read it. This
    coalesces the evaluations queued by a burst of pushes to one metric when the worker
    is behind: the first one evaluates, the ones queued before it began are no-ops.
    """
    at = at or timezone.now()
    ids = list(
        Measure.objects.values_list("id", flat=True)
        if measure_ids is None
        else Measure.objects.filter(pk__in=list(measure_ids)).values_list("id", flat=True)
    )
    if changed_at is not None and ids:
        covered = set(
            Verdict.objects.filter(
                measure_id__in=ids, is_current=True, as_of__gte=changed_at + COALESCE_MARGIN
            ).values_list("measure_id", flat=True)
        )
        ids = [measure_id for measure_id in ids if measure_id not in covered]
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
        Measure.objects.filter(pk__in=_ids(ids))
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
    new: list[tuple[Any, ...]] = []
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
        # Plain tuples in VERDICT_COLUMNS order: a model instance per verdict costs
        # more than its arithmetic.
        new.append(
            (
                measure["id"],
                now,
                at,
                verdict.status,
                verdict.judged_status or verdict.status,
                verdict.progress,
                verdict.expected_progress,
                verdict.latest_value,
                verdict.latest_period,
                [rows_used[index][0] for index in verdict.used_indexes],
                forecast.value,
                forecast.low,
                forecast.high,
                forecast.probability,
                (forecast.reason or "")[:200],
                forecast.model,
                verdict.plan_status or "",
                verdict.reason[:400],
                True,
            )
        )
    with transaction.atomic():
        Verdict.objects.filter(measure_id__in=_ids(ids), is_current=True).update(is_current=False)
        # A measure deleted since it was read (a queued evaluation outlives it) gets no
        # verdict: checked after the write above took the write lock (SQLite), with
        # the measures locked against deletion until commit (PostgreSQL).
        alive = set(
            Measure.objects.select_for_update()
            .filter(pk__in=_ids([row[0] for row in new]))
            .values_list("id", flat=True)
        )
        new = [row for row in new if row[0] in alive]
        _verdicts_insert(new)
    return len(new)


VERDICT_COLUMNS = (
    "measure_id",
    "evaluated_at",
    "as_of",
    "status",
    "judged_status",
    "progress",
    "expected_progress",
    "latest_value",
    "latest_period",
    "observation_ids",
    "forecast_value",
    "forecast_low",
    "forecast_high",
    "forecast_probability",
    "forecast_note",
    "forecast_model",
    "plan_status",
    "reason",
    "is_current",
)
_OBSERVATION_IDS = VERDICT_COLUMNS.index("observation_ids")


def _verdicts_insert(rows: list[tuple[Any, ...]]) -> None:
    """Insert verdict rows (tuples in VERDICT_COLUMNS order): COPY on PostgreSQL (the
    driver's binary adapters, no per-row SQL), bulk_create elsewhere."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        Verdict.objects.bulk_create(
            [Verdict(**dict(zip(VERDICT_COLUMNS, row, strict=True))) for row in rows],
            batch_size=1000,
        )
        return
    sql = f"COPY {Verdict._meta.db_table} ({', '.join(VERDICT_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor:
        # Logged like any query where queries are logged (tests pin query counts).
        logged = cursor.debug_sql(sql) if hasattr(cursor, "debug_sql") else nullcontext()
        with logged, cursor.cursor.copy(sql) as copy:
            for row in rows:
                values = list(row)
                values[_OBSERVATION_IDS] = json.dumps(values[_OBSERVATION_IDS])
                copy.write_row(values)
