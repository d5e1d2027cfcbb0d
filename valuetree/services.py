"""Writes to trees, nodes, memberships and data products.

Every function is keyword-only, validates with ``full_clean()`` and raises Django's
``ValidationError`` with field messages on input a user can fix. Kind rules:
goals hang under the tree's vision, bets under goals, initiatives under bets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max

from valuetree.models import (
    CHILD_KIND,
    PARENT_KIND,
    DataProduct,
    DataProductLink,
    Domain,
    Membership,
    Node,
    OutputPort,
    Role,
    ValueTree,
)
from valuetree.selectors import node_descendant_count

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


@transaction.atomic
def tree_create(
    *, owner: AbstractBaseUser, name: str, slug: str, vision: str, description: str = ""
) -> ValueTree:
    tree = ValueTree(name=name, slug=slug, vision=vision, description=description)
    tree.full_clean()
    tree.save()
    Membership.objects.create(tree=tree, user=owner, role=Role.OWNER)
    return tree


def tree_update(*, tree: ValueTree, **fields: Any) -> ValueTree:
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
    parent: Node | None,
    title: str,
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
    "stage",
)


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


@transaction.atomic
def data_product_create(
    *, output_ports: list[dict[str, Any]] | None = None, **fields: Any
) -> DataProduct:
    product = DataProduct()
    apply_fields(product, fields, DATA_PRODUCT_FIELDS)
    product.full_clean()
    product.save()
    _replace_output_ports(product=product, ports=output_ports or [])
    return product


@transaction.atomic
def data_product_update(
    *, product: DataProduct, output_ports: list[dict[str, Any]] | None = None, **fields: Any
) -> DataProduct:
    """Change a data product; ``output_ports``, when given, replaces the ports."""
    apply_fields(product, fields, DATA_PRODUCT_FIELDS)
    product.full_clean()
    product.save()
    if output_ports is not None:
        _replace_output_ports(product=product, ports=output_ports)
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
