"""Reads: which trees a user may see, whole trees, lists, history."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Permission
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from valuetree import sections
from valuetree.models import (
    ENDING_STAGES,
    PLANNED_STAGES,
    ApiToken,
    ConsumerInterest,
    DataProduct,
    DataProductLink,
    Domain,
    GlossaryColumnLink,
    GlossaryTerm,
    LifecycleStage,
    LifecycleTransition,
    Membership,
    Node,
    NodeKind,
    NodeStatus,
    Notification,
    OutputPort,
    Role,
    ValueTree,
)
from valuetree.similarity import Glossary, contract_columns

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


def nodes_below(nodes: list[dict[str, Any]], statuses: tuple[str, ...]) -> set[int]:
    """Ids of the nodes with an ancestor in one of ``statuses`` ("killed", "done"): work
    under a killed bet left the tree with it. ``nodes`` are rows with ``id``, ``status``
    and a parent id under ``parent`` or ``parent_id``. Pure."""
    parent = {n["id"]: n.get("parent", n.get("parent_id")) for n in nodes}
    status = {n["id"]: n["status"] for n in nodes}
    found: set[int] = set()
    for node_id in parent:
        up = parent[node_id]
        while up is not None:
            if status.get(up) in statuses:
                found.add(node_id)
                break
            up = parent.get(up)
    return found


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


def glossary_may_write(user: User, domain: Domain | None) -> bool:
    """Staff write the whole glossary; a domain owner — someone who owns a data
    product of the domain — writes the terms of that domain."""
    if user.is_staff:
        return True
    return domain is not None and domain.data_products.filter(owner_id=user.pk).exists()


def glossary_may_write_somewhere(user: User) -> bool:
    """Whether ``user`` may add a term to some domain (owns a data product)."""
    return user.is_staff or DataProduct.objects.filter(owner_id=user.pk).exists()


def glossary_term_can_edit(user: User, term: GlossaryTerm) -> bool:
    """Staff, the term's owner, and the owners of its domain change a term."""
    if user.is_staff or (term.owner_id is not None and term.owner_id == user.pk):
        return True
    return glossary_may_write(user, term.domain)


def glossary_column_can_link(user: User, term: GlossaryTerm, product: DataProduct) -> bool:
    """Who links a term to a contract column of a product, or removes that link:
    whoever edits the term (staff, its owner, its domain's owners) and the product's
    owner (it is their contract's column)."""
    return glossary_term_can_edit(user, term) or data_product_can_edit(user, product)


def glossary_term_columns(term: GlossaryTerm) -> QuerySet[GlossaryColumnLink]:
    """The contract columns ``term`` describes, by product name, port and column."""
    return term.columns.select_related("data_product").order_by(
        "data_product__name", "port", "column", "pk"
    )


LINKABLE_COLUMNS_LIMIT = 500


def glossary_linkable_columns(user: User, term: GlossaryTerm) -> list[tuple[str, str]]:
    """(value, label) of the contract columns ``user`` may link ``term`` to and that
    it is not linked to yet: every product's if they edit the term, else their own
    products'; at most :data:`LINKABLE_COLUMNS_LIMIT`, by product name. ``value`` is
    ``product-slug/port/column`` (what the term page's form posts)."""
    products = DataProduct.objects.order_by("name", "pk")
    if not glossary_term_can_edit(user, term):
        products = products.filter(owner_id=user.pk)
    linked = set(term.columns.values_list("data_product_id", "port", "column"))
    ports = (
        OutputPort.objects.filter(data_product__in=products, contract__isnull=False)
        .select_related("contract", "data_product")
        .order_by("data_product__name", "data_product_id", "name")
    )
    choices: list[tuple[str, str]] = []
    for port in ports:
        for column, _ in contract_columns(port.contract):
            if (port.data_product_id, port.name, column) in linked:
                continue
            choices.append(
                (
                    f"{port.data_product.slug}/{port.name}/{column}",
                    f"{port.data_product.name} — {port.name}.{column}",
                )
            )
            if len(choices) >= LINKABLE_COLUMNS_LIMIT:
                return choices
    return choices


