"""Browser forms for decisions, learnings and reviews. They check the input's shape;
the services enforce the rules."""

from __future__ import annotations

from typing import Any

from django import forms

from outcomes.models import PullRun, Verdict
from outcomes.reviews.models import DecisionKind, LearningKind
from outcomes.selectors import latest_observations
from valuetree.models import Node, NodeStatus


def evidence_choices(node: Node) -> tuple[list[tuple[str, str]], list[str]]:
    """What a decision on ``node`` may cite: the current verdicts, newest observation and
    last pull of the measures of the node and its children, as (value, label) choices,
    and the values ticked by default (the verdicts). Three queries."""
    verdicts = list(
        Verdict.objects.filter(is_current=True)
        .filter(measure__in=_measures(node))
        .select_related("measure")
        .order_by("measure__node_id", "measure__position", "measure_id")
    )
    metric_ids = {v.measure.metric_id for v in verdicts if v.measure.metric_id}
    choices = [
        (
            f"verdict:{v.pk}",
            f"{v.measure.name}: {v.get_status_display().lower()}"
            + ("" if v.progress is None else f", progress {v.progress:.0%}")
            + f" (verdict as of {v.as_of:%Y-%m-%d})",
        )
        for v in verdicts
    ]
    initial = [value for value, _ in choices]
    names = {v.measure.metric_id: v.measure.name for v in verdicts}
    for metric_id, observation in sorted(latest_observations(metric_ids).items()):
        choices.append(
            (
                f"observation:{observation.pk}",
                f"{names[metric_id]}: newest value {observation.value:g} "
                f"({observation.period_start:%Y-%m-%d})",
            )
        )
    runs = PullRun.objects.filter(metric_id__in=metric_ids).order_by("-started_at", "-id")[:5]
    for run in runs:
        choices.append(
            (
                f"pull_run:{run.pk}",
                f"{names.get(run.metric_id, 'Metric')}: pull {run.status} "
                f"{run.started_at:%Y-%m-%d %H:%M}",
            )
        )
    return choices, initial


def _measures(node: Node) -> Any:
    from django.db.models import Q

    from outcomes.models import Measure

    return Measure.objects.filter(Q(node=node) | Q(node__parent=node)).values("pk")


class DecisionForm(forms.Form):
    kind = forms.ChoiceField(choices=DecisionKind.choices, widget=forms.RadioSelect)
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why: what the evidence says and what you expect next.",
    )
    evidence = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Evidence"
    )
    link_url = forms.URLField(
        required=False, max_length=500, label="Outside link (URL)", assume_scheme="https"
    )
    link_title = forms.CharField(required=False, max_length=300, label="Link title")
    link_quote = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Quote"
    )
    pivot_to = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Pivot to an existing node"
    )
    pivot_title = forms.CharField(required=False, max_length=300, label="…or a new hypothesis")
    pivot_hypothesis = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Its hypothesis",
        help_text="We believe that … will result in …; we will know when …",
    )

    def __init__(
        self,
        *args: Any,
        node: Node | None = None,
        evidence: tuple[list[tuple[str, str]], list[str]] | None = None,
        siblings: list[tuple[int, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        """Choices come from ``node`` (four queries) or, on a review page where the
        snapshot already has them, from ``evidence`` (choices, ticked) and ``siblings``
        (no query)."""
        super().__init__(*args, **kwargs)
        choices, initial = evidence if evidence is not None else evidence_choices(node)
        self.fields["evidence"].choices = choices
        if not self.is_bound:
            self.fields["evidence"].initial = initial
        if siblings is None:
            siblings = list(
                Node.objects.filter(tree_id=node.tree_id, kind=node.kind)
                .exclude(pk=node.pk)
                .exclude(status__in=[NodeStatus.KILLED, NodeStatus.DONE])
                .order_by("title")
                .values_list("pk", "title")
            )
        self.fields["pivot_to"].choices = [("", "—"), *siblings]

    def evidence_items(self) -> list[dict[str, Any]]:
        items = []
        for value in self.cleaned_data.get("evidence") or []:
            kind, _, pk = value.partition(":")
            items.append({"kind": kind, "id": int(pk)})
        if self.cleaned_data.get("link_url"):
            items.append(
                {
                    "kind": "link",
                    "url": self.cleaned_data["link_url"],
                    "title": self.cleaned_data.get("link_title", ""),
                    "quote": self.cleaned_data.get("link_quote", ""),
                }
            )
        return items


class LearningForm(forms.Form):
    kind = forms.ChoiceField(choices=LearningKind.choices)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="What we learned")
    node = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="About")

    def __init__(self, *args: Any, tree_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        nodes = (
            Node.objects.filter(tree_id=tree_id)
            .exclude(kind="goal")
            .order_by("title")
            .values_list("pk", "title")
        )
        self.fields["node"].choices = [("", "The whole tree"), *nodes]


class ReviewStartForm(forms.Form):
    title = forms.CharField(required=False, max_length=200)


class AmendmentForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Correction")
    reason = forms.CharField(max_length=1000, label="Why")


def review_item_form(item: dict[str, Any], snapshot: dict[str, Any], **kwargs: Any) -> DecisionForm:
    """The decide form of a review item, from the snapshot alone (no query): its
    measures' current verdicts, ticked, and the live nodes of its kind to pivot to."""
    node = item["node"]
    choices = [
        (
            f"verdict:{m['verdict']['verdict_id']}",
            f"{m['name']}: {m['verdict']['status'].replace('_', ' ')}"
            + (
                ""
                if m["verdict"]["progress"] is None
                else f", progress {m['verdict']['progress']:.0%}"
            ),
        )
        for m in item.get("measures", [])
        if m["verdict"]
    ]
    siblings = [
        (n["id"], n["title"])
        for n in snapshot["nodes"]
        if n["kind"] == node["kind"]
        and n["id"] != node["id"]
        and n["status"] not in ("killed", "done")
    ]
    return DecisionForm(
        evidence=(choices, [value for value, _ in choices]),
        siblings=sorted(siblings, key=lambda pair: pair[1]),
        auto_id=f"id_{node['id']}_%s",
        **kwargs,
    )


class ReviewNotesForm(forms.Form):
    title = forms.CharField(max_length=200)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    attendees = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="Who took part."
    )

    def __init__(self, *args: Any, tree_id: int, **kwargs: Any) -> None:
        from valuetree.models import Membership

        super().__init__(*args, **kwargs)
        members = Membership.objects.filter(tree_id=tree_id).order_by("user__username")
        self.fields["attendees"].choices = [
            (username, username) for username in members.values_list("user__username", flat=True)
        ]
