from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from outcomes.models import Measure


@admin.register(Measure)
class MeasureAdmin(SimpleHistoryAdmin):
    list_display = ["name", "node", "direction", "baseline_value", "target_value", "target_date"]
    list_filter = ["direction", "kind", "is_guardrail"]
    search_fields = ["name", "node__title"]
    raw_id_fields = ["node"]
    list_select_related = ["node"]