def glossary_terms() -> QuerySet[GlossaryTerm]:
    return GlossaryTerm.objects.select_related("domain", "owner").prefetch_related(
        Prefetch("data_products", queryset=DataProduct.objects.only("pk", "slug", "name"))
    )


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
    return data_product_search(products, query)


def search_term_groups(query: str) -> list[set[str]]:
    """The query as groups of alternatives, every group to be matched: glossary
    phrases first (each with every form of its term), then the remaining words."""
    text = " ".join(query.lower().split())
    if not text:
        return []
    glossary = Glossary.load()
    groups = []
    for phrase in glossary.phrases(text):
        groups.append(glossary.equivalents(phrase))
        text = text.replace(phrase, " ", 1)
    groups.extend(glossary.equivalents(word) for word in text.split())
    return groups


def data_product_search(products: QuerySet[DataProduct], query: str) -> QuerySet[DataProduct]:
    """Products matching every word of ``query`` in name, purpose, description, team
    or port names.

    On PostgreSQL this is full-text search too (stemmed: "sample" finds "samples",
    best matches first); a word also matches as a part of a word, everywhere. A word
    or phrase that is a business glossary term, synonym or abbreviation matches any
    form of that term ("client" finds "customer", "SKU" finds "stock keeping unit").
    ``query`` is taken as every search box takes it (``search_query``).
    """
    groups = search_term_groups(search_query(query))
    if not groups:
        return products
    matches = Q()
    # Each group is one case-insensitive pattern per field, whatever its number of
    # forms: five LIKE clauses per form made a term of 100 synonyms and 100
    # abbreviations 1,005 clauses in one OR, past SQLite's expression depth (a 500).
    for alternatives in {frozenset(group) for group in groups}:
        pattern = "|".join(re.escape(word) for word in sorted(alternatives))
        matches &= (
            Q(name__iregex=pattern)
            | Q(purpose__iregex=pattern)
            | Q(description__iregex=pattern)
            | Q(owning_team__iregex=pattern)
            | Q(pk__in=OutputPort.objects.filter(name__iregex=pattern).values("data_product"))
        )
    if connection.vendor != "postgresql":
        return products.filter(matches)
    vector = (
        SearchVector("name", weight="A", config="english")
        + SearchVector("purpose", weight="B", config="english")
        + SearchVector("description", "owning_team", weight="C", config="english")
    )
    search = SearchQuery(query, search_type="websearch", config="english")
    return (
        products.annotate(search_document=vector, search_rank=SearchRank(vector, search))
        .filter(Q(search_document=search) | matches)
        .order_by("-search_rank", "name", "id")
    )


def api_tokens_for(user: User) -> QuerySet[ApiToken]:
    """The user's tokens that still work (not expired), newest first."""
    return ApiToken.objects.filter(user=user.pk).filter(
        Q(expiry__isnull=True) | Q(expiry__gt=timezone.now())
    )


def readable_tree_ids(
    *, user_ids: Collection[int], tree_ids: Collection[int]
) -> dict[int, set[int]]:
    """Which of `tree_ids` each of `user_ids` may read (the same rule as every page and
    the API: trees_for_user), one query per user. For notifications and e-mails, which
    must name only what their recipient could open."""
    from django.contrib.auth import get_user_model

    readable: dict[int, set[int]] = {user_id: set() for user_id in user_ids}
    if not tree_ids:
        return readable
    # A deactivated account opens nothing (it cannot log in): its mailbox, perhaps
    # forwarded since its owner left, is told nothing either.
    for user in get_user_model().objects.filter(pk__in=list(user_ids), is_active=True):
        readable[user.pk] = set(
            trees_for_user(user).filter(pk__in=list(tree_ids)).values_list("pk", flat=True)
        )
    return readable


def _in_readable_tree(user: User) -> ExpressionWrapper:
    """True for a row whose ``node`` is in a tree ``user`` may read."""
    return ExpressionWrapper(
        Q(node__tree__in=trees_for_user(user).values("pk")), output_field=BooleanField()
    )


