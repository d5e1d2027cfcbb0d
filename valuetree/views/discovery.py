"""Data products in the open: the discovery board, early consumers, lifecycle moves,
duplicates and notifications.

Reading is for everyone logged in; moving a product through its lifecycle and
marking it a duplicate are for its owner (or staff); registering interest is for
anyone who edits the tree of the initiative it would serve.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from valuetree import selectors, services, strict
from valuetree.forms import (
    BoardFilterForm,
    ConsumerInterestForm,
    DuplicateForm,
    TransitionForm,
    add_service_errors,
)
from valuetree.models import DataProduct
from valuetree.similarity import Probe, similar_products


@vary_on_headers("HX-Request")
@login_required
def board(request: HttpRequest) -> HttpResponse:
    """Every product in discovery or design across all domains, and the orphans."""
    form = BoardFilterForm(request.GET)
    form.is_valid()  # an unknown domain or stage is reported and ignored
    filters = form.cleaned_data
    products = selectors.discovery_board(
        request.user,
        domain=filters.get("domain"),
        stage=filters.get("stage", ""),
        query=filters.get("q", ""),
    )
    context = {"form": form, "products": products, "filtered": any(filters.values())}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "valuetree/catalogue/_board_cards.html", context)
    context |= {
        "orphans": selectors.orphan_products(),
        "ending": selectors.initiatives_on_ending_products(request.user),
    }
    return render(request, "valuetree/catalogue/board.html", context)


@login_required
@require_POST
def similar_check(request: HttpRequest) -> HttpResponse:
    """The products like the one being typed into the product form (htmx)."""
    ports = " ".join(
        value for key, value in request.POST.items() if key.endswith("-name") and value
    )
    probe = Probe(
        name=request.POST.get("name", "")[:200],
        purpose=request.POST.get("purpose", "")[:5000],
        ports=ports[:5000],
        usage=request.POST.get("description", "")[:5000],
        domain_id=int(domain)
        if (domain := request.POST.get("domain")) and strict.is_id(domain)
        else None,
    )
    exclude = request.POST.get("product")
    product_pk = int(exclude) if exclude and strict.is_id(exclude) else None
    return render(
        request,
        "valuetree/catalogue/_similar.html",
        {"similar": similar_products(probe, exclude_pk=product_pk), "checked": True},
    )


def _errors_as_messages(request: HttpRequest, form: forms.Form) -> None:
    """A small form on the product page reports its errors on the page it returns to."""
    for errors in form.errors.values():
        for message in errors:
            messages.error(request, message)


def _owned_product(request: HttpRequest, slug: str) -> DataProduct:
    product = get_object_or_404(DataProduct.objects.select_related("owner", "domain"), slug=slug)
    if not selectors.data_product_can_edit(request.user, product):
        raise PermissionDenied("Only the data product's owner or staff may do this.")
    return product


@login_required
@require_POST
def product_transition(request: HttpRequest, slug: str) -> HttpResponse:
    product = _owned_product(request, slug)
    form = TransitionForm(request.POST, product=product)
    if form.is_valid():
        try:
            services.data_product_transition(
                product=product,
                to_stage=form.cleaned_data["stage"],
                by=request.user,
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
    if form.errors:
        _errors_as_messages(request, form)
    else:
        product.refresh_from_db()
        messages.success(request, f"“{product.name}” is now {product.get_stage_display()}.")
    return redirect("valuetree:data-product", slug=product.slug)


@login_required
@require_POST
def product_duplicate(request: HttpRequest, slug: str) -> HttpResponse:
    product = _owned_product(request, slug)
    form = DuplicateForm(request.POST)
    if form.is_valid():
        original, then = form.cleaned_data["original"], form.cleaned_data["then"]
        try:
            moved = services.data_product_resolve_duplicate(
                product=product, original=original, then=then, by=request.user
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            if moved is not None:
                done = (
                    f"Merged into “{original.name}”: {moved['links']} node link(s) and "
                    f"{moved['interests']} waiting team(s) moved; “{product.name}” retired."
                )
            elif then == "retire":
                done = f"“{product.name}” is retired as a duplicate."
            else:
                done = f"“{product.name}” is marked as a duplicate of “{original.name}”."
            messages.success(request, done)
    _errors_as_messages(request, form)
    return redirect("valuetree:data-product", slug=product.slug)


@login_required
@require_http_methods(["GET", "POST"])
def register_interest(request: HttpRequest, slug: str) -> HttpResponse:
    """A team registers as an early consumer, for an initiative of a tree it edits."""
    product = get_object_or_404(DataProduct.objects.select_related("owner", "domain"), slug=slug)
    initiatives = selectors.initiatives_for_interest(request.user)
    form = ConsumerInterestForm(request.POST or None, initiatives=initiatives)
    if request.method == "POST" and form.is_valid():
        try:
            services.consumer_interest_register(
                product=product,
                node=form.cleaned_data["node"],
                user=request.user,
                team=form.cleaned_data["team"],
                purpose=form.cleaned_data["purpose"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                f"{form.cleaned_data['team']} is registered as waiting for “{product.name}”.",
            )
            return redirect("valuetree:data-product", slug=product.slug)
    return render(
        request,
        "valuetree/catalogue/interest_form.html",
        {"form": form, "product": product, "has_initiatives": initiatives.exists()},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def withdraw_interest(request: HttpRequest, slug: str, interest_id: int) -> HttpResponse:
    product = get_object_or_404(DataProduct, slug=slug)
    interest = get_object_or_404(product.interests.all(), pk=interest_id)
    if interest.user_id != request.user.pk and not selectors.data_product_can_edit(
        request.user, product
    ):
        raise PermissionDenied("Only who registered it or the product's owner may withdraw it.")
    services.consumer_interest_withdraw(interest=interest)
    messages.success(request, f"{interest.team} no longer waits for “{product.name}”.")
    return redirect("valuetree:data-product", slug=product.slug)


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    notifications = selectors.notifications_for(request.user)[:200]
    return render(request, "valuetree/notifications.html", {"notifications": notifications})


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    ids = [int(value) for value in request.POST.getlist("id") if strict.is_id(value)]
    services.notifications_mark_read(user=request.user, ids=ids or None)
    return redirect("valuetree:notifications")


@login_required
def notification_badge(request: HttpRequest) -> HttpResponse:
    """The header's unread count, fetched by htmx so no page pays a query for it."""
    return render(
        request,
        "valuetree/_notification_badge.html",
        {"unread": selectors.unread_notification_count(request.user)},
    )
