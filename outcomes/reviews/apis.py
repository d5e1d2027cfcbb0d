"""REST API for value reviews, decisions and learnings.

Readers of a tree (owner, editor, viewer, leadership) read; owners and editors hold
reviews, decide and write learnings; a tree the caller may not see answers 404.
Decisions have no update and no delete: a later decision supersedes.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outcomes.reviews import export, selectors, services
from outcomes.reviews.models import (
    Decision,
    DecisionKind,
    EvidenceKind,
    Learning,
    LearningKind,
    ReviewStatus,
    ValueReview,
)
from valuetree import strict
from valuetree.apis import json_response, require_role, tree_for_request
from valuetree.models import Node
from valuetree.selectors import EDIT_ROLES, nodes_for_user, trees_for_user

User = get_user_model()

# --- Serializers -----------------------------------------------------------------------


class ReviewListSerializer(strict.Serializer):
    id = serializers.IntegerField(read_only=True)
    title = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=ReviewStatus.choices, read_only=True)
    period_start = serializers.DateTimeField(read_only=True)
    as_of = serializers.DateTimeField(read_only=True, allow_null=True)
    previous = serializers.IntegerField(read_only=True, allow_null=True)
    published_at = serializers.DateTimeField(read_only=True, allow_null=True)
    snapshot_hash = serializers.CharField(read_only=True)
    is_snapshot = serializers.BooleanField(
        read_only=True, help_text="Published in one step by a review schedule: no decisions."
    )


class ReviewCreateSerializer(strict.Serializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class ReviewUpdateSerializer(strict.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    notes = serializers.CharField(required=False, allow_blank=True)
    attendees = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Usernames of tree members."
    )


class AmendmentSerializer(strict.Serializer):
    text = serializers.CharField()
    reason = serializers.CharField()


class EvidenceSerializer(strict.Serializer):
    kind = serializers.ChoiceField(choices=EvidenceKind.choices)
    id = serializers.IntegerField(required=False, help_text="Verdict, observation or pull run.")
    url = serializers.URLField(required=False, max_length=500)
    title = serializers.CharField(required=False, allow_blank=True, max_length=300)
    quote = serializers.CharField(required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == "link" and not attrs.get("url"):
            raise serializers.ValidationError({"url": "An outside link needs its URL."})
        if attrs["kind"] != "link" and attrs.get("id") is None:
            raise serializers.ValidationError({"id": f"Give the {attrs['kind']}'s id."})
        return attrs


class DecisionCreateSerializer(strict.Serializer):
    kind = serializers.ChoiceField(choices=DecisionKind.choices)
    rationale = serializers.CharField()
    review = serializers.IntegerField(required=False, allow_null=True)
    evidence = EvidenceSerializer(many=True, required=False)
    default_evidence = serializers.BooleanField(
        required=False, default=True, help_text="With no evidence: the current verdicts."
    )
    supersedes = serializers.IntegerField(required=False, allow_null=True)
    pivot_to = serializers.IntegerField(
        required=False, allow_null=True, help_text="Pivot: an existing node."
    )
    pivot_title = serializers.CharField(required=False, allow_blank=True, default="")
    pivot_hypothesis = serializers.CharField(required=False, allow_blank=True, default="")


class EvidenceOutSerializer(strict.Serializer):
    kind = serializers.CharField()
    verdict = serializers.IntegerField(allow_null=True)
    observation = serializers.IntegerField(allow_null=True)
    pull_run = serializers.IntegerField(allow_null=True)
    url = serializers.CharField()
    title = serializers.CharField()
    quote = serializers.CharField()
    summary = serializers.CharField()


class DecisionSerializer(strict.Serializer):
    id = serializers.IntegerField()
    node = serializers.IntegerField(allow_null=True)
    node_title = serializers.CharField()
    review = serializers.IntegerField(allow_null=True)
    kind = serializers.ChoiceField(choices=DecisionKind.choices)
    rationale = serializers.CharField()
    previous_status = serializers.CharField()
    pivot_to = serializers.IntegerField(allow_null=True)
    supersedes = serializers.IntegerField(allow_null=True)
    by = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField()
    evidence = EvidenceOutSerializer(many=True)


class LearningInSerializer(strict.Serializer):
    kind = serializers.ChoiceField(choices=LearningKind.choices)
    text = serializers.CharField()
    node = serializers.IntegerField(required=False, allow_null=True)
    review = serializers.IntegerField(required=False, allow_null=True)
    evidence = EvidenceSerializer(many=True, required=False)


class LearningUpdateSerializer(strict.Serializer):
    kind = serializers.ChoiceField(choices=LearningKind.choices, required=False)
    text = serializers.CharField(required=False)


class LearningSerializer(strict.Serializer):
    id = serializers.IntegerField()
    tree = serializers.CharField()
    node = serializers.IntegerField(allow_null=True)
    review = serializers.IntegerField(allow_null=True)
    kind = serializers.ChoiceField(choices=LearningKind.choices)
    text = serializers.CharField()
    by = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField()
    evidence = EvidenceOutSerializer(many=True)


REVIEW_OBJECT = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="The review: its fields, `snapshot` (frozen for a published review, the "
    "live tree for a draft; schema `valuetree.review-snapshot` v1), `snapshot_hash` "
    "(sha256 of its canonical JSON), `changes` since the previous review, `decisions`, "
    "`learnings`, `amendments`, and for a draft the items `needed` a decision.",
)


# --- Access ----------------------------------------------------------------------------


def _review(request: Request, review_id: int, *, write: bool = False) -> ValueReview:
    review = get_object_or_404(
        selectors.reviews_for_user(request.user).select_related("tree", "previous"),
        pk=review_id,
    )
    tree = tree_for_request(request, pk=review.tree_id)
    if write:
        require_role(tree, EDIT_ROLES)
    review.tree = tree
    return review


def _in_tree(model: Any, pk: Any, tree_id: int, field: str) -> Any:
    if pk is None:
        return None
    found = model.objects.filter(pk=pk, tree_id=tree_id).first()
    if found is None:
        raise DRFValidationError({field: f"No {field} {pk} in this tree."})
    return found


# --- Reviews ---------------------------------------------------------------------------


class TreeReviewsView(APIView):
    """A tree's reviews, newest first; POST starts a draft for the period since the last
    published review (one open review per tree)."""

    @extend_schema(responses=ReviewListSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        tree = tree_for_request(request, slug=slug)
        rows = selectors.review_list(tree=tree)
        for row in rows:
            row["previous"] = row.pop("previous_id")
        return Response(ReviewListSerializer(rows, many=True).data)

    @extend_schema(request=ReviewCreateSerializer, responses={201: REVIEW_OBJECT})
    def post(self, request: Request, slug: str) -> HttpResponse:
        tree = tree_for_request(request, slug=slug)
        require_role(tree, EDIT_ROLES)
        serializer = ReviewCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = services.review_start(tree=tree, by=request.user, **serializer.validated_data)
        review.tree = tree
        data = selectors.review_data(review)
        return json_response(export.review_json(data), status_code=201)


class ReviewDetailView(APIView):
    """One review with its snapshot and changes. A published one is read from its
    snapshot only."""

    @extend_schema(responses=REVIEW_OBJECT)
    def get(self, request: Request, review_id: int) -> HttpResponse:
        review = _review(request, review_id)
        return json_response(export.review_json(selectors.review_data(review)))

    @extend_schema(request=ReviewUpdateSerializer, responses=REVIEW_OBJECT)
    def patch(self, request: Request, review_id: int) -> HttpResponse:
        """Change an open review's title, notes or attendees (a published one: 400)."""
        review = _review(request, review_id, write=True)
        serializer = ReviewUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        attendees = None
        if "attendees" in data:
            names = data.pop("attendees")
            attendees = list(
                User.objects.filter(username__in=names, tree_memberships__tree=review.tree)
            )
            missing = set(names) - {user.get_username() for user in attendees}
            if missing:
                raise DRFValidationError(
                    {"attendees": f"Not members of this tree: {', '.join(sorted(missing))}."}
                )
        services.review_update(review=review, attendees=attendees, **data)
        return json_response(export.review_json(selectors.review_data(review)))


