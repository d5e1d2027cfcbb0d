"""Reads of measures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from django.db.models import QuerySet

from outcomes.models import Measure
from valuetree.models import Node
from valuetree.selectors import nodes_for_user

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
