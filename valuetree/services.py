"""Writes to trees, nodes, memberships and data products.

Every function is keyword-only, validates with ``full_clean()`` and raises Django's
``ValidationError`` with field messages on input a user can fix. Kind rules:
goals hang under the tree's vision, bets under goals, initiatives under bets.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Max, Q
from django.urls import reverse
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from valuetree.documents import quote_it
from valuetree.models import (
    CHILD_KIND,
    CONSUMER_STAGES,
    ENDING_STAGES,
    PARENT_KIND,
    ApiToken,
    ConsumerInterest,
    DataProduct,
    DataProductEmbedding,
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
    NotificationKind,
    OutputPort,
    Role,
    ValueTree,
    check_tree_slug,
)
from valuetree.selectors import node_descendant_count, nodes_below, readable_tree_ids
from valuetree.similarity import (
    MODEL_NAME,
    NOTIFY_SCORE,
    Glossary,
    Probe,
    content_words,
    embedder,
    embedding_text,
    fold_case,
    pooled_text,
    products_with_text,
    similar_products,
    text_hash,
)

logger = logging.getLogger(__name__)

TREE_FIELDS = ("name", "slug", "vision", "description")
NODE_FIELDS = (
    "title",
    "description",
    "hypothesis",
    "owner",
    "accountable",
    "investment_amount",
    "investment_unit",
    "expected_value_amount",
    "expected_value_unit",
    "confidence",
    "weight",
    "status",
)


def apply_fields(instance: Any, fields: dict[str, Any], allowed: Sequence[str]) -> None:
    """Set ``fields`` on ``instance``, refusing any this service does not let change."""
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be changed here."))
    for name, value in fields.items():
        setattr(instance, name, value)


# --- Trees and memberships ---------------------------------------------------------


LEADERSHIP_GROUP = "Leadership"


def leadership_group() -> Group:
    """The organisation-wide Leadership group, holding ``valuetree.read_all_trees``
    (made by migration 0002; made again here if it is gone, e.g. after a flush)."""
    content_type, _ = ContentType.objects.get_or_create(app_label="valuetree", model="valuetree")
    permission, _ = Permission.objects.get_or_create(
        codename="read_all_trees",
        content_type=content_type,
        defaults={"name": "Can read every value tree (organisation-wide leadership role)"},
    )
    group, _ = Group.objects.get_or_create(name=LEADERSHIP_GROUP)
    group.permissions.add(permission)
    return group


@transaction.atomic
def tree_create(
    *, owner: AbstractBaseUser, name: str, slug: str, vision: str, description: str = ""
) -> ValueTree:
    check_tree_slug(slug)
    tree = ValueTree(name=name, slug=slug, vision=vision, description=description)
    tree.full_clean()
    tree.save()
    Membership.objects.create(tree=tree, user=owner, role=Role.OWNER)
    return tree


def tree_update(*, tree: ValueTree, **fields: Any) -> ValueTree:
    if fields.get("slug", tree.slug) != tree.slug:
        check_tree_slug(fields["slug"])
    apply_fields(tree, fields, TREE_FIELDS)
    tree.full_clean()
    tree.save()
    return tree


def tree_delete(*, tree: ValueTree) -> None:
    tree.delete()


def _ensure_an_owner_remains(*, tree_id: int, leaving: Membership) -> None:
    others = Membership.objects.filter(tree_id=tree_id, role=Role.OWNER).exclude(pk=leaving.pk)
    if leaving.role == Role.OWNER and not others.exists():
        raise ValidationError({"role": "A tree needs at least one owner; add another first."})


@transaction.atomic
def membership_set(*, tree: ValueTree, user: AbstractBaseUser, role: str) -> Membership:
    """Give ``user`` a role in ``tree``, or change the role they have."""
    membership = Membership.objects.select_for_update().filter(
        tree=tree, user=user
    ).first() or Membership(tree=tree, user=user)
    if membership.pk and membership.role == Role.OWNER and role != Role.OWNER:
        _ensure_an_owner_remains(tree_id=tree.pk, leaving=membership)
    membership.role = role
    membership.full_clean(validate_unique=False)
    membership.save()
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    _ensure_an_owner_remains(tree_id=membership.tree_id, leaving=membership)
    membership.delete()


# --- Nodes ---------------------------------------------------------------------------


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _check_placement(*, tree_id: int, kind: str, parent: Node | None) -> None:
    """Refuse a node of ``kind`` under ``parent`` unless the kind rules allow it."""
    wanted = PARENT_KIND.get(kind)
    if kind not in PARENT_KIND:
        raise ValidationError({"kind": f"Unknown kind {kind!r}."})
    if parent is None:
        if wanted is not None:
            raise ValidationError(
                {
                    "parent": f"{_a(kind).capitalize()} must sit under {_a(wanted)}; "
                    "only goals hang under the vision."
                }
            )
        return
    if parent.tree_id != tree_id:
        raise ValidationError({"parent": "The parent belongs to another tree."})
    if parent.kind != wanted:
        allowed = "the vision" if wanted is None else _a(wanted)
        raise ValidationError(
            {
                "parent": f"{_a(kind).capitalize()} must sit under {allowed}, "
                f"not under {_a(parent.kind)}."
            }
        )


def _lock_tree_structure(*, tree_id: int) -> None:
    """Serialise structural edits (create, move, delete) within one tree.

    Sibling positions are read (MAX) and then shifted; two concurrent edits under the
    same parent could otherwise both take the same position. Locking the tree row is
    one query and keeps every structural edit a constant number of queries.
    """
    list(ValueTree.objects.select_for_update().filter(pk=tree_id).values_list("pk"))


def _sibling_count(*, tree_id: int, parent_id: int | None) -> int:
    top = Node.objects.filter(tree_id=tree_id, parent_id=parent_id).aggregate(top=Max("position"))
    return 0 if top["top"] is None else top["top"] + 1


def _shift(*, tree_id: int, parent_id: int | None, start: int, end: int | None, by: int) -> None:
    """Move the positions of siblings in [start, end) by ``by`` with one UPDATE."""
    siblings = Node.objects.filter(tree_id=tree_id, parent_id=parent_id, position__gte=start)
    if end is not None:
        siblings = siblings.filter(position__lt=end)
    siblings.update(position=F("position") + by)


@transaction.atomic
def node_create(
    *,
    tree: ValueTree,
    title: str,
    parent: Node | None = None,
    kind: str | None = None,
    position: int | None = None,
    **fields: Any,
) -> Node:
    """Add a node under ``parent`` (``None``: a goal under the vision).

    ``kind`` defaults to the only kind ``parent`` may hold; ``position`` to the end.
    """
    if kind is None:
        kind = CHILD_KIND[parent.kind if parent else None]
        if kind is None:
            raise ValidationError({"parent": "Initiatives are leaves: nothing goes under them."})
    _check_placement(tree_id=tree.pk, kind=kind, parent=parent)
    _lock_tree_structure(tree_id=tree.pk)
    parent_id = parent.pk if parent else None
    count = _sibling_count(tree_id=tree.pk, parent_id=parent_id)
    if position is None or position >= count:
        position = count
    elif position < 0:
        raise ValidationError({"position": "Position must be 0 or more."})
    node = Node(tree=tree, parent=parent, kind=kind, title=title, position=position)
    apply_fields(node, fields, NODE_FIELDS)
    node.full_clean()
    if position < count:
        _shift(tree_id=tree.pk, parent_id=parent_id, start=position, end=None, by=1)
    node.save()
    return node


# Killing or finishing work is a decision with a rationale (outcomes records it and then
# calls node_update): the editor and the API do not set these statuses directly.
DECIDED_STATUSES = (NodeStatus.KILLED, NodeStatus.DONE)
DECIDE_PATH = "/nodes/{node_id}/decide/?kind={kind}"
DECISION_KINDS = {NodeStatus.KILLED: "kill", NodeStatus.DONE: "done"}


def node_status_check(*, node: Node, status: str) -> None:
    """Refuse setting a bet's or an initiative's ``status`` directly to killed or done:
    that is a decision, recorded with its rationale at ``/api/nodes/{id}/decisions/``
    (or the Kill… / Mark done… dialog in the browser). Goals take no decisions, so
    their status is set as before."""
    if status in DECIDED_STATUSES and status != node.status and node.kind != NodeKind.GOAL:
        raise ValidationError(
            {
                "status": f"Marking work {status} is a decision: record it with a rationale "
                f"(POST /api/nodes/{node.pk}/decisions/ with kind "
                f"“{DECISION_KINDS[status]}”)."
            }
        )


class ItemsInvalid(ValidationError):
    """Some items of a bulk write were refused: ``by_index`` holds each one's
    ValidationError, by its index in the list the caller gave."""

    def __init__(self, by_index: dict[int, ValidationError]) -> None:
        self.by_index = by_index
        super().__init__(f"{len(by_index)} item(s) were refused.")


def nodes_create_in_new_tree(
    *,
    tree: ValueTree,
    parents: list[Node | None],
    kinds: list[str],
    fields: list[dict[str, Any]],
    by: AbstractBaseUser | None = None,
) -> list[Node]:
    """Add many nodes to a tree that has none yet (a tree import), in bulk.

    ``parents``, ``kinds`` and ``fields`` are parallel lists, one entry per node,
    every parent saved already (import level by level); siblings take positions in
    the order given. Each node's fields are checked as ``node_create`` checks them
    (``clean_fields`` and ``clean``); placement is the caller's to get right, and
    the database's check constraints hold it to the kind rules. One INSERT per
    500 nodes plus their history rows, instead of ~5 queries a node.

    Raises ItemsInvalid (a ValidationError) naming the nodes refused by index.
    """
    positions: dict[int | None, int] = {}
    nodes: list[Node] = []
    errors: dict[int, ValidationError] = {}
    for index, (parent, kind, values) in enumerate(zip(parents, kinds, fields, strict=True)):
        parent_id = parent.pk if parent is not None else None
        position = positions.get(parent_id, 0)
        positions[parent_id] = position + 1
        node = Node(tree=tree, parent=parent, kind=kind, position=position)
        apply_fields(node, values, NODE_FIELDS)
        try:
            # The foreign keys are objects the caller holds (the tree, saved
            # parents, users it looked up): checking each exists is a query a node.
            node.clean_fields(exclude=["tree", "parent", "owner", "accountable"])
            node.clean()
        except ValidationError as error:
            errors[index] = error
        nodes.append(node)
    if errors:
        raise ItemsInvalid(errors)
    return bulk_create_with_history(nodes, Node, batch_size=500, default_user=by)


def node_update(*, node: Node, **fields: Any) -> Node:
    """Change a node's own fields. Its place in the tree changes only by ``node_move``."""
    apply_fields(node, fields, NODE_FIELDS)
    node.full_clean()
    node.save()
    return node


