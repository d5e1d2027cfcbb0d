"""Push: values arrive through the API, a CSV upload or a check-in; nothing is pulled."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from outcomes.connectors.base import FetchRequest, PullError, RawPoint


class PushConnector:
    kind = "push"
    uses_window = False
    samples_periods = False

    def validate_source(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        if config or credentials:
            raise ValidationError({"config": "A push source has no connection settings."})

    def validate_metric(self, query: str, options: dict[str, Any]) -> None:
        if query.strip() or options:
            raise ValidationError({"query": "A push metric has no query: values are sent to it."})

    def origin(self, config: dict[str, Any]) -> None:
        return None  # nothing is sent anywhere

    def fetch(self, request: FetchRequest) -> list[RawPoint]:
        raise PullError(
            "A push metric is not pulled: send values to POST /api/metrics/{id}/observations/, "
            "upload a CSV or check in on the node page."
        )


CONNECTOR = PushConnector()
