"""The whole-tree read: shape, and a query count that does not grow with the tree."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import bulk_tree, make_tree
from valuetree import selectors, services
from valuetree.models import Node, ValueTree

# (goals, bets per goal, initiatives per bet): 1 + 2 + 6 ≈ 10 nodes, and 1,000 nodes.
SMALL = (1, 3, 2)
LARGE = (10, 9, 10)


def node_count(goals: int, bets: int, initiatives: int) -> int:
    return goals + goals * bets + goals * bets * initiatives


@pytest.mark.django_db
def test_tree_get_nests_nodes_in_order_with_measures(tree):
    goal = services.node_create(tree=tree, parent=None, title="Grow")
    bet_b = services.node_create(tree=tree, parent=goal, title="B")
    bet_a = services.node_create(tree=tree, parent=goal, title="A", position=0)
    services.node_create(tree=tree, parent=bet_a, title="A1")
    from outcomes.services import measure_create

    measure_create(
        node=bet_b,
        name="NPS",
        unit="points",
        direction="increase",
        baseline_value=10,
        baseline_date="2026-01-01",
        target_value=40,
        target_date="2027-01-01",
    )
    document = selectors.tree_get(tree=ValueTree.objects.get(pk=tree.pk))
    assert [g["title"] for g in document["goals"]] == ["Grow"]
    bets = document["goals"][0]["children"]
    assert [(b["title"], b["position"]) for b in bets] == [("A", 0), ("B", 1)]
    assert [i["title"] for i in bets[0]["children"]] == ["A1"]
    assert bets[0]["measures"] == []
    assert [(m["name"], m["target_value"]) for m in bets[1]["measures"]] == [("NPS", 40.0)]


@pytest.mark.django_db
@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["10-nodes", "1000-nodes"])
def test_tree_get_costs_two_queries_whatever_the_size(users, size):
    tree = make_tree(users, slug=f"t{size[0]}")
    bulk_tree(tree, goals=size[0], bets=size[1], initiatives=size[2], measures=1)
    with CaptureQueriesContext(connection) as captured:
        document = selectors.tree_get(tree=tree)
    # nodes + measures; the tree row itself is the third query of a whole read.
    assert len(captured) == 2
    ids = set()
    for goal in document["goals"]:
        ids.add(goal["id"])
        for bet in goal["children"]:
            ids.add(bet["id"])
            ids.update(initiative["id"] for initiative in bet["children"])
    assert len(ids) == node_count(*size)


@pytest.mark.django_db
@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["10-nodes", "1000-nodes"])
def test_tree_api_query_count_is_pinned(users, client_for, size, django_assert_num_queries):
    tree = make_tree(users, slug=f"api{size[0]}")
    bulk_tree(tree, goals=size[0], bets=size[1], initiatives=size[2], measures=1)
    client = client_for(users["viewer"])
    # tree row with the caller's role, nodes, measures (auth is forced: no session query).
    with django_assert_num_queries(3):
        response = client.get(f"/api/trees/{tree.slug}/")
    assert response.status_code == 200
    goals = response.json()["goals"]
    assert len(goals) == size[0]
    assert sum(len(g["children"]) for g in goals) == size[0] * size[1]


@pytest.mark.django_db
@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["10-nodes", "1000-nodes"])
def test_tree_list_query_count_is_pinned(users, client_for, size, django_assert_num_queries):
    for index in range(size[0]):
        tree = make_tree(users, slug=f"list{index}", name=f"List {index}")
        bulk_tree(tree, goals=1, bets=size[1], initiatives=size[2])
    client = client_for(users["leadership"])
    with django_assert_num_queries(2):  # count for the paginator + one page
        response = client.get("/api/trees/")
    assert response.status_code == 200
    first = response.json()["results"][0]
    assert (first["goal_count"], first["bet_count"]) == (1, size[1])
    assert first["initiative_count"] == size[1] * size[2]
    assert first["caller_role"] == "leadership"


MOVE_QUERIES = 9


@pytest.mark.django_db
@pytest.mark.parametrize("initiatives", [10, 1000])
def test_move_costs_the_same_queries_whatever_the_subtree(users, initiatives):
    tree = make_tree(users, slug=f"move{initiatives}")
    nodes = bulk_tree(tree, goals=2, bets=2, initiatives=initiatives)
    bet = nodes[2]
    target_goal = nodes[1]
    with CaptureQueriesContext(connection) as captured:
        services.node_move(node=bet, parent=target_goal, position=0)
    assert Node.objects.get(pk=bet.pk).parent_id == target_goal.pk
    assert Node.objects.filter(parent=bet).count() == initiatives
    # Pinned: tree lock, node read, sibling count, two range shifts, the update and
    # its history row, plus BEGIN/COMMIT (savepoints in a test); the same at both sizes.
    assert len(captured) == MOVE_QUERIES
