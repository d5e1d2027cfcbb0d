"""Reads for value reviews, decisions and learnings.

``review_data`` is the one read of a review that every surface renders (the page, the
API, the JSON and Markdown exports, and the scheduled delivery): a plain dict. A
published review is read from its snapshot only; a draft from the live tree, in a
constant number of queries whatever the tree's size.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Max, Prefetch, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from outcomes.models import Observation
from outcomes.reviews.models import (
    Decision,
    Evidence,
    Learning,
    ReviewPolicy,
    ReviewStatus,
    ValueReview,
)
from outcomes.reviews.snapshot import (
    TROUBLE,
    changes_count,
    measure_ids_of,
    snapshot_build,
    snapshot_changes,
)
from outcomes.selectors import measure_history
from valuetree.models import ValueTree
from valuetree.selectors import nodes_below, search_query, trees_for_user

DEFAULT_DECISION_DUE_DAYS = 90
CHART_MAX_OBSERVATIONS = 200


def last_published(*, tree_id: int) -> ValueReview | None:
    """The newest published review of a tree, snapshot included (one query)."""
    return (
        ValueReview.objects.filter(tree_id=tree_id, status=ReviewStatus.PUBLISHED)
        .order_by("-as_of", "-id")
        .first()
    )


def previous_snapshot(review: ValueReview) -> dict[str, Any] | None:
    """The snapshot the review compares with: its previous review's (one query)."""
    if review.previous_id is None:
        return None
    return (
        ValueReview.objects.filter(pk=review.previous_id).values_list("snapshot", flat=True).first()
    )


def edits_by(*, tree_id: int, since: str | None, until: str | None) -> dict[int, dict[str, Any]]:
    """Who last changed each measure of the tree in (since, until], from the audit
    history: measure id → ``{"by": username or None, "at": ISO time}``. One query."""
    records = measure_history(tree_id).filter(history_type="~")
    if since:
        records = records.filter(history_date__gt=datetime.fromisoformat(since))
    if until:
        records = records.filter(history_date__lte=datetime.fromisoformat(until))
    found: dict[int, dict[str, Any]] = {}
    for row in records.order_by("history_date", "history_id").values(
        "id", "history_user__username", "history_date"
    ):
        found[row["id"]] = {
            "by": row["history_user__username"],
            "at": row["history_date"].isoformat(),
        }
    return found


def changes_between(
    *, tree_id: int, old: dict[str, Any] | None, new: dict[str, Any]
) -> dict[str, Any]:
    """``snapshot_changes`` with who edited what from the audit history (one query,
    only when a baseline or target changed)."""
    changes = snapshot_changes(old, new)
    if changes["edits"]:
        who = edits_by(tree_id=tree_id, since=old["as_of"] if old else None, until=new["as_of"])
        for edit in changes["edits"]:
            found = who.get(edit["measure"], {})
            edit["by"], edit["at"] = found.get("by"), found.get("at")
    return changes


# --- Lists -----------------------------------------------------------------------------


def reviews_for_user(user: Any) -> QuerySet[ValueReview]:
    return ValueReview.objects.filter(tree__in=trees_for_user(user).values("pk"))


def review_list(*, tree: ValueTree) -> list[dict[str, Any]]:
    """A tree's reviews, newest first, without their snapshots: one query."""
    return list(
        ValueReview.objects.filter(tree=tree)
        .order_by("-created_at", "-id")
        .values(
            "id",
            "title",
            "status",
            "period_start",
            "as_of",
            "created_at",
            "published_at",
            "snapshot_hash",
            "is_snapshot",
            "previous_id",
            "created_by__username",
            "published_by__username",
        )
    )


def _evidence_prefetch() -> Prefetch:
    return Prefetch(
        "evidence",
        queryset=Evidence.objects.select_related("verdict", "observation", "pull_run").order_by(
            "id"
        ),
    )


def decisions(
    *,
    tree_id: int,
    node_ids: list[int] | None = None,
    review_id: int | None = None,
    pk: int | None = None,
) -> list[Decision]:
    """Decisions of a tree (or of some nodes, of one review, or the one ``pk``), newest
    first, with their evidence, author and pivot target: two queries."""
    rows = Decision.objects.filter(tree_id=tree_id)
    if pk is not None:
        rows = rows.filter(pk=pk)
    if node_ids is not None:
        rows = rows.filter(node_id__in=node_ids)
    if review_id is not None:
        rows = rows.filter(review_id=review_id)
    return list(
        rows.select_related("by", "pivot_to", "review", "node")
        .prefetch_related(_evidence_prefetch())
        .order_by("-at", "-id")
    )


