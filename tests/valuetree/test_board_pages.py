"""The open catalogue in the browser, through Django's test client: the discovery
board and its orphans, the similar-product check, lifecycle moves and duplicates on
the product page, early consumers, notifications, and what an initiative waits for."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.factories import make_user
from tests.valuetree.test_catalogue_pages import field_block
from valuetree import services
from valuetree.models import (
    ConsumerInterest,
    DataContract,
    DataProduct,
    DataProductLink,
    LifecycleTransition,
    Notification,
    NotificationKind,
)

BOARD = "/data-products/board/"
SIMILAR = "/data-products/similar/"


@pytest.fixture
def shape(tree):
    goal = services.node_create(tree=tree, parent=None, title="Faster results")
    bet = services.node_create(tree=tree, parent=goal, title="Automate triage")
    initiative = services.node_create(tree=tree, parent=bet, title="Triage bot")
    return {"goal": goal, "bet": bet, "initiative": initiative}


@pytest.fixture
def products(users, domains):
    """Two planned look-alikes (one per domain), a live product and one in build."""
    turnaround = services.data_product_create(
        name="Sample turnaround",
        slug="sample-turnaround",
        domain=domains["lab"],
        owner=users["owner"],
        owning_team="Lab platform",
        purpose="Time from sample draw to validated result",
        stage="discovery",
        output_ports=[{"name": "turnaround_daily", "kind": "table"}],
        by=users["owner"],
    )
    times = services.data_product_create(
        name="Sample turnaround times",
        slug="turnaround-times",
        domain=domains["finance"],
        owner=users["editor"],
        purpose="Time from sample draw to reported result",
        stage="design",
        output_ports=[{"name": "turnaround_weekly", "kind": "api"}],
        by=users["editor"],
    )
    invoices = services.data_product_create(
        name="Invoices",
        slug="invoices",
        domain=domains["finance"],
        owner=users["viewer"],
        purpose="Revenue per test",
        stage="live",
        output_ports=[{"name": "invoices", "kind": "table"}],
    )
    headcount = services.data_product_create(
        name="Headcount",
        slug="headcount",
        domain=domains["finance"],
        owner=users["viewer"],
        purpose="Employees per month",
        stage="build",
    )
    return {
        "sample-turnaround": turnaround,
        "turnaround-times": times,
        "invoices": invoices,
        "headcount": headcount,
    }


@pytest.fixture
def secret(users):
    """A tree nobody of ``users`` may read."""
    tree = services.tree_create(owner=make_user("ceo"), name="Secret", slug="secret", vision="V")
    goal = services.node_create(tree=tree, parent=None, title="Acquire a lab")
    bet = services.node_create(tree=tree, parent=goal, title="Buy cheaply")
    initiative = services.node_create(tree=tree, parent=bet, title="Hostile bid")
    return {"tree": tree, "goal": goal, "initiative": initiative}


def cards(html: str) -> list[str]:
    """The slugs of the board's cards, in order."""
    return re.findall(r'<li class="board-card" id="board-([\w-]+)">', html)


def card(html: str, slug: str) -> str:
    """One card's text, tags removed and whitespace collapsed."""
    match = re.search(rf'<li class="board-card" id="board-{slug}">(.*?)</li>', html, re.S)
    assert match, f"no card {slug}"
    return text(match.group(1))


def section(html: str, section_id: str) -> str:
    match = re.search(rf'<section[^>]*id="{section_id}">(.*?)</section>', html, re.S)
    assert match, f"no section {section_id}"
    return match.group(1)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def scores(html: str) -> list[tuple[str, str]]:
    """The rows of a similar-products table: (slug, score), best first."""
    return re.findall(
        r'<span class="score">([\d.]+)</span>[^<]*(?:<span class="similar-label[^"]*">[^<]*</span>)?'
        r'</td>\s*<td><a href="/data-products/([\w-]+)/">',
        html,
    )


def messages_of(html: str) -> list[str]:
    return re.findall(r'<p class="message message--\w+" role="status">([^<]*)</p>', html)


def options(html: str, select_id: str) -> list[str]:
    match = re.search(rf'<select[^>]* id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    assert match, f"no select {select_id}"
    return re.findall(r'<option value="([^"]*)"', match.group(1))


def stages() -> dict[str, str]:
    return dict(DataProduct.objects.values_list("slug", "stage"))


# --- Access ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", BOARD),
        ("get", "/data-products/sample-turnaround/interest/"),
        ("post", "/data-products/sample-turnaround/interest/"),
        ("get", "/notifications/"),
        ("get", "/notifications/badge/"),
        ("post", "/notifications/read/"),
        ("post", SIMILAR),
        ("post", "/data-products/sample-turnaround/stage/"),
        ("post", "/data-products/sample-turnaround/duplicate/"),
        ("post", "/data-products/sample-turnaround/interest/1/withdraw/"),
    ],
)
def test_anonymous_is_sent_to_login(client, products, method, url):
    before = (stages(), ConsumerInterest.objects.count(), Notification.objects.count())
    data = {"stage": "build", "original": "invoices", "then": "retire"} if method == "post" else {}
    response = getattr(client, method)(url, data)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"
    assert (stages(), ConsumerInterest.objects.count(), Notification.objects.count()) == before


# --- Board -----------------------------------------------------------------------


