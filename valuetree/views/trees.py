"""The tree editor: home, tree page (outline and diagram), node forms, moves,
members. Every change goes through the same services as the API.

With htmx, forms open in the page's dialog and a successful change re-draws only
what changed (a node's card, or the outline after a structural change) with
out-of-band swaps. Without JavaScript every link and form is a plain page.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from valuetree import diagram, outline, sections, selectors, services, strict, trash
from valuetree.forms import (
    MembershipForm,
    MembershipRoleForm,
    NodeForm,
    TreeForm,
    add_service_errors,
)
from valuetree.models import (
    CHILD_KIND,
    PARENT_KIND,
    TRASH_DAYS,
    DataProduct,
    DataProductLink,
    LinkRole,
    Membership,
    Node,
    NodeStatus,
    Role,
    TrashedSubtree,
    ValueTree,
)

CLOSE_DIALOG = "vt:close-dialog"


# --- Access ----------------------------------------------------------------------------


def _tree(request: HttpRequest, **lookup: Any) -> ValueTree:
    """The tree with the caller's role, or 404 when the caller may not see it."""
    return get_object_or_404(selectors.trees_for_user(request.user), **lookup)


def _require(tree: ValueTree, roles: frozenset[str]) -> None:
    if tree.caller_role not in roles:
        raise PermissionDenied(f"Your role in this tree ({tree.caller_role}) does not allow this.")


def _node(request: HttpRequest, node_id: int) -> tuple[Node, ValueTree]:
    node = get_object_or_404(selectors.nodes_for_user(request.user), pk=node_id)
    return node, _tree(request, pk=node.tree_id)


def _editable_node(request: HttpRequest, node_id: int) -> tuple[Node, ValueTree]:
    node, tree = _node(request, node_id)
    _require(tree, selectors.EDIT_ROLES)
    return node, tree


# --- Responses shared by the htmx paths ----------------------------------------------------


def _outline_html(tree: ValueTree) -> str:
    document = selectors.tree_get(tree=tree)
    verdicts, states = sections.tree_view_states(tree.pk)
    return outline.render_outline(
        document,
        can_edit=tree.caller_role in selectors.EDIT_ROLES,
        verdicts=verdicts,
        states=states,
    )


def _message_html(text: str, *, level: str = "success") -> str:
    """The page's message area, replaced out of band."""
    role = "alert" if level == "error" else "status"
    return (
        f'<div id="messages" hx-swap-oob="innerHTML"><p class="message message--{level}" '
        f'role="{role}">{outline._e(text)}</p></div>'
    )


def _done(
    request: HttpRequest,
    tree: ValueTree,
    message: str,
    *,
    redraw: str,
    node: Node | None = None,
    focus: str | None = None,
) -> HttpResponse:
    """Finish a successful change: with htmx, close the dialog and re-draw either one
    node's card or the whole outline out of band; without, redirect to the tree."""
    if not request.htmx:
        messages.success(request, message)
        if node is not None and _returns_to_node(request):
            return redirect("valuetree:node", node_id=node.pk)
        return redirect("valuetree:tree", slug=tree.slug)
    if redraw == "card" and node is not None:
        card_data = selectors.node_card_get(node=node)
        card = outline.node_card(
            card_data,
            slug=tree.slug,
            can_edit=True,
            verdicts=sections.node_statuses(tree.pk),
            states=sections.measure_states(tree.pk, [m["id"] for m in card_data["measures"]]),
        ).replace('<div class="node__card', '<div hx-swap-oob="outerHTML" class="node__card', 1)
        body = card
    else:
        body = f'<div id="outline" hx-swap-oob="innerHTML">{_outline_html(tree)}</div>'
    body += _message_html(message)
    response = HttpResponse(body)
    # After the swaps settle: an event fired on arrival would close the dialog before
    # the (empty) dialog body is swapped in.
    trigger_client_event(response, CLOSE_DIALOG, {"focus": focus} if focus else {}, after="settle")
    return response


def _returns_to_node(request: HttpRequest) -> bool:
    """The action started on the node's page, which the user goes back to (a fixed
    flag rather than a URL, so nothing can redirect elsewhere)."""
    return "node" in (request.GET.get("return"), request.POST.get("return"))


