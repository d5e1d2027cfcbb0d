"""SQL metric sources made from a data product's output port: the URL built from the
server in the port's data contract (ODCS v3), the errors a user can act on, the reach
policy at pull time, a pull end to end from a SQLite warehouse, the browser form and the
API. Who may call the API route is pinned in tests/valuetree/test_api_permissions.py."""

from __future__ import annotations

import socket
import sqlite3
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from outcomes import pulling, selectors, services
from outcomes.credentials import credentials_decrypt
from outcomes.models import MetricSource, Observation, PullStatus
from tests.factories import make_role_users, make_tree
from valuetree import services as tree_services
from valuetree.models import DataContract, OutputPort

PASSWORD = "s3cret-warehouse-pw"
PROD = {
    "server": "prod",
    "type": "postgresql",
    "host": "db.example.com",
    "port": 5432,
    "database": "dw",
    "schema": "sales",
}
DEV = {**PROD, "server": "dev", "host": "dev-db.example.com"}


@pytest.fixture
def product(users, tree):
    """Orders, linked to a node of the tree."""
    domain = tree_services.domain_create(name="Sales", slug="sales")
    product = tree_services.data_product_create(
        name="Orders", slug="orders", domain=domain, owner=users["owner"]
    )
    goal = tree_services.node_create(tree=tree, parent=None, title="Grow revenue")
    tree_services.data_product_link(product=product, node=goal, role="produces")
    return product


@pytest.fixture
def make_port(product):
    def make(servers: list | None, *, name: str = "warehouse", of=None) -> OutputPort:
        port = OutputPort.objects.create(data_product=of or product, name=name, kind="table")
        if servers is not None:
            DataContract.objects.create(
                output_port=port, contract_id=f"{port.data_product.slug}-{name}", servers=servers
            )
        return port

    return make


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- The URL of a contract's server ----------------------------------------------------


@pytest.mark.parametrize(
    ("server", "url"),
    [
        (PROD, "postgresql+psycopg://reader@db.example.com:5432/dw"),
        (
            {"server": "p", "type": "postgres", "host": "db.example.com", "database": "dw"},
            "postgresql+psycopg://reader@db.example.com/dw",
        ),
        (
            {
                "server": "m",
                "type": "mysql",
                "host": "shop.example.com",
                "port": 3306,
                "database": "shop",
            },
            "mysql+pymysql://reader@shop.example.com:3306/shop",
        ),
        (
            {"server": "l", "type": "local", "format": "sqlite", "path": "/srv/orders.sqlite3"},
            "sqlite:////srv/orders.sqlite3",
        ),
        (
            {"server": "c", "type": "custom", "format": "SQLite", "location": "file:///srv/o.db"},
            "sqlite:////srv/o.db",
        ),
        (
            {
                "server": "t",
                "type": "trino",
                "host": "trino.example.com",
                "port": 8443,
                "catalog": "hive",
                "schema": "sales",
            },
            "trino://reader@trino.example.com:8443/hive/sales",
        ),
        (
            {
                "server": "s",
                "type": "snowflake",
                "account": "myorg-acct",
                "database": "DW",
                "schema": "SALES",
                "warehouse": "WH",
            },
            "snowflake://reader@myorg-acct/DW/SALES?warehouse=WH",
        ),
        (
            {
                "server": "r",
                "type": "redshift",
                "host": "rs.example.com",
                "database": "dw",
                "schema": "s",
            },
            "redshift+psycopg2://reader@rs.example.com:5439/dw",
        ),
    ],
    ids=[
        "postgresql",
        "postgres",
        "mysql",
        "local-sqlite",
        "custom-sqlite",
        "trino",
        "snowflake",
        "redshift",
    ],
)
def test_the_url_of_a_contract_server(server, url):
    assert services.contract_server_url(server, username="reader") == url


def test_without_a_username_the_url_has_none():
    assert services.contract_server_url(PROD) == "postgresql+psycopg://db.example.com:5432/dw"