@pytest.mark.django_db
def test_board_shows_only_planned_products_with_what_they_are_for(
    login, users, shape, secret, products
):
    product = products["sample-turnaround"]
    services.data_product_link(product=product, node=shape["initiative"], role="uses")
    services.data_product_link(product=product, node=secret["goal"], role="uses")
    services.consumer_interest_register(
        product=product,
        node=shape["initiative"],
        user=users["editor"],
        team="Triage squad",
        purpose="Route urgent samples first",
    )
    response = login("viewer").get(BOARD)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Discovery board</h1>" in html
    # Discovery and design only, by name; build and live stay in the catalogue.
    assert cards(html) == ["sample-turnaround", "turnaround-times"]
    assert "2 planned data products" in html
    assert card(html, "sample-turnaround") == (
        "Sample turnaround Discovery Laboratory · owner owner (Lab platform) "
        "Time from sample draw to validated result "
        "Planned output ports turnaround_daily (table) "
        "Serves Triage bot (Initiative, Tree) and 1 node in trees you cannot see "
        "Waiting Triage squad — Route urgent samples first Register interest"
    )
    assert f'<a href="/nodes/{shape["initiative"].pk}/">Triage bot</a>' in html
    assert "Acquire a lab" not in html
    assert "Secret" not in html
    assert card(html, "turnaround-times") == (
        "Sample turnaround times Design Finance · owner editor "
        "Time from sample draw to reported result "
        "Planned output ports turnaround_weekly (api) "
        "Serves no initiative yet Waiting nobody yet Register interest"
    )
    assert 'href="/data-products/turnaround-times/interest/"' in html


@pytest.mark.django_db
def test_board_counts_several_hidden_nodes_without_naming_them(login, secret, products):
    product = products["turnaround-times"]
    services.data_product_link(product=product, node=secret["goal"], role="uses")
    services.data_product_link(product=product, node=secret["initiative"], role="produces")
    html = login("viewer").get(BOARD).content.decode()
    assert "Serves 2 nodes in trees you cannot see Waiting" in card(html, "turnaround-times")
    assert "Hostile bid" not in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("where", "serves"),
    [
        ("visible", "Serves Triage bot (Initiative, Tree) Waiting"),
        ("hidden", "Serves 1 node in trees you cannot see Waiting"),
    ],
)
def test_board_counts_a_node_linked_in_both_roles_once(
    login, shape, secret, products, where, serves
):
    node = shape["initiative"] if where == "visible" else secret["initiative"]
    for role in ("produces", "uses"):
        services.data_product_link(product=products["turnaround-times"], node=node, role=role)
    html = login("viewer").get(BOARD).content.decode()
    assert serves in card(html, "turnaround-times")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["sample-turnaround", "turnaround-times"]),
        ("domain=lab", ["sample-turnaround"]),
        ("domain=finance", ["turnaround-times"]),
        ("stage=design", ["turnaround-times"]),
        ("stage=discovery&domain=finance", []),
        ("q=VALIDATED", ["sample-turnaround"]),  # purpose, any case
        ("q=weekly", ["turnaround-times"]),  # a port name
        ("q=lab+platform", ["sample-turnaround"]),  # the owning team
        ("q=revenue", []),  # Invoices matches, but it is live
    ],
)
def test_board_filters(login, products, query, expected):
    response = login("outsider").get(f"{BOARD}?{query}")
    assert response.status_code == 200
    assert cards(response.content.decode()) == expected


@pytest.mark.django_db
def test_a_long_board_search_is_taken_as_every_search_box_takes_it(login, products):
    """Over 200 characters the board's own cap dropped the search: every card showed."""
    response = login("outsider").get(BOARD, {"q": "VALIDATED" + " " * 300 + "not searched"})
    assert response.status_code == 200
    assert cards(response.content.decode()) == ["sample-turnaround"]


@pytest.mark.django_db
def test_board_says_when_no_card_matches(login, products):
    html = login("outsider").get(f"{BOARD}?q=nothing+like+this").content.decode()
    assert "0 planned data products match the filters" in html
    assert "No planned data product matches these filters." in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field_id", "expected"),
    [
        ("domain=nope", "id_domain", ["sample-turnaround", "turnaround-times"]),
        # Live is a stage, but not one of the board's.
        ("stage=live", "id_stage", ["sample-turnaround", "turnaround-times"]),
        ("stage=nope&domain=lab", "id_stage", ["sample-turnaround"]),
    ],
)
def test_board_reports_an_unknown_filter_value(login, products, query, field_id, expected):
    response = login("outsider").get(f"{BOARD}?{query}")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Select a valid choice" in field_block(html, field_id)
    assert cards(html) == expected


