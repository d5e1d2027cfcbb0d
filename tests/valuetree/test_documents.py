"""Untrusted documents: every entry point that reads YAML or JSON refuses what could
exhaust the server (aliases, deep nesting, too many values or bytes), empty documents
and NUL characters, with a 400 (or a form/command error) and nothing written."""

from __future__ import annotations

import datetime as dt
import json
import tracemalloc
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from valuetree import documents, interchange, services, standards
from valuetree.models import DataContract, DataProduct, GlossaryTerm, ValueTree

CASES = Path(__file__).parent / "fixtures" / "cases"
STANDARDS = Path(__file__).parent / "fixtures" / "standards"
YAML = "application/yaml"

BOMB = (CASES / "yaml-alias-bomb-tree.yaml").read_text()
# Two more lines: 9**9 (387 million) values if expanded.
BIGGER_BOMB = (
    BOMB
    + "xh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\nxi: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
)
SELF_ALIAS = "version: 1\nslug: s\nname: n\nvision: v\ngoals: &g [*g]\n"
DEEP_FLOW = "version: 1\nslug: s\nname: n\nvision: v\ngoals: " + "[" * 5000 + "]" * 5000 + "\n"
DEEP_BLOCK = "version: 1\nslug: s\nname: n\nvision: v\ngoals:\n" + "".join(
    " " * (2 * i) + "- \n" for i in range(1, 150)
)
NUL_YAML = 'version: 1\nslug: s\nname: n\nvision: "v\\0"\n'
HEAD = "version: 1\nslug: s\nname: n\nvision: v\n"

# (document, the message a refusal must carry)
HOSTILE_YAML = {
    "alias-bomb": (BOMB, "Aliases"),
    "bigger-alias-bomb": (BIGGER_BOMB, "Aliases"),
    "self-alias": (SELF_ALIAS, "Aliases"),
    "deep-flow": (DEEP_FLOW, "nested more than 100 levels"),
    "deep-block": (DEEP_BLOCK, "nested more than 100 levels"),
    "empty": ("", "The document is empty."),
    "blank": ("  \n\n", "The document is empty."),
    "only-comments": ("# nothing here\n---\n", "The document is empty."),
    "null": ("~\n", "The document is empty."),
    "nul": (NUL_YAML, "NUL"),
    # Scalars their (implicit or said) tag cannot read: each was a 500 (ValueError).
    "impossible-date": (HEAD + "goals:\n  - title: 2026-02-30\n", "cannot be read as a date"),
    "bad-int-tag": (HEAD + "goals:\n  - title: !!int abc\n", "cannot be read as a whole"),
    "bad-float-tag": (HEAD + "goals:\n  - weight: !!float abc\n", "cannot be read as a number"),
    "bad-bool-tag": (HEAD + "goals:\n  - title: !!bool abc\n", "cannot be read as true"),
    "bad-timestamp-tag": (HEAD + "description: !!timestamp abc\n", "cannot be read as a date"),
    "huge-int": (HEAD + "goals:\n  - confidence: " + "9" * 5000 + "\n", "4,300 digits"),
    # Tags that build values no field takes (bytes, sets, pairs) or none at all.
    "binary-tag": (HEAD + "goals:\n  - title: !!binary aGk=\n", "tag !!binary is not allowed"),
    "set-tag": (HEAD + "goals: !!set {a}\n", "tag !!set is not allowed"),
    "omap-tag": (HEAD + "goals: [!!omap [title: g]]\n", "tag !!omap is not allowed"),
    "python-tag": (HEAD + "goals: !!python/object:os.system [ls]\n", "is not allowed"),
    "custom-tag": (HEAD + "description: !secret x\n", "tag !secret is not allowed"),
    "binary-key": (HEAD + "? !!binary aGk=\n: x\n", "tag !!binary is not allowed"),
    # PyYAML kept the last of two equal keys without a word.
    "duplicate-key": (HEAD + "goals:\n  - title: A\n    title: B\n", "given twice"),
    # The same key as a value, not as text, or merged in: one value was dropped silently.
    "merged-duplicate-key": (HEAD + "goals:\n  - title: A\n    <<: {title: B}\n", "given twice"),
    "same-value-keys": (
        HEAD + "goals:\n  - title: A\n    ? 1\n    : x\n    ? 01\n    : y\n",
        "given twice",
    ),
    "null-keys": (HEAD + "null: a\n~: b\n", "given twice"),
}
HOSTILE_JSON = {
    "deep": ("[" * 100_000 + "]" * 100_000, "nested more than 100 levels"),
    "deep-under-orjson-limit": ('{"a":' * 500 + "1" + "}" * 500, "nested more than 100 levels"),
    "empty": ("", "The document is empty."),
    "nul": ('{"version": 1, "name": "a\\u0000b"}', "NUL"),
    "nul-key": ('{"a\\u0000": 1}', "NUL"),
    # orjson kept the last of two equal keys without a word, as PyYAML did.
    "duplicate-key": ('{"version": 1, "slug": "s", "name": "A", "name": "B"}', "given twice"),
    "nested-duplicate-key": ('{"goals": [{"title": "A", "title": "B"}]}', "given twice"),
}


