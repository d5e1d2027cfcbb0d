"""The browser page that imports Bitol ODPS data products and ODCS data contracts."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from valuetree import services
from valuetree.models import DataContract, DataProduct, OutputPort

FIXTURES = Path(__file__).parent / "fixtures" / "standards"
URL = "/data-products/import/"

pytestmark = pytest.mark.django_db


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def counts() -> tuple[int, int, int]:
    return DataProduct.objects.count(), OutputPort.objects.count(), DataContract.objects.count()


@pytest.fixture
def domain(db):
    return services.domain_create(name="Sales", slug="sales")


def test_anonymous_is_sent_to_login(client):
    assert client.get(URL)["Location"] == f"/accounts/login/?next={URL}"


def test_the_catalogue_links_the_import_page(login):
    html = login("viewer").get("/data-products/").content.decode()
    assert f'href="{URL}"' in html


def test_pasted_odps_creates_the_product_and_shows_it(login, users, domain):
    response = login("owner").post(URL, {"standard": "odps", "text": fixture("orders.odps.yaml")})
    assert response.status_code == 302
    assert response["Location"] == "/data-products/orders/"
    product = DataProduct.objects.get(slug="orders")
    assert product.owner == users["owner"]
    page = login("owner").get(response["Location"]).content.decode()
    assert "Imported 1 data product(s): “Orders”." in page


def test_an_uploaded_stream_of_products_goes_to_the_catalogue(login, domain):
    upload = SimpleUploadedFile("three.yaml", fixture("three.odps.yaml").encode())
    response = login("outsider").post(URL, {"standard": "odps", "file": upload})
    assert response.status_code == 302
    assert response["Location"] == "/data-products/"
    assert DataProduct.objects.count() == 3


def test_every_problem_is_listed_by_path_and_line_and_nothing_is_written(login, domain):
    before = counts()
    response = login("owner").post(
        URL, {"standard": "odps", "text": fixture("three-third-bad.odps.yaml")}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was imported." in html
    problems = response.context["problems"]
    assert problems
    assert all(problem.path.startswith("[2]") for problem in problems)
    for problem in problems:
        assert f"<code>{problem.path}</code> (line {problem.line})" in html
    assert counts() == before


def test_changing_someone_elses_product_is_forbidden(login, domain):
    login("owner").post(URL, {"standard": "odps", "text": fixture("orders.odps.yaml")})
    changed = fixture("orders.odps.yaml").replace("name: Orders\n", "name: Mine now\n")
    response = login("editor").post(URL, {"standard": "odps", "text": changed})
    assert response.status_code == 403
    assert DataProduct.objects.get(slug="orders").name == "Orders"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"standard": "odps"}, "Give a file or paste the document."),
        ({"standard": "odps", "text": "   "}, "Give a file or paste the document."),
        ({"standard": "xml", "text": "a: 1"}, "Select a valid choice."),
    ],
)
def test_a_form_without_a_document_says_what_is_missing(login, domain, data, message):
    response = login("owner").post(URL, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert counts() == (0, 0, 0)


def test_a_file_and_text_together_are_refused(login, domain):
    upload = SimpleUploadedFile("orders.yaml", fixture("orders.odps.yaml").encode())
    response = login("owner").post(
        URL, {"standard": "odps", "file": upload, "text": fixture("orders.odps.yaml")}
    )
    assert response.status_code == 400
    assert "Give a file or the document&#x27;s text, not both." in response.content.decode()
    assert counts() == (0, 0, 0)


def test_a_contract_is_attached_to_its_port(login, domain):
    login("owner").post(URL, {"standard": "odps", "text": fixture("orders.odps.yaml")})
    response = login("owner").post(
        URL, {"standard": "odcs", "text": fixture("orders-table.odcs.yaml")}
    )
    assert response.status_code == 302
    assert response["Location"] == "/data-products/orders/"
    contract = DataContract.objects.get(contract_id="orders-table-v1")
    assert (contract.output_port.data_product.slug, len(contract.servers)) == ("orders", 2)
    page = login("viewer").get("/data-products/orders/").content.decode()
    assert "; servers: production (postgres) lake (s3)" in page


def test_a_broken_contract_lists_its_problems_and_writes_nothing(login, domain):
    login("owner").post(URL, {"standard": "odps", "text": fixture("orders.odps.yaml")})
    before = counts()
    contract = DataContract.objects.get()
    response = login("owner").post(URL, {"standard": "odcs", "text": fixture("broken.odcs.yaml")})
    assert response.status_code == 400
    paths = {problem.path for problem in response.context["problems"]}
    assert {"apiVersion", "servers[0].type"} <= paths
    assert counts() == before
    contract.refresh_from_db()
    assert contract.servers == []
