"""Benchmark: a team's load on the embedded default, served by the production server.

Run from the repository root::

    .venv/bin/python bench/load.py [--clients 16 48] [--requests 50]

It builds a tree (5 goals × 4 bets × 5 initiatives, a measure on each initiative) in a
fresh SQLite database in a temporary DATA_DIR, then starts `scripts/serve all` on it
— gunicorn, a Celery worker and beat on the embedded broker, DEBUG off — exactly as
`make serve` does. For each client count, every client (a thread with its own user,
API token and keep-alive connection) makes a fixed number of requests, alternately
reading the whole tree (`GET /api/trees/{slug}/`) and pushing one value to its own
metric (`POST /api/metrics/{id}/observations/`, whose measure the worker then
evaluates). It prints one JSON object: per run the requests, the errors (any answer
but 200/201, or no answer), p50/p99 latency of reads and pushes, and the values
acknowledged (201) against those stored. The baseline is `GET /healthz` from one
client on the idle server, in the same run.

Targets: 0 errors and 0 lost at 48 clients; p99 of a push ≤ 1 s at 16 clients.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography.fernet import Fernet

DATA_DIR = Path(tempfile.mkdtemp(prefix="valuetree-load-"))
os.environ["DATA_DIR"] = str(DATA_DIR)  # the embedded SQLite file lives here
os.environ.pop("DATABASE_URL", None)
os.environ["CELERY_BROKER_URL"] = "memory://"  # this process only writes the set-up

from _common import ROOT, check, log  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

from outcomes.models import Measure, Observation  # noqa: E402
from outcomes.services import metric_create, metric_source_create  # noqa: E402
from tests.factories import bulk_tree, make_role_users, make_tree, make_user  # noqa: E402
from tests.workers import free_port  # noqa: E402
from valuetree import services  # noqa: E402

TARGET_PUSH_P99_MS_AT_16 = 1000


def percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def set_up(clients: int) -> tuple[str, list[tuple[str, int]]]:
    """The tree and one (token, metric id) per client, in the embedded database."""
    call_command("migrate", verbosity=0)
    users = make_role_users()
    tree = make_tree(users, slug="load", name="Load")
    bulk_tree(tree, goals=5, bets=4, initiatives=5, measures=1)
    source = metric_source_create(tree=tree, kind="push", name="Pushed", config=None)
    measures = list(Measure.objects.filter(node__tree=tree).order_by("id"))
    pairs = []
    for index in range(clients):
        user = make_user(f"client{index}")
        services.membership_set(tree=tree, user=user, role="editor")
        metric = metric_create(source=source, name=f"Client {index}")
        measure = measures[index % len(measures)]
        Measure.objects.filter(pk=measure.pk).update(metric=metric)
        out = io.StringIO()
        call_command("issue_token", user.username, stdout=out)
        pairs.append((out.getvalue().strip().splitlines()[-1], metric.pk))
    connections.close_all()
    return tree.slug, pairs


class Server:
    """`scripts/serve all` (gunicorn, a worker, beat) with production settings."""

    def __init__(self, port: int, role: str = "all") -> None:
        self.port = port
        self.log_path = DATA_DIR / "serve.log"
        # Not what this process's test settings put in the environment (high rate
        # limits, the in-memory broker): the server runs on production defaults.
        env = {
            k: v
            for k, v in os.environ.items()
            if k != "DJANGO_SETTINGS_MODULE" and not k.startswith("THROTTLE_")
        }
        env |= {
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CREDENTIALS_KEYS": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",  # plain HTTP on the loopback
            "PORT": str(port),
            "PYTHON": sys.executable,
            "GUNICORN_ACCESS_LOG": "",
            "WORKER_LOG_LEVEL": "WARNING",
        }
        env.pop("CELERY_BROKER_URL")  # the embedded broker, as `make serve` uses it
        self.process = subprocess.Popen(
            [str(ROOT / "scripts" / "serve"), role],
            cwd=ROOT,
            env=env,
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_until_up(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            check(self.process.poll() is None, "the server stopped:\n" + self.log_tail())
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("the server did not answer:\n" + self.log_tail())

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by every process of the server's group:
        gunicorn, the worker and beat. On a shared machine, a steadier figure than
        latency."""
        total = 0
        tick = os.sysconf("SC_CLK_TCK")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # After the command: state, ppid, pgrp, … utime (12th), stime (13th).
            if int(fields[2]) == self.process.pid:
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:]

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def healthz_baseline(port: int, count: int = 50) -> float | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        samples.append((time.perf_counter() - start) * 1000)
    return percentile(samples, 0.5)


