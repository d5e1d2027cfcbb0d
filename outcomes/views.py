"""Measures and metrics in the browser.

Measures are added, edited and removed from a node's page. Each tree has a metrics page
(sources, metrics with their health, recent pulls); each metric has a page with a chart
of its values and, for a push metric, a CSV upload and a check-in form. Measures and
metrics are added and edited in the page's dialog (htmx), like nodes. Readers of the
tree see them; owners and editors change them. Without JavaScript every form is a plain
page and the chart's values are in a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh, trigger_client_event

from config.throttling import throttle
from outcomes import dashboard as dashboard_selectors
from outcomes import evaluation, pulling, selectors, services
from outcomes.forms import (
    CheckInForm,
    CsvUploadForm,
    MeasureForm,
    MetricForm,
    MetricSourceForm,
    MetricSourceFromPortForm,
    VerdictPolicyForm,
)
from outcomes.models import Measure, Metric, MetricSource, PullTrigger, SourceKind
from outcomes.think_again import think_again
from valuetree.forms import add_service_errors
from valuetree.models import Node, ValueTree
from valuetree.selectors import EDIT_ROLES, nodes_for_user, trees_for_user
from valuetree.views.trees import CLOSE_DIALOG

# The metric page charts at most this many of the newest values, and lists fewer.
CHART_POINTS = 2000
TABLE_POINTS = 50
RECENT_RUNS = 25
MESSAGE_LEVELS = {"success": messages.SUCCESS, "info": messages.INFO, "error": messages.ERROR}

# --- Access ---------------------------------------------------------------------------


def _tree(request: HttpRequest, **lookup: Any) -> ValueTree:
    """The tree with the caller's role, or 404 when the caller may not read it."""
    return get_object_or_404(trees_for_user(request.user), **lookup)


def _require_edit(tree: ValueTree) -> None:
    if tree.caller_role not in EDIT_ROLES:
        raise PermissionDenied(f"Your role in this tree ({tree.caller_role}) does not allow this.")


def _source(request: HttpRequest, source_id: int) -> tuple[MetricSource, ValueTree]:
    """A source the caller may change (404 when they may not see it, 403 when they may
    only read it)."""
    source = get_object_or_404(MetricSource, pk=source_id)
    tree = _tree(request, pk=source.tree_id)
    _require_edit(tree)
    return source, tree


def _metric(
    request: HttpRequest, metric_id: int, *, edit: bool = False
) -> tuple[Metric, ValueTree]:
    metric = get_object_or_404(Metric.objects.select_related("source"), pk=metric_id)
    tree = _tree(request, pk=metric.source.tree_id)
    if edit:
        _require_edit(tree)
    return metric, tree


def _editable_node(request: HttpRequest, node_id: int) -> Node:
    node = get_object_or_404(nodes_for_user(request.user), pk=node_id)
    _require_edit(_tree(request, pk=node.tree_id))
    return node


# --- Measures -------------------------------------------------------------------------


def _measure_form(
    request: HttpRequest, node: Node, form: MeasureForm, measure: Measure | None
) -> HttpResponse:
    """The measure form: a page, or the node page's dialog when htmx asks (errors
    answer 422 there, which the page's htmx config swaps in)."""
    status = (422 if request.htmx else 400) if form.errors else 200
    return render(
        request,
        "outcomes/measure_form.html",
        {"node": node, "form": form, "measure": measure, "in_dialog": bool(request.htmx)},
        status=status,
    )


