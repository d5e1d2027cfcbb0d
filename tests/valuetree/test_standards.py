"""Bitol ODPS and ODCS: imports that write everything or nothing, errors named by
path and line, exact round-trips, the commands and the API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from valuetree import services, standards
from valuetree.interchange import ImportFailed
from valuetree.models import DataContract, DataProduct, LifecycleTransition, OutputPort

FIXTURES = Path(__file__).parent / "fixtures" / "standards"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def counts() -> tuple[int, int, int, int]:
    return (
        DataProduct.objects.count(),
        OutputPort.objects.count(),
        DataContract.objects.count(),
        LifecycleTransition.objects.count(),
    )


def problems(raw: str, **options) -> dict[str, tuple[str, int | None]]:
    """{path: (message, line)} of a refused ODPS import."""
    with pytest.raises(ImportFailed) as failed:
        standards.odps_import_text(raw, **options)
    return {p.path: (p.message, p.line) for p in failed.value.problems}


@pytest.fixture
def domain(db):
    return services.domain_create(name="Sales", slug="sales")


@pytest.fixture
def orders(users, domain):
    """The full fixture product, imported by its owner."""
    [product] = standards.odps_import_text(fixture("orders.odps.yaml"), user=users["owner"])
    return product


# --- ODPS import -------------------------------------------------------------------


def test_import_creates_the_product_its_ports_and_a_draft_contract(orders, users):
    product = DataProduct.objects.get(slug="orders")
    assert (product.name, product.version, product.stage) == ("Orders", "2.1.0", "build")
    assert (product.owner, product.owning_team, product.product_type) == (
        users["owner"],
        "Team Checkout",
        "aggregate",
    )
    assert product.purpose.startswith("Every order placed")
    assert product.description == "Join on order_id; amounts are in EUR."
    ports = {p.name: (p.kind, p.location) for p in product.output_ports.all()}
    assert ports == {
        "orders-table": ("table", "warehouse.sales.orders"),
        "orders-api": ("api", "https://api.example.com/orders"),
    }
    contract = DataContract.objects.get()
    assert (contract.contract_id, contract.output_port.name, contract.version) == (
        "orders-table-v1",
        "orders-table",
        "1.0.0",
    )
    stages = list(product.transitions.values_list("from_stage", "to_stage", "by", "note"))
    assert stages == [
        ("", "discovery", users["owner"].pk, ""),
        ("discovery", "build", users["owner"].pk, "Imported from ODPS"),
    ]


def test_a_stream_of_products_is_imported_in_order(domain, users):
    products = standards.odps_import_text(fixture("three.odps.yaml"), user=users["outsider"])
    assert [(p.slug, p.stage, p.owner) for p in products] == [
        ("customers", "discovery", users["outsider"]),
        ("invoices", "design", users["outsider"]),
        ("refunds", "retired", users["outsider"]),
    ]


def test_a_list_of_products_in_one_document(domain, users):
    documents = list(yaml.safe_load_all(fixture("three.odps.yaml")))
    products = standards.odps_import_text(yaml.safe_dump(documents), user=users["owner"])
    assert [p.slug for p in products] == ["customers", "invoices", "refunds"]


def test_every_problem_is_named_by_path_and_line(domain, users):
    found = problems(fixture("broken.odps.yaml"), user=users["owner"])
    assert {path: line for path, (_, line) in found.items()} == {
        "apiVersion": 2,
        "id": 4,
        "status": 5,
        "colour": 7,
        "name": None,  # missing at the top: no line to point at
        "team[0].username": 9,
        "outputPorts[1].name": 15,
        "outputPorts[1].type": 15,
        "outputPorts[2].name": 17,
        "customProperties[0].value": 21,
        "domain": 6,
    }
    assert found["status"][0] == '"shipped" is not a valid choice.'
    assert found["colour"][0] == "Unknown field."
    assert found["team[0].username"][0] == "No user named 'nobody'."
    assert found["domain"][0] == "No domain with slug or name 'nowhere'."
    assert found["outputPorts[1].type"][0].startswith("Expected text, got 5: quote it")
    assert "repeated" in found["outputPorts[1].name"][0]
    assert DataProduct.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ("a: [1, 2", "", "Not valid YAML"),
        ("kind: DataContract\n", "kind", "not a valid choice"),
        ("- 1\n- 2\n", "[0]", "Expected a mapping"),
        ("", "", "The document is empty."),
    ],
    ids=["malformed", "wrong-kind", "not-a-mapping", "empty"],
)
def test_malformed_documents_are_refused(domain, users, raw, path, message):
    found = problems(raw, user=users["owner"])
    assert message in found[path][0]


def test_nan_and_infinity_are_refused(domain, users):
    raw = fixture("orders.odps.yaml").replace("value: aggregate", "value: .nan")
    raw += "  - {property: weight, value: -.inf}\n"
    found = problems(raw, user=users["owner"])
    assert set(found) == {"customProperties[0].value", "customProperties[4].value"}
    assert "finite" in found["customProperties[4].value"][0]
    assert DataProduct.objects.count() == 0


def test_when_the_third_of_three_products_is_bad_nothing_is_written(domain, users):
    before = counts()
    found = problems(fixture("three-third-bad.odps.yaml"), user=users["owner"])
    assert set(found) == {"[2].status", "[2].outputPorts[0].type"}
    assert found["[2].status"][1] == 22
    assert counts() == before


def test_a_service_refusal_midway_rolls_everything_back(domain, users):
    """Live needs an owner: the third product's transition fails after two were written."""
    raw = fixture("three.odps.yaml").replace("status: retired", "status: active")
    before = counts()
    found = problems(raw, user=None)  # the operator: no owner for new products
    assert set(found) == {"[2].team", "[2].outputPorts"}
    assert "needs an owner" in found["[2].team"][0]
    assert counts() == before


