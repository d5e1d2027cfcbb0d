"""Measures in the browser: add, edit and remove them from a node's page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from outcomes import services
from outcomes.forms import MeasureForm
from outcomes.models import Measure
from valuetree.forms import add_service_errors
from valuetree.models import Node
from valuetree.selectors import EDIT_ROLES, nodes_for_user, trees_for_user


def _editable_node(request: HttpRequest, node_id: int) -> Node:
    node = get_object_or_404(nodes_for_user(request.user), pk=node_id)
    tree = trees_for_user(request.user).get(pk=node.tree_id)
    if tree.caller_role not in EDIT_ROLES:
        raise PermissionDenied(f"Your role in this tree ({tree.caller_role}) does not allow this.")
    return node


def _measure_form(
    request: HttpRequest, node: Node, form: MeasureForm, measure: Measure | None
) -> HttpResponse:
    return render(
        request,
        "outcomes/measure_form.html",
        {"node": node, "form": form, "measure": measure},
        status=400 if form.errors else 200,
    )


@login_required
def measure_create(request: HttpRequest, node_id: int) -> HttpResponse:
    node = _editable_node(request, node_id)
    form = MeasureForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            measure = services.measure_create(node=node, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Measure “{measure.name}” added.")
            return redirect("valuetree:node", node_id=node.pk)
    return _measure_form(request, node, form, None)


@login_required
def measure_edit(request: HttpRequest, measure_id: int) -> HttpResponse:
    measure = get_object_or_404(Measure, pk=measure_id, node__in=nodes_for_user(request.user))
    node = _editable_node(request, measure.node_id)
    form = MeasureForm(request.POST or None, instance=measure)
    if request.method == "POST" and form.is_valid():
        try:
            services.measure_update(measure=measure, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Measure “{measure.name}” saved.")
            return redirect("valuetree:node", node_id=node.pk)
    return _measure_form(request, node, form, measure)


@login_required
@require_POST
def measure_delete(request: HttpRequest, measure_id: int) -> HttpResponse:
    measure = get_object_or_404(Measure, pk=measure_id, node__in=nodes_for_user(request.user))
    node = _editable_node(request, measure.node_id)
    services.measure_delete(measure=measure)
    messages.success(request, f"Measure “{measure.name}” removed.")
    return redirect("valuetree:node", node_id=node.pk)
