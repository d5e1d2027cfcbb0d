"""Decisions and learnings in the tree document (export and import, round-trip exact).

On each node::

    decisions:                     # oldest first
      - kind: pivot
        rationale: …
        by: alice                  # a username, or null
        at: "2026-04-01T09:00:00+00:00"
        previous_status: active
        pivot_to: goals[0].children[1].children[2]   # the new hypothesis, by its path
        supersedes: null           # or the index of an earlier decision on this node
        evidence: [{kind, url, title, quote, summary}]
    learnings: [{kind, text, by, at, evidence}]

and ``learnings`` at the top for the tree's learnings of no node. Evidence that pointed
at a verdict, observation or pull run keeps its kind and summary (ids mean nothing in
another installation). Reviews are not part of the tree document.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.core.exceptions import ValidationError
from rest_framework import serializers

from outcomes.reviews.models import (
    Decision,
    DecisionKind,
    Evidence,
    EvidenceKind,
    Learning,
    LearningKind,
)
from valuetree import sections


class EvidenceItemSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EvidenceKind.choices)
    url = serializers.URLField(max_length=500, allow_blank=True, required=False, default="")
    title = serializers.CharField(max_length=300, allow_blank=True, required=False, default="")
    quote = serializers.CharField(allow_blank=True, required=False, default="")
    summary = serializers.CharField(max_length=300, allow_blank=True, required=False, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == EvidenceKind.LINK and not attrs["url"]:
            raise serializers.ValidationError({"url": "An outside link needs its URL."})
        return attrs


class DecisionItemSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=DecisionKind.choices)
    rationale = serializers.CharField()
    by = serializers.CharField(allow_null=True, required=False, default=None)
    at = serializers.DateTimeField()
    previous_status = serializers.CharField(
        max_length=10, allow_blank=True, required=False, default=""
    )
    pivot_to = serializers.CharField(allow_null=True, required=False, default=None)
    supersedes = serializers.IntegerField(
        min_value=0, allow_null=True, required=False, default=None
    )
    evidence = EvidenceItemSerializer(many=True, required=False, default=list)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["pivot_to"] and attrs["kind"] != DecisionKind.PIVOT:
            raise serializers.ValidationError({"pivot_to": "Only a pivot names a new node."})
        return attrs


class LearningItemSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=LearningKind.choices)
    text = serializers.CharField()
    by = serializers.CharField(allow_null=True, required=False, default=None)
    at = serializers.DateTimeField()
    evidence = EvidenceItemSerializer(many=True, required=False, default=list)


def _evidence_by(owner_field: str, owner_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = (
        Evidence.objects.filter(**{f"{owner_field}__in": owner_ids})
        .order_by("id")
        .values(owner_field, "kind", "url", "title", "quote", "summary")
    )
    for row in rows:
        grouped[row.pop(owner_field)].append(row)
    return grouped


def decisions_export(
    tree_id: int, paths: dict[int, str]
) -> tuple[dict[int, list[dict[str, Any]]], list]:
    """Each node's decisions, oldest first (two queries)."""
    rows = list(
        Decision.objects.filter(tree_id=tree_id, node__isnull=False)
        .order_by("at", "id")
        .values(
            "id",
            "node_id",
            "kind",
            "rationale",
            "by__username",
            "at",
            "previous_status",
            "pivot_to_id",
            "supersedes_id",
        )
    )
    evidence = _evidence_by("decision", [row["id"] for row in rows])
    by_node: dict[int, list[dict[str, Any]]] = defaultdict(list)
    index: dict[int, int] = {}
    for row in rows:
        index[row["id"]] = len(by_node[row["node_id"]])
        by_node[row["node_id"]].append(
            {
                "kind": row["kind"],
                "rationale": row["rationale"],
                "by": row["by__username"],
                "at": row["at"].isoformat(),
                "previous_status": row["previous_status"],
                "pivot_to": paths.get(row["pivot_to_id"]) if row["pivot_to_id"] else None,
                "supersedes": index.get(row["supersedes_id"])
                if row["supersedes_id"] is not None
                else None,
                "evidence": evidence.get(row["id"], []),
            }
        )
    return dict(by_node), []


def decisions_create(
    tree: Any,
    items: list[tuple[Any, dict[str, Any], str]],
    by_path: dict[str, Any],
    users: dict[str, Any],
) -> None:
    """Write imported decisions as they were (no status change: the nodes' statuses
    come with the nodes)."""
    made: dict[int, list[Decision]] = defaultdict(list)
    for node, item, where in items:
        if node is None:
            continue
        earlier = made[node.pk]
        supersedes = None
        if item["supersedes"] is not None:
            if item["supersedes"] >= len(earlier):
                raise ValidationError(
                    {"supersedes": f"{where}: supersedes must name an earlier decision."}
                )
            supersedes = earlier[item["supersedes"]]
        decision = Decision(
            tree=tree,
            node=node,
            node_title=node.title,
            kind=item["kind"],
            rationale=item["rationale"],
            by=users.get(item["by"]) if item["by"] else None,
            at=item["at"],
            previous_status=item["previous_status"],
            pivot_to=by_path.get(item["pivot_to"]) if item["pivot_to"] else None,
            supersedes=supersedes,
        )
        decision.save()
        earlier.append(decision)
        Evidence.objects.bulk_create(Evidence(decision=decision, **e) for e in item["evidence"])


def learnings_export(tree_id: int, paths: dict[int, str]) -> tuple[dict[int, list], list]:
    """Each node's learnings and the tree's own, oldest first (two queries)."""
    rows = list(
        Learning.objects.filter(tree_id=tree_id)
        .order_by("at", "id")
        .values("id", "node_id", "kind", "text", "by__username", "at")
    )
    evidence = _evidence_by("learning", [row["id"] for row in rows])
    by_node: dict[int, list[dict[str, Any]]] = defaultdict(list)
    tree_level = []
    for row in rows:
        item = {
            "kind": row["kind"],
            "text": row["text"],
            "by": row["by__username"],
            "at": row["at"].isoformat(),
            "evidence": evidence.get(row["id"], []),
        }
        if row["node_id"] is None or row["node_id"] not in paths:
            tree_level.append(item)
        else:
            by_node[row["node_id"]].append(item)
    return dict(by_node), tree_level


def learnings_create(
    tree: Any,
    items: list[tuple[Any, dict[str, Any], str]],
    by_path: dict[str, Any],
    users: dict[str, Any],
) -> None:
    for node, item, _ in items:
        learning = Learning(
            tree=tree,
            node=node,
            kind=item["kind"],
            text=item["text"],
            by=users.get(item["by"]) if item["by"] else None,
            at=item["at"],
        )
        learning.save()
        Evidence.objects.bulk_create(Evidence(learning=learning, **e) for e in item["evidence"])


def register() -> None:
    sections.register_part(
        sections.DocumentPart(
            key="decisions",
            export=decisions_export,
            item_serializer=DecisionItemSerializer,
            create=decisions_create,
            user_fields=("by",),
            path_fields=("pivot_to",),
        )
    )
    sections.register_part(
        sections.DocumentPart(
            key="learnings",
            export=learnings_export,
            item_serializer=LearningItemSerializer,
            create=learnings_create,
            user_fields=("by",),
            tree_level=True,
        )
    )
