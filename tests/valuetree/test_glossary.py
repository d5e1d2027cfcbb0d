"""The business glossary: services, YAML/CSV import and export (API and commands),
ODCS authoritativeDefinitions / businessName ↔ glossary terms, and the pages."""

from __future__ import annotations

import io

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape
from rest_framework.test import APIClient

from valuetree import services, standards
from valuetree.models import DataProductEmbedding, GlossaryColumnLink, GlossaryTerm

ODCS = """
apiVersion: v3.0.2
kind: DataContract
id: shoppers-v1
version: 1.0.0
status: active
dataProduct: shoppers
customProperties:
  - property: outputPort
    value: shoppers_table
schema:
  - name: shoppers
    properties:
      - name: client_id
        businessName: Client
      - name: sku
        authoritativeDefinitions:
          - type: businessDefinition
            url: https://catalogue.example.com/glossary/stock-keeping-unit/
      - name: note
"""


ROUND_TRIP_FIELDS = ("name", "definition", "synonyms", "abbreviations", "domain__slug")


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("staffer", is_staff=True)


@pytest.fixture
def terms(db):
    return {
        "customer": services.glossary_term_create(
            name="customer", definition="Who buys from us", synonyms=["client", "shopper"]
        ),
        "sku": services.glossary_term_create(
            name="stock keeping unit", abbreviations=["SKU"], synonyms="article; item"
        ),
    }


