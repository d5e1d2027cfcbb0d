"""Verdicts, roll-ups and tolerance bands in the REST API, and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from outcomes import pulling
from outcomes.evaluation import measures_evaluate
from outcomes.models import Verdict, VerdictPolicy
from outcomes.serializers import VERDICT_API_FIELDS
from outcomes.services import measure_create
from tests.factories import make_metric, make_role_users, make_tree
from valuetree import services as tree_services

AT = datetime(2026, 7, 2, 12, tzinfo=UTC)  # halfway from 2026-01-01 to 2026-12-31
LATER = datetime(2026, 9, 1, 12, tzinfo=UTC)

CSV_HEADER = [
    "tree",
    "node_id",
    "node_title",
    "measure_id",
    "measure_name",
    "status",
    "progress",
    "expected_progress",
    "latest_value",
    "latest_period",
    "forecast_value",
    "forecast_low",
    "forecast_high",
    "forecast_probability",
    "as_of",
    "evaluated_at",
]


@pytest.fixture
def initiative(tree):
    goal = tree_services.node_create(tree=tree, parent=None, title="Grow")
    bet = tree_services.node_create(tree=tree, parent=goal, title="Self-service")
    return tree_services.node_create(
        tree=tree,
        parent=bet,
        title="One-click reorder",
        investment_amount=1000,
        expected_value_amount=5000,
    )


def add_measure(node, *, values=(), metric_name="Reorders", **fields):
    metric = make_metric(
        node.tree, kind="push", source_name="Check-ins", name=metric_name, granularity="month"
    )
    measure = measure_create(
        node=node,
        name=fields.pop("name", "Reorders"),
        unit=fields.pop("unit", "orders"),
        direction="increase",
        baseline_value=fields.pop("baseline_value", 0),
        baseline_date="2026-01-01",
        target_value=fields.pop("target_value", 100),
        target_date="2026-12-31",
        metric=metric,
        **fields,
    )
    if values:
        pulling.observations_push(metric=metric, raw_points=list(values))
    return measure


# Rising 15 a month to 80 by July: on track for 100 by 31 Dec (outcomes/verdicts.py).
AHEAD = [(f"2026-0{month}-01", 20.0 + 15 * (month - 3)) for month in range(3, 8)]


def csv_rows(response):
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


# --- History ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_history_is_newest_first_with_every_field_and_the_evidence(users, initiative, client_for):
    measure = add_measure(initiative, values=AHEAD)
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    measures_evaluate(measure_ids=[measure.pk], at=LATER)

    response = client_for(users["viewer"]).get(f"/api/measures/{measure.pk}/verdicts/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    first, second = body["results"]
    assert set(first) == set(VERDICT_API_FIELDS)
    assert [first["as_of"], second["as_of"]] == ["2026-09-01T12:00:00Z", "2026-07-02T12:00:00Z"]
    assert [first["is_current"], second["is_current"]] == [True, False]
    assert second["status"] == "on_track"
    assert second["progress"] == pytest.approx(0.8)
    assert second["latest_value"] == 80.0
    assert second["forecast_model"] == "linear"
    assert second["unit"] == "orders"
    assert second["plan_status"] == "on_track"
    assert second["reason"].startswith("Rising about 3.44 orders a week; 74 % chance of ")
    assert sorted(second["observation_ids"]) == sorted(
        measure.metric.observations.values_list("id", flat=True)
    )


@pytest.mark.django_db
def test_evaluate_answers_the_new_current_verdict(users, initiative, client_for):
    measure = add_measure(initiative, values=AHEAD)
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    old = Verdict.objects.get(measure=measure, is_current=True)

    response = client_for(users["editor"]).post(f"/api/measures/{measure.pk}/evaluate/")

    assert response.status_code == 200
    current = Verdict.objects.get(measure=measure, is_current=True)
    assert response.json()["id"] == current.pk != old.pk
    assert response.json()["is_current"] is True
    assert Verdict.objects.filter(measure=measure).count() == 2


# --- Current verdicts and the CSV export -----------------------------------------------


@pytest.fixture
def portfolio(users, tree, initiative):
    """Two measures in the tree (one on track, one behind), and one in a tree the
    role users cannot read."""
    on_track = add_measure(initiative, values=AHEAD, name="Reorders")
    other_node = tree_services.node_create(
        tree=tree, parent=initiative.parent, title='=HYPERLINK("http://evil")'
    )
    behind = add_measure(
        other_node,
        values=[(f"2026-0{month}-01", -5.0) for month in range(2, 7)],
        metric_name="Basket",
        name="@SUM(A1:A9)",
        baseline_value=-10,
        target_value=10,
    )
    hidden_tree = make_tree(make_role_users("other-"), slug="hidden", name="Hidden")
    hidden_goal = tree_services.node_create(tree=hidden_tree, parent=None, title="Secret")
    hidden = add_measure(hidden_goal, values=AHEAD, metric_name="Secret")
    measures_evaluate(at=LATER)
    measures_evaluate(at=AT)  # a second round (as of an earlier day): only these are current
    return {"on_track": on_track, "behind": behind, "hidden": hidden, "node": other_node}


@pytest.mark.django_db
def test_the_list_holds_only_current_verdicts_of_readable_trees(users, portfolio, client_for):
    response = client_for(users["viewer"]).get("/api/verdicts/")

    assert response.status_code == 200
    results = response.json()["results"]
    assert sorted(row["measure"] for row in results) == sorted(
        [portfolio["on_track"].pk, portfolio["behind"].pk]
    )
    assert all(row["is_current"] for row in results)
    assert {row["as_of"] for row in results} == {"2026-07-02T12:00:00Z"}
    row = next(row for row in results if row["measure"] == portfolio["behind"].pk)
    assert (row["tree"], row["node"], row["node_title"], row["measure_name"]) == (
        "tree",
        portfolio["node"].pk,
        '=HYPERLINK("http://evil")',
        "@SUM(A1:A9)",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tree=tree", ["on_track", "behind"]),
        ("tree=hidden", []),
        ("node={node}", ["behind"]),
        ("status=off_track", ["behind"]),
        ("status=on_track", ["on_track"]),
        ("status=achieved", []),
    ],
)
def test_the_list_filters(users, portfolio, client_for, query, expected):
    url = "/api/verdicts/?" + query.format(node=portfolio["node"].pk)

    response = client_for(users["viewer"]).get(url)

    assert response.status_code == 200
    assert sorted(row["measure"] for row in response.json()["results"]) == sorted(
        portfolio[name].pk for name in expected
    )


@pytest.mark.django_db
def test_an_unknown_status_is_a_field_error(users, portfolio, client_for):
    response = client_for(users["viewer"]).get("/api/verdicts/?status=splendid")

    assert response.status_code == 400
    assert "status" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [None, "text/csv"])
def test_csv_export_has_a_header_a_row_per_verdict_and_no_formulas(
    users, portfolio, client_for, accept
):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = client_for(users["viewer"]).get("/api/verdicts/export/?tree=tree", **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="verdicts.csv"'
    header, *rows = csv_rows(response)
    assert header == CSV_HEADER
    assert len(rows) == 2
    by_measure = {int(row[3]): dict(zip(header, row, strict=True)) for row in rows}
    behind = by_measure[portfolio["behind"].pk]
    assert behind["tree"] == "tree"
    assert behind["node_id"] == str(portfolio["node"].pk)
    # User text that a spreadsheet would run is quoted; numbers stay numbers.
    assert behind["node_title"] == '\'=HYPERLINK("http://evil")'
    assert behind["measure_name"] == "'@SUM(A1:A9)"
    assert behind["latest_value"] == "-5.0"
    assert behind["status"] == "off_track"
    assert behind["as_of"] == "2026-07-02T12:00:00+00:00"
    on_track = by_measure[portfolio["on_track"].pk]
    assert on_track["measure_name"] == "Reorders"
    assert float(on_track["latest_value"]) == 80.0
    assert on_track["latest_period"] == "2026-07-01T00:00:00+00:00"


@pytest.mark.django_db
def test_csv_export_leaves_out_trees_the_caller_cannot_read(users, portfolio, client_for):
    response = client_for(users["outsider"]).get("/api/verdicts/export/")

    assert response.status_code == 200
    assert csv_rows(response) == [CSV_HEADER]


@pytest.mark.django_db
@pytest.mark.parametrize("size", [1, 6])
def test_list_and_export_queries_do_not_grow_with_the_verdicts(
    users, initiative, client_for, django_assert_max_num_queries, size
):
    for index in range(size):
        add_measure(initiative, values=AHEAD, metric_name=f"M{index}", name=f"M{index}")
    measures_evaluate(at=AT)
    client = client_for(users["viewer"])

    with django_assert_max_num_queries(2):  # count, page
        assert len(client.get("/api/verdicts/").json()["results"]) == size
    with django_assert_max_num_queries(1):
        response = client.get("/api/verdicts/export/")
        assert len(csv_rows(response)) == size + 1


# --- Roll-up ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_roll_up_gives_status_score_and_value_per_node(users, tree, initiative, client_for):
    bet = initiative.parent
    goal = bet.parent
    add_measure(initiative, values=AHEAD, is_value_measure=True)
    measures_evaluate(at=AT)

    response = client_for(users["leadership"]).get(f"/api/trees/{tree.slug}/outcomes/")

    assert response.status_code == 200
    rows = response.json()
    assert [row["node"] for row in rows] == [goal.pk, bet.pk, initiative.pk]
    assert rows[2] == {
        "node": initiative.pk,
        "parent": bet.pk,
        "kind": "initiative",
        "title": "One-click reorder",
        "status": "on_track",
        "score": 0.75,  # on track scores 0.75 (outcomes/verdicts.py)
        "expected_value": 5000.0,
        "realised_value": pytest.approx(4000.0),
        "investment": 1000.0,
    }
    # One child: the bet and the goal carry the initiative's figures up.
    for row in rows[:2]:
        assert (row["status"], row["expected_value"], row["investment"]) == (
            "on_track",
            5000.0,
            1000.0,
        )
        assert row["realised_value"] == pytest.approx(4000.0)
    assert rows[0]["kind"] == "goal" and rows[0]["parent"] is None


@pytest.mark.django_db
def test_the_roll_up_of_a_hidden_tree_is_a_404(users, tree, client_for):
    response = client_for(users["outsider"]).get(f"/api/trees/{tree.slug}/outcomes/")

    assert response.status_code == 404


# --- Tolerance bands -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tree_without_a_policy_shows_the_defaults(users, tree, client_for):
    response = client_for(users["viewer"]).get(f"/api/trees/{tree.slug}/verdict-policy/")

    assert response.status_code == 200
    assert response.json() == {
        "on_track_within": 0.05,
        "at_risk_within": 0.15,
        "on_track_probability": 0.55,
        "at_risk_probability": 0.4,
    }
    assert not VerdictPolicy.objects.filter(tree=tree).exists()


@pytest.mark.django_db
def test_an_editor_sets_the_bands(users, tree, client_for):
    url = f"/api/trees/{tree.slug}/verdict-policy/"
    body = {"on_track_within": 0.1, "at_risk_within": 0.25}

    response = client_for(users["editor"]).put(url, body, format="json")

    assert response.status_code == 200
    whole = body | {"on_track_probability": 0.55, "at_risk_probability": 0.4}
    assert response.json() == whole
    policy = VerdictPolicy.objects.get(tree=tree)
    assert (policy.on_track_within, policy.at_risk_within) == (0.1, 0.25)
    assert client_for(users["viewer"]).get(url).json() == whole

    chances = body | {"on_track_probability": 0.8, "at_risk_probability": 0.5}
    assert client_for(users["editor"]).put(url, chances, format="json").json() == chances
    policy.refresh_from_db()
    assert (policy.on_track_probability, policy.at_risk_probability) == (0.8, 0.5)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"on_track_within": -0.01, "at_risk_within": 0.2}, "on_track_within"),
        ({"on_track_within": 0.1, "at_risk_within": 1.01}, "at_risk_within"),
        ({"on_track_within": 0.3, "at_risk_within": 0.2}, "at_risk_within"),
        ({"on_track_within": 0.1}, "at_risk_within"),
        ({"on_track_within": "lots", "at_risk_within": 0.2}, "on_track_within"),
        (
            {
                "on_track_within": 0.1,
                "at_risk_within": 0.2,
                "on_track_probability": 0.3,
                "at_risk_probability": 0.5,
            },
            "at_risk_probability",
        ),
        (
            {"on_track_within": 0.1, "at_risk_within": 0.2, "on_track_probability": 1.5},
            "on_track_probability",
        ),
    ],
    ids=[
        "negative",
        "above-one",
        "out-of-order",
        "missing",
        "not-a-number",
        "chances-out-of-order",
        "chance-above-one",
    ],
)
def test_bad_bands_are_refused_and_change_nothing(users, tree, client_for, body, field):
    VerdictPolicy.objects.create(tree=tree, on_track_within=0.05, at_risk_within=0.15)
    url = f"/api/trees/{tree.slug}/verdict-policy/"

    response = client_for(users["owner"]).put(url, body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    policy = VerdictPolicy.objects.get(tree=tree)
    assert (policy.on_track_within, policy.at_risk_within) == (0.05, 0.15)


@pytest.mark.django_db
def test_the_bounds_themselves_are_allowed(users, tree, client_for):
    url = f"/api/trees/{tree.slug}/verdict-policy/"
    body = {
        "on_track_within": 0.0,
        "at_risk_within": 1.0,
        "on_track_probability": 1.0,
        "at_risk_probability": 0.0,
    }

    response = client_for(users["owner"]).put(url, body, format="json")

    assert response.status_code == 200
    assert response.json() == body