def refusal(raw: str, fmt: str, *, stream: bool = False) -> str:
    with pytest.raises(documents.ImportFailed) as failed:
        documents.load(raw, fmt=fmt, stream=stream)
    return str(failed.value)


# --- The loader ----------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_YAML)
def test_hostile_yaml_is_refused_by_the_loader(name):
    raw, message = HOSTILE_YAML[name]
    assert message in refusal(raw, "yaml")
    assert message in refusal(raw, "yaml", stream=True)


@pytest.mark.parametrize("name", HOSTILE_JSON)
def test_hostile_json_is_refused_by_the_loader(name):
    raw, message = HOSTILE_JSON[name]
    assert message in refusal(raw, "json")


def test_an_alias_is_refused_where_it_is_used():
    with pytest.raises(documents.ImportFailed) as failed:
        documents.load("a: &x [1]\nb:\n  c: *x\n", fmt="yaml")
    [problem] = failed.value.problems
    assert (problem.path, problem.line) == ("b.c", 3)


def test_nul_is_refused_at_its_path_and_line():
    with pytest.raises(documents.ImportFailed) as failed:
        documents.load('a:\n  - ok\n  - "b\\0"\n', fmt="yaml")
    [problem] = failed.value.problems
    assert (problem.path, problem.line, problem.message) == ("a[1]", 3, documents.NUL_MESSAGE)


def test_an_anchor_that_is_never_aliased_is_harmless():
    [(data, lines)] = documents.load("a: &x [1, 2]\nb: 3\n", fmt="yaml")
    assert data == {"a": [1, 2], "b": 3}
    assert lines == {"a": 1, "a[0]": 1, "a[1]": 1, "b": 2}


def test_nesting_up_to_the_limit_is_read():
    depth = documents.MAX_DEPTH
    [(data, _)] = documents.load("[" * depth + "]" * depth, fmt="yaml")
    [(same, _)] = documents.load("[" * depth + "]" * depth, fmt="json")
    assert data == same
    assert "nested" in refusal("[" * (depth + 1) + "]" * (depth + 1), "yaml")
    assert "nested" in refusal("[" * (depth + 1) + "]" * (depth + 1), "json")


def test_the_value_and_byte_caps_are_stated(monkeypatch):
    monkeypatch.setattr(documents, "MAX_VALUES", 10)
    assert "more than 10 values" in refusal("[" + ", ".join(["1"] * 10) + "]", "yaml")
    assert "more than 10 values" in refusal("[" + ", ".join(["1"] * 10) + "]", "json")
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", 100)
    assert "larger than 100 bytes" in refusal("a: " + "x" * 100, "yaml")


def test_a_stream_skips_empty_documents_and_a_single_document_refuses_a_stream():
    loaded = documents.load("---\na: 1\n---\n---\nb: 2\n", fmt="yaml", stream=True)
    assert [data for data, _ in loaded] == [{"a": 1}, {"b": 2}]
    assert "one document" in refusal("a: 1\n---\nb: 2\n", "yaml")


