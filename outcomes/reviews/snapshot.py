"""The snapshot of a tree at a review, and the changes between two snapshots.

A snapshot is a plain JSON document (``SNAPSHOT_SCHEMA``, version ``SNAPSHOT_VERSION``)::

    {"schema": "valuetree.review-snapshot", "version": 1, "as_of": "…",
     "tree": {"id", "slug", "name", "vision"},
     "nodes": [{"id", "parent", "position", "kind", "title", "status", "owner",
                "hypothesis", "investment_amount", "investment_unit",
                "expected_value_amount", "expected_value_unit", "confidence",
                "weight", "created_at", "outcome": {"status", "score", "expected_value", "realised_value",
                            "investment"}}, …],          # depth-first, outline order
     "measures": [{"id", "node", "name", "unit", "direction", "baseline_value",
                   "baseline_date", "target_value", "target_date", "is_guardrail",
                   "weight", "metric", "verdict": {…} | null}, …],
     "metrics": [{"id", "name", "health", "last_success_at"}, …],
     "headline": {"nodes_by_status", "outcomes_by_status", "measures_by_status",
                  "expected_value", "realised_value", "investment",
                  "expected_by_unit", "realised_by_unit", "investment_by_unit"}}

The headline's amounts are the goals' totals per unit (``*_by_unit``, {unit: amount},
"" for none; killed goals left out, as killed work leaves the roll-up); the plain
figure is that total when there is one unit only, else None: amounts in EUR and
person-weeks are never added. Snapshots published before the ``*_by_unit`` keys have
the plain figures only (``headline_words`` reads both).

Its hash is the sha256 of its canonical JSON (keys sorted, no spaces, UTF-8): the same
rows give the same bytes and so the same hash. Building it costs a constant number of
queries (``snapshot_build``); everything else here is pure Python over documents.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from django.db.models import F

from outcomes.models import Measure, Metric, Verdict
from outcomes.selectors import metric_health, tree_outcomes, unit_totals
from outcomes.verdicts import STATUS_SCORE
from valuetree.models import Node, NodeStatus, ValueTree
from valuetree.outline import format_amount
from valuetree.selectors import nodes_below

SNAPSHOT_SCHEMA = "valuetree.review-snapshot"
SNAPSHOT_VERSION = 1
# Statuses that ask for a decision (DESIGN.md §5): the numbers say it will not get there.
TROUBLE = ("at_risk", "off_track", "missed")
UNHEALTHY = ("stale", "unhealthy")
# What a snapshot keeps of a node (not its description or edit times).
NODE_COLUMNS = (
    "id",
    "parent_id",
    "position",
    "kind",
    "title",
    "status",
    "hypothesis",
    "investment_amount",
    "investment_unit",
    "expected_value_amount",
    "expected_value_unit",
    "confidence",
    "weight",
    "created_at",
)
VERDICT_COLUMNS = (
    "id",
    "measure_id",
    "status",
    "progress",
    "expected_progress",
    "latest_value",
    "latest_period",
    "forecast_value",
    "forecast_low",
    "forecast_high",
    "forecast_probability",
    "as_of",
)


def _plain(value: Any) -> Any:
    """A JSON-ready value: amounts as floats, dates and times as ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """The canonical JSON of a document: sorted keys, compact, UTF-8."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def snapshot_hash(document: dict[str, Any]) -> str:
    """sha256 (hex) of the document's canonical JSON."""
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


def _depth_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    children: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:  # node_rows orders by position within a parent
        children[row["parent_id"]].append(row)
    ordered: list[dict[str, Any]] = []
    stack = list(reversed(children[None]))
    while stack:
        node = stack.pop()
        ordered.append(node)
        stack.extend(reversed(children[node["id"]]))
    return ordered


