"""The one safe way to read a YAML or JSON document from outside.

Every entry point that reads a document someone sent — tree documents, Bitol ODPS and
ODCS, the API's JSON bodies, the browser's import page, the management commands —
goes through this module, so every one of them gets the same limits:

- at most ``MAX_DOCUMENT_BYTES`` bytes, UTF-8;
- YAML is parsed once, by libyaml (``yaml.CSafeLoader``'s C parser) where it is
  installed, and composed here node by node, so the checks below run *while* it is
  read, before any value is built or walked:
- no aliases (``*name``): an alias is how a few hundred bytes expand to billions of
  values ("billion laughs"), and how a document refers to itself;
- at most ``MAX_DEPTH`` levels of nesting and ``MAX_VALUES`` values (every mapping,
  list and scalar counts one) per document;
- no NUL character (``\\u0000``) in any text or key: PostgreSQL cannot store it;
- no key twice in one mapping (YAML forbids it; PyYAML would keep the last silently);
- no tag beyond what JSON holds (text, numbers, true/false, null, mappings, lists)
  and dates: ``!!binary``, ``!!set``, ``!!omap``, ``!!pairs``, ``!!python/…`` and
  custom tags build values no field of ours takes (bytes, sets) or none at all;
- a scalar its tag cannot read (``2026-02-30``, ``!!int abc``, an integer of more
  than 4,300 digits) is a refusal at its line, never an error of the server;
- an empty document (nothing but whitespace or comments) is refused as such.

A refusal is a :class:`DocumentRefused` (an :class:`ImportFailed`) naming the path and,
for YAML, the line; callers turn it into a 400, a form error or a command error.
JSON is decoded by orjson (which refuses NaN/Infinity and nesting past 1024 levels
without recursing in Python) and then held to the same limits.

The line map (``{"goals[0].title": 3}``) is built from the composed nodes, which hold
no alias, so it is linear in the document's size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
import yaml
from yaml.events import DocumentStartEvent, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 100
MAX_VALUES = 1_000_000
NUL_MESSAGE = "Text may not contain the NUL character (\\u0000)."
EMPTY_MESSAGE = "The document is empty."
NULL_TAG = "tag:yaml.org,2002:null"
# The tags a document may hold, said or resolved: JSON's values and dates (YAML reads
# ``2026-01-01`` as a date). ``<<`` (merge) is a key's tag only.
YAML_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("null", "bool", "int", "float", "str", "timestamp", "map", "seq")
)
MERGE_TAG = "tag:yaml.org,2002:merge"
_TAG_WORDS = {
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:bool": "true or false",
    "tag:yaml.org,2002:int": "a whole number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:timestamp": "a date",
}


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.path or "document"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


class ImportFailed(Exception):
    """The document was refused; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))

    def as_dict(self) -> dict[str, Any]:
        return {
            "detail": "The tree document is invalid; nothing was imported.",
            "errors": [
                {"path": p.path, "line": p.line, "message": p.message} for p in self.problems
            ],
        }


class DocumentRefused(ImportFailed):
    """The document breaks a limit of this module (size, depth, aliases, NUL, empty)."""


def join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def quote_it(value: Any) -> str:
    """The refusal of a number, true/false or date where a document wants text: YAML
    reads ``version: 1.10`` as 1.1 and ``name: yes`` as true, and turning them back
    into text would change them."""
    if isinstance(value, bool):
        shown: Any = "true" if value else "false"
    elif isinstance(value, date):  # a datetime too
        shown = value.isoformat()
    else:
        shown = value
    return f'Expected text, got {shown!r}: quote it ("{shown}") so it is read exactly as written.'


def _refuse(message: str, path: str = "", line: int | None = None) -> DocumentRefused:
    return DocumentRefused([Problem(path, message, line)])


# --- Text ----------------------------------------------------------------------------


