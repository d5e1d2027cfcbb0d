"""Conformance to the Bitol standards we claim: what we export validates against the
official JSON Schema of the version it names, valid documents of every version we
read import, ODPS v1.0.0 / ODCS v3.1.0 shapes, text that stays text, and exact
Unicode round trips."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from valuetree import documents, interchange, services, standards
from valuetree.models import DataContract, DataProduct

STANDARDS = Path(__file__).parent / "fixtures" / "standards"
CASES = Path(__file__).parent / "fixtures" / "cases"
SCHEMAS = STANDARDS / "schemas"
VALID = sorted((STANDARDS / "valid").glob("*.yaml"))
YAML = "application/yaml"

pytestmark = pytest.mark.django_db


def official_errors(document: dict) -> list[str]:
    """The official schema's complaints about a document (JSON types: dates as text)."""
    standard = "odps" if document["kind"] == "DataProduct" else "odcs"
    schema = json.loads(
        (SCHEMAS / f"{standard}-json-schema-{document['apiVersion']}.json").read_text()
    )
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    plain = json.loads(json.dumps(document, default=str))
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(plain)
    ]


@pytest.fixture
def sales(db):
    return services.domain_create(name="Sales", slug="sales")


@pytest.fixture
def orders(users, sales):
    [product] = standards.odps_import_text(
        (STANDARDS / "orders.odps.yaml").read_text(), user=users["owner"]
    )
    return product