def discovery_board(
    user: User, *, domain: Domain | None = None, stage: str = "", query: str = ""
) -> list[DataProduct]:
    """Every product being planned (discovery and design), across all domains, with
    its ports, the nodes it serves and the teams waiting for it: four queries,
    whatever the board's size.

    Each product's ``served`` lists its links to nodes in trees the user may read;
    ``served_elsewhere`` counts the others, which are not named. Waiting teams are
    all listed; each says whether its initiative is readable (``visible``).
    """
    stages = [stage] if stage in PLANNED_STAGES else list(PLANNED_STAGES)
    products = (
        data_product_list()
        .filter(stage__in=stages)
        .prefetch_related(
            Prefetch(
                "links",
                queryset=DataProductLink.objects.select_related("node__tree")
                .annotate(visible=_in_readable_tree(user))
                .order_by("node__tree__name", "node__title", "role"),
            ),
            Prefetch(
                "interests",
                queryset=ConsumerInterest.objects.select_related("user", "node__tree").annotate(
                    visible=_in_readable_tree(user)
                ),
            ),
        )
        .order_by("name", "id")
    )
    if domain is not None:
        products = products.filter(domain=domain)
    board = list(data_product_search(products, query))
    for product in board:
        # A node the product serves in two roles is one node served.
        by_node = {link.node_id: link for link in product.links.all()}
        product.served = [link for link in by_node.values() if link.visible]
        product.served_elsewhere = len(by_node) - len(product.served)
    return board


def product_interests(user: User, *, product: DataProduct) -> QuerySet[ConsumerInterest]:
    """The teams waiting for ``product``; ``visible`` says whether the initiative they
    named is in a tree the user may read."""
    return (
        ConsumerInterest.objects.filter(data_product=product)
        .select_related("user", "node__tree")
        .annotate(visible=_in_readable_tree(user))
    )


def node_interests(*, node: Node) -> QuerySet[ConsumerInterest]:
    """The planned products an initiative is waiting for (the other side of the link)."""
    return ConsumerInterest.objects.filter(node=node).select_related("user", "data_product__domain")


def product_transitions(*, product: DataProduct) -> QuerySet[LifecycleTransition]:
    return LifecycleTransition.objects.filter(data_product=product).select_related("by")


def under(statuses: Collection[str], prefix: str = "") -> Q:
    """Rows whose node (``prefix`` leads to it: "node__") is an initiative or a bet
    under a goal or a bet in one of ``statuses``: the two levels a tree has above an
    initiative (the kind rules fix the depth). The killed bet's initiatives were killed
    with it."""
    listed = list(statuses)
    return Q(**{f"{prefix}parent__status__in": listed}) | Q(
        **{f"{prefix}parent__parent__status__in": listed}
    )


def orphan_products() -> QuerySet[DataProduct]:
    """Products, not retired, that serve no initiative that is still alive (proposed,
    active or done, and not under killed work): nobody would miss them."""
    serving = (
        DataProductLink.objects.filter(data_product=OuterRef("pk"), node__kind=NodeKind.INITIATIVE)
        .exclude(node__status=NodeStatus.KILLED)
        .exclude(under([NodeStatus.KILLED], "node__"))
    )
    return (
        data_product_list()
        .exclude(stage=LifecycleStage.RETIRED)
        .filter(~Exists(serving))
        .order_by("domain__name", "name", "id")
    )


def initiatives_on_ending_products(user: User) -> QuerySet[DataProductLink]:
    """Links of live work (proposed or active initiatives the user may read, not under a
    killed or finished bet or goal) to products that are deprecated or retired, with the
    product's successor."""
    return (
        DataProductLink.objects.filter(
            node__in=nodes_for_user(user),
            node__kind=NodeKind.INITIATIVE,
            node__status__in=[NodeStatus.PROPOSED, NodeStatus.ACTIVE],
            data_product__stage__in=ENDING_STAGES,
        )
        .exclude(under([NodeStatus.KILLED, NodeStatus.DONE], "node__"))
        .select_related("node__tree", "data_product__domain", "data_product__duplicate_of")
        .order_by("node__tree__name", "node__title", "data_product__name", "id")
    )