@transaction.atomic
def node_move(*, node: Node, parent: Node | None, position: int | None = None) -> Node:
    """Put ``node`` (and its subtree) under ``parent`` at ``position`` (default: last).

    A constant number of queries whatever the subtree's size: descendants keep their
    parent, so only the node and the two sibling ranges are updated. The kind rules
    also rule out cycles: a node's descendants are of deeper kinds than any parent it
    may take, and a node can never be its own parent.
    """
    _lock_tree_structure(tree_id=node.tree_id)
    node = Node.objects.get(pk=node.pk)  # fresh position, read under the lock
    if parent is not None and parent.pk == node.pk:
        raise ValidationError({"parent": "A node cannot be its own parent."})
    _check_placement(tree_id=node.tree_id, kind=node.kind, parent=parent)
    if position is not None and position < 0:
        raise ValidationError({"position": "Position must be 0 or more."})
    new_parent_id = parent.pk if parent else None
    old_parent_id, old_position = node.parent_id, node.position
    if new_parent_id == old_parent_id:
        last = _sibling_count(tree_id=node.tree_id, parent_id=new_parent_id) - 1
        target = last if position is None else min(position, last)
        if target > old_position:
            _shift(
                tree_id=node.tree_id,
                parent_id=new_parent_id,
                start=old_position + 1,
                end=target + 1,
                by=-1,
            )
        elif target < old_position:
            _shift(
                tree_id=node.tree_id, parent_id=new_parent_id, start=target, end=old_position, by=1
            )
    else:
        count = _sibling_count(tree_id=node.tree_id, parent_id=new_parent_id)
        target = count if position is None else min(position, count)
        _shift(
            tree_id=node.tree_id, parent_id=old_parent_id, start=old_position + 1, end=None, by=-1
        )
        _shift(tree_id=node.tree_id, parent_id=new_parent_id, start=target, end=None, by=1)
    node.parent = parent
    node.position = target
    node.save(update_fields=["parent", "position", "updated_at"])
    return node


@transaction.atomic
def node_delete(*, node: Node, cascade: bool = False) -> int:
    """Delete ``node``; with descendants only when ``cascade`` says so.

    Returns how many descendants went with it. Killing work is a status
    (``node_update(status="killed")``), not a deletion: deletion is for mistakes.
    """
    _lock_tree_structure(tree_id=node.tree_id)
    descendants = node_descendant_count(node=node)
    if descendants and not cascade:
        raise ValidationError(
            {
                "cascade": f"This {node.kind} has {descendants} descendant(s); "
                "confirm the cascade to delete them too, or mark it killed instead."
            }
        )
    tree_id, parent_id = node.tree_id, node.parent_id
    position = Node.objects.values_list("position", flat=True).get(pk=node.pk)
    node.delete()
    _shift(tree_id=tree_id, parent_id=parent_id, start=position + 1, end=None, by=-1)
    return descendants


# --- Domains and data products -----------------------------------------------------

DOMAIN_FIELDS = ("name", "slug", "description", "owning_team")
DATA_PRODUCT_FIELDS = (
    "name",
    "slug",
    "domain",
    "owner",
    "owning_team",
    "description",
    "purpose",
    "product_type",
    "version",
)


# Addresses of pages and API routes beside a product's own (/data-products/<slug>/).
RESERVED_PRODUCT_SLUGS = frozenset({"new", "board", "similar", "orphans", "import"})


def _check_product_slug(product: DataProduct) -> None:
    if product.slug in RESERVED_PRODUCT_SLUGS:
        raise ValidationError({"slug": f"“{product.slug}” is reserved; choose another slug."})


def domain_create(**fields: Any) -> Domain:
    domain = Domain()
    apply_fields(domain, fields, DOMAIN_FIELDS)
    domain.full_clean()
    domain.save()
    return domain


def domain_update(*, domain: Domain, **fields: Any) -> Domain:
    apply_fields(domain, fields, DOMAIN_FIELDS)
    domain.full_clean()
    domain.save()
    return domain


def domain_delete(*, domain: Domain) -> None:
    if domain.data_products.exists():
        raise ValidationError(
            {"domain": "This domain still owns data products; move or delete them first."}
        )
    domain.delete()


