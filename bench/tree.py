"""Benchmark: the whole-tree read and subtree moves (DESIGN.md §7).

Run from the repository root::

    .venv/bin/python bench/tree.py [--runs 7] [--measures 0] [--profile]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/valuetree_bench .venv/bin/python bench/tree.py

It creates a throw-away test database (SQLite in memory, or ``test_<name>_<pid>`` on
PostgreSQL), builds a 10,010-node tree (10 goals × 10 bets × 99 initiatives) and
prints one JSON object on stdout; progress and diagnostics go to stderr.

Figures:

- ``api_get``: ``GET /api/trees/<slug>/`` through DRF's APIClient with
  ``force_authenticate``, so the counted queries are the endpoint's own (a session
  login adds the session and user rows, reported as ``queries_with_session_login``).
- ``bare_values_orjson``: the baseline of the same run, ``values()`` of the same node
  columns plus ``orjson.dumps``; the ratio between the two medians is the figure the
  design holds to ≤ 2, because wall time alone is too noisy on shared machines.
- ``move``: ``services.node_move`` of a bet with 10 and with 1,000 initiatives (only
  bets and initiatives have parents, so a bet is the largest subtree that can move),
  plus a goal reorder.

The exit code is 0 when targets are missed (the figures are the point) and non-zero
when something fails, including a response that does not hold the whole tree.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import django  # noqa: E402  (after _common, which sets Django up)
import orjson  # noqa: E402
from _common import (
    check,
    count_queries,
    database_vendor,
    is_transaction_control,
    log,
    log_queries,
    median_ms,
    throwaway_database,
    timed_ms,
    walk,
)
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from outcomes.models import Measure  # noqa: E402
from outcomes.selectors import MEASURE_COLUMNS  # noqa: E402
from tests.factories import bulk_tree, make_role_users, make_tree  # noqa: E402
from valuetree import selectors  # noqa: E402
from valuetree.apis import json_response  # noqa: E402
from valuetree.models import Node, NodeKind, ValueTree  # noqa: E402
from valuetree.services import node_move  # noqa: E402

GOALS, BETS, INITIATIVES = 10, 10, 99
MAX_QUERIES = 3
MAX_RATIO = 2.0


def build_move_tree(users: dict[str, Any]) -> dict[str, Any]:
    """A tree whose first goal holds a bet with 10 initiatives and one with 1,000; the
    second goal holds a few bets, so a move shifts real sibling rows at both ends."""
    tree = make_tree(users, slug="moves", name="Moves")
    source, target = Node.objects.bulk_create(
        Node(tree=tree, kind=NodeKind.GOAL, title=f"Goal {g}", position=g) for g in range(2)
    )
    small, large, *_ = Node.objects.bulk_create(
        [
            Node(tree=tree, parent=source, kind=NodeKind.BET, title="Bet small", position=0),
            Node(tree=tree, parent=source, kind=NodeKind.BET, title="Bet large", position=1),
            *(
                Node(tree=tree, parent=target, kind=NodeKind.BET, title=f"Bet {b}", position=b)
                for b in range(5)
            ),
        ]
    )
    for bet, size in ((small, 10), (large, 1000)):
        Node.objects.bulk_create(
            Node(tree=tree, parent=bet, kind=NodeKind.INITIATIVE, title=f"I {i}", position=i)
            for i in range(size)
        )
    return {"source": source, "target": target, 10: small, 1000: large}


def measure_moves(users: dict[str, Any], runs: int) -> dict[str, Any]:
    built = build_move_tree(users)
    results: dict[str, Any] = {}
    for size in (10, 1000):
        bet = built[size]
        counts: list[int] = []
        data_counts: list[int] = []
        samples: list[float] = []
        for run in range(runs):
            # Back and forth, so every run is a real move between two goals.
            parent = built["target"] if run % 2 == 0 else built["source"]
            with CaptureQueriesContext(connection) as captured:
                elapsed, _ = timed_ms(partial(node_move, node=bet, parent=parent, position=0))
            samples.append(elapsed)
            statements = [q["sql"] for q in captured.captured_queries]
            counts.append(len(statements))
            data_counts.append(sum(not is_transaction_control(sql) for sql in statements))
            if run == 0:
                log_queries(f"move bet with {size} initiatives", statements)
            moved = Node.objects.get(pk=bet.pk)
            check(
                moved.parent_id == parent.pk and moved.position == 0,
                f"bet {bet.pk} should sit first under goal {parent.pk} after the move",
            )
            check(
                Node.objects.filter(parent=bet).count() == size,
                f"bet {bet.pk} lost initiatives in the move",
            )
        results[f"descendants_{size}"] = {
            "queries": max(counts),
            "queries_per_run": sorted(set(counts)),
            "queries_without_begin_commit": max(data_counts),
            "median_ms": median_ms(samples),
            "runs": runs,
        }
    return results


def measure_goal_reorder(tree: ValueTree) -> dict[str, Any]:
    last = Node.objects.filter(tree=tree, kind=NodeKind.GOAL).order_by("-position").first()
    queries, statements = count_queries(lambda: node_move(node=last, parent=None, position=0))
    log_queries("goal reorder (last to first)", statements)
    data_queries = sum(not is_transaction_control(sql) for sql in statements)
    positions = dict(
        Node.objects.filter(tree=tree, kind=NodeKind.GOAL).values_list("pk", "position")
    )
    check(positions[last.pk] == 0, "the reordered goal should be first")
    check(
        sorted(positions.values()) == list(range(len(positions))),
        f"goal positions should stay 0..n-1, got {sorted(positions.values())}",
    )
    return {"queries": queries, "queries_without_begin_commit": data_queries}


def profile_api(get: Callable[[], Any], top: int = 35) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    get()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    log(out.getvalue())


def run(runs: int, measures: int, profile: bool) -> dict[str, Any]:
    users = make_role_users()
    tree = make_tree(users, slug="big", name="Big")
    started = time.perf_counter()
    bulk_tree(tree, goals=GOALS, bets=BETS, initiatives=INITIATIVES, measures=measures)
    nodes = Node.objects.filter(tree=tree).count()
    log(f"built {nodes} nodes in {time.perf_counter() - started:.1f}s")
    check(nodes == GOALS + GOALS * BETS + GOALS * BETS * INITIATIVES, f"built {nodes} nodes")

    url = f"/api/trees/{tree.slug}/"
    api = APIClient()
    api.force_authenticate(users["owner"])

    def api_get() -> Any:
        response = api.get(url)
        check(response.status_code == 200, f"GET {url} answered {response.status_code}")
        return response

    def bare() -> bytes:
        rows = list(Node.objects.filter(tree=tree).values(*selectors.NODE_COLUMNS))
        if not measures:
            return orjson.dumps(rows, default=float)
        # The document carries the measures too, so the baseline fetches the same rows.
        items = list(Measure.objects.filter(node__tree=tree).values(*MEASURE_COLUMNS))
        return orjson.dumps({"nodes": rows, "measures": items}, default=float)

    # Warm-up, and proof that the document holds every node and their measures.
    document = orjson.loads(api_get().content)
    in_document = sum(1 for _ in walk(document["goals"]))
    check(in_document == nodes, f"the document holds {in_document} of {nodes} nodes")
    if measures:
        in_document = sum(len(node.get("measures", [])) for node in walk(document["goals"]))
        expected = GOALS * BETS * INITIATIVES * measures
        check(in_document == expected, f"the document holds {in_document} of {expected} measures")
    bare()

    api_queries, statements = count_queries(api_get)
    log_queries("GET (force_authenticate)", statements)

    session = Client()
    session.force_login(users["owner"])
    session_queries, statements = count_queries(
        lambda: check(session.get(url).status_code == 200, "session GET failed")
    )
    log_queries("GET (force_login session)", statements)

    loaded = selectors.trees_for_user(users["owner"]).get(pk=tree.pk)
    selector_queries, statements = count_queries(lambda: selectors.tree_get(tree=loaded))
    log_queries("tree_get alone", statements)
    bare_queries, _ = count_queries(bare)

    # Interleaved, so drift on a noisy machine hits both sides alike.
    api_samples: list[float] = []
    bare_samples: list[float] = []
    selector_samples: list[float] = []
    render_samples: list[float] = []
    for _ in range(runs):
        elapsed, response = timed_ms(api_get)
        api_samples.append(elapsed)
        bare_samples.append(timed_ms(bare)[0])
        elapsed, document = timed_ms(partial(selectors.tree_get, tree=loaded))
        selector_samples.append(elapsed)
        render_samples.append(timed_ms(partial(json_response, document))[0])

    if profile:
        profile_api(api_get)

    api_median = median_ms(api_samples)
    bare_median = median_ms(bare_samples)
    ratio = round(api_median / bare_median, 3)

    moves = measure_moves(users, runs)
    moves["goal_reorder"] = measure_goal_reorder(tree)
    move_equal = (
        moves["descendants_10"]["queries_per_run"] == moves["descendants_1000"]["queries_per_run"]
    )

    return {
        "benchmark": "tree",
        "database": database_vendor(),
        "django": django.get_version(),
        "nodes": nodes,
        "shape": {"goals": GOALS, "bets_per_goal": BETS, "initiatives_per_bet": INITIATIVES},
        "measures": {"per_initiative": measures, "total": GOALS * BETS * INITIATIVES * measures},
        "api_get": {
            "queries": api_queries,
            "median_ms": api_median,
            "runs": runs,
            "warmups": 1,
            "auth": "APIClient.force_authenticate (no auth queries)",
            "queries_with_session_login": session_queries,
            "response_bytes": len(response.content),
        },
        "selector_queries": selector_queries,
        "breakdown_median_ms": {
            "tree_get": median_ms(selector_samples),
            "json_response": median_ms(render_samples),
        },
        "bare_values_orjson": {
            "median_ms": bare_median,
            "queries": bare_queries,
            "runs": runs,
            "includes_measures": bool(measures),
        },
        "ratio_api_to_bare": ratio,
        "move": moves,
        "targets": {"max_queries": MAX_QUERIES, "max_ratio": MAX_RATIO, "move_equal": True},
        "met": {
            "max_queries": api_queries <= MAX_QUERIES,
            "max_ratio": ratio <= MAX_RATIO,
            "move_equal": move_equal,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs after one warm-up")
    parser.add_argument("--measures", type=int, default=0, help="measures per initiative")
    parser.add_argument("--profile", action="store_true", help="cProfile one GET to stderr")
    args = parser.parse_args()
    if args.runs < 1 or args.measures < 0:
        parser.error("--runs must be ≥ 1 and --measures ≥ 0")

    with throwaway_database():
        result = run(args.runs, args.measures, args.profile)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
