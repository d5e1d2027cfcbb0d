"""Writes for value reviews, decisions and learnings (DESIGN.md §5b).

Keyword-only; input a user can fix raises Django's ``ValidationError`` with field
messages and changes nothing. A published review is never written again (only
amended); a decision is never deleted or changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from outcomes.models import Observation, PullRun, Verdict
from outcomes.reviews import selectors as review_selectors
from outcomes.reviews.models import (
    OPEN_REVIEW_STATUSES,
    Decision,
    DecisionKind,
    Evidence,
    EvidenceKind,
    Learning,
    LearningKind,
    ReviewAmendment,
    ReviewPolicy,
    ReviewStatus,
    ValueReview,
)
from outcomes.reviews.snapshot import SNAPSHOT_VERSION, snapshot_build, snapshot_hash
from valuetree import services as node_services
from valuetree.models import Node, NodeKind, NodeStatus, ValueTree

REVIEW_FIELDS = ("title", "notes")
# What each decision does to its node's status (pivot kills the old hypothesis).
STATUS_AFTER = {
    DecisionKind.KILL: NodeStatus.KILLED,
    DecisionKind.DONE: NodeStatus.DONE,
    DecisionKind.PIVOT: NodeStatus.KILLED,
}
DECIDABLE_KINDS = (NodeKind.BET, NodeKind.INITIATIVE)


# --- Reviews ---------------------------------------------------------------------------


def _refuse_published(review: ValueReview) -> None:
    if review.status == ReviewStatus.PUBLISHED:
        raise ValidationError(
            {"status": "This review is published and frozen; add an amendment instead."}
        )


@transaction.atomic
def review_start(
    *, tree: ValueTree, by: AbstractBaseUser | None, title: str = "", notes: str = ""
) -> ValueReview:
    """Open a draft review of ``tree`` for the period since its last published review
    (or since the tree was created). A tree has one open review at a time.

    Three queries besides the insert: lock the tree, the open review, the last
    published one."""
    list(ValueTree.objects.select_for_update().filter(pk=tree.pk).values_list("pk"))
    open_review = (
        ValueReview.objects.filter(tree=tree, status__in=OPEN_REVIEW_STATUSES)
        .values_list("title", flat=True)
        .first()
    )
    if open_review is not None:
        raise ValidationError(
            {"status": f"“{open_review}” is still open: publish it before starting another."}
        )
    previous = review_selectors.last_published(tree_id=tree.pk)
    now = timezone.now()
    review = ValueReview(
        tree=tree,
        title=title.strip() or f"Review of {now:%B %Y}",
        notes=notes,
        period_start=previous.as_of if previous else tree.created_at,
        previous=previous,
        created_by=by,
        created_at=now,
    )
    # The database checks the constraints on save; full_clean would ask it twice.
    review.full_clean(exclude=["previous", "tree", "created_by"], validate_constraints=False)
    review.save()
    return review


def review_update(
    *,
    review: ValueReview,
    attendees: Iterable[AbstractBaseUser] | None = None,
    **fields: Any,
) -> ValueReview:
    """Change an open review's title, notes or attendees."""
    _refuse_published(review)
    node_services.apply_fields(review, fields, REVIEW_FIELDS)
    # The database checks the constraints on save; full_clean would ask it twice.
    review.full_clean(exclude=["previous", "tree", "created_by"], validate_constraints=False)
    review.save()
    if attendees is not None:
        review.attendees.set(list(attendees))
    return review


@transaction.atomic
def review_hold(*, review: ValueReview, by: AbstractBaseUser) -> ValueReview:
    """Mark a draft as held (the meeting took place); it can still be published."""
    review = ValueReview.objects.select_for_update().get(pk=review.pk)
    if review.status != ReviewStatus.DRAFT:
        raise ValidationError({"status": f"Only a draft can be held; this one is {review.status}."})
    review.status = ReviewStatus.HELD
    review.held_by = by
    review.held_at = timezone.now()
    review.save(update_fields=["status", "held_by", "held_at"])
    return review