# --- Valid documents of every version import, and are valid by the official schema ----


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_every_valid_fixture_is_valid_by_the_official_schema(path):
    assert official_errors(yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_every_valid_fixture_imports_and_its_export_is_valid(path, orders, users):
    raw = path.read_text()
    if path.stem.startswith("odps"):
        [product] = standards.odps_import_text(raw, user=users["owner"])
        exported = standards.data_product_to_odps(
            standards.products_for_export().get(pk=product.pk)
        )
    else:
        # As the API does (the product is in its URL): v3.1.0 deprecates dataProduct.
        contract = standards.odcs_import_text(raw, user=users["owner"], product_slug="orders")
        assert contract.output_port.name == "orders-table"
        assert contract.api_version == yaml.safe_load(raw)["apiVersion"]
        exported = standards.contract_to_odcs(contract)
    assert official_errors(exported) == []


def test_every_export_is_valid_by_the_official_schema(orders, users):
    standards.odcs_import_text(
        (STANDARDS / "orders-table.odcs.yaml").read_text(), user=users["owner"]
    )
    for product in standards.products_for_export():
        document = standards.data_product_to_odps(product)
        assert document["apiVersion"] == "v1.0.0"
        assert official_errors(document) == []
    for contract in DataContract.objects.all():
        assert official_errors(standards.contract_to_odcs(contract)) == []


@pytest.mark.parametrize("domain", ["Customer Billing", "customer-billing"])
def test_a_domain_is_named_by_its_name_or_its_slug(domain, orders, users, client_for):
    """ODPS says "Business domain" and ODCS "Name of the logical data domain", both free
    text: a document naming the domain as people call it ("Customer Billing") was refused
    as not a slug, or as another domain than the product's."""
    billing = services.domain_create(name="Customer Billing", slug="customer-billing")
    client = client_for(users["owner"])
    product = yaml.safe_load((STANDARDS / "valid" / "odps-v1.0.0.yaml").read_text())
    product |= {"id": "invoices", "domain": domain}
    product["outputPorts"][0]["contractId"] = "invoices-table-v1"
    assert official_errors(product) == []
    response = client.post("/api/data-products/import/", yaml.safe_dump(product), content_type=YAML)
    assert response.status_code == 201, response.content
    assert DataProduct.objects.get(slug="invoices").domain == billing

    contract = yaml.safe_load((STANDARDS / "valid" / "odcs-v3.1.0.yaml").read_text())
    contract["domain"] = {"Customer Billing": "Sales", "customer-billing": "sales"}[domain]
    assert official_errors(contract) == []
    response = client.put(
        "/api/data-products/orders/ports/orders-table/contract/",
        yaml.safe_dump(contract),
        content_type=YAML,
    )
    assert response.status_code == 200, response.content
    # Another domain's name is still refused, saying which domain the product is in.
    contract["domain"] = "Customer Billing"
    response = client.put(
        "/api/data-products/orders/ports/orders-table/contract/",
        yaml.safe_dump(contract),
        content_type=YAML,
    )
    assert response.status_code == 400
    assert "'orders' is in domain 'Sales' (slug 'sales')" in str(response.json())


# --- ODPS v1.0.0 -------------------------------------------------------------------------


def test_odps_v1_team_object_case_imports_over_the_api(users, client_for):
    services.domain_create(name="Customer billing", slug="customer-billing")
    demo = type(users["owner"]).objects.create_user("demo")
    response = client_for(demo).post(
        "/api/data-products/import/",
        (CASES / "odps-v1-team-object.yaml").read_bytes(),
        content_type=YAML,
    )
    assert response.status_code == 201, response.json()
    product = DataProduct.objects.get(slug="bug-odps-team-object")
    assert (product.owner, product.owning_team) == (demo, "Order analytics")
    exported = client_for(demo).get(f"/api/data-products/{product.slug}/odps/")
    document = yaml.safe_load(exported.content)
    assert document["team"] == {
        "name": "Order analytics",
        "members": [{"username": "demo", "role": "owner"}],
    }
    assert official_errors(document) == []


def test_odps_v0_9_team_list_is_still_read(sales, users):
    [product] = standards.odps_import_text(
        (STANDARDS / "valid" / "odps-v0.9.0.yaml").read_text(), user=users["owner"]
    )
    # The list's owner is read (and must be who imports: issue 14 §6).
    assert product.owner == users["owner"]


def test_a_team_that_is_neither_object_nor_list_is_refused(sales, users):
    raw = (STANDARDS / "valid" / "odps-v1.0.0.yaml").read_text()
    raw = raw.replace("team:\n  name: Payments analytics", "team: Payments\nx:\n  name: P")
    with pytest.raises(interchange.ImportFailed) as failed:
        standards.odps_import_text(raw, user=users["owner"])
    assert "team" in {p.path for p in failed.value.problems}


# --- ODCS v3.1.0 -------------------------------------------------------------------------


@pytest.fixture
def lis_extract(users, sales):
    product = services.data_product_create(
        name="LIS nightly extract",
        slug="lis-nightly-extract",
        domain=sales,
        owner=users["owner"],
        output_ports=[{"name": "extract", "kind": "table"}],
        by=users["owner"],
    )
    return product


def test_odcs_v3_1_case_is_accepted_over_the_api(lis_extract, users, client_for):
    demo = type(users["owner"]).objects.create_user("demo")
    assert demo
    response = client_for(users["owner"]).put(
        "/api/data-products/lis-nightly-extract/ports/extract/contract/",
        (CASES / "odcs-v3.1-team-object-timestamp.yaml").read_bytes(),
        content_type=YAML,
    )
    assert response.status_code == 201, response.content
    document = yaml.safe_load(response.content)
    assert document["apiVersion"] == "v3.1.0"
    assert document["team"]["members"][0]["username"] == "demo"
    types = [p["logicalType"] for p in document["schema"][0]["properties"]]
    assert types == ["string", "timestamp", "time"]
    assert official_errors(document) == []


@pytest.mark.parametrize("version", ["v3.0.0", "v3.0.1", "v3.0.2"])
def test_v3_1_shapes_under_an_earlier_version_are_refused(version, orders, users):
    raw = (STANDARDS / "valid" / "odcs-v3.1.0.yaml").read_text()
    raw = raw.replace("apiVersion: v3.1.0", f"apiVersion: {version}")
    with pytest.raises(interchange.ImportFailed) as failed:
        standards.odcs_import_text(raw, user=users["owner"])
    paths = {p.path for p in failed.value.problems}
    assert {"team", "schema[0].properties[1].logicalType", "servers[0].type"} <= paths


def test_the_official_model_refuses_what_our_own_checks_do_not_know(orders, users):
    raw = (STANDARDS / "valid" / "odcs-v3.0.2.yaml").read_text()
    raw = raw.replace('  - channel: "#orders"', "  - channel: [not, text]")
    with pytest.raises(interchange.ImportFailed) as failed:
        standards.odcs_import_text(raw, user=users["owner"])
    assert [p.path for p in failed.value.problems] == ["support[0].channel"]


@pytest.mark.parametrize("named", ["orders", "Orders"])
def test_data_product_is_named_by_slug_or_name(named, orders, users):
    raw = (STANDARDS / "valid" / "odcs-v3.0.0.yaml").read_text()
    raw = raw.replace("dataProduct: orders", f"dataProduct: {named}")
    contract = standards.odcs_import_text(raw, user=users["owner"])
    assert contract.output_port.data_product == orders


def test_a_data_product_name_two_products_share_asks_for_the_slug(orders, users, sales):
    services.data_product_create(name="Orders", slug="orders-2", domain=sales, by=users["owner"])
    raw = (STANDARDS / "valid" / "odcs-v3.0.0.yaml").read_text()
    raw = raw.replace("dataProduct: orders", "dataProduct: Orders")
    with pytest.raises(interchange.ImportFailed, match="give the slug"):
        standards.odcs_import_text(raw, user=users["owner"])


# --- Text stays text ----------------------------------------------------------------------


def test_unquoted_version_is_refused_in_odps(sales, users):
    raw = (STANDARDS / "valid" / "odps-v1.0.0.yaml").read_text().replace('"1.10"', "1.10")
    with pytest.raises(interchange.ImportFailed) as failed:
        standards.odps_import_text(raw, user=users["owner"])
    [problem] = failed.value.problems
    assert problem.path == "version"
    assert "quote it" in problem.message
    assert not DataProduct.objects.filter(slug="refunds").exists()


def test_quoted_version_is_kept_exactly(sales, users):
    raw = (STANDARDS / "valid" / "odps-v1.0.0.yaml").read_text()
    [product] = standards.odps_import_text(raw, user=users["owner"])
    assert product.version == "1.10"


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ('version: "1.10"', "version: 1.10", "version"),
        ("  purpose: One row", "  purpose: 2026\n  usage: One row", "description.purpose"),
        ("        physicalType: numeric(12,2)", "        physicalType: 12", None),
        ("  - username: owner", "  - username: 1234", "team[0].username"),
    ],
)
def test_numbers_in_odcs_text_fields_are_refused(old, new, path, orders, users):
    raw = (STANDARDS / "valid" / "odcs-v3.0.2.yaml").read_text().replace(old, new)
    with pytest.raises(interchange.ImportFailed) as failed:
        standards.odcs_import_text(raw, user=users["owner"])
    path = path or "schema[0].properties[0].physicalType"
    assert path in {p.path for p in failed.value.problems}
    assert all("quote it" in p.message for p in failed.value.problems if p.path == path)


