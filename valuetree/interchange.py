"""Import and export of a whole tree as a JSON or YAML document.

The document (version 1)::

    version: 1
    slug: diagnostics
    name: …
    vision: …
    description: …
    goals:
      - kind: goal            # optional: the depth decides, a wrong kind is an error
        title: …
        owner: alice          # usernames
        measures: [...]       # each registered section (outcomes adds measures)
        data_products: [{data_product: lab-results, role: produces}]
        children: [...]       # bets, then initiatives

An import is validated whole before anything is written, then written in one
transaction: a bad document writes nothing. Errors name the field by its path
(``goals[0].children[2].title``) and, for YAML, its line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import yaml
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework import serializers

from valuetree import documents, sections, selectors, services
from valuetree.documents import (  # noqa: F401 - the names callers import from here
    MAX_DOCUMENT_BYTES,
    ImportFailed,
    Problem,
    document_text,
    join_path,
    quote_it,
    yaml_failure,
)
from valuetree.models import (
    CHILD_KIND,
    MAX_WEIGHT,
    DataProduct,
    DataProductLink,
    LinkRole,
    Node,
    NodeStatus,
    ValueTree,
)

DOCUMENT_VERSION = 1
FORMATS = ("json", "yaml")
# The most nodes one tree document may hold: a valid import of this size takes
# seconds, and a bigger one is refused before any node is validated (issue 16 §8).
MAX_TREE_NODES = 20_000
_YAML_TYPES = ("yaml", "yml", "x-yaml")


# --- Parsing -------------------------------------------------------------------------


def guess_format(*, content_type: str = "", filename: str = "") -> str:
    lowered = (content_type or "").lower()
    if filename.lower().rsplit(".", 1)[-1] in _YAML_TYPES or any(t in lowered for t in _YAML_TYPES):
        return "yaml"
    return "json"


def parse(raw: bytes | str, *, fmt: str) -> tuple[Any, dict[str, int]]:
    """Decode one tree document through the safe loader (``valuetree.documents``): a
    syntax error or a broken limit is an ImportFailed naming the line. A YAML
    document with more than MAX_TREE_NODES nodes is refused while it is read."""
    if fmt == "yaml":
        _refuse_too_many_nodes_early(documents.document_text(raw))
    [(data, lines)] = documents.load(raw, fmt=fmt)
    return data, lines


def _too_many_nodes(count: int, line: int | None) -> ImportFailed:
    return ImportFailed(
        [
            Problem(
                "goals",
                f"The document holds {count:,} nodes or more; one import takes at most "
                f"{MAX_TREE_NODES:,}. Split the tree, or import it in parts.",
                line,
            )
        ]
    )


def _refuse_too_many_nodes_early(text: str) -> None:
    """Refuse a YAML tree document over the node cap before it is parsed whole.

    Parsing all of a large document costs seconds; a document of 100,000 goals is
    refused here after reading its first MAX_TREE_NODES + 1. Every node has a
    ``title`` key, so a text with no more "title"s than the cap cannot be over it and
    is not scanned at all (a key spelled with escapes is still caught by ``validate``,
    after parsing). Otherwise libyaml's events are read, counting the mappings that
    are items of a ``goals`` or ``children`` list, until the cap or the end; anything
    malformed is left for the loader to report.
    """
    if text.count("title") <= MAX_TREE_NODES:
        return
    parser = documents.yaml_parser(text)
    # One frame per open collection: [is a mapping, expecting a key, last key,
    # is a sequence of nodes].
    stack: list[list[Any]] = []
    count = 0
    try:
        while (event := parser.get_event()) is not None:
            kind = type(event).__name__
            if kind in ("MappingStartEvent", "SequenceStartEvent"):
                parent = stack[-1] if stack else None
                nodes_list = False
                if parent is not None and parent[0]:
                    nodes_list = parent[2] in ("goals", "children")
                    parent[1] = True  # the value is read: a key comes next
                elif parent is not None and parent[3] and kind == "MappingStartEvent":
                    count += 1
                    if count > MAX_TREE_NODES:
                        raise _too_many_nodes(count, event.start_mark.line + 1)
                stack.append([kind == "MappingStartEvent", True, None, nodes_list])
                if len(stack) > documents.MAX_DEPTH:
                    return  # the loader refuses it, with its own message
            elif kind in ("MappingEndEvent", "SequenceEndEvent"):
                stack.pop()
            elif kind in ("ScalarEvent", "AliasEvent"):
                if kind == "AliasEvent":
                    return  # the loader refuses it, with its own message
                parent = stack[-1] if stack else None
                if parent is not None and parent[0]:
                    if parent[1]:
                        parent[2] = event.value
                    parent[1] = not parent[1]
            elif kind == "DocumentEndEvent":
                return
    except yaml.YAMLError:
        return
    finally:
        parser.dispose()


# --- Validation ----------------------------------------------------------------------


class Item(serializers.Field):
    """Any value, passed through: nested items are validated one by one afterwards
    (YAML gives dates as dates, which a JSONField would refuse)."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def item_list() -> serializers.ListField:
    return serializers.ListField(child=Item(), required=False, default=list)


class TreeDocumentSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    slug = serializers.SlugField(max_length=100)
    name = serializers.CharField(max_length=200)
    vision = serializers.CharField()
    description = serializers.CharField(allow_blank=True, required=False, default="")
    goals = item_list()

    def validate_version(self, value: int) -> int:
        if value != DOCUMENT_VERSION:
            raise serializers.ValidationError(f"Only version {DOCUMENT_VERSION} is understood.")
        return value


class NodeDocumentSerializer(serializers.Serializer):
    kind = serializers.CharField(required=False)
    title = serializers.CharField(max_length=300)
    description = serializers.CharField(allow_blank=True, required=False, default="")
    hypothesis = serializers.CharField(allow_blank=True, required=False, default="")
    owner = serializers.CharField(allow_null=True, required=False, default=None)
    accountable = serializers.CharField(allow_null=True, required=False, default=None)
    investment_amount = serializers.DecimalField(
        max_digits=16, decimal_places=2, min_value=0, allow_null=True, required=False, default=None
    )
    investment_unit = serializers.CharField(
        max_length=30, allow_blank=True, required=False, default=""
    )
    expected_value_amount = serializers.DecimalField(
        max_digits=16, decimal_places=2, min_value=0, allow_null=True, required=False, default=None
    )
    expected_value_unit = serializers.CharField(
        max_length=30, allow_blank=True, required=False, default=""
    )
    confidence = serializers.IntegerField(
        min_value=0, max_value=100, allow_null=True, required=False, default=None
    )
    weight = serializers.FloatField(min_value=0, max_value=MAX_WEIGHT, required=False, default=1.0)
    status = serializers.ChoiceField(choices=NodeStatus.choices, required=False, default="proposed")
    data_products = item_list()
    children = item_list()


class DataProductLinkDocumentSerializer(serializers.Serializer):
    data_product = serializers.SlugField()
    role = serializers.ChoiceField(choices=LinkRole.choices)