def _form_page(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int | None = None
) -> HttpResponse:
    """A form as a full page, or only its body for the dialog when htmx asks.

    A form with errors answers 422, which the page's htmx config swaps into the
    dialog (htmx 2 swaps no other 4xx)."""
    context["in_dialog"] = bool(request.htmx)
    if status is None:
        form = context.get("form")
        status = 422 if form is not None and form.errors else 200
    return render(request, template, context, status=status)


# --- Home and trees --------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    """The trees the visitor may read, and a form to start a new one."""
    trees = selectors.tree_list(user=request.user) if request.user.is_authenticated else []
    return render(request, "valuetree/home.html", {"trees": trees, "form": TreeForm()})


@login_required
def tree_create(request: HttpRequest) -> HttpResponse:
    form = TreeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tree = services.tree_create(owner=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Tree “{tree.name}” created. Add its first goal.")
            return redirect("valuetree:tree", slug=tree.slug)
    return render(
        request,
        "valuetree/tree_form.html",
        {"form": form},
        status=400 if form.errors else 200,
    )


@login_required
def tree_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The whole tree: an outline to edit, or a left-to-right diagram to read."""
    tree = _tree(request, slug=slug)
    view = "diagram" if request.GET.get("view") == "diagram" else "outline"
    document = selectors.tree_get(tree=tree)
    can_edit = tree.caller_role in selectors.EDIT_ROLES
    verdicts, states = sections.tree_view_states(tree.pk)
    drawing = (
        outline.render_diagram(document, verdicts=verdicts, states=states)
        if view == "diagram"
        else outline.render_outline(document, can_edit=can_edit, verdicts=verdicts, states=states)
    )
    return render(
        request,
        "valuetree/tree.html",
        {
            "tree": tree,
            "view": view,
            "drawing": drawing,
            "can_edit": can_edit,
            "can_manage": tree.caller_role in selectors.MANAGE_ROLES,
            # The kind rules, so a refused drop can say why (the server enforces them).
            "parent_kinds": json.dumps(PARENT_KIND),
        },
    )


@login_required
def search(request: HttpRequest) -> HttpResponse:
    """Search the trees, nodes (titles, hypotheses, measures) and data products the
    caller may read; ``?tree=<slug>`` searches one tree's nodes. With htmx, only the
    results (the header's and the tree page's search boxes ask as you type)."""
    query = selectors.search_query(request.GET.get("q"))
    tree = None
    if request.GET.get("tree"):
        tree = _tree(request, slug=request.GET["tree"])
    results = selectors.search(user=request.user, query=query, tree=tree)
    return render(
        request,
        "valuetree/_search_results.html" if request.htmx else "valuetree/search.html",
        {
            "query": query.strip(),
            "tree": tree,
            "results": results,
            "count": sum(len(rows) for rows in results.values()),
        },
    )


@login_required
def tree_diagram_export(request: HttpRequest, slug: str, fmt: str) -> HttpResponse:
    """The tree's diagram to download: ``svg``, ``png`` or ``mermaid`` (text), with
    the measures' current values unless ``?measures=0``. Readers may download."""
    tree = _tree(request, slug=slug)
    if fmt not in diagram.FORMATS:
        raise Http404("Unknown diagram format.")
    try:
        body, content_type, filename = diagram.diagram_export(
            tree, fmt=fmt, measures=request.GET.get("measures") != "0"
        )
    except diagram.TooLargeForPng as error:
        return HttpResponse(str(error), status=422, content_type="text/plain; charset=utf-8")
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def tree_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """The tree's name and vision, and its members (owners manage both)."""
    tree = _tree(request, slug=slug)
    _require(tree, selectors.MANAGE_ROLES)
    tree_form = TreeForm(instance=tree, prefix="tree")
    member_form = MembershipForm(prefix="member", tree=tree)
    status = 200
    if request.method == "POST":
        if "tree-name" in request.POST:
            tree_form = TreeForm(
                request.POST, instance=ValueTree.objects.get(pk=tree.pk), prefix="tree"
            )
            if tree_form.is_valid():
                try:
                    services.tree_update(tree=tree, **tree_form.cleaned_data)
                except ValidationError as error:
                    add_service_errors(tree_form, error)
                else:
                    messages.success(request, "Tree updated.")
                    return redirect("valuetree:tree-settings", slug=tree.slug)
        else:
            member_form = MembershipForm(request.POST, prefix="member", tree=tree)
            if member_form.is_valid():
                try:
                    services.membership_set(tree=tree, **member_form.cleaned_data)
                except ValidationError as error:
                    add_service_errors(member_form, error)
                else:
                    user = member_form.cleaned_data["user"]
                    messages.success(request, f"{user.get_username()} is now a member.")
                    return redirect("valuetree:tree-settings", slug=tree.slug)
        status = 400
    members = Membership.objects.filter(tree=tree).select_related("user").order_by("user__username")
    return render(
        request,
        "valuetree/tree_settings.html",
        {
            "tree": tree,
            "tree_form": tree_form,
            "member_form": member_form,
            "members": [(m, MembershipRoleForm(instance=m, prefix=f"m{m.pk}")) for m in members],
        },
        status=status,
    )


@login_required
@require_POST
def member_update(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    """Change a member's role, or remove them (``remove`` in the form)."""
    tree = _tree(request, slug=slug)
    _require(tree, selectors.MANAGE_ROLES)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), tree=tree, pk=membership_id
    )
    username = membership.user.get_username()
    try:
        if "remove" in request.POST:
            services.membership_remove(membership=membership)
            messages.success(request, f"{username} is no longer a member.")
        else:
            form = MembershipRoleForm(request.POST, instance=membership, prefix=f"m{membership.pk}")
            if not form.is_valid():
                raise ValidationError(form.errors.get("role", ["Choose a role."]))
            services.membership_set(tree=tree, user=membership.user, role=form.cleaned_data["role"])
            messages.success(request, f"{username} is now {form.cleaned_data['role']}.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    if membership.user_id == request.user.pk:
        # An owner who stepped down (or left) may no longer open the settings.
        role = Membership.objects.filter(pk=membership.pk).values_list("role", flat=True).first()
        if role is None:
            return redirect("valuetree:home")
        if role != Role.OWNER:
            return redirect("valuetree:tree", slug=tree.slug)
    return redirect("valuetree:tree-settings", slug=tree.slug)


# --- Nodes ---------------------------------------------------------------------------


@login_required
def node_create(request: HttpRequest, slug: str) -> HttpResponse:
    """Add a child of the right kind under ``?parent=`` (none: a goal)."""
    tree = _tree(request, slug=slug)
    _require(tree, selectors.EDIT_ROLES)
    parent_id = request.GET.get("parent") or request.POST.get("parent") or ""
    if parent_id and not strict.is_id(parent_id):
        raise Http404("No such parent.")
    parent = get_object_or_404(Node, tree=tree, pk=parent_id) if parent_id else None
    kind = CHILD_KIND[parent.kind if parent else None]
    if kind is None:
        return HttpResponseBadRequest("Initiatives are leaves: nothing goes under them.")
    form = NodeForm(request.POST or None, kind=kind)
    if request.method == "POST" and form.is_valid():
        try:
            node = services.node_create(tree=tree, parent=parent, kind=kind, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return _done(
                request,
                tree,
                f"{kind.capitalize()} “{node.title}” added.",
                redraw="outline",
                focus=f"#card-{node.pk} .node__title",
            )
    return _form_page(
        request,
        "valuetree/node_form.html",
        {
            "tree": tree,
            "form": form,
            "kind": kind,
            "parent": parent,
            "action": reverse("valuetree:node-create", args=[tree.slug]),
        },
    )


@login_required
def node_edit(request: HttpRequest, node_id: int) -> HttpResponse:
    node, tree = _editable_node(request, node_id)
    form = NodeForm(request.POST or None, instance=node, kind=node.kind)
    if request.method == "POST" and form.is_valid():
        try:
            # A copy: a refused change must not show on the page as if saved.
            node = services.node_update(node=Node.objects.get(pk=node.pk), **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return _done(
                request,
                tree,
                f"“{node.title}” saved.",
                redraw="card",
                node=node,
                focus=f"#card-{node.pk} .node__title",
            )
    return _form_page(
        request,
        "valuetree/node_form.html",
        {
            "tree": tree,
            "form": form,
            "node": node,
            "kind": node.kind,
            "action": reverse("valuetree:node-edit", args=[node.pk])
            + ("?return=node" if _returns_to_node(request) else ""),
        },
    )


@login_required
@require_POST
def node_status(request: HttpRequest, node_id: int) -> HttpResponse:
    """Mark a node active or proposed. Killing and finishing are decisions: they go to
    the decision form, which asks for the rationale."""
    node, tree = _editable_node(request, node_id)
    status = request.POST.get("status", "")
    if status in services.DECIDED_STATUSES and node.kind != "goal" and not request.htmx:
        return redirect(
            services.DECIDE_PATH.format(node_id=node.pk, kind=services.DECISION_KINDS[status])
        )
    try:
        if status not in NodeStatus.values:
            raise ValidationError(f"Unknown status {status!r}.")
        services.node_status_check(node=node, status=status)
        services.node_update(node=node, status=status)
    except ValidationError as error:
        if request.htmx:
            return HttpResponse(_message_html(" ".join(error.messages), level="error"))
        messages.error(request, " ".join(error.messages))
        return redirect("valuetree:node", node_id=node.pk)
    return _done(request, tree, f"“{node.title}” is now {status}.", redraw="card", node=node)


def _parent_choices(node: Node) -> list[tuple[str, str]]:
    """Where ``node`` may go: every node of the parent kind its kind needs."""
    wanted = PARENT_KIND[node.kind]
    if wanted is None:
        return [("", "The vision (goals stay at the top)")]
    parents = Node.objects.filter(tree_id=node.tree_id, kind=wanted).select_related("parent")
    return [
        (str(p.pk), f"{p.parent.title} › {p.title}" if p.parent else p.title)
        for p in parents.order_by("parent__position", "position")
    ]


@login_required
def node_move(request: HttpRequest, node_id: int) -> HttpResponse:
    """Move a node (with its subtree) under a new parent, at a position. Drag and drop
    and the keyboard "Move…" form both post here; a refused move changes nothing and
    says why."""
    node, tree = _editable_node(request, node_id)
    error = None
    if request.method == "POST":
        parent_id = request.POST.get("parent") or None
        position_text = request.POST.get("position", "").strip()
        try:
            parent = Node.objects.filter(tree=tree).get(pk=int(parent_id)) if parent_id else None
            position = int(position_text) if position_text else None
            services.node_move(node=node, parent=parent, position=position)
        except (ValueError, Node.DoesNotExist):
            error = "Choose a parent from this tree and a whole-number position."
        except ValidationError as refused:
            error = " ".join(refused.messages)
        else:
            return _done(
                request,
                tree,
                f"“{node.title}” moved.",
                redraw="outline",
                node=node,
                focus=f"#card-{node.pk} .node__title",
            )
        if request.htmx and request.POST.get("via") == "drag":
            # The drop already moved the item on screen: put the outline back as the
            # database has it and say why the move was refused.
            return HttpResponse(
                f'<div id="outline" hx-swap-oob="innerHTML">{_outline_html(tree)}</div>'
                + _message_html(f"Move refused: {error}", level="error")
            )
    sibling_count = Node.objects.filter(tree=tree, parent_id=node.parent_id).count()
    return _form_page(
        request,
        "valuetree/node_move.html",
        {
            "tree": tree,
            "node": node,
            "choices": _parent_choices(node),
            "error": error,
            "sibling_count": sibling_count,
        },
        status=422 if error else 200,
    )


@login_required
def node_delete(request: HttpRequest, node_id: int) -> HttpResponse:
    """Ask first, saying how many descendants go too; deleting is for mistakes,
    killing (a status) is for work that stopped."""
    node, tree = _editable_node(request, node_id)
    descendants = selectors.node_descendant_count(node=node)
    if request.method == "POST":
        title = node.title
        trash.node_trash(node=node, user=request.user)
        extra = f" and {descendants} descendant(s)" if descendants else ""
        return _done(
            request,
            tree,
            f"“{title}”{extra} deleted. The tree's trash can restore it for {TRASH_DAYS} days.",
            redraw="outline",
        )
    return _form_page(
        request,
        "valuetree/node_delete.html",
        {"tree": tree, "node": node, "descendants": descendants},
    )


@login_required
def tree_trash(request: HttpRequest, slug: str) -> HttpResponse:
    """Deleted subtrees of the last ``TRASH_DAYS`` days; editors restore them (POST
    ``item``)."""
    tree = _tree(request, slug=slug)
    can_edit = tree.caller_role in selectors.EDIT_ROLES
    if request.method == "POST":
        _require(tree, selectors.EDIT_ROLES)
        item_id = request.POST.get("item", "")
        item = TrashedSubtree.objects.filter(
            tree=tree, pk=int(item_id) if strict.is_id(item_id) else 0
        ).first()
        if item is None:
            raise Http404("Nothing with that id in this tree's trash.")
        try:
            node = trash.trash_restore(item=item)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("valuetree:tree-trash", slug=tree.slug)
        messages.success(request, f"“{node.title}” is back where it was.")
        return redirect("valuetree:tree", slug=tree.slug)
    return render(
        request,
        "valuetree/tree_trash.html",
        {
            "tree": tree,
            "items": trash.trash_for_tree(tree=tree),
            "can_edit": can_edit,
            "days": TRASH_DAYS,
        },
    )


@login_required
def node_panel(request: HttpRequest, node_id: int) -> HttpResponse:
    """Everything about one node: its hypothesis and numbers, measures, data
    products and history."""
    node, tree = _node(request, node_id)
    node = Node.objects.select_related("owner", "accountable", "parent").get(pk=node.pk)
    links = DataProductLink.objects.filter(node=node).select_related("data_product__domain")
    history = selectors.history_entries(Node.history.filter(id=node.pk), model="node", limit=50)
    measures = list(node.measures.select_related("metric__source"))
    states = sections.measure_states(tree.pk, [m.pk for m in measures]) if measures else {}
    for measure in measures:
        measure.state = states.get(measure.pk)
    status, label = sections.node_statuses(tree.pk).get(node.pk, ("", ""))
    return render(
        request,
        "valuetree/node.html",
        {
            "tree": tree,
            "node": node,
            "measures": measures,
            "verdict": {"status": status, "label": label} if node.status != "killed" else None,
            "links": links,
            "interests": selectors.node_interests(node=node),
            "history": history,
            "can_edit": tree.caller_role in selectors.EDIT_ROLES,
            "statuses": NodeStatus.choices,
            "link_roles": LinkRole.choices,
            "panels": sections.node_panels(request, node, tree),
        },
    )


@login_required
def node_data_products(request: HttpRequest, node_id: int) -> HttpResponse:
    """Search the catalogue to link a data product to this node (GET ``q``), or link
    one (POST ``data_product``, ``role``)."""
    node, tree = _editable_node(request, node_id)
    if request.method == "POST":
        product = DataProduct.objects.filter(slug=request.POST.get("data_product", "")).first()
        try:
            if product is None:
                raise ValidationError("Choose a data product from the catalogue.")
            services.data_product_link(
                product=product, node=node, role=request.POST.get("role", "")
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"Linked “{product.name}”.")
        return redirect("valuetree:node", node_id=node.pk)
    query = selectors.search_query(request.GET.get("q"))
    return render(
        request,
        "valuetree/node_data_products.html",
        {
            "node": node,
            "tree": tree,
            "products": selectors.data_products_matching(query=query),
            "query": query,
            "link_roles": LinkRole.choices,
        },
    )


@login_required
@require_POST
def link_delete(request: HttpRequest, link_id: int) -> HttpResponse:
    link = get_object_or_404(
        DataProductLink.objects.select_related("data_product"),
        pk=link_id,
        node__in=selectors.nodes_for_user(request.user),
    )
    _editable_node(request, link.node_id)
    services.data_product_unlink(link=link)
    messages.success(request, f"Unlinked “{link.data_product.name}”.")
    return redirect("valuetree:node", node_id=link.node_id)
