"""Measures of success attached to value tree nodes.

Pulled metrics, observations, verdicts and reviews build on these (DESIGN.md §3–5).
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords


class Direction(models.TextChoices):
    INCREASE = "increase", "Increase"
    DECREASE = "decrease", "Decrease"
    AT_LEAST = "at_least", "At least"
    AT_MOST = "at_most", "At most"


class MeasureKind(models.TextChoices):
    LEADING = "leading", "Leading"
    LAGGING = "lagging", "Lagging"


class Measure(models.Model):
    node = models.ForeignKey("valuetree.Node", on_delete=models.CASCADE, related_name="measures")
    name = models.CharField(max_length=200)
    unit = models.CharField(max_length=50, blank=True, help_text="%, EUR, days, count…")
    direction = models.CharField(max_length=10, choices=Direction.choices)
    baseline_value = models.FloatField()
    baseline_date = models.DateField()
    target_value = models.FloatField()
    target_date = models.DateField()
    kind = models.CharField(max_length=10, choices=MeasureKind.choices, default=MeasureKind.LAGGING)
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    is_guardrail = models.BooleanField(
        default=False, help_text="A guardrail can only lower its node's verdict."
    )
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["node_id", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(direction__in=Direction.values), name="measure_direction_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=MeasureKind.values), name="measure_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(target_date__gt=F("baseline_date")),
                name="measure_target_after_baseline",
            ),
            models.CheckConstraint(condition=Q(weight__gte=0), name="measure_weight_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name