def flatten_errors(errors: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """DRF's nested error structure as (path, message) pairs: ``goals[0].title``."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            child = path if key in ("non_field_errors", "__all__") else join_path(path, key)
            yield from flatten_errors(value, child)
    elif isinstance(errors, list):
        for index, value in enumerate(errors):
            if isinstance(value, dict | list):
                yield from flatten_errors(value, join_path(path, index))
            else:
                yield path, str(value)
    else:
        yield path, str(errors)


def text_fields_given_numbers(fields: Any, data: dict[str, Any]) -> list[str]:
    """Keys of ``data`` whose field takes text (a CharField, not a choice) but which
    hold a number or true/false: YAML reads ``version: 1.10`` as the number 1.1 and
    ``name: yes`` as true, and turning those back into text would change them."""
    return [
        key
        for key, value in data.items()
        if isinstance(value, bool | int | float | Decimal)
        and isinstance(fields.get(key), serializers.CharField)
    ]


def keep_text_exactly(serializer: serializers.Serializer) -> None:
    """Text in a document is taken as written: DRF trims the spaces around text by
    default, and an export followed by an import must give back every text exactly."""
    for field in serializer.fields.values():
        if isinstance(field, serializers.CharField):
            field.trim_whitespace = False


def count_nodes(data: Any) -> int:
    """How many nodes a tree document holds (goals and all their children),
    counted without recursion before anything is validated."""
    if not isinstance(data, dict) or not isinstance(data.get("goals"), list):
        return 0
    count = 0
    stack = [data["goals"]]
    while stack:
        items = stack.pop()
        count += len(items)
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("children"), list):
                stack.append(item["children"])
    return count


@dataclass
class _PlannedNode:
    path: str
    kind: str
    fields: dict[str, Any]
    sections: dict[str, list[dict[str, Any]]]
    links: list[dict[str, Any]]
    children: list[_PlannedNode]
    # Document parts (decisions, learnings): key -> [(item, its path)].
    parts: dict[str, list[tuple[dict[str, Any], str]]] = dataclasses.field(default_factory=dict)


class DocumentValidator:
    """Walks a decoded document and collects every problem before anything is written."""

    def __init__(self, lines: Mapping[str, int]) -> None:
        self.lines = lines
        self.problems: list[Problem] = []
        self.usernames: dict[str, str] = {}  # username -> path of first use
        self.product_slugs: dict[str, str] = {}
        self.node_paths: set[str] = set()
        self.path_refs: list[tuple[str, str]] = []  # (node path named, where)
        # (username, where) of every part's field saying who did it (a decision's `by`).
        self.authors: list[tuple[str, str]] = []
        self._serializers: dict[type, serializers.Serializer] = {}
        self._node_serializer: NodeDocumentSerializer | None = None

    def part_items(
        self, data: Any, path: str, *, level: str
    ) -> dict[str, list[tuple[dict[str, Any], str]]]:
        """Check the document parts' items found in ``data`` (a node or the document)."""
        found: dict[str, list[tuple[dict[str, Any], str]]] = {}
        for part in sections.parts():
            if level == "tree" and not part.tree_level:
                continue
            raw = data.get(part.key, []) if isinstance(data, dict) else []
            found[part.key] = []
            if not isinstance(raw, list):
                self.add(join_path(path, part.key), "Expected a list.")
                continue
            for index, item in enumerate(raw):
                item_path = join_path(join_path(path, part.key), index)
                checked = self.check(part.item_serializer, item, item_path)
                if checked is None:
                    continue
                for name in part.user_fields:
                    if checked.get(name):
                        self.usernames.setdefault(checked[name], join_path(item_path, name))
                        self.authors.append((checked[name], join_path(item_path, name)))
                for name in part.path_fields:
                    if checked.get(name):
                        self.path_refs.append((checked[name], join_path(item_path, name)))
                found[part.key].append((checked, item_path))
        return found

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, self.line_of(path)))

    def line_of(self, path: str) -> int | None:
        """The line of ``path``, or of the nearest enclosing item that has one
        (a missing field is reported at its mapping)."""
        probe = path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return None

    def serializer(self, cls: type[serializers.Serializer]) -> serializers.Serializer:
        """One instance of ``cls`` for the whole import: building a DRF serializer
        copies all its fields, so a fresh one per item made a 10,000-node import
        spend most of its time constructing serializers (issue 16 §8)."""
        if cls not in self._serializers:
            self._serializers[cls] = cls()
        return self._serializers[cls]

    def check(
        self,
        serializer: serializers.Serializer | type[serializers.Serializer],
        data: Any,
        path: str,
    ) -> dict | None:
        """``data`` validated by ``serializer`` (an instance, or a class to reuse), or
        None with every problem added. A text field given a number or true/false is
        refused ("quote it"): ``version: 1.10`` would silently become ``1.1``."""
        if isinstance(serializer, type):
            serializer = self.serializer(serializer)
        keep_text_exactly(serializer)
        if not isinstance(data, dict):
            self.add(path, "Expected a mapping of fields.")
            return None
        fields = serializer.fields
        unknown = set(data) - set(fields)
        for key in sorted(unknown, key=str):
            self.add(join_path(path, str(key)), "Unknown field.")
        not_text = text_fields_given_numbers(fields, data)
        for key in not_text:
            self.add(join_path(path, key), quote_it(data[key]))
        try:
            validated = serializer.run_validation(data)
        except serializers.ValidationError as error:
            said = {join_path(path, key) for key in not_text}  # "quote it" says it
            for where, message in flatten_errors(error.detail, path):
                if where not in said:
                    self.add(where, message)
            return None
        return dict(validated) if not unknown and not not_text else None

    def node(self, data: Any, path: str, kind: str) -> _PlannedNode | None:
        section_list = sections.registered()
        if self._node_serializer is None:
            self._node_serializer = NodeDocumentSerializer()
            # Section keys are fields too; they are validated item by item below.
            for section in section_list:
                self._node_serializer.fields[section.key] = item_list()
            for part in sections.parts():
                self._node_serializer.fields[part.key] = item_list()
        fields = self.check(self._node_serializer, data, path)
        self.node_paths.add(path)
        children_data = data.get("children", []) if isinstance(data, dict) else []
        if fields is None:
            # Still look inside, so one run reports problems at every depth.
            fields = {}
        declared = fields.pop("kind", None)
        if declared is not None and declared != kind:
            self.add(
                join_path(path, "kind"), f"Expected {kind!r} at this depth, found {declared!r}."
            )
        for field in ("owner", "accountable"):
            if fields.get(field):
                self.usernames.setdefault(fields[field], join_path(path, field))
        if kind == "goal" and fields.get("hypothesis"):
            self.add(
                join_path(path, "hypothesis"), "Goals carry no hypothesis; bets and initiatives do."
            )
        items: dict[str, list[dict[str, Any]]] = {}
        for section in section_list:
            raw_items = fields.pop(section.key, [])
            items[section.key] = []
            for index, item in enumerate(raw_items if isinstance(raw_items, list) else []):
                checked = self.check(
                    section.item_serializer,
                    item,
                    join_path(join_path(path, section.key), index),
                )
                if checked is not None:
                    items[section.key].append(checked)
        links = []
        for index, item in enumerate(fields.pop("data_products", [])):
            item_path = join_path(join_path(path, "data_products"), index)
            checked = self.check(DataProductLinkDocumentSerializer, item, item_path)
            if checked is not None:
                self.product_slugs.setdefault(checked["data_product"], item_path)
                links.append(checked)
        fields.pop("children", None)
        part_items = self.part_items(data, path, level="node")
        for part in sections.parts():
            fields.pop(part.key, None)
        child_kind = CHILD_KIND[kind]
        children: list[_PlannedNode] = []
        if children_data and child_kind is None:
            self.add(
                join_path(path, "children"), "Initiatives are leaves: nothing goes under them."
            )
        elif isinstance(children_data, list):
            for index, child in enumerate(children_data):
                planned = self.node(
                    child, join_path(join_path(path, "children"), index), child_kind
                )
                if planned is not None:
                    children.append(planned)
        return _PlannedNode(path, kind, fields, items, links, children, part_items)