def _replace_output_ports(*, product: DataProduct, ports: list[dict[str, Any]]) -> None:
    """Make the product's ports exactly ``ports``, matched by name: a kept port keeps
    its row (and so its data contract), a port left out is deleted."""
    names = [port["name"] for port in ports]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValidationError(
            {"output_ports": f"Port names must be unique: {', '.join(duplicates)}."}
        )
    existing = {port.name: port for port in product.output_ports.all()}
    wanted: list[OutputPort] = []
    for number, fields in enumerate(ports, start=1):
        port = existing.get(fields["name"]) or OutputPort(data_product=product)
        for name, value in fields.items():
            setattr(port, name, value)
        try:
            port.full_clean(exclude=["data_product"], validate_unique=False)
        except ValidationError as error:
            # Reported under output_ports: a port's "name" is not the product's.
            problems = "; ".join(
                f"{field}: {' '.join(m)}" for field, m in error.message_dict.items()
            )
            raise ValidationError({"output_ports": f"Port {number}: {problems}"}) from None
        wanted.append(port)
    product.output_ports.exclude(name__in=names).delete()
    OutputPort.objects.bulk_create([port for port in wanted if port.pk is None])
    kept = [port for port in wanted if port.pk is not None]
    if kept:
        OutputPort.objects.bulk_update(kept, ["kind", "location"])


OWNERLESS = "A data product needs an owner: someone answers for it."


def _check_owner_chosen_by(*, owner: AbstractBaseUser | None, by: AbstractBaseUser) -> None:
    if owner is None:
        raise ValidationError({"owner": OWNERLESS})
    if owner.pk != by.pk and not by.is_staff:
        raise ValidationError(
            {
                "owner": "You own the data products you propose; hand it over to "
                f"{owner.get_username()} once it exists (Edit → owner)."
            }
        )


@transaction.atomic
def data_product_create(
    *,
    output_ports: list[dict[str, Any]] | None = None,
    by: AbstractBaseUser | None = None,
    **fields: Any,
) -> DataProduct:
    """Create a data product in its first stage (default discovery), recorded as a
    transition by ``by``; the owners of similar products are told about it.

    Who owns it comes from who asks: ``by`` owns what they propose (``owner`` left out
    means ``by``). Naming another owner is for staff and for operator commands
    (``by=None``); anyone else hands a product over once it exists (an update, which
    only its owner or staff may make). ValidationError on ``owner`` otherwise."""
    if by is not None:
        fields.setdefault("owner", by)
        _check_owner_chosen_by(owner=fields["owner"], by=by)
    stage = fields.pop("stage", None) or LifecycleStage.DISCOVERY
    product = DataProduct(stage=stage)
    apply_fields(product, fields, DATA_PRODUCT_FIELDS)
    _check_product_slug(product)
    product.full_clean()
    product.save()
    _replace_output_ports(product=product, ports=output_ports or [])
    _check_stage_rules(product=product, stage=stage)
    LifecycleTransition.objects.create(data_product=product, to_stage=stage, by=by)
    _notify_similar_owners(product=product)
    _embed_after_commit([product.pk])
    return product


@transaction.atomic
def data_product_update(
    *,
    product: DataProduct,
    output_ports: list[dict[str, Any]] | None = None,
    by: AbstractBaseUser | None = None,
    **fields: Any,
) -> DataProduct:
    """Change a data product; ``output_ports``, when given, replaces the ports. A new
    ``stage`` goes through :func:`data_product_transition` and its rules. Handing it to
    another ``owner`` is allowed (callers let only its owner or staff update); leaving
    it without one is not."""
    if by is not None and "owner" in fields and fields["owner"] is None:
        raise ValidationError({"owner": OWNERLESS})
    stage = fields.pop("stage", None)
    apply_fields(product, fields, DATA_PRODUCT_FIELDS)
    _check_product_slug(product)
    product.full_clean()
    product.save()
    if output_ports is not None:
        _replace_output_ports(product=product, ports=output_ports)
    if stage is not None and stage != product.stage:
        data_product_transition(product=product, to_stage=stage, by=by)
        product.refresh_from_db(fields=["stage", "updated_at"])
    else:
        _check_stage_rules(product=product, stage=product.stage)
    if {"name", "purpose"} & set(fields) or output_ports is not None:
        _notify_similar_owners(product=product)
    # The hash decides whether anything is computed: a stage change costs nothing.
    _embed_after_commit([product.pk])
    return product


def data_product_delete(*, product: DataProduct) -> None:
    product.delete()


def data_product_link(*, product: DataProduct, node: Node, role: str) -> DataProductLink:
    link = DataProductLink(data_product=product, node=node, role=role)
    link.full_clean()
    link.save()
    return link


def data_product_unlink(*, link: DataProductLink) -> None:
    link.delete()


# --- Lifecycle ----------------------------------------------------------------------

_STAGE_ORDER = list(LifecycleStage.values)
# The backward moves allowed: a plan may be rethought, a deprecation taken back.
_BACK_MOVES = {
    LifecycleStage.DESIGN: [LifecycleStage.DISCOVERY],
    LifecycleStage.BUILD: [LifecycleStage.DISCOVERY, LifecycleStage.DESIGN],
    LifecycleStage.DEPRECATED: [LifecycleStage.LIVE],
}


def stage_moves(stage: str) -> list[str]:
    """The stages a product in ``stage`` may move to: forward any number of steps;
    back only while it is planned or built, or from deprecated to live again.
    Retired is final."""
    return [*_BACK_MOVES.get(stage, []), *_STAGE_ORDER[_STAGE_ORDER.index(stage) + 1 :]]


def _check_stage_rules(*, product: DataProduct, stage: str) -> None:
    """A live product has someone answering for it and something to consume."""
    if stage != LifecycleStage.LIVE:
        return
    problems = {}
    if product.owner_id is None:
        problems["owner"] = "A live data product needs an owner."
    if not product.output_ports.exists():
        problems["output_ports"] = "A live data product needs at least one output port."
    if problems:
        raise ValidationError(problems)


@transaction.atomic
def data_product_transition(
    *,
    product: DataProduct,
    to_stage: str,
    by: AbstractBaseUser | None,
    note: str = "",
    any_move: bool = False,
) -> LifecycleTransition | None:
    """Move ``product`` to ``to_stage``, recording who and when (``None`` when it is
    already there). Deprecating or retiring it warns the initiatives relying on it.

    ``any_move`` lifts the order of stages (not the rules of a live product): only for
    content that resets itself, like the demo."""
    if to_stage not in LifecycleStage.values:
        raise ValidationError({"stage": f"Unknown stage {to_stage!r}."})
    product = DataProduct.objects.select_for_update().get(pk=product.pk)
    from_stage = product.stage
    if to_stage == from_stage:
        return None
    if not any_move and to_stage not in stage_moves(from_stage):
        allowed = ", ".join(stage_moves(from_stage)) or "none: retired is final"
        raise ValidationError(
            {"stage": f"A {from_stage} product cannot move to {to_stage} (allowed: {allowed})."}
        )
    _check_stage_rules(product=product, stage=to_stage)
    product.stage = to_stage
    product.save(update_fields=["stage", "updated_at"])
    transition = LifecycleTransition.objects.create(
        data_product=product, from_stage=from_stage, to_stage=to_stage, by=by, note=note
    )
    if to_stage in ENDING_STAGES:
        _warn_relying_initiatives(product=product, note=note)
    return transition