def snapshot_build(*, tree: ValueTree, as_of: datetime) -> dict[str, Any]:
    """The tree as it stands, as a snapshot document (see the module's docstring).

    Seven queries whatever the tree's size: nodes, measures, current verdicts, metrics,
    and the three of ``tree_outcomes`` (the roll-up). ``as_of`` dates the document and
    judges metric health, so the same rows and the same ``as_of`` give the same bytes.
    """
    outcomes = tree_outcomes([tree.pk])
    nodes = []
    lifecycle: Counter[str] = Counter()
    rolled: Counter[str] = Counter()
    goals_expected: list[dict[str, float]] = []
    goals_realised: list[dict[str, float]] = []
    goals_investment: list[dict[str, float]] = []
    rows = list(
        Node.objects.filter(tree_id=tree.pk)
        .order_by("position", "id")
        .values(*NODE_COLUMNS, owner_name=F("owner__username"))
    )
    # Killed work leaves the outcome counts, the work under it too (its own outcome
    # and the lifecycle counts keep it).
    gone = nodes_below(rows, ("killed",)) | {row["id"] for row in rows if row["status"] == "killed"}
    for row in _depth_first(rows):
        outcome = outcomes.get(row["id"])
        out = {
            "status": outcome.status if outcome else "no_data",
            "score": outcome.score if outcome else None,
            "expected_value": outcome.expected_value if outcome else None,
            "realised_value": outcome.realised_value if outcome else None,
            "investment": outcome.investment if outcome else None,
        }
        nodes.append(
            {
                "id": row["id"],
                "parent": row["parent_id"],
                "position": row["position"],
                "kind": row["kind"],
                "title": row["title"],
                "status": row["status"],
                "owner": row["owner_name"],
                "hypothesis": row["hypothesis"],
                "investment_amount": _plain(row["investment_amount"]),
                "investment_unit": row["investment_unit"],
                "expected_value_amount": _plain(row["expected_value_amount"]),
                "expected_value_unit": row["expected_value_unit"],
                "confidence": row["confidence"],
                "weight": row["weight"],
                "created_at": _plain(row["created_at"]),
                "outcome": out,
            }
        )
        lifecycle[row["status"]] += 1
        if row["kind"] != "goal" and row["id"] not in gone:
            rolled[out["status"]] += 1
        elif outcome is not None and row["status"] != NodeStatus.KILLED:
            goals_expected.append(outcome.expected_by_unit)
            goals_realised.append(outcome.realised_by_unit)
            goals_investment.append(outcome.investment_by_unit)
    verdicts = {
        row["measure_id"]: row
        for row in Verdict.objects.filter(is_current=True, measure__node__tree_id=tree.pk)
        .order_by()
        .values(*VERDICT_COLUMNS)
    }
    measures = []
    by_status: Counter[str] = Counter()
    for row in (
        Measure.objects.filter(node__tree_id=tree.pk)
        .order_by("node_id", "position", "id")
        .values(
            "id",
            "node_id",
            "name",
            "unit",
            "direction",
            "baseline_value",
            "baseline_date",
            "target_value",
            "target_date",
            "is_guardrail",
            "weight",
            "metric_id",
        )
    ):
        verdict = verdicts.get(row["id"])
        if verdict is not None:
            verdict = {
                ("verdict_id" if key == "id" else key): _plain(value)
                for key, value in verdict.items()
                if key != "measure_id"
            }
        by_status[verdict["status"] if verdict else "no_data"] += 1
        measures.append(
            {
                "id": row["id"],
                "node": row["node_id"],
                "name": row["name"],
                "unit": row["unit"],
                "direction": row["direction"],
                "baseline_value": row["baseline_value"],
                "baseline_date": _plain(row["baseline_date"]),
                "target_value": row["target_value"],
                "target_date": _plain(row["target_date"]),
                "is_guardrail": row["is_guardrail"],
                "weight": row["weight"],
                "metric": row["metric_id"],
                "verdict": verdict,
            }
        )
    metrics = [
        {
            "id": metric.pk,
            "name": metric.name,
            "health": metric_health(metric, as_of),
            "last_success_at": _plain(metric.last_success_at),
        }
        for metric in Metric.objects.filter(source__tree_id=tree.pk).order_by("id")
    ]
    return {
        "schema": SNAPSHOT_SCHEMA,
        "version": SNAPSHOT_VERSION,
        "as_of": as_of.isoformat(),
        "tree": {"id": tree.pk, "slug": tree.slug, "name": tree.name, "vision": tree.vision},
        "nodes": nodes,
        "measures": measures,
        "metrics": metrics,
        "headline": {
            "nodes_by_status": dict(sorted(lifecycle.items())),
            "outcomes_by_status": dict(sorted(rolled.items())),
            "measures_by_status": dict(sorted(by_status.items())),
            **_amounts("expected_value", "expected_by_unit", goals_expected),
            **_amounts("realised_value", "realised_by_unit", goals_realised),
            **_amounts("investment", "investment_by_unit", goals_investment),
        },
    }


