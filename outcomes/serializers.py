from __future__ import annotations

from rest_framework import serializers

from outcomes.models import Measure

MEASURE_API_FIELDS = [
    "id",
    "node",
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
    "created_at",
    "updated_at",
]


class MeasureSerializer(serializers.ModelSerializer):
    class Meta:
        model = Measure
        fields = MEASURE_API_FIELDS
        read_only_fields = ["id", "node", "created_at", "updated_at"]


class MeasureItemSerializer(serializers.ModelSerializer):
    """One measure inside an imported tree document (no ids: the node is its place)."""

    class Meta:
        model = Measure
        fields = [
            f for f in MEASURE_API_FIELDS if f not in {"id", "node", "created_at", "updated_at"}
        ]