@transaction.atomic
def review_publish(
    *, review: ValueReview, by: AbstractBaseUser | None, at: datetime | None = None
) -> ValueReview:
    """Freeze the tree as it stands into the review (snapshot and hash) and the changes
    since the previous published review; the review is then read-only.

    A constant number of queries whatever the tree's size: the lock, the tree, the
    snapshot's seven, the previous snapshot, the audit-history window, the update.
    Raises ``ValidationError`` when the review is published already.
    """
    review = ValueReview.objects.select_for_update().get(pk=review.pk)
    _refuse_published(review)
    _freeze(review, by=by, at=at)
    review.save()
    return review


@transaction.atomic
def review_snapshot(
    *, tree: ValueTree, by: AbstractBaseUser | None, title: str, at: datetime | None = None
) -> ValueReview:
    """Publish a review of ``tree`` as it stands, in one step: it is never open, so
    it does not wait for (nor disturb) a draft the tree's people have open. A
    scheduled report in ``auto`` mode is such a snapshot.

    Its period runs from the last published review, which it names as ``previous``;
    an open draft keeps its own ``previous``. It is marked ``is_snapshot``: it holds no
    decisions, so a people's review published after it still follows up the last
    people's review's decisions (``followup_basis``). Returns the published review;
    the queries of ``review_publish`` plus the insert.
    """
    list(ValueTree.objects.select_for_update().filter(pk=tree.pk).values_list("pk"))
    previous = review_selectors.last_published(tree_id=tree.pk)
    now = timezone.now()
    review = ValueReview(
        tree=tree,
        title=title.strip() or f"Review of {now:%B %Y}",
        period_start=previous.as_of if previous else tree.created_at,
        previous=previous,
        created_by=by,
        created_at=now,
        is_snapshot=True,
    )
    review.full_clean(exclude=["previous", "tree", "created_by"], validate_constraints=False)
    _freeze(review, by=by, at=at)
    review.save()
    return review


def _freeze(review: ValueReview, *, by: AbstractBaseUser | None, at: datetime | None) -> None:
    """Fill ``review`` (not saved) with the tree's snapshot as of ``at`` (now), its
    hash, the changes since ``review.previous`` and the follow-up of that review's
    decisions, and mark it published by ``by``."""
    as_of = at or timezone.now()
    tree = ValueTree.objects.get(pk=review.tree_id)
    snapshot = snapshot_build(tree=tree, as_of=as_of)
    previous = review_selectors.previous_snapshot(review)
    review.changes = review_selectors.changes_between(tree_id=tree.pk, old=previous, new=snapshot)
    # Frozen with the rest: reading a published review never reads live tables.
    basis_id, basis = review_selectors.followup_basis(
        tree_id=tree.pk, previous_id=review.previous_id, previous=previous
    )
    review.changes["followup"] = review_selectors.followup_rows(
        tree_id=tree.pk, previous_id=basis_id, previous=basis, snapshot=snapshot
    )
    review.snapshot = snapshot
    review.snapshot_version = SNAPSHOT_VERSION
    review.snapshot_hash = snapshot_hash(snapshot)
    review.as_of = as_of
    review.status = ReviewStatus.PUBLISHED
    review.published_by = by
    review.published_at = timezone.now()
    if review.held_at is None:
        review.held_at, review.held_by = review.published_at, by


def review_amend(
    *, review: ValueReview, by: AbstractBaseUser | None, text: str, reason: str
) -> ReviewAmendment:
    """Correct a published review: the correction and why, kept beside the original."""
    if review.status != ReviewStatus.PUBLISHED:
        raise ValidationError({"status": "Only a published review is amended; edit the draft."})
    amendment = ReviewAmendment(review=review, by=by, text=text.strip(), reason=reason.strip())
    amendment.full_clean(exclude=["review", "by"])
    amendment.save()
    return amendment


