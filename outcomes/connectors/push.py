"""Push: values arrive through the API, a CSV upload or a check-in; nothing is pulled."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from outcomes.connectors.base import (
    PERIOD_UNIT_OPTION,
    FetchRequest,
    PullError,
    RawPoint,
    period_unit_problem,
)


class PushConnector:
    kind = "push"
    uses_window = False
    samples_periods = False

    def validate_source(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        if config or credentials:
            raise ValidationError({"config": "A push source has no connection settings."})

    def validate_metric(self, query: str, options: dict[str, Any]) -> None:
        if query.strip():
            raise ValidationError({"query": "A push metric has no query: values are sent to it."})
        errors = {
            f"options.{name}": "Unknown option: a push metric has only period_unit."
            for name in options
            if name != PERIOD_UNIT_OPTION
        }
        if problem := period_unit_problem(options):
            errors[f"options.{PERIOD_UNIT_OPTION}"] = problem
        if errors:
            raise ValidationError(errors)

    def origin(self, config: dict[str, Any]) -> None:
        return None  # nothing is sent anywhere

    def fetch(self, request: FetchRequest) -> list[RawPoint]:
        raise PullError(
            "A push metric is not pulled: send values to POST /api/metrics/{id}/observations/, "
            "upload a CSV or check in on the node page."
        )


CONNECTOR = PushConnector()