@pytest.mark.parametrize(
    ("field", "value"), [("name", "1.10"), ("vision", "2026"), ("description", "yes")]
)
def test_numbers_in_tree_document_text_fields_are_refused(field, value, users):
    others = {"name": "T", "vision": "V", "description": "D"}
    del others[field]  # a key given twice is refused in its own right
    raw = "version: 1\nslug: t\n" + "".join(f"{k}: {v}\n" for k, v in others.items())
    raw += f"{field}: {value}\n"
    with pytest.raises(interchange.ImportFailed) as failed:
        interchange.tree_import_text(raw, fmt="yaml", owner=users["owner"])
    [problem] = failed.value.problems
    assert (problem.path, problem.line) == (field, 5)
    assert "quote it" in problem.message
    raw = raw.replace(f"{field}: {value}", f'{field}: "{value}"')
    tree = interchange.tree_import_text(raw, fmt="yaml", owner=users["owner"])
    assert getattr(tree, field) == value


def test_numbers_in_node_text_fields_are_refused(users):
    raw = "version: 1\nslug: t\nname: T\nvision: V\ngoals:\n  - title: 2026\n"
    with pytest.raises(interchange.ImportFailed) as failed:
        interchange.tree_import_text(raw, fmt="yaml", owner=users["owner"])
    assert [p.path for p in failed.value.problems] == ["goals[0].title"]


# --- NUL --------------------------------------------------------------------------------