def review_policy_set(*, tree: ValueTree, decision_due_days: int) -> ReviewPolicy:
    policy = ReviewPolicy.objects.filter(tree=tree).first() or ReviewPolicy(tree=tree)
    policy.decision_due_days = decision_due_days
    policy.full_clean(exclude=["tree"])
    policy.save()
    return policy


# --- Evidence --------------------------------------------------------------------------


def _evidence_rows(
    *, measure_ids: list[int], items: Iterable[dict[str, Any]], default_verdicts: bool
) -> list[Evidence]:
    """Unsaved Evidence rows for ``items`` (``{"kind": "verdict"|"observation"|"pull_run",
    "id": n}`` or ``{"kind": "link", "url", "title", "quote"}``), each checked to belong
    to one of ``measure_ids`` (the node's and its children's measures). With no items
    and ``default_verdicts``, the current verdicts of those measures. Three queries at
    most."""
    items = list(items)
    wanted: dict[str, set[int]] = {"verdict": set(), "observation": set(), "pull_run": set()}
    rows: list[Evidence] = []
    for number, item in enumerate(items, start=1):
        kind = item.get("kind") if isinstance(item, dict) else None
        if kind == EvidenceKind.LINK:
            url = str(item.get("url") or "").strip()
            evidence = Evidence(
                kind=kind,
                url=url,
                title=str(item.get("title") or "")[:300],
                quote=str(item.get("quote") or ""),
                summary=str(item.get("title") or url)[:300],
            )
            try:
                evidence.full_clean(exclude=["decision", "learning"])
            except ValidationError as error:
                raise ValidationError(
                    {"evidence": f"Link {number}: {'; '.join(error.messages)}"}
                ) from None
            if not url:
                raise ValidationError({"evidence": f"Link {number} needs a URL."})
            rows.append(evidence)
        elif kind in wanted:
            try:
                wanted[kind].add(int(item.get("id")))
            except (TypeError, ValueError):
                raise ValidationError(
                    {"evidence": f"Evidence {number}: give the {kind}'s id."}
                ) from None
        else:
            raise ValidationError(
                {
                    "evidence": f"Evidence {number}: kind must be verdict, observation, "
                    "pull_run or link."
                }
            )
    if not items and default_verdicts and measure_ids:
        for verdict in Verdict.objects.filter(measure_id__in=measure_ids, is_current=True):
            rows.append(_verdict_evidence(verdict))
    if wanted["verdict"]:
        found = Verdict.objects.filter(pk__in=wanted["verdict"], measure_id__in=measure_ids)
        rows += _checked(found, wanted["verdict"], "verdict", _verdict_evidence)
    if wanted["observation"]:
        found = Observation.objects.filter(
            pk__in=wanted["observation"], metric__measures__in=measure_ids
        ).distinct()
        rows += _checked(
            found,
            wanted["observation"],
            "observation",
            lambda o: Evidence(
                kind=EvidenceKind.OBSERVATION,
                observation=o,
                summary=f"Observation {o.value:g} for {o.period_start:%Y-%m-%d}",
            ),
        )
    if wanted["pull_run"]:
        found = PullRun.objects.filter(
            pk__in=wanted["pull_run"], metric__measures__in=measure_ids
        ).distinct()
        rows += _checked(
            found,
            wanted["pull_run"],
            "pull run",
            lambda r: Evidence(
                kind=EvidenceKind.PULL_RUN,
                pull_run=r,
                summary=f"Pull {r.status} at {r.started_at:%Y-%m-%d %H:%M}"
                f" ({r.values_written} values)",
            ),
        )
    return rows


def _verdict_evidence(verdict: Verdict) -> Evidence:
    progress = "" if verdict.progress is None else f", progress {verdict.progress:.0%}"
    return Evidence(
        kind=EvidenceKind.VERDICT,
        verdict=verdict,
        summary=f"Verdict {verdict.status}{progress} as of {verdict.as_of:%Y-%m-%d}",
    )


