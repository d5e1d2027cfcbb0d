"""Figures for people (valuetree.outline.format_number): the node page's and tree
outline's values, baselines and targets."""

from __future__ import annotations

from decimal import Decimal

import pytest

from valuetree.outline import format_amount, format_number


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (60000.0, "60,000"),
        (1234.5, "1,234.5"),
        (0.12345, "0.123"),
        (-0.0, "0"),
        (0.0007, "0.0007"),
        # A small rate read "3.46e-06" beside its unit.
        (3.456e-6, "0.00000346"),
        (-1e-7, "-0.0000001"),
        (1e-300, "1e-300"),
        (None, "—"),
    ],
)
def test_figures_read_as_people_write_them(value, words):
    assert format_number(value) == words


def test_a_small_amount_keeps_its_unit():
    assert format_amount(2.5e-5, "ratio") == "0.000025 ratio"
    assert format_amount(Decimal("0.50"), "EUR") == "0.5 EUR"