class TestServices:
    def test_forms_are_cleaned_and_the_slug_made(self, terms):
        sku = terms["sku"]
        assert (sku.slug, sku.synonyms, sku.abbreviations) == (
            "stock-keeping-unit",
            ["article", "item"],
            ["SKU"],
        )

    def test_a_duplicate_name_is_refused(self, terms):
        with pytest.raises(ValidationError) as error:
            services.glossary_term_create(name="customer")
        assert "name" in error.value.message_dict

    def test_import_creates_then_updates_by_name(self, db):
        rows = [{"name": "carrier", "synonyms": ["haulier"]}]
        assert services.glossary_import(rows=rows, by=None) == {"created": 1, "updated": 0}
        rows = [{"name": "Carrier", "synonyms": ["haulier", "courier"], "definition": "Moves it"}]
        assert services.glossary_import(rows=rows, by=None) == {"created": 0, "updated": 1}
        term = GlossaryTerm.objects.get()
        assert (term.synonyms, term.definition) == (["haulier", "courier"], "Moves it")

    def test_an_import_reembeds_once(self, db, django_capture_on_commit_callbacks):
        # Each term queued its own re-embedding of every product: importing the
        # default glossary (253 terms) queued 253 tasks, each reading every product.
        rows = [{"name": f"term {i}"} for i in range(5)]
        with django_capture_on_commit_callbacks() as callbacks:
            services.glossary_import(rows=rows, by=None)
        assert len(callbacks) == 1

    def test_every_name_gets_a_slug_of_its_own(self, db):
        # The slug was slugify(name): "顧客" (no ASCII letter) had none, "Cafe" after
        # "Café" and "New" (a glossary route) had one taken, and the import (no slug
        # column) or the form (no slug field) gave an error the user could not act on.
        rows = [{"name": n} for n in ("顧客", "Café", "Cafe", "New", "Import", "!!!")]
        assert services.glossary_import(rows=rows, by=None)["created"] == 6
        slugs = dict(GlossaryTerm.objects.values_list("name", "slug"))
        assert slugs["Café"] == "cafe" and slugs["Cafe"] == "cafe-2"
        assert (slugs["New"], slugs["Import"]) == ("new-2", "import-2")
        assert slugs["顧客"].startswith("term-") and slugs["!!!"].startswith("term-")
        assert len(set(slugs.values())) == 6

    def test_an_import_reads_the_glossarys_forms_once_whatever_its_size(self, db):
        # Each term was checked against every other by reading the whole table again
        # (twice): 1,500 terms took 17 s, and a 10 MB document would have held a worker
        # for hours. Now one read serves the whole import.
        services.glossary_import(
            rows=[{"name": f"old {i}", "synonyms": [f"o{i}"]} for i in range(40)], by=None
        )
        rows = [{"name": f"term {i}", "synonyms": [f"synonym {i}"]} for i in range(30)]
        with CaptureQueriesContext(connection) as captured:
            services.glossary_import(rows=rows, by=None)
        reads = [
            q["sql"]
            for q in captured.captured_queries
            if q["sql"].startswith("SELECT")
            and "glossaryterm" in q["sql"]
            and '"synonyms"' in q["sql"].split(" FROM ")[0]
        ]
        assert len(reads) <= 2, reads[:5]
        assert GlossaryTerm.objects.count() == 70

    def test_terms_of_one_import_are_checked_against_each_other(self, db):
        rows = [
            {"name": "client", "synonyms": ["buyer"]},
            {"name": "shopper", "synonyms": ["Buyer"]},
        ]
        with pytest.raises(ValidationError, match="Term 2 .*“buyer” is already a synonym"):
            services.glossary_import(rows=rows, by=None)
        rows = [{"name": "client"}, {"name": "customer", "synonyms": ["CLIENT"]}]
        with pytest.raises(ValidationError, match="“client” is a term of its own"):
            services.glossary_import(rows=rows, by=None)
        assert not GlossaryTerm.objects.exists()

    def test_a_glossary_larger_than_an_import_holds_is_refused_whole(self, staff, terms):
        client = APIClient()
        client.force_authenticate(staff)
        rows = [{"name": f"term {i}"} for i in range(services.GLOSSARY_IMPORT_MAX_TERMS + 1)]
        response = client.post(
            "/api/glossary/import/",
            yaml.safe_dump({"terms": rows}),
            content_type="application/yaml",
        )
        assert response.status_code == 400
        assert "split it" in str(response.json())
        assert GlossaryTerm.objects.count() == 2

    def test_a_bad_row_imports_nothing(self, db):
        rows = [{"name": "fine"}, {"name": "bad", "domain": "nowhere"}]
        with pytest.raises(ValidationError, match="Term 2: no domain “nowhere”"):
            services.glossary_import(rows=rows, by=None)
        assert not GlossaryTerm.objects.exists()

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"name": "a\x00b"}, "name"),
            ({"name": "ok", "definition": "a\x00b"}, "definition"),
            ({"name": "ok", "synonyms": ["x\x00y"]}, "synonyms"),
            ({"name": "ok", "synonyms": ["the"]}, "synonyms"),
            ({"name": "ok", "synonyms": [f"s{i}" for i in range(101)]}, "synonyms"),
            ({"name": "CUSTOMER"}, "name"),
            ({"name": "buyer", "synonyms": ["Stock Keeping Unit"]}, "synonyms"),
            ({"name": "shelf unit", "abbreviations": ["customer"]}, "abbreviations"),
            ({"name": "Client"}, "name"),
            # An abbreviation "IT" or "D" was matched in every "it" and every lone "d"
            # (case-insensitively): each product's text gained the term.
            ({"name": "information technology", "abbreviations": ["IT"]}, "abbreviations"),
            ({"name": "vitamin", "abbreviations": ["D"]}, "abbreviations"),
            # One form of two terms is rewritten as both names: a hundred terms sharing
            # "ab" made each "ab" in a text 20,000 characters long.
            ({"name": "buyer", "synonyms": ["Client"]}, "synonyms"),
            ({"name": "unit", "abbreviations": ["\u017fku"]}, "abbreviations"),
            ({"name": "exports", "slug": "export"}, "slug"),
        ],
        ids=[
            "nul-name",
            "nul-definition",
            "nul-synonym",
            "stop-word",
            "too-many",
            "case",
            "synonym-is-a-term",
            "abbreviation-is-a-term",
            "name-is-a-synonym",
            "abbreviation-stop-word",
            "abbreviation-one-letter",
            "synonym-of-another-term",
            "abbreviation-folds-to-another-terms",
            "reserved-slug-given",
        ],
    )
    def test_hostile_terms_are_refused(self, terms, fields, field):
        with pytest.raises(ValidationError) as error:
            services.glossary_term_create(**fields)
        assert field in error.value.message_dict
        assert GlossaryTerm.objects.count() == 2

    def test_a_name_is_stored_composed(self, db):
        term = services.glossary_term_create(name="Cafe\u0301")
        assert term.name == "Caf\u00e9"
        with pytest.raises(ValidationError):
            services.glossary_term_create(name="caf\u00e9", slug="cafe-2")


