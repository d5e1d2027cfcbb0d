"""Value reviews, decisions and learnings in the browser (htmx, readable without JS).

A review page follows the order of a review meeting: header, headline, what changed,
decisions needed (each item decided in place: only that item is redrawn), follow-up
of the last review's decisions, learnings, the Think-again link. A published review
is drawn from its snapshot only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from outcomes import dashboard
from outcomes.models import Measure
from outcomes.reviews import export, selectors, services
from outcomes.reviews.forms import (
    AmendmentForm,
    DecisionForm,
    LearningForm,
    ReviewNotesForm,
    ReviewStartForm,
    review_item_form,
)
from outcomes.reviews.models import Decision, Learning, ReviewStatus, ValueReview
from outcomes.reviews.snapshot import headline_words
from valuetree import outline
from valuetree.forms import add_service_errors
from valuetree.models import Node, ValueTree
from valuetree.selectors import EDIT_ROLES, nodes_for_user, search_query, trees_for_user
from valuetree.views.trees import _done, _form_page

# --- Access ----------------------------------------------------------------------------


def _tree(request: HttpRequest, **lookup: Any) -> ValueTree:
    return get_object_or_404(trees_for_user(request.user), **lookup)


def _require_edit(tree: ValueTree) -> None:
    if tree.caller_role not in EDIT_ROLES:
        raise PermissionDenied(f"Your role in this tree ({tree.caller_role}) does not allow this.")


def _review(request: HttpRequest, review_id: int) -> ValueReview:
    review = get_object_or_404(ValueReview.objects.select_related("held_by"), pk=review_id)
    review.tree = _tree(request, pk=review.tree_id)
    return review


# --- Charts ----------------------------------------------------------------------------


def _figure(measure: dict[str, Any]) -> dict[str, Any]:
    """The measure chart of a review item, from its snapshot row and chart data."""
    model = Measure(
        unit=measure["unit"],
        baseline_value=measure["baseline_value"],
        baseline_date=date.fromisoformat(measure["baseline_date"]),
        target_value=measure["target_value"],
        target_date=date.fromisoformat(measure["target_date"]),
    )
    verdict = dict(measure["verdict"]) if measure["verdict"] else None
    if verdict and verdict.get("latest_period"):
        verdict["latest_period"] = datetime.fromisoformat(verdict["latest_period"])
    detail = {
        "points": [(datetime.fromisoformat(p), v) for p, v in measure.get("points", [])],
        "verdict": verdict,
        "decisions": [
            {"date": row["at"], "label": f"{row['node_title'][:40]}: {row['kind']}"}
            for row in measure.get("decisions", [])
        ],
    }
    return dashboard.measure_figure(model, detail)


def _with_figures(data: dict[str, Any]) -> dict[str, Any]:
    for item in data["needed"]:
        for measure in item.get("measures", []):
            measure["figure"] = _figure(measure)
            measure["figure_id"] = f"figure-{item['node']['id']}-{measure['id']}"
    return data


# --- Reviews ---------------------------------------------------------------------------


@login_required
def review_list(request: HttpRequest, slug: str) -> HttpResponse:
    """A tree's reviews; editors start a draft for the period since the last one."""
    tree = _tree(request, slug=slug)
    form = ReviewStartForm(request.POST or None)
    if request.method == "POST":
        _require_edit(tree)
        if form.is_valid():
            try:
                review = services.review_start(
                    tree=tree, by=request.user, title=form.cleaned_data["title"]
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, f"“{review.title}” started.")
                return redirect("outcomes:review", review_id=review.pk)
    reviews = selectors.review_list(tree=tree)
    published = [r for r in reviews if r["status"] == ReviewStatus.PUBLISHED]
    return render(
        request,
        "outcomes/reviews/list.html",
        {
            "tree": tree,
            "reviews": reviews,
            "published": published,
            "open_review": next((r for r in reviews if r["status"] != "published"), None),
            "form": form,
            "can_edit": tree.caller_role in EDIT_ROLES,
        },
        status=422 if form.errors else 200,
    )


