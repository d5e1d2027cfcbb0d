"""Connectors for metric sources, one module per kind behind the interface in base.py."""

from __future__ import annotations

from outcomes.connectors.base import (
    Connector,
    FetchRequest,
    PullError,
    RawPoint,
    TransientPullError,
)

__all__ = ["Connector", "FetchRequest", "PullError", "RawPoint", "TransientPullError", "get"]


def get(kind: str) -> Connector:
    """The connector for a source kind (imported on first use: SQLAlchemy is heavy)."""
    from outcomes.connectors import http_json, prometheus, push, sql

    connectors: dict[str, Connector] = {
        "push": push.CONNECTOR,
        "http_json": http_json.CONNECTOR,
        "sql": sql.CONNECTOR,
        "prometheus": prometheus.CONNECTOR,
    }
    return connectors[kind]
