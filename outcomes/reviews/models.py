"""Value reviews, decisions, learnings and their evidence.

A review is a draft until it is published; publishing freezes the tree as it stood into
``snapshot`` (a versioned JSON document with a sha256 hash) and the changes since the
previous review into ``changes``. Nothing of a published review changes afterwards: a
correction is a ``ReviewAmendment``. Decisions are never deleted: a later decision
supersedes an earlier one.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class FrozenJSONField(models.JSONField):
    """A JSONField written and read with orjson.

    A 10,000-node snapshot is about 14 MB; the standard library's json took most of
    the time of publishing a review and of reading it back (bench/review.py).
    """

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if value is None:
            return None
        if connection.vendor == "postgresql":
            from psycopg.types.json import Jsonb

            return Jsonb(value, dumps=_dumps)
        return _dumps(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if not isinstance(value, str | bytes):
            return value
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value


class ReviewStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    HELD = "held", "Held"
    PUBLISHED = "published", "Published"


# A tree has at most one review that is still open (draft or held).
OPEN_REVIEW_STATUSES = (ReviewStatus.DRAFT, ReviewStatus.HELD)


class ReviewPolicy(models.Model):
    """A tree's review settings: after how many days without a decision a bet or an
    initiative is listed as needing one."""

    tree = models.OneToOneField(
        "valuetree.ValueTree", on_delete=models.CASCADE, related_name="review_policy"
    )
    decision_due_days = models.PositiveIntegerField(default=90, validators=[MinValueValidator(1)])

    def __str__(self) -> str:
        return f"{self.tree_id}: decide every {self.decision_due_days} days"


class ValueReview(models.Model):
    tree = models.ForeignKey(
        "valuetree.ValueTree", on_delete=models.CASCADE, related_name="reviews"
    )
    title = models.CharField(max_length=200)
    # The period covered: from the previous review's as-of (or the tree's creation) to
    # this review's as-of, which is set when it is published.
    period_start = models.DateTimeField()
    as_of = models.DateTimeField(null=True, blank=True)
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_reviews"
    )
    status = models.CharField(
        max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.DRAFT
    )
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviews_started",
    )
    created_at = models.DateTimeField(default=timezone.now)
    held_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviews_held",
    )
    held_at = models.DateTimeField(null=True, blank=True)
    attendees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="reviews_attended"
    )
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviews_published",
    )
    published_at = models.DateTimeField(null=True, blank=True)
    snapshot = FrozenJSONField(null=True, blank=True)
    snapshot_version = models.PositiveSmallIntegerField(null=True, blank=True)
    snapshot_hash = models.CharField(max_length=64, blank=True)
    changes = FrozenJSONField(null=True, blank=True)
    # Published in one step by a schedule (``review_snapshot``): a report of the tree,
    # with no meeting and no decisions, so a people's review follows up the decisions
    # of the people's review before it, not of a snapshot in between.
    is_snapshot = models.BooleanField(default=False)

    class Meta:
        ordering = ["tree_id", "-created_at", "-id"]
        indexes = [models.Index(fields=["tree", "status", "-as_of"], name="review_tree_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ReviewStatus.values), name="review_status_valid"
            ),
            models.UniqueConstraint(
                fields=["tree"],
                condition=Q(status__in=OPEN_REVIEW_STATUSES),
                name="review_one_open_per_tree",
            ),
            # Published means frozen: the snapshot, its hash and as-of are all there.
            models.CheckConstraint(
                condition=~Q(status=ReviewStatus.PUBLISHED)
                | (
                    Q(snapshot__isnull=False)
                    & Q(as_of__isnull=False)
                    & Q(snapshot_version__isnull=False)
                    & ~Q(snapshot_hash="")
                ),
                name="review_published_is_frozen",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"

    @property
    def is_published(self) -> bool:
        return self.status == ReviewStatus.PUBLISHED


class ReviewAmendment(models.Model):
    """A correction to a published review: what, who, when and why. The review's own
    text and snapshot stay as they were published."""

    review = models.ForeignKey(ValueReview, on_delete=models.CASCADE, related_name="amendments")
    text = models.TextField()
    reason = models.TextField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["review_id", "at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(text=""), name="amendment_text_required"),
            models.CheckConstraint(condition=~Q(reason=""), name="amendment_reason_required"),
        ]

    def __str__(self) -> str:
        return f"Amendment to {self.review_id} at {self.at:%Y-%m-%d}"


class DecisionsAreKept(Exception):
    """Raised on an attempt to delete a decision: record a superseding one instead."""


class DecisionQuerySet(models.QuerySet):
    def delete(self) -> Any:
        raise DecisionsAreKept("Decisions are never deleted; record a superseding decision.")


class DecisionKind(models.TextChoices):
    PERSEVERE = "persevere", "Persevere"
    PIVOT = "pivot", "Pivot"
    KILL = "kill", "Kill"
    DONE = "done", "Done"


class Decision(models.Model):
    """A decision on a bet or an initiative, with its rationale and evidence.

    ``kill`` and ``done`` set the node's status (through the node services); a
    ``pivot`` kills the node and points at the new hypothesis (``pivot_to``), which
    points back through ``pivoted_from``. Never deleted; ``supersedes`` an earlier
    decision on the same node instead.
    """

    tree = models.ForeignKey(
        "valuetree.ValueTree", on_delete=models.CASCADE, related_name="decisions"
    )
    # A node deleted by mistake leaves its decisions (and their title) behind.
    node = models.ForeignKey(
        "valuetree.Node", null=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    node_title = models.CharField(max_length=300)
    review = models.ForeignKey(
        ValueReview, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    kind = models.CharField(max_length=10, choices=DecisionKind.choices)
    rationale = models.TextField()
    previous_status = models.CharField(max_length=10, blank=True)
    pivot_to = models.ForeignKey(
        "valuetree.Node",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pivoted_from",
    )
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="superseded_by"
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="decisions",
    )
    at = models.DateTimeField(default=timezone.now)

    objects = DecisionQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["node", "-at"], name="decision_node_recent"),
            models.Index(fields=["tree", "-at"], name="decision_tree_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=DecisionKind.values), name="decision_kind_valid"
            ),
            models.CheckConstraint(condition=~Q(rationale=""), name="decision_rationale_required"),
            models.CheckConstraint(
                condition=Q(kind=DecisionKind.PIVOT) | Q(pivot_to__isnull=True),
                name="decision_only_pivot_points_on",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.node_title} at {self.at:%Y-%m-%d}"

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        # Deleting the whole tree still removes its decisions (a cascade deletes rows
        # without calling this): the record is kept for as long as the tree is.
        raise DecisionsAreKept("Decisions are never deleted; record a superseding decision.")


class LearningKind(models.TextChoices):
    VALIDATED = "validated", "Validated"
    INVALIDATED = "invalidated", "Invalidated"
    SURPRISE = "surprise", "Surprise"
    PROCESS = "process", "Process"


class Learning(models.Model):
    """Something the tree's people learned: a hypothesis validated or invalidated, a
    surprise, or a lesson about how they work."""

    tree = models.ForeignKey(
        "valuetree.ValueTree", on_delete=models.CASCADE, related_name="learnings"
    )
    node = models.ForeignKey(
        "valuetree.Node",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="learnings",
    )
    review = models.ForeignKey(
        ValueReview, null=True, blank=True, on_delete=models.SET_NULL, related_name="learnings"
    )
    kind = models.CharField(max_length=12, choices=LearningKind.choices)
    text = models.TextField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="learnings",
    )
    at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tree", "-at"], name="learning_tree_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=LearningKind.values), name="learning_kind_valid"
            ),
            models.CheckConstraint(condition=~Q(text=""), name="learning_text_required"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.text[:40]}"


class EvidenceKind(models.TextChoices):
    VERDICT = "verdict", "Verdict"
    OBSERVATION = "observation", "Observation"
    PULL_RUN = "pull_run", "Pull run"
    LINK = "link", "Outside link"


class Evidence(models.Model):
    """One piece of evidence of a decision or a learning: a verdict, an observation or
    a pull run of the node's measures, or an outside link (URL, title, quote).

    ``summary`` keeps what the evidence said when it was chosen, so it still reads
    right after the row it points at is gone.
    """

    decision = models.ForeignKey(
        Decision, null=True, blank=True, on_delete=models.CASCADE, related_name="evidence"
    )
    learning = models.ForeignKey(
        Learning, null=True, blank=True, on_delete=models.CASCADE, related_name="evidence"
    )
    kind = models.CharField(max_length=12, choices=EvidenceKind.choices)
    verdict = models.ForeignKey(
        "outcomes.Verdict", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    observation = models.ForeignKey(
        "outcomes.Observation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    pull_run = models.ForeignKey(
        "outcomes.PullRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    url = models.URLField(max_length=500, blank=True)
    title = models.CharField(max_length=300, blank=True)
    quote = models.TextField(blank=True)
    summary = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=EvidenceKind.values), name="evidence_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(decision__isnull=False, learning__isnull=True)
                | Q(decision__isnull=True, learning__isnull=False),
                name="evidence_of_one_thing",
            ),
            models.CheckConstraint(
                condition=~Q(kind=EvidenceKind.LINK) | ~Q(url=""),
                name="evidence_link_has_url",
            ),
        ]

    def __str__(self) -> str:
        return self.summary or self.title or self.url or self.kind
