"""Input is taken as the schema types it, not coerced (issue 14 §7).

DRF coerces what it can: ``"description": 0`` becomes ``"0"``, ``"at_risk_within":
false`` becomes ``0.0``, ``"node": "5"`` becomes node 5. django-filter ignores a query
value it cannot read (``?is_active=null`` filters nothing). A client that sends the
wrong type has a bug it should hear about, and the OpenAPI schema should be the whole
truth about what is accepted, so:

- ``Serializer`` / ``ModelSerializer`` here refuse a JSON value whose type is not the
  field's (400 naming the field). Every API serializer derives from them. Query
  strings and form data are text by nature and are not checked this way.
- ``FilterSet`` / ``DjangoFilterBackend`` here read booleans as ``true`` or ``false``
  only, and refuse an empty value (leave the parameter out instead).
- ``query_bool`` reads a boolean query parameter of a view the same way.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import django_filters
from django import forms
from django.db import models
from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend as BaseDjangoFilterBackend
from django_filters.rest_framework import FilterSet as BaseFilterSet
from django_filters.rest_framework.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from rest_framework import relations, serializers
from rest_framework.exceptions import ValidationError

# (field class, accepted JSON types, what to call them), most specific first.
_NUMBER = (int, float)
JSON_TYPES: list[tuple[type, tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "true or false"),
    (serializers.IntegerField, (int,), "a whole number"),
    (serializers.FloatField, _NUMBER, "a number"),
    (serializers.DecimalField, (str, Decimal), 'a decimal string such as "1250.50"'),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.CharField, (str,), "a string"),
    # Documents read from YAML hold dates and times already.
    (serializers.DateTimeField, (str, datetime), "an ISO 8601 date and time"),
    (serializers.DateField, (str, date), "an ISO 8601 date"),
    (serializers.TimeField, (str, time), "an ISO 8601 time"),
    (serializers.DurationField, (str, timedelta), 'a duration such as "1 00:00:00"'),
    (relations.PrimaryKeyRelatedField, (int,), "an id (a whole number)"),
    (relations.SlugRelatedField, (str,), "a string"),
]


def json_type_error(field: serializers.Field, value: Any) -> str | None:
    """Why ``value`` (parsed JSON) cannot be ``field``'s input, or None when it can."""
    if value is None:
        return None  # the field's own allow_null decides
    for field_class, types, words in JSON_TYPES:
        if isinstance(field, field_class):
            wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
            if not wrong:
                return None
            # DRF's own words where they need no arguments ("A valid number is required.").
            own = str(field.error_messages.get("invalid", ""))
            return (
                own if own and "{" not in own else f"Expected {words}, not {type(value).__name__}."
            )
    return None


class StrictTypes:
    """Refuses JSON values of the wrong type before DRF would coerce them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            errors = {}
            for field in self._writable_fields:
                if field.source == "*" or field.field_name not in data:
                    continue
                problem = json_type_error(field, data[field.field_name])
                if problem:
                    errors[field.field_name] = [problem]
            if errors:
                raise ValidationError(errors)
        return super().to_internal_value(data)


class Serializer(StrictTypes, serializers.Serializer):
    pass


class ModelSerializer(StrictTypes, serializers.ModelSerializer):
    pass


# --- Query parameters ------------------------------------------------------------------

TRUE_FALSE = {"true": True, "false": False}


def query_bool(value: str | None, *, name: str) -> bool | None:
    """A boolean query parameter: ``true``, ``false`` or absent (None); else a 400."""
    if value is None:
        return None
    if value not in TRUE_FALSE:
        raise ValidationError({name: ["Use true or false."]})
    return TRUE_FALSE[value]


def is_id(value: Any) -> bool:
    """Whether ``value`` (text from a query string, a form or a JSON body) reads as a
    row id: ASCII digits only. Not ``str.isdigit()`` alone: "²" and "٣" are digits
    that ``int()`` or the ORM refuse, a 500 where a 404 belongs."""
    text = str(value).strip()
    return not isinstance(value, bool) and text.isascii() and text.isdigit()


class TrueFalseField(forms.Field):
    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if value not in TRUE_FALSE:
            raise forms.ValidationError("Use true or false.", code="invalid")
        return TRUE_FALSE[value]


class BooleanFilter(django_filters.BooleanFilter):
    """``true`` or ``false``; anything else is a 400 (django-filter ignores it)."""

    field_class = TrueFalseField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


STRICT_DEFAULTS = {
    **FILTER_FOR_DBFIELD_DEFAULTS,
    models.BooleanField: {"filter_class": BooleanFilter},
    models.NullBooleanField: {"filter_class": BooleanFilter},
}


class FilterSet(BaseFilterSet):
    """A FilterSet whose booleans are strict and whose empty values are refused."""

    FILTER_DEFAULTS = STRICT_DEFAULTS

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name in self.filters:
            if self.data.get(name) == "":
                self.form.add_error(name, "Give a value, or leave the parameter out.")
                valid = False
        return valid


class DjangoFilterBackend(BaseDjangoFilterBackend):
    filterset_base = FilterSet


__all__ = [
    "BooleanFilter",
    "DjangoFilterBackend",
    "FilterSet",
    "ModelSerializer",
    "Serializer",
    "json_type_error",
    "query_bool",
]
