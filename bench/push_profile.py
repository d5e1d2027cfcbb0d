"""Benchmark: the server CPU one push and one tree read cost, end to end, with a profile.

Run from the repository root::

    .venv/bin/python bench/push_profile.py [--requests 200] [--top 25]

The load-independent figure behind `bench/load.py`: on a shared machine latency
follows the neighbours' load, while the CPU a request takes does not. It builds the
same tree as `bench/load.py` in a fresh SQLite database with the production settings
(DEBUG off, the embedded broker, the real throttles and middleware), then sends
`--requests` pushes (`POST /api/metrics/{id}/observations/`) and as many tree reads
(`GET /api/trees/{slug}/`) through Django's whole request stack (the WSGI handler
gunicorn calls, every middleware, knox, the throttles, the view), one at a time,
measuring process CPU time per request. Queued evaluations go to the embedded broker
as in production (the worker is not running: its CPU is not counted). With
`--top N` it prints the N functions that took the most CPU (cumulative) per kind of
request to stderr.

It prints one JSON object: CPU ms per push and per read (median, mean and the
fastest tenth, the steadiest on a shared machine), the
queries each makes, and the CPU ms of the evaluation the worker then runs for a push
(`evaluate_measures` of the metric's measure, run here in place).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

# Production settings, on a throw-away embedded database and broker.
DATA_DIR = Path(tempfile.mkdtemp(prefix="valuetree-push-profile-"))
os.environ |= {
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "DATA_DIR": str(DATA_DIR),
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "CREDENTIALS_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "127.0.0.1",
    "SECURE_SSL_REDIRECT": "0",
    "LOG_LEVEL": "WARNING",
}
for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "CACHE_URL"):
    os.environ.pop(name, None)
for name in [k for k in os.environ if k.startswith("THROTTLE_")]:
    os.environ.pop(name)

from _common import check, log  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from outcomes.models import Measure  # noqa: E402
from outcomes.services import metric_create, metric_source_create  # noqa: E402
from outcomes.tasks import evaluate_measures  # noqa: E402
from tests.factories import bulk_tree, make_role_users, make_tree, make_user  # noqa: E402
from valuetree import services  # noqa: E402


def set_up() -> tuple[str, str, int]:
    """The load benchmark's tree, and one editor's token and push metric."""
    call_command("migrate", verbosity=0)
    users = make_role_users()
    tree = make_tree(users, slug="load", name="Load")
    bulk_tree(tree, goals=5, bets=4, initiatives=5, measures=1)
    source = metric_source_create(tree=tree, kind="push", name="Pushed", config=None)
    user = make_user("client0")
    services.membership_set(tree=tree, user=user, role="editor")
    metric = metric_create(source=source, name="Client 0")
    measure = Measure.objects.filter(node__tree=tree).order_by("id").first()
    Measure.objects.filter(pk=measure.pk).update(metric=metric)
    # Tokens of other clients of the same user: knox's own lookup read them all.
    for index in range(4):
        services.api_token_create(user=user, name=f"other {index}")
    out = io.StringIO()
    call_command("issue_token", user.username, stdout=out)
    return tree.slug, out.getvalue().strip().splitlines()[-1], metric.pk


def call(app, method: str, path: str, token: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request through the WSGI application, as gunicorn makes it."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    answer: dict = {}

    def start_response(status: str, headers: list, exc_info=None) -> None:
        answer["status"] = int(status.split()[0])

    content = b"".join(app(environ, start_response))
    return answer["status"], content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="of each kind")
    parser.add_argument("--top", type=int, default=0, help="print the N costliest functions")
    args = parser.parse_args()
    check(connection.vendor == "sqlite", "this benchmark measures the embedded SQLite default")
    log(f"Setting up in {DATA_DIR} …")
    slug, token, metric_id = set_up()
    measure_ids = list(Measure.objects.filter(metric_id=metric_id).values_list("id", flat=True))
    app = get_wsgi_application()
    today = dt.datetime.now(dt.UTC).date()
    push_path, read_path = f"/api/metrics/{metric_id}/observations/", f"/api/trees/{slug}/"

    def push(index: int) -> tuple[int, bytes]:
        period = today - dt.timedelta(days=index + 1)
        body = json.dumps({"period": period.isoformat(), "value": index}).encode()
        return call(app, "POST", push_path, token, body)

    def read(index: int) -> tuple[int, bytes]:
        return call(app, "GET", read_path, token)

    # Warm up (imports, caches, the first connection), and count each request's queries.
    figures = {}
    for kind, fn, expected in (("push", push, 201), ("read", read, 200)):
        with CaptureQueriesContext(connection) as queries:
            status, content = fn(10_000)
        check(status == expected, f"{kind}: {status} {content[:300]!r}")
        figures[f"{kind}_queries"] = len(queries)
        fn(10_001)
    for kind, fn in (("push", push), ("read", read)):
        samples = []
        profile = cProfile.Profile() if args.top else None
        for index in range(args.requests):
            began = time.process_time()
            if profile:
                profile.enable()
            status, content = fn(index)
            if profile:
                profile.disable()
            samples.append((time.process_time() - began) * 1000)
            check(status in (200, 201), f"{kind}: {status} {content[:300]!r}")
        figures[f"{kind}_cpu_ms_median"] = round(statistics.median(samples), 2)
        figures[f"{kind}_cpu_ms_mean"] = round(statistics.mean(samples), 2)
        # The fastest tenth: the steadiest figure when neighbours share the cores.
        figures[f"{kind}_cpu_ms_p10"] = round(statistics.quantiles(samples, n=10)[0], 2)
        if kind == "push":
            # What the worker then does for each push: evaluate the metric's measure.
            evaluations = []
            for _ in range(args.requests // 4 or 1):
                began = time.process_time()
                evaluate_measures(measure_ids)
                evaluations.append((time.process_time() - began) * 1000)
            figures["evaluation_cpu_ms_median"] = round(statistics.median(evaluations), 2)
            figures["evaluation_cpu_ms_p10"] = round(statistics.quantiles(evaluations, n=10)[0], 2)
        if profile:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
            log(f"--- {kind} ---\n{out.getvalue()}")
    print(
        json.dumps(
            {
                "benchmark": "push_profile",
                "database": "sqlite (embedded default, WAL)",
                "requests_per_kind": args.requests,
                "profiled": bool(args.top),
                **figures,
                "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
            }
        )
    )


if __name__ == "__main__":
    main()