def test_a_tag_is_refused_at_its_path_and_line():
    with pytest.raises(documents.ImportFailed) as failed:
        documents.load("a:\n  b: [1, !!set {x}]\n", fmt="yaml")
    [problem] = failed.value.problems
    assert (problem.path, problem.line) == ("a.b[1]", 2)


def test_a_duplicate_key_is_refused_at_its_second_use():
    with pytest.raises(documents.ImportFailed) as failed:
        documents.load("a:\n  b: 1\n  c: 2\n  b: 3\n", fmt="yaml")
    [problem] = failed.value.problems
    assert (problem.path, problem.line) == ("a.b", 4)
    # The same text in another mapping, or as text and as a number, is no duplicate.
    [(data, _)] = documents.load("a: {b: 1}\nc: {b: 2}\nd: {1: x, '1': y}\n", fmt="yaml")
    assert data == {"a": {"b": 1}, "c": {"b": 2}, "d": {1: "x", "1": "y"}}


def test_an_unreadable_scalar_is_refused_at_its_line():
    with pytest.raises(documents.ImportFailed) as failed:
        documents.load("a: 1\nb:\n  - 2026-13-01\n", fmt="yaml")
    [problem] = failed.value.problems
    assert problem.line == 3
    assert "'2026-13-01' cannot be read as a date" in problem.message


def test_json_values_dates_merge_keys_and_said_text_are_read():
    [(data, _)] = documents.load(
        "a: !!str 1.10\nb: 2026-01-01\nc: {<<: {d: 1}, e: 2}\nf: [~, true, 1.5, !!int '7']\n",
        fmt="yaml",
    )
    assert data == {
        "a": "1.10",
        "b": dt.date(2026, 1, 1),
        "c": {"d": 1, "e": 2},
        "f": [None, True, 1.5, 7],
    }


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_byte_order_mark_is_skipped_in_both_formats(fmt):
    raw = "\ufeff" + json.dumps({"a": "ü"})
    [(data, _)] = documents.load(raw.encode(), fmt=fmt)
    assert data == {"a": "ü"}


def peak_memory_of_refusing(raw: str, fmt: str) -> int:
    tracemalloc.start()
    try:
        with pytest.raises(documents.ImportFailed):
            documents.load(raw, fmt=fmt)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("raw", [BIGGER_BOMB, SELF_ALIAS, DEEP_FLOW, DEEP_BLOCK])
def test_refusing_hostile_yaml_costs_next_to_no_memory(raw):
    """BIGGER_BOMB is 387 million values if expanded (the case grew a process by
    ~0.5 GB); refusing it must allocate next to nothing. A bound on memory, not on
    wall time."""
    assert peak_memory_of_refusing(raw, "yaml") < 256 * 1024


@pytest.mark.parametrize(
    "raw",
    ["a: [" + "1," * 100_000 + "1]\n", "a:\n" + "- 1\n" * 100_000, "{" + "k, " * 100_000 + "}"],
    ids=["flow-list", "block-list", "flow-mapping"],
)
def test_a_document_over_the_value_cap_is_refused_before_it_is_composed(raw, monkeypatch):
    """Composing holds every node at once: a flat list filling the 10 MiB a document
    may have took ~2 GB and most of a minute before the walk counted its values. The
    cap is now held while libyaml's events are read: memory stays near the text's
    size, however far past the cap the document goes."""
    monkeypatch.setattr(documents, "MAX_VALUES", 10_000)
    assert "more than 10,000 values" in refusal(raw, "yaml")
    assert peak_memory_of_refusing(raw, "yaml") < 2 * len(raw)


def test_refusing_deep_json_costs_memory_in_proportion_to_its_size():
    raw = HOSTILE_JSON["deep"][0]  # 200 kB
    assert peak_memory_of_refusing(raw, "json") < 20 * len(raw)


# --- Every entry point ------------------------------------------------------------------


@pytest.fixture
def domain(db):
    return services.domain_create(name="Sales", slug="sales")


