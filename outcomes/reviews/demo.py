"""The demo tree's review history: two published reviews a quarter apart, decisions of
every kind (a pivot with its new initiative, a kill with evidence), learnings, and a
draft waiting with items that need a decision.

Run by ``load_demo_metrics`` once the demo metrics exist; it does nothing when the demo
tree already has a review. It pulls the offline warehouse metrics once (no network)
so the verdicts at each review date come from real observations: verdicts are
evaluated as of each review's date (``measures_evaluate(at=…)``), then the review is
published with that as-of and its dates are set back to it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q

from outcomes import pulling
from outcomes.evaluation import measures_evaluate
from outcomes.models import Measure, Metric, PullTrigger, SourceKind, Verdict
from outcomes.reviews import services
from outcomes.reviews.models import Decision, Learning, ValueReview
from outcomes.services import measure_create, measure_update
from valuetree.models import Membership, Node, Role, ValueTree

PERSEVERE_BET = "Real-time sample tracking across the hub laboratories"
PERSEVERE_PATHOLOGY = "Digital pathology with AI triage"
PIVOTED = "Bottleneck alerts for shift leads"
PIVOT_TO = "Queue board on the lab floor"
KILLED = "Courier re-routing pilot between Leipzig and Halle"
FINISHED = "Hourly analyser utilisation data product"
EDITED_MEASURE = "Results released within contractual SLA"


def _moment(day: date) -> datetime:
    from django.utils import timezone

    return datetime.combine(day, time(10, 0), tzinfo=timezone.get_current_timezone())


def _backdate(review: ValueReview, at: datetime) -> None:
    ValueReview.objects.filter(pk=review.pk).update(
        created_at=at - timedelta(days=2), held_at=at, published_at=at
    )
    Decision.objects.filter(review=review).update(at=at - timedelta(hours=1))
    Learning.objects.filter(review=review).update(at=at - timedelta(minutes=30))


def _pull_warehouse(tree: ValueTree) -> None:
    for metric in Metric.objects.filter(source__tree=tree, source__kind=SourceKind.SQL):
        if pulling.metric_claim(metric=metric):
            pulling.metric_pull(metric_id=metric.pk, trigger=PullTrigger.MANUAL)


def load_demo_reviews(*, tree: ValueTree, today: date) -> dict[str, Any] | None:
    """Write the demo's review history (see the module's docstring); None when the tree
    has reviews already."""
    if ValueReview.objects.filter(tree=tree).exists():
        return None
    nodes = {node.title: node for node in Node.objects.filter(tree=tree)}
    roles: dict[str, Any] = {}
    for membership in Membership.objects.filter(tree=tree).select_related("user").order_by("id"):
        roles.setdefault(membership.role, membership.user)
    owner = roles.get(Role.OWNER)
    editor = roles.get(Role.EDITOR, owner)
    measure_ids = list(Measure.objects.filter(node__tree=tree).values_list("id", flat=True))
    _pull_warehouse(tree)

    # --- First review, two quarters ago ---------------------------------------------
    first_at = _moment(today - timedelta(days=182))
    measures_evaluate(measure_ids=measure_ids, at=first_at)
    first = services.review_start(tree=tree, by=owner, title="Q2 value review")
    for title, rationale in (
        (
            PERSEVERE_BET,
            "Event trail coverage is ahead of plan; the hubs stream events reliably. "
            "Keep investing until every hub lab is on the stream.",
        ),
        (
            PERSEVERE_PATHOLOGY,
            "Scan-out digitisation is on its trajectory; the slide catalogue is the next "
            "bottleneck. Continue, review again next quarter.",
        ),
    ):
        services.decision_create(
            node=nodes[title], kind="persevere", rationale=rationale, by=owner, review=first
        )
    services.learning_create(
        tree=tree,
        by=editor,
        kind="validated",
        text="Shift leads act on queue data when it reaches them within minutes, not hours.",
        node=nodes[PERSEVERE_BET],
        review=first,
    )
    services.learning_create(
        tree=tree,
        by=owner,
        kind="process",
        text="Agree the measure's baseline with the lab managers before the quarter starts.",
        review=first,
    )
    first = services.review_publish(review=first, by=owner, at=first_at)
    _backdate(first, first_at)

    # --- Between the reviews: a target is corrected ----------------------------------
    sla = Measure.objects.get(node__tree=tree, name=EDITED_MEASURE)
    measure_update(measure=sla, target_value=round(sla.target_value - 2, 2))

    # --- Second review, a quarter later ----------------------------------------------
    second_at = _moment(today - timedelta(days=91))
    measures_evaluate(measure_ids=measure_ids, at=second_at)
    second = services.review_start(tree=tree, by=owner, title="Q3 value review")
    services.decision_create(
        node=nodes[PIVOTED],
        kind="pivot",
        rationale="Alerts were muted within a week: shift leads get too many. A shared "
        "queue board on the floor shows the same signal without interrupting anyone.",
        by=owner,
        review=second,
        pivot_title=PIVOT_TO,
        pivot_hypothesis="We believe that a live queue board on the lab floor will cut the "
        "time from a queue forming to staff action; we will know when the median is under "
        "ten minutes for a month.",
    )
    courier = nodes[KILLED]
    services.decision_create(
        node=courier,
        kind="kill",
        rationale="The pilot re-routed few samples and raised temperature excursions; "
        "balancing analyser load inside each hub is cheaper.",
        by=owner,
        review=second,
        evidence=[
            *(
                {"kind": "verdict", "id": verdict_id}
                for verdict_id in Verdict.objects.filter(
                    measure__node=courier, is_current=True
                ).values_list("id", flat=True)
            ),
            {
                "kind": "link",
                "url": "https://helix-diagnostics.example/wiki/courier-pilot-retro",
                "title": "Courier pilot retrospective",
                "quote": "Two of five routes broke the cold chain in August.",
            },
        ],
    )
    services.decision_create(
        node=nodes[FINISHED],
        kind="done",
        rationale="Every analyser reports hourly; the data product is live and owned.",
        by=editor,
        review=second,
    )
    services.learning_create(
        tree=tree,
        by=owner,
        kind="invalidated",
        text="Push alerts do not change shift-lead behaviour; shared, ambient signals do.",
        node=nodes[PIVOTED],
        review=second,
    )
    services.learning_create(
        tree=tree,
        by=editor,
        kind="surprise",
        text="Courier re-routing moved the bottleneck to sample reception in Halle.",
        node=courier,
        review=second,
    )
    new_node = Node.objects.get(tree=tree, title=PIVOT_TO)
    measure_create(
        node=new_node,
        name="Shift leads acting within ten minutes",
        unit="%",
        direction="increase",
        baseline_value=35,
        baseline_date=(today - timedelta(days=91)).isoformat(),
        target_value=80,
        target_date=(today + timedelta(days=180)).isoformat(),
    )
    second = services.review_publish(review=second, by=owner, at=second_at)
    _backdate(second, second_at)

    # --- Today: the verdicts as they are, and a draft waiting --------------------------
    measures_evaluate(
        measure_ids=Measure.objects.filter(Q(node__tree=tree)).values_list("id", flat=True)
    )
    draft = services.review_start(tree=tree, by=owner, title="Q4 value review")
    return {"published": [first.pk, second.pk], "draft": draft.pk}
