"""Benchmark: importing a large tree document, and refusing oversized ones (issue 16 §8).

Run from the repository root::

    .venv/bin/python bench/tree_import.py [--goals 20 --bets 20 --initiatives 24]

It creates a throw-away test database, builds a tree document of
goals × (1 + bets × (1 + initiatives)) nodes (10,020 by default, every bet with a
measure) and prints one JSON object: the document's size, the time to parse it, to
validate it and to import it (YAML and JSON), and the time to refuse a 100,000-goal
document (over the node cap) and an alias bomb, as wall time and as this process's
CPU time (on a shared machine the two differ by how busy the other processes keep the
cores). Targets: a refused document ≤ 2 s, a valid 10,000-node import ≤ 30 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import orjson
from _common import ROOT, check, log, throwaway_database, timed_ms
from django.contrib.auth import get_user_model

from valuetree import documents, interchange


def tree_document(goals: int, bets: int, initiatives: int, slug: str) -> dict:
    def node(title: str, children: list[dict], measures: list[dict] | None = None) -> dict:
        return {
            "title": title,
            "description": f"What {title} is for, in a sentence or two.",
            "owner": "bench",
            "weight": 1.0,
            "status": "active",
            "measures": measures or [],
            "data_products": [],
            "children": children,
        }

    measure = {
        "name": "Conversion",
        "unit": "%",
        "direction": "increase",
        "baseline_value": 10,
        "baseline_date": "2026-01-01",
        "target_value": 20,
        "target_date": "2027-01-01",
    }
    return {
        "version": 1,
        "slug": slug,
        "name": "Bench",
        "vision": "A vision",
        "description": "",
        "goals": [
            node(
                f"Goal {g}",
                [
                    node(
                        f"Bet {g}.{b}",
                        [node(f"Initiative {g}.{b}.{i}", []) for i in range(initiatives)],
                        [measure],
                    )
                    for b in range(bets)
                ],
            )
            for g in range(goals)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--goals", type=int, default=20)
    parser.add_argument("--bets", type=int, default=20)
    parser.add_argument("--initiatives", type=int, default=24)
    args = parser.parse_args()
    nodes = args.goals * (1 + args.bets * (1 + args.initiatives))
    result: dict = {"nodes": nodes}
    with throwaway_database():
        owner = get_user_model().objects.create_user("bench")
        for fmt in ("yaml", "json"):
            document = tree_document(args.goals, args.bets, args.initiatives, f"bench-{fmt}")
            raw = (
                documents.dump_yaml([document]).encode()
                if fmt == "yaml"
                else orjson.dumps(document)
            )
            parse_ms, (data, lines) = timed_ms(
                lambda raw=raw, fmt=fmt: interchange.parse(raw, fmt=fmt)
            )
            validate_ms, _ = timed_ms(
                lambda data=data, lines=lines: interchange.validate(data, lines)
            )
            cpu = time.process_time()
            import_ms, tree = timed_ms(
                lambda raw=raw, fmt=fmt: interchange.tree_import_text(raw, fmt=fmt, owner=owner)
            )
            import_cpu_ms = (time.process_time() - cpu) * 1000
            check(tree.nodes.count() == nodes, "the import did not write every node")
            result[fmt] = {
                "bytes": len(raw),
                "parse_ms": round(parse_ms),
                "validate_ms": round(validate_ms),
                "import_ms": round(import_ms),
                "import_cpu_ms": round(import_cpu_ms),
            }
            log(f"{fmt}: {result[fmt]}")
        goals = "\n".join(f"- title: goal {i}" for i in range(100_000))
        too_many = f"version: 1\nslug: many\nname: n\nvision: v\ngoals:\n{goals}\n".encode()

        def refuse(raw: bytes) -> str:
            try:
                interchange.tree_import_text(raw, fmt="yaml", owner=owner)
            except documents.ImportFailed as failed:
                return str(failed)
            raise RuntimeError("the document was not refused")

        cpu = time.process_time()
        refuse_ms, message = timed_ms(lambda: refuse(too_many))
        result["refuse_100k_goals"] = {
            "bytes": len(too_many),
            "ms": round(refuse_ms),
            # CPU time of this process: what the refusal costs without the other
            # processes of a shared machine taking turns on its cores.
            "cpu_ms": round((time.process_time() - cpu) * 1000),
        }
        log(message[:200])
        bomb = (ROOT / "tests/valuetree/fixtures/cases/yaml-alias-bomb-tree.yaml").read_bytes()
        bomb_ms, _ = timed_ms(lambda: refuse(bomb))
        result["refuse_alias_bomb_ms"] = round(bomb_ms, 2)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