class TestOdcs:
    @pytest.fixture
    def shoppers(self, users, terms):
        domain = services.domain_create(name="Retail", slug="retail")
        return services.data_product_create(
            slug="shoppers",
            name="Shoppers",
            domain=domain,
            owner=users["owner"],
            output_ports=[{"name": "shoppers_table", "kind": "table"}],
        )

    def test_business_names_and_definitions_link_columns_to_terms(self, users, shoppers):
        standards.odcs_import_text(ODCS, user=users["owner"])
        links = sorted(GlossaryColumnLink.objects.values_list("column", "term__name", "port"))
        assert links == [
            ("client_id", "customer", "shoppers_table"),
            ("sku", "stock keeping unit", "shoppers_table"),
        ]

    def test_export_names_the_terms_as_authoritative_definitions(self, users, shoppers, terms):
        contract = standards.odcs_import_text(ODCS, user=users["owner"])
        GlossaryColumnLink.objects.filter(column="sku").delete()
        services.glossary_column_link(
            term=terms["sku"], product=shoppers, port="shoppers_table", column="note"
        )
        document = standards.contract_to_odcs(contract)
        properties = {p["name"]: p for p in document["schema"][0]["properties"]}
        assert properties["client_id"]["authoritativeDefinitions"] == [
            {"type": "businessDefinition", "url": "/glossary/customer/"}
        ]
        assert properties["note"]["authoritativeDefinitions"] == [
            {"type": "businessDefinition", "url": "/glossary/stock-keeping-unit/"}
        ]
        # Read back, the exported definitions link the same columns again.
        standards.odcs_import(document, user=users["owner"])
        assert GlossaryColumnLink.objects.filter(column="note").exists()

    def test_a_column_not_in_the_contract_is_refused(self, users, shoppers, terms):
        standards.odcs_import_text(ODCS, user=users["owner"])
        with pytest.raises(ValidationError, match="no column “missing”"):
            services.glossary_column_link(
                term=terms["sku"], product=shoppers, port="shoppers_table", column="missing"
            )