@pytest.mark.django_db
def test_board_htmx_gets_only_the_cards(login, products):
    response = login("outsider").get(f"{BOARD}?domain=finance", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert cards(html) == ["turnaround-times"]
    assert "1 planned data product matches the filters" in html
    assert "<html" not in html
    assert "<h1>" not in html
    assert 'id="id_domain"' not in html
    assert 'id="orphans"' not in html
    assert "HX-Request" in response["Vary"]


@pytest.mark.django_db
def test_work_under_a_killed_bet_neither_relies_on_nor_keeps_a_product(
    login, users, tree, shape, domains
):
    """The bet was killed: its initiative still stood on the board as live work on a
    deprecated product, and kept the product it used off the orphans."""
    old = services.data_product_create(
        name="Old feed", slug="old-feed", domain=domains["lab"], stage="deprecated"
    )
    kept = services.data_product_create(name="Kept alive", slug="kept", domain=domains["lab"])
    services.data_product_link(product=old, node=shape["initiative"], role="uses")
    services.data_product_link(product=kept, node=shape["initiative"], role="uses")
    services.node_update(node=shape["bet"], status="killed")

    html = login("viewer").get(BOARD).content.decode()

    assert "No initiative you can see relies on a deprecated or retired product." in html
    assert "/data-products/kept/" in section(html, "orphans")


@pytest.mark.django_db
def test_board_lists_orphans_and_initiatives_on_ending_products(
    login, users, tree, shape, domains, products
):
    nightly = services.data_product_create(
        name="Nightly extract", slug="nightly", domain=domains["lab"], stage="deprecated"
    )
    services.data_product_mark_duplicate(
        product=nightly, original=products["invoices"], by=users["owner"]
    )
    old = services.data_product_create(
        name="Old feed", slug="old-feed", domain=domains["lab"], stage="deprecated"
    )
    second = services.node_create(tree=tree, parent=shape["bet"], title="Billing bot")
    services.data_product_link(product=nightly, node=shape["initiative"], role="uses")
    services.data_product_link(product=old, node=second, role="uses")
    # Serving a live initiative keeps a product off the orphans; a goal does not.
    services.data_product_link(product=products["invoices"], node=second, role="uses")
    services.data_product_link(product=products["headcount"], node=shape["goal"], role="uses")

    html = login("viewer").get(BOARD).content.decode()
    orphans = section(html, "orphans")
    assert re.findall(r'<li><a href="/data-products/([\w-]+)/">', orphans) == [
        "headcount",
        "turnaround-times",
        "sample-turnaround",
    ]
    assert text(re.search(r"<li>(.*?)</li>", orphans, re.S).group(1)) == (
        "Headcount Build Finance · viewer"
    )
    rows = re.findall(r"<tr>(.*?)</tr>", section(html, "orphans"), re.S)
    assert [text(row) for row in rows[1:]] == [
        "Billing bot Tree Old feed Deprecated —",
        "Triage bot Tree Nightly extract Deprecated Invoices",
    ]
    assert '<td><a href="/data-products/invoices/">Invoices</a></td>' in orphans

    # Someone who cannot read the tree sees the orphans but not its initiatives.
    html = login("outsider").get(BOARD).content.decode()
    assert "Triage bot" not in html
    assert "No initiative you can see relies on a deprecated or retired product." in html


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "fragment"])
@pytest.mark.parametrize("size", [2, 20])
def test_board_query_count_is_pinned(
    login, users, tree, secret, domains, size, htmx, django_assert_max_num_queries
):
    goal = services.node_create(tree=tree, parent=None, title="Goal")
    bet = services.node_create(tree=tree, parent=goal, title="Bet")
    for index in range(size):
        initiative = services.node_create(tree=tree, parent=bet, title=f"Initiative {index}")
        product = services.data_product_create(
            name=f"Product {index}",
            slug=f"product-{index}",
            domain=domains["lab" if index % 2 else "finance"],
            owner=users["owner"],
            stage="discovery" if index % 2 else "design",
            output_ports=[{"name": "a", "kind": "table"}, {"name": "b", "kind": "api"}],
        )
        services.data_product_link(product=product, node=initiative, role="uses")
        services.data_product_link(product=product, node=secret["goal"], role="uses")
        services.consumer_interest_register(
            product=product, node=initiative, user=users["editor"], team="T", purpose="P"
        )
        ending = services.data_product_create(
            name=f"Ending {index}", slug=f"ending-{index}", domain=domains["lab"], stage="retired"
        )
        services.data_product_link(product=ending, node=initiative, role="uses")
        services.data_product_create(
            name=f"Orphan {index}", slug=f"orphan-{index}", domain=domains["lab"]
        )
    client = login("viewer")
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    # Session, user, the products, their ports, links and interests; the page adds the
    # domain choices, the orphans (and their ports) and the ending links.
    with django_assert_max_num_queries(6 if htmx else 10):
        response = client.get(BOARD, **headers)
    html = response.content.decode()
    assert len(cards(html)) == 2 * size  # the orphans are in discovery too
    assert html.count("1 node in trees you cannot see") == size


# --- Similar check ---------------------------------------------------------------