# --- The service ------------------------------------------------------------------------


def test_a_source_from_a_port_reads_its_contract_server(users, tree, product, make_port):
    port = make_port([PROD])

    source = services.metric_source_from_port(
        tree=tree,
        port=port,
        username="reader",
        credentials={"password": PASSWORD},
        owner=users["editor"],
    )

    source.refresh_from_db()
    assert (source.kind, source.name, source.output_port, source.owner) == (
        "sql",
        "Orders: warehouse",
        port,
        users["editor"],
    )
    assert source.config == {"url": "postgresql+psycopg://reader@db.example.com:5432/dw"}
    assert credentials_decrypt(source.credentials_encrypted) == {"password": PASSWORD}
    assert list(port.metric_sources.all()) == [source]


def test_a_server_is_chosen_by_name_and_named_in_the_default_name(tree, make_port):
    port = make_port([PROD, DEV])

    source = services.metric_source_from_port(tree=tree, port=port, server="dev")

    assert source.config == {"url": "postgresql+psycopg://dev-db.example.com:5432/dw"}
    assert source.name == "Orders: warehouse (dev)"


def test_a_product_not_linked_to_the_tree_may_serve_it(users, tree, make_port):
    domain = tree_services.domain_create(name="Finance", slug="finance")
    other = tree_services.data_product_create(name="Ledger", slug="ledger", domain=domain)
    port = make_port([PROD], of=other)

    source = services.metric_source_from_port(tree=tree, port=port, name="Ledger DW")

    assert (source.name, source.output_port) == ("Ledger DW", port)


def test_deleting_the_port_keeps_the_source(tree, make_port):
    port = make_port([PROD])
    source = services.metric_source_from_port(tree=tree, port=port)

    port.delete()

    source.refresh_from_db()
    assert source.output_port is None
    assert source.config == {"url": "postgresql+psycopg://db.example.com:5432/dw"}


@pytest.mark.parametrize(
    ("servers", "server", "field", "message"),
    [
        (None, None, "port", "has no data contract"),
        ([], None, "port", "lists no servers"),
        ([PROD, DEV], None, "server", "several servers (prod, dev): choose one"),
        ([PROD, DEV], "test", "server", "no server “test”; choose one of: prod, dev"),
        (
            [{"server": "events", "type": "kafka", "host": "kafka:9092"}],
            None,
            "server",
            "of type “kafka”",
        ),
        (
            [{"server": "prod", "type": "postgresql", "database": "dw"}],
            None,
            "server",
            "has no host",
        ),
        (
            [{"server": "prod", "type": "mysql", "host": "db.example.com"}],
            None,
            "server",
            "has no database",
        ),
        ([{**PROD, "port": "5432x"}], None, "server", "no valid port"),
        (
            [{"server": "l", "type": "local", "format": "sqlite", "path": "data/o.sqlite3"}],
            None,
            "server",
            "must give its absolute path",
        ),
        (
            [{"server": "l", "type": "local", "format": "sqlite", "path": "/etc/o.sqlite3"}],
            None,
            "server",
            "(METRICS_SQLITE_DIRS)",
        ),
    ],
    ids=[
        "no-contract",
        "no-servers",
        "ambiguous",
        "unknown-server",
        "not-sql",
        "no-host",
        "no-database",
        "bad-port",
        "relative-sqlite",
        "sqlite-outside-the-folders",
    ],
)
def test_errors_name_the_field_and_write_nothing(tree, make_port, servers, server, field, message):
    port = make_port(servers)

    with pytest.raises(ValidationError) as caught:
        services.metric_source_from_port(tree=tree, port=port, server=server)

    errors = caught.value.message_dict
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert not MetricSource.objects.exists()


