"""Text a database cannot store: the NUL character (\\u0000) is refused with a 400 at
its path wherever text comes in — JSON bodies (inside JSON fields too), documents,
forms, CSV, query strings and URL paths — on SQLite and on PostgreSQL alike (run this
file with DATABASE_URL pointing at PostgreSQL for the second)."""

from __future__ import annotations

from pathlib import Path

import pytest

from outcomes.models import MetricSource, Observation
from tests.factories import make_metric
from valuetree import documents, services, standards
from valuetree.models import DataContract, DataProduct, ValueTree

STANDARDS = Path(__file__).parent / "fixtures" / "standards"
CASES = Path(__file__).parent / "fixtures" / "cases"

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(users):
    services.domain_create(name="Sales", slug="sales")
    [product] = standards.odps_import_text(
        (STANDARDS / "orders.odps.yaml").read_text(), user=users["owner"]
    )
    return product


@pytest.mark.parametrize(
    ("url", "body", "path"),
    [
        ("/api/trees/", {"slug": "t", "name": "a\x00", "vision": "v"}, "name"),
        (
            "/api/metric-sources/",
            {"tree": "T", "kind": "http_json", "name": "s", "config": {"url": "http://a\x00"}},
            "config.url",
        ),
        (
            "/api/metric-sources/",
            {"tree": "T", "kind": "http_json", "name": "s", "config": {"h\x00": "x"}},
            "config",
        ),
        ("/api/trees/import/", {"version": 1, "slug": "t", "name": "n", "vision": "\x00"}, ""),
    ],
)
def test_nul_in_a_json_body_is_a_400_at_its_path(url, body, path, tree, users, client_for):
    body = {key: (tree.slug if value == "T" else value) for key, value in body.items()}
    response = client_for(users["owner"]).post(url, body, format="json")
    assert response.status_code == 400, response.content
    text = str(response.json())
    assert "NUL" in text
    if path:
        assert path in response.json()
    assert not ValueTree.objects.filter(slug="t").exists()
    assert not MetricSource.objects.exists()


def test_the_odcs_case_is_refused_on_this_database(orders, users, client_for):
    before = list(DataContract.objects.values())
    response = client_for(users["owner"]).put(
        "/api/data-products/orders/ports/orders-table/contract/",
        (CASES / "odcs-nul-character.json").read_bytes(),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {"schema[0].properties[0].description": [documents.NUL_MESSAGE]}
    assert list(DataContract.objects.values()) == before


def test_the_odcs_case_in_yaml_is_refused_at_its_line(orders, users, client_for):
    raw = (STANDARDS / "valid" / "odcs-v3.0.0.yaml").read_text()
    raw = raw.replace("logicalType: string", 'logicalType: string\n        description: "a\\0b"')
    response = client_for(users["owner"]).put(
        "/api/data-products/orders/ports/orders-table/contract/",
        raw.encode(),
        content_type="application/yaml",
    )
    assert response.status_code == 400
    assert response.json() == {
        "schema[0].properties[0].description": [f"Line 16: {documents.NUL_MESSAGE}"]
    }


@pytest.mark.parametrize(
    "url",
    [
        "/api/trees/?search=a%00b",
        "/api/data-products/?search=%00",
        "/api/trees/a%00b/",
        "/api/data-products/x%00/odps/",
        "/trees/?q=%00",
        "/data-products/?q=a%00",
    ],
)
def test_nul_in_a_url_or_query_is_a_400(url, users, client, client_for):
    client.force_login(users["owner"])
    response = (client_for(users["owner"]) if url.startswith("/api/") else client).get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_nul_in_a_form_is_refused(users, client, orders):
    client.force_login(users["owner"])
    response = client.post(
        "/data-products/import/", {"standard": "odps", "text": "apiVersion: v1.0.0\x00"}
    )
    assert response.status_code == 400
    assert DataProduct.objects.count() == 1


def test_nul_in_a_pushed_csv_is_a_400(tree, users, client_for):
    metric = make_metric(tree, kind="push", source_name="Pushed", granularity="day")
    response = client_for(users["owner"]).post(
        f"/api/metrics/{metric.pk}/observations/",
        "period,value\n2026-01-01\x00,1\n",
        content_type="text/csv",
    )
    assert response.status_code == 400
    assert not Observation.objects.exists()