def _checked(found: Any, ids: set[int], label: str, build: Any) -> list[Evidence]:
    rows = list(found)
    missing = ids - {row.pk for row in rows}
    if missing:
        raise ValidationError(
            {
                "evidence": f"No {label} {', '.join(map(str, sorted(missing)))} among this "
                "node's measures."
            }
        )
    return [build(row) for row in rows]


def _node_measure_ids(node: Node) -> list[int]:
    from outcomes.models import Measure

    return list(
        Measure.objects.filter(Q(node=node) | Q(node__parent=node)).values_list("id", flat=True)
    )


# --- Decisions -------------------------------------------------------------------------


def _ancestors(node: Node) -> list[Node]:
    """The nodes above ``node``, nearest first (a Lean Value Tree is at most four
    levels deep: one query per level)."""
    ancestors: list[Node] = []
    while node.parent_id is not None and len(ancestors) < 10:
        node = Node.objects.only("pk", "parent_id", "kind", "status", "title").get(
            pk=node.parent_id
        )
        ancestors.append(node)
    return ancestors


@transaction.atomic
def decision_create(
    *,
    node: Node,
    kind: str,
    rationale: str,
    by: AbstractBaseUser | None,
    review: ValueReview | None = None,
    evidence: Iterable[dict[str, Any]] = (),
    default_evidence: bool = True,
    supersedes: Decision | None = None,
    pivot_to: Node | None = None,
    pivot_title: str = "",
    pivot_hypothesis: str = "",
) -> Decision:
    """Record a decision on a bet or an initiative.

    ``kill`` and ``done`` set the node's status through ``valuetree.services.node_update``
    (the node stays in the tree and its history). ``pivot`` kills the node and points at
    the new hypothesis: ``pivot_to`` (a proposed or active sibling-kind node of the same
    tree) or a new node made from ``pivot_title``/``pivot_hypothesis`` beside the old one.
    ``evidence``: see ``_evidence_rows``; none given means the current verdicts of the
    node's (and its children's) measures. ``review`` must be an open review of the tree.
    Raises ``ValidationError`` (nothing written) on a blank rationale, a goal, a node
    already killed or done, persevere or pivot under a killed or finished bet or goal,
    foreign evidence.
    """
    # Fresh and locked: two people deciding on one node at once are served in turn.
    node = Node.objects.select_for_update().get(pk=node.pk)
    errors: dict[str, str] = {}
    rationale = (rationale or "").strip()
    if kind not in DecisionKind.values:
        errors["kind"] = f"Choose persevere, pivot, kill or done (not {kind!r})."
    if not rationale:
        errors["rationale"] = "Say why: a decision needs its rationale."
    if node.kind not in DECIDABLE_KINDS:
        errors["node"] = "Decisions are taken on bets and initiatives."
    if node.status in (NodeStatus.KILLED, NodeStatus.DONE):
        # Persevering with a killed or finished node would leave the log saying
        # "persevere" beside a node that no longer runs.
        errors["kind"] = f"This {node.kind} is {node.status} already."
    elif kind in (DecisionKind.PERSEVERE, DecisionKind.PIVOT):
        # Work under a killed or finished bet (or goal) no longer runs: persevering
        # with it, or pivoting it, would log a plan nobody carries out.
        settled = next(
            (a for a in _ancestors(node) if a.status in (NodeStatus.KILLED, NodeStatus.DONE)),
            None,
        )
        if settled is not None:
            errors["kind"] = (
                f"Its {settled.kind} “{settled.title}” is {settled.status}: "
                f"kill this {node.kind} or mark it done instead."
            )
    if review is not None and (
        review.tree_id != node.tree_id or review.status == ReviewStatus.PUBLISHED
    ):
        errors["review"] = "Decisions go into an open review of the same tree."
    if supersedes is not None and supersedes.node_id != node.pk:
        errors["supersedes"] = "A decision supersedes an earlier one on the same node."
    if kind == DecisionKind.PIVOT:
        if pivot_to is None and not pivot_title.strip():
            errors["pivot_to"] = "A pivot names its new hypothesis: pick a node or give a title."
        if pivot_to is not None and (
            pivot_to.tree_id != node.tree_id
            or pivot_to.kind != node.kind
            or pivot_to.pk == node.pk
            or pivot_to.status in (NodeStatus.KILLED, NodeStatus.DONE)
        ):
            errors["pivot_to"] = f"Pivot to another live {node.kind} of this tree."
    elif pivot_to is not None or pivot_title.strip():
        errors["pivot_to"] = "Only a pivot names a new hypothesis."
    if errors:
        raise ValidationError(errors)
    rows = _evidence_rows(
        measure_ids=_node_measure_ids(node), items=evidence, default_verdicts=default_evidence
    )
    if kind == DecisionKind.PIVOT and pivot_to is None:
        pivot_to = node_services.node_create(
            tree=node.tree,
            parent=node.parent,
            kind=node.kind,
            title=pivot_title.strip(),
            hypothesis=pivot_hypothesis.strip(),
            status=NodeStatus.ACTIVE,
            owner=node.owner,
            accountable=node.accountable,
            position=node.position + 1,
        )
    decision = Decision(
        tree_id=node.tree_id,
        node=node,
        node_title=node.title,
        review=review,
        kind=kind,
        rationale=rationale,
        previous_status=node.status,
        pivot_to=pivot_to,
        supersedes=supersedes,
        by=by,
        at=timezone.now(),
    )
    decision.full_clean(exclude=["tree", "node", "review", "pivot_to", "supersedes", "by"])
    decision.save()
    for row in rows:
        row.decision = decision
    Evidence.objects.bulk_create(rows)
    if kind in STATUS_AFTER:
        node_services.node_update(node=node, status=STATUS_AFTER[kind])
    elif node.status == NodeStatus.PROPOSED:
        # Persevering with a proposal starts it.
        node_services.node_update(node=node, status=NodeStatus.ACTIVE)
    return decision