def test_a_dialect_that_is_not_installed_is_named_with_what_to_install(
    tree, make_port, monkeypatch
):
    # Whether or not PyMySQL is installed here, importing it fails as on a server
    # without it (a None entry in sys.modules makes `import pymysql` raise).
    monkeypatch.setitem(sys.modules, "pymysql", None)
    port = make_port(
        [{"server": "m", "type": "mysql", "host": "db.example.com", "database": "shop"}]
    )

    with pytest.raises(ValidationError) as caught:
        services.metric_source_from_port(tree=tree, port=port)

    assert caught.value.message_dict == {
        "server": [
            "The SQLAlchemy dialect or driver for mysql+pymysql is not installed on this "
            'server: pip install "PyMySQL".'
        ]
    }


def test_the_password_must_be_text(tree, make_port):
    with pytest.raises(ValidationError) as caught:
        services.metric_source_from_port(
            tree=tree, port=make_port([PROD]), credentials={"password": 1234}
        )
    assert list(caught.value.message_dict) == ["credentials.password"]


@pytest.mark.parametrize("count", [1, 6])
def test_the_ports_to_choose_from_are_one_query(tree, make_port, count, django_assert_num_queries):
    for number in range(count):
        make_port([PROD], name=f"port {number}")

    with django_assert_num_queries(1):
        ports = selectors.output_ports_with_servers(tree)
        labels = [(str(port), port.is_linked, port.servers) for port in ports]

    assert len(labels) == count


# --- Pulling ---------------------------------------------------------------------------


def pull(source: MetricSource, query: str):
    metric = services.metric_create(
        source=source, name="Orders", query=query, schedule_interval=timedelta(days=1)
    )
    assert pulling.metric_claim(metric=metric)
    return metric, pulling.metric_pull(metric_id=metric.pk, trigger="manual")


@pytest.mark.parametrize("allowed", [False, True])
def test_the_reach_policy_applies_to_a_port_server(settings, tree, make_port, allowed):
    settings.METRICS_ALLOWED_HOSTS = ["127.0.0.1"] if allowed else []
    port = make_port([{**PROD, "host": "127.0.0.1", "port": free_port()}])
    source = services.metric_source_from_port(tree=tree, port=port, username="reader")

    metric, run = pull(source, "SELECT 1")

    assert run.status == PullStatus.FAILED
    if allowed:  # let through: nothing listens there
        assert run.error.startswith("Could not connect to the database")
    else:
        assert run.error.startswith("Refused to connect to 127.0.0.1 (loopback address)")
        assert "METRICS_ALLOWED_HOSTS" in run.error
    assert not metric.observations.exists()


def test_a_metric_is_pulled_from_a_product_sqlite_warehouse(settings, tmp_path, tree, make_port):
    settings.METRICS_SQLITE_DIRS = [str(tmp_path)]
    warehouse = tmp_path / "orders.sqlite3"
    today = timezone.now().date()
    days = [today - timedelta(days=2), today - timedelta(days=1), today]
    with sqlite3.connect(warehouse) as db:
        db.execute("CREATE TABLE daily_orders (day TEXT PRIMARY KEY, orders REAL NOT NULL)")
        db.executemany(
            "INSERT INTO daily_orders VALUES (?, ?)",
            [(day.isoformat(), float(10 * n)) for n, day in enumerate(days, start=1)],
        )
    db.close()
    port = make_port(
        [{"server": "local", "type": "local", "format": "sqlite", "path": str(warehouse)}]
    )
    source = services.metric_source_from_port(tree=tree, port=port)
    assert source.config == {"url": f"sqlite:///{warehouse}"}

    metric, run = pull(source, "SELECT day, orders FROM daily_orders ORDER BY day")

    assert (run.status, run.error, run.values_written) == (PullStatus.SUCCEEDED, "", 3)
    stored = Observation.objects.filter(metric=metric).order_by("period_start")
    assert [(o.period_start.date(), o.value) for o in stored] == [
        (days[0], 10.0),
        (days[1], 20.0),
        (days[2], 30.0),
    ]