def _warn_relying_initiatives(*, product: DataProduct, note: str) -> None:
    """Tell whoever answers for each node linked to ``product`` (its owner and
    accountable, or else the tree's owners) and its waiting consumers."""
    nodes = list(
        Node.objects.filter(data_product_links__data_product=product)
        .exclude(status__in=[NodeStatus.KILLED, NodeStatus.DONE])
        .select_related("tree")
        .distinct()
    )
    # Nor the work under a killed or finished bet: it stopped with the bet.
    settled = nodes_below(
        list(
            Node.objects.filter(tree__in={node.tree_id for node in nodes}).values(
                "id", "parent_id", "status"
            )
        ),
        (NodeStatus.KILLED, NodeStatus.DONE),
    )
    nodes = [node for node in nodes if node.pk not in settled]
    tree_owners: dict[int, list[int]] = {}
    for tree_id, user_id in Membership.objects.filter(
        tree__in={node.tree_id for node in nodes}, role=Role.OWNER
    ).values_list("tree_id", "user_id"):
        tree_owners.setdefault(tree_id, []).append(user_id)
    affected: dict[int, list[Node]] = {}
    for node in nodes:
        people = {node.owner_id, node.accountable_id} - {None} or set(
            tree_owners.get(node.tree_id, [])
        )
        for user_id in people:
            affected.setdefault(user_id, []).append(node)
    # A node's owner or accountable may have lost access to its tree since: a
    # notification names only nodes its recipient may read.
    readable = readable_tree_ids(user_ids=affected, tree_ids={node.tree_id for node in nodes})
    affected = {
        user_id: relying
        for user_id, nodes_of_user in affected.items()
        if (relying := [n for n in nodes_of_user if n.tree_id in readable[user_id]])
    }
    for user_id in product.interests.values_list("user_id", flat=True):
        if user_id is not None:
            affected.setdefault(user_id, [])
    successor = product.duplicate_of
    instead = f" Use “{successor.name}” instead." if successor else ""
    why = f" Note: {note}" if note else ""
    for user_id, relying in affected.items():
        listed = "".join(f"\n- {node.tree.name}: {node.title}" for node in relying)
        notify(
            recipients=[user_id],
            kind=NotificationKind.DEPRECATION,
            subject=f"Data product “{product.name}” is now {product.stage}",
            body=(
                f"“{product.name}” ({product.domain.name}) is now {product.stage}.{instead}{why}"
                + (f"\n\nYour work relying on it:{listed}" if relying else "")
            ),
            data_product=product,
            related_product=successor,
        )


# --- Notifications -------------------------------------------------------------------


def notify(
    *,
    recipients: Iterable[int],
    kind: str,
    subject: str,
    body: str = "",
    data_product: DataProduct | None = None,
    related_product: DataProduct | None = None,
    url: str = "",
) -> list[Notification]:
    """Store an in-app notification for each recipient (user ids) and, once the
    transaction commits, e-mail those with an address."""
    if not url and data_product is not None:
        url = reverse("valuetree:data-product", kwargs={"slug": data_product.slug})
    wanted = list(dict.fromkeys(recipients))
    addressed = set(
        get_user_model()
        .objects.filter(pk__in=wanted)
        .exclude(email="")
        .values_list("pk", flat=True)
    )
    notifications = Notification.objects.bulk_create(
        Notification(
            recipient_id=user_id,
            kind=kind,
            subject=subject[:300],
            body=body,
            url=url,
            data_product=data_product,
            related_product=related_product,
            email_status="queued" if user_id in addressed else "",
        )
        for user_id in wanted
    )
    ids = [n.pk for n in notifications if n.email_status]
    transaction.on_commit(lambda: _queue_notification_emails(ids))
    return notifications


def _queue_notification_emails(ids: list[int]) -> None:
    from valuetree import tasks

    for notification_id in ids:
        tasks.email_notification.delay(notification_id)


# A row left "sending" longer than a task may run belongs to a worker that died.
def _email_lease() -> timedelta:
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 30)


def notification_email_send(*, notification_id: int, final_attempt: bool) -> str:
    """E-mail one notification once (queued by ``notify`` after its commit, sent by a
    Celery task with retries, so a mail server that is down delays the e-mail instead
    of losing it). Returns the e-mail's status.

    The row is claimed by a conditional UPDATE (queued or retrying, or left sending by
    a dead worker past the lease); a sent one is never sent again. A transient failure
    (valuetree.mail.TransportError, not permanent) is stored as "retrying" and raised
    for the task to retry; a permanent one, or the final attempt's, is "failed".
    """
    from valuetree.mail import EmailTransport, TransportError

    now = timezone.now()
    claimed = Notification.objects.filter(
        Q(email_status__in=("queued", "retrying"))
        | Q(email_status="sending", emailed_at__lt=now - _email_lease()),
        pk=notification_id,
    ).update(email_status="sending", email_attempts=F("email_attempts") + 1, emailed_at=now)
    if not claimed:
        return (
            Notification.objects.filter(pk=notification_id)
            .values_list("email_status", flat=True)
            .first()
            or "gone"
        )
    n = Notification.objects.select_related("recipient").get(pk=notification_id)
    message = EmailMessage(
        # One line, as the report e-mails' subjects: a name with a line break (the
        # API takes one) made EmailMessage raise BadHeaderError on every attempt.
        subject=" ".join(f"[Valuetree] {n.subject}".split()),
        body=f"{n.body}\n\n{settings.SITE_URL}{n.url}".strip(),
        to=[n.recipient.email],
    )
    try:
        EmailTransport().send(message)
    except TransportError as e:
        failed = e.permanent or final_attempt
        Notification.objects.filter(pk=notification_id).update(
            email_status="failed" if failed else "retrying", email_error=e.message[:2000]
        )
        logger.warning("E-mail of notification %s failed: %s", notification_id, e.message)
        if failed:
            return "failed"
        raise
    Notification.objects.filter(pk=notification_id).update(
        email_status="sent", email_error="", emailed_at=timezone.now()
    )
    return "sent"


def notifications_mark_read(*, user: AbstractBaseUser, ids: Iterable[int] | None = None) -> int:
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())


# --- Duplicates ------------------------------------------------------------------------


def _notify_similar_owners(*, product: DataProduct) -> None:
    """Tell the owners of products much like ``product`` about it, once per pair."""
    if product.stage == LifecycleStage.RETIRED or product.duplicate_of_id:
        return
    similar = similar_products(Probe.of(product), exclude_pk=product.pk, min_score=NOTIFY_SCORE)
    told = set(
        Notification.objects.filter(
            kind=NotificationKind.SIMILAR_PRODUCT, data_product=product
        ).values_list("recipient_id", "related_product_id")
    )
    for match in similar:
        other = match.product
        if other.owner_id is None or other.owner_id == product.owner_id:
            continue
        if (other.owner_id, other.pk) in told:
            continue
        notify(
            recipients=[other.owner_id],
            kind=NotificationKind.SIMILAR_PRODUCT,
            subject=f"“{product.name}” looks like your “{other.name}” ({match.score:.0%} alike)",
            body=(
                f"{product.owner or 'Someone'} in {product.domain.name} is working on "
                f"“{product.name}” ({product.stage}): {product.purpose or 'no purpose yet'}\n"
                f"It scores {match.score:.2f} against your “{other.name}”: "
                f"{match.label}. Why: {'; '.join(match.reasons) or 'described alike'}.\n"
                "Talk before building it twice; it can be marked as a duplicate of yours."
            ),
            data_product=product,
            related_product=other,
        )


