"""Template tags that draw what the outline draws in Python (valuetree/outline.py), so
a verdict, an amount or a measure's state looks the same on every page."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from valuetree import outline

register = template.Library()


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


@register.simple_tag
def verdict(obj: Any, label: str | None = None) -> SafeString:
    """``{% verdict v %}``: the verdict badge of anything that has a ``status``: a
    Verdict, a ``values()`` row, a ``{"status", "label", "reason"}`` dict, a
    ``(status, label)`` pair or a bare status. ``reason`` is shown when there is one;
    an unknown status is drawn grey with its name; nothing at all, "No verdict yet"."""
    if isinstance(obj, tuple | list):
        status, label = (list(obj) + [None, None])[:2]
        reason = ""
    elif isinstance(obj, str) or obj is None:
        status, reason = obj, ""
    else:
        status = _get(obj, "status")
        label = label or _get(obj, "label") or _get(obj, "status_label")
        reason = _get(obj, "reason") or ""
        if not label and hasattr(obj, "get_status_display"):
            try:
                label = obj.get_status_display()
            except (KeyError, ValueError):
                label = None
        if label == status:  # get_status_display of an unknown status gives it back
            label = None
    return mark_safe(outline.verdict_badge(status, label, reason))  # noqa: S308 — escaped there


@register.filter
def amount(value: Any, unit: str | None = "") -> str:
    """``{{ node.investment_amount|amount:node.investment_unit }}`` → "60,000 EUR"."""
    return outline.format_amount(value, unit)


@register.filter
def number(value: Any) -> str:
    return outline.format_number(value)


@register.filter
def figure(value: Any) -> str:
    """``{{ edit.from|figure }}``: a number for people, a date or word as it is."""
    return outline.format_figure(value)


@register.simple_tag
def measure_state(measure: Any, state: dict[str, Any] | None) -> SafeString:
    """How a measure is doing (value, progress, sparkline, verdict), as on the outline."""
    row = {
        name: _get(measure, name)
        for name in ("id", "name", "unit", "baseline_value", "target_value", "target_date")
    }
    html = outline.measure_state(row, state, name=False, plan=False)
    return mark_safe(html)  # noqa: S308 — escaped there


@register.filter
def plural(count: int, words: str) -> str:
    """``{{ n|plural:"initiative,initiatives" }}`` → "1 initiative"."""
    singular, _, many = words.partition(",")
    return outline.plural(count, singular, many or None)


@register.filter
def words(value: Any) -> str:
    """A code as words: ``{{ "on_track"|words }}`` is "on track", ``"target_value"``
    "target value" (``cut:"_"`` made them "ontrack" and "targetvalue")."""
    return str(value).replace("_", " ") if value is not None else ""
