"""Soft delete: a deleted subtree goes to its tree's trash and can be restored for
``TRASH_DAYS`` days (issue 15). Services (writes) and selectors (reads) of the trash.

Deleting stores the subtree as a document (nodes with their fields, measures with
their metric, data-product links) and then deletes the rows, so every other read of
the tree stays as it is. Restoring recreates the subtree through the node services
and the registered sections, under the same parent at the same position; what was
written about the old rows (history, verdicts) stays with them in the history, and
each section's ``restored`` hook derives it again for the new rows (verdicts).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from valuetree import sections, selectors, services
from valuetree.interchange import _plain
from valuetree.models import (
    TRASH_DAYS,
    DataProduct,
    DataProductLink,
    Node,
    TrashedSubtree,
    ValueTree,
)

# Node fields a restore passes back to node_create (owner/accountable by username).
_RESTORED_FIELDS = tuple(field for field in services.NODE_FIELDS)
_ITEM_DROP = {"id", "created_at", "updated_at"}


def _subtree_document(tree: ValueTree, node: Node) -> dict[str, Any]:
    """The node and its descendants as nested dicts (see the module docstring)."""
    document = selectors.tree_get(tree=tree)
    links: dict[int, list[dict[str, str]]] = {}
    for link in selectors.data_product_links_for_tree(tree_id=tree.pk):
        links.setdefault(link["node_id"], []).append(
            {"data_product": link["data_product__slug"], "role": link["role"]}
        )
    keys = [section.key for section in sections.registered()]

    def export(doc: dict[str, Any]) -> dict[str, Any]:
        out = {name: _plain(doc.get(name)) for name in ("kind", *_RESTORED_FIELDS)}
        # The old id: a child trashed before this node finds its parent again in
        # the restored copy (``_reparent_waiting``).
        out["was"] = doc["id"]
        for key in keys:
            out[key] = [
                {k: _plain(v) for k, v in item.items() if k not in _ITEM_DROP}
                for item in doc.get(key, [])
            ]
        out["data_products"] = links.get(doc["id"], [])
        out["children"] = [export(child) for child in doc["children"]]
        return out

    stack = list(document["goals"])
    while stack:
        doc = stack.pop()
        if doc["id"] == node.pk:
            return export(doc)
        stack.extend(doc["children"])
    raise ValidationError("That node is not in this tree.")


@transaction.atomic
def node_trash(*, node: Node, user: Any = None, cascade: bool = True) -> TrashedSubtree:
    """Delete ``node`` (with its descendants only when ``cascade``, as
    ``services.node_delete``), keeping them restorable in the tree's trash for
    ``TRASH_DAYS`` days. Returns the trash item; raises ValidationError as
    ``node_delete`` does."""
    descendants = selectors.node_descendant_count(node=node)
    if descendants and not cascade:
        services.node_delete(node=node, cascade=False)  # raises: says why
    tree = ValueTree.objects.get(pk=node.tree_id)
    document = _subtree_document(tree, node)
    position = Node.objects.values_list("position", flat=True).get(pk=node.pk)
    # The parent's id outlives the parent's row (``parent`` is set to NULL when it is
    # deleted), so a restored parent can take this item back.
    document["parent_was"] = node.parent_id
    item = TrashedSubtree.objects.create(
        tree=tree,
        parent_id=node.parent_id,
        position=position,
        kind=node.kind,
        title=node.title,
        descendant_count=descendants,
        document=document,
        deleted_by=user if getattr(user, "is_authenticated", False) else None,
        deleted_at=timezone.now(),
    )
    services.node_delete(node=node, cascade=True)
    return item


def trash_for_tree(*, tree: ValueTree, now: Any = None) -> list[TrashedSubtree]:
    """What can still be restored, newest first (older items are purged)."""
    cutoff = (now or timezone.now()) - timedelta(days=TRASH_DAYS)
    return list(
        TrashedSubtree.objects.filter(tree=tree, deleted_at__gte=cutoff).select_related(
            "deleted_by", "parent"
        )
    )


def trash_purge(*, now: Any = None) -> int:
    """Forget what has been in the trash longer than ``TRASH_DAYS``; how many."""
    cutoff = (now or timezone.now()) - timedelta(days=TRASH_DAYS)
    deleted, _ = TrashedSubtree.objects.filter(deleted_at__lt=cutoff).delete()
    return deleted


@transaction.atomic
def trash_restore(*, item: TrashedSubtree, now: Any = None) -> Node:
    """Recreate the trashed subtree under its old parent at its old position (or the
    end). Raises ValidationError when it can no longer go back: too old, already
    restored (two clicks, two tabs), or its parent is gone (restore the parent first:
    the items waiting for it then go back under the restored copy)."""
    # Deleted first: of two restores of one item, the second deletes nothing (on
    # PostgreSQL it waits for the first to commit) and restores nothing.
    if not TrashedSubtree.objects.filter(pk=item.pk).delete()[0]:
        raise ValidationError("This was restored already.")
    if item.deleted_at < (now or timezone.now()) - timedelta(days=TRASH_DAYS):
        raise ValidationError(f"Deleted more than {TRASH_DAYS} days ago: it cannot come back.")
    if item.kind != "goal" and item.parent_id is None:
        raise ValidationError(
            f"The {item.kind}'s parent was deleted too: restore the parent first."
        )
    tree = ValueTree.objects.get(pk=item.tree_id)
    parent = Node.objects.filter(pk=item.parent_id, tree=tree).first() if item.parent_id else None
    created: list[int] = []
    renamed: dict[int, int] = {}
    root = _recreate(tree, parent, item.document, created, renamed)
    siblings = Node.objects.filter(tree=tree, parent=parent).count()
    if item.position < siblings - 1:
        services.node_move(node=root, parent=parent, position=item.position)
    _reparent_waiting(tree, renamed)
    # The recreated items are new rows: what was derived from the old ones (verdicts)
    # is made again by the sections that own it.
    for section in sections.registered():
        if section.restored is not None:
            section.restored(created)
    return root


def _reparent_waiting(tree: ValueTree, renamed: dict[int, int]) -> None:
    """Point the trash items whose parent was deleted with a subtree just restored
    at that parent's new copy (``renamed``: old node id → new one)."""
    waiting = TrashedSubtree.objects.filter(tree=tree, parent__isnull=True).exclude(kind="goal")
    for other in waiting:
        new_parent = renamed.get(other.document.get("parent_was"))
        if new_parent is not None:
            other.parent_id = new_parent
            other.document["parent_was"] = new_parent
            other.save(update_fields=["parent", "document"])