class TestImportExport:
    def test_api_yaml_round_trip(self, staff, terms):
        client = APIClient()
        client.force_authenticate(staff)
        exported = client.get("/api/glossary/export/")
        assert exported.status_code == 200
        document = yaml.safe_load(exported.content)
        assert [t["name"] for t in document["terms"]] == ["customer", "stock keeping unit"]
        GlossaryTerm.objects.all().delete()
        response = client.post(
            "/api/glossary/import/", exported.content, content_type="application/yaml"
        )
        assert response.status_code == 200
        assert response.json() == {"created": 2, "updated": 0}
        assert GlossaryTerm.objects.get(name="customer").synonyms == ["client", "shopper"]

    def test_api_csv_import(self, staff):
        client = APIClient()
        client.force_authenticate(staff)
        body = "name,definition,synonyms,abbreviations,domain\nETA,,arrival forecast,ETA,\n"
        response = client.post("/api/glossary/import/", body, content_type="text/csv")
        assert response.status_code == 200
        assert GlossaryTerm.objects.get().synonyms == ["arrival forecast"]

    def test_api_refuses_an_unreadable_document(self, staff):
        client = APIClient()
        client.force_authenticate(staff)
        response = client.post("/api/glossary/import/", "a: [", content_type="application/yaml")
        assert response.status_code == 400
        assert not GlossaryTerm.objects.exists()

    @pytest.mark.parametrize(
        ("body", "content_type", "message"),
        [
            ("terms: " + "[" * 5000 + "]" * 5000, "application/yaml", "nested"),
            ("a: &a [x, x]\nterms: [{name: t, synonyms: *a}]\n", "application/yaml", "Aliases"),
            ('terms:\n - name: "a\\0b"\n', "application/yaml", "NUL"),
            ("name,synonyms\nok,x\x00y\n", "text/csv", "NUL"),
            # A cell over the csv module's 128 KiB limit was a 500 (csv.Error).
            ('name,definition\nok,"' + "x" * 200_000 + '"\n', "text/csv", "not readable as CSV"),
            (
                "terms:\n - name: fine\n - name: ok\n   synonyms: [the]\n",
                "application/yaml",
                "Term 2",
            ),
        ],
        ids=["deep", "alias", "nul-yaml", "nul-csv", "huge-csv-cell", "second-row-bad"],
    )
    def test_api_refuses_hostile_documents_whole(self, staff, body, content_type, message):
        client = APIClient()
        client.force_authenticate(staff)
        response = client.post("/api/glossary/import/", body, content_type=content_type)
        assert response.status_code == 400
        assert message in str(response.json())
        assert not GlossaryTerm.objects.exists()

    @pytest.mark.parametrize(
        ("row", "message"),
        [
            ("name: 1.10", 'name: Expected text, got 1.1: quote it ("1.1")'),
            ("name: yes", "name: Expected text, got 'true': quote it (\"true\")"),
            ("name: Ok\n   definition: no", "definition: Expected text, got 'false'"),
            ("name: Ok\n   definition: 2026-01-01", 'quote it ("2026-01-01")'),
            ("name: {a: 1}", "name: Expected text."),
            ("name: Ok\n   domain: [sales]", "domain: Expected text."),
        ],
        ids=["number", "true", "false", "date", "mapping", "list"],
    )
    def test_text_given_another_value_is_refused_not_converted(self, staff, row, message):
        """Each was stored as str(value): "1.1", "True", "" (false), "{'a': 1}"."""
        client = APIClient()
        client.force_authenticate(staff)
        body = f"terms:\n - {row}\n"
        response = client.post("/api/glossary/import/", body, content_type="application/yaml")
        assert response.status_code == 400
        assert message in response.json()["terms"][0]
        assert not GlossaryTerm.objects.exists()
        # The same document, quoted, is taken as written.
        quoted = "terms:\n - name: '1.10'\n   definition: 'no'\n"
        response = client.post("/api/glossary/import/", quoted, content_type="application/yaml")
        assert response.status_code == 200
        assert GlossaryTerm.objects.get().definition == "no"

    def test_csv_export_quotes_formulas_and_the_import_reads_them_back(self, staff):
        services.glossary_term_create(
            name='=HYPERLINK("http://x")', definition="+1", synonyms=["@SUM(1)", "plain"]
        )
        client = APIClient()
        client.force_authenticate(staff)
        exported = client.get("/api/glossary/export/?as=csv").content.decode()
        assert "'=HYPERLINK" in exported and "'+1" in exported and "'@SUM(1);plain" in exported
        GlossaryTerm.objects.all().delete()
        response = client.post("/api/glossary/import/", exported, content_type="text/csv")
        assert response.status_code == 200
        term = GlossaryTerm.objects.get()
        assert (term.name, term.definition, term.synonyms) == (
            '=HYPERLINK("http://x")',
            "+1",
            ["@SUM(1)", "plain"],
        )

    @pytest.mark.parametrize(
        ("body", "content_type"),
        [
            ("name,domain\ncustomer,\n", "text/csv"),
            ("Name , Definition\ncustomer,Who buys from us\n", "text/csv"),
            ("terms:\n - name: customer\n", "application/yaml"),
        ],
        ids=["csv-without-the-columns", "csv-without-synonyms", "yaml-without-the-keys"],
    )
    def test_a_field_left_out_keeps_the_terms_value(self, staff, terms, body, content_type):
        """Importing names (and domains) alone emptied every definition, synonym and
        abbreviation of the terms it named: a column or key left out is not an empty one."""
        client = APIClient()
        client.force_authenticate(staff)
        response = client.post("/api/glossary/import/", body, content_type=content_type)
        assert response.status_code == 200, response.content
        assert response.json() == {"created": 0, "updated": 1}
        customer = GlossaryTerm.objects.get(name="customer")
        assert (customer.definition, customer.synonyms) == (
            "Who buys from us",
            ["client", "shopper"],
        )

    def test_a_column_given_empty_still_empties_it(self, staff, terms):
        client = APIClient()
        client.force_authenticate(staff)
        body = "name,definition,synonyms\ncustomer,,\n"
        assert (
            client.post("/api/glossary/import/", body, content_type="text/csv").status_code == 200
        )
        customer = GlossaryTerm.objects.get(name="customer")
        assert (customer.definition, customer.synonyms) == ("", [])

    @pytest.mark.parametrize(
        ("body", "content_type", "message"),
        [
            ("name,definiton\ncustomer,typo\n", "text/csv", "unknown column 'definiton'"),
            (
                "name,definition,definition\ncustomer,one,two\n",
                "text/csv",
                "column 'definition' named twice",
            ),
            ("terms:\n - name: customer\n   definiton: typo\n", "application/yaml", "definiton"),
        ],
        ids=["csv-unknown-column", "csv-column-twice", "yaml-unknown-key"],
    )
    def test_an_unknown_or_repeated_field_is_refused(
        self, staff, terms, body, content_type, message
    ):
        """Each was taken without a word: the typo dropped, the last of two columns kept."""
        client = APIClient()
        client.force_authenticate(staff)
        response = client.post("/api/glossary/import/", body, content_type=content_type)
        assert response.status_code == 400
        assert message in response.json()["terms"][0]
        assert GlossaryTerm.objects.get(name="customer").definition == "Who buys from us"

    def test_the_command_keeps_what_the_file_leaves_out(self, terms, tmp_path):
        path = tmp_path / "names.csv"
        path.write_text("name\ncustomer\n")
        call_command("import_glossary", str(path), stdout=io.StringIO())
        customer = GlossaryTerm.objects.get(name="customer")
        assert (customer.definition, customer.synonyms) == (
            "Who buys from us",
            ["client", "shopper"],
        )

    def test_csv_round_trip_keeps_text_that_starts_with_an_apostrophe(self, staff):
        """ "'=1" was exported as it is and read back as "=1" (the import takes a
        leading apostrophe before a formula for the export's own quote)."""
        texts = {"name": "'=1 apostrophe", "definition": "''+2", "synonyms": ["'-3 minus"]}
        services.glossary_term_create(**texts)
        client = APIClient()
        client.force_authenticate(staff)
        exported = client.get("/api/glossary/export/?as=csv").content.decode()
        GlossaryTerm.objects.all().delete()
        response = client.post("/api/glossary/import/", exported, content_type="text/csv")
        assert response.status_code == 200, response.content
        term = GlossaryTerm.objects.get()
        assert {"name": term.name, "definition": term.definition, "synonyms": term.synonyms} == (
            texts
        )

    def test_csv_round_trip_keeps_a_synonym_that_holds_a_semicolon(self, staff):
        """The export joined a term's synonyms with ";" and the import split on it:
        "gross; before returns" came back as two synonyms. An entry holding ";" or a
        double quote is now written in double quotes inside its cell (a CSV row of its
        own, ";" between entries)."""
        forms = {
            "synonyms": ["gross; before returns", 'the "top" line', "=sales;returns", "plain"],
            "abbreviations": ["G;R", "GR"],
        }
        services.glossary_term_create(name="revenue", **forms)
        client = APIClient()
        client.force_authenticate(staff)
        exported = client.get("/api/glossary/export/?as=csv").content.decode()
        GlossaryTerm.objects.all().delete()
        response = client.post("/api/glossary/import/", exported, content_type="text/csv")
        assert response.status_code == 200, response.content
        term = GlossaryTerm.objects.get()
        assert {"synonyms": term.synonyms, "abbreviations": term.abbreviations} == forms

    @pytest.mark.parametrize(
        ("cell", "forms"),
        [
            ("client; shopper ;buyer", ["client", "shopper", "buyer"]),
            ("client;;shopper;", ["client", "shopper"]),
            ("'@SUM(1);plain", ["@SUM(1)", "plain"]),
            ('a "quoted" word;buyer', ['a "quoted" word', "buyer"]),
            ("", []),
        ],
        ids=["spaces", "empty-entries", "formula", "inner-quotes", "empty"],
    )
    def test_a_csv_written_before_keeps_its_reading(self, staff, cell, forms):
        client = APIClient()
        client.force_authenticate(staff)
        body = f'name,synonyms\ncustomer,"{cell.replace(chr(34), chr(34) * 2)}"\n'
        response = client.post("/api/glossary/import/", body, content_type="text/csv")
        assert response.status_code == 200, response.content
        assert GlossaryTerm.objects.get().synonyms == forms

    def test_yaml_export_is_written_as_every_yaml_export(self, staff, terms):
        """The glossary wrote YAML with its own yaml.safe_dump call (lines folded at 80
        characters); every other export goes through documents.dump_yaml."""
        definition = "Who buys from us, " + "again and again " * 3 + "(eighty chars)"
        assert len(definition) == 80  # with its key, a line of 94 characters
        services.glossary_term_update(
            term=GlossaryTerm.objects.get(name="customer"),
            definition=definition,
            synonyms=[
                "client",
                "shopper: retail",
                "- dash buyer",
                "#hash buyer",
                "1.10",
                "2026-01-01",
            ],
        )
        client = APIClient()
        client.force_authenticate(staff)
        exported = client.get("/api/glossary/export/").content.decode()
        assert f"  definition: {definition}\n" in exported
        before = list(GlossaryTerm.objects.order_by("name").values_list(*ROUND_TRIP_FIELDS))
        GlossaryTerm.objects.all().delete()
        response = client.post("/api/glossary/import/", exported, content_type="application/yaml")
        assert response.status_code == 200, response.content
        after = list(GlossaryTerm.objects.order_by("name").values_list(*ROUND_TRIP_FIELDS))
        assert after == before

    def test_api_export_refuses_an_unknown_format(self, staff):
        client = APIClient()
        client.force_authenticate(staff)
        assert client.get("/api/glossary/export/?as=xml").status_code == 400

    def test_commands_import_the_defaults_and_export_csv(self, db):
        call_command("import_glossary", "--defaults", stdout=io.StringIO())
        assert GlossaryTerm.objects.filter(name="customer").exists()
        out = io.StringIO()
        call_command("export_glossary", "--csv", stdout=out)
        assert out.getvalue().startswith("name,definition,synonyms,abbreviations,domain\r\n")
        assert "stock keeping unit" in out.getvalue()

    def test_the_schema_documents_the_glossary(self, db):
        schema = APIClient().get("/api/schema/").content.decode()
        assert "/api/glossary/{slug}/" in schema
        assert "/api/glossary/import/" in schema