@transaction.atomic
def data_product_mark_duplicate(
    *, product: DataProduct, original: DataProduct, by: AbstractBaseUser | None
) -> DataProduct:
    """Link ``product`` to the product it duplicates; then merge or retire it.

    Duplicates always point at a product that is not one itself: a product that has
    duplicates hands them on to ``original``."""
    if original.pk == product.pk:
        raise ValidationError({"original": "A product cannot duplicate itself."})
    if original.duplicate_of_id is not None:
        # Duplicates point at a product that is not one itself: no chains, no cycles.
        raise ValidationError(
            {
                "original": f"“{original.name}” is itself a duplicate of "
                f"“{original.duplicate_of.name}”; pick that one."
            }
        )
    if original.stage == LifecycleStage.RETIRED:
        raise ValidationError({"original": f"“{original.name}” is retired; pick a living one."})
    if product.stage == LifecycleStage.RETIRED:
        raise ValidationError({"original": "This product is retired already."})
    product.duplicate_of = original
    product.save(update_fields=["duplicate_of", "updated_at"])
    # Its own duplicates now duplicate the original: no chains.
    product.duplicates.update(duplicate_of=original)
    if original.owner_id is not None and original.owner_id != getattr(by, "pk", None):
        notify(
            recipients=[original.owner_id],
            kind=NotificationKind.DUPLICATE,
            subject=f"“{product.name}” was marked as a duplicate of your “{original.name}”",
            body=f"Marked by {by or 'someone'}. Its consumers may come your way.",
            data_product=original,
            related_product=product,
        )
    return product


@transaction.atomic
def data_product_merge(*, product: DataProduct, by: AbstractBaseUser | None) -> dict[str, int]:
    """Fold a duplicate into the product it duplicates, then retire it.

    The nodes it serves and the teams waiting for it move to the original (skipping
    any the original already has); its ports and contracts stay with it, for the
    record. Returns how many links and interests moved."""
    original = _original_of(product)
    # Row by row, not update(): both models keep a history of who moved what.
    has_links = set(original.links.values_list("node_id", "role"))
    links = [link for link in product.links.all() if (link.node_id, link.role) not in has_links]
    has_interests = set(original.interests.values_list("node_id", flat=True))
    interests = [i for i in product.interests.all() if i.node_id not in has_interests]
    for moving in (*links, *interests):
        moving.data_product = original
        moving.save(update_fields=["data_product"])
    data_product_transition(
        product=product,
        to_stage=LifecycleStage.RETIRED,
        by=by,
        note=f"Merged into “{original.name}” ({original.slug}).",
    )
    return {"links": len(links), "interests": len(interests)}


# What becomes of a product once it is marked as a duplicate.
DUPLICATE_OUTCOMES = [
    ("keep", "Only link the two"),
    ("merge", "Merge: move its nodes and waiting teams to the original, then retire it"),
    ("retire", "Retire it as it is"),
]


@transaction.atomic
def data_product_resolve_duplicate(
    *, product: DataProduct, original: DataProduct, then: str, by: AbstractBaseUser | None
) -> dict[str, int] | None:
    """Mark ``product`` as a duplicate of ``original``, then keep it, merge it (returns
    what moved) or retire it; all or nothing."""
    if then not in dict(DUPLICATE_OUTCOMES):
        raise ValidationError({"then": f"Unknown outcome {then!r}."})
    data_product_mark_duplicate(product=product, original=original, by=by)
    if then == "merge":
        return data_product_merge(product=product, by=by)
    if then == "retire":
        data_product_retire_duplicate(product=product, by=by)
    return None


def data_product_retire_duplicate(
    *, product: DataProduct, by: AbstractBaseUser | None
) -> LifecycleTransition | None:
    """Retire a duplicate as it is: whatever relied on it is warned and listed."""
    original = _original_of(product)
    return data_product_transition(
        product=product,
        to_stage=LifecycleStage.RETIRED,
        by=by,
        note=f"Duplicate of “{original.name}” ({original.slug}).",
    )


def _original_of(product: DataProduct) -> DataProduct:
    if product.duplicate_of_id is None:
        raise ValidationError(
            {"duplicate_of": "Mark the product as a duplicate of another one first."}
        )
    return product.duplicate_of


# --- Early consumers -----------------------------------------------------------------


@transaction.atomic
def consumer_interest_register(
    *, product: DataProduct, node: Node, user: AbstractBaseUser, team: str, purpose: str
) -> ConsumerInterest:
    """``team`` waits for ``product`` to serve ``node`` (an initiative). The caller
    checks the user may edit the node's tree."""
    if product.stage not in CONSUMER_STAGES:
        raise ValidationError(
            {
                "data_product": f"“{product.name}” is {product.stage}: early consumers are for "
                "planned products. Link your initiative to it instead."
            }
        )
    if node.kind != NodeKind.INITIATIVE:
        raise ValidationError({"node": f"Pick an initiative, not {_a(node.kind)}."})
    if ConsumerInterest.objects.filter(data_product=product, node=node).exists():
        raise ValidationError(
            {"node": f"“{node.title}” is already registered as waiting for this product."}
        )
    interest = ConsumerInterest(
        data_product=product, node=node, user=user, team=team.strip(), purpose=purpose.strip()
    )
    interest.full_clean()
    interest.save()
    if product.owner_id is not None and product.owner_id != user.pk:
        # The owner is told what the product page shows them: the initiative and its
        # tree only when they may read that tree (a private tree stays unnamed).
        owner_reads = (
            node.tree_id
            in readable_tree_ids(user_ids=[product.owner_id], tree_ids=[node.tree_id])[
                product.owner_id
            ]
        )
        where = (
            f"the initiative “{node.title}” ({node.tree.name})"
            if owner_reads
            else "an initiative in a tree you cannot see"
        )
        notify(
            recipients=[product.owner_id],
            kind=NotificationKind.INTEREST,
            subject=f"{interest.team} wants to consume “{product.name}”",
            body=f"For {where}: {interest.purpose}",
            data_product=product,
        )
    return interest


def consumer_interest_withdraw(*, interest: ConsumerInterest) -> None:
    interest.delete()


# --- API tokens --------------------------------------------------------------------------


def api_token_create(
    *, user: AbstractBaseUser, name: str, days: int | None = None
) -> tuple[ApiToken, str]:
    """A new named token for `user` that expires after `days` (default API_TOKEN_DAYS,
    at most API_TOKEN_MAX_DAYS). Returns the row and the token itself, which exists
    only here: the database keeps its SHA-512 digest (django-rest-knox)."""
    name = (name or "").strip()
    days = settings.API_TOKEN_DAYS if days is None else days
    errors = {}
    if not name:
        errors["name"] = "Name the token after what will use it, e.g. “CI pipeline”."
    elif len(name) > 100:
        errors["name"] = "At most 100 characters."
    if (
        isinstance(days, bool)
        or not isinstance(days, int)
        or not (1 <= days <= settings.API_TOKEN_MAX_DAYS)
    ):
        errors["days"] = f"A token lives from 1 to {settings.API_TOKEN_MAX_DAYS} days."
    if errors:
        raise ValidationError(errors)
    if not user.is_active:
        raise ValidationError("An inactive user cannot have tokens.")
    limit = settings.API_TOKEN_LIMIT_PER_USER
    working = ApiToken.objects.filter(user=user).filter(
        Q(expiry__isnull=True) | Q(expiry__gt=timezone.now())
    )
    if working.count() >= limit:
        raise ValidationError(
            f"You have {limit} working tokens, the most one may hold "
            "(API_TOKEN_LIMIT_PER_USER): revoke one you no longer use first."
        )
    return ApiToken.objects.create(user=user, expiry=timedelta(days=days), name=name)


