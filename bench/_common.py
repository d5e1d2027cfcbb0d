"""What every benchmark here shares: Django set-up, a throw-away database, timing
and query counting. Each benchmark prints one JSON object on stdout; progress and
diagnostics go to stderr."""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_test_environment,
    teardown_test_environment,
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check(condition: bool, message: str) -> None:
    # Not `assert`: a benchmark whose result is wrong must fail even under -O.
    if not condition:
        raise RuntimeError(message)


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples), 3)


def timed_ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Milliseconds ``fn`` took, and what it returned."""
    # Collect first so one run does not pay for the garbage of the previous one.
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def is_transaction_control(sql: str) -> bool:
    return sql.split(None, 1)[0].upper() in {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


def count_queries(fn: Callable[[], Any]) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured.captured_queries), [q["sql"] for q in captured.captured_queries]


def log_queries(label: str, statements: list[str]) -> None:
    log(f"{label}: {len(statements)} queries")
    for sql in statements:
        log(f"    {sql[:160]}{'…' if len(sql) > 160 else ''}")


def walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from walk(node["children"])


def database_vendor() -> str:
    return connection.vendor


@contextmanager
def throwaway_database() -> Iterator[None]:
    """A fresh test database for the benchmark, destroyed afterwards whatever happens."""
    # DEBUG off: a debug cursor would record every query and skew the timings.
    setup_test_environment(debug=False)
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        # A name of our own, so a concurrent bench or test run is never clobbered.
        db.setdefault("TEST", {})["NAME"] = f"test_{db['NAME']}_{os.getpid()}"
    old_name = db["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