def _measure_save(
    request: HttpRequest, node: Node, form: MeasureForm, measure: Measure | None
) -> HttpResponse | None:
    """Save a valid measure form in one flow: a new push metric named in it, the
    measure, a first value checked in, and the verdict. All or nothing; None (errors on
    the form) when refused."""
    fields = form.measure_fields()
    data = form.cleaned_data
    is_new = measure is None
    try:
        with transaction.atomic():
            if data.get("new_metric"):
                fields["metric"] = services.push_metric_create(
                    tree=node.tree, name=data["new_metric"], unit=fields["unit"], owner=request.user
                )
            if measure is None:
                measure = services.measure_create(node=node, **fields)
            else:
                measure = services.measure_update(measure=measure, **fields)
            if data.get("first_value") is not None:
                pulling.observations_push(
                    metric=fields["metric"],
                    raw_points=[(None, data["first_value"])],
                    trigger=PullTrigger.CHECK_IN,
                    user=request.user,
                    describe=lambda index: "First value",
                )
    except ValidationError as error:
        add_service_errors(form, error)
        return None
    _evaluate_now(measure)
    messages.success(request, f"Measure “{measure.name}” {'added' if is_new else 'saved'}.")
    if request.htmx:
        return HttpResponseClientRefresh()
    return redirect("valuetree:node", node_id=node.pk)


def _evaluate_now(measure: Measure) -> None:
    """A saved measure gets its verdict in this request, so the page it returns to shows
    it (services.measure_evaluate_after_save). One measure: milliseconds."""
    services.measure_evaluate_after_save(measure=measure)


@login_required
def measure_create(request: HttpRequest, node_id: int) -> HttpResponse:
    """Add a measure (a page, or the node page's dialog), optionally with a new push
    metric and its first value."""
    node = _editable_node(request, node_id)
    form = MeasureForm(request.POST or None, metrics=selectors.tree_metric_choices(node.tree_id))
    if request.method == "POST" and form.is_valid():
        done = _measure_save(request, node, form, None)
        if done is not None:
            return done
    return _measure_form(request, node, form, None)


@login_required
def measure_edit(request: HttpRequest, measure_id: int) -> HttpResponse:
    measure = get_object_or_404(Measure, pk=measure_id, node__in=nodes_for_user(request.user))
    node = _editable_node(request, measure.node_id)
    form = MeasureForm(
        request.POST or None,
        instance=measure,
        metrics=selectors.tree_metric_choices(node.tree_id),
    )
    if request.method == "POST" and form.is_valid():
        # A copy: a refused change must not show on the form as if saved.
        done = _measure_save(request, node, form, Measure.objects.get(pk=measure.pk))
        if done is not None:
            return done
    return _measure_form(request, node, form, measure)


@login_required
@require_POST
def measure_delete(request: HttpRequest, measure_id: int) -> HttpResponse:
    measure = get_object_or_404(Measure, pk=measure_id, node__in=nodes_for_user(request.user))
    node = _editable_node(request, measure.node_id)
    services.measure_delete(measure=measure)
    messages.success(request, f"Measure “{measure.name}” removed.")
    return redirect("valuetree:node", node_id=node.pk)


# --- The tree's metrics page ------------------------------------------------------------


