"""The service as it runs at work, end to end over HTTP.

The production entry point (`scripts/serve web`, `worker` and `beat`: gunicorn, a
Celery worker, Celery beat) runs with DEBUG off, a real SECRET_KEY and Fernet key, on
PostgreSQL (pytest's test database) and a Redis of its own, behind a pretend TLS proxy
(X-Forwarded-Proto). A user's API journey — a token from `manage.py issue_token`, a
tree, a measure, values pushed, the verdict the worker computes, the exports — runs
against it, with the security headers (CSP included), /readyz and JSON logs checked;
then everything is stopped.

Marker `production`: the PostgreSQL pass of scripts/test runs it (the server shares
the test database, which SQLite's in-memory test database cannot).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from tests.factories import make_user
from tests.workers import RedisServer, database_url_of, free_port, in_ci

pytestmark = [
    pytest.mark.production,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ROOT = Path(__file__).resolve().parents[2]
# Variables of the test process that the production processes must not inherit.
TEST_ONLY = {
    "DJANGO_SETTINGS_MODULE",
    "DEBUG",
    "SECRET_KEY",
    "CREDENTIALS_KEYS",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "CACHE_URL",
    "LOG_FORMAT",
}


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        if in_ci():
            pytest.fail("CI runs the production test in the PostgreSQL pass.")
        pytest.skip("the production test runs in the PostgreSQL pass (scripts/test)")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def production_env(postgresql, redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if k not in TEST_ONLY and not k.startswith("THROTTLE_")
    }
    return base | {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CREDENTIALS_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url_of(connection),
        "REDIS_URL": redis_server.url,
        "DATA_DIR": str(tmp_path / "data"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "TRUST_X_FORWARDED_PROTO": "1",
        "MIGRATE_ON_START": "0",  # pytest-django migrated the test database
        "PORT": str(free_port()),
        "PYTHON": sys.executable,
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "WORKER_THREADS": "2",
        "PYTHONUNBUFFERED": "1",
    }


class Service:
    """One `scripts/serve <role>` process group, its output in a file."""

    def __init__(self, role: str, env: dict[str, str], folder: Path) -> None:
        self.role = role
        self.log = folder / f"{role}.log"
        self.process = subprocess.Popen(
            ["scripts/serve", role],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def tail(self) -> str:
        return f"--- {self.role} ---\n" + self.log.read_text()[-2500:]


@pytest.fixture
def services(production_env: dict[str, str], tmp_path: Path) -> Iterator[list[Service]]:
    running = [Service(role, production_env, tmp_path) for role in ("web", "worker", "beat")]
    yield running
    for service in running:
        service.stop()


class Http:
    """A client that talks to the server as a TLS proxy in front of it would."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = ""

    def call(
        self, method: str, path: str, body: Any = None, *, proxy: bool = True, **headers: str
    ) -> tuple[int, Any, bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if proxy:
            request.add_header("X-Forwarded-Proto", "https")
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=30) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def json(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, _, content = self.call(method, path, body)
        assert status == expect, (method, path, status, content[:500])
        return json.loads(content)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def wait_for(condition: Callable[[], bool], what: str, services: list[Service], timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for service in services:
            assert service.process.poll() is None, service.tail()
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"Timed out waiting for {what}.\n" + "\n".join(s.tail() for s in services))


def test_an_api_journey_against_the_production_server(production_env, services):
    http = Http(int(production_env["PORT"]))
    make_user("pat")
    issued = subprocess.run(
        [sys.executable, "manage.py", "issue_token", "pat"],
        cwd=ROOT,
        env=production_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]

    # Up, then ready: database, Redis, beat's and the worker's heartbeats.
    wait_for(lambda: http.call("GET", "/healthz", proxy=False)[0] == 200, "/healthz", services)
    wait_for(lambda: http.call("GET", "/readyz", proxy=False)[0] == 200, "/readyz", services)

    # Without the proxy's header the request is sent to HTTPS; anonymous API calls 401.
    status, headers, _ = http.call("GET", "/api/trees/", proxy=False)
    assert status == 301 and headers["Location"].startswith("https://")
    assert http.call("GET", "/api/trees/")[0] == 401

    # The journey: a tree, a goal, a push metric and its measure, values, the verdict.
    http.token = token
    http.json("POST", "/api/trees/", {"name": "Journey", "slug": "journey", "vision": "V"}, 201)
    goal = http.json("POST", "/api/trees/journey/nodes/", {"title": "Results sooner"}, 201)
    source = http.json(
        "POST", "/api/metric-sources/", {"tree": "journey", "kind": "push", "name": "Lab"}, 201
    )
    metric = http.json("POST", "/api/metrics/", {"source": source["id"], "name": "TAT"}, 201)
    today = dt.datetime.now(dt.UTC).date()
    measure = http.json(
        "POST",
        f"/api/nodes/{goal['id']}/measures/",
        {
            "name": "Turnaround hours",
            "direction": "decrease",
            "baseline_value": 48,
            "baseline_date": str(today - dt.timedelta(days=60)),
            "target_value": 24,
            "target_date": str(today + dt.timedelta(days=300)),
            "metric": metric["id"],
        },
        201,
    )
    values = [
        {"period": str(today - dt.timedelta(days=days)), "value": 48 - (30 - days) * 0.5}
        for days in range(30, 0, -1)
    ]
    pushed = http.json("POST", f"/api/metrics/{metric['id']}/observations/", values, 201)
    assert pushed["values_written"] == 30

    # The worker evaluates after the push (a task through Redis): a verdict appears.
    def verdicts() -> list[dict]:
        return http.json("GET", f"/api/measures/{measure['id']}/verdicts/")["results"]

    wait_for(lambda: bool(verdicts()), "the worker's verdict", services, timeout=90)
    verdict = verdicts()[0]
    assert verdict["status"] in {"on_track", "at_risk", "off_track", "achieved"}
    assert verdict["latest_value"] == pytest.approx(33.5)  # yesterday's value

    status, headers, csv_body = http.call(
        "GET", "/api/verdicts/export/?tree=journey", Accept="text/csv"
    )
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert "Turnaround hours" in csv_body.decode()
    status, _, document = http.call("GET", "/api/trees/journey/export/?format=yaml")
    assert status == 200 and b"Results sooner" in document

    # Security headers on a page and on the API.
    for path in ("/accounts/login/", "/api/trees/journey/"):
        status, headers, _ = http.call("GET", path)
        assert status == 200, path
        assert "script-src 'self'" in headers["Content-Security-Policy"], path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000"), path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["Referrer-Policy"] == "same-origin", path
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin", path
    _, headers, _ = http.call("GET", "/accounts/login/")
    assert "Secure" in headers["Set-Cookie"]
    status, _, missing = http.call("GET", "/no-such-page/")
    assert status == 404 and b"URLconf" not in missing  # DEBUG is off

    # Ready at the end, every check passing.
    readiness = json.loads(http.call("GET", "/readyz", proxy=False)[2])
    assert readiness["status"] == "ok", readiness
    assert all(check["ok"] for check in readiness["checks"].values())

    # The web server's log is JSON lines: gunicorn's own and the access log.
    web = services[0].log.read_text().splitlines()
    records = [json.loads(line) for line in web if line.strip()]
    assert any(record["logger"] == "gunicorn.access" for record in records)
    assert any("Listening at" in record["message"] for record in records)
