"""The embedded default (SQLite in a file) holds a team's concurrent writes: no 500.

Several processes, like the production server's workers, each with threads on their
own connections, push values, read the whole tree and add nodes through the API while
another process writes verdicts as the Celery worker does. Every request answers
without "database is locked" and every value acknowledged is stored. Without
`transaction_mode: IMMEDIATE` this test fails: a transaction that reads before it
writes cannot wait for the lock and answers 500.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the embedded SQLite default; runs in the SQLite pass"
)

ROOT = Path(__file__).resolve().parents[2]
PROCESSES, THREADS, ROUNDS = 3, 6, 8


def writers_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return {**env, "DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "config.settings.test"}


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ops.sqlite_writers", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result_of(process: subprocess.Popen[str]) -> dict:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout)


def test_concurrent_writers_on_the_embedded_database_never_answer_500(tmp_path):
    env = writers_env(tmp_path)
    setup = result_of(start(env, "setup", "--processes", str(PROCESSES), "--threads", str(THREADS)))
    assert (setup["journal_mode"], setup["synchronous"]) == ("wal", 1)  # 1 = NORMAL
    assert setup["busy_timeout"] >= 10_000  # ms

    stop = tmp_path / "stop"
    evaluator = start(env, "evaluator", "--stop-file", str(stop))
    clients = [
        start(
            env, "clients", "--process", str(p), "--threads", str(THREADS), "--rounds", str(ROUNDS)
        )
        for p in range(PROCESSES)
    ]
    results = [result_of(process) for process in clients]
    stop.touch()
    evaluated = result_of(evaluator)

    errors = [error for result in results for error in result["errors"]]
    assert errors == []
    assert evaluated["errors"] == []
    assert evaluated["runs"] >= 1
    statuses: dict[str, int] = {}
    for result in results:
        for code, count in result["statuses"].items():
            statuses[code] = statuses.get(code, 0) + count
    pushes = PROCESSES * THREADS * ROUNDS
    # Per round: a push (201) and a tree read (200); every fourth round a new bet (201).
    bets = PROCESSES * THREADS * len(range(0, ROUNDS, 4))
    assert statuses == {"200": pushes, "201": pushes + bets}
    acknowledged = sum(result["acknowledged"] for result in results)
    stored = result_of(start(env, "stored"))["stored"]
    assert acknowledged == stored == pushes