@pytest.mark.django_db
def test_similar_check_warns_of_the_closest_product_first(login, products):
    before = (DataProduct.objects.count(), Notification.objects.count())
    response = login("outsider").post(
        SIMILAR,
        {
            "name": "Sample turnaround",
            "purpose": "Time from sample draw to validated result",
            "ports-0-name": "turnaround_daily",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="duplicate-warning"' in html
    assert "<html" not in html
    assert scores(html) == [("1.00", "sample-turnaround"), ("0.72", "turnaround-times")]
    assert (DataProduct.objects.count(), Notification.objects.count()) == before


@pytest.mark.django_db
def test_similar_check_leaves_out_the_product_being_edited(login, products):
    response = login("owner").post(
        SIMILAR,
        {
            "name": "Sample turnaround",
            "purpose": "Time from sample draw to validated result",
            "ports-0-name": "turnaround_daily",
            "product": str(products["sample-turnaround"].pk),
        },
    )
    assert scores(response.content.decode()) == [("0.72", "turnaround-times")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [{"name": "Parking permits", "purpose": "Who parks where"}, {"name": ""}, {}],
    ids=["unlike", "blank", "nothing"],
)
def test_similar_check_says_when_nothing_is_similar(login, products, data):
    response = login("outsider").post(SIMILAR, data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "No similar data product found." in html
    assert scores(html) == []


@pytest.mark.django_db
def test_similar_check_ignores_a_product_id_that_is_not_a_number(login, products):
    response = login("owner").post(SIMILAR, {"name": "Sample turnaround", "product": "²"})
    assert response.status_code == 200
    assert [slug for _, slug in scores(response.content.decode())] == [
        "sample-turnaround",
        "turnaround-times",
    ]


@pytest.mark.django_db
def test_similar_check_weighs_the_chosen_domains_own_products_less(login, products, domains):
    typed = {
        "name": "Sample turnaround",
        "purpose": "Time from sample draw to validated result",
        "ports-0-name": "turnaround_daily",
    }
    # Typed in the finance domain: the lab's identical product scores 0.7 of 1.00,
    # and the finance look-alike 0.7 of its 0.72.
    in_finance = login("outsider").post(SIMILAR, {**typed, "domain": str(domains["finance"].pk)})
    assert scores(in_finance.content.decode()) == [
        ("1.00", "sample-turnaround"),
        ("0.50", "turnaround-times"),
    ]
    in_lab = login("outsider").post(SIMILAR, {**typed, "domain": str(domains["lab"].pk)})
    assert scores(in_lab.content.decode()) == [
        ("0.72", "turnaround-times"),
        ("0.70", "sample-turnaround"),
    ]
    # A domain that is not an id is no domain.
    assert scores(login("outsider").post(SIMILAR, {**typed, "domain": "x"}).content.decode()) == [
        ("1.00", "sample-turnaround"),
        ("0.72", "turnaround-times"),
    ]


@pytest.mark.django_db
def test_similar_check_answers_only_post(login):
    assert login("outsider").get(SIMILAR).status_code == 405


# --- Product page ----------------------------------------------------------------


@pytest.mark.django_db
def test_detail_lists_similar_products_with_their_scores(login, products):
    html = login("outsider").get("/data-products/sample-turnaround/").content.decode()
    similar = section(html, "similar-products")
    assert '<h2 id="similar-title">Similar data products</h2>' in similar
    assert scores(similar) == [("0.72", "turnaround-times")]
    assert "<td>Finance</td>" in similar
    assert '<span class="badge stage stage--design">Design</span>' in similar
    assert "<td>editor</td>" in similar


@pytest.mark.django_db
def test_detail_of_a_product_like_no_other_has_no_similar_section(login, products):
    html = login("outsider").get("/data-products/invoices/").content.decode()
    assert 'id="similar-products"' not in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "can_change"),
    [("owner", True), ("staff", True), ("editor", False), ("viewer", False), ("outsider", False)],
)
def test_duplicate_and_transition_forms_only_for_the_owner_and_staff(
    login, users, products, who, can_change
):
    user = make_user("staff", is_staff=True) if who == "staff" else users[who]
    html = login(user).get("/data-products/sample-turnaround/").content.decode()
    assert 'id="similar-products"' in html  # everyone sees the look-alikes
    assert ('action="/data-products/sample-turnaround/duplicate/"' in html) is can_change
    assert ('action="/data-products/sample-turnaround/stage/"' in html) is can_change
    if can_change:
        assert options(html, "id_original") == ["turnaround-times"]
        assert options(html, "id_then") == ["keep", "merge", "retire"]


@pytest.mark.django_db
def test_detail_of_a_duplicate_names_its_original_instead_of_offering_the_form(
    login, users, products
):
    services.data_product_mark_duplicate(
        product=products["sample-turnaround"],
        original=products["turnaround-times"],
        by=users["owner"],
    )
    html = login("owner").get("/data-products/sample-turnaround/").content.decode()
    assert 'id="similar-products"' not in html
    assert 'action="/data-products/sample-turnaround/duplicate/"' not in html
    assert (
        'A duplicate of\n  <a href="/data-products/turnaround-times/">Sample turnaround times</a>.'
    ) in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("slug", "who", "moves"),
    [
        ("sample-turnaround", "owner", ["design", "build", "live", "deprecated", "retired"]),
        ("turnaround-times", "editor", ["discovery", "build", "live", "deprecated", "retired"]),
        ("headcount", "viewer", ["discovery", "design", "live", "deprecated", "retired"]),
        ("invoices", "viewer", ["deprecated", "retired"]),
    ],
)
def test_transition_form_offers_only_the_allowed_moves(login, products, slug, who, moves):
    html = login(who).get(f"/data-products/{slug}/").content.decode()
    assert options(html, "id_stage") == moves


@pytest.mark.django_db
def test_a_retired_product_offers_no_move(login, users, domains):
    services.data_product_create(
        name="Gone", slug="gone", domain=domains["lab"], owner=users["owner"], stage="retired"
    )
    html = login("owner").get("/data-products/gone/").content.decode()
    assert 'action="/data-products/gone/stage/"' not in html


@pytest.mark.django_db
def test_lifecycle_lists_the_creation_and_each_move_with_who(login, users, products):
    product = products["sample-turnaround"]
    services.data_product_transition(
        product=product, to_stage="design", by=users["owner"], note="Scoped with the lab"
    )
    services.data_product_transition(product=product, to_stage="build", by=None)
    lifecycle = section(
        login("outsider").get("/data-products/sample-turnaround/").content.decode(), "lifecycle"
    )
    items = [text(item) for item in re.findall(r"<li>(.*?)</li>", lifecycle, re.S)]
    assert [re.sub(r"^[\d-]+ [\d:]+ : ", "", item) for item in items] == [
        "created in Discovery by owner",
        "Discovery → Design by owner — Scoped with the lab",
        "Design → Build by the system",
    ]


@pytest.mark.django_db
def test_contract_column_shows_the_port_contract(login, users, domains):
    product = services.data_product_create(
        name="Orders",
        slug="orders",
        domain=domains["finance"],
        owner=users["owner"],
        stage="live",
        output_ports=[{"name": "orders", "kind": "table"}, {"name": "orders-api", "kind": "api"}],
    )
    DataContract.objects.create(
        output_port=product.output_ports.get(name="orders"),
        contract_id="orders-contract",
        name="Order lines",
        version="2.1.0",
        status="active",
        servers=[
            {"server": "prod", "type": "postgres"},
            {"server": "lake", "type": "s3"},
        ],
    )
    DataContract.objects.create(
        output_port=product.output_ports.get(name="orders-api"), contract_id="orders-api-v1"
    )
    html = login("outsider").get("/data-products/orders/").content.decode()
    assert (
        '<td><a href="/api/data-products/orders/ports/orders/contract/">Order lines</a> '
        '<span class="muted">v2.1.0, active; servers: prod (postgres) lake (s3)</span></td>'
    ) in html
    # An unnamed contract goes by its id.
    assert (
        '<td><a href="/api/data-products/orders/ports/orders-api/contract/">orders-api-v1</a> '
        '<span class="muted">v1.0.0, draft</span></td>'
    ) in html