def learnings(
    *,
    tree_ids: Any,
    query: str = "",
    kind: str = "",
    node_id: int | None = None,
    review_id: int | None = None,
) -> QuerySet[Learning]:
    """Learnings of some trees, newest first, filtered by words of ``query`` (every
    word, anywhere in the text or the node's title; the query taken as every search box
    takes it: ``valuetree.selectors.search_query``), kind, node or review."""
    rows = Learning.objects.filter(tree_id__in=tree_ids)
    for word in search_query(query).split():
        rows = rows.filter(Q(text__icontains=word) | Q(node__title__icontains=word))
    if kind:
        rows = rows.filter(kind=kind)
    if node_id is not None:
        rows = rows.filter(node_id=node_id)
    if review_id is not None:
        rows = rows.filter(review_id=review_id)
    return (
        rows.select_related("by", "node", "review", "tree")
        .prefetch_related(_evidence_prefetch())
        .order_by("-at", "-id")
    )


def decision_due_days(tree_id: int) -> int:
    days = (
        ReviewPolicy.objects.filter(tree_id=tree_id)
        .values_list("decision_due_days", flat=True)
        .first()
    )
    return days or DEFAULT_DECISION_DUE_DAYS


# --- One review ------------------------------------------------------------------------


def _observations_for(metric_ids: set[int], limit: int) -> dict[int, list[tuple[str, float]]]:
    """The newest ``limit`` observations of each metric, oldest first: one query."""
    if not metric_ids:
        return {}
    rows = (
        Observation.objects.filter(metric_id__in=metric_ids)
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("metric_id")], order_by=F("period_start").desc()
            )
        )
        .filter(rank__lte=limit)
        .values_list("metric_id", "period_start", "value")
    )
    grouped: dict[int, list[tuple[str, float]]] = defaultdict(list)
    for metric_id, period, value in rows:
        grouped[metric_id].append((period.strftime("%Y-%m-%d %H:%M:%S"), value))
    for series in grouped.values():
        series.sort()
    return grouped


