"""The discovery board in a real browser: register as an early consumer, and see the
duplicate warning while describing a product like one that exists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from valuetree import services
from valuetree.models import ConsumerInterest, DataProduct, Notification

# Screenshots taken on purpose (to look at); test-artifacts/browser/ holds failures only.
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "screenshots"


def test_an_editor_registers_interest_and_is_warned_of_a_duplicate(
    users,
    tree,
    page: Page,
    live_server: LiveServer,
    login: Callable[[Page, str, str], None],
):
    lab = services.domain_create(name="Laboratory", slug="lab")
    finance = services.domain_create(name="Finance", slug="finance")
    services.data_product_create(
        name="Patient sample turnaround",
        slug="sample-turnaround",
        domain=lab,
        owner=users["viewer"],
        purpose="Time from sample draw to validated result, per lab and test.",
        stage="design",
        output_ports=[{"name": "turnaround-daily", "kind": "table", "location": ""}],
    )
    services.data_product_create(
        name="Invoice ledger",
        slug="invoice-ledger",
        domain=finance,
        owner=users["owner"],
        purpose="Every invoice line with payer and amount.",
        stage="discovery",
    )
    goal = services.node_create(tree=tree, parent=None, title="Faster results")
    bet = services.node_create(tree=tree, parent=goal, title="Automate triage")
    initiative = services.node_create(tree=tree, parent=bet, title="Alert late samples")

    login(page, "editor", "pw-editor")
    page.goto("/data-products/board/")
    card = page.locator("#board-sample-turnaround")
    expect(card).to_contain_text("Time from sample draw to validated result")
    expect(card).to_contain_text("turnaround-daily")
    expect(page.locator("#board-invoice-ledger")).to_be_visible()
    # The search narrows the board as one types (htmx), leaving the other card out.
    page.get_by_label("Search").fill("turnaround")
    expect(page.locator("#board-invoice-ledger")).to_have_count(0)

    card.get_by_role("link", name="Register interest").click()
    page.get_by_label("Team").fill("Lab operations")
    page.get_by_label("Initiative").select_option(label=f"{tree.name} › {initiative.title}")
    page.get_by_label("Purpose").fill("Page the on-call lead when a sample is late.")
    page.get_by_role("button", name="Register interest").click()

    expect(page).to_have_url(f"{live_server.url}/data-products/sample-turnaround/")
    interests = page.locator("#interests")
    expect(interests).to_contain_text("Lab operations")
    expect(interests.get_by_role("link", name="Alert late samples")).to_be_visible()
    interest = ConsumerInterest.objects.get()
    assert (interest.node, interest.team, interest.user) == (
        initiative,
        "Lab operations",
        users["editor"],
    )
    # The other side: the initiative shows what it waits for.
    page.goto(f"/nodes/{initiative.pk}/")
    expect(page.locator("#node-interests")).to_contain_text("Patient sample turnaround")

    # Describing a product like it warns before anything is saved.
    page.goto("/data-products/new/")
    page.locator("#id_name").fill("Sample turnaround times")
    page.locator("#id_purpose").fill("Time from sample draw to result per laboratory.")
    warning = page.locator("#duplicate-warning")
    expect(warning).to_be_visible()
    expect(warning.locator("tbody tr").first).to_contain_text("Patient sample turnaround")
    expect(warning).not_to_contain_text("Invoice ledger")
    assert not DataProduct.objects.filter(name="Sample turnaround times").exists()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "duplicate-warning.png"), full_page=True)

    page.locator("#id_slug").fill("turnaround-times")
    page.locator("#id_domain").select_option(label="Finance")
    page.get_by_role("button", name="Create data product").click()
    expect(page).to_have_url(f"{live_server.url}/data-products/turnaround-times/")
    expect(page.locator("#similar-products")).to_contain_text("Patient sample turnaround")
    # The owner of the existing product was told of both: the waiting team, the twin.
    assert set(
        Notification.objects.filter(recipient=users["viewer"]).values_list("kind", flat=True)
    ) == {"interest", "similar_product"}
    told = Notification.objects.get(recipient=users["viewer"], kind="similar_product")
    assert told.related_product.slug == "sample-turnaround"
    assert told.data_product.slug == "turnaround-times"