@pytest.mark.django_db
def test_a_port_without_a_contract_shows_a_dash(login, products):
    html = login("outsider").get("/data-products/invoices/").content.decode()
    assert "<tr><td>invoices</td><td>table</td><td>—</td>\n        <td>—</td></tr>" in html


@pytest.mark.django_db
def test_a_contract_on_a_port_with_a_slash_in_its_name_still_renders(login, users, domains):
    product = services.data_product_create(
        name="Events",
        slug="events",
        domain=domains["lab"],
        owner=users["owner"],
        output_ports=[{"name": "raw/events", "kind": "stream"}],
    )
    DataContract.objects.create(
        output_port=product.output_ports.get(), contract_id="events-v1", name="Raw events"
    )
    response = login("outsider").get("/data-products/events/")
    assert response.status_code == 200
    assert "Raw events" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("size", [1, 10])
def test_detail_query_count_is_pinned(
    login, users, tree, domains, size, django_assert_max_num_queries
):
    goal = services.node_create(tree=tree, parent=None, title="Goal")
    bet = services.node_create(tree=tree, parent=goal, title="Bet")
    product = services.data_product_create(
        name="Sample turnaround",
        slug="main",
        domain=domains["lab"],
        owner=users["owner"],
        purpose="Time to result",
        output_ports=[{"name": f"port-{i}", "kind": "table"} for i in range(size)],
        by=users["owner"],
    )
    for index, port in enumerate(product.output_ports.all()):
        DataContract.objects.create(output_port=port, contract_id=f"c-{index}", servers=[])
    for index in range(size):
        initiative = services.node_create(tree=tree, parent=bet, title=f"Initiative {index}")
        services.data_product_link(product=product, node=initiative, role="uses")
        services.consumer_interest_register(
            product=product, node=initiative, user=users["editor"], team=f"T{index}", purpose="P"
        )
        services.data_product_create(
            name=f"Sample turnaround {index}",
            slug=f"like-{index}",
            domain=domains["finance"],
            owner=users["editor"],
        )
    for stage in ["design", "build", "discovery"] * size:
        services.data_product_transition(product=product, to_stage=stage, by=users["owner"])
    services.data_product_embeddings_refresh()  # as after the commits of a real run
    client = login("owner")
    # The similar products add, whatever the catalogue's size: the glossary, the
    # embedding matrix's version (and its reload), the best candidates, those not
    # embedded yet and the stored texts of the best.
    with django_assert_max_num_queries(14):
        response = client.get("/data-products/main/")
    html = response.content.decode()
    assert html.count("/withdraw/") == size
    assert len(scores(section(html, "similar-products"))) == min(size, 5)


# --- Lifecycle moves -------------------------------------------------------------


@pytest.mark.django_db
def test_owner_moves_a_product_on(login, users, products):
    client = login("editor")
    response = client.post(
        "/data-products/turnaround-times/stage/", {"stage": "build", "note": "Designed"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/data-products/turnaround-times/"
    assert stages()["turnaround-times"] == "build"
    last = LifecycleTransition.objects.filter(data_product=products["turnaround-times"]).last()
    assert (last.from_stage, last.to_stage, last.by, last.note) == (
        "design",
        "build",
        users["editor"],
        "Designed",
    )
    html = client.get(response["Location"]).content.decode()
    assert messages_of(html) == ["“Sample turnaround times” is now Build."]
    assert "Design → Build by editor — Designed" in text(section(html, "lifecycle"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("slug", "who", "stage", "message"),
    [
        ("headcount", "viewer", "live", "A live data product needs at least one output port."),
        (
            "invoices",
            "viewer",
            "design",
            "Select a valid choice. design is not one of the available choices.",
        ),
        ("invoices", "viewer", "", "This field is required."),
    ],
    ids=["live-without-ports", "backwards-from-live", "no-stage"],
)
def test_a_refused_move_is_reported_and_changes_nothing(login, products, slug, who, stage, message):
    before = (stages(), LifecycleTransition.objects.count(), Notification.objects.count())
    client = login(who)
    response = client.post(f"/data-products/{slug}/stage/", {"stage": stage})
    assert response.status_code == 302
    assert response["Location"] == f"/data-products/{slug}/"
    assert (stages(), LifecycleTransition.objects.count(), Notification.objects.count()) == before
    assert messages_of(client.get(response["Location"]).content.decode()) == [message]


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "viewer", "outsider"])
def test_only_the_owner_or_staff_moves_a_product(login, products, who):
    before = (stages(), LifecycleTransition.objects.count())
    response = login(who).post("/data-products/turnaround-times/stage/", {"stage": "build"})
    assert response.status_code == 403
    assert (stages(), LifecycleTransition.objects.count()) == before


@pytest.mark.django_db
def test_staff_may_move_any_product(login, products):
    response = login(make_user("staff", is_staff=True)).post(
        "/data-products/invoices/stage/", {"stage": "deprecated"}
    )
    assert response.status_code == 302
    assert stages()["invoices"] == "deprecated"


@pytest.mark.django_db
def test_moving_an_unknown_product_is_404(login, products):
    assert login("owner").post("/data-products/nope/stage/", {"stage": "build"}).status_code == 404


# --- Duplicates ------------------------------------------------------------------


@pytest.fixture
def duplicate(users, shape, products):
    """``turnaround-times`` serves the initiative, and a team waits for it."""
    product = products["turnaround-times"]
    services.data_product_link(product=product, node=shape["initiative"], role="uses")
    services.consumer_interest_register(
        product=product,
        node=shape["initiative"],
        user=users["owner"],
        team="Triage squad",
        purpose="Route urgent samples first",
    )
    return product


def belongings(slug: str) -> tuple[int, int]:
    return (
        DataProductLink.objects.filter(data_product__slug=slug).count(),
        ConsumerInterest.objects.filter(data_product__slug=slug).count(),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("then", "stage", "moved", "message"),
    [
        (
            "keep",
            "design",
            False,
            "“Sample turnaround times” is marked as a duplicate of “Sample turnaround”.",
        ),
        (
            "merge",
            "retired",
            True,
            "Merged into “Sample turnaround”: 1 node link(s) and 1 waiting team(s) moved; "
            "“Sample turnaround times” retired.",
        ),
        ("retire", "retired", False, "“Sample turnaround times” is retired as a duplicate."),
    ],
)
def test_owner_marks_a_duplicate(login, users, duplicate, then, stage, moved, message):
    client = login("editor")
    response = client.post(
        "/data-products/turnaround-times/duplicate/",
        {"original": "sample-turnaround", "then": then},
    )
    assert response.status_code == 302
    assert response["Location"] == "/data-products/turnaround-times/"
    duplicate.refresh_from_db()
    assert duplicate.duplicate_of.slug == "sample-turnaround"
    assert duplicate.stage == stage
    assert belongings("turnaround-times") == ((0, 0) if moved else (1, 1))
    assert belongings("sample-turnaround") == ((1, 1) if moved else (0, 0))
    assert (
        Notification.objects.filter(
            recipient=users["owner"], kind=NotificationKind.DUPLICATE
        ).count()
        == 1
    )
    assert messages_of(client.get(response["Location"]).content.decode()) == [message]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("prepare", "original", "message"),
    [
        (
            "retire-original",
            "sample-turnaround",
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "original-is-duplicate",
            "sample-turnaround",
            "“Sample turnaround” is itself a duplicate of “Invoices”; pick that one.",
        ),
        ("", "turnaround-times", "A product cannot duplicate itself."),
        ("", "nope", "Select a valid choice. That choice is not one of the available choices."),
    ],
)
def test_a_refused_duplicate_is_reported_and_changes_nothing(
    login, users, products, duplicate, prepare, original, message
):
    if prepare == "retire-original":
        services.data_product_transition(
            product=products["sample-turnaround"], to_stage="retired", by=None
        )
    elif prepare == "original-is-duplicate":
        services.data_product_mark_duplicate(
            product=products["sample-turnaround"], original=products["invoices"], by=None
        )
    before = (
        stages(),
        belongings("turnaround-times"),
        Notification.objects.count(),
        LifecycleTransition.objects.count(),
    )
    client = login("editor")
    response = client.post(
        "/data-products/turnaround-times/duplicate/", {"original": original, "then": "merge"}
    )
    assert response.status_code == 302
    assert (
        stages(),
        belongings("turnaround-times"),
        Notification.objects.count(),
        LifecycleTransition.objects.count(),
    ) == before
    duplicate.refresh_from_db()
    assert duplicate.duplicate_of is None
    assert messages_of(client.get(response["Location"]).content.decode()) == [message]