def _recreate(
    tree: ValueTree,
    parent: Node | None,
    doc: dict[str, Any],
    created: list[int],
    renamed: dict[int, int],
) -> Node:
    """Recreate ``doc`` and its children under ``parent``; append each new node's id
    to ``created`` and map its old id to it in ``renamed``."""
    users = get_user_model().objects
    fields = {name: doc.get(name) for name in _RESTORED_FIELDS if name in doc}
    for name in ("owner", "accountable"):
        username = fields.get(name)
        fields[name] = users.filter(username=username).first() if username else None
    node = services.node_create(tree=tree, parent=parent, kind=doc["kind"], **fields)
    created.append(node.pk)
    if doc.get("was") is not None:
        renamed[doc["was"]] = node.pk
    by_key = {section.key: section for section in sections.registered()}
    for key, section in by_key.items():
        for position, item in enumerate(doc.get(key, [])):
            fields = {k: v for k, v in item.items() if k not in section.export_exclude}
            section.create(node.pk, position, fields)
            metric_id = item.get("metric_id")
            if key == "measures" and metric_id:
                _reconnect_metric(node, position, metric_id)
    for link in doc.get("data_products", []):
        product = DataProduct.objects.filter(slug=link["data_product"]).first()
        if product is not None:
            DataProductLink.objects.get_or_create(
                node=node, data_product=product, defaults={"role": link["role"]}
            )
    for child in doc.get("children", []):
        _recreate(tree, node, child, created, renamed)
    return node


def _reconnect_metric(node: Node, position: int, metric_id: int) -> None:
    """Give a restored measure back its metric, if the metric still exists (measures
    live in ``outcomes``, reached through the reverse relation, never imported)."""
    metric_model = apps.get_model("outcomes", "Metric")
    if metric_model.objects.filter(pk=metric_id, source__tree_id=node.tree_id).exists():
        node.measures.filter(position=position).update(metric_id=metric_id)