def _amounts(key: str, by_unit_key: str, parts: list[dict[str, float]]) -> dict[str, Any]:
    """The headline's total per unit and, when there is one unit only, the plain figure."""
    totals = dict(sorted(unit_totals(parts).items()))
    return {key: next(iter(totals.values())) if len(totals) == 1 else None, by_unit_key: totals}


HEADLINE_AMOUNTS = {
    "expected": ("expected_value", "expected_by_unit"),
    "realised": ("realised_value", "realised_by_unit"),
    "investment": ("investment", "investment_by_unit"),
}


def _by_unit(head: dict[str, Any], key: str, by_unit_key: str) -> dict[str, float] | None:
    """A headline amount per unit; an older snapshot's plain figure has no unit (None
    when there is no figure at all)."""
    if by_unit_key in head:
        return head[by_unit_key]
    return None if head.get(key) is None else {"": head[key]}


def headline_words(head: dict[str, Any]) -> dict[str, str]:
    """The headline's amounts in words, per unit: {"expected": "100,000 EUR; 50
    person-weeks", "realised": "—", "investment": "60 person-weeks"}."""
    words = {}
    for name, (key, by_unit_key) in HEADLINE_AMOUNTS.items():
        by_unit = _by_unit(head, key, by_unit_key) or {}
        words[name] = "; ".join(format_amount(v, u) for u, v in sorted(by_unit.items())) or "—"
    return words


def _same_unit(old_head: dict[str, Any], new_head: dict[str, Any]) -> bool:
    """Whether both headlines' realised values are one figure in the same unit (or the
    old one has none yet)."""
    new = _by_unit(new_head, "realised_value", "realised_by_unit")
    old = _by_unit(old_head, "realised_value", "realised_by_unit")
    if not new or len(new) != 1:
        return False
    return not old or (len(old) == 1 and set(old) == set(new))


def realised_since_words(old_head: dict[str, Any] | None, new_head: dict[str, Any]) -> str | None:
    """The value realised between two headlines, per unit ("+4,000 EUR; -2
    person-weeks"); None without an earlier headline or a realised value now."""
    if old_head is None:
        return None
    new = _by_unit(new_head, "realised_value", "realised_by_unit")
    if not new:
        return None
    old = _by_unit(old_head, "realised_value", "realised_by_unit") or {}
    parts = []
    for unit in sorted(set(new) | set(old)):
        since = round(new.get(unit, 0.0) - old.get(unit, 0.0), 6)
        parts.append(("+" if since >= 0 else "") + format_amount(since, unit))
    return "; ".join(parts)


# --- Changes ---------------------------------------------------------------------------

EDITED_FIELDS = ("baseline_value", "baseline_date", "target_value", "target_date")


def _size(before: str | None, after: str | None) -> float | None:
    """How far a status moved: the change of its roll-up score (``STATUS_SCORE``,
    achieved 1 … missed 0), positive for better; None when either is unscored."""
    if before in STATUS_SCORE and after in STATUS_SCORE:
        return round(STATUS_SCORE[after] - STATUS_SCORE[before], 4)
    return None


def _difference(before: float | None, after: float | None) -> float | None:
    if before is None or after is None:
        return None
    return round(after - before, 6)


def _node_ref(node: dict[str, Any]) -> dict[str, Any]:
    return {"id": node["id"], "kind": node["kind"], "title": node["title"]}