# --- The browser -----------------------------------------------------------------------

FORM = "/trees/tree/sources/from-port/"


@pytest.fixture
def as_role(users):
    def login(role: str) -> Client:
        client = Client()
        client.force_login(users[role])
        return client

    return login


@pytest.mark.django_db
class TestPage:
    def test_the_metrics_page_links_to_the_form_for_editors_only(self, as_role, tree):
        assert FORM.encode() in as_role("editor").get("/trees/tree/metrics/").content
        assert FORM.encode() not in as_role("viewer").get("/trees/tree/metrics/").content

    def test_linked_products_come_first(self, as_role, make_port):
        domain = tree_services.domain_create(name="Finance", slug="finance")
        ledger = tree_services.data_product_create(name="Ledger", slug="ledger", domain=domain)
        make_port([PROD], of=ledger, name="books")
        linked = make_port([PROD, DEV])
        make_port(None, name="no-contract")
        make_port([], name="no-servers")

        response = as_role("editor").get(FORM)

        assert response.status_code == 200
        choices = response.context["form"].fields["server"].choices
        assert [(group, [value for value, _ in options]) for group, options in choices[1:]] == [
            ("Linked to this tree", [f"{linked.pk}:prod", f"{linked.pk}:dev"]),
            ("Other data products", [f"{ledger.output_ports.get().pk}:prod"]),
        ]
        assert "Orders › warehouse — dev: postgresql at dev-db.example.com" in response.text

    def test_no_port_with_servers_says_so(self, as_role, make_port):
        make_port(None)
        response = as_role("editor").get(FORM)
        assert response.status_code == 200
        assert 'id="no-ports"' in response.text

    def test_create_a_source_from_a_port(self, as_role, users, make_port):
        port = make_port([PROD, DEV])
        editor = as_role("editor")

        response = editor.post(
            FORM,
            {"server": f"{port.pk}:dev", "name": "", "username": "reader", "password": PASSWORD},
        )

        assert response.status_code == 302
        assert response["Location"] == "/trees/tree/metrics/"
        source = MetricSource.objects.get()
        assert (source.name, source.output_port, source.owner) == (
            "Orders: warehouse (dev)",
            port,
            users["editor"],
        )
        assert source.config == {"url": "postgresql+psycopg://reader@dev-db.example.com:5432/dw"}
        assert credentials_decrypt(source.credentials_encrypted) == {"password": PASSWORD}
        page = editor.get(response["Location"])
        assert "added from the data product Orders" in page.text
        assert 'from <a href="/data-products/orders/">Orders</a> › warehouse' in page.text
        assert PASSWORD not in page.text

    @pytest.mark.parametrize(
        ("servers", "choice", "message"),
        [
            (
                [{"server": "events", "type": "kafka", "host": "k"}],
                "{pk}:events",
                "of type “kafka”",
            ),
            ([PROD], "{pk}:prod-eu", "Select a valid choice"),
            ([PROD], "999999:prod", "Select a valid choice"),
            ([PROD], "", "This field is required"),
        ],
        ids=["not-sql", "unknown-server", "unknown-port", "none"],
    )
    def test_errors_are_shown_and_nothing_is_written(
        self, as_role, make_port, servers, choice, message
    ):
        port = make_port(servers)

        response = as_role("editor").post(
            FORM, {"server": choice.format(pk=port.pk), "password": PASSWORD}
        )

        assert response.status_code == 400
        assert message in str(response.context["form"].errors["server"])
        assert PASSWORD not in response.text
        assert not MetricSource.objects.exists()

    def test_a_taken_name_is_shown(self, as_role, tree, make_port):
        port = make_port([PROD])
        services.metric_source_create(tree=tree, kind="push", name="Orders: warehouse")

        response = as_role("editor").post(FORM, {"server": f"{port.pk}:prod"})

        assert response.status_code == 400
        assert MetricSource.objects.count() == 1

    @pytest.mark.parametrize(
        ("role", "status"), [("viewer", 403), ("leadership", 403), ("outsider", 404)]
    )
    def test_only_editors_may_use_it(self, as_role, make_port, role, status):
        port = make_port([PROD])

        assert as_role(role).get(FORM).status_code == status
        assert as_role(role).post(FORM, {"server": f"{port.pk}:prod"}).status_code == status
        assert not MetricSource.objects.exists()