# --- Learnings -------------------------------------------------------------------------

LEARNING_FIELDS = ("kind", "text", "node", "review")


def _check_learning(learning: Learning) -> None:
    if learning.kind not in LearningKind.values:
        raise ValidationError({"kind": "Choose validated, invalidated, surprise or process."})
    if learning.node_id is not None and learning.node.tree_id != learning.tree_id:
        raise ValidationError({"node": "The node belongs to another tree."})
    if learning.review_id is not None and learning.review.tree_id != learning.tree_id:
        raise ValidationError({"review": "The review belongs to another tree."})
    if learning.review_id is not None:
        _refuse_published(learning.review)
    learning.text = (learning.text or "").strip()
    learning.full_clean(exclude=["tree", "node", "review", "by"])


@transaction.atomic
def learning_create(
    *,
    tree: ValueTree,
    by: AbstractBaseUser | None,
    kind: str,
    text: str,
    node: Node | None = None,
    review: ValueReview | None = None,
    evidence: Iterable[dict[str, Any]] = (),
) -> Learning:
    """Record a learning; its evidence is optional (no default: a learning is often
    about more than numbers)."""
    learning = Learning(tree=tree, by=by, kind=kind, text=text, node=node, review=review)
    _check_learning(learning)
    rows = _evidence_rows(
        measure_ids=_node_measure_ids(node) if node else [],
        items=evidence,
        default_verdicts=False,
    )
    learning.save()
    for row in rows:
        row.learning = learning
    Evidence.objects.bulk_create(rows)
    return learning


def learning_update(*, learning: Learning, **fields: Any) -> Learning:
    """Change a learning. One in a published review is frozen with it (a published
    review is read as it was): ``ValidationError``, as for a new one put into it."""
    node_services.apply_fields(learning, fields, LEARNING_FIELDS)
    _check_learning(learning)
    learning.save()
    return learning


def learning_delete(*, learning: Learning) -> None:
    """Delete a learning; one in a published review stays (``ValidationError``)."""
    if learning.review_id is not None:
        _refuse_published(learning.review)
    learning.delete()