def _review_context(request: HttpRequest, review: ValueReview) -> dict[str, Any]:
    data = _with_figures(selectors.review_data(review))
    tree = review.tree
    can_edit = tree.caller_role in EDIT_ROLES and not data["is_published"]
    by_node: dict[int, list[Decision]] = {}
    for decision in data["decisions"]:
        by_node.setdefault(decision.node_id, []).append(decision)
    for item in data["needed"]:
        item["decided"] = by_node.get(item["node"]["id"], [])
        if can_edit:
            item["form"] = review_item_form(item, data["snapshot"])
    return {
        **data,
        "can_edit": can_edit,
        "can_amend": tree.caller_role in EDIT_ROLES and data["is_published"],
        "learning_form": LearningForm(tree_id=tree.pk) if can_edit else None,
        "notes_form": ReviewNotesForm(
            tree_id=tree.pk,
            initial={
                "title": review.title,
                "notes": review.notes,
                "attendees": data["attendees"],
            },
        )
        if can_edit
        else None,
        "amend_form": AmendmentForm(),
        "headline_rows": _headline_rows(data),
        "amounts": headline_words(data["snapshot"]["headline"]),
    }


def _headline_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    now = data["snapshot"]["headline"]["outcomes_by_status"]
    before = ((data["previous"] or {}).get("headline") or {}).get("outcomes_by_status", {})
    return [
        {
            "status": status,
            "label": label,
            "now": now.get(status, 0),
            "before": before.get(status, 0) if data["previous"] else None,
        }
        for status, label in dashboard.STATUS_LABELS.items()
    ]


@login_required
def review_page(request: HttpRequest, review_id: int) -> HttpResponse:
    """A draft (live, with decide forms) or a published review (its snapshot only)."""
    review = _review(request, review_id)
    return render(request, "outcomes/reviews/review.html", _review_context(request, review))


@login_required
@require_POST
def review_publish(request: HttpRequest, review_id: int) -> HttpResponse:
    review = _review(request, review_id)
    _require_edit(review.tree)
    try:
        services.review_publish(review=review, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"“{review.title}” published: it is frozen as of now.")
    return redirect("outcomes:review", review_id=review.pk)