@pytest.fixture
def orders(users, domain):
    [product] = standards.odps_import_text(
        (STANDARDS / "orders.odps.yaml").read_text(), user=users["owner"]
    )
    return product


ENTRY_CASES = [
    "alias-bomb",
    "self-alias",
    "deep-flow",
    "empty",
    "nul",
    "impossible-date",
    "huge-int",
    "binary-tag",
    "set-tag",
    "duplicate-key",
    "merged-duplicate-key",
    "same-value-keys",
]


@pytest.mark.parametrize("name", ENTRY_CASES)
def test_tree_import_api_refuses(name, users, client_for):
    raw, message = HOSTILE_YAML[name]
    response = client_for(users["owner"]).post(
        "/api/trees/import/", raw.encode(), content_type=YAML
    )
    assert response.status_code == 400
    assert message in str(response.json()["errors"])
    assert not ValueTree.objects.filter(slug__in=["alias-bomb", "s"]).exists()


def test_tree_import_api_with_no_body_at_all_is_empty(users, client_for):
    client = client_for(users["owner"])
    for content_type in (YAML, "application/json"):
        response = client.generic("POST", "/api/trees/import/", b"", content_type=content_type)
        assert response.status_code == 400
        assert response.json()["errors"][0]["message"] == "The document is empty."


@pytest.mark.parametrize("name", ["deep", "empty", "nul", "duplicate-key"])
def test_tree_import_api_refuses_json(name, users, client_for):
    raw, message = HOSTILE_JSON[name]
    response = client_for(users["owner"]).post(
        "/api/trees/import/", raw.encode(), content_type="application/json"
    )
    assert response.status_code == 400
    assert message in str(response.json()["errors"])


@pytest.mark.parametrize("name", ENTRY_CASES)
def test_odps_import_api_refuses(name, domain, users, client_for):
    raw, message = HOSTILE_YAML[name]
    response = client_for(users["owner"]).post(
        "/api/data-products/import/", raw.encode(), content_type=YAML
    )
    assert response.status_code == 400
    assert message in str(response.json())
    assert not DataProduct.objects.exists()


@pytest.mark.parametrize("name", ENTRY_CASES)
def test_odcs_contract_api_refuses(name, orders, users, client_for):
    raw, message = HOSTILE_YAML[name]
    before = list(DataContract.objects.values())
    response = client_for(users["owner"]).put(
        "/api/data-products/orders/ports/orders-table/contract/", raw.encode(), content_type=YAML
    )
    assert response.status_code == 400
    assert message in str(response.json())
    assert list(DataContract.objects.values()) == before


@pytest.mark.parametrize("standard", ["odps", "odcs"])
@pytest.mark.parametrize("name", ["alias-bomb", "self-alias", "deep-flow", "nul"])
def test_import_page_refuses(name, standard, orders, users, client):
    raw, message = HOSTILE_YAML[name]
    client.force_login(users["owner"])
    before = (DataProduct.objects.count(), list(DataContract.objects.values()))
    response = client.post("/data-products/import/", {"standard": standard, "text": raw})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert (DataProduct.objects.count(), list(DataContract.objects.values())) == before


@pytest.mark.parametrize("name", ENTRY_CASES)
def test_import_commands_refuse(name, orders, users, tmp_path):
    raw, message = HOSTILE_YAML[name]
    path = tmp_path / "document.yaml"
    path.write_text(raw)
    for command, options in (
        ("import_tree", {"owner": "owner"}),
        ("import_data_products", {}),
        ("import_contract", {"product": "orders", "port": "orders-table"}),
    ):
        with pytest.raises(CommandError, match=message):
            call_command(command, str(path), **options)
    assert not ValueTree.objects.filter(slug__in=["alias-bomb", "s"]).exists()


@pytest.mark.parametrize("name", ENTRY_CASES)
def test_glossary_import_refuses(name, users, client_for, tmp_path):
    raw, message = HOSTILE_YAML[name]
    users["owner"].is_staff = True
    users["owner"].save()
    response = client_for(users["owner"]).post(
        "/api/glossary/import/", raw.encode(), content_type=YAML
    )
    assert response.status_code == 400
    assert message in str(response.json())
    path = tmp_path / "glossary.yaml"
    path.write_text(raw)
    with pytest.raises(CommandError, match=message):
        call_command("import_glossary", str(path))
    assert not GlossaryTerm.objects.exists()


