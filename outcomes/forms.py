from __future__ import annotations

from django import forms

from outcomes.models import Measure
from outcomes.services import MEASURE_FIELDS
from valuetree.forms import ServiceModelForm


class MeasureForm(ServiceModelForm):
    class Meta:
        model = Measure
        fields = list(MEASURE_FIELDS)
        widgets = {
            "baseline_date": forms.DateInput(attrs={"type": "date"}),
            "target_date": forms.DateInput(attrs={"type": "date"}),
        }
        labels = {"is_guardrail": "Guardrail (can only lower the node's verdict)"}
