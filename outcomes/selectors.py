"""Reads of measures."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cronsim import CronSim
from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    FilteredRelation,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
)
from django.db.models.functions import Cast
from django.utils import timezone

from outcomes.models import (
    Measure,
    Metric,
    MetricSource,
    Observation,
    PullRun,
    SourceKind,
    Verdict,
    VerdictPolicy,
    VerdictStatus,
)
from valuetree.models import DataProductLink, Node, NodeStatus, OutputPort, ValueTree
from valuetree.selectors import node_rows, nodes_for_user, trees_for_user

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
    "is_value_measure",
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
        "tree", "owner", "output_port__data_product"
    )


def metrics_for_user(user: Any) -> QuerySet[Metric]:
    """The metrics of trees the user may read, each annotated with the user's
    `caller_role` in its tree (who may read the errors' full text: EDIT_ROLES)."""
    if not getattr(user, "is_authenticated", False):
        return Metric.objects.none()  # the schema generator's anonymous fake request
    # The role is null exactly where the tree is not among the user's (trees_for_user):
    # one subquery both filters and annotates.
    role = trees_for_user(user).filter(pk=OuterRef("source__tree_id")).values("caller_role")[:1]
    return (
        Metric.objects.annotate(caller_role=Subquery(role))
        .filter(caller_role__isnull=False)
        .select_related("source", "source__tree")
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
        .select_related("owner", "output_port__data_product")
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


def observations_for_user(user: Any) -> QuerySet[Observation]:
    """Observations of the metrics in the trees ``user`` may read, oldest period first."""
    return Observation.objects.filter(
        metric__source__tree__in=trees_for_user(user).values("pk")
    ).order_by("metric_id", "period_start", "id")


def verdict_evidence_ids(user: Any, verdict_id: int) -> list[int]:
    """The observation ids a verdict (one ``user`` may read) names; [] for any other."""
    ids = (
        Verdict.objects.filter(
            pk=verdict_id, measure__node__tree__in=trees_for_user(user).values("pk")
        )
        .values_list("observation_ids", flat=True)
        .first()
    )
    return [i for i in ids or [] if isinstance(i, int)]


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


# --- Verdicts and roll-ups ------------------------------------------------------------


@dataclass(slots=True)  # one per node of a 10,000-node tree page: no __dict__ each
class NodeOutcome:
    """A node's rolled-up verdict and value (see outcomes/verdicts.py for the rules)."""

    status: str
    score: float | None
    # A node's own figure where it has one, else the sum of its children's: a bet's
    # expected value already covers its initiatives, so the two are never added.
    # Amounts in different units (EUR, person-weeks) are never added either: the
    # ``*_by_unit`` dicts ({unit: amount}, "" for no unit) hold one total per unit, and
    # the plain figure is that total when there is one unit only, else None. Killed
    # children are left out of the sums (their own outcome keeps its figures).
    expected_value: float | None
    realised_value: float | None
    investment: float | None
    expected_by_unit: dict[str, float] = field(default_factory=dict)
    realised_by_unit: dict[str, float] = field(default_factory=dict)
    investment_by_unit: dict[str, float] = field(default_factory=dict)

    @property
    def value_unit(self) -> str | None:
        """The unit of ``expected_value`` (None when there is none or several)."""
        return next(iter(self.expected_by_unit)) if len(self.expected_by_unit) == 1 else None

    @property
    def investment_unit(self) -> str | None:
        return next(iter(self.investment_by_unit)) if len(self.investment_by_unit) == 1 else None


@dataclass
class _Status:
    status: str  # what verdicts.roll_up reads of a measure's verdict


def tree_outcomes(
    tree_ids: Collection[int], *, measure_rows: list[tuple[Any, ...]] | None = None
) -> dict[int, NodeOutcome]:
    """Every node's outcome in these trees, from the current verdicts, in three queries
    (one when ``measure_rows``, the trees' measures with their current verdict's
    ``status`` and ``progress`` as ``_measure_rows`` reads them, are given).

    One pass over the nodes, children before parents, each node reading its children
    from a precomputed list. ``verdicts.roll_up`` is a pure function of its inputs, so
    it runs once per distinct input: most initiatives have the same few (one measure
    on track, or none), which is what keeps a 10,000-node tree fast (bench/editor.py).
    """
    from outcomes import verdicts

    nodes = list(
        Node.objects.filter(tree_id__in=list(tree_ids))
        .order_by()
        .values_list(
            "id",
            "parent_id",
            "kind",
            "status",
            "investment_amount",
            "investment_unit",
            "expected_value_amount",
            "expected_value_unit",
        )
    )
    # Per measure: (node id, is_guardrail, weight, is_value_measure, its current
    # verdict's status and progress, both None without a verdict).
    facts: Iterable[tuple[Any, ...]]
    if measure_rows is not None:
        # Each row carries its own verdict's columns (None without one).
        facts = ((row[1], row[2], row[3], row[4], row[7], row[8]) for row in measure_rows)
    else:
        current = {
            measure_id: (status, progress)
            for measure_id, status, progress in Verdict.objects.filter(
                is_current=True, measure__node__tree_id__in=list(tree_ids)
            )
            .order_by()
            .values_list("measure_id", "status", "progress")
        }
        facts = (
            (node_id, guard, weight, is_value, *current.get(measure_id, (None, None)))
            for measure_id, node_id, guard, weight, is_value in Measure.objects.filter(
                node__tree_id__in=list(tree_ids)
            )
            .order_by()
            .values_list("id", "node_id", "is_guardrail", "weight", "is_value_measure")
        )
    # A node's own measures as (status, is_guardrail, weight): what roll_up reads.
    # Tuples of tuples of plain values, not lists: the garbage collector stops tracking
    # those, and a 10,000-node page keeps fewer objects for it to walk.
    own: dict[int, tuple[tuple[str, bool, float], ...]] = {}
    delivered: dict[int, float] = {}
    for node_id, guard, weight, is_value, status, progress in facts:
        own[node_id] = (*own.get(node_id, ()), (status or "no_data", guard, weight))
        if is_value and progress is not None:
            delivered[node_id] = progress
    children: dict[int, list[int]] = defaultdict(list)
    by_depth: dict[str, list[tuple[Any, ...]]] = {"initiative": [], "bet": [], "goal": []}
    killed: set[int] = set()
    for node in nodes:
        if node[1] is not None:
            children[node[1]].append(node[0])
        if node[3] == NodeStatus.KILLED:
            killed.add(node[0])
        by_depth[node[2]].append(node)
    rolled: dict[tuple[Any, ...], verdicts.NodeScore] = {}
    outcomes: dict[int, NodeOutcome] = {}
    for node in (*by_depth["initiative"], *by_depth["bet"], *by_depth["goal"]):
        (node_id, _, _, _, investment, investment_unit, expected, expected_unit) = node
        # Killed work keeps its own last verdict and figures but no longer counts for
        # its parent, neither in the status roll-up nor in the value and investment
        # totals (issue 11 §5: "killed nodes leave the roll-up"); done work counts with
        # its final verdict and figures.
        kids = [outcomes[kid_id] for kid_id in children.get(node_id, ()) if kid_id not in killed]
        counted = tuple((kid.status, kid.score) for kid in kids)
        mine = own.get(node_id, ())
        score = rolled.get((counted, mine))
        if score is None:
            score = rolled[counted, mine] = verdicts.roll_up(
                [verdicts.NodeScore(status, kid_score) for status, kid_score in counted],
                [(_Status(status), _RollUpSpec(guard, weight)) for status, guard, weight in mine],
            )
        if expected is not None:
            expected = float(expected)
            unit = expected_unit or ""
            fraction = delivered.get(node_id)
            expected_by = {unit: expected}
            realised_by = {} if fraction is None else {unit: expected * fraction}
        elif kids:
            expected_by = unit_totals(kid.expected_by_unit for kid in kids)
            realised_by = unit_totals(kid.realised_by_unit for kid in kids)
        else:
            expected_by, realised_by = {}, {}
        if investment is not None:
            investment_by = {investment_unit or "": float(investment)}
        elif kids:
            investment_by = unit_totals(kid.investment_by_unit for kid in kids)
        else:
            investment_by = {}
        outcomes[node_id] = NodeOutcome(
            score.status,
            score.score,
            _single(expected_by),
            _single(realised_by) if len(expected_by) <= 1 else None,
            _single(investment_by),
            expected_by,
            realised_by,
            investment_by,
        )
    return outcomes


def unit_totals(parts: Iterable[dict[str, float]]) -> dict[str, float]:
    """Per-unit sums of per-unit amounts: {"EUR": 10} + {"EUR": 5, "h": 2} → {"EUR": 15, "h": 2}."""
    totals: dict[str, float] = {}
    for part in parts:
        for unit, amount in part.items():
            totals[unit] = totals.get(unit, 0.0) + amount
    return totals


def _single(by_unit: dict[str, float]) -> float | None:
    """The amount when there is exactly one unit; None when none or several."""
    return next(iter(by_unit.values())) if len(by_unit) == 1 else None


@dataclass
class _RollUpSpec:
    is_guardrail: bool
    weight: float


def measure_verdicts(measure: Measure) -> QuerySet[Verdict]:
    """A measure's verdict history, newest first."""
    return (
        Verdict.objects.filter(measure=measure)
        .select_related("measure")
        .order_by("-evaluated_at", "-id")
    )


def node_statuses(tree_id: int) -> dict[int, tuple[str, str]]:
    """The verdict slot of every node of a tree: (status, label), from the roll-up."""
    return _node_statuses(tree_outcomes([tree_id]))


def _node_statuses(outcomes: dict[int, NodeOutcome]) -> dict[int, tuple[str, str]]:
    # Most nodes share a few (status, score) pairs: one (immutable) slot per pair, not
    # one per node, which spares the tree page 10,000 labels and tuples.
    slots: dict[tuple[str, float | None], tuple[str, str]] = {}
    statuses = {}
    for node_id, outcome in outcomes.items():
        key = (outcome.status, outcome.score)
        slot = slots.get(key)
        if slot is None:
            label = _status_label(outcome.status)
            if outcome.score is not None:
                label += f" (score {outcome.score:.2f})"
            slot = slots[key] = (outcome.status, label)
        statuses[node_id] = slot
    return statuses


_STATE_COLUMNS = ("status", "progress", "expected_progress", "latest_value")


def _measure_rows(
    tree_id: int, measure_ids: Collection[int] | None = None
) -> list[tuple[Any, ...]]:
    """The tree's measures joined to their current verdict and their metric, in one
    query, as tuples (not dicts: the tree page reads 10,000 of them, and a dict a row
    was a third of the objects the page made, so of its garbage-collection time):
    ``(id, node_id, is_guardrail, weight, is_value_measure, metric_id, points, status,
    progress, expected_progress, latest_value[, reason])`` — ``points`` is
    ``Metric.recent_values`` as JSON text (None without a metric); the verdict's
    columns are None without a verdict, and ``reason`` is there where verdicts store
    one."""
    measures = Measure.objects.filter(node__tree_id=tree_id)
    if measure_ids is not None:
        measures = measures.filter(pk__in=list(measure_ids))
    columns = list(_STATE_COLUMNS)
    # A verdict's reason in words, where verdicts store one (issue 11).
    if any(f.name == "reason" for f in Verdict._meta.get_fields()):
        columns.append("reason")
    own = ("id", "node_id", "is_guardrail", "weight", "is_value_measure", "metric_id")
    return list(
        measures.order_by()
        .annotate(
            current=FilteredRelation("verdicts", condition=Q(verdicts__is_current=True)),
            # As JSON text, decoded by _states: a row of plain values is not tracked by
            # the garbage collector, a row holding a list is (10,000 rows a page).
            points=Cast("metric__recent_values", TextField()),
        )
        .values_list(*own, "points", *(f"current__{c}" for c in columns))
    )


def _states(rows: list[tuple[Any, ...]]) -> dict[int, dict[str, Any]]:
    states = {}
    for row in rows:
        measure_id, metric_id = row[0], row[5]
        points, verdict_status, progress, expected, latest = row[6:11]
        status = verdict_status or VerdictStatus.NO_DATA
        reason = row[11] if len(row) > 11 else None
        states[measure_id] = {
            "status": status,
            "label": _status_label(status),
            "reason": reason or _reason(verdict_status, status, progress, expected),
            "latest_value": latest,
            "progress": progress,
            "expected_progress": expected,
            "metric_id": metric_id,
            "points": (json.loads(points) if points else None) or [],
        }
    return states


def measure_states(
    tree_id: int, measure_ids: Collection[int] | None = None
) -> dict[int, dict[str, Any]]:
    """How each measure of a tree is doing, for the outline cards and the node page:
    ``{measure id: {"status", "label", "reason", "latest_value", "progress",
    "expected_progress", "metric_id", "points"}}``. ``points`` are the metric's newest
    values (``Metric.recent_values``, oldest first, in the measure's unit);
    ``progress`` a fraction in [0, 1] (DESIGN.md §5) or None. A measure with no current
    verdict is ``no_data``. One query whatever the tree's size.
    """
    return _states(_measure_rows(tree_id, measure_ids))


def tree_view_states(
    tree_id: int,
) -> tuple[dict[int, tuple[str, str]], dict[int, dict[str, Any]]]:
    """``node_statuses`` and ``measure_states`` of a tree together, from one read of its
    measures with their verdicts and one of its nodes (two queries instead of five):
    what the tree page draws."""
    rows = _measure_rows(tree_id)
    return _node_statuses(tree_outcomes([tree_id], measure_rows=rows)), _states(rows)


def _reason(
    verdict_status: str | None, status: str, progress: float | None, expected: float | None
) -> str:
    """The verdict's numbers in words, for verdicts that do not carry a reason
    (``verdict_status`` None: the measure has no verdict)."""
    if verdict_status is None:
        return "No verdict yet: connect a metric or check in a value."
    if status == VerdictStatus.NO_DATA:
        return "No values yet."
    parts = []
    if progress is not None:
        parts.append(f"{progress:.0%} of the way to the target")
    if expected is not None:
        parts.append(f"{expected:.0%} planned by now")
    text = ", ".join(parts) or _status_label(status)
    if status == VerdictStatus.STALE:
        text += "; the newest value is older than the metric's expected frequency"
    return text[0].upper() + text[1:] + "."


# A dict, not VerdictStatus(status): the tree page looks up a label per node and per
# measure (20,000 at 10,000 nodes), and building an enum member by value costs more.
_STATUS_LABELS: dict[str, str] = {str(value): str(label) for value, label in VerdictStatus.choices}


def _status_label(status: str) -> str:
    """A status in words; one this code does not know yet is shown as written."""
    label = _STATUS_LABELS.get(status)
    return label if label is not None else status.replace("_", " ").capitalize()


def verdict_policy_get(tree: ValueTree) -> VerdictPolicy:
    """The tree's tolerance bands: as saved, or the defaults (unsaved)."""
    return VerdictPolicy.objects.filter(tree=tree).first() or VerdictPolicy(tree=tree)


def current_verdicts_for_user(user: Any) -> QuerySet[Verdict]:
    """The current verdict of every measure in the trees the user may read."""
    return (
        Verdict.objects.filter(
            is_current=True, measure__node__tree__in=trees_for_user(user).values("pk")
        )
        .select_related("measure__node__tree")
        .order_by("measure__node__tree__slug", "measure__node_id", "measure__position", "id")
    )


def tree_outcome_rows(tree: ValueTree) -> list[dict[str, Any]]:
    """Every node's rolled-up outcome, goals first then depth-first (the outline's order)."""
    outcomes = tree_outcomes([tree.pk])
    children: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    for row in node_rows(tree_id=tree.pk):  # ordered by position within a parent
        children[row["parent_id"]].append(row)
    result: list[dict[str, Any]] = []
    stack = list(reversed(children[None]))
    while stack:
        node = stack.pop()
        outcome = outcomes[node["id"]]
        result.append(
            {
                "node": node["id"],
                "parent": node["parent_id"],
                "kind": node["kind"],
                "title": node["title"],
                "status": outcome.status,
                "score": outcome.score,
                "expected_value": outcome.expected_value,
                "realised_value": outcome.realised_value,
                "investment": outcome.investment,
            }
        )
        stack.extend(reversed(children[node["id"]]))
    return result


def output_ports_with_servers(tree: ValueTree) -> list[OutputPort]:
    """The output ports whose data contract lists servers, to make SQL sources from: the
    ports of products linked to a node of the tree first, then the others, each by
    product and port name. Each port carries `is_linked` and `servers` (the contract's
    server objects). One query."""
    linked = DataProductLink.objects.filter(data_product=OuterRef("data_product"), node__tree=tree)
    ports = (
        OutputPort.objects.filter(contract__isnull=False)
        .select_related("data_product", "contract")
        .annotate(is_linked=Exists(linked))
        .order_by("-is_linked", "data_product__name", "name")
    )
    found = []
    for port in ports:
        servers = port.contract.servers if isinstance(port.contract.servers, list) else []
        port.servers = [server for server in servers if isinstance(server, dict)]
        if port.servers:
            found.append(port)
    return found


def metrics_late(*, due_before: datetime) -> tuple[int, datetime | None]:
    """Pulled metrics whose pull is late: `(how many, since when the oldest)`.

    Late means due before `due_before` and not claimed (beat has not queued it), or
    claimed before `due_before` and not finished (no worker took it, or it hangs).
    Push metrics are never late: values arrive when their sender sends them.
    Two aggregate queries; for /readyz.
    """
    pulled = Metric.objects.filter(is_active=True).exclude(source__kind=SourceKind.PUSH)
    unclaimed = pulled.filter(claimed_at__isnull=True, next_pull_at__lt=due_before).aggregate(
        count=Count("id"), oldest=Min("next_pull_at")
    )
    claimed = pulled.filter(claimed_at__lt=due_before).aggregate(
        count=Count("id"), oldest=Min("claimed_at")
    )
    oldest = [at for at in (unclaimed["oldest"], claimed["oldest"]) if at is not None]
    return unclaimed["count"] + claimed["count"], min(oldest, default=None)