def validate(
    data: Any, lines: dict[str, int], *, author: AbstractBaseUser | None = None
) -> tuple[dict[str, Any], list[_PlannedNode], dict, dict]:
    """Check the whole document; return the tree fields, the planned goals and the
    users and data products it names, or raise ImportFailed with every problem.

    ``author``: the only user the document's decisions and learnings may say made them
    (``by``); None lets them name anyone (the operator, staff)."""
    validator = DocumentValidator(lines)
    count = count_nodes(data)
    if count > MAX_TREE_NODES:
        raise _too_many_nodes(count, lines.get("goals"))
    header_serializer = TreeDocumentSerializer()
    for part in sections.parts():
        if part.tree_level:
            header_serializer.fields[part.key] = item_list()
    header = validator.check(header_serializer, data, "")
    goals: list[_PlannedNode] = []
    if isinstance(data, dict) and isinstance(data.get("goals"), list):
        for index, goal in enumerate(data["goals"]):
            planned = validator.node(goal, join_path("goals", index), "goal")
            if planned is not None:
                goals.append(planned)
    tree_parts = validator.part_items(data, "", level="tree")
    for named, where in validator.path_refs:
        if named not in validator.node_paths:
            validator.add(where, f"No node at {named!r} in this document.")
    if header is not None:
        for part in sections.parts():
            header.pop(part.key, None)
        header["_parts"] = tree_parts
    users = {
        user.get_username(): user
        for user in get_user_model().objects.filter(username__in=list(validator.usernames))
    }
    for username, path in validator.usernames.items():
        if username not in users:
            validator.add(path, f"No user named {username!r}.")
    if author is not None:
        for username, path in validator.authors:
            if username != author.get_username() and username in users:
                # A decision "by" the CEO that the CEO never made: who decided or
                # learned something is the importer, unless staff or the operator
                # restores another installation's history.
                validator.add(
                    path,
                    f"Only staff (or manage.py import_tree) may import what {username!r} "
                    "decided or learned: leave `by` out, or give your own username.",
                )
    products = {
        product.slug: product
        for product in DataProduct.objects.filter(slug__in=list(validator.product_slugs))
    }
    for slug, path in validator.product_slugs.items():
        if slug not in products:
            validator.add(join_path(path, "data_product"), f"No data product with slug {slug!r}.")
    if validator.problems or header is None:
        raise ImportFailed(validator.problems)
    return header, goals, users, products