def api_token_revoke(*, user: AbstractBaseUser, token_key: str) -> int:
    """Revoke `user`'s token(s) known by `token_key`; how many (0 when none matched:
    another user's key revokes nothing)."""
    deleted, _ = ApiToken.objects.filter(user=user, token_key=token_key).delete()
    return deleted


@transaction.atomic
def api_token_rotate(
    *, user: AbstractBaseUser, name: str, days: int | None = None
) -> tuple[ApiToken, str]:
    """A new token as `api_token_create` makes it, and every other token of `user` with
    that name revoked (issue_token --rotate); ValidationError revokes nothing."""
    # Revoked first, so that the new token is not refused at the per-user limit; a
    # refusal rolls the revocation back.
    ApiToken.objects.filter(user=user, name=(name or "").strip()).delete()
    return api_token_create(user=user, name=name, days=days)


# --- Embeddings for similarity -----------------------------------------------------------


def data_product_embeddings_refresh(*, product_ids: Iterable[int] | None = None) -> int:
    """Store the embedding of each product (all when ``product_ids`` is None) whose
    text — name, purpose, usage, ports, contract columns, glossary terms — changed
    since it was last embedded; return how many were computed. Idempotent."""
    glossary = Glossary.load()
    products = products_with_text().order_by("pk")
    if product_ids is not None:
        products = products.filter(pk__in=list(product_ids))
    known = dict(
        DataProductEmbedding.objects.filter(model=MODEL_NAME)
        .filter(data_product__in=products.values("pk"))
        .values_list("data_product_id", "text_hash")
    )
    changed: list[DataProductEmbedding] = []
    for product in products.iterator(chunk_size=500):
        probe, terms, text = embedding_text(product, glossary)
        digest = text_hash(text)
        if known.get(product.pk) == digest:
            continue
        changed.append(
            DataProductEmbedding(
                data_product=product,
                model=MODEL_NAME,
                text=text,
                text_hash=digest,
                fields=probe.fields(),
                term_ids=terms,
            )
        )
    now = timezone.now()
    model = embedder()
    for start in range(0, len(changed), 500):
        batch = changed[start : start + 500]
        vectors = model.embed([pooled_text(row.text) for row in batch])
        for row, vector in zip(batch, vectors, strict=True):
            row.vector = vector.astype("float32").tobytes()
            row.updated_at = now
        DataProductEmbedding.objects.bulk_create(
            batch,
            update_conflicts=True,
            unique_fields=["data_product"],
            update_fields=[
                "model",
                "text",
                "text_hash",
                "fields",
                "term_ids",
                "vector",
                "updated_at",
            ],
        )
    return len(changed)


def _embed_after_commit(product_ids: Iterable[int]) -> None:
    """Embed these products once the transaction commits (a few milliseconds each,
    in process; a rolled-back change embeds nothing)."""
    ids = list(product_ids)
    transaction.on_commit(lambda: data_product_embeddings_refresh(product_ids=ids))


def _embed_all_after_commit() -> None:
    """A glossary change can change every product's text: re-embed in the worker,
    once per transaction — an import of 253 terms queued 253 tasks, each reading
    every product. A callback discarded with a rolled-back savepoint is no longer
    pending, so a later change queues it again."""
    pending = transaction.get_connection().run_on_commit
    if not any(entry[1] is _enqueue_embed_all for entry in pending):
        transaction.on_commit(_enqueue_embed_all)


def _enqueue_embed_all() -> None:
    from valuetree.tasks import refresh_embeddings

    refresh_embeddings.delay()


# --- Business glossary -------------------------------------------------------------------

GLOSSARY_TERM_FIELDS = (
    "name",
    "slug",
    "definition",
    "synonyms",
    "abbreviations",
    "domain",
    "owner",
)


# Synonyms (or abbreviations) of one term: a real term has a handful; the cap keeps
# one careless import from making every text scan and search expansion longer.
GLOSSARY_MAX_FORMS = 100
# Terms in one import (one request): business glossaries hold hundreds to a few
# thousand terms; a larger file is split, and no request holds a worker for minutes.
GLOSSARY_IMPORT_MAX_TERMS = 5_000


def _no_control_characters(value: str, field: str) -> None:
    """Refuse NUL and other control characters (tab and line breaks aside):
    PostgreSQL cannot store NUL in text or JSON, and none belongs in a term."""
    if any(unicodedata.category(char) == "Cc" and char not in "\t\n\r" for char in value):
        raise ValidationError({field: "Remove the control characters (such as NUL)."})


def _clean_forms(values: Any, field: str) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [v for v in (part.strip() for part in values.replace(";", ",").split(",")) if v]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValidationError({field: "Give a list of words or phrases."})
    seen: dict[str, str] = {}
    for value in values:
        value = unicodedata.normalize("NFC", " ".join(value.split()))
        _no_control_characters(value, field)
        if len(value) > 200:
            raise ValidationError({field: "Each entry may have at most 200 characters."})
        if value and field == "synonyms" and not content_words(value):
            # "the" or "of" as a synonym would put the term in every product's text.
            raise ValidationError({field: f"“{value}” is too common a word to be a synonym."})
        if (
            value
            and field == "abbreviations"
            and not content_words(value)
            and re.fullmatch(r"[^\W_]+", value)
        ):
            # Forms match case-insensitively: "IT" would be every "it", "D" every
            # lone "d". Abbreviations of several parts ("A&E", "P&L") are kept.
            raise ValidationError(
                {field: f"“{value}” is a single letter or too common a word to be an abbreviation."}
            )
        if value and value.lower() not in seen:
            seen[value.lower()] = value
    if len(seen) > GLOSSARY_MAX_FORMS:
        raise ValidationError({field: f"Give at most {GLOSSARY_MAX_FORMS} entries."})
    return list(seen.values())


# Addresses of the glossary's own pages and API routes.
GLOSSARY_RESERVED_SLUGS = frozenset({"new", "export", "import"})


def _glossary_slug(name: str, pk: int | None) -> str:
    """A free slug for a term named ``name``: its ASCII slug, or "term-" and a hash of
    the name when it has no ASCII letter or digit ("顧客"), with "-2", "-3"... when a
    term or a glossary route has it ("Cafe" after "Café", "New"). The import has no
    slug column and the form no slug field: a taken slug was an error nobody could
    act on."""
    import hashlib

    from django.utils.text import slugify

    base = slugify(name)[:90] or f"term-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    taken = GLOSSARY_RESERVED_SLUGS | set(
        GlossaryTerm.objects.filter(slug__startswith=base)
        .exclude(pk=pk)
        .values_list("slug", flat=True)
    )
    slug, number = base, 1
    while slug in taken:
        number += 1
        slug = f"{base}-{number}"
    return slug