def test_odcs_nul_case_is_a_400_at_its_path(orders, users, client_for):
    before = list(DataContract.objects.values())
    response = client_for(users["owner"]).put(
        "/api/data-products/orders/ports/orders-table/contract/",
        (CASES / "odcs-nul-character.json").read_bytes(),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {"schema[0].properties[0].description": [documents.NUL_MESSAGE]}
    assert list(DataContract.objects.values()) == before


# --- Unicode round trips ------------------------------------------------------------------


@contextmanager
def rolled_back() -> Iterator[None]:
    """One hypothesis example's writes, undone whether it passes or fails."""
    savepoint = transaction.savepoint()
    try:
        yield
    finally:
        transaction.savepoint_rollback(savepoint)


# Every code point but surrogates (not text in UTF-8) and NUL (refused everywhere).
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(title=TEXT, description=TEXT, vision=TEXT)
# NEL did not survive PyYAML's pure-Python writer; the rest are line breaks, a BOM,
# spaces that DRF trimmed, and the last code point.
@example(title="a\x85b", description=" \u2028 x\u2029 ", vision="\ufeff\r\n\U0010ffff")
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_tree_text_survives_export_and_import_exactly(fmt, users, title, description, vision):
    with rolled_back():
        tree = services.tree_create(owner=users["owner"], name="U", slug="unicode", vision=vision)
        services.node_create(tree=tree, parent=None, title=title, description=description)
        body, _ = interchange.tree_export_text(tree=tree, fmt=fmt)
        tree.delete()
        again = interchange.tree_import_text(body, fmt=fmt, owner=users["owner"])
        goal = again.nodes.get()
        assert (again.vision, goal.title, goal.description) == (vision, title, description)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=TEXT, purpose=TEXT, team=TEXT)
@example(name="a\x85b", purpose=" \u2028 x ", team="\ufeff\t")
def test_data_product_text_survives_odps_export_and_import_exactly(
    sales, users, name, purpose, team
):
    with rolled_back():
        product = services.data_product_create(
            name=name,
            slug="unicode",
            domain=sales,
            owner=users["owner"],
            purpose=purpose,
            owning_team=team,
            by=users["owner"],
        )
        body = standards.to_yaml([standards.data_product_to_odps(product)])
        product.delete()
        [again] = standards.odps_import_text(body, user=users["owner"])
        assert (again.name, again.purpose, again.owning_team) == (name, purpose, team)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=TEXT, purpose=TEXT, description=TEXT)
@example(name="a\x85b", purpose="\u2028\r\n", description=" \ufeff ")
def test_contract_text_survives_odcs_export_and_import_exactly(
    orders, users, name, purpose, description
):
    with rolled_back():
        raw = (STANDARDS / "valid" / "odcs-v3.0.0.yaml").read_text()
        contract = standards.odcs_import_text(raw, user=users["owner"])
        contract.name, contract.purpose = name[:200], purpose
        contract.schema[0]["properties"][0]["description"] = description
        contract.save()
        body = standards.to_yaml([standards.contract_to_odcs(contract)])
        again = standards.odcs_import_text(body, user=users["owner"])
        assert (again.name, again.purpose) == (name[:200], purpose)
        assert again.schema[0]["properties"][0]["description"] == description


def test_an_output_port_without_type_imports_and_a_kept_port_keeps_its_kind(sales, users):
    """`type` is optional on an ODPS output port: such a valid document was refused
    ("This field is required."). A new port has no kind (the export leaves `type`
    out); an existing port keeps the kind it had."""
    raw = (STANDARDS / "valid" / "odps-v1.0.0-port-without-type.yaml").read_text()
    [product] = standards.odps_import_text(raw, user=users["owner"])
    assert list(product.output_ports.values_list("name", "kind")) == [("returns-feed", "")]
    exported = standards.data_product_to_odps(standards.products_for_export().get(pk=product.pk))
    assert "type" not in exported["outputPorts"][0]
    assert official_errors(exported) == []
    product.output_ports.update(kind="stream")
    standards.odps_import_text(raw, user=users["owner"])
    assert list(product.output_ports.values_list("kind", flat=True)) == ["stream"]
