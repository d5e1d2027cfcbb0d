"""Concurrent structural edits on PostgreSQL: the tree lock keeps positions unique."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from tests.factories import make_role_users, make_tree
from valuetree import services
from valuetree.models import Node

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks need PostgreSQL; SQLite serialises writers by itself",
)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_creates_under_one_parent_get_distinct_positions():
    tree = make_tree(make_role_users())
    goal = services.node_create(tree=tree, parent=None, title="Goal")
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def add(index: int) -> None:
        try:
            start.wait()
            services.node_create(tree=tree, parent=goal, title=f"Bet {index}")
        except BaseException as error:  # reported below; a thread cannot raise into the test
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    positions = sorted(Node.objects.filter(parent=goal).values_list("position", flat=True))
    assert positions == list(range(8))
