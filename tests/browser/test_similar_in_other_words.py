"""Typing a product described in other words shows its twin before anything is saved,
with how likely it is the same product and why."""

from __future__ import annotations

import re
from collections.abc import Callable

import yaml
from django.conf import settings
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from valuetree import services
from valuetree.models import DataContract, DataProduct, OutputPort


def test_a_twin_in_other_words_is_shown_while_typing(
    users, page: Page, live_server: LiveServer, login: Callable[[Page, str, str], None]
):
    glossary = settings.BASE_DIR / "valuetree" / "demo" / "glossary.yaml"
    services.glossary_import(rows=yaml.safe_load(glossary.read_text())["terms"], by=None)
    retail = services.domain_create(name="Retail", slug="retail")
    services.domain_create(name="Marketing", slug="marketing")
    twin = services.data_product_create(
        name="Customer 360",
        slug="customer-360",
        domain=retail,
        owner=users["viewer"],
        purpose="Everything we know about each customer: contact details, purchases, "
        "loyalty status and service history in one place.",
        output_ports=[{"name": "customer_profiles", "kind": "table"}],
    )
    DataContract.objects.create(
        output_port=OutputPort.objects.get(data_product=twin),
        contract_id="customer-360-v1",
        schema=[{"name": "profiles", "properties": [{"name": "customer_id"}]}],
    )
    services.data_product_create(
        name="Warehouse energy use",
        slug="warehouse-energy",
        domain=retail,
        purpose="Electricity used by each warehouse per day.",
    )
    services.data_product_embeddings_refresh()

    login(page, "editor", "pw-editor")
    page.goto("/data-products/new/")
    # Proposed in another domain than Customer 360's (the check is sent the domain).
    page.locator("#id_domain").select_option(label="Marketing")
    page.locator("#id_name").fill("Unified client profile")
    page.locator("#id_purpose").fill(
        "A single view of every client: how to reach them, what they bought, their "
        "loyalty tier and their contacts with our service desk."
    )
    warning = page.locator("#duplicate-warning")
    expect(warning).to_be_visible()
    first = warning.locator("tbody tr").first
    expect(first).to_contain_text("Customer 360")
    # Issue 17's "done": described wholly in other words, it is very likely the same.
    expect(first).to_contain_text(re.compile(r"0\.\d\d+ very likely the same product"))
    expect(first).to_contain_text("shared glossary terms: customer")
    expect(warning).not_to_contain_text("Warehouse energy use")
    assert not DataProduct.objects.filter(name="Unified client profile").exists()