def test_import_updates_an_existing_product_and_keeps_its_contract(orders, users):
    contract = DataContract.objects.get()
    raw = fixture("orders.odps.yaml").replace("name: Orders\n", "name: Orders v3\n")
    raw = raw.replace("value: build", "value: design")
    [product] = standards.odps_import_text(raw, user=users["owner"])
    assert (product.pk, product.name, product.stage) == (orders.pk, "Orders v3", "design")
    assert DataContract.objects.get().pk == contract.pk


def test_only_the_owner_may_update_a_product(orders, users):
    found = problems(fixture("orders.odps.yaml"), user=users["editor"])
    assert found == {"id": ("Only the owner of 'orders' (or staff) may change it.", 4)}


def test_a_contract_id_owned_by_another_port_is_refused(orders, users):
    raw = fixture("orders.odps.yaml").replace(
        "    type: api\n", "    type: api\n    contractId: orders-table-v1\n"
    )
    found = problems(raw, user=users["owner"])
    assert set(found) == {"outputPorts[1].contractId"}


# --- ODCS import -------------------------------------------------------------------


def test_contract_import_fills_the_ports_contract(orders, users):
    contract = standards.odcs_import_text(fixture("orders-table.odcs.yaml"), user=users["owner"])
    assert contract.pk == DataContract.objects.get().pk
    assert (contract.name, contract.status, contract.output_port.name) == (
        "Orders table",
        "active",
        "orders-table",
    )
    assert [obj["name"] for obj in contract.schema] == ["orders", "order_lines"]
    assert contract.servers[0] == {
        "server": "production",
        "type": "postgres",
        "environment": "prod",
        "host": "db.example.com",
        "port": 5432,
        "database": "sales",
        "schema": "public",
    }
    assert contract.team[0]["dateIn"] == "2025-01-01"  # a YAML date, kept as ODCS text
    assert [sla["property"] for sla in contract.sla_properties] == [
        "latency",
        "availability",
        "retention",
    ]


def test_contract_problems_are_named_by_path_and_line(orders, users):
    with pytest.raises(ImportFailed) as failed:
        standards.odcs_import_text(fixture("broken.odcs.yaml"), user=users["owner"])
    found = {p.path: p.line for p in failed.value.problems}
    assert found == {
        "apiVersion": 2,
        "status": 6,
        "schema[0].name": 8,
        "schema[0].properties[0].name": 10,
        "schema[0].properties[0].logicalType": 10,
        "schema[0].properties[0].required": 11,
        "slaProperties[0].property": 13,
        "slaProperties[0].value": 13,
        "slaProperties[1].value": 14,
        "team[0].username": 16,
        "servers[0].type": 18,
        "servers[1].server": 19,
        "servers[1].port": 20,
    }
    assert DataContract.objects.get().status == "draft"  # the stub, untouched