class TestPages:
    @pytest.fixture
    def lab_product(self, users, domains):
        return services.data_product_create(
            slug="tat", name="Sample turnaround", domain=domains["lab"], owner=users["owner"]
        )

    def test_the_list_finds_a_term_by_synonym(self, login, terms):
        html = login("viewer").get("/glossary/?q=shopper").content.decode()
        assert 'href="/glossary/customer/"' in html
        assert "stock keeping unit" not in html

    def test_a_domain_owner_adds_a_term_to_their_domain(self, login, users, lab_product):
        response = login("owner").post(
            "/glossary/new/",
            {
                "name": "turnaround time",
                "synonyms": "TAT time, time to result",
                "abbreviations": "TAT",
                "domain": "lab",
                "data_products": ["tat"],
            },
        )
        assert response.status_code == 302
        term = GlossaryTerm.objects.get(name="turnaround time")
        assert (term.synonyms, term.abbreviations, term.owner) == (
            ["TAT time", "time to result"],
            ["TAT"],
            users["owner"],
        )
        assert [p.slug for p in term.data_products.all()] == ["tat"]
        page = login("viewer").get(response["Location"]).content.decode()
        assert "Sample turnaround" in page

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"name": "Shopper", "synonyms": "the"}, "too common"),
        ],
    )
    def test_a_refused_term_is_shown_on_the_form(self, client, staff, data, message):
        client.force_login(staff)
        response = client.post("/glossary/new/", data)
        assert response.status_code == 200
        assert message in response.content.decode()
        assert not GlossaryTerm.objects.exists()

    @pytest.mark.parametrize(
        ("role", "domain", "status"),
        [("viewer", "lab", 403), ("owner", "", 403), ("owner", "finance", 403)],
    )
    def test_others_may_not_add_terms(self, login, lab_product, role, domain, status):
        response = login(role).post("/glossary/new/", {"name": "x", "domain": domain})
        assert response.status_code == status
        assert not GlossaryTerm.objects.exists()

    def test_edit_and_delete_by_the_domain_owner_only(self, login, lab_product, domains):
        term = services.glossary_term_create(name="analyser", domain=domains["lab"])
        assert login("viewer").get(f"/glossary/{term.slug}/edit/").status_code == 403
        assert login("viewer").post(f"/glossary/{term.slug}/delete/").status_code == 403
        response = login("owner").post(
            f"/glossary/{term.slug}/edit/",
            {"name": "analyser", "synonyms": "instrument", "domain": "lab"},
        )
        assert response.status_code == 302
        assert GlossaryTerm.objects.get().synonyms == ["instrument"]
        assert login("owner").post(f"/glossary/{term.slug}/delete/").status_code == 302
        assert not GlossaryTerm.objects.exists()

    def test_saving_a_terms_form_keeps_a_synonym_holding_a_comma_or_semicolon(
        self, login, lab_product, domains
    ):
        # The CSV keeps "gross; before returns" whole; the edit form showed it as
        # "gross; before returns, net" and saving split it on the ";" (and on ",").
        synonyms = ["gross; before returns", "sales, net", '6" pipe', "turnover"]
        term = services.glossary_term_create(
            name="revenue", synonyms=synonyms, domain=domains["lab"]
        )
        owner = login("owner")
        page = owner.get(f"/glossary/{term.slug}/edit/").content.decode()
        shown = '"gross; before returns", "sales, net", "6"" pipe", turnover'
        assert f'value="{escape(shown)}"' in page
        response = owner.post(
            f"/glossary/{term.slug}/edit/",
            {"name": "revenue", "definition": "Money in.", "synonyms": shown, "domain": "lab"},
        )
        assert response.status_code == 302
        assert GlossaryTerm.objects.get().synonyms == synonyms

    @pytest.mark.parametrize(
        ("typed", "read"),
        [
            ("client; shopper, buyer", ["client", "shopper", "buyer"]),
            ('"gross; net", client', ["gross; net", "client"]),
            ('  "a, b"  ;c', ["a, b", "c"]),
            ('"unclosed, to the end', ["unclosed, to the end"]),
            ('""', []),
            ('"', []),
            (";,;", []),
            ('6" pipe, tube', ['6" pipe', "tube"]),
            ('"say ""hi""", x', ['say "hi"', "x"]),
        ],
    )
    def test_a_forms_box_reads_as_its_form_writes_it(self, typed, read):
        from valuetree.forms import term_forms_text, term_forms_values

        assert term_forms_values(typed) == read
        assert term_forms_values(term_forms_text(read)) == read

    def test_export_downloads_csv(self, login, terms):
        response = login("viewer").get("/glossary/export/?as=csv")
        assert response["Content-Disposition"] == 'attachment; filename="glossary.csv"'
        assert b"customer,Who buys from us,client;shopper" in response.content


