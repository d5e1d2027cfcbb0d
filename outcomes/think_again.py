"""The "think again" list of a tree: the places where its bets, measures, metrics and data
products no longer add up, each a reason to look again (issue 5, Roll-up).

- Bets whose initiatives all missed: a bet with at least one initiative, every one of
  them rolled up to ``missed`` (outcomes.selectors.tree_outcomes).
- Initiatives without measures: nothing says whether they delivered.
- Measures without a metric: no numbers can ever reach them.
- Stale or failing metrics: metric_health says ``stale`` or ``unhealthy`` (the last error
  is shown with it). Paused and waiting metrics are left out: someone chose the first,
  and the second has simply not had its first value yet.
- Data products serving no bet, within this tree: products linked to some of this
  tree's nodes, but only to goals, never to a bet or an initiative of it. (A product
  linked to no bet or initiative of any tree at all is an orphan of the catalogue, not of
  one tree; it does not belong on a tree's page.) Links to other trees are not looked
  at, so the page shows nothing a reader of this tree may not see.
- Bets with no data product: no link on the bet itself nor on any of its initiatives.

Killed bets and initiatives, and the work under them, are left out: they were decided.

Everything is read in seven queries whatever the size of the tree; each list is in the
tree's outline order (metrics and products by name).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.utils import timezone

from outcomes.models import Measure, Metric, VerdictStatus
from outcomes.selectors import metric_health, tree_outcomes
from valuetree.models import DataProductLink, Node, NodeKind, NodeStatus, ValueTree
from valuetree.selectors import nodes_below

FLAGGED_HEALTH = ("unhealthy", "stale")


def think_again(tree: ValueTree) -> dict[str, list[dict[str, Any]]]:
    """Every "think again" item of the tree, by category, as plain dicts."""
    nodes = _outline(
        Node.objects.filter(tree=tree)
        .order_by()
        .values("id", "parent_id", "kind", "title", "position", "status")
    )
    by_id = {node["id"]: node for node in nodes}
    # Killed work, and the work under it, is not asked about again: it was decided.
    gone = nodes_below(nodes, (NodeStatus.KILLED,)) | {
        node["id"] for node in nodes if node["status"] == NodeStatus.KILLED
    }
    live = [node for node in nodes if node["id"] not in gone]
    outcomes = tree_outcomes([tree.pk])
    measures = list(
        Measure.objects.filter(node__tree=tree)
        .order_by()
        .values("id", "name", "node_id", "metric_id", "position")
    )
    metrics = list(
        Metric.objects.filter(source__tree=tree)
        .select_related("source")
        .order_by("source__name", "name", "id")
    )
    links = list(
        DataProductLink.objects.filter(node__tree=tree)
        .order_by()
        .values("node_id", "data_product_id", "data_product__name", "data_product__slug")
    )

    initiatives: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for node in live:
        if node["kind"] == NodeKind.INITIATIVE:
            initiatives[node["parent_id"]].append(node)
    bets = [node for node in live if node["kind"] == NodeKind.BET]

    def parent_title(node: dict[str, Any]) -> str:
        parent = by_id.get(node["parent_id"])
        return parent["title"] if parent else ""

    def node_item(node: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "id": node["id"],
            "title": node["title"],
            "parent_title": parent_title(node),
            **extra,
        }

    missed_bets = [
        node_item(bet, initiative_count=len(initiatives[bet["id"]]))
        for bet in bets
        if initiatives[bet["id"]]
        and all(
            outcomes[kid["id"]].status == VerdictStatus.MISSED for kid in initiatives[bet["id"]]
        )
    ]

    measured = {measure["node_id"] for measure in measures}
    unmeasured = [
        node_item(node)
        for node in live
        if node["kind"] == NodeKind.INITIATIVE and node["id"] not in measured
    ]

    order = {node["id"]: index for index, node in enumerate(nodes)}
    measures.sort(key=lambda m: (order[m["node_id"]], m["position"], m["id"]))
    without_metric = [
        {
            "id": measure["id"],
            "name": measure["name"],
            "node_id": measure["node_id"],
            "node_title": by_id[measure["node_id"]]["title"],
        }
        for measure in measures
        if measure["metric_id"] is None and measure["node_id"] not in gone
    ]

    now = timezone.now()
    flagged_metrics = []
    for metric in metrics:
        health = metric_health(metric, now)
        if health in FLAGGED_HEALTH:
            flagged_metrics.append(
                {
                    "id": metric.pk,
                    "name": metric.name,
                    "source_name": metric.source.name,
                    "health": health,
                    "consecutive_failures": metric.consecutive_failures,
                    "last_error": metric.last_error,
                    "last_error_detail": metric.last_error_detail,
                    "last_success_at": metric.last_success_at,
                    "last_failure_at": metric.last_failure_at,
                }
            )

    # A bet is served by a product linked to it or to one of its initiatives.
    kinds_by_product: dict[int, set[str]] = defaultdict(set)
    goals_by_product: dict[int, set[int]] = defaultdict(set)
    products: dict[int, dict[str, Any]] = {}
    served_bets: set[int] = set()
    for link in links:
        node = by_id[link["node_id"]]
        product_id = link["data_product_id"]
        products[product_id] = {
            "id": product_id,
            "name": link["data_product__name"],
            "slug": link["data_product__slug"],
        }
        kinds_by_product[product_id].add(node["kind"])
        if node["kind"] == NodeKind.GOAL:
            goals_by_product[product_id].add(node["id"])
        elif node["kind"] == NodeKind.BET:
            served_bets.add(node["id"])
        else:
            served_bets.add(node["parent_id"])
    goal_only_products = sorted(
        (
            {
                **product,
                "goals": [
                    {"id": goal["id"], "title": goal["title"]}
                    for goal in nodes
                    if goal["id"] in goals_by_product[product_id]
                ],
            }
            for product_id, product in products.items()
            if kinds_by_product[product_id] == {NodeKind.GOAL}
        ),
        key=lambda product: (product["name"], product["id"]),
    )
    bets_without_product = [node_item(bet) for bet in bets if bet["id"] not in served_bets]

    return {
        "missed_bets": missed_bets,
        "initiatives_without_measures": unmeasured,
        "measures_without_metric": without_metric,
        "stale_or_failing_metrics": flagged_metrics,
        "products_serving_no_bet": goal_only_products,
        "bets_without_data_product": bets_without_product,
    }


def _outline(rows: Any) -> list[dict[str, Any]]:
    """The nodes in outline order: each goal, then its bets, each followed by its
    initiatives, siblings by position."""
    children: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        children[row["parent_id"]].append(row)
    for siblings in children.values():
        siblings.sort(key=lambda row: (row["position"], row["id"]))
    ordered: list[dict[str, Any]] = []
    stack = list(reversed(children[None]))
    while stack:
        node = stack.pop()
        ordered.append(node)
        stack.extend(reversed(children[node["id"]]))
    return ordered