def test_contract_for_a_new_port_needs_the_caller_to_ask(orders, users):
    raw = fixture("orders-table.odcs.yaml").replace("orders-table-v1", "orders-events-v1")
    raw = raw.replace("value: orders-table", "value: orders-events")
    with pytest.raises(ImportFailed) as failed:
        standards.odcs_import_text(raw, user=users["owner"])
    assert [p.path for p in failed.value.problems] == ["customProperties[0].value"]
    contract = standards.odcs_import_text(raw, user=users["owner"], create_port_kind="stream")
    assert (contract.output_port.name, contract.output_port.kind) == ("orders-events", "stream")
    assert orders.output_ports.count() == 3


def test_contract_import_refuses_a_non_owner(orders, users):
    with pytest.raises(ImportFailed) as failed:
        standards.odcs_import_text(fixture("orders-table.odcs.yaml"), user=users["viewer"])
    assert [(type(p), p.path) for p in failed.value.problems] == [(standards.Forbidden, "id")]


# --- Round trips -------------------------------------------------------------------


def test_odps_export_import_export_is_identical(orders, users):
    first = standards.to_yaml([standards.data_product_to_odps(orders)])
    DataProduct.objects.filter(pk=orders.pk).update(name="Changed")
    standards.odps_import_text(first, user=users["owner"])
    second = standards.to_yaml(
        [standards.data_product_to_odps(DataProduct.objects.get(pk=orders.pk))]
    )
    assert second == first
    assert yaml.safe_load(first)["customProperties"][1] == {
        "property": "lifecycleStage",
        "value": "build",
    }


def test_odps_round_trip_into_a_fresh_database(orders, users):
    first = standards.to_yaml([standards.data_product_to_odps(orders)])
    orders.delete()
    [product] = standards.odps_import_text(first, user=users["owner"])
    assert standards.to_yaml([standards.data_product_to_odps(product)]) == first


def test_odcs_export_import_export_is_identical(orders, users):
    contract = standards.odcs_import_text(fixture("orders-table.odcs.yaml"), user=users["owner"])
    first = standards.to_yaml([standards.contract_to_odcs(contract)])
    DataContract.objects.update(schema=[], status="draft")
    contract = standards.odcs_import_text(first, user=users["owner"])
    assert standards.to_yaml([standards.contract_to_odcs(contract)]) == first
    document = yaml.safe_load(first)
    assert list(document)[:6] == ["apiVersion", "kind", "id", "name", "version", "status"]
    assert document["dataProduct"] == "orders"


@pytest.mark.parametrize("size", [1, 6])
def test_export_reads_a_constant_number_of_queries(
    orders, users, size, django_assert_max_num_queries
):
    for number in range(1, size):
        raw = fixture("orders.odps.yaml").replace("id: orders", f"id: orders-{number}")
        raw = raw.replace("-v1", f"-v1-{number}")
        standards.odps_import_text(raw, user=users["owner"])
    with django_assert_max_num_queries(5):
        documents = [standards.data_product_to_odps(p) for p in standards.products_for_export()]
    assert len(documents) == size
    assert all(len(d["outputPorts"]) == 2 for d in documents)


# --- Commands ----------------------------------------------------------------------


def test_commands_import_and_export(domain, users, tmp_path, capsys):
    call_command("import_data_products", str(FIXTURES / "orders.odps.yaml"), "--user", "owner")
    call_command("import_contract", str(FIXTURES / "orders-table.odcs.yaml"), "--user", "owner")
    assert "Imported contract 'orders-table-v1'" in capsys.readouterr().out
    products_file = tmp_path / "products.yaml"
    call_command("export_data_products", "-o", str(products_file))
    contract_file = tmp_path / "contract.yaml"
    call_command("export_contract", "orders", "orders-table", "-o", str(contract_file))
    assert yaml.safe_load(products_file.read_text())["id"] == "orders"
    assert yaml.safe_load(contract_file.read_text())["servers"][0]["type"] == "postgres"
    call_command("import_data_products", str(products_file))
    capsys.readouterr()
    call_command("export_data_products", "orders")
    assert capsys.readouterr().out == products_file.read_text()


def test_import_command_lists_every_problem_and_writes_nothing(domain, users):
    before = counts()
    with pytest.raises(CommandError) as failed:
        call_command("import_data_products", str(FIXTURES / "three-third-bad.odps.yaml"))
    message = str(failed.value)
    assert "nothing was written" in message
    assert "[2].status (line 22)" in message
    assert "[2].outputPorts[0].type (line 25)" in message
    assert counts() == before