@pytest.mark.django_db
class TestColumnLinks:
    """A term's contract columns: listed on its page and at
    /api/glossary/{slug}/columns/, linked and unlinked by the term's editors and by
    the product's owner, in the browser and the API."""

    @pytest.fixture
    def shoppers(self, users, terms):
        domain = services.domain_create(name="Retail", slug="retail")
        product = services.data_product_create(
            slug="shoppers",
            name="Shoppers",
            domain=domain,
            owner=users["owner"],
            output_ports=[{"name": "shoppers_table", "kind": "table"}],
        )
        standards.odcs_import_text(ODCS, user=users["owner"])  # links client_id, sku
        return product

    def test_the_term_page_lists_its_columns_with_links(self, login, shoppers, terms):
        page = login("viewer").get("/glossary/customer/").content.decode()
        assert 'href="/data-products/shoppers/"' in page
        assert "<code>shoppers_table.client_id</code>" in page
        # A viewer neither owns the product nor edits the company-wide term.
        assert "Unlink" not in page and "Link a contract column" not in page

    def test_the_product_owner_links_and_unlinks_a_column_in_the_browser(
        self, login, shoppers, terms
    ):
        client = login("owner")  # owns the product; the term is company-wide (staff's)
        page = client.get("/glossary/customer/").content.decode()
        assert '<option value="shoppers/shoppers_table/note">' in page
        assert 'value="shoppers/shoppers_table/client_id"' not in page  # linked already
        response = client.post(
            "/glossary/customer/columns/", {"column": "shoppers/shoppers_table/note"}
        )
        assert response.status_code == 302
        link = GlossaryColumnLink.objects.get(term=terms["customer"], column="note")
        response = client.post(f"/glossary/customer/columns/{link.pk}/delete/")
        assert response.status_code == 302
        assert not GlossaryColumnLink.objects.filter(pk=link.pk).exists()

    def test_a_column_not_in_the_contract_is_refused_in_the_browser(self, login, shoppers, terms):
        client = login("owner")
        response = client.post(
            "/glossary/customer/columns/",
            {"column": "shoppers/shoppers_table/missing"},
            follow=True,
        )
        assert "no column “missing”" in response.content.decode()
        assert not GlossaryColumnLink.objects.filter(column="missing").exists()

    def test_others_may_not_link_or_unlink(self, login, shoppers, terms):
        link = GlossaryColumnLink.objects.get(column="client_id")
        client = login("editor")
        response = client.post(
            "/glossary/customer/columns/", {"column": "shoppers/shoppers_table/note"}
        )
        assert response.status_code == 403
        assert client.post(f"/glossary/customer/columns/{link.pk}/delete/").status_code == 403
        assert GlossaryColumnLink.objects.count() == 2

    def test_the_api_lists_links_and_unlinks(self, users, shoppers, terms):
        client = APIClient()
        client.force_authenticate(users["owner"])
        listed = client.get("/api/glossary/customer/columns/").json()["results"]
        assert [(c["data_product"], c["port"], c["column"]) for c in listed] == [
            ("shoppers", "shoppers_table", "client_id")
        ]
        body = {"data_product": "shoppers", "port": "shoppers_table", "column": "note"}
        first = client.post("/api/glossary/customer/columns/", body, format="json")
        again = client.post("/api/glossary/customer/columns/", body, format="json")
        assert (first.status_code, again.status_code) == (201, 201)
        assert first.json()["id"] == again.json()["id"]  # linking again changes nothing
        response = client.delete(f"/api/glossary/customer/columns/{first.json()['id']}/")
        assert response.status_code == 204
        assert GlossaryColumnLink.objects.filter(term=terms["customer"]).count() == 1

    def test_the_api_names_what_is_wrong(self, users, shoppers, terms):
        client = APIClient()
        client.force_authenticate(users["owner"])
        url = "/api/glossary/customer/columns/"
        response = client.post(url, {"data_product": "shoppers", "port": "nope", "column": "x"})
        assert response.status_code == 400 and "port" in response.json()
        response = client.post(url, {"data_product": "shoppers", "port": "shoppers_table"})
        assert response.status_code == 400 and "column" in response.json()
        other = services.glossary_term_create(name="basket")
        response = client.delete(
            f"/api/glossary/{other.slug}/columns/{GlossaryColumnLink.objects.first().pk}/"
        )
        assert response.status_code == 404  # a link of another term

    def test_a_linked_column_counts_in_the_products_embedding(self, users, shoppers, terms):
        services.glossary_column_link(
            term=terms["sku"], product=shoppers, port="shoppers_table", column="note"
        )
        services.data_product_embeddings_refresh()
        assert terms["sku"].pk in DataProductEmbedding.objects.get(pk=shoppers.pk).term_ids