def document_text(raw: bytes | str) -> str:
    """A document's text: at most MAX_DOCUMENT_BYTES, UTF-8, not blank, without the
    byte order mark some editors write first (YAML skips it; JSON and CSV do not)."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _refuse(
            f"The document is larger than {MAX_DOCUMENT_BYTES} bytes "
            f"({MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB), the most one import takes."
        )
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _refuse("The document is not UTF-8 text.") from None
    raw = raw.removeprefix("\ufeff")
    if not raw or raw.isspace():  # no copy of the text, as strip() would make
        raise _refuse(EMPTY_MESSAGE)
    return raw


# --- YAML ----------------------------------------------------------------------------


# libyaml (C) where installed: ~10x faster than the pure-Python parser, and it refuses
# nesting past 1000 levels itself, so composing can never recurse without bound.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LIBYAML = _BaseLoader is not yaml.SafeLoader


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """The safe loader, whose scalar constructors' own errors (``2026-02-30`` read as a
    date: ValueError; ``!!int abc``; an integer past Python's 4,300 digits) become a
    YAML error at the scalar's line instead of escaping as an error of the server."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
            if not isinstance(node, ScalarNode):
                raise
            value = node.value if len(node.value) <= 40 else node.value[:40] + "…"
            what = _TAG_WORDS.get(node.tag, node.tag)
            detail = f" ({error})" if isinstance(error, ValueError) and str(error) else ""
            if "digits" in detail:  # Python's limit on reading integers from text
                detail = " (more than 4,300 digits)"
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{value!r} cannot be read as {what}{detail}; quote it if it is text",
                node.start_mark,
            ) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A mapping whose keys are unique as values, not only as text: ``1`` and ``01``,
        ``null`` and ``~``, ``true`` and ``yes``, or a key and the same key merged in
        with ``<<``, were one key and the last (or the unmerged) value was kept without
        a word. The text check in ``_check_nodes`` names the path of a plain repeat."""
        if isinstance(node, MappingNode):
            self.flatten_mapping(node)  # merged keys first, then the mapping's own
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in mapping
            except TypeError:  # a list or mapping as a key
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key_node.start_mark,
                ) from None
            if repeated:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key {key_node.value!r} is given twice in the same mapping (as the "
                    "same value, or merged in with <<): keep one",
                    key_node.start_mark,
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


# A place in the walk: (node, depth, parent place, key or index, line of the key).
_Place = tuple[Node, int, Any, Any, int | None]


def _path_of(place: tuple[Any, ...] | None) -> str:
    """The path of a place in a YAML (_Place) or JSON walk: each place holds its parent
    at index 2 and its key or index at 3."""
    keys = []
    while place is not None and place[2] is not None:
        keys.append(place[3])
        place = place[2]
    path = ""
    for key in reversed(keys):
        path = join_path(path, key)
    return path


def _tag_message(tag: str) -> str:
    shown = (
        "!!" + tag.removeprefix("tag:yaml.org,2002:")
        if tag.startswith("tag:yaml.org,2002:")
        else tag
    )
    return (
        f"The YAML tag {shown} is not allowed: a document holds text, numbers, true/false, "
        "dates, null, mappings and lists."
    )


def _check_nodes(root: Node) -> None:
    """Hold a composed document to the limits, before anything is built from it.

    Composing does not expand aliases (an alias is the same node object again), so
    this walk sees each node once and stops at the first node it meets twice: an
    alias, however many values it would expand to. Iterative, scalars checked where
    they are met, and paths spelled out only for a refusal: the walk costs little
    next to parsing.
    """
    seen: set[int] = {id(root)}
    values = 1
    stack: list[_Place] = [(root, 0, None, None, None)]
    alias = "Aliases (*name) are not allowed: write the value out in full."
    while stack:
        place = stack.pop()
        node, depth = place[0], place[1]
        if node.tag not in YAML_TAGS:
            raise _refuse(_tag_message(node.tag), _path_of(place), node.start_mark.line + 1)
        if isinstance(node, ScalarNode):  # only the root or a key that is not text
            if "\x00" in node.value:
                raise _refuse(NUL_MESSAGE, _path_of(place), node.start_mark.line + 1)
            continue
        if depth >= MAX_DEPTH:
            raise _refuse(
                f"The document is nested more than {MAX_DEPTH} levels deep.",
                _path_of(place),
                node.start_mark.line + 1,
            )
        if isinstance(node, MappingNode):
            pairs = node.value
            values += 2 * len(pairs)
            children = []
            keys: set[tuple[str, str]] = set()
            for key_node, value_node in pairs:
                if type(key_node) is ScalarNode:
                    # YAML wants keys unique; PyYAML keeps the last silently, so
                    # `title: A` then `title: B` would import B without a word.
                    key = (key_node.tag, key_node.value)
                    if key in keys:
                        where = (key_node, depth + 1, place, str(key_node.value), None)
                        raise _refuse(
                            "This key is given twice in the same mapping: keep one.",
                            _path_of(where),
                            key_node.start_mark.line + 1,
                        )
                    keys.add(key)
                if id(key_node) in seen or id(value_node) in seen:
                    # The anchor's node: its mark is the anchor's line, not the alias's.
                    key_line = key_node.start_mark.line + 1
                    key = "?" if id(key_node) in seen else str(key_node.value)
                    where = (value_node, depth + 1, place, key, key_line)
                    raise _refuse(alias, _path_of(where), key_line)
                seen.add(id(key_node))
                seen.add(id(value_node))
                if key_node.tag not in YAML_TAGS and key_node.tag != MERGE_TAG:
                    where = (key_node, depth + 1, place, "?", None)
                    raise _refuse(
                        _tag_message(key_node.tag), _path_of(where), key_node.start_mark.line + 1
                    )
                if type(key_node) is not ScalarNode:
                    children.append((key_node, depth + 1, place, "?", None))
                elif "\x00" in key_node.value:
                    raise _refuse(NUL_MESSAGE, _path_of(place), key_node.start_mark.line + 1)
                if type(value_node) is ScalarNode:
                    if value_node.tag not in YAML_TAGS:
                        key_line = key_node.start_mark.line + 1
                        where = (value_node, depth + 1, place, str(key_node.value), key_line)
                        raise _refuse(_tag_message(value_node.tag), _path_of(where), key_line)
                    if "\x00" in value_node.value:
                        key_line = key_node.start_mark.line + 1
                        where = (value_node, depth + 1, place, str(key_node.value), key_line)
                        raise _refuse(NUL_MESSAGE, _path_of(where), key_line)
                else:
                    children.append((value_node, depth + 1, place, key_node.value, None))
        else:  # SequenceNode
            items = node.value
            values += len(items)
            children = []
            for index, item in enumerate(items):
                if id(item) in seen:
                    raise _refuse(alias, _path_of((item, 0, place, index, None)), None)
                seen.add(id(item))
                if isinstance(item, ScalarNode):
                    if item.tag not in YAML_TAGS:
                        where = (item, depth + 1, place, index, None)
                        raise _refuse(
                            _tag_message(item.tag), _path_of(where), item.start_mark.line + 1
                        )
                    if "\x00" in item.value:
                        where = (item, depth + 1, place, index, None)
                        raise _refuse(NUL_MESSAGE, _path_of(where), item.start_mark.line + 1)
                else:
                    children.append((item, depth + 1, place, index, None))
        if values > MAX_VALUES:
            raise _too_many_values(node.start_mark.line + 1, _path_of(place))
        # Reversed onto the stack, so the walk goes in document order and an alias is
        # reported where it is used, not where its anchor is.
        stack.extend(reversed(children))


class _Lines(Mapping[str, int]):
    """The 1-based line of every path in a checked document, worked out on first use:
    only a refused document needs it, so a valid import never pays for it."""

    def __init__(self, root: Node) -> None:
        self._root: Node | None = root
        self._lines: dict[str, int] = {}

    def _built(self) -> dict[str, int]:
        if self._root is not None:
            stack: list[tuple[Node, str]] = [(self._root, "")]
            self._root = None
            while stack:
                node, path = stack.pop()
                if path:
                    self._lines.setdefault(path, node.start_mark.line + 1)
                if isinstance(node, MappingNode):
                    for key_node, value_node in node.value:
                        child = join_path(path, str(key_node.value))
                        self._lines[child] = key_node.start_mark.line + 1
                        stack.append((value_node, child))
                elif isinstance(node, SequenceNode):
                    stack.extend(
                        (item, join_path(path, index)) for index, item in enumerate(node.value)
                    )
        return self._lines

    def __getitem__(self, path: str) -> int:
        return self._built()[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())


def yaml_parser(text: str) -> Any:
    """libyaml's event parser over ``text`` (``get_event()``; ``dispose()`` after),
    for a caller that wants to stop reading early."""
    return _Loader(text)


def yaml_failure(error: yaml.YAMLError) -> ImportFailed:
    """A YAML syntax error as an ImportFailed naming its line."""
    mark = getattr(error, "problem_mark", None)
    message = getattr(error, "problem", None) or str(error)
    return ImportFailed(
        [Problem("", f"Not valid YAML: {message}.", mark.line + 1 if mark else None)]
    )


def _too_many_values(line: int | None = None, path: str = "") -> DocumentRefused:
    return _refuse(
        f"The document holds more than {MAX_VALUES:,} values, the most one import takes.",
        path,
        line,
    )


def _refuse_too_many_values_early(text: str) -> None:
    """Refuse a YAML text with a document of more than MAX_VALUES values by counting
    libyaml's events, before any node is composed.

    Composing holds every node at once: a flat list filling the 10 MiB a document may
    have (five million values) took ~2 GB and most of a minute to compose before the
    walk refused it. Events are read one at a time and dropped, so this costs constant
    memory and stops at the first value past the cap. Anything malformed is left for
    the loader to report.
    """
    parser = _BaseLoader(text)
    values = 0
    try:
        while (event := parser.get_event()) is not None:
            if isinstance(event, NodeEvent):  # a scalar, an alias, a mapping or a list
                values += 1
                if values > MAX_VALUES:
                    raise _too_many_values(event.start_mark.line + 1)
            elif isinstance(event, DocumentStartEvent):
                values = 0  # the cap is per document of a stream
    except yaml.YAMLError:
        return
    finally:
        parser.dispose()


def _yaml_documents(text: str) -> Iterator[tuple[Any, Mapping[str, int]]]:
    if len(text) > MAX_VALUES // 2:
        # A value takes at least one character and a separator ("a," in a flow
        # mapping is a key and its null): a shorter text cannot break the cap.
        _refuse_too_many_values_early(text)
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or (isinstance(node, ScalarNode) and node.tag == NULL_TAG):
                continue  # an empty document in a stream (a trailing ``---``)
            _check_nodes(node)
            yield loader.construct_document(node), _Lines(node)
    finally:
        loader.dispose()


def load_yaml(raw: bytes | str, *, stream: bool = False) -> list[tuple[Any, Mapping[str, int]]]:
    """The non-empty documents of a YAML text (one unless ``stream``), each with its
    line map; raises ImportFailed (a syntax error, a limit, an empty document)."""
    text = document_text(raw)
    try:
        documents = list(_yaml_documents(text))
    except yaml.YAMLError as error:
        if "maximum nesting depth" in str(error):
            raise _refuse(f"The document is nested more than {MAX_DEPTH} levels deep.") from None
        raise yaml_failure(error) from None
    if not documents:
        raise _refuse(EMPTY_MESSAGE)
    if not stream and len(documents) > 1:
        raise _refuse("Give one document, not a stream of several.")
    return documents


# --- JSON ----------------------------------------------------------------------------


def check_limits(data: Any) -> None:
    """Hold decoded JSON to the YAML limits: depth, number of values, NUL in any text
    or key (reported at its path). Iterative, so any depth is safe to check; a
    container's values are counted before they are walked, and paths are spelled out
    only for a refusal."""
    values = 1
    # A place in the walk: (value, depth, parent place, key or index).
    stack: list[tuple[Any, int, Any, Any]] = [(data, 0, None, None)]
    while stack:
        place = stack.pop()
        value, depth = place[0], place[1]
        if isinstance(value, str):
            if "\x00" in value:
                raise _refuse(NUL_MESSAGE, _path_of(place))
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise _refuse(
                    f"The document is nested more than {MAX_DEPTH} levels deep.", _path_of(place)
                )
            values += len(value)
            if values > MAX_VALUES:
                raise _too_many_values(path=_path_of(place))
            if isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(key, str) and "\x00" in key:
                        raise _refuse(NUL_MESSAGE, _path_of(place))
                    stack.append((item, depth + 1, place, str(key)))
            else:
                stack.extend((item, depth + 1, place, index) for index, item in enumerate(value))


def load_json(raw: bytes | str) -> Any:
    """One JSON document, decoded by orjson and held to this module's limits."""
    text = document_text(raw)
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        # orjson's error is a json.JSONDecodeError, which knows the line.
        assert isinstance(error, json.JSONDecodeError)
        message = error.msg
        if "recursion" in message.lower() or "depth limit" in message.lower():
            message = f"nested more than {MAX_DEPTH} levels deep"
        raise DocumentRefused([Problem("", f"Not valid JSON: {message}.", error.lineno)]) from None
    check_limits(data)
    _refuse_repeated_json_keys(text, data)
    return data


