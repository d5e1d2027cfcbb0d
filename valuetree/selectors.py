"""Reads: which trees a user may see, whole trees, lists, history."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Permission
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from valuetree import sections
from valuetree.models import (
    DataProduct,
    DataProductLink,
    Domain,
    Membership,
    Node,
    NodeKind,
    Role,
    ValueTree,
)

LEADERSHIP = "leadership"
# What each role may do with a tree. Leadership reads every tree, like a viewer.
READ_ROLES = frozenset({Role.OWNER, Role.EDITOR, Role.VIEWER, LEADERSHIP})
EDIT_ROLES = frozenset({Role.OWNER, Role.EDITOR})
MANAGE_ROLES = frozenset({Role.OWNER})

User = AbstractBaseUser | AnonymousUser


def _leadership_exists(user: User) -> Exists:
    return Exists(
        Permission.objects.filter(
            codename="read_all_trees", content_type__app_label="valuetree"
        ).filter(Q(group__user=user.pk) | Q(user=user.pk))
    )


def trees_for_user(user: User) -> QuerySet[ValueTree]:
    """Trees the user may read, each annotated with ``caller_role``.

    One query, whatever the user's route to the tree (membership, leadership,
    superuser), so a tree the user may not see simply is not there (a 404).
    """
    if not user.is_authenticated:
        return ValueTree.objects.none()
    if user.is_superuser:
        return ValueTree.objects.annotate(caller_role=Value(Role.OWNER.value))
    member_role = Membership.objects.filter(tree=OuterRef("pk"), user=user.pk).values("role")[:1]
    return (
        ValueTree.objects.annotate(
            member_role=Subquery(member_role), is_leader=_leadership_exists(user)
        )
        .filter(Q(member_role__isnull=False) | Q(is_leader=True))
        .annotate(caller_role=Coalesce("member_role", Value(LEADERSHIP)))
    )


def tree_list(*, user: User) -> QuerySet[ValueTree]:
    """Visible trees with their (first) owner and goal, bet and initiative counts, in
    one query."""
    first_owner = (
        Membership.objects.filter(tree=OuterRef("pk"), role=Role.OWNER)
        .order_by("created_at", "id")
        .values("user__username")[:1]
    )
    # Explicit order: Meta.ordering does not apply to a GROUP BY query.
    return (
        trees_for_user(user)
        .annotate(
            owner_username=Subquery(first_owner),
            goal_count=Count("nodes", filter=Q(nodes__kind=NodeKind.GOAL)),
            bet_count=Count("nodes", filter=Q(nodes__kind=NodeKind.BET)),
            initiative_count=Count("nodes", filter=Q(nodes__kind=NodeKind.INITIATIVE)),
        )
        .order_by("name", "id")
    )


def nodes_for_user(user: User) -> QuerySet[Node]:
    return Node.objects.filter(tree__in=trees_for_user(user).values("pk"))


# The columns of a node in the tree document, in order. Owner and accountable are
# rendered as usernames (the keys are renamed after the query).
NODE_COLUMNS = (
    "id",
    "parent_id",
    "position",
    "kind",
    "title",
    "description",
    "hypothesis",
    "owner__username",
    "accountable__username",
    "investment_amount",
    "investment_unit",
    "expected_value_amount",
    "expected_value_unit",
    "confidence",
    "weight",
    "status",
    "created_at",
    "updated_at",
)
_RENAMED = {"owner__username": "owner", "accountable__username": "accountable"}


def node_rows(*, tree_id: int, node_ids: Collection[int] | None = None) -> list[dict[str, Any]]:
    """Every node of a tree (or the given ones) as flat dicts, ordered for assembly.
    One query."""
    nodes = Node.objects.filter(tree_id=tree_id)
    if node_ids is not None:
        nodes = nodes.filter(pk__in=node_ids)
    rows = list(nodes.order_by("position", "id").values(*NODE_COLUMNS))
    for row in rows:
        for old, new in _RENAMED.items():
            row[new] = row.pop(old)
    return rows


def tree_get(*, tree: ValueTree) -> dict[str, Any]:
    """The whole tree, nested: vision → goals → bets → initiatives, with each
    registered section (measures) per node.

    One query for the nodes and one per section, so a tree that was already loaded
    costs two queries whatever its size (three with the tree row itself).
    """
    rows = node_rows(tree_id=tree.pk)
    by_id = _with_sections(rows, tree_id=tree.pk, node_ids=None)
    goals: list[dict[str, Any]] = []
    for row in rows:
        parent_id = row["parent_id"]
        (goals if parent_id is None else by_id[parent_id]["children"]).append(row)
    return {
        "id": tree.pk,
        "slug": tree.slug,
        "name": tree.name,
        "vision": tree.vision,
        "description": tree.description,
        "created_at": tree.created_at,
        "updated_at": tree.updated_at,
        "goals": goals,
    }


def _with_sections(
    rows: list[dict[str, Any]], *, tree_id: int, node_ids: Collection[int] | None
) -> dict[int, dict[str, Any]]:
    """Attach each registered section's items and an empty ``children`` list to the
    rows; return them by id."""
    section_items = {s.key: s.fetch(tree_id, node_ids) for s in sections.registered()}
    by_id: dict[int, dict[str, Any]] = {}
    for row in rows:
        for key, items in section_items.items():
            row[key] = items.get(row["id"], [])
        row["children"] = []
        by_id[row["id"]] = row
    return by_id


def node_card_get(*, node: Node) -> dict[str, Any]:
    """One node as it appears in the tree document (without its children): for
    re-drawing a single node after an edit. Two queries."""
    [row] = node_rows(tree_id=node.tree_id, node_ids=[node.pk])
    return _with_sections([row], tree_id=node.tree_id, node_ids=[node.pk])[node.pk]


def node_descendant_count(*, node: Node) -> int:
    """How many nodes a cascading delete removes besides ``node``.

    Kinds fix the depth (goal → bet → initiative), so children and grandchildren
    are all the descendants there can be: one query, no recursion needed.
    """
    return Node.objects.filter(Q(parent=node) | Q(parent__parent=node)).count()


def data_product_links_for_tree(*, tree_id: int) -> list[dict[str, Any]]:
    return list(
        DataProductLink.objects.filter(node__tree_id=tree_id)
        .order_by("node_id", "data_product__slug", "role")
        .values("id", "node_id", "role", "data_product_id", "data_product__slug")
    )


def data_product_list() -> QuerySet[DataProduct]:
    return DataProduct.objects.select_related("domain", "owner").prefetch_related("output_ports")


def data_product_can_edit(user: User, product: DataProduct) -> bool:
    """Its owner and staff change a data product (the browser and the API alike)."""
    return bool(user.is_staff or (product.owner_id is not None and product.owner_id == user.pk))


def data_product_catalogue(
    user: User, *, domain: Domain | None, stage: str, query: str
) -> QuerySet[DataProduct]:
    """The filtered catalogue with what each row shows, in one query whatever its
    size. Linked nodes are counted only in trees the user may read, as on the
    detail page."""
    products = (
        data_product_list()
        .prefetch_related(None)  # counted below; the ports themselves are not shown
        .annotate(
            port_count=Count("output_ports", distinct=True),
            node_count=Count(
                "links__node",
                filter=Q(links__node__in=nodes_for_user(user).values("pk")),
                distinct=True,
            ),
        )
        # Meta.ordering does not apply to a GROUP BY query.
        .order_by("name", "id")
    )
    if domain is not None:
        products = products.filter(domain=domain)
    if stage:
        products = products.filter(stage=stage)
    if query:
        products = products.filter(
            Q(name__icontains=query) | Q(purpose__icontains=query) | Q(description__icontains=query)
        )
    return products


@dataclass(frozen=True)
class HistoryEntry:
    model: str
    object_id: int
    label: str
    action: str
    changed_fields: list[str]
    user: str | None
    at: Any


_ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}


def history_entries(records: QuerySet[Any], *, model: str, limit: int) -> list[HistoryEntry]:
    """The newest ``limit`` django-simple-history records of ``records`` as readable
    entries naming the fields each change touched.

    Two queries: the window, then every record of the objects in it, so each change
    is compared with the record before it without a query per row.
    """
    window = list(
        records.select_related("history_user").order_by("-history_date", "-history_id")[:limit]
    )
    object_ids = {record.id for record in window}
    previous: dict[int, Any] = {}
    last_seen: dict[int, Any] = {}
    for record in records.model.objects.filter(id__in=object_ids).order_by(
        "history_date", "history_id"
    ):
        previous[record.history_id] = last_seen.get(record.id)
        last_seen[record.id] = record
    entries = []
    for record in window:
        before = previous.get(record.history_id)
        changed: list[str] = []
        if record.history_type == "~" and before is not None:
            delta = record.diff_against(before, foreign_keys_are_objs=False)
            changed = sorted(change.field for change in delta.changes)
        entries.append(
            HistoryEntry(
                model=model,
                object_id=record.id,
                label=str(getattr(record, "title", None) or getattr(record, "name", "")),
                action=_ACTIONS[record.history_type],
                changed_fields=changed,
                user=record.history_user.get_username() if record.history_user else None,
                at=record.history_date,
            )
        )
    return entries


def tree_history(*, tree: ValueTree, limit: int = 200) -> list[HistoryEntry]:
    """Changes to the tree, its nodes and every section's items (measures), newest
    first. Deleted nodes stay in the history."""
    entries = history_entries(ValueTree.history.filter(id=tree.pk), model="tree", limit=limit)
    entries += history_entries(Node.history.filter(tree_id=tree.pk), model="node", limit=limit)
    for section in sections.registered():
        entries += history_entries(
            section.history(tree.pk), model=section.history_model, limit=limit
        )
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]
