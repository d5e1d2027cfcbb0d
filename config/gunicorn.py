"""Gunicorn settings for the production entry point (`scripts/serve`), from the environment.

Every value has a default that suits one small host; see README.md, "Running it at work".
Request bodies are limited in Django (`REQUEST_MAX_BYTES`, config/middleware.py), because
gunicorn limits only the request line and headers.
"""

from __future__ import annotations

from config.env import env_bool, env_int, env_str
from config.observability import gunicorn_logging_config

bind = env_str("BIND", "") or f"0.0.0.0:{env_int('PORT', 8000)}"
# Processes × threads answer requests at once. Threads suit this app: requests wait on
# the database far more than they compute.
workers = env_int("WEB_CONCURRENCY", 2)
worker_class = "gthread"
threads = env_int("GUNICORN_THREADS", 8)
# A request that runs longer than this is killed (its worker restarts) and answers 502.
timeout = env_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = env_int("GUNICORN_KEEPALIVE", 5)
# Restart a worker after this many requests (± jitter) to bound a slow leak; off by
# default, because a restart drops the keep-alive connections it holds (clients see a
# reset connection, bench/load.py counted them).
max_requests = env_int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = env_int("GUNICORN_MAX_REQUESTS_JITTER", 200)
# The request line and headers: what an HTTP request may carry before Django sees it.
limit_request_line = env_int("GUNICORN_LIMIT_REQUEST_LINE", 8190)
limit_request_fields = env_int("GUNICORN_LIMIT_REQUEST_FIELDS", 100)
limit_request_field_size = env_int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 8190)
# Load the app once in the master, so a broken configuration stops the start-up.
preload_app = True


def when_ready(server: object) -> None:
    """In the master, after the app is loaded and before the workers fork: import the
    URLconf, and with it every view, serializer and library they use (Django imports it
    at the first request). Otherwise each worker's first requests wait for those imports
    — 0.7 s of CPU — together: bench/load.py's first 16 reads took 3 s. Any connection
    opened meanwhile is closed, so no worker inherits one."""
    from django.db import connections
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 — the import is the point
    connections.close_all()


# Logs go to the console, as JSON lines like Django's unless DEBUG or LOG_FORMAT=text.
accesslog = env_str("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
if (env_str("LOG_FORMAT", "") or ("text" if env_bool("DEBUG", False) else "json")) == "json":
    logconfig_dict = gunicorn_logging_config()
forwarded_allow_ips = env_str("FORWARDED_ALLOW_IPS", "127.0.0.1")