def snapshot_changes(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    edits_by: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What changed from ``old`` to ``new`` (two snapshots; ``old`` None: nothing to
    compare with, every node is new).

    Returns ``{"from", "to", "measure_moves", "node_moves", "added", "removed",
    "moved", "killed", "done", "edits", "metrics", "value"}``. A move's ``size`` is the
    change of roll-up score (see ``_size``); ``progress_change`` the change of progress
    (fractions). ``edits`` are baseline/target value or date changes of measures in
    both, with who and when from ``edits_by`` (measure id → ``{"by", "at"}``, the
    audit history's latest change in the period). Pure: no queries.
    """
    old = old or {"as_of": None, "nodes": [], "measures": [], "metrics": [], "headline": {}}
    old_nodes = {n["id"]: n for n in old["nodes"]}
    new_nodes = {n["id"]: n for n in new["nodes"]}
    titles = {key: node["title"] for key, node in [*old_nodes.items(), *new_nodes.items()]}
    old_measures = {m["id"]: m for m in old["measures"]}
    edits_by = edits_by or {}

    measure_moves = []
    edits = []
    for measure in new["measures"]:
        before = old_measures.get(measure["id"])
        if before is None:
            continue
        was = (before["verdict"] or {}).get("status", "no_data")
        now = (measure["verdict"] or {}).get("status", "no_data")
        if was != now:
            measure_moves.append(
                {
                    "id": measure["id"],
                    "name": measure["name"],
                    "node": measure["node"],
                    "node_title": titles.get(measure["node"], ""),
                    "from": was,
                    "to": now,
                    "size": _size(was, now),
                    "progress_change": _difference(
                        (before["verdict"] or {}).get("progress"),
                        (measure["verdict"] or {}).get("progress"),
                    ),
                }
            )
        for field in EDITED_FIELDS:
            if before[field] != measure[field]:
                who = edits_by.get(measure["id"], {})
                edits.append(
                    {
                        "measure": measure["id"],
                        "name": measure["name"],
                        "node": measure["node"],
                        "field": field,
                        "from": before[field],
                        "to": measure[field],
                        "by": who.get("by"),
                        "at": who.get("at"),
                    }
                )

    node_moves, added, moved, killed, done = [], [], [], [], []
    for node in new["nodes"]:
        before = old_nodes.get(node["id"])
        if before is None:
            added.append({**_node_ref(node), "parent": node["parent"]})
            continue
        was, now = before["outcome"]["status"], node["outcome"]["status"]
        if was != now:
            node_moves.append(
                {
                    **_node_ref(node),
                    "from": was,
                    "to": now,
                    "size": _size(was, now),
                    "score_change": _difference(
                        before["outcome"]["score"], node["outcome"]["score"]
                    ),
                }
            )
        if before["parent"] != node["parent"]:
            moved.append(
                {
                    **_node_ref(node),
                    "from_parent": before["parent"],
                    "from_parent_title": titles.get(before["parent"]),
                    "to_parent": node["parent"],
                    "to_parent_title": titles.get(node["parent"]),
                }
            )
        if before["status"] != node["status"]:
            if node["status"] == "killed":
                killed.append({**_node_ref(node), "from": before["status"]})
            elif node["status"] == "done":
                done.append({**_node_ref(node), "from": before["status"]})
    removed = [_node_ref(n) for n in old["nodes"] if n["id"] not in new_nodes]

    old_metrics = {m["id"]: m for m in old["metrics"]}
    metric_changes = []
    for metric in new["metrics"]:
        before = old_metrics.get(metric["id"])
        if before is None:
            continue
        was_bad, is_bad = before["health"] in UNHEALTHY, metric["health"] in UNHEALTHY
        if was_bad != is_bad:
            metric_changes.append(
                {
                    "id": metric["id"],
                    "name": metric["name"],
                    "from": before["health"],
                    "to": metric["health"],
                    "change": "stale" if is_bad else "recovered",
                }
            )

    old_head, new_head = old.get("headline") or {}, new["headline"]
    return {
        "from": old["as_of"],
        "to": new["as_of"],
        "measure_moves": measure_moves,
        "node_moves": node_moves,
        "added": added,
        "removed": removed,
        "moved": moved,
        "killed": killed,
        "done": done,
        "edits": edits,
        "metrics": metric_changes,
        "value": {
            "realised_before": old_head.get("realised_value"),
            "realised_now": new_head["realised_value"],
            # A plain difference only of figures in one and the same unit.
            "realised_since": _difference(
                old_head.get("realised_value") or 0.0, new_head["realised_value"] or 0.0
            )
            if _same_unit(old_head, new_head)
            else None,
            "expected_before": old_head.get("expected_value"),
            "expected_now": new_head["expected_value"],
            "realised_since_words": realised_since_words(old_head, new_head),
            "realised_now_words": headline_words(new_head)["realised"],
            "expected_now_words": headline_words(new_head)["expected"],
        },
    }


def changes_count(changes: dict[str, Any]) -> int:
    """How many things changed (for a one-line summary)."""
    return sum(
        len(changes[key])
        for key in (
            "measure_moves",
            "node_moves",
            "added",
            "removed",
            "moved",
            "killed",
            "done",
            "edits",
            "metrics",
        )
    )


def measure_ids_of(node_id: int, snapshot: dict[str, Any]) -> list[int]:
    """The ids of the measures of a node and of its children, in a snapshot."""
    kids = {n["id"] for n in snapshot["nodes"] if n["parent"] == node_id}
    return [m["id"] for m in snapshot["measures"] if m["node"] == node_id or m["node"] in kids]
