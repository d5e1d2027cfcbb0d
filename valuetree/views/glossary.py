"""The business glossary pages: the list (with search and export), a term's page
(its forms, products and columns, linking and unlinking a contract column), and the
form to add or change a term."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from valuetree import selectors, services
from valuetree.forms import GlossaryTermForm, add_service_errors
from valuetree.models import DataProduct, GlossaryColumnLink, GlossaryTerm


@login_required
def glossary_list(request: HttpRequest) -> HttpResponse:
    query = selectors.search_query(request.GET.get("q"))
    terms = selectors.glossary_terms()
    if query:
        # JSON lists are searched as text: a synonym is found inside the list.
        terms = terms.filter(
            Q(name__icontains=query)
            | Q(definition__icontains=query)
            | Q(synonyms__icontains=query)
            | Q(abbreviations__icontains=query)
        )
    return render(
        request,
        "valuetree/glossary/list.html",
        {
            "terms": terms,
            "query": query,
            "can_add": request.user.is_staff
            or selectors.glossary_may_write_somewhere(request.user),
        },
    )


@login_required
def glossary_export(request: HttpRequest) -> HttpResponse:
    fmt = request.GET.get("as", "yaml")
    if fmt not in ("yaml", "csv"):
        fmt = "yaml"
    response = HttpResponse(
        selectors.glossary_export(fmt=fmt),
        content_type="text/csv" if fmt == "csv" else "application/yaml",
    )
    response["Content-Disposition"] = f'attachment; filename="glossary.{fmt}"'
    return response


@login_required
def glossary_term(request: HttpRequest, slug: str) -> HttpResponse:
    term = get_object_or_404(selectors.glossary_terms(), slug=slug)
    can_edit = selectors.glossary_term_can_edit(request.user, term)
    columns = list(selectors.glossary_term_columns(term))
    return render(
        request,
        "valuetree/glossary/detail.html",
        {
            "term": term,
            "columns": [
                (
                    link,
                    can_edit or selectors.data_product_can_edit(request.user, link.data_product),
                )
                for link in columns
            ],
            "linkable": selectors.glossary_linkable_columns(request.user, term),
            "can_edit": can_edit,
        },
    )


@login_required
@require_POST
def glossary_column_link(request: HttpRequest, slug: str) -> HttpResponse:
    """Link the term to the column posted as ``column`` = ``product-slug/port/column``
    (a choice of the term page's form)."""
    term = get_object_or_404(GlossaryTerm, slug=slug)
    product_slug, _, rest = request.POST.get("column", "").partition("/")
    port, _, column = rest.partition("/")
    product = DataProduct.objects.filter(slug=product_slug).first()
    if product is None or not port or not column:
        messages.error(request, "Choose a column to link.")
        return redirect("valuetree:glossary-term", slug=term.slug)
    if not selectors.glossary_column_can_link(request.user, term, product):
        raise PermissionDenied("The term's editors and the product's owner link its columns.")
    try:
        services.glossary_column_link(term=term, product=product, port=port, column=column)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Linked {product.name}: {port}.{column} to “{term.name}”.")
    return redirect("valuetree:glossary-term", slug=term.slug)


@login_required
@require_POST
def glossary_column_unlink(request: HttpRequest, slug: str, link_id: int) -> HttpResponse:
    term = get_object_or_404(GlossaryTerm, slug=slug)
    link = get_object_or_404(
        GlossaryColumnLink.objects.select_related("data_product"), pk=link_id, term=term
    )
    if not selectors.glossary_column_can_link(request.user, term, link.data_product):
        raise PermissionDenied("The term's editors and the product's owner unlink its columns.")
    services.glossary_column_unlink(link=link)
    messages.success(
        request, f"Unlinked {link.data_product.name}: {link.port}.{link.column} from “{term.name}”."
    )
    return redirect("valuetree:glossary-term", slug=term.slug)


def _fields(form: GlossaryTermForm) -> dict[str, object]:
    data = dict(form.cleaned_data)
    return data


@login_required
@require_http_methods(["GET", "POST"])
def glossary_term_create(request: HttpRequest) -> HttpResponse:
    form = GlossaryTermForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not selectors.glossary_may_write(request.user, form.cleaned_data["domain"]):
            raise PermissionDenied("Staff add company-wide terms; domain owners add their own.")
        try:
            term = services.glossary_term_create(by=request.user, **_fields(form))
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Added “{term.name}” to the glossary.")
            return redirect("valuetree:glossary-term", slug=term.slug)
    return render(request, "valuetree/glossary/form.html", {"form": form, "term": None})


@login_required
@require_http_methods(["GET", "POST"])
def glossary_term_edit(request: HttpRequest, slug: str) -> HttpResponse:
    term = get_object_or_404(GlossaryTerm, slug=slug)
    if not selectors.glossary_term_can_edit(request.user, term):
        raise PermissionDenied("Only staff, the term's owner or its domain's owners change it.")
    form = GlossaryTermForm(request.POST or None, initial=GlossaryTermForm.initial_for(term))
    if request.method == "POST" and form.is_valid():
        domain = form.cleaned_data["domain"]
        if domain != term.domain and not selectors.glossary_may_write(request.user, domain):
            raise PermissionDenied("You may not move the term into that domain.")
        try:
            services.glossary_term_update(term=term, **_fields(form))
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Saved “{term.name}”.")
            return redirect("valuetree:glossary-term", slug=term.slug)
    return render(request, "valuetree/glossary/form.html", {"form": form, "term": term})


@login_required
@require_POST
def glossary_term_delete(request: HttpRequest, slug: str) -> HttpResponse:
    term = get_object_or_404(GlossaryTerm, slug=slug)
    if not selectors.glossary_term_can_edit(request.user, term):
        raise PermissionDenied("Only staff, the term's owner or its domain's owners delete it.")
    services.glossary_term_delete(term=term)
    messages.success(request, f"Deleted “{term.name}” from the glossary.")
    return redirect("valuetree:glossary")