def initiatives_for_interest(user: User) -> QuerySet[Node]:
    """The initiatives ``user`` may register interest for: those of trees they edit."""
    editable = trees_for_user(user).filter(caller_role__in=list(EDIT_ROLES))
    return (
        Node.objects.filter(tree__in=editable.values("pk"), kind=NodeKind.INITIATIVE)
        .exclude(status=NodeStatus.KILLED)
        .select_related("tree")
        .order_by("tree__name", "title", "id")
    )


def notifications_for(user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user.pk).select_related(
        "data_product", "related_product"
    )


def unread_notification_count(user: User) -> int:
    return Notification.objects.filter(recipient=user.pk, read_at__isnull=True).count()


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


def glossary_export(*, fmt: str) -> str:
    """The whole glossary as YAML (``terms: [...]``, what ``glossary_import`` reads;
    written by ``documents.dump_yaml`` as every YAML export) or CSV (synonyms and
    abbreviations in one cell each: :func:`csv_list_cell`)."""
    import csv
    import io

    from valuetree.documents import dump_yaml

    rows = [
        {
            "name": term.name,
            "definition": term.definition,
            "synonyms": list(term.synonyms),
            "abbreviations": list(term.abbreviations),
            "domain": term.domain.slug if term.domain else "",
        }
        for term in GlossaryTerm.objects.select_related("domain").order_by("name")
    ]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=["name", "definition", "synonyms", "abbreviations", "domain"]
        )
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    "name": csv_cell(row["name"]),
                    "definition": csv_cell(row["definition"]),
                    "synonyms": csv_list_cell(row["synonyms"]),
                    "abbreviations": csv_list_cell(row["abbreviations"]),
                    "domain": row["domain"],
                }
            )
        return out.getvalue()
    return dump_yaml([{"terms": rows}])


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV
# injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _quoted_formula(text: str) -> bool:
    """Whether ``text`` is a formula behind apostrophes (none or more): "=1", "'=1"."""
    return text.lstrip("'").startswith(FORMULA_PREFIXES)


def csv_cell(value: Any) -> Any:
    """A value as a spreadsheet may safely open it: text that would start a formula is
    quoted with a leading apostrophe; numbers stay numbers; None is empty. Text that
    already starts with apostrophes before a formula ("'=1") gets one more, so that
    :func:`csv_cell_value` gives it back as it was, not as "=1"."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if _quoted_formula(value) else value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def csv_cell_value(cell: str) -> str:
    """The text :func:`csv_cell` wrote (its apostrophe before a formula removed)."""
    if cell.startswith("'") and _quoted_formula(cell[1:]):
        return cell[1:]
    return cell


def csv_list_cell(values: list[str]) -> str:
    """Several texts in one CSV cell, as :func:`csv_list_values` reads them back: ";"
    between them, each made safe by :func:`csv_cell`, and one holding ";" or a double
    quote put in double quotes (its quotes doubled), as a CSV row of its own would
    have it: ``client;"gross; net";'=SUM``."""
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\n").writerow(csv_cell(v) for v in values)
    return out.getvalue().removesuffix("\n")


def csv_list_values(cell: str) -> list[str]:
    """The texts :func:`csv_list_cell` wrote, or a cell written by hand: split on ";"
    outside double quotes, each stripped, empty ones dropped. A cell without double
    quotes reads as before quoting existed (split on every ";"); a double quote inside
    an entry is kept, one opening it starts a quoted entry. Line breaks read as spaces
    (a glossary form is one line)."""
    import csv

    [row] = csv.reader([" ".join(cell.split())], delimiter=";", skipinitialspace=True)
    return [csv_cell_value(value.strip()) for value in row if value.strip()]