class ReviewHoldView(APIView):
    """Mark a draft as held: the meeting took place (it can still be published)."""

    @extend_schema(request=None, responses=REVIEW_OBJECT)
    def post(self, request: Request, review_id: int) -> HttpResponse:
        review = _review(request, review_id, write=True)
        review = services.review_hold(review=review, by=request.user)
        review.tree = tree_for_request(request, pk=review.tree_id)
        return json_response(export.review_json(selectors.review_data(review)))


class ReviewPublishView(APIView):
    """Freeze the review: snapshot, hash and changes; read-only afterwards."""

    @extend_schema(request=None, responses=REVIEW_OBJECT)
    def post(self, request: Request, review_id: int) -> HttpResponse:
        review = _review(request, review_id, write=True)
        review = services.review_publish(review=review, by=request.user)
        review.tree = tree_for_request(request, pk=review.tree_id)
        return json_response(export.review_json(selectors.review_data(review)))


class ReviewAmendView(APIView):
    """Correct a published review: the text and why, kept beside the original."""

    @extend_schema(request=AmendmentSerializer, responses={201: AmendmentSerializer})
    def post(self, request: Request, review_id: int) -> Response:
        review = _review(request, review_id, write=True)
        serializer = AmendmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        amendment = services.review_amend(
            review=review, by=request.user, **serializer.validated_data
        )
        return Response(
            {"text": amendment.text, "reason": amendment.reason}, status=status.HTTP_201_CREATED
        )


