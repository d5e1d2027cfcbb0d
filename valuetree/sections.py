"""Per-node sections that other apps contribute to the tree document.

``valuetree`` never imports ``outcomes`` (DESIGN.md §2), yet the whole-tree read, the
export and the import carry each node's measures. An app registers a section here in
its ``AppConfig.ready()``; the tree selector and the interchange code call every
registered section.

A section must fetch a whole tree's items in one query, so the tree read stays at a
fixed number of queries whatever the tree's size.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers


@dataclass(frozen=True)
class NodeSection:
    key: str
    # (tree id, node ids or None for all) -> {node id: [item, …]} in API
    # representation, with one query.
    fetch: Callable[[int, Collection[int] | None], dict[int, list[dict[str, Any]]]]
    # Validates one imported item (DRF serializer, so errors name the field).
    item_serializer: type[serializers.Serializer]
    # Creates one validated item: (node id, position, fields). Raises ValidationError.
    create: Callable[[int, int, dict[str, Any]], Any]
    # tree id -> the django-simple-history records of the section's items in that tree.
    history: Callable[[int], QuerySet[Any]]
    history_model: str
    # Keys of a fetched item that an export leaves out (ids, timestamps).
    export_exclude: frozenset[str] = frozenset({"id", "created_at", "updated_at"})
    # Creates many validated items on nodes a tree import just made, in bulk:
    # [(node id, position, fields)]. Raises services.ItemsInvalid (by index).
    # Optional: without it the import calls ``create`` per item.
    create_many: Callable[[list[tuple[int, int, dict[str, Any]]]], Any] | None = None
    # Called with the ids of the nodes a trash restore recreated, once their items are
    # in, inside the restore's transaction (outcomes evaluates the restored measures
    # after the commit, so they show their verdicts at once). Optional.
    restored: Callable[[list[int]], Any] | None = None


_sections: dict[str, NodeSection] = {}


def register(section: NodeSection) -> None:
    _sections[section.key] = section


def registered() -> list[NodeSection]:
    return list(_sections.values())


# --- Node statuses ------------------------------------------------------------------------
# The verdict slot on every node card is filled by whoever registers a provider (outcomes
# does): tree id -> {node id: (status, label)}, in a constant number of queries.

NodeStatuses = Callable[[int], dict[int, tuple[str, str]]]
_status_providers: list[NodeStatuses] = []


def register_node_statuses(provider: NodeStatuses) -> None:
    _status_providers.append(provider)


def node_statuses(tree_id: int) -> dict[int, tuple[str, str]]:
    statuses: dict[int, tuple[str, str]] = {}
    for provider in _status_providers:
        statuses.update(provider(tree_id))
    return statuses


# --- Node page panels ----------------------------------------------------------------------
# Other apps add sections to a node's page (outcomes adds its decisions and learnings):
# (request, node, tree) -> HTML, rendered in registration order below the page's own.

NodePanel = Callable[[Any, Any, Any], str]
_node_panels: list[NodePanel] = []


def register_node_panel(panel: NodePanel) -> None:
    _node_panels.append(panel)


def node_panels(request: Any, node: Any, tree: Any) -> list[str]:
    return [panel(request, node, tree) for panel in _node_panels]


# --- Document parts ------------------------------------------------------------------------
# Records that hang on nodes but are not part of the whole-tree read (decisions,
# learnings): only the export and the import carry them. ``key`` names a list on each
# node of the document and, with ``tree_level``, on the document itself (records of no
# node). Items may point at other nodes by their path in the document
# (``goals[0].children[1]``), so a part is written after every node exists.


@dataclass(frozen=True)
class DocumentPart:
    key: str
    # (tree id, {node id: path}) -> ({node id: [item, …]}, [tree-level item, …]), with a
    # constant number of queries.
    export: Callable[[int, dict[int, str]], tuple[dict[int, list[dict[str, Any]]], list]]
    # Validates one imported item (DRF serializer, so errors name the field).
    item_serializer: type[serializers.Serializer]
    # (tree, [(node or None, item, path)], {path: node}, {username: user}) -> None. Raises
    # ValidationError.
    create: Callable[[Any, list[tuple[Any, dict[str, Any], str]], dict[str, Any], dict], None]
    # Item fields holding usernames and node paths, checked before anything is written.
    user_fields: tuple[str, ...] = ()
    path_fields: tuple[str, ...] = ()
    tree_level: bool = False


_parts: dict[str, DocumentPart] = {}


def register_part(part: DocumentPart) -> None:
    _parts[part.key] = part


def parts() -> list[DocumentPart]:
    return list(_parts.values())


# --- Measure states -------------------------------------------------------------------------
# How each measure is doing (value, progress, recent values, verdict), for the outline
# cards and the node page: (tree id, measure ids or None) -> {measure id: state}, in a
# constant number of queries. A state is a dict with "status", "label", "reason",
# "latest_value", "progress", "expected_progress", "metric_id" and "points".

MeasureStates = Callable[[int, Collection[int] | None], dict[int, dict[str, Any]]]
_measure_state_providers: list[MeasureStates] = []


def register_measure_states(provider: MeasureStates) -> None:
    _measure_state_providers.append(provider)


def measure_states(
    tree_id: int, measure_ids: Collection[int] | None = None
) -> dict[int, dict[str, Any]]:
    states: dict[int, dict[str, Any]] = {}
    for provider in _measure_state_providers:
        states.update(provider(tree_id, measure_ids))
    return states


# Both at once, where a provider can read them together (the tree page): tree id ->
# (node statuses, measure states). Without one, the two registries above answer.
TreeViewStates = Callable[[int], tuple[dict[int, tuple[str, str]], dict[int, dict[str, Any]]]]
_tree_view_providers: list[TreeViewStates] = []


def register_tree_view_states(provider: TreeViewStates) -> None:
    _tree_view_providers.append(provider)


def tree_view_states(
    tree_id: int,
) -> tuple[dict[int, tuple[str, str]], dict[int, dict[str, Any]]]:
    if not _tree_view_providers:
        return node_statuses(tree_id), measure_states(tree_id)
    statuses: dict[int, tuple[str, str]] = {}
    states: dict[int, dict[str, Any]] = {}
    for provider in _tree_view_providers:
        more_statuses, more_states = provider(tree_id)
        statuses.update(more_statuses)
        states.update(more_states)
    return statuses, states
