"""Writes to measures."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from outcomes.models import Direction, Measure
from valuetree.models import Node

MEASURE_FIELDS = (
    "name",
    "unit",
    "direction",
    "baseline_value",
    "baseline_date",
    "target_value",
    "target_date",
    "kind",
    "weight",
    "is_guardrail",
)


def measure_validate(measure: Measure) -> None:
    """Field checks plus the rules that tie fields together, with messages a user can act on."""
    measure.full_clean()
    if measure.direction == Direction.INCREASE and measure.target_value <= measure.baseline_value:
        raise ValidationError(
            {"target_value": "An 'increase' measure needs a target above its baseline."}
        )
    if measure.direction == Direction.DECREASE and measure.target_value >= measure.baseline_value:
        raise ValidationError(
            {"target_value": "A 'decrease' measure needs a target below its baseline."}
        )


def _measure_build(*, node_id: int, position: int, fields: dict[str, Any]) -> Measure:
    unknown = set(fields) - set(MEASURE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
    measure = Measure(node_id=node_id, position=position, **fields)
    measure_validate(measure)
    return measure


@transaction.atomic
def measure_create(*, node: Node, **fields: Any) -> Measure:
    top = Measure.objects.filter(node=node).aggregate(top=Max("position"))["top"]
    measure = _measure_build(node_id=node.pk, position=0 if top is None else top + 1, fields=fields)
    measure.save()
    return measure


def measure_update(*, measure: Measure, **fields: Any) -> Measure:
    unknown = set(fields) - set(MEASURE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be changed here."))
    for name, value in fields.items():
        setattr(measure, name, value)
    measure_validate(measure)
    measure.save()
    return measure


def measure_delete(*, measure: Measure) -> None:
    measure.delete()


def measure_create_at(node_id: int, position: int, fields: dict[str, Any]) -> Measure:
    """Create a measure at a given position (tree import, where the node is new)."""
    measure = _measure_build(node_id=node_id, position=position, fields=fields)
    measure.save()
    return measure