class ReviewExportView(APIView):
    """The review as JSON (default) or Markdown (`?format=md`)."""

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "md"])],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/markdown"): str},
    )
    def get(self, request: Request, review_id: int) -> HttpResponse:
        review = _review(request, review_id)
        data = selectors.review_data(review)
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "md"):
            raise DRFValidationError({"format": "Use json or md."})
        name = f"review-{review.tree.slug}-{review.pk}"
        if fmt == "md":
            response = HttpResponse(
                export.review_markdown(data), content_type="text/markdown; charset=utf-8"
            )
            response["Content-Disposition"] = f'attachment; filename="{name}.md"'
            return response
        response = json_response(export.review_json(data))
        response["Content-Disposition"] = f'attachment; filename="{name}.json"'
        return response


class ReviewCompareView(APIView):
    """What changed between two published reviews of a tree (`?from=&to=`, any order)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("from", int, required=True),
            OpenApiParameter("to", int, required=True),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        tree = tree_for_request(request, slug=slug)
        reviews = []
        for key in ("from", "to"):
            try:
                pk = int(request.query_params.get(key, ""))
            except ValueError:
                raise DRFValidationError({key: "Give a published review's id."}) from None
            review = ValueReview.objects.filter(
                pk=pk, tree=tree, status=ReviewStatus.PUBLISHED
            ).first()
            if review is None:
                raise DRFValidationError({key: f"No published review {pk} in this tree."})
            reviews.append(review)
        result = selectors.compare(*reviews)
        return json_response(
            {
                "from": {"id": result["from"].pk, "as_of": result["from"].as_of.isoformat()},
                "to": {"id": result["to"].pk, "as_of": result["to"].as_of.isoformat()},
                "changes": result["changes"],
            }
        )


# --- Decisions -------------------------------------------------------------------------


class NodeDecisionsView(APIView):
    """A bet's or an initiative's decisions, newest first; POST records one (kill and
    done set the node's status; pivot kills it and names the new hypothesis)."""

    @extend_schema(responses=DecisionSerializer(many=True))
    def get(self, request: Request, node_id: int) -> Response:
        node = get_object_or_404(nodes_for_user(request.user), pk=node_id)
        rows = selectors.decisions(tree_id=node.tree_id, node_ids=[node.pk])
        return Response([export.decision_json(d) for d in rows])

    @extend_schema(request=DecisionCreateSerializer, responses={201: DecisionSerializer})
    def post(self, request: Request, node_id: int) -> Response:
        node = get_object_or_404(nodes_for_user(request.user), pk=node_id)
        tree = tree_for_request(request, pk=node.tree_id)
        require_role(tree, EDIT_ROLES)
        serializer = DecisionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        review = _in_tree(ValueReview, data.pop("review", None), tree.pk, "review")
        supersedes = _in_tree(Decision, data.pop("supersedes", None), tree.pk, "supersedes")
        pivot_to = _in_tree(Node, data.pop("pivot_to", None), tree.pk, "pivot_to")
        decision = services.decision_create(
            node=node,
            by=request.user,
            review=review,
            supersedes=supersedes,
            pivot_to=pivot_to,
            evidence=data.pop("evidence", []),
            **data,
        )
        [decision] = selectors.decisions(tree_id=tree.pk, pk=decision.pk)
        return Response(export.decision_json(decision), status=status.HTTP_201_CREATED)


class TreeDecisionsView(APIView):
    """The decision log of a tree, newest first."""

    @extend_schema(responses=DecisionSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        tree = tree_for_request(request, slug=slug)
        return Response([export.decision_json(d) for d in selectors.decisions(tree_id=tree.pk)])


class DecisionDetailView(APIView):
    """One decision. There is no update and no delete: record a superseding one."""

    @extend_schema(responses=DecisionSerializer)
    def get(self, request: Request, decision_id: int) -> Response:
        decision = get_object_or_404(
            Decision.objects.filter(tree__in=trees_for_user(request.user).values("pk")),
            pk=decision_id,
        )
        [row] = selectors.decisions(tree_id=decision.tree_id, pk=decision.pk)
        return Response(export.decision_json(row))


# --- Learnings -------------------------------------------------------------------------

SEARCH_PARAMETERS = [
    OpenApiParameter("q", str, description="Every word, in the text or the node's title."),
    OpenApiParameter("kind", str, enum=LearningKind.values),
]


def _learning_filters(request: Request) -> dict[str, Any]:
    kind = request.query_params.get("kind", "")
    if kind and kind not in LearningKind.values:
        raise DRFValidationError({"kind": f"Use one of {', '.join(LearningKind.values)}."})
    return {"query": request.query_params.get("q", ""), "kind": kind}


class TreeLearningsView(APIView):
    """A tree's learning log (searchable); editors add learnings."""

    @extend_schema(parameters=SEARCH_PARAMETERS, responses=LearningSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        tree = tree_for_request(request, slug=slug)
        rows = selectors.learnings(tree_ids=[tree.pk], **_learning_filters(request))
        return Response([export.learning_json(row) for row in rows[:500]])

    @extend_schema(request=LearningInSerializer, responses={201: LearningSerializer})
    def post(self, request: Request, slug: str) -> Response:
        tree = tree_for_request(request, slug=slug)
        require_role(tree, EDIT_ROLES)
        serializer = LearningInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        node = _in_tree(Node, data.pop("node", None), tree.pk, "node")
        review = _in_tree(ValueReview, data.pop("review", None), tree.pk, "review")
        learning = services.learning_create(
            tree=tree,
            by=request.user,
            node=node,
            review=review,
            evidence=data.pop("evidence", []),
            **data,
        )
        row = selectors.learnings(tree_ids=[tree.pk]).get(pk=learning.pk)
        return Response(export.learning_json(row), status=status.HTTP_201_CREATED)


class LearningSearchView(APIView):
    """Learnings across every tree the caller may read, newest first (at most 500)."""

    @extend_schema(parameters=SEARCH_PARAMETERS, responses=LearningSerializer(many=True))
    def get(self, request: Request) -> Response:
        trees = trees_for_user(request.user).values("pk")
        rows = selectors.learnings(tree_ids=trees, **_learning_filters(request))
        return Response([export.learning_json(row) for row in rows[:500]])


class LearningDetailView(APIView):
    """One learning; editors of its tree change or delete it."""

    def _get(self, request: Request, learning_id: int, *, write: bool) -> Learning:
        learning = get_object_or_404(
            selectors.learnings(tree_ids=trees_for_user(request.user).values("pk")),
            pk=learning_id,
        )
        if write:
            require_role(tree_for_request(request, pk=learning.tree_id), EDIT_ROLES)
        return learning

    @extend_schema(responses=LearningSerializer)
    def get(self, request: Request, learning_id: int) -> Response:
        return Response(export.learning_json(self._get(request, learning_id, write=False)))

    @extend_schema(request=LearningUpdateSerializer, responses=LearningSerializer)
    def patch(self, request: Request, learning_id: int) -> Response:
        learning = self._get(request, learning_id, write=True)
        serializer = LearningUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.learning_update(learning=learning, **serializer.validated_data)
        return Response(export.learning_json(learning))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, learning_id: int) -> Response:
        services.learning_delete(learning=self._get(request, learning_id, write=True))
        return Response(status=status.HTTP_204_NO_CONTENT)