@pytest.mark.django_db
def test_marking_a_product_that_has_duplicates_makes_no_chain(login, users, products):
    services.data_product_mark_duplicate(
        product=products["turnaround-times"],
        original=products["sample-turnaround"],
        by=users["editor"],
    )
    # The page offers the owner of the original the form, with a living look-alike.
    services.data_product_create(
        name="Sample turnaround report",
        slug="report",
        domain=products["invoices"].domain,
        purpose="Time from sample draw to validated result",
    )
    client = login("owner")
    assert 'action="/data-products/sample-turnaround/duplicate/"' in (
        client.get("/data-products/sample-turnaround/").content.decode()
    )
    response = client.post(
        "/data-products/sample-turnaround/duplicate/", {"original": "report", "then": "keep"}
    )
    assert response.status_code == 302
    chains = DataProduct.objects.filter(duplicate_of__duplicate_of__isnull=False)
    assert list(chains.values_list("slug", flat=True)) == []


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "viewer", "outsider"])
def test_only_the_owner_or_staff_marks_a_duplicate(login, products, who):
    response = login(who).post(
        "/data-products/turnaround-times/duplicate/",
        {"original": "sample-turnaround", "then": "retire"},
    )
    assert response.status_code == 403
    assert DataProduct.objects.get(slug="turnaround-times").duplicate_of is None
    assert stages()["turnaround-times"] == "design"


# --- Early consumers -------------------------------------------------------------


@pytest.fixture
def billing(users):
    """A tree the viewer owns, with one live and one killed initiative; in ``tree`` the
    viewer only reads."""
    tree = services.tree_create(owner=users["viewer"], name="Billing", slug="billing", vision="V")
    goal = services.node_create(tree=tree, parent=None, title="Get paid")
    bet = services.node_create(tree=tree, parent=goal, title="Chase faster")
    chasing = services.node_create(tree=tree, parent=bet, title="Invoice chasing")
    services.node_create(tree=tree, parent=bet, title="Fax reminders", status="killed")
    return {"tree": tree, "bet": bet, "initiative": chasing}


def interest_data(node, **fields) -> dict[str, str]:
    return {
        "team": "Billing squad",
        "node": str(node.pk),
        "purpose": "Chase late payers",
        **fields,
    }