class GlossaryForms:
    """Every term's name and forms (synonyms and abbreviations), to check a term
    against all the others without a query per check: read once (one query) for an
    edit, and once for a whole import, which keeps it up to date as it saves terms
    (checking each imported term against the table made an import quadratic: 1,500
    terms took 17 s and a 10 MB document would have held a worker for hours).

    Keys: a name lower-cased (``name__iexact`` as PostgreSQL compares it), a form
    case-folded as the scanner matches it (:func:`fold_case`: "ſku" is "SKU") and
    lower-cased (a name that is another term's form). Each key maps to the terms
    that have it, ``{pk: (term name, the form as written)}``."""

    def __init__(self) -> None:
        self.names: dict[str, dict[int, tuple[str, str]]] = {}
        self.folded_forms: dict[str, dict[int, tuple[str, str]]] = {}
        self.lower_forms: dict[str, dict[int, tuple[str, str]]] = {}
        self._keys: dict[int, list[tuple[dict, str]]] = {}

    @classmethod
    def load(cls) -> GlossaryForms:
        index = cls()
        for pk, name, synonyms, abbreviations in GlossaryTerm.objects.values_list(
            "pk", "name", "synonyms", "abbreviations"
        ):
            index.put(pk, name, [*synonyms, *abbreviations])
        return index

    def put(self, pk: int, name: str, forms: Iterable[str]) -> None:
        """Index term ``pk`` under ``name`` and ``forms`` (replacing what it had)."""
        for table, key in self._keys.pop(pk, []):
            table.get(key, {}).pop(pk, None)
        entries = [(self.names, name.lower(), name)]
        for form in forms:
            entries.append((self.folded_forms, fold_case(form), form))
            entries.append((self.lower_forms, form.lower(), form))
        self._keys[pk] = [(table, key) for table, key, _ in entries]
        for table, key, form in entries:
            table.setdefault(key, {})[pk] = (name, form)

    @staticmethod
    def other(table: dict[str, dict[int, tuple[str, str]]], key: str, pk: int | None):
        """(term name, form) of a term other than ``pk`` under ``key``, or None."""
        return next((v for other_pk, v in table.get(key, {}).items() if other_pk != pk), None)


def _save_term(
    term: GlossaryTerm, fields: dict[str, Any], index: GlossaryForms | None = None
) -> GlossaryTerm:
    """Validate ``fields`` against the other terms (``index``, read when not given),
    save ``term`` and queue the embeddings' refresh. Raises ValidationError."""
    index = index if index is not None else GlossaryForms.load()
    for key in ("synonyms", "abbreviations"):
        if key in fields:
            fields[key] = _clean_forms(fields[key], key)
    for key in ("name", "definition"):
        if isinstance(fields.get(key), str):
            # NFC: "Café" typed with a combining accent is the same name as "Café".
            fields[key] = unicodedata.normalize("NFC", fields[key])
            _no_control_characters(fields[key], key)
    if isinstance(fields.get("name"), str):
        fields["name"] = " ".join(fields["name"].split())
        # The scorer and the import match names case-insensitively: "Customer" and
        # "customer" as two terms would be one form with two meanings.
        clash = index.other(index.names, fields["name"].lower(), term.pk)
        if fields["name"] and clash is not None:
            raise ValidationError({"name": f"A term “{clash[0]}” already exists."})
    for key in ("synonyms", "abbreviations"):
        # A form that is another term's name would make the word mean two terms at
        # once (and "a = b, b = a" a cycle): say they are one term, or link them.
        for form in fields.get(key) or []:
            other = index.other(index.names, form.lower(), term.pk)
            if other is not None:
                raise ValidationError(
                    {key: f"“{other[0]}” is a term of its own; it cannot also be one of these."}
                )
    # One form of two terms is rewritten as both names wherever it occurs (a hundred
    # terms sharing "ab" made each "ab" 20,000 characters): a word names one term.
    # Folded as the scanner matches ("ſku" is "SKU").
    for key in ("synonyms", "abbreviations"):
        for form in fields.get(key) or []:
            other = index.other(index.folded_forms, fold_case(form), term.pk)
            if other is not None:
                raise ValidationError(
                    {key: f"“{other[1]}” is already a synonym or abbreviation of “{other[0]}”."}
                )
    name = fields.get("name")
    if isinstance(name, str) and name.lower() != (term.name or "").lower():
        other = index.other(index.lower_forms, name.lower(), term.pk)
        if other is not None:
            raise ValidationError(
                {"name": f"“{name}” is already a synonym or abbreviation of “{other[0]}”."}
            )
    apply_fields(term, fields, GLOSSARY_TERM_FIELDS)
    if not term.slug:
        term.slug = _glossary_slug(term.name, term.pk)
    if term.slug in GLOSSARY_RESERVED_SLUGS:
        # Addresses of the glossary's own pages and API routes.
        raise ValidationError({"slug": f"“{term.slug}” is reserved; choose another slug."})
    term.full_clean()
    term.save()
    index.put(term.pk, term.name, [*term.synonyms, *term.abbreviations])
    _embed_all_after_commit()
    return term


@transaction.atomic
def glossary_term_create(
    *,
    by: AbstractBaseUser | None = None,
    data_products: Iterable[DataProduct] | None = None,
    **fields: Any,
) -> GlossaryTerm:
    """A new glossary term, owned by ``by`` unless ``owner`` is given, linked to
    ``data_products``. Every product's embedding is refreshed after commit (a new
    synonym can change its text)."""
    fields.setdefault("owner", by)
    term = _save_term(GlossaryTerm(), fields)
    if data_products is not None:
        glossary_term_set_products(term=term, products=data_products)
    return term


@transaction.atomic
def glossary_term_update(
    *, term: GlossaryTerm, data_products: Iterable[DataProduct] | None = None, **fields: Any
) -> GlossaryTerm:
    """Change a term; ``data_products``, when given, replaces its product links."""
    term = _save_term(term, fields)
    if data_products is not None:
        glossary_term_set_products(term=term, products=data_products)
    return term


@transaction.atomic
def glossary_term_delete(*, term: GlossaryTerm) -> None:
    term.delete()
    _embed_all_after_commit()


@transaction.atomic
def glossary_term_set_products(
    *, term: GlossaryTerm, products: Iterable[DataProduct]
) -> GlossaryTerm:
    """Link the term to exactly ``products``; their embeddings follow after commit."""
    products = list(products)
    before = set(term.data_products.values_list("pk", flat=True))
    term.data_products.set(products)
    _embed_after_commit(before ^ {p.pk for p in products})
    return term


@transaction.atomic
def glossary_column_link(
    *, term: GlossaryTerm, product: DataProduct, port: str, column: str
) -> GlossaryColumnLink:
    """Say that ``term`` describes column ``column`` of port ``port`` of ``product``;
    the column must be in that port's data contract."""
    from valuetree.similarity import contract_columns

    port_row = product.output_ports.filter(name=port).select_related("contract").first()
    if port_row is None:
        raise ValidationError({"port": f"“{product.name}” has no output port named “{port}”."})
    contract = getattr(port_row, "contract", None) if hasattr(port_row, "contract") else None
    names = {name for name, _ in contract_columns(contract)} if contract else set()
    if column not in names:
        raise ValidationError(
            {"column": f"Port “{port}” has no column “{column}” in its contract."}
        )
    link, _ = GlossaryColumnLink.objects.get_or_create(
        term=term, data_product=product, port=port, column=column
    )
    _embed_after_commit([product.pk])
    return link


def glossary_column_unlink(*, link: GlossaryColumnLink) -> None:
    product_id = link.data_product_id
    link.delete()
    _embed_after_commit([product_id])


def _term_for_definition(definition: Any, terms: list[GlossaryTerm]) -> GlossaryTerm | None:
    """The glossary term an ODCS ``authoritativeDefinitions`` entry points at: a URL
    ending in ``/glossary/<slug>/`` (what we export)."""
    if not isinstance(definition, dict):
        return None
    url = str(definition.get("url") or "").rstrip("/")
    if "/glossary/" not in url:
        return None
    slug = url.rsplit("/", 1)[-1]
    return next((t for t in terms if t.slug == slug), None)