class _RepeatedKey(Exception):
    pass


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> None:
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen.add(key)


def _refuse_repeated_json_keys(text: str, data: Any) -> None:
    """Refuse an object that gives a key twice, as YAML's are: orjson keeps the last
    value without a word (``{"title": "A", "title": "B"}`` is B). A second read by the
    standard library, which shows each object's pairs and builds nothing; safe as the
    limits above already hold (at most MAX_DEPTH levels, so no deep recursion)."""
    if not isinstance(data, dict | list):
        return
    try:
        json.loads(text, object_pairs_hook=_no_repeated_keys)
    except _RepeatedKey as repeated:
        key = str(repeated.args[0])
        shown = key if len(key) <= 40 else key[:40] + "…"
        raise _refuse(
            f"Not valid JSON: the key {shown!r} is given twice in one object: keep one."
        ) from None
    except (ValueError, RecursionError):  # orjson read it: nothing more to say
        return


def load(
    raw: bytes | str, *, fmt: str, stream: bool = False
) -> list[tuple[Any, Mapping[str, int]]]:
    """Every document in ``raw`` (``fmt`` "yaml" or "json") with its line map."""
    if fmt == "yaml":
        return load_yaml(raw, stream=stream)
    return [(load_json(raw), {})]


# --- Writing YAML ------------------------------------------------------------------------


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Never writes an anchor or alias (this module refuses them on the way in), even
    when the same object appears twice in what is dumped."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(items: list[Any]) -> str:
    """One YAML document per item (a ``---`` stream when several), as this module
    reads them back: UTF-8 text kept as written, keys in the order given."""
    return yaml.dump_all(items, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
