"""Builders for tests and benchmarks: users in every role, and large trees fast."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model

from outcomes.models import Measure
from valuetree import services
from valuetree.models import Node, NodeKind, ValueTree

User = get_user_model()
ROLES = ("owner", "editor", "viewer", "leadership", "outsider")


def make_user(username: str, **extra: object) -> User:
    return User.objects.create_user(username=username, password="pw-" + username, **extra)


def make_role_users(prefix: str = "") -> dict[str, User]:
    """One user per role; tree memberships are given by ``make_tree``."""
    users = {role: make_user(f"{prefix}{role}") for role in ROLES}
    users["leadership"].groups.add(services.leadership_group())
    return users


def make_tree(users: dict[str, User], slug: str = "tree", name: str = "Tree") -> ValueTree:
    tree = services.tree_create(owner=users["owner"], name=name, slug=slug, vision="A vision")
    services.membership_set(tree=tree, user=users["editor"], role="editor")
    services.membership_set(tree=tree, user=users["viewer"], role="viewer")
    return tree


def bulk_tree(
    tree: ValueTree, *, goals: int, bets: int, initiatives: int, measures: int = 0
) -> list[Node]:
    """Fill ``tree`` with goals × bets × initiatives nodes by bulk insert (no history),
    plus ``measures`` measures on each initiative. Returns every node."""
    goal_rows = Node.objects.bulk_create(
        Node(tree=tree, kind=NodeKind.GOAL, title=f"Goal {g}", position=g) for g in range(goals)
    )
    bet_rows = Node.objects.bulk_create(
        Node(tree=tree, parent=goal, kind=NodeKind.BET, title=f"Bet {g}.{b}", position=b)
        for g, goal in enumerate(goal_rows)
        for b in range(bets)
    )
    initiative_rows = Node.objects.bulk_create(
        Node(
            tree=tree,
            parent=bet,
            kind=NodeKind.INITIATIVE,
            title=f"Initiative {bet.title[4:]}.{i}",
            position=i,
        )
        for bet in bet_rows
        for i in range(initiatives)
    )
    if measures:
        Measure.objects.bulk_create(
            Measure(
                node=node,
                name=f"Measure {m}",
                direction="increase",
                baseline_value=0,
                baseline_date=dt.date(2026, 1, 1),
                target_value=100,
                target_date=dt.date(2027, 1, 1),
                position=m,
            )
            for node in initiative_rows
            for m in range(measures)
        )
    return [*goal_rows, *bet_rows, *initiative_rows]


def make_metric(
    tree: ValueTree,
    *,
    kind: str = "push",
    source_name: str = "Source",
    config: dict | None = None,
    credentials: dict | None = None,
    **fields: object,
):
    """A metric in a new (or the same-named existing) source of the tree, through the services."""
    from outcomes.models import MetricSource
    from outcomes.services import metric_create, metric_source_create

    source = MetricSource.objects.filter(tree=tree, name=source_name).first()
    if source is None:
        source = metric_source_create(
            tree=tree, kind=kind, name=source_name, config=config, credentials=credentials
        )
    fields.setdefault("name", f"Metric {source.metrics.count() + 1}")
    return metric_create(source=source, **fields)
