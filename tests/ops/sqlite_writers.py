"""Concurrent writers against the embedded SQLite database, as a team's clients would.

With DATA_DIR an empty folder and DATABASE_URL unset:

    python -m tests.ops.sqlite_writers setup                 # migrate, a tree, metrics, ids
    python -m tests.ops.sqlite_writers clients --process 0 --threads 8 --rounds 20
    python -m tests.ops.sqlite_writers evaluator --stop-file STOP

`clients` runs threads, each on its own connection, through the full request path
(middleware, DRF, services): every round pushes a value to the thread's own metric,
reads the whole tree and, every fourth round, adds a bet (a write transaction that
reads before it writes: the case a deferred transaction cannot survive). Several
`clients` processes, like the web server's workers, share the file with an `evaluator`
that writes verdicts as the Celery worker does. Each prints one JSON object: statuses,
the texts of failed requests, values acknowledged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
from collections import Counter
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.pop("DATABASE_URL", None)
os.environ["ALLOWED_HOSTS"] = "testserver"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

IDS_FILE = "sqlite_writers_ids.json"


def setup(processes: int, threads: int) -> dict:
    from outcomes.services import measure_create
    from tests.factories import make_metric, make_role_users, make_tree
    from valuetree import services

    call_command("migrate", verbosity=0)
    users = make_role_users()
    tree = make_tree(users)
    goal = services.node_create(tree=tree, parent=None, title="Goal")
    bet = services.node_create(tree=tree, parent=goal, title="Bet")
    metrics = []
    for index in range(processes * threads):
        metric = make_metric(tree, name=f"Load {index}")
        measure_create(
            node=bet,
            name=f"Measure {index}",
            metric=metric,
            direction="increase",
            baseline_value=0,
            baseline_date=dt.date(2025, 1, 1),
            target_value=1000,
            target_date=dt.date(2027, 1, 1),
        )
        metrics.append(metric.pk)
    ids = {"editor": users["editor"].pk, "tree": tree.slug, "goal": goal.pk, "metrics": metrics}
    (settings.DATA_DIR / IDS_FILE).write_text(json.dumps(ids))
    pragmas = {
        name: connection.cursor().execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "busy_timeout", "synchronous")
    }
    return {**pragmas, **ids}


def clients(process: int, threads: int, rounds: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.core.signals import got_request_exception
    from rest_framework.test import APIClient

    ids = json.loads((settings.DATA_DIR / IDS_FILE).read_text())
    editor = get_user_model().objects.get(pk=ids["editor"])
    connections.close_all()
    start = threading.Barrier(threads)
    lock = threading.Lock()
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    acknowledged = 0
    today = dt.datetime.now(dt.UTC).date()

    def record(sender, request=None, **kwargs) -> None:
        with lock:
            errors.append(repr(sys.exc_info()[1])[:300])

    got_request_exception.connect(record)

    def client_thread(index: int) -> None:
        nonlocal acknowledged
        client = APIClient()
        client.force_authenticate(editor)
        client.raise_request_exception = False  # a 500 is counted, with its text
        metric_id = ids["metrics"][process * threads + index]
        try:
            start.wait()
            for round_ in range(rounds):
                period = today - dt.timedelta(days=round_ + 1)
                push = client.post(
                    f"/api/metrics/{metric_id}/observations/",
                    {"period": period.isoformat(), "value": round_},
                    format="json",
                )
                answers = [push, client.get(f"/api/trees/{ids['tree']}/")]
                if round_ % 4 == 0:
                    answers.append(
                        client.post(
                            f"/api/trees/{ids['tree']}/nodes/",
                            {"parent": ids["goal"], "title": f"Bet {process}.{index}.{round_}"},
                            format="json",
                        )
                    )
                with lock:
                    for answer in answers:
                        statuses[answer.status_code] += 1
                    if push.status_code == 201:
                        acknowledged += push.json()["values_written"]
        finally:
            connections.close_all()

    workers = [threading.Thread(target=client_thread, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "errors": errors[:5],
        "acknowledged": acknowledged,
    }


def evaluator(stop_file: Path) -> dict:
    """Evaluate every measure again and again, as the worker does after each push,
    until `stop_file` exists."""
    from outcomes.evaluation import measures_evaluate

    runs, errors = 0, []
    while not stop_file.exists():
        try:
            measures_evaluate()
            runs += 1
        except Exception as error:  # counted and reported: the test asserts there are none
            errors.append(f"{type(error).__name__}: {error}")
    return {"runs": runs, "errors": errors[:5]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["setup", "clients", "evaluator", "stored"])
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--process", type=int, default=0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--stop-file", type=Path)
    args = parser.parse_args()
    if args.mode == "setup":
        result = setup(args.processes, args.threads)
    elif args.mode == "clients":
        result = clients(args.process, args.threads, args.rounds)
    elif args.mode == "evaluator":
        result = evaluator(args.stop_file)
    else:
        from outcomes.models import Observation, Verdict

        result = {"stored": Observation.objects.count(), "verdicts": Verdict.objects.count()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