def needing_decision(
    snapshot: dict[str, Any],
    last_decided: dict[int, datetime],
    due_days: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """The bets and initiatives of ``snapshot`` that need a decision at ``now``,
    worst outcome first: ``[{"node", "reasons", "last_decided"}]``.

    ``node`` is the snapshot's node row; ``reasons`` are short phrases ("off track",
    "metric stale", "no decision for 120 days"); ``last_decided`` is the node's newest
    decision time from ``last_decided`` ({node id: aware datetime}) or None. The rule
    (issue 12): a live bet or initiative (not killed or done, nor under one that is)
    whose outcome is in trouble, whose measures'
    metrics are stale or unhealthy, or that has gone ``due_days`` without a decision.
    Pure: no queries."""
    stale_nodes = {
        m["node"] for m in snapshot["measures"] if (m["verdict"] or {}).get("status") == "stale"
    }
    unhealthy_metrics = {
        m["id"] for m in snapshot["metrics"] if m["health"] in ("stale", "unhealthy")
    }
    stale_nodes |= {m["node"] for m in snapshot["measures"] if m["metric"] in unhealthy_metrics}
    due = timedelta(days=due_days)
    order = {status: index for index, status in enumerate(("missed", "off_track", "at_risk"))}
    # The decision that killed or finished a bet covers the initiatives that test it.
    settled = nodes_below(snapshot["nodes"], ("killed", "done"))
    items = []
    for node in snapshot["nodes"]:
        if node["kind"] == "goal" or node["status"] in ("killed", "done") or node["id"] in settled:
            continue
        reasons = []
        status = node["outcome"]["status"]
        if status in TROUBLE:
            reasons.append(status.replace("_", " "))
        if node["id"] in stale_nodes:
            reasons.append("metric stale")
        decided = last_decided.get(node["id"])
        since = decided or datetime.fromisoformat(node["created_at"])
        if now - since > due:
            days = (now - since).days
            reasons.append(
                f"no decision for {days} days" if decided else f"no decision in {days} days"
            )
        if reasons:
            items.append({"node": node, "reasons": reasons, "last_decided": decided})
    items.sort(key=lambda item: order.get(item["node"]["outcome"]["status"], 9))
    return items


def last_decided(tree: ValueTree) -> dict[int, datetime]:
    """{node id: time of its newest decision} for the tree's nodes (one query)."""
    return dict(
        Decision.objects.filter(tree=tree, node__isnull=False)
        .values_list("node_id")
        .annotate(latest=Max("at"))
        .order_by()
    )


def items_needing_decision(tree: ValueTree, *, now: datetime | None = None) -> list[dict]:
    """The tree's bets and initiatives that need a decision now, from the live tree,
    by the same rule as a draft review's "decisions needed" (``needing_decision``):
    ``[{"node", "reasons", "last_decided"}]``; ``node["owner"]`` is the owner's
    username or None. A constant number of queries (the live snapshot, the latest
    decisions, the tree's policy). Used by the review reminders (issue 13)."""
    now = now or timezone.now()
    snapshot = snapshot_build(tree=tree, as_of=now)
    return needing_decision(snapshot, last_decided(tree), decision_due_days(tree.pk), now)


def review_data(review: ValueReview, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything a review shows, as a dict (every surface renders this).

    Published: ``snapshot`` and ``changes`` as frozen, plus the review's decisions,
    learnings and amendments (three queries). Draft or held: a live snapshot of the
    tree, the changes since the previous review, the items needing a decision (with
    the measures and chart data of each), the follow-up of the previous review's
    decisions, the learnings: a constant number of queries whatever the tree's size.

    Keys: ``review``, ``tree``, ``is_published``, ``as_of``, ``snapshot``, ``changes``,
    ``changes_count``, ``previous`` (``{"id", "title", "as_of", "headline"}`` or None),
    ``decisions``, ``learnings``, ``amendments``, ``needed``, ``followup``,
    ``stale_metrics``.
    """
    tree = review.tree
    published = review.status == ReviewStatus.PUBLISHED
    previous_row = None
    if review.previous_id is not None:
        # A published review needs only the previous headline (its follow-up is frozen);
        # a draft compares with the whole previous snapshot.
        columns = ("snapshot__headline",) if published else ("snapshot",)
        previous_row = (
            ValueReview.objects.filter(pk=review.previous_id)
            .values("id", "title", "as_of", *columns)
            .first()
        )
    previous_snapshot_doc = previous_row.get("snapshot") if previous_row else None
    now = now or timezone.now()
    if published:
        snapshot, changes = review.snapshot, review.changes
        needed: list[dict[str, Any]] = []
        as_of = review.as_of
        followup = changes.get("followup", [])
    else:
        as_of = now
        snapshot = snapshot_build(tree=tree, as_of=now)
        changes = changes_between(tree_id=tree.pk, old=previous_snapshot_doc, new=snapshot)
        needed = needing_decision(snapshot, last_decided(tree), decision_due_days(tree.pk), now)
        basis_id, basis = followup_basis(
            tree_id=tree.pk, previous_id=review.previous_id, previous=previous_snapshot_doc
        )
        followup = followup_rows(
            tree_id=tree.pk, previous_id=basis_id, previous=basis, snapshot=snapshot
        )
    review_decisions = decisions(tree_id=tree.pk, review_id=review.pk)
    decided_here = {d.node_id for d in review_decisions}
    if needed:
        # Chart data for the items: observations of their measures' metrics and the
        # earlier decisions on them and their parents (two queries).
        shown = {m["id"] for item in needed for m in _item_measures(item, snapshot)}
        metric_ids = {m["metric"] for m in snapshot["measures"] if m["id"] in shown and m["metric"]}
        series = _observations_for(metric_ids, CHART_MAX_OBSERVATIONS)
        node_ids = {item["node"]["id"] for item in needed} | {
            item["node"]["parent"] for item in needed if item["node"]["parent"]
        }
        markers: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in (
            Decision.objects.filter(node_id__in=node_ids)
            .order_by("at", "id")
            .values("node_id", "node_title", "kind", "at")
        ):
            markers[row["node_id"]].append(row)
        for item in needed:
            node = item["node"]
            item["decided_here"] = node["id"] in decided_here
            item["measures"] = [
                {
                    **m,
                    "points": series.get(m["metric"], []) if m["metric"] else [],
                    "decisions": markers[node["id"]] + markers.get(node["parent"], []),
                }
                for m in _item_measures(item, snapshot)
            ]
    stale_metrics = [m for m in snapshot["metrics"] if m["health"] in ("stale", "unhealthy")]
    return {
        "review": review,
        "tree": tree,
        "is_published": review.status == ReviewStatus.PUBLISHED,
        "as_of": as_of,
        "snapshot": snapshot,
        "changes": changes,
        "changes_count": changes_count(changes),
        "previous": (
            {
                "id": previous_row["id"],
                "title": previous_row["title"],
                "as_of": previous_row["as_of"],
                "headline": (
                    previous_row["snapshot__headline"]
                    if published
                    else (previous_snapshot_doc or {}).get("headline")
                )
                or {},
            }
            if previous_row
            else None
        ),
        "decisions": review_decisions,
        "learnings": list(learnings(tree_ids=[tree.pk], review_id=review.pk)),
        "amendments": list(review.amendments.select_related("by").order_by("at", "id")),
        "attendees": list(review.attendees.order_by("username").values_list("username", flat=True)),
        "needed": needed,
        "followup": followup,
        "stale_metrics": stale_metrics,
    }


def followup_basis(
    *, tree_id: int, previous_id: int | None, previous: dict[str, Any] | None
) -> tuple[int | None, dict[str, Any] | None]:
    """Whose decisions a review follows up, and the snapshot they were taken against:
    ``(review id, snapshot)``, ``(None, None)`` for the tree's first review.

    The previous review's, unless that was a scheduled snapshot (``is_snapshot``: it
    holds no decisions) — then the newest published people's review before it, so a
    quarterly meeting still follows up its own last decisions however many weekly
    reports went out between. ``previous`` is the previous review's snapshot, already
    read by the caller. One query; two when a snapshot lies between.
    """
    if previous_id is None:
        return None, None
    previous_as_of = ValueReview.objects.filter(pk=previous_id).values("as_of")[:1]
    basis = (
        ValueReview.objects.filter(
            tree_id=tree_id,
            status=ReviewStatus.PUBLISHED,
            is_snapshot=False,
            as_of__lte=Subquery(previous_as_of),
        )
        .order_by("-as_of", "-id")
        .values_list("id", flat=True)
        .first()
    )
    if basis is None or basis == previous_id:
        return basis, previous if basis == previous_id else None
    snapshot = ValueReview.objects.filter(pk=basis).values_list("snapshot", flat=True).first()
    return basis, snapshot


def followup_rows(
    *,
    tree_id: int,
    previous_id: int | None,
    previous: dict[str, Any] | None,
    snapshot: dict[str, Any],
) -> list[dict[str, Any]]:
    """Did the previous review's decisions move their measures? For each of them:
    ``{"decision", "kind", "node", "node_title", "rationale", "moves": [{"name", "from",
    "to"}], "follow_node": {"id", "title", "status"} | None}`` (a pivot is followed on
    its new node). Two queries; frozen into a published review's changes."""
    if previous_id is None or previous is None:
        return []
    before = {m["id"]: m for m in previous.get("measures", [])}
    now_measures = {m["id"]: m for m in snapshot["measures"]}
    nodes_now = {n["id"]: n for n in snapshot["nodes"]}
    rows = []
    for decision in decisions(tree_id=tree_id, review_id=previous_id):
        follow = decision.pivot_to_id if decision.kind == "pivot" else decision.node_id
        moves = []
        for measure_id in measure_ids_of(decision.node_id or 0, previous):
            was = (before[measure_id]["verdict"] or {}).get("status", "no_data")
            now = (now_measures.get(measure_id, {}).get("verdict") or {}).get("status", "gone")
            moves.append({"name": before[measure_id]["name"], "from": was, "to": now})
        node = nodes_now.get(follow)
        rows.append(
            {
                "decision": decision.pk,
                "kind": decision.kind,
                "node": decision.node_id,
                "node_title": decision.node_title,
                "rationale": decision.rationale,
                "moves": moves,
                "follow_node": (
                    {
                        "id": node["id"],
                        "title": node["title"],
                        "status": node["outcome"]["status"],
                    }
                    if node
                    else None
                ),
            }
        )
    return rows


def _item_measures(item: dict[str, Any], snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """An item's own measures, or its children's when it has none (a bet)."""
    node_id = item["node"]["id"]
    own = [m for m in snapshot["measures"] if m["node"] == node_id]
    if own:
        return own
    ids = set(measure_ids_of(node_id, snapshot))
    return [m for m in snapshot["measures"] if m["id"] in ids]


def compare(first: ValueReview, second: ValueReview) -> dict[str, Any]:
    """What changed from the earlier to the later of two published reviews of a tree."""
    earlier, later = sorted([first, second], key=lambda r: (r.as_of, r.pk))
    return {
        "from": earlier,
        "to": later,
        "changes": changes_between(tree_id=later.tree_id, old=earlier.snapshot, new=later.snapshot),
    }


def snapshot_document(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot as the nested tree document the outline renders (read-only):
    ``{"slug", "name", "vision", "goals": [...]}`` with measures and children."""
    by_id: dict[int, dict[str, Any]] = {}
    goals: list[dict[str, Any]] = []
    measures: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for measure in snapshot["measures"]:
        measures[measure["node"]].append(measure)
    for node in snapshot["nodes"]:  # depth-first: a parent comes before its children
        row = {**node, "measures": measures.get(node["id"], []), "children": []}
        by_id[node["id"]] = row
        if node["parent"] is None:
            goals.append(row)
        elif node["parent"] in by_id:
            by_id[node["parent"]]["children"].append(row)
    return {**snapshot["tree"], "goals": goals}


def snapshot_statuses(snapshot: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """Each node's verdict slot as it stood: (status, label)."""
    return {
        node["id"]: (
            node["outcome"]["status"],
            node["outcome"]["status"].replace("_", " ").capitalize(),
        )
        for node in snapshot["nodes"]
    }
