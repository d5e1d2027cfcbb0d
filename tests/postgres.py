"""Where the tests find PostgreSQL: ``TEST_POSTGRES_URL`` (the server `scripts/test`
uses for its PostgreSQL pass), else ``postgres://postgres@127.0.0.1:5432/valuetree``.

Tests that make databases of their own (the SQL connector's scratch warehouse) name
them per xdist worker, so parallel processes never drop each other's database.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote, urlsplit

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/valuetree"


def server_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL") or DEFAULT_URL


def _parts() -> Any:
    return urlsplit(server_url())


def host() -> str:
    return _parts().hostname or "127.0.0.1"


def port() -> int:
    return _parts().port or 5432


def admin_params(**extra: Any) -> dict[str, Any]:
    """psycopg.connect() keyword arguments for the server (add ``dbname``)."""
    parts = _parts()
    params: dict[str, Any] = {
        "host": host(),
        "port": port(),
        "user": parts.username or "postgres",
        "connect_timeout": 3,
    }
    if parts.password:
        params["password"] = parts.password
    return params | extra


def url(dbname: str, *, scheme: str = "postgresql") -> str:
    """A URL of database ``dbname`` on the server."""
    parts = _parts()
    user = quote(parts.username or "postgres", safe="")
    password = f":{quote(parts.password, safe='')}" if parts.password else ""
    return f"{scheme}://{user}{password}@{host()}:{port()}/{dbname}"


def per_worker(name: str) -> str:
    """``name`` with the xdist worker's id (gw0, gw1…) appended when running under xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{name}_{worker}" if worker else name
