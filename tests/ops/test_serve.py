"""The production entry point: `scripts/serve web` (gunicorn, DEBUG off, whitenoise),
its request limits, and the deployment files (Dockerfile, compose.yaml)."""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.db import connection

from tests.workers import free_port

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x7Jq2-production-like-secret-9fK3mZp0vR8tL1wB6yN4cH5dG2sA7eQ0uI",
    "CREDENTIALS_KEYS": "dGVzdC1vbmx5LWNyZWRlbnRpYWxzLWtleS0wMTIzNDU=",
    "ALLOWED_HOSTS": "127.0.0.1",
    "SECURE_SSL_REDIRECT": "0",
}


def get(url: str, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        return urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        return error


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"scripts/serve stopped:\n{process.stdout.read()[-3000:]}")
        try:
            if get(url).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="serves the embedded default; runs in the SQLite pass"
)
def test_scripts_serve_web_runs_gunicorn_with_hashed_compressed_static_files(tmp_path):
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env |= PRODUCTION_ENV | {
        "DATA_DIR": str(tmp_path),
        "PORT": str(port),
        "PYTHON": sys.executable,
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
        "REQUEST_MAX_BYTES": "1000",
    }
    process = subprocess.Popen(
        ["scripts/serve", "web"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/healthz", process)
        login = get(f"{base}/accounts/login/")
        assert login.status == 200
        assert login.headers["Server"] == "gunicorn"
        # Whitenoise: hashed names, served compressed and cached for ever.
        page = get(f"{base}/api/docs/").read().decode()
        script = re.search(r'src="(/static/[^"]+\.[0-9a-f]{12}\.js)"', page)
        assert script, page[:2000]
        asset = get(base + script.group(1), {"Accept-Encoding": "gzip"})
        assert asset.status == 200
        assert asset.headers["Content-Encoding"] == "gzip"
        assert "immutable" in asset.headers["Cache-Control"]
        # DEBUG is off: a missing page is the plain 404, no traceback or URL list.
        missing = get(f"{base}/no-such-page/")
        assert missing.status == 404
        assert "URLconf" not in missing.read().decode()
        # The body limit answers 413 before anything reads the body.
        big = urllib.request.Request(
            f"{base}/api/trees/", data=b"x" * 2000, headers={"Content-Type": "application/json"}
        )
        try:
            urllib.request.urlopen(big, timeout=10)
            status = 200
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode()
        assert status == 413
        assert "REQUEST_MAX_BYTES" in body
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)


def test_request_size_limit_refuses_a_large_body_and_changes_nothing(client_for, users, settings):
    from valuetree.models import ValueTree

    settings.REQUEST_MAX_BYTES = 500
    client = client_for(users["owner"])
    answer = client.post(
        "/api/trees/",
        {"name": "Big", "slug": "big", "vision": "v" * 1000},
        format="json",
    )
    assert answer.status_code == 413
    assert "at most 500 are accepted" in answer.json()["detail"]
    assert not ValueTree.objects.filter(slug="big").exists()
    small = client.post("/api/trees/", {"name": "S", "slug": "s", "vision": "v"}, format="json")
    assert small.status_code == 201


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    monkeypatch.setenv("GUNICORN_TIMEOUT", "45")
    monkeypatch.setenv("GUNICORN_LIMIT_REQUEST_LINE", "4096")
    monkeypatch.setenv("PORT", "9001")
    import config.gunicorn as gunicorn_config

    gunicorn_config = importlib.reload(gunicorn_config)
    assert (gunicorn_config.workers, gunicorn_config.timeout) == (5, 45)
    assert gunicorn_config.limit_request_line == 4096
    assert gunicorn_config.bind == "0.0.0.0:9001"
    assert gunicorn_config.worker_class == "gthread"


def test_compose_runs_every_part_with_health_checks_and_secrets_from_the_environment():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"web", "worker", "beat", "db", "redis"}
    for name, service in services.items():
        assert "healthcheck" in service, name
    assert services["web"]["command"] == ["scripts/serve", "web"]
    assert services["worker"]["command"] == ["scripts/serve", "worker"]
    assert services["beat"]["command"] == ["scripts/serve", "beat"]
    assert {"data", "pgdata", "redisdata"} <= set(compose["volumes"])
    environment = services["web"]["environment"]
    for secret in ("SECRET_KEY", "CREDENTIALS_KEYS"):
        assert environment[secret].startswith("${" + secret + ":?"), secret
    assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"]
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert environment["DEBUG"] == "0"


def test_docker_image_collects_static_files_and_leaves_local_files_out():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "collectstatic" in dockerfile
    assert 'CMD ["scripts/serve", "web"]' in dockerfile
    assert "USER valuetree" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "var", ".git"} <= set(ignored)


def test_the_gunicorn_master_imports_every_view_before_the_workers_fork(django_db_setup):
    """config/gunicorn.py's when_ready: no worker's first request waits for the imports
    (bench/load.py: the first 16 reads took 3 s), and no connection is inherited."""
    script = (
        "import sys, django; django.setup()\n"
        "import config.gunicorn as g\n"
        "from django.db import connection\n"
        "connection.ensure_connection()\n"
        "assert 'outcomes.apis' not in sys.modules\n"
        "g.when_ready(None)\n"
        "assert {'outcomes.apis', 'valuetree.apis', 'config.urls'} <= set(sys.modules)\n"
        "assert connection.connection is None\n"
        "print('ok')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    if connection.vendor == "postgresql":
        # The subprocess connects to this session's test database: the database named in
        # DATABASE_URL itself need not exist on a clean machine (only test_* are created).
        url = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
        env["DATABASE_URL"] = urllib.parse.urlunsplit(
            url._replace(path="/" + connection.settings_dict["NAME"])
        )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_production_worker_consumes_every_queue_a_task_is_routed_to(settings):
    """`scripts/serve worker` (compose's worker) listened on pulls, verdicts and celery:
    scheduled reviews, report deliveries and notification e-mails, routed to `reports`,
    waited in Redis forever. `scripts/run` (make run) must consume them all too."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    routed.add(settings.CELERY_TASK_DEFAULT_QUEUE)
    serve = (ROOT / "scripts/serve").read_text()
    [default] = re.findall(r"WORKER_QUEUES:-([\w,]+)", serve)
    assert set(default.split(",")) >= routed
    run = (ROOT / "scripts/run").read_text()
    [listed] = re.findall(r"worker --queues ([\w,]+)", run)
    assert set(listed.split(",")) >= routed