# --- Import and export ---------------------------------------------------------------


def tree_import(
    data: Any,
    *,
    owner: AbstractBaseUser,
    lines: dict[str, int] | None = None,
    slug: str | None = None,
    operator: bool = False,
) -> ValueTree:
    """Create a tree from a decoded document, all or nothing. Its decisions and
    learnings are by ``owner`` (or nobody) unless ``operator`` (manage.py) or the
    owner is staff: then by whom the document says."""
    if slug:
        data = {**data, "slug": slug} if isinstance(data, dict) else data
    author = None if operator or owner.is_staff else owner
    header, goals, users, products = validate(
        data, lines if lines is not None else {}, author=author
    )
    header.pop("version")
    header.pop("goals")
    tree_parts = header.pop("_parts")
    section_by_key = {section.key: section for section in sections.registered()}
    path = ""
    try:
        with transaction.atomic():
            tree = services.tree_create(owner=owner, **header)
            # Level by level (goals, bets, initiatives): each level in bulk, its
            # parents saved by the level before.
            level: list[tuple[_PlannedNode, Node | None]] = [(goal, None) for goal in goals]
            links = []
            by_path: dict[str, Node] = {}
            part_items: dict[str, list[tuple[Node | None, dict[str, Any], str]]] = {
                key: [(None, item, where) for item, where in items]
                for key, items in tree_parts.items()
            }
            while level:
                batch = []
                for planned, _parent in level:
                    fields = dict(planned.fields)
                    for field in ("owner", "accountable"):
                        fields[field] = users.get(fields[field]) if fields.get(field) else None
                    batch.append(fields)
                try:
                    nodes = services.nodes_create_in_new_tree(
                        tree=tree,
                        parents=[parent for _, parent in level],
                        kinds=[planned.kind for planned, _ in level],
                        fields=batch,
                        by=owner,
                    )
                except services.ItemsInvalid as error:
                    problems = [
                        Problem(where, message)
                        for index, node_error in error.by_index.items()
                        for where, message in flatten_errors(
                            serializers.as_serializer_error(node_error), level[index][0].path
                        )
                    ]
                    raise ImportFailed(problems) from None
                next_level = []
                section_items: dict[str, list[tuple[str, tuple[int, int, dict]]]] = {}
                for (planned, _parent), node in zip(level, nodes, strict=True):
                    by_path[planned.path] = node
                    for key, items in planned.parts.items():
                        part_items.setdefault(key, []).extend(
                            (node, item, where) for item, where in items
                        )
                    for key, items in planned.sections.items():
                        for position, item in enumerate(items):
                            item_path = join_path(join_path(planned.path, key), position)
                            section_items.setdefault(key, []).append(
                                (item_path, (node.pk, position, item))
                            )
                    for link in planned.links:
                        links.append(
                            DataProductLink(
                                node=node,
                                data_product=products[link["data_product"]],
                                role=link["role"],
                            )
                        )
                    next_level.extend((child, node) for child in planned.children)
                for key, entries in section_items.items():
                    _create_section_items(section_by_key[key], entries)
                level = next_level
            path = "data_products"
            for link in links:
                link.full_clean()
                link.save()
            for part in sections.parts():
                path = part.key
                part.create(tree, part_items.get(part.key, []), by_path, users)
    except ValidationError as error:
        problems = [
            Problem(where, message)
            for where, message in flatten_errors(serializers.as_serializer_error(error), path)
        ]
        raise ImportFailed(problems) from None
    return tree