def test_interchange_parse_is_the_loader():
    with pytest.raises(interchange.ImportFailed, match="Aliases"):
        interchange.parse(BOMB, fmt="yaml")


# --- Every JSON API body (DRF parser) ---------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["/api/trees/", "/api/notifications/read/", "/api/data-products/", "/api/metric-sources/"],
)
def test_deep_json_bodies_are_a_400_on_every_endpoint(url, users, client_for):
    raw = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client_for(users["owner"]).post(url, raw, content_type="application/json")
    assert response.status_code == 400
    assert "nested more than 100 levels" in str(response.json())


def test_nul_in_a_json_body_is_a_400_at_its_path(users, client_for):
    response = client_for(users["owner"]).post(
        "/api/trees/",
        {"slug": "nul", "name": "N", "vision": "v", "extra": {"deep": ["ok", "a\x00b"]}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"extra.deep[1]": [documents.NUL_MESSAGE]}
    assert not ValueTree.objects.filter(slug="nul").exists()


# --- Node and byte caps for tree documents (issue 16 §8) ---------------------------------


def many_goals(count: int) -> str:
    goals = "".join(f"- title: goal {i}\n" for i in range(count))
    return f"version: 1\nslug: many\nname: n\nvision: v\ngoals:\n{goals}"


def test_a_tree_document_over_the_node_cap_is_refused_before_it_is_parsed_whole(
    users, client_for, monkeypatch
):
    """100,000 goals (1.8 MB) took 85 s to refuse; it is refused while it is read,
    after the first MAX_TREE_NODES + 1, without loading the document."""

    def never(*args, **kwargs):
        raise AssertionError("the whole document was loaded")

    monkeypatch.setattr(documents, "load", never)
    response = client_for(users["owner"]).post(
        "/api/trees/import/", many_goals(100_000).encode(), content_type=YAML
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["path"] == "goals"
    assert "holds 20,001 nodes or more; one import takes at most 20,000" in error["message"]
    assert not ValueTree.objects.filter(slug="many").exists()


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_the_node_cap_holds_after_parsing_too(fmt, users, monkeypatch):
    monkeypatch.setattr(interchange, "MAX_TREE_NODES", 5)
    goals = [{"title": "g", "children": [{"title": f"b{i}"} for i in range(5)]}]
    raw = documents.dump_yaml([{"version": 1, "slug": "t", "name": "n", "vision": "v",
                                "goals": goals}])  # fmt: skip
    if fmt == "json":
        raw = json.dumps(yaml.safe_load(raw))
    with pytest.raises(interchange.ImportFailed, match="holds 6 nodes"):
        interchange.tree_import_text(raw, fmt=fmt, owner=users["owner"])


def test_a_tree_document_at_the_cap_is_read(monkeypatch):
    monkeypatch.setattr(interchange, "MAX_TREE_NODES", 50)
    data, _ = interchange.parse(many_goals(50), fmt="yaml")
    assert len(data["goals"]) == 50
    with pytest.raises(interchange.ImportFailed, match="51 nodes or more"):
        interchange.parse(many_goals(51), fmt="yaml")


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/trees/", '{"slug": "t", "name": "Mine", "vision": "v", "slug": "u"}'),
        ("/api/domains/", '{"name": "Lab", "slug": "lab", "name": "Finance"}'),
    ],
)
def test_a_json_body_giving_a_key_twice_is_a_400(url, body, users, client_for):
    """Every JSON body goes through the same parser: the last value was taken silently."""
    users["owner"].is_staff = True
    users["owner"].save()
    response = client_for(users["owner"]).generic("POST", url, body, "application/json")
    assert response.status_code == 400, response.content
    assert "given twice" in str(response.json())
    assert not ValueTree.objects.filter(slug__in=["t", "u"]).exists()