def test_contract_commands_refuse(orders, users):
    with pytest.raises(CommandError, match=r"servers\[1\]\.port \(line 20\)"):
        call_command("import_contract", str(FIXTURES / "broken.odcs.yaml"))
    with pytest.raises(CommandError, match="No data contract"):
        call_command("export_contract", "orders", "orders-api")
    with pytest.raises(CommandError, match="No data product with slug nope"):
        call_command("export_data_products", "nope")


# --- API ---------------------------------------------------------------------------

YAML = "application/yaml"


def test_api_import_yaml_and_read_back(domain, users, client_for):
    client = client_for(users["owner"])
    response = client.post(
        "/api/data-products/import/", fixture("orders.odps.yaml"), content_type=YAML
    )
    assert response.status_code == 201
    assert response.json() == {"slugs": ["orders"]}
    exported = client.get("/api/data-products/orders/odps/")
    assert exported.status_code == 200
    assert exported["Content-Type"] == standards.YAML_CONTENT_TYPE
    assert yaml.safe_load(exported.content)["outputPorts"][0]["name"] == "orders-api"
    again = client.post("/api/data-products/import/", exported.content, content_type="text/yaml")
    assert again.status_code == 201
    assert client.get("/api/data-products/orders/odps/").content == exported.content


def test_api_import_errors_name_the_field(domain, users, client_for):
    response = client_for(users["owner"]).post(
        "/api/data-products/import/", fixture("three-third-bad.odps.yaml"), content_type=YAML
    )
    assert response.status_code == 400
    assert response.json() == {
        "[2].status": ['Line 22: "finished" is not a valid choice.'],
        "[2].outputPorts[0].type": [
            'Line 25: Expected text, got 5: quote it ("5") so it is read exactly as written.'
        ],
    }
    assert DataProduct.objects.count() == 0


def test_api_import_of_json(domain, users, client_for):
    document = yaml.safe_load(fixture("orders.odps.yaml"))
    document["team"]["members"][0]["dateIn"] = "2025-01-01"
    response = client_for(users["owner"]).post(
        "/api/data-products/import/", document, format="json"
    )
    assert response.status_code == 201


def test_api_refuses_anonymous_and_non_owners(orders, users, client_for):
    anonymous = client_for(None).post(
        "/api/data-products/import/", fixture("orders.odps.yaml"), content_type=YAML
    )
    assert anonymous.status_code == 401
    other = client_for(users["editor"]).post(
        "/api/data-products/import/", fixture("orders.odps.yaml"), content_type=YAML
    )
    assert other.status_code == 403
    contract = client_for(users["editor"]).put(
        "/api/data-products/orders/ports/orders-table/contract/",
        "not even yaml: [",
        content_type=YAML,
    )
    assert contract.status_code == 403  # the role is checked before the body


def test_api_contract_put_and_get(orders, users, client_for):
    client = client_for(users["owner"])
    url = "/api/data-products/orders/ports/orders-table/contract/"
    response = client.put(url, fixture("orders-table.odcs.yaml"), content_type=YAML)
    assert response.status_code == 200  # the draft made by the ODPS import is filled in
    assert client.get(url).content == response.content
    assert yaml.safe_load(response.content)["schema"][1]["name"] == "order_lines"
    broken = client.put(url, fixture("broken.odcs.yaml"), content_type=YAML)
    assert broken.status_code == 400
    assert broken.json()["servers[1].port"] == ["Line 20: Expected a whole number."]
    assert client.get("/api/data-products/orders/ports/orders-api/contract/").status_code == 404
    missing = client.put(
        "/api/data-products/orders/ports/nope/contract/",
        fixture("orders-table.odcs.yaml"),
        content_type=YAML,
    )
    assert missing.status_code == 404


def test_api_contract_put_creates_a_contract(orders, users, client_for):
    raw = fixture("orders-table.odcs.yaml").replace("orders-table-v1", "orders-api-v1")
    raw = raw.replace("value: orders-table", "value: orders-api")
    response = client_for(users["owner"]).put(
        "/api/data-products/orders/ports/orders-api/contract/", raw, content_type=YAML
    )
    assert response.status_code == 201
    assert OutputPort.objects.get(name="orders-api").contract.contract_id == "orders-api-v1"