def data_contract_imported(*, contract: Any) -> None:
    """After an ODCS contract is written: link each column to the glossary term its
    ``authoritativeDefinitions`` point at, or whose name or a synonym is its
    ``businessName``; then refresh the product's embedding after commit."""
    from valuetree.similarity import contract_columns  # noqa: F401 - same walk below

    product = contract.output_port.data_product
    port = contract.output_port.name
    terms = list(GlossaryTerm.objects.all())
    by_form = {form.lower(): t for t in terms for form in t.forms}
    links: set[tuple[int, str]] = set()

    def walk(properties: Any) -> None:
        for prop in properties if isinstance(properties, list) else []:
            if not isinstance(prop, dict) or not prop.get("name"):
                continue
            found = [
                _term_for_definition(d, terms) for d in prop.get("authoritativeDefinitions") or []
            ]
            business = str(prop.get("businessName") or "").strip().lower()
            if business in by_form:
                found.append(by_form[business])
            for term in found:
                if term is not None:
                    links.add((term.pk, str(prop["name"])))
            walk(prop.get("properties"))

    for obj in contract.schema if isinstance(contract.schema, list) else []:
        if isinstance(obj, dict):
            walk(obj.get("properties"))
    GlossaryColumnLink.objects.filter(data_product=product, port=port).delete()
    GlossaryColumnLink.objects.bulk_create(
        [
            GlossaryColumnLink(term_id=term_id, data_product=product, port=port, column=column)
            for term_id, column in sorted(links)
        ]
    )
    _embed_after_commit([product.pk])


def glossary_import(*, rows: list[dict[str, Any]], by: AbstractBaseUser | None) -> dict[str, int]:
    """Create or update terms by name from ``rows`` (name, definition, synonyms,
    abbreviations, domain slug), all or nothing; {"created": n, "updated": m}.
    Raises ValidationError naming the row of the first problem."""
    if not isinstance(rows, list):
        raise ValidationError({"terms": "Expected a list of terms."})
    if len(rows) > GLOSSARY_IMPORT_MAX_TERMS:
        raise ValidationError(
            {
                "terms": f"A glossary import holds at most {GLOSSARY_IMPORT_MAX_TERMS:,} terms "
                f"(this one has {len(rows):,}): split it into several files."
            }
        )
    domains = {d.slug: d for d in Domain.objects.all()}
    counts = {"created": 0, "updated": 0}
    with transaction.atomic():
        # Every term is checked against the others through one index, kept up to date
        # as terms are saved, and looked up by name in one table read.
        index = GlossaryForms.load()
        by_name = {term.name.lower(): term for term in GlossaryTerm.objects.all()}
        for number, row in enumerate(rows, start=1):
            for key in ("name", "definition", "domain"):
                value = row.get(key) if isinstance(row, dict) else None
                if value is not None and not isinstance(value, str):
                    # YAML's ``definition: no`` is false and ``name: 1.10`` is 1.1:
                    # text is taken as written, never made from another value.
                    scalar = isinstance(value, bool | int | float | Decimal | date)
                    message = quote_it(value) if scalar else "Expected text."
                    raise ValidationError({"terms": f"Term {number}: {key}: {message}"})
            if not isinstance(row, dict) or not str(row.get("name") or "").strip():
                raise ValidationError({"terms": f"Term {number}: give it a name."})
            unknown = [str(key) for key in row if key not in GLOSSARY_CSV_COLUMNS]
            if unknown:
                raise ValidationError(
                    {
                        "terms": f"Term {number}: unknown field {', '.join(unknown)}; a term "
                        f"has {', '.join(GLOSSARY_CSV_COLUMNS)}."
                    }
                )
            # A field left out (a key, a CSV column) leaves an existing term's value as
            # it is: importing names and domains alone must not empty every definition.
            fields: dict[str, Any] = {}
            if "definition" in row:
                fields["definition"] = str(row["definition"] or "")
            for key in ("synonyms", "abbreviations"):
                if key in row:
                    fields[key] = row[key] or []
            domain_slug = str(row.get("domain") or "").strip()
            if domain_slug:
                if domain_slug not in domains:
                    raise ValidationError({"terms": f"Term {number}: no domain “{domain_slug}”."})
                fields["domain"] = domains[domain_slug]
            name = " ".join(str(row["name"]).split())
            term = by_name.get(unicodedata.normalize("NFC", name).lower())
            try:
                if term is None:
                    term = _save_term(GlossaryTerm(), {"owner": by, "name": name, **fields}, index)
                    by_name[term.name.lower()] = term
                    counts["created"] += 1
                else:
                    _save_term(term, fields, index)
                    counts["updated"] += 1
            except ValidationError as error:
                problems = "; ".join(
                    f"{field}: {' '.join(m)}" for field, m in error.message_dict.items()
                )
                raise ValidationError({"terms": f"Term {number} ({name}): {problems}"}) from None
    return counts


GLOSSARY_CSV_COLUMNS = ("name", "definition", "synonyms", "abbreviations", "domain")


def glossary_rows_from_text(raw: bytes | str, *, fmt: str) -> list[dict[str, Any]]:
    """Terms from a YAML document (``terms: [...]`` or a bare list) or a CSV file with
    the columns of :data:`GLOSSARY_CSV_COLUMNS` (synonyms and abbreviations read by
    ``selectors.csv_list_values``; a cell our export quoted against formulas is read
    back unquoted). Read
    through :mod:`valuetree.documents`, like every document from outside: its size,
    depth, alias and NUL limits hold here too. Raises ValidationError for a document
    that cannot be read."""
    import csv
    import io

    from valuetree import documents
    from valuetree.selectors import csv_cell_value, csv_list_values

    try:
        if fmt == "csv":
            text = documents.document_text(raw)
        else:
            [(data, _lines)] = documents.load_yaml(raw)
    except documents.ImportFailed as error:
        raise ValidationError({"terms": str(error)}) from None
    if fmt == "csv":
        if "\x00" in text:
            raise ValidationError({"terms": documents.NUL_MESSAGE})
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header, rows = next(reader, None), list(reader)
        except csv.Error as error:  # a cell over the csv module's limit (128 KiB)
            raise ValidationError(
                {"terms": f"Line {reader.line_num}: not readable as CSV ({error})."}
            ) from None
        # Column names as the push CSV reads them (case and spaces aside). A column we
        # do not know, or one named twice, is refused: "Definiton" would otherwise be
        # dropped without a word, and of two "definition" columns one would win.
        columns = [name.strip().lower() for name in header or []]
        if "name" not in columns:
            raise ValidationError({"terms": "The CSV needs a header row with a `name` column."})
        unknown = [name for name in columns if name not in GLOSSARY_CSV_COLUMNS]
        twice = sorted({name for name in columns if columns.count(name) > 1})
        if unknown or twice:
            raise ValidationError(
                {
                    "terms": "Line 1: "
                    + (f"unknown column {', '.join(map(repr, unknown))}" if unknown else "")
                    + ("; " if unknown and twice else "")
                    + (f"column {', '.join(map(repr, twice))} named twice" if twice else "")
                    + f"; the columns are {', '.join(GLOSSARY_CSV_COLUMNS)}."
                }
            )

        def cell(row: list[str], name: str) -> str:
            index = columns.index(name)
            return row[index] if index < len(row) else ""

        terms = []
        for row in rows:
            if not any(value.strip() for value in row):
                continue  # a blank line
            # Only the columns the file has: one it leaves out keeps each term's value.
            term: dict[str, Any] = {}
            for name in columns:
                value = cell(row, name)
                if name in ("synonyms", "abbreviations"):
                    term[name] = csv_list_values(value)
                elif name == "domain":
                    term[name] = value
                else:
                    term[name] = csv_cell_value(value)
            terms.append(term)
        return terms
    if isinstance(data, dict):
        data = data.get("terms")
    if not isinstance(data, list):
        raise ValidationError({"terms": "Expected `terms:` with a list of terms."})
    return data
