"""Search within a tree and across the app (issue 15)."""

from __future__ import annotations

import datetime as dt

import pytest

from outcomes.models import Measure
from valuetree import services


@pytest.fixture
def world(tree, users, domains):
    goal = services.node_create(tree=tree, parent=None, title="Results reach clinicians sooner")
    bet = services.node_create(
        tree=tree,
        parent=goal,
        title="Track samples",
        hypothesis="We believe barcode scanning helps",
    )
    Measure.objects.create(
        node=bet,
        name="Turnaround hours",
        direction="decrease",
        baseline_value=48,
        baseline_date=dt.date(2026, 1, 1),
        target_value=24,
        target_date=dt.date(2027, 1, 1),
    )
    hidden = services.tree_create(owner=users["outsider"], name="Secret", slug="secret", vision="V")
    services.node_create(tree=hidden, parent=None, title="Secret clinicians plan")
    product = services.data_product_create(
        name="Sample events",
        slug="sample-events",
        domain=domains["lab"],
        purpose="Where every sample is, for clinicians",
    )
    return {"goal": goal, "bet": bet, "product": product}


@pytest.mark.django_db
class TestSearch:
    def test_finds_nodes_by_title_hypothesis_and_measure(self, client, users, world):
        client.force_login(users["viewer"])
        for words, node in (("clinicians", "goal"), ("BARCODE", "bet"), ("turnaround", "bet")):
            html = client.get("/search/", {"q": words}).content.decode()
            assert f'href="/nodes/{world[node].pk}/"' in html, words
        html = client.get("/search/", {"q": "turnaround"}).content.decode()
        assert "measure “Turnaround hours”" in html

    def test_finds_trees_and_data_products_but_nothing_unreadable(self, client, users, world):
        client.force_login(users["viewer"])
        html = client.get("/search/", {"q": "clinicians"}).content.decode()
        assert 'href="/data-products/sample-events/"' in html
        assert "Secret clinicians plan" not in html
        html = client.get("/search/", {"q": "tree"}).content.decode()
        assert 'href="/trees/tree/"' in html

    def test_within_a_tree(self, client, users, world):
        client.force_login(users["viewer"])
        html = client.get("/search/", {"q": "clinicians", "tree": "tree"}).content.decode()
        assert f'href="/nodes/{world["goal"].pk}/"' in html
        assert "sample-events" not in html  # only the tree's nodes
        assert client.get("/search/", {"q": "x", "tree": "secret"}).status_code == 404

    def test_short_query_and_htmx_fragment(self, client, users, world):
        client.force_login(users["viewer"])
        assert "at least two letters" in client.get("/search/", {"q": "c"}).content.decode()
        fragment = client.get("/search/", {"q": "clinicians"}, HTTP_HX_REQUEST="true")
        assert fragment.content.decode().startswith('<div id="search-results"')

    def test_header_has_a_search_box_on_every_page(self, client, users, world):
        client.force_login(users["viewer"])
        html = client.get("/").content.decode()
        assert 'id="site-search"' in html and 'aria-keyshortcuts="/"' in html
        assert 'id="tree-search"' in client.get("/trees/tree/").content.decode()

    def test_queries_are_bounded(self, client, users, world, django_assert_max_num_queries):
        client.force_login(users["viewer"])
        with django_assert_max_num_queries(6):  # session, user, nodes, trees, products
            client.get("/search/", {"q": "clinicians"})

    def test_anonymous_is_sent_to_log_in(self, client, world):
        assert client.get("/search/", {"q": "x"}).status_code == 302
