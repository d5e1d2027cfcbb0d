"""The data product catalogue: list with filters, detail, create and edit.

Discovery is public: everyone logged in reads every data product; its owner (or
staff) changes it, as in the API. One view and one template serve the list page
and, for htmx, only its results table.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from config.throttling import throttle
from valuetree import interchange, selectors, services, standards
from valuetree.forms import (
    BaseOutputPortFormSet,
    DataProductFilterForm,
    DataProductForm,
    DuplicateForm,
    OutputPortFormSet,
    StandardsImportForm,
    TransitionForm,
    add_service_errors,
)
from valuetree.models import CONSUMER_STAGES, DataProduct, DataProductLink, OutputPort
from valuetree.similarity import Probe, similar_products

PORTS_PREFIX = "ports"
ANOTHER_PORT = "_another_port"


# Browsers cache by URL: the page and its htmx fragment must not be mixed up when
# the user goes back to a filtered list.
@vary_on_headers("HX-Request")
@login_required
def data_product_list(request: HttpRequest) -> HttpResponse:
    form = DataProductFilterForm(request.GET)
    form.is_valid()  # an unknown domain or stage is reported and ignored, not a 500
    filters = form.cleaned_data
    products = selectors.data_product_catalogue(
        request.user,
        domain=filters.get("domain"),
        stage=filters.get("stage", ""),
        query=filters.get("q", ""),
    )
    # A history restore asks for the whole page although it comes from htmx.
    fragment = request.htmx and not request.htmx.history_restore_request
    return render(
        request,
        "valuetree/catalogue/_rows.html" if fragment else "valuetree/catalogue/list.html",
        {"form": form, "products": products, "filtered": any(filters.values())},
    )


@login_required
def data_product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(
        DataProduct.objects.select_related("domain", "owner", "duplicate_of").prefetch_related(
            Prefetch("output_ports", queryset=OutputPort.objects.select_related("contract"))
        ),
        slug=slug,
    )
    # Only nodes of trees the viewer may read: a product may serve trees the viewer
    # must not learn about.
    links = (
        DataProductLink.objects.filter(
            data_product=product, node__in=selectors.nodes_for_user(request.user)
        )
        .select_related("node__tree")
        .order_by("node__tree__name", "node__title", "node_id", "role")
    )
    can_edit = selectors.data_product_can_edit(request.user, product)
    similar = similar_products(Probe.of(product), exclude_pk=product.pk)
    return render(
        request,
        "valuetree/catalogue/detail.html",
        {
            "product": product,
            "links": links,
            "can_edit": can_edit,
            "similar": similar,
            "transitions": selectors.product_transitions(product=product),
            "interests": selectors.product_interests(request.user, product=product),
            "ports": product.output_ports.all(),
            "transition_form": TransitionForm(product=product) if can_edit else None,
            "duplicate_form": DuplicateForm() if can_edit and not product.duplicate_of_id else None,
            "open_to_consumers": product.stage in CONSUMER_STAGES,
        },
    )


def _form_page(
    request: HttpRequest,
    *,
    form: DataProductForm,
    ports: BaseOutputPortFormSet,
    product: DataProduct | None,
) -> HttpResponse:
    return render(
        request,
        "valuetree/catalogue/form.html",
        {"form": form, "ports": ports, "product": product},
        status=400 if request.method == "POST" else 200,
    )


def _saved(request: HttpRequest, product: DataProduct, message: str) -> HttpResponse:
    messages.success(request, message)
    if ANOTHER_PORT in request.POST and selectors.data_product_can_edit(request.user, product):
        return redirect("valuetree:data-product-edit", slug=product.slug)
    return redirect("valuetree:data-product", slug=product.slug)


@login_required
@require_http_methods(["GET", "POST"])
def data_product_create(request: HttpRequest) -> HttpResponse:
    """Anyone logged in may propose a data product; they own it unless they name
    another owner."""
    if request.method != "POST":
        return _form_page(
            request,
            form=DataProductForm(initial={"owner": request.user}, user=request.user),
            ports=OutputPortFormSet(prefix=PORTS_PREFIX),
            product=None,
        )
    form = DataProductForm(request.POST, user=request.user)
    ports = OutputPortFormSet(request.POST, prefix=PORTS_PREFIX)
    if form.is_valid() and ports.is_valid():
        try:
            product = services.data_product_create(
                output_ports=ports.ports(), by=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return _saved(request, product, f"Data product “{product.name}” created.")
    return _form_page(request, form=form, ports=ports, product=None)


@login_required
@require_http_methods(["GET", "POST"])
def data_product_edit(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(DataProduct.objects.select_related("owner"), slug=slug)
    if not selectors.data_product_can_edit(request.user, product):
        raise PermissionDenied("Only the data product's owner or staff may change it.")
    if request.method != "POST":
        current = [
            {"name": port.name, "kind": port.kind, "location": port.location}
            for port in product.output_ports.all()
        ]
        return _form_page(
            request,
            form=DataProductForm(instance=product),
            ports=OutputPortFormSet(initial=current, prefix=PORTS_PREFIX),
            product=product,
        )
    form = DataProductForm(request.POST, instance=product)
    ports = OutputPortFormSet(request.POST, prefix=PORTS_PREFIX)
    if form.is_valid() and ports.is_valid():
        try:
            services.data_product_update(
                product=product, output_ports=ports.ports(), by=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            # The service set the refused values on the object; the page (title,
            # links) must show the product as it is stored.
            product.refresh_from_db()
            add_service_errors(form, error)
        else:
            return _saved(request, product, f"Data product “{product.name}” saved.")
    return _form_page(request, form=form, ports=ports, product=product)


@login_required
@require_http_methods(["GET", "POST"])
@throttle("imports")
def data_product_import(request: HttpRequest) -> HttpResponse:
    """Import Bitol ODPS data products or an ODCS data contract: every problem is
    listed by its path and line, and nothing is written unless all of it is valid."""
    form = StandardsImportForm(request.POST or None, request.FILES or None)
    problems: list[interchange.Problem] = []
    if request.method == "POST" and form.is_valid():
        raw, fmt = form.document()
        try:
            if form.cleaned_data["standard"] == "odps":
                products = standards.odps_import_text(raw, user=request.user, fmt=fmt)
                names = ", ".join(f"“{product.name}”" for product in products)
                messages.success(request, f"Imported {len(products)} data product(s): {names}.")
                if len(products) == 1:
                    return redirect("valuetree:data-product", slug=products[0].slug)
                return redirect("valuetree:data-product-list")
            contract = standards.odcs_import_text(
                raw,
                fmt=fmt,
                user=request.user,
                product_slug=form.cleaned_data["product"] or None,
                port_name=form.cleaned_data["port"] or None,
            )
        except interchange.ImportFailed as failed:
            problems = failed.problems
        else:
            port = contract.output_port
            messages.success(
                request, f"Imported the contract “{contract}” for the port “{port.name}”."
            )
            return redirect("valuetree:data-product", slug=port.data_product.slug)
    forbidden = any(isinstance(problem, standards.Forbidden) for problem in problems)
    return render(
        request,
        "valuetree/catalogue/import.html",
        {"form": form, "problems": problems},
        status=(403 if forbidden else 400) if request.method == "POST" else 200,
    )
