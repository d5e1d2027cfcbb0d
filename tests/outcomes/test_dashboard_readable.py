"""The dashboard answers its own question (issue 15, defect 5): sums by unit, goals
labelled by name, whole-number count axes, readable sunburst and bubble labels, and
a table of words beside every chart."""

from __future__ import annotations

import pytest

from outcomes import dashboard
from outcomes.selectors import tree_outcomes
from tests.outcomes.test_dashboard import figure_from
from valuetree import services


@pytest.fixture
def portfolio(tree):
    """Helix's goal with two bets: one valued in EUR, one in person-weeks."""
    services.tree_update(tree=tree, name="Helix Diagnostics — from data lake to decisions")
    goal = services.node_create(tree=tree, parent=None, title="Results reach clinicians sooner")
    money = services.node_create(
        tree=tree,
        parent=goal,
        title="Sell results to clinics",
        investment_amount="60000",
        investment_unit="EUR",
        expected_value_amount="250000",
        expected_value_unit="EUR",
    )
    effort = services.node_create(
        tree=tree,
        parent=goal,
        title="Automate re-runs",
        investment_amount="4",
        investment_unit="person-weeks",
        expected_value_amount="30",
        expected_value_unit="person-weeks",
    )
    return {"goal": goal, "money": money, "effort": effort}


@pytest.mark.django_db
def test_amounts_in_different_units_are_never_added(tree, portfolio):
    outcome = tree_outcomes([tree.pk])[portfolio["goal"].pk]
    assert outcome.expected_by_unit == {"EUR": 250000.0, "person-weeks": 30.0}
    assert outcome.investment_by_unit == {"EUR": 60000.0, "person-weeks": 4.0}
    assert outcome.expected_value is None  # never 250030
    assert outcome.investment is None
    bet = tree_outcomes([tree.pk])[portfolio["money"].pk]
    assert (bet.expected_value, bet.value_unit) == (250000.0, "EUR")


@pytest.mark.django_db
def test_goal_bars_are_labelled_by_the_goals_name_with_the_unit(client, users, tree, portfolio):
    other = services.tree_create(owner=users["owner"], name="Other", slug="other", vision="V")
    services.node_create(tree=other, parent=None, title="Second goal")
    client.force_login(users["owner"])
    response = client.get("/dashboard/")
    figure = figure_from(response, "values-figure")
    expected = figure["data"][0]
    assert expected["x"][0] == "Results reach clinicians sooner"
    assert not any("(#" in label or "Helix" in label for label in expected["x"])
    assert "Helix Diagnostics" in expected["customdata"][0]  # the tree: in the hover text
    assert figure["layout"]["yaxis"]["title"]["text"] == "Value (EUR)"
    assert expected["y"][0] == 250000.0
    html = response.content.decode()
    assert "250,000 EUR" in html and "30 person-weeks" in html  # the table: per unit
    assert "250030" not in html and "250,030" not in html


@pytest.mark.django_db
def test_count_axis_has_whole_numbers(client, users, tree, portfolio):
    client.force_login(users["owner"])
    axis = figure_from(client.get("/dashboard/"), "status-figure")["layout"]["yaxis"]
    assert axis["dtick"] == 1
    assert axis["tickformat"] == ",d"


@pytest.mark.django_db
def test_bubbles_carry_names_and_one_pair_of_units(client, users, tree, portfolio):
    client.force_login(users["owner"])
    response = client.get("/dashboard/")
    figure = figure_from(response, "bubbles-figure")
    texts = [text for trace in figure["data"] for text in trace["text"]]
    assert texts == ["Automate re-runs"] or texts == ["Sell results to clinics"]
    assert all(trace["mode"] == "markers+text" for trace in figure["data"])
    assert "(" in figure["layout"]["xaxis"]["title"]["text"]  # the unit is named
    html = response.content.decode()
    assert "Bets in a table" in html and "60,000 EUR" in html and "4 person-weeks" in html


@pytest.mark.django_db
def test_sunburst_labels_are_short_and_level(client, users, tree, portfolio):
    client.force_login(users["owner"])
    trace = figure_from(client.get("/dashboard/"), "sunburst-figure")["data"][0]
    assert trace["insidetextorientation"] == "horizontal"
    assert all(len(text) <= dashboard.SUNBURST_LABEL_CHARS for text in trace["text"])
    assert "Results reach clinicians sooner" in trace["labels"]  # in full, for the hover
    assert "Results reach…" in trace["text"]


@pytest.mark.django_db
def test_dashboard_draws_verdicts_with_the_shared_badge(client, users, tree, portfolio):
    client.force_login(users["owner"])
    html = client.get("/dashboard/").content.decode()
    assert 'class="verdict" data-verdict="no_data"' in html
    assert "status-swatch" not in html


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("60000.00", "60,000 EUR"),
        ("60000.50", "60,000.5 EUR"),
        ("1234567.89", "1,234,567.89 EUR"),
        ("0.05", "0.05 EUR"),
        ("-12.34", "-12.34 EUR"),
    ],
)
def test_an_amount_is_shown_exactly(amount, shown):
    from decimal import Decimal

    from valuetree.outline import format_amount

    assert format_amount(Decimal(amount), "EUR") == shown


def test_the_node_page_shows_the_investment_to_the_cent(client, users, tree):
    bet_goal = services.node_create(tree=tree, parent=None, title="Goal")
    bet = services.node_create(
        tree=tree,
        parent=bet_goal,
        title="Bet",
        investment_amount="1234567.89",
        investment_unit="EUR",
    )
    client.force_login(users["viewer"])
    assert "1,234,567.89 EUR" in client.get(f"/nodes/{bet.pk}/").content.decode()