def schema_with_glossary(schema: list[Any], *, product_id: int, port: str) -> list[Any]:
    """An ODCS ``schema`` (already copied) whose properties linked to glossary terms
    carry an ``authoritativeDefinitions`` entry ``{type: businessDefinition,
    url: /glossary/<slug>/}`` — what the ODCS import maps back to the term."""
    links: dict[str, list[str]] = {}
    for column, slug in GlossaryColumnLink.objects.filter(
        data_product_id=product_id, port=port
    ).values_list("column", "term__slug"):
        links.setdefault(column, []).append(slug)
    if not links:
        return schema

    def walk(properties: Any) -> None:
        for prop in properties if isinstance(properties, list) else []:
            if not isinstance(prop, dict):
                continue
            definitions = list(prop.get("authoritativeDefinitions") or [])
            urls = {d.get("url") for d in definitions if isinstance(d, dict)}
            for slug in links.get(str(prop.get("name")), []):
                url = f"/glossary/{slug}/"
                if url not in urls:
                    definitions.append({"type": "businessDefinition", "url": url})
            if definitions:
                prop["authoritativeDefinitions"] = definitions
            walk(prop.get("properties"))

    for obj in schema:
        if isinstance(obj, dict):
            walk(obj.get("properties"))
    return schema


# --- Search ------------------------------------------------------------------------------

SEARCH_MAX_RESULTS = 50
# The characters of a search box a query takes: every search is a LIKE on each text
# column, and SQLite refuses a pattern over 50,000 bytes (a 500, not an answer).
SEARCH_QUERY_MAX = 200


def search_query(raw: str | None) -> str:
    """A search box's text as the searches take it: trimmed, at most SEARCH_QUERY_MAX
    characters."""
    return (raw or "").strip()[:SEARCH_QUERY_MAX].strip()


def data_products_matching(*, query: str, limit: int = 20) -> QuerySet[DataProduct]:
    """The catalogue's products whose name or purpose holds ``query`` (any, when it is
    blank), by name, with their domain: the node's "link a data product" picker."""
    query = search_query(query)
    products = DataProduct.objects.select_related("domain").order_by("name")
    if query:
        products = products.filter(Q(name__icontains=query) | Q(purpose__icontains=query))
    return products[:limit]


def search(*, user: User, query: str, tree: ValueTree | None = None) -> dict[str, Any]:
    """What matches ``query`` (case-insensitive substring, trimmed; under 2 characters
    matches nothing) among what the user may read: ``{"trees", "nodes",
    "data_products"}``, each a list of at most ``SEARCH_MAX_RESULTS`` ``values()`` rows.
    Nodes match on title, description, hypothesis and their measures' names (the
    measure that matched is in ``measure``). With ``tree``, only that tree's nodes, and
    no trees or data products. Three queries at most."""
    query = search_query(query)
    empty: dict[str, Any] = {"trees": [], "nodes": [], "data_products": []}
    if len(query) < 2:
        return empty
    readable = trees_for_user(user)
    nodes = Node.objects.filter(tree__in=readable.values("pk"))
    if tree is not None:
        nodes = nodes.filter(tree=tree)
    by_measure = Q(measures__name__icontains=query)  # outcomes' measures, by relation name
    text = Q(title__icontains=query) | Q(description__icontains=query)
    text |= Q(hypothesis__icontains=query)
    node_rows = list(
        nodes.filter(text | by_measure)
        .annotate(
            measure=Subquery(
                Node.objects.filter(pk=OuterRef("pk"), measures__name__icontains=query).values(
                    "measures__name"
                )[:1]
            )
        )
        .order_by("tree__name", "kind", "title", "id")
        .values(
            "id", "kind", "title", "hypothesis", "status", "tree__name", "tree__slug", "measure"
        )
        .distinct()[:SEARCH_MAX_RESULTS]
    )
    if tree is not None:
        return {**empty, "nodes": node_rows}
    tree_rows = list(
        readable.filter(Q(name__icontains=query) | Q(vision__icontains=query))
        .order_by("name")
        .values("slug", "name", "vision")[:SEARCH_MAX_RESULTS]
    )
    product_rows = list(
        DataProduct.objects.filter(
            Q(name__icontains=query) | Q(purpose__icontains=query) | Q(description__icontains=query)
        )
        .order_by("name")
        .values("slug", "name", "purpose", "stage", "domain__name")[:SEARCH_MAX_RESULTS]
    )
    return {"trees": tree_rows, "nodes": node_rows, "data_products": product_rows}