@login_required
@require_POST
def review_edit(request: HttpRequest, review_id: int) -> HttpResponse:
    """An open review's title, notes and attendees."""
    review = _review(request, review_id)
    _require_edit(review.tree)
    form = ReviewNotesForm(request.POST, tree_id=review.tree.pk)
    if form.is_valid():
        from django.contrib.auth import get_user_model

        attendees = get_user_model().objects.filter(username__in=form.cleaned_data["attendees"])
        try:
            services.review_update(
                review=review,
                attendees=attendees,
                title=form.cleaned_data["title"],
                notes=form.cleaned_data["notes"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Review notes saved.")
    else:
        messages.error(request, "A review needs a title.")
    return redirect("outcomes:review", review_id=review.pk)


@login_required
@require_POST
def review_hold(request: HttpRequest, review_id: int) -> HttpResponse:
    review = _review(request, review_id)
    _require_edit(review.tree)
    try:
        services.review_hold(review=review, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Marked as held: publish it when the decisions are in.")
    return redirect("outcomes:review", review_id=review.pk)


@login_required
@require_POST
def review_amend(request: HttpRequest, review_id: int) -> HttpResponse:
    review = _review(request, review_id)
    _require_edit(review.tree)
    form = AmendmentForm(request.POST)
    if form.is_valid():
        try:
            services.review_amend(review=review, by=request.user, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Amendment recorded beside the original.")
    else:
        messages.error(request, "An amendment needs the correction and why.")
    return redirect("outcomes:review", review_id=review.pk)


@login_required
def review_download(request: HttpRequest, review_id: int, fmt: str) -> HttpResponse:
    """The review as JSON (snapshot and changes) or Markdown; any other suffix is 404
    (it went into the Content-Disposition header: a quote or a newline in it forged
    the file name or failed the response)."""
    if fmt not in ("md", "json"):
        raise Http404("A review downloads as .md or .json.")
    review = _review(request, review_id)
    data = selectors.review_data(review)
    name = f"review-{review.tree.slug}-{review.pk}"
    if fmt == "md":
        response = HttpResponse(
            export.review_markdown(data), content_type="text/markdown; charset=utf-8"
        )
    else:
        import orjson

        response = HttpResponse(
            orjson.dumps(export.review_json(data), option=orjson.OPT_INDENT_2),
            content_type="application/json",
        )
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@login_required
def review_tree(request: HttpRequest, review_id: int) -> HttpResponse:
    """The tree as it stood at a published review, read-only, from its snapshot."""
    review = _review(request, review_id)
    if review.status != ReviewStatus.PUBLISHED:
        raise Http404("Only a published review froze the tree.")
    document = selectors.snapshot_document(review.snapshot)
    drawing = outline.render_outline(
        document, can_edit=False, verdicts=selectors.snapshot_statuses(review.snapshot)
    )
    return render(
        request,
        "outcomes/reviews/as_it_stood.html",
        {"review": review, "tree": review.tree, "drawing": drawing},
    )


@login_required
def review_compare(request: HttpRequest, slug: str) -> HttpResponse:
    """What changed between two published reviews (``?from=&to=``; default: the last
    two)."""
    tree = _tree(request, slug=slug)
    published = list(
        ValueReview.objects.filter(tree=tree, status=ReviewStatus.PUBLISHED)
        .order_by("-as_of", "-id")
        .only("id", "title", "as_of", "tree_id")
    )
    chosen: list[ValueReview] = []
    by_id = {r.pk: r for r in published}
    for key, fallback in (("from", 1), ("to", 0)):
        raw = request.GET.get(key, "")
        if raw:
            try:
                chosen.append(by_id[int(raw)])
            except (ValueError, KeyError):
                raise Http404("No such published review in this tree.") from None
        elif len(published) > fallback:
            chosen.append(published[fallback])
    result = None
    if len(chosen) == 2 and chosen[0].pk != chosen[1].pk:
        full = {r.pk: r for r in ValueReview.objects.filter(pk__in=[c.pk for c in chosen])}
        result = selectors.compare(full[chosen[0].pk], full[chosen[1].pk])
    return render(
        request,
        "outcomes/reviews/compare.html",
        {"tree": tree, "published": published, "chosen": chosen, "result": result},
    )


# --- Decisions -------------------------------------------------------------------------


def _item_html(request: HttpRequest, review: ValueReview, node_id: int) -> str:
    """One "decision needed" item of a draft, drawn again after a decision."""
    context = _review_context(request, review)
    item = next((i for i in context["needed"] if i["node"]["id"] == node_id), None)
    decided = [d for d in context["decisions"] if d.node_id == node_id]
    if item is None:
        # No longer needing a decision (killed or done): show what was decided.
        return render_to_string(
            "outcomes/reviews/_decided.html",
            {"node_id": node_id, "decisions": decided},
            request=request,
        ).strip()
    item["decided"] = decided
    return render_to_string(
        "outcomes/reviews/_item.html", {**context, "item": item}, request=request
    )


@login_required
def decide(request: HttpRequest, node_id: int) -> HttpResponse:
    """Record a decision on a bet or an initiative: a dialog from the outline (Kill… /
    Mark done…), a form on the node page, or in place on a review's item (``review``).
    """
    node = get_object_or_404(nodes_for_user(request.user).select_related("tree"), pk=node_id)
    tree = _tree(request, pk=node.tree_id)
    _require_edit(tree)
    review = None
    review_id = request.POST.get("review") or request.GET.get("review")
    if review_id:
        if not str(review_id).isdecimal():
            raise Http404("No such review in this tree.")
        review = ValueReview.objects.filter(pk=review_id, tree=tree).first()
        if review is None:
            raise Http404("No such review in this tree.")
        review.tree = tree
    kind = request.GET.get("kind", "")
    form = DecisionForm(request.POST or None, node=node, initial={"kind": kind} if kind else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        pivot_to = None
        if data.get("pivot_to"):
            pivot_to = Node.objects.filter(pk=data["pivot_to"], tree=tree).first()
        try:
            decision = services.decision_create(
                node=node,
                kind=data["kind"],
                rationale=data["rationale"],
                by=request.user,
                review=review,
                evidence=form.evidence_items(),
                default_evidence=False,
                pivot_to=pivot_to,
                pivot_title=data.get("pivot_title", ""),
                pivot_hypothesis=data.get("pivot_hypothesis", ""),
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            message = f"{decision.get_kind_display()}: “{node.title}”."
            if review is not None and request.htmx:
                return HttpResponse(_item_html(request, review, node.pk))
            if review is not None:
                messages.success(request, message)
                return redirect("outcomes:review", review_id=review.pk)
            if request.htmx:
                node.refresh_from_db()
                return _done(
                    request,
                    tree,
                    message,
                    redraw="outline" if decision.kind == "pivot" else "card",
                    node=node,
                )
            messages.success(request, message)
            return redirect("valuetree:node", node_id=node.pk)
    if review is not None and request.htmx and form.errors:
        # Redraw the item with the form's messages.
        context = _review_context(request, review)
        item = next((i for i in context["needed"] if i["node"]["id"] == node.pk), None)
        if item is not None:
            item["form"] = review_item_form(item, context["snapshot"], data=request.POST)
            item["form"].is_valid()
            for field, errors in form.errors.items():
                for error in errors:
                    if error not in item["form"].errors.get(field, []):
                        item["form"].add_error(field if field != "__all__" else None, error)
            return HttpResponse(
                render_to_string(
                    "outcomes/reviews/_item.html", {**context, "item": item}, request=request
                ).strip(),
                status=422,
            )
    return _form_page(
        request,
        "outcomes/reviews/decide.html",
        {"tree": tree, "node": node, "form": form, "review": review},
    )


@login_required
def decision_log(request: HttpRequest, slug: str) -> HttpResponse:
    """Every decision of a tree, newest first, with its evidence."""
    tree = _tree(request, slug=slug)
    return render(
        request,
        "outcomes/reviews/decision_log.html",
        {"tree": tree, "decisions": selectors.decisions(tree_id=tree.pk)},
    )


def node_panel(request: HttpRequest, node: Node, tree: ValueTree) -> SafeString:
    """The node page's decisions (newest first, with evidence) and learnings."""
    html = render_to_string(
        "outcomes/reviews/_node_panel.html",
        {
            "node": node,
            "tree": tree,
            "decisions": selectors.decisions(tree_id=tree.pk, node_ids=[node.pk]),
            "pivoted_from": list(
                Decision.objects.filter(pivot_to=node).values("node_id", "node_title", "at")
            ),
            "learnings": selectors.learnings(tree_ids=[tree.pk], node_id=node.pk),
            "can_edit": tree.caller_role in EDIT_ROLES and node.kind != "goal",
        },
        request=request,
    )
    return mark_safe(html)  # noqa: S308 — a rendered template, escaped by Django


# --- Learnings -------------------------------------------------------------------------


@login_required
def learning_log(request: HttpRequest, slug: str) -> HttpResponse:
    """A tree's learnings, searchable; editors add one (also from a review)."""
    tree = _tree(request, slug=slug)
    form = LearningForm(request.POST or None, tree_id=tree.pk)
    review = None
    if request.method == "POST":
        _require_edit(tree)
        if request.POST.get("review", "").isdecimal():
            review = ValueReview.objects.filter(pk=request.POST["review"], tree=tree).first()
        if form.is_valid():
            data = form.cleaned_data
            node = Node.objects.filter(pk=data["node"], tree=tree).first() if data["node"] else None
            try:
                services.learning_create(
                    tree=tree,
                    by=request.user,
                    kind=data["kind"],
                    text=data["text"],
                    node=node,
                    review=review,
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, "Learning recorded.")
                if review is not None:
                    return redirect("outcomes:review", review_id=review.pk)
                return redirect("outcomes:learnings", slug=tree.slug)
    query = search_query(request.GET.get("q"))
    kind = request.GET.get("kind", "")
    rows = selectors.learnings(tree_ids=[tree.pk], query=query, kind=kind)[:200]
    return render(
        request,
        "outcomes/reviews/learnings.html",
        {
            "tree": tree,
            "learnings": rows,
            "form": form,
            "query": query,
            "kind": kind,
            "can_edit": tree.caller_role in EDIT_ROLES,
        },
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def learning_delete(request: HttpRequest, learning_id: int) -> HttpResponse:
    learning = get_object_or_404(Learning, pk=learning_id)
    tree = _tree(request, pk=learning.tree_id)
    _require_edit(tree)
    try:
        services.learning_delete(learning=learning)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Learning removed.")
    return redirect("outcomes:learnings", slug=tree.slug)


@login_required
def learning_search(request: HttpRequest) -> HttpResponse:
    """Learnings across every tree the visitor may read (newest 200), searchable."""
    query = search_query(request.GET.get("q"))
    rows = selectors.learnings(tree_ids=trees_for_user(request.user).values("pk"), query=query)[
        :200
    ]
    return render(
        request, "outcomes/reviews/learning_search.html", {"learnings": rows, "query": query}
    )