@pytest.mark.django_db
def test_interest_form_offers_only_initiatives_of_trees_the_user_edits(
    login, shape, billing, products
):
    response = login("viewer").get("/data-products/sample-turnaround/interest/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Register interest in “Sample turnaround”</h1>" in html
    assert options(html, "id_node") == ["", str(billing["initiative"].pk)]
    assert "Billing › Invoice chasing</option>" in html
    assert "Triage bot" not in html  # the viewer only reads that tree
    assert "Fax reminders" not in html  # killed
    for field_id in ("id_team", "id_node", "id_purpose"):
        assert f'<label for="{field_id}">' in html


@pytest.mark.django_db
def test_registering_interest_notifies_the_owner(login, users, billing, products):
    client = login("viewer")
    response = client.post(
        "/data-products/sample-turnaround/interest/", interest_data(billing["initiative"])
    )
    assert response.status_code == 302
    assert response["Location"] == "/data-products/sample-turnaround/"
    assert list(
        ConsumerInterest.objects.values_list(
            "data_product__slug", "node", "user", "team", "purpose"
        )
    ) == [
        (
            "sample-turnaround",
            billing["initiative"].pk,
            users["viewer"].pk,
            "Billing squad",
            "Chase late payers",
        )
    ]
    assert list(
        Notification.objects.filter(kind=NotificationKind.INTEREST).values_list(
            "recipient", "subject", "body", "url"
        )
    ) == [
        (
            users["owner"].pk,
            "Billing squad wants to consume “Sample turnaround”",
            # The product's owner is no member of the Billing tree: it stays unnamed.
            "For an initiative in a tree you cannot see: Chase late payers",
            "/data-products/sample-turnaround/",
        )
    ]
    html = client.get(response["Location"]).content.decode()
    assert messages_of(html) == ["Billing squad is registered as waiting for “Sample turnaround”."]
    interests = text(section(html, "interests"))
    assert "Billing squad Chase late payers Invoice chasing (Billing) viewer" in interests


@pytest.mark.django_db
@pytest.mark.parametrize("which", ["initiative-of-a-viewed-tree", "bet-of-an-edited-tree"])
def test_interest_for_a_node_not_offered_is_refused(login, shape, billing, products, which):
    node = shape["initiative"] if which.startswith("initiative") else billing["bet"]
    response = login("viewer").post(
        "/data-products/sample-turnaround/interest/", interest_data(node)
    )
    assert response.status_code == 400
    assert "Select a valid choice" in field_block(response.content.decode(), "id_node")
    assert not ConsumerInterest.objects.exists()
    assert not Notification.objects.filter(kind=NotificationKind.INTEREST).exists()


@pytest.mark.django_db
def test_registering_twice_for_the_same_initiative_is_refused(login, billing, products):
    client = login("viewer")
    url = "/data-products/sample-turnaround/interest/"
    assert client.post(url, interest_data(billing["initiative"])).status_code == 302
    response = client.post(url, interest_data(billing["initiative"], team="Other squad"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "“Invoice chasing” is already registered as waiting for this product." in field_block(
        html, "id_node"
    )
    assert 'value="Other squad"' in html  # the input is kept
    assert list(ConsumerInterest.objects.values_list("team", flat=True)) == ["Billing squad"]
    assert Notification.objects.filter(kind=NotificationKind.INTEREST).count() == 1


@pytest.mark.django_db
def test_interest_in_a_live_product_is_refused_with_the_reason(login, billing, products):
    response = login("viewer").post(
        "/data-products/invoices/interest/", interest_data(billing["initiative"])
    )
    assert response.status_code == 400
    assert (
        "“Invoices” is live: early consumers are for planned products. "
        "Link your initiative to it instead."
    ) in response.content.decode()
    assert not ConsumerInterest.objects.exists()
    assert not Notification.objects.filter(kind=NotificationKind.INTEREST).exists()


@pytest.mark.django_db
def test_a_product_in_build_still_takes_early_consumers(login, billing, products):
    response = login("viewer").post(
        "/data-products/headcount/interest/", interest_data(billing["initiative"])
    )
    assert response.status_code == 302
    assert list(ConsumerInterest.objects.values_list("data_product__slug", flat=True)) == [
        "headcount"
    ]


@pytest.mark.django_db
def test_a_user_who_edits_no_tree_is_told_why_there_is_no_form(login, tree, shape, products):
    response = login("outsider").get("/data-products/sample-turnaround/interest/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "You edit no tree with an initiative" in html
    assert 'name="team"' not in html


@pytest.mark.django_db
def test_interest_in_an_unknown_product_is_404(login, billing):
    assert login("viewer").get("/data-products/nope/interest/").status_code == 404


@pytest.fixture
def waiting(users, shape, products):
    """The editor registered the triage squad for the owner's product."""
    return services.consumer_interest_register(
        product=products["sample-turnaround"],
        node=shape["initiative"],
        user=users["editor"],
        team="Triage squad",
        purpose="Route urgent samples first",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "status"),
    [("editor", 302), ("owner", 302), ("viewer", 403), ("outsider", 403)],
    ids=["registrant", "product-owner", "viewer", "outsider"],
)
def test_withdraw_is_for_the_registrant_or_the_product_owner(login, waiting, who, status):
    client = login(who)
    response = client.post(f"/data-products/sample-turnaround/interest/{waiting.pk}/withdraw/")
    assert response.status_code == status
    assert ConsumerInterest.objects.filter(pk=waiting.pk).exists() is (status == 403)
    if status == 302:
        assert response["Location"] == "/data-products/sample-turnaround/"
        html = client.get(response["Location"]).content.decode()
        assert messages_of(html) == ["Triage squad no longer waits for “Sample turnaround”."]
        assert "Nobody is waiting for it yet." in html


@pytest.mark.django_db
@pytest.mark.parametrize(("who", "offered"), [("editor", True), ("owner", True), ("viewer", False)])
def test_withdraw_button_only_for_who_may_withdraw(login, waiting, who, offered):
    html = login(who).get("/data-products/sample-turnaround/").content.decode()
    assert (f"/interest/{waiting.pk}/withdraw/" in html) is offered


@pytest.mark.django_db
def test_withdraw_through_another_product_is_404(login, waiting):
    response = login("editor").post(
        f"/data-products/turnaround-times/interest/{waiting.pk}/withdraw/"
    )
    assert response.status_code == 404
    assert ConsumerInterest.objects.filter(pk=waiting.pk).exists()


# --- Notifications ---------------------------------------------------------------


@pytest.fixture
def inbox(users):
    """Three notifications for the owner (oldest first) and one for the viewer."""
    made = [
        services.notify(
            recipients=[users[who].pk], kind=NotificationKind.INTEREST, subject=subject
        )[0]
        for who, subject in [
            ("owner", "First"),
            ("viewer", "Not yours"),
            ("owner", "Second"),
            ("owner", "Third"),
        ]
    ]
    return {n.subject: n for n in made}


def subjects(html: str) -> list[str]:
    return re.findall(r'<li class="notification[^"]*">\s*<p><strong>([^<]*)</strong>', html)


def unread(user) -> list[str]:
    return list(
        Notification.objects.filter(recipient=user, read_at__isnull=True)
        .order_by("id")
        .values_list("subject", flat=True)
    )


@pytest.mark.django_db
def test_notifications_lists_only_your_own_newest_first(login, inbox):
    response = login("owner").get("/notifications/")
    html = response.content.decode()
    assert response.status_code == 200
    assert subjects(html) == ["Third", "Second", "First"]
    assert html.count("notification--unread") == 3
    assert html.count('name="id"') == 3


@pytest.mark.django_db
def test_notifications_page_without_any(login, users):
    assert "No notifications." in login("outsider").get("/notifications/").content.decode()


@pytest.mark.django_db
def test_mark_one_notification_read(login, users, inbox):
    client = login("owner")
    response = client.post("/notifications/read/", {"id": str(inbox["Second"].pk)})
    assert response.status_code == 302
    assert response["Location"] == "/notifications/"
    assert unread(users["owner"]) == ["First", "Third"]
    html = client.get("/notifications/").content.decode()
    assert html.count("notification--unread") == 2


@pytest.mark.django_db
def test_mark_all_read_leaves_other_people_s_alone(login, users, inbox):
    client = login("owner")
    # Someone else's id is not marked, whoever sends it.
    client.post("/notifications/read/", {"id": str(inbox["Not yours"].pk)})
    assert unread(users["viewer"]) == ["Not yours"]
    assert unread(users["owner"]) == ["First", "Second", "Third"]
    client.post("/notifications/read/")
    assert unread(users["owner"]) == []
    assert unread(users["viewer"]) == ["Not yours"]


@pytest.mark.django_db
def test_mark_read_ignores_an_id_that_is_not_a_number(login, users, inbox):
    response = login("owner").post("/notifications/read/", {"id": ["²", str(inbox["First"].pk)]})
    assert response.status_code == 302
    assert unread(users["owner"]) == ["Second", "Third"]


@pytest.mark.django_db
def test_notifications_read_answers_only_post(login, inbox):
    assert login("owner").get("/notifications/read/").status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "read", "badge"),
    [
        ("owner", [], 'Notifications <span class="badge" aria-label="3 unread">3</span>'),
        ("owner", ["First"], 'Notifications <span class="badge" aria-label="2 unread">2</span>'),
        ("owner", ["First", "Second", "Third"], "Notifications"),
        ("outsider", [], "Notifications"),
    ],
)
def test_badge_shows_the_unread_count(login, inbox, who, read, badge):
    client = login(who)
    for subject in read:
        client.post("/notifications/read/", {"id": str(inbox[subject].pk)})
    response = client.get("/notifications/badge/")
    assert response.status_code == 200
    assert response.content.decode().strip() == badge


# --- The initiative's side -------------------------------------------------------


@pytest.mark.django_db
def test_node_page_shows_what_it_waits_for_and_warns_of_a_deprecated_product(
    login, users, shape, domains, products, waiting
):
    node = shape["initiative"]
    services.data_product_link(product=products["invoices"], node=node, role="uses")
    services.data_product_transition(
        product=products["invoices"], to_stage="deprecated", by=users["viewer"]
    )
    services.data_product_link(product=products["headcount"], node=node, role="produces")
    html = login("viewer").get(f"/nodes/{node.pk}/").content.decode()
    assert "<h3>Waiting for</h3>" in html
    waits = re.search(r'<ul id="node-interests">(.*?)</ul>', html, re.S).group(1)
    assert text(waits) == (
        "Sample turnaround (Laboratory, discovery) — Triage squad: Route urgent samples first"
    )
    assert '<a href="/data-products/sample-turnaround/">Sample turnaround</a>' in waits
    linked = re.search(r'<section aria-labelledby="products-title">(.*?)</section>', html, re.S)
    items = [text(item) for item in re.findall(r"<li>(.*?)</li>", linked.group(1), re.S)]
    assert [item.removesuffix(" Unlink") for item in items[:2]] == [
        "Produces Headcount (Finance, build)",
        "Uses Invoices (Finance, deprecated) Relies on a deprecated product: plan a replacement.",
    ]


@pytest.mark.django_db
def test_node_page_without_waiting_teams_has_no_waiting_list(login, shape):
    html = login("viewer").get(f"/nodes/{shape['initiative'].pk}/").content.decode()
    assert "Waiting for" not in html


# --- Edit form -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("stage", "choices"),
    [
        ("live", ["live", "deprecated", "retired"]),
        ("deprecated", ["live", "deprecated", "retired"]),
        ("design", ["discovery", "design", "build", "live", "deprecated", "retired"]),
        ("retired", ["retired"]),
    ],
)
def test_edit_form_offers_only_the_stages_the_product_may_move_to(
    login, users, domains, stage, choices
):
    services.data_product_create(
        name="Orders",
        slug="orders",
        domain=domains["lab"],
        owner=users["owner"],
        stage=stage,
        output_ports=[{"name": "orders", "kind": "table"}],
    )
    html = login("owner").get("/data-products/orders/edit/").content.decode()
    assert options(html, "id_stage") == choices
    assert f'<option value="{stage}" selected>' in html