def duration_words(duration: timedelta) -> str:
    """ "15 minutes", "hour", "2 days": the largest whole unit that fits."""
    seconds = round(duration.total_seconds())
    for size, unit in ((604_800, "week"), (86_400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"


def schedule_words(metric: Metric) -> str:
    if metric.source.kind == SourceKind.PUSH:
        return "Pushed: values are sent to it"
    if metric.schedule_interval:
        return f"Every {duration_words(metric.schedule_interval)}"
    if metric.schedule_cron:
        return f"Cron {metric.schedule_cron} ({metric.timezone})"
    return "No schedule"


def _tree_metrics_context(tree: ValueTree) -> dict[str, Any]:
    """What the metrics page (and its re-drawn tables) shows: ``selectors.tree_metrics``
    with each metric's schedule in words."""
    page = selectors.tree_metrics(tree)
    for metric in page["metrics"]:
        metric.schedule_words = schedule_words(metric)
    return {"tree": tree, "can_edit": tree.caller_role in EDIT_ROLES, **page}


@login_required
def tree_metrics(request: HttpRequest, slug: str) -> HttpResponse:
    """The tree's sources, its metrics with their health and last value, and recent pulls."""
    tree = _tree(request, slug=slug)
    return render(request, "outcomes/tree_metrics.html", _tree_metrics_context(tree))


@login_required
@require_POST
@throttle("pulls")
def metric_pull(request: HttpRequest, metric_id: int) -> HttpResponse:
    """Queue a pull now. With htmx the button's cell is swapped for a short message;
    without, back to the page the button was on."""
    metric, tree = _metric(request, metric_id, edit=True)
    status = 200
    try:
        queued = pulling.metric_pull_now(metric=metric, user=request.user)
    except ValidationError as error:
        text, level, status = " ".join(error.messages), "error", 422
    else:
        if queued:
            text, level = "Pull queued; reload in a moment to see the result.", "success"
        else:
            text, level = "A pull of this metric is already queued or running.", "info"
    if request.htmx:
        return render(
            request,
            "outcomes/_pull.html",
            {
                "metric": metric,
                "pull_message": text,
                "pull_level": level,
                "return_to": "metric" if request.POST.get("return") == "metric" else "",
            },
            status=status,
        )
    messages.add_message(request, MESSAGE_LEVELS[level], text)
    if request.POST.get("return") == "metric":
        return redirect("outcomes:metric", metric_id=metric.pk)
    return redirect("outcomes:tree-metrics", slug=tree.slug)


# --- Sources --------------------------------------------------------------------------


def _form_page(
    request: HttpRequest, template: str, context: dict[str, Any], form: Any
) -> HttpResponse:
    return render(request, template, context, status=400 if form.errors else 200)


@login_required
def source_create(request: HttpRequest, slug: str) -> HttpResponse:
    tree = _tree(request, slug=slug)
    _require_edit(tree)
    # ?kind=push: a form with only what a push source needs (a name).
    push = (request.GET.get("kind") or request.POST.get("kind")) == SourceKind.PUSH
    form = MetricSourceForm(request.POST or None, kind=SourceKind.PUSH if push else None)
    if request.method == "POST" and form.is_valid():
        try:
            source = services.metric_source_create(
                tree=tree,
                kind=form.cleaned_data["kind"],
                name=form.cleaned_data["name"],
                config=form.config(),
                credentials=form.credentials(),
                owner=request.user,
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Source “{source.name}” added. Now add its metrics.")
            return redirect("outcomes:tree-metrics", slug=tree.slug)
    return _form_page(
        request,
        "outcomes/source_form.html",
        {"tree": tree, "form": form, "source": None, "push": push},
        form,
    )


@login_required
def source_from_port(request: HttpRequest, slug: str) -> HttpResponse:
    """A SQL source reading the server of a data product's output port (its contract)."""
    tree = _tree(request, slug=slug)
    _require_edit(tree)
    form = MetricSourceFromPortForm(
        request.POST or None, ports=selectors.output_ports_with_servers(tree)
    )
    if request.method == "POST" and form.is_valid():
        port, server = form.cleaned_data["server"]
        password = form.cleaned_data["password"]
        try:
            source = services.metric_source_from_port(
                tree=tree,
                port=port,
                server=server or None,
                name=form.cleaned_data["name"],
                username=form.cleaned_data["username"],
                credentials={"password": password} if password else {},
                owner=request.user,
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(
                request,
                f"Source “{source.name}” added from the data product "
                f"{port.data_product.name}. Now add its metrics.",
            )
            return redirect("outcomes:tree-metrics", slug=tree.slug)
    return _form_page(request, "outcomes/source_from_port.html", {"tree": tree, "form": form}, form)


@login_required
def source_edit(request: HttpRequest, source_id: int) -> HttpResponse:
    source, tree = _source(request, source_id)
    form = MetricSourceForm(request.POST or None, source=source)
    if request.method == "POST" and form.is_valid():
        try:
            # A copy: a refused change must not show on the page as if saved.
            services.metric_source_update(
                source=MetricSource.objects.get(pk=source.pk),
                name=form.cleaned_data["name"],
                config=form.config(),
                credentials=form.credentials(),
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Source “{form.cleaned_data['name']}” saved.")
            return redirect("outcomes:tree-metrics", slug=tree.slug)
    return _form_page(
        request,
        "outcomes/source_form.html",
        {"tree": tree, "form": form, "source": source, "push": source.kind == SourceKind.PUSH},
        form,
    )


@login_required
def source_delete(request: HttpRequest, source_id: int) -> HttpResponse:
    """Ask first, saying how many metrics (and their values) go with the source."""
    source, tree = _source(request, source_id)
    if request.method == "POST":
        services.metric_source_delete(source=source)
        messages.success(request, f"Source “{source.name}” and its metrics deleted.")
        return redirect("outcomes:tree-metrics", slug=tree.slug)
    return render(
        request,
        "outcomes/source_delete.html",
        {
            "tree": tree,
            "source": source,
            "metric_count": source.metrics.count(),
            "measure_count": Measure.objects.filter(metric__source=source).count(),
        },
    )


# --- Metrics --------------------------------------------------------------------------


def _returns_to_metric(request: HttpRequest) -> bool:
    """The form was opened from the metric's own page (a fixed flag, not a URL, so
    nothing can redirect elsewhere); else from the tree's metrics page."""
    return "metric" in (request.GET.get("return"), request.POST.get("return"))


def _metric_form(
    request: HttpRequest,
    tree: ValueTree,
    source: MetricSource,
    form: MetricForm,
    metric: Metric | None,
) -> HttpResponse:
    """The metric form, with only the fields of the source's kind: a page, or the
    dialog of the metrics page or the metric page when htmx asks (errors answer 422
    there, which the page's htmx config swaps in)."""
    status = (422 if request.htmx else 400) if form.errors else 200
    return render(
        request,
        "outcomes/metric_form.html",
        {
            "tree": tree,
            "source": source,
            "form": form,
            "metric": metric,
            "in_dialog": bool(request.htmx),
            "return_to": "metric" if _returns_to_metric(request) else "",
        },
        status=status,
    )


def _metric_saved(
    request: HttpRequest, tree: ValueTree, metric_id: int, message: str
) -> HttpResponse:
    """Finish a saved metric form. Without htmx: the metric's page. With htmx: close the
    dialog (after the swaps settle, as the node dialogs do) and re-draw, out of band,
    what the page the dialog was on shows of the metric (the metric page's summary, or
    the metrics page's tables), with the message; the focus goes to the metric's link
    or the page's heading."""
    if not request.htmx:
        messages.success(request, message)
        return redirect("outcomes:metric", metric_id=metric_id)
    context: dict[str, Any] = {"message": message}
    if _returns_to_metric(request):
        metric = Metric.objects.select_related("source").get(pk=metric_id)
        context.update(_metric_summary_context(metric, tree), on_metric_page=True)
        focus = "#metric-title"
    else:
        context.update(_tree_metrics_context(tree))
        focus = f"#metric-link-{metric_id}"
    response = render(request, "outcomes/_metric_saved.html", context)
    trigger_client_event(response, CLOSE_DIALOG, {"focus": focus}, after="settle")
    return response


@login_required
def metric_create(request: HttpRequest, source_id: int) -> HttpResponse:
    """Add a metric to a source (a page, or the metrics page's dialog)."""
    source, tree = _source(request, source_id)
    form = MetricForm(request.POST or None, kind=source.kind)
    if request.method == "POST" and form.is_valid():
        try:
            metric = services.metric_create(source=source, **form.service_fields())
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            return _metric_saved(request, tree, metric.pk, f"Metric “{metric.name}” added.")
    return _metric_form(request, tree, source, form, None)


@login_required
def metric_edit(request: HttpRequest, metric_id: int) -> HttpResponse:
    """Change a metric (a page, or the dialog of the metrics page or its own page)."""
    metric, tree = _metric(request, metric_id, edit=True)
    form = MetricForm(request.POST or None, kind=metric.source.kind, metric=metric)
    if request.method == "POST" and form.is_valid():
        try:
            # A copy: a refused change must not show on the form as if saved.
            services.metric_update(
                metric=Metric.objects.select_related("source").get(pk=metric.pk),
                **form.service_fields(),
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            message = f"Metric “{form.cleaned_data['name']}” saved."
            return _metric_saved(request, tree, metric.pk, message)
    return _metric_form(request, tree, metric.source, form, metric)


@login_required
def metric_delete(request: HttpRequest, metric_id: int) -> HttpResponse:
    """Ask first, saying how many values go and which measures lose their metric."""
    metric, tree = _metric(request, metric_id, edit=True)
    if request.method == "POST":
        services.metric_delete(metric=metric)
        messages.success(request, f"Metric “{metric.name}” and its values deleted.")
        return redirect("outcomes:tree-metrics", slug=tree.slug)
    return render(
        request,
        "outcomes/metric_delete.html",
        {
            "tree": tree,
            "metric": metric,
            "observation_count": metric.observations.count(),
            "measures": metric.measures.select_related("node").order_by("node__title", "name"),
        },
    )


def single_period_axis(moment: datetime) -> dict[str, Any]:
    """The x axis of a chart with one value: that day, a week either side, in days."""
    return {
        "range": [
            (moment - timedelta(days=7)).strftime("%Y-%m-%d"),
            (moment + timedelta(days=7)).strftime("%Y-%m-%d"),
        ],
        "tickformat": "%d %b %Y",
    }


def observation_figure(metric: Metric, points: Sequence[tuple[datetime, float]]) -> dict[str, Any]:
    """A Plotly figure of the values, periods shown in the metric's time zone.

    User text is HTML-escaped: Plotly draws some tags found in labels.
    """
    zone = ZoneInfo(metric.timezone)
    unit = dashboard_selectors.plotly_text(metric.unit)
    xaxis: dict[str, Any] = {"type": "date", "title": {"text": f"Period start ({metric.timezone})"}}
    if len({start for start, _ in points}) == 1:
        # One period: a week either side, not an axis of milliseconds around one point.
        xaxis.update(single_period_axis(points[0][0].astimezone(zone)))
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": dashboard_selectors.plotly_text(metric.name),
                "x": [start.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") for start, _ in points],
                "y": [value for _, value in points],
                "hovertemplate": f"%{{y}} {unit}<br>%{{x}}<extra></extra>",
            }
        ],
        "layout": {
            "margin": {"t": 16, "r": 16, "b": 48, "l": 64},
            "height": 320,
            "showlegend": False,
            "xaxis": xaxis,
            "yaxis": {"title": {"text": unit or "Value"}, "rangemode": "tozero"},
        },
        "config": {"displaylogo": False, "responsive": True},
    }


def _metric_page(
    request: HttpRequest,
    metric: Metric,
    tree: ValueTree,
    *,
    upload_form: CsvUploadForm | None = None,
    check_in_form: CheckInForm | None = None,
) -> HttpResponse:
    newest = selectors.metric_observations(metric).order_by("-period_start")
    points = list(newest.values_list("period_start", "value")[:CHART_POINTS])[::-1]
    invalid = bool(upload_form and upload_form.errors) or bool(
        check_in_form and check_in_form.errors
    )
    return render(
        request,
        "outcomes/metric.html",
        {
            **_metric_summary_context(metric, tree),
            "figure": observation_figure(metric, points),
            "table": points[-TABLE_POINTS:][::-1],
            "observation_count": len(points),
            "chart_limit": CHART_POINTS,
            "runs": selectors.metric_pull_runs(metric)[:RECENT_RUNS],
            "measures": metric.measures.select_related("node").order_by("node__title", "name"),
            "upload_form": upload_form or CsvUploadForm(),
            "check_in_form": check_in_form or CheckInForm(),
        },
        status=400 if invalid else 200,
    )


def _metric_summary_context(metric: Metric, tree: ValueTree) -> dict[str, Any]:
    """What the top of a metric's page shows (name, health, source, query, schedule)."""
    metric.health = selectors.metric_health(metric)
    metric.schedule_words = schedule_words(metric)
    if metric.expected_frequency:
        metric.expected_words = duration_words(metric.expected_frequency)
    return {
        "tree": tree,
        "metric": metric,
        "is_push": metric.source.kind == SourceKind.PUSH,
        "can_edit": tree.caller_role in EDIT_ROLES,
    }


@login_required
def metric_page(request: HttpRequest, metric_id: int) -> HttpResponse:
    metric, tree = _metric(request, metric_id)
    return _metric_page(request, metric, tree)


# --- Values sent by people: CSV uploads and check-ins -----------------------------------


@login_required
@require_POST
def metric_upload(request: HttpRequest, metric_id: int) -> HttpResponse:
    """Store a CSV of values, all or nothing; an error names the line to fix."""
    metric, tree = _metric(request, metric_id, edit=True)
    form = CsvUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            raw_points, lines = pulling.csv_points(form.cleaned_data["file"])
            run = pulling.observations_push(
                metric=metric,
                raw_points=raw_points,
                trigger=PullTrigger.UPLOAD,
                user=request.user,
                describe=lambda index: f"Line {lines[index]}",
            )
        except ValidationError as error:
            form.add_error("file", error.messages)
        else:
            count = run.values_written
            messages.success(request, f"{count} value{'s' if count != 1 else ''} stored.")
            return redirect("outcomes:metric", metric_id=metric.pk)
    return _metric_page(request, metric, tree, upload_form=form)


def _check_in(request: HttpRequest, metric: Metric, form: CheckInForm) -> bool:
    """Store one value from a valid check-in form; False (errors on the form) if refused."""
    data = form.cleaned_data
    try:
        pulling.observations_push(
            metric=metric,
            raw_points=[(data["period"] or None, data["value"])],
            trigger=PullTrigger.CHECK_IN,
            user=request.user,
            describe=lambda index: "Check-in",
        )
    except ValidationError as error:
        form.add_error(None, error.messages)
        return False
    # The page the person goes back to shows the verdict this value makes (the queued
    # evaluation the push also starts finds the same numbers).
    evaluation.measures_evaluate(
        measure_ids=Measure.objects.filter(metric=metric).values_list("id", flat=True)
    )
    unit = f" {metric.unit}" if metric.unit else ""
    messages.success(request, f"Checked in {data['value']:g}{unit} for “{metric.name}”.")
    return True


@login_required
@require_POST
def metric_check_in(request: HttpRequest, metric_id: int) -> HttpResponse:
    metric, tree = _metric(request, metric_id, edit=True)
    form = CheckInForm(request.POST)
    if form.is_valid() and _check_in(request, metric, form):
        return redirect("outcomes:metric", metric_id=metric.pk)
    return _metric_page(request, metric, tree, check_in_form=form)


@login_required
def measure_check_in(request: HttpRequest, measure_id: int) -> HttpResponse:
    """Check in a value for the push metric behind a measure (the node page's form)."""
    measure = get_object_or_404(
        Measure.objects.select_related("node", "metric__source"),
        pk=measure_id,
        node__in=nodes_for_user(request.user),
    )
    tree = _tree(request, pk=measure.node.tree_id)
    _require_edit(tree)
    metric = measure.metric
    if metric is None or metric.source.kind != SourceKind.PUSH:
        raise Http404("This measure's values are not checked in: it has no push metric.")
    form = CheckInForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _check_in(request, metric, form):
        return redirect("valuetree:node", node_id=measure.node_id)
    return render(
        request,
        "outcomes/check_in.html",
        {"tree": tree, "measure": measure, "metric": metric, "form": form},
        status=400 if form.errors else 200,
    )


# --- Leadership outcome dashboard -------------------------------------------------------


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Every readable tree's outcomes, filtered by tree, domain and period (GET)."""
    portfolio = dashboard_selectors.dashboard_portfolio(user=request.user, params=request.GET)
    counts = dashboard_selectors.status_counts(portfolio)
    return render(
        request,
        "outcomes/dashboard.html",
        {
            "portfolio": portfolio,
            "filters": portfolio.filters,
            "periods": dashboard_selectors.PERIODS,
            "figures": dashboard_selectors.dashboard_figures(portfolio),
            "status_rows": [
                (status, dashboard_selectors.STATUS_LABELS[status], counts[status])
                for status in dashboard_selectors.STATUS_COLOURS
            ],
            "goal_rows": dashboard_selectors.goal_values(portfolio),
            "bet_rows": dashboard_selectors.bet_rows(portfolio),
            "attention": dashboard_selectors.attention_rows(portfolio),
        },
    )


@login_required
def dashboard_measure(request: HttpRequest, measure_id: int) -> HttpResponse:
    """One measure: baseline, target, plan, observations and forecast band."""
    measure = dashboard_selectors.measure_for_user(request.user, measure_id)
    if measure is None:
        raise Http404("No such measure in a tree you may read.")
    detail = dashboard_selectors.measure_detail(measure)
    status = detail["verdict"]["status"] if detail["verdict"] else "no_data"
    caller_role = (
        trees_for_user(request.user)
        .filter(pk=measure.node.tree_id)
        .values_list("caller_role", flat=True)
    )
    return render(
        request,
        "outcomes/dashboard_measure.html",
        {
            "measure": measure,
            "can_edit": next(iter(caller_role), None) in EDIT_ROLES,
            "detail": detail,
            "verdict": detail["verdict"],
            "status": status,
            "status_label": dashboard_selectors.STATUS_LABELS[status],
            "status_colour": dashboard_selectors.status_colour(status),
            "figure": dashboard_selectors.measure_figure(measure, detail),
            "table": detail["points"][-TABLE_POINTS:][::-1],
        },
    )


@login_required
@require_POST
def measure_reevaluate(request: HttpRequest, measure_id: int) -> HttpResponse:
    """Evaluate one measure now (editors). htmx reloads the page; without it, back to
    the measure's page."""
    measure = get_object_or_404(Measure.objects.select_related("node"), pk=measure_id)
    _require_edit(_tree(request, pk=measure.node.tree_id))
    services.measure_reevaluate(measure=measure)
    if request.htmx:
        return HttpResponseClientRefresh()
    messages.success(request, "Re-evaluated.")
    return redirect("outcomes:dashboard-measure", measure_id=measure.pk)


# --- Think again ----------------------------------------------------------------------


@login_required
def tree_think_again(request: HttpRequest, slug: str) -> HttpResponse:
    """What in the tree deserves a second look: missed bets, unmeasured initiatives,
    measures without numbers, stale or failing metrics, unused data products."""
    tree = _tree(request, slug=slug)
    context = {"tree": tree, "items": think_again(tree), "can_edit": tree.caller_role in EDIT_ROLES}
    return render(request, "outcomes/think_again.html", context)


@login_required
@throttle("evaluations")  # saving re-evaluates
def tree_verdict_policy(request: HttpRequest, slug: str) -> HttpResponse:
    """The tree's tolerance bands (owners and editors); saving re-evaluates its measures."""
    tree = _tree(request, slug=slug)
    _require_edit(tree)
    current = selectors.verdict_policy_get(tree)
    form = VerdictPolicyForm(request.POST or None, current=current)
    if request.method == "POST" and form.is_valid():
        try:
            services.verdict_policy_set(tree_id=tree.pk, **form.bands())
        except ValidationError as error:
            add_service_errors(form, _percent_errors(error))
        else:
            messages.success(
                request, "Tolerance bands saved; the tree's verdicts are being redone."
            )
            return redirect("outcomes:tree-think-again", slug=tree.slug)
    return _form_page(request, "outcomes/verdict_policy.html", {"tree": tree, "form": form}, form)


def _percent_errors(error: ValidationError) -> ValidationError:
    """The service's field names, as the form's."""
    if not hasattr(error, "error_dict"):
        return error
    return ValidationError(
        {
            VerdictPolicyForm.FIELDS.get(field, field): messages_
            for field, messages_ in error.error_dict.items()
        }
    )