def run(server: Server, slug: str, pairs: list[tuple[str, int]], requests: int, day0: int) -> dict:
    """Every client makes `requests` requests at once with the others; the figures."""
    port = server.port
    lock = threading.Lock()
    reads: list[float] = []
    pushes: list[float] = []
    errors: dict[str, int] = {}
    acknowledged = 0
    start = threading.Barrier(len(pairs) + 1)
    today = dt.datetime.now(dt.UTC).date()

    def client(token: str, metric_id: int) -> None:
        nonlocal acknowledged
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        start.wait()
        for index in range(requests):
            push = index % 2 == 1
            if push:
                period = today - dt.timedelta(days=day0 + index // 2 + 1)
                body = json.dumps({"period": period.isoformat(), "value": index})
                method, path, expected = "POST", f"/api/metrics/{metric_id}/observations/", 201
            else:
                body, method, path, expected = None, "GET", f"/api/trees/{slug}/", 200
            began = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                answer = connection.getresponse()
                content = answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException) as error:
                status, content = type(error).__name__, b""
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                (pushes if push else reads).append(elapsed)
                if status != expected:
                    key = f"{method} {status}"
                    errors[key] = errors.get(key, 0) + 1
                elif push:
                    acknowledged += json.loads(content)["values_written"]

    threads = [threading.Thread(target=client, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    cpu_before = server.cpu_seconds()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    # The worker may still be evaluating what was pushed: let it finish first.
    time.sleep(3)
    cpu = server.cpu_seconds() - cpu_before
    metric_ids = [metric_id for _, metric_id in pairs]
    first = today - dt.timedelta(days=day0 + requests)
    last = today - dt.timedelta(days=day0)
    stored = Observation.objects.filter(
        metric_id__in=metric_ids, period_start__date__gt=first, period_start__date__lte=last
    ).count()
    connection.close()
    return {
        "clients": len(pairs),
        "requests": len(reads) + len(pushes),
        "seconds": round(seconds, 1),
        "requests_per_second": round((len(reads) + len(pushes)) / seconds, 1),
        "server_cpu_ms_per_request": round(cpu * 1000 / (len(reads) + len(pushes)), 1),
        "errors": sum(errors.values()),
        "errors_by_kind": errors,
        "read_p50_ms": percentile(reads, 0.5),
        "read_p99_ms": percentile(reads, 0.99),
        "push_p50_ms": percentile(pushes, 0.5),
        "push_p99_ms": percentile(pushes, 0.99),
        "all_p50_ms": percentile(reads + pushes, 0.5),
        "all_p99_ms": percentile(reads + pushes, 0.99),
        "acknowledged": acknowledged,
        "stored": stored,
        "lost": acknowledged - stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 48])
    parser.add_argument("--requests", type=int, default=50, help="per client, half pushes")
    parser.add_argument(
        "--serve", choices=["all", "web"], default="all", help="web: no worker evaluating"
    )
    args = parser.parse_args()
    check(connection.vendor == "sqlite", "this benchmark measures the embedded SQLite default")

    log(f"Setting up {max(args.clients)} clients in {DATA_DIR} …")
    slug, pairs = set_up(max(args.clients))
    server = Server(free_port(), args.serve)
    try:
        server.wait_until_up()
        log("Server up; waiting for the worker and beat to settle …")
        time.sleep(5)
        baseline = healthz_baseline(server.port)
        runs = []
        day0 = 0
        for clients in args.clients:
            log(f"{clients} clients × {args.requests} requests …")
            runs.append(run(server, slug, pairs[:clients], args.requests, day0))
            log(json.dumps(runs[-1]))
            day0 += args.requests  # fresh periods: a run's values are its own
    finally:
        server.stop()
    by_clients = {result["clients"]: result for result in runs}
    targets = {}
    if 48 in by_clients:
        targets["no_errors_at_48"] = by_clients[48]["errors"] == 0
        targets["none_lost_at_48"] = by_clients[48]["lost"] == 0
    if 16 in by_clients:
        p99 = by_clients[16]["push_p99_ms"]
        targets["push_p99_at_16_within_1s"] = p99 is not None and p99 <= TARGET_PUSH_P99_MS_AT_16
    print(
        json.dumps(
            {
                "benchmark": "load",
                "database": "sqlite (embedded default, WAL)",
                "server": {
                    "entry_point": f"scripts/serve {args.serve}",
                    "web_concurrency": int(os.environ.get("WEB_CONCURRENCY", 2)),
                    "gunicorn_threads": int(os.environ.get("GUNICORN_THREADS", 8)),
                    "worker_threads": int(os.environ.get("WORKER_THREADS", 8)),
                },
                "tree_nodes": 5 + 5 * 4 + 5 * 4 * 5,
                "requests_per_client": args.requests,
                "baseline_healthz_p50_ms": baseline,
                "runs": runs,
                "targets_met": targets,
                "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
            }
        )
    )


if __name__ == "__main__":
    main()
