"""Logs as JSON lines in production, and error reports to Sentry without credentials."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from config.observability import FILTERED, scrub_event
from tests.test_settings import PRODUCTION_ENV

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "probe-secret-key-7f3a9c2e1b8d4f6a0c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5"


class Capture(ThreadingHTTPServer):
    """A stand-in for Sentry's ingest: keeps every envelope posted to it."""

    daemon_threads = True

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Capture

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "br":  # sentry-sdk prefers brotli when it is installed
            import brotli

            body = brotli.decompress(body)
        self.server.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def sentry():
    server = Capture()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_errors_of_views_and_tasks_reach_sentry_without_credentials(sentry):
    port = sentry.server_address[1]
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "SENTRY_DSN": f"http://publickey@127.0.0.1:{port}/1",
        "SECRET_KEY": SECRET_KEY,
        "CELERY_BROKER_URL": "redis://:broker-secret-password@127.0.0.1:1/0",
        "PROBE_SECRET": "hunter2",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.ops.sentry_probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["500", "FAILURE"]
    sent = b"\n".join(sentry.bodies).decode()
    # Both errors were reported, the request's path with them …
    assert sent.count('"type":"RuntimeError"') + sent.count('"type": "RuntimeError"') >= 2, sent
    assert "/api/trees/" in sent
    assert "the task failed near" in sent
    # … and nothing that could open a door.
    # (The probe's secrets all start with "hunter2": body, header, cookie, query string,
    # local variables.)
    for secret in (SECRET_KEY, "hunter2", "broker-secret-password"):
        assert secret not in sent, secret
    assert FILTERED in sent


def test_scrub_event_keeps_the_error_and_drops_what_could_hold_credentials():
    event = {
        "message": f"failed with key {SECRET_KEY}",
        "request": {
            "url": "https://vt.example/api/metric-sources/",
            "method": "POST",
            "data": {"credentials": {"password": "pw"}},
            "cookies": {"sessionid": "abc"},
            "query_string": "token=abc&page=2",
            "headers": {
                "Authorization": "Token abc",
                "X-Api-Key": "k",
                "User-Agent": "curl/8",
                "Cookie": "sessionid=abc",
            },
            "env": {"REMOTE_ADDR": "203.0.113.7"},
        },
        "user": {"id": "4", "email": "pat@example.com", "ip_address": "203.0.113.7"},
        "breadcrumbs": {"values": [{"message": f"connect with {SECRET_KEY}"}]},
    }
    scrubbed = scrub_event(event, [SECRET_KEY, "short"])
    request = scrubbed["request"]
    assert request["headers"] == {"User-Agent": "curl/8"}
    assert "data" not in request and "cookies" not in request and "env" not in request
    assert request["query_string"] == f"token={FILTERED}&page={FILTERED}"
    assert request["url"] == "https://vt.example/api/metric-sources/"
    assert scrubbed["user"] == {"id": "4"}
    assert scrubbed["message"] == f"failed with key {FILTERED}"
    assert scrubbed["breadcrumbs"]["values"][0]["message"] == f"connect with {FILTERED}"


def log_lines(**env: str) -> list[str]:
    code = (
        "import django, logging; django.setup(); "
        "log = logging.getLogger('valuetree.probe'); log.warning('pull of %s failed', 7)\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    log.exception('evaluation broke')"
    )
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "LOG_FORMAT"}}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, **PRODUCTION_ENV, "CREDENTIALS_KEYS": "a" * 43 + "=", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stderr.splitlines() if "valuetree.probe" in line]


def test_production_logs_one_json_object_per_line(tmp_path):
    lines = log_lines(DATA_DIR=str(tmp_path))
    records = [json.loads(line) for line in lines]
    assert [(r["level"], r["logger"], r["message"]) for r in records] == [
        ("WARNING", "valuetree.probe", "pull of 7 failed"),
        ("ERROR", "valuetree.probe", "evaluation broke"),
    ]
    assert "ZeroDivisionError" in records[1]["exc_info"]
    assert all("timestamp" in record for record in records)


def test_log_format_text_and_debug_keep_plain_lines(tmp_path):
    for env in ({"LOG_FORMAT": "text"}, {"DEBUG": "1"}):
        lines = log_lines(DATA_DIR=str(tmp_path), **env)
        assert "WARNING valuetree.probe: pull of 7 failed" in lines[0], env
        with pytest.raises(json.JSONDecodeError):
            json.loads(lines[0])


@pytest.mark.parametrize(
    "path",
    [
        "/reports/calendar/eyJ1Ijo0fQ:1vX3kq:s1gNaTuRe.ics",
        "/reports/unsubscribe/eyJ1Ijo0fQ:s1gNaTuRe/",
    ],
)
def test_scrub_event_blanks_the_signed_token_of_a_capability_url(path):
    """A calendar feed's or an unsubscribe link's address is its credential: an error
    (or a traced request) there must not carry it to Sentry."""
    event = {"request": {"url": f"https://vt.example{path}", "method": "GET"}}
    url = scrub_event(event, [])["request"]["url"]
    assert "s1gNaTuRe" not in url and "eyJ1Ijo0fQ" not in url
    assert url.startswith("https://vt.example/reports/")