# --- The API ---------------------------------------------------------------------------

API = "/api/metric-sources/from-port/"


@pytest.fixture
def body():
    return {
        "tree": "tree",
        "data_product": "orders",
        "port": "warehouse",
        "username": "reader",
        "credentials": {"password": PASSWORD},
    }


def test_api_creates_a_source_from_a_port(users, client_for, make_port, body):
    port = make_port([PROD])
    editor = client_for(users["editor"])

    response = editor.post(API, body, format="json")

    assert response.status_code == 201, response.content
    created = response.json()
    assert PASSWORD.encode() not in response.content
    assert (created["kind"], created["name"], created["tree"], created["owner"]) == (
        "sql",
        "Orders: warehouse",
        "tree",
        "editor",
    )
    assert created["config"] == {"url": "postgresql+psycopg://reader@db.example.com:5432/dw"}
    assert created["has_credentials"] is True
    expected_port = {"id": port.pk, "data_product": "orders", "name": "warehouse"}
    assert created["output_port"] == expected_port
    viewer = client_for(users["viewer"])
    assert (
        viewer.get(f"/api/metric-sources/{created['id']}/").json()["output_port"] == expected_port
    )
    listed = viewer.get("/api/metric-sources/").json()["results"]
    assert [source["output_port"] for source in listed] == [expected_port]


def test_api_output_port_is_null_for_other_sources_and_read_only(users, tree, client_for):
    source = services.metric_source_create(tree=tree, kind="push", name="Survey")
    editor = client_for(users["editor"])

    response = editor.patch(f"/api/metric-sources/{source.pk}/", {"output_port": 1}, format="json")

    assert response.status_code == 200
    assert response.json()["output_port"] is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"data_product": "nope"}, "data_product"),
        ({"port": "nope"}, "port"),
        ({"server": "nope"}, "server"),
        ({"port": None}, "port"),
        ({"credentials": {"password": 1}}, "credentials.password"),
        ({"credentials": {"token": "x"}}, "credentials.token"),
        ({"tree": None}, "tree"),
    ],
)
def test_api_refuses_a_bad_body_naming_the_field(
    users, client_for, make_port, body, changes, field
):
    make_port([PROD])

    response = client_for(users["editor"]).post(API, {**body, **changes}, format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not MetricSource.objects.exists()


def test_api_names_the_ports_of_the_product(users, client_for, make_port, body):
    make_port([PROD])
    make_port([DEV], name="replica")

    response = client_for(users["editor"]).post(API, {**body, "port": "nope"}, format="json")

    assert response.json() == {
        "port": ["Orders has no output port “nope”; its ports: replica, warehouse."]
    }


def test_api_a_viewer_may_not(users, client_for, make_port, body):
    make_port([PROD])
    # The role is checked before the body: a bad body gets the same answer.
    for sent in (body, {**body, "server": "nope"}):
        assert client_for(users["viewer"]).post(API, sent, format="json").status_code == 403
    assert not MetricSource.objects.exists()


@pytest.mark.parametrize("slug", ["hidden", "nope"])
def test_api_a_tree_the_caller_cannot_see_is_not_found(users, client_for, make_port, body, slug):
    make_tree(make_role_users(prefix="x"), slug="hidden", name="Hidden")
    make_port([PROD])

    response = client_for(users["editor"]).post(API, {**body, "tree": slug}, format="json")

    assert response.status_code == 404
    assert not MetricSource.objects.exists()