def _create_section_items(
    section: sections.NodeSection, entries: list[tuple[str, tuple[int, int, dict]]]
) -> None:
    """Create one level's items of a section, in bulk when the section can; a
    refusal is an ImportFailed naming each refused item's path."""
    try:
        if section.create_many is not None:
            section.create_many([item for _, item in entries])
            return
        for index, (_, item) in enumerate(entries):
            try:
                section.create(*item)
            except ValidationError as error:
                raise services.ItemsInvalid({index: error}) from None
    except services.ItemsInvalid as error:
        raise ImportFailed(
            [
                Problem(where, message)
                for index, item_error in error.by_index.items()
                for where, message in flatten_errors(
                    serializers.as_serializer_error(item_error), entries[index][0]
                )
            ]
        ) from None


def tree_import_text(
    raw: bytes | str,
    *,
    fmt: str,
    owner: AbstractBaseUser,
    slug: str | None = None,
    operator: bool = False,
) -> ValueTree:
    data, lines = parse(raw, fmt=fmt)
    return tree_import(data, owner=owner, lines=lines, slug=slug, operator=operator)


_NODE_EXPORT_DROP = {"id", "parent_id", "position", "created_at", "updated_at", "children"}


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def tree_export(*, tree: ValueTree) -> dict[str, Any]:
    """The tree as a version-1 document: what ``tree_import`` reads back."""
    document = selectors.tree_get(tree=tree)
    links_by_node: dict[int, list[dict[str, str]]] = {}
    for link in selectors.data_product_links_for_tree(tree_id=tree.pk):
        links_by_node.setdefault(link["node_id"], []).append(
            {"data_product": link["data_product__slug"], "role": link["role"]}
        )
    excluded = {section.key: section.export_exclude for section in sections.registered()}
    paths: dict[int, str] = {}

    def walk(nodes: list[dict[str, Any]], prefix: str) -> None:
        for index, node in enumerate(nodes):
            paths[node["id"]] = join_path(prefix, index)
            walk(node["children"], join_path(paths[node["id"]], "children"))

    walk(document["goals"], "goals")
    exported_parts = {part.key: part.export(tree.pk, paths) for part in sections.parts()}

    def export_node(node: dict[str, Any]) -> dict[str, Any]:
        out = {key: _plain(value) for key, value in node.items() if key not in _NODE_EXPORT_DROP}
        for key, drop in excluded.items():
            out[key] = [
                {k: _plain(v) for k, v in item.items() if k not in drop} for item in node[key]
            ]
        out["data_products"] = links_by_node.get(node["id"], [])
        for key, (by_node, _) in exported_parts.items():
            out[key] = by_node.get(node["id"], [])
        out["children"] = [export_node(child) for child in node["children"]]
        return out

    exported = {
        "version": DOCUMENT_VERSION,
        "slug": tree.slug,
        "name": tree.name,
        "vision": tree.vision,
        "description": tree.description,
        "goals": [export_node(goal) for goal in document["goals"]],
    }
    for part in sections.parts():
        if part.tree_level:
            exported[part.key] = exported_parts[part.key][1]
    return exported


def tree_export_text(*, tree: ValueTree, fmt: str) -> tuple[bytes, str]:
    document = tree_export(tree=tree)
    if fmt == "yaml":
        text = documents.dump_yaml([document])
        return text.encode("utf-8"), "application/yaml; charset=utf-8"
    return orjson.dumps(document, option=orjson.OPT_INDENT_2), "application/json"
