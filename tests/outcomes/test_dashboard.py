"""The leadership outcome dashboard: access, filters, escaping, queries and figure sizes."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.db.models import F
from django.utils import timezone

from outcomes import dashboard, pulling
from outcomes.evaluation import measures_evaluate
from outcomes.models import Measure, Verdict, VerdictStatus
from tests.factories import bulk_tree, make_metric, make_role_users, make_tree
from valuetree.models import DataProduct, DataProductLink, Domain, Node, NodeKind

URL = "/dashboard/"
MAX_FIGURE_BYTES = 200_000


def figure_from(response, element_id: str) -> dict:
    """The figure as the browser gets it: the json_script element's text, parsed."""
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, f"no #{element_id} in the page"
    return json.loads(match.group(1))


def sunburst_labels(response) -> list[str]:
    return figure_from(response, "sunburst-figure")["data"][0]["labels"]


def status_counts(response) -> dict[str, int]:
    trace = figure_from(response, "status-figure")["data"][0]
    return dict(zip(trace["x"], trace["y"], strict=True))


def give_verdicts(measure_ids, statuses) -> None:
    """Current verdicts without evaluating (fast for thousands of measures)."""
    now = timezone.now()
    Verdict.objects.bulk_create(
        Verdict(
            measure_id=measure_id,
            evaluated_at=now,
            as_of=now,
            status=status,
            judged_status=status,
            progress=None if status in ("no_data", "stale") else 0.5,
            expected_progress=0.5,
        )
        for measure_id, status in zip(measure_ids, statuses, strict=False)
    )


def price(tree) -> None:
    """Investment and expected value on every bet; realised value follows from a value
    measure on each initiative (none here), so realised stays empty."""
    Node.objects.filter(tree=tree, kind=NodeKind.BET).update(
        investment_amount=F("id") * 1000, expected_value_amount=F("id") * 3000
    )


@pytest.fixture
def other_tree(db):
    return make_tree(make_role_users(prefix="b-"), slug="other", name="Other tree")


def goal(tree, title: str) -> Node:
    return Node.objects.create(tree=tree, kind=NodeKind.GOAL, title=title)


# --- Access ----------------------------------------------------------------------------


def test_anonymous_is_sent_to_log_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/dashboard/"


@pytest.mark.parametrize(
    ("role", "trees", "labels"),
    [
        ("viewer", ["Tree"], ["Tree", "Mine"]),
        ("outsider", [], None),
        ("leadership", ["Other tree", "Tree"], ["Other tree", "Tree", "Mine", "Theirs"]),
    ],
)
def test_a_user_sees_only_trees_they_may_read(client, users, tree, other_tree, role, trees, labels):
    goal(tree, "Mine")
    goal(other_tree, "Theirs")
    client.force_login(users[role])

    response = client.get(URL)

    assert response.status_code == 200
    assert [t["name"] for t in response.context["portfolio"].trees] == trees
    if labels is None:
        assert b"You may not read any tree yet" in response.content
    else:
        assert sunburst_labels(response) == labels


def test_a_measure_page_of_an_unreadable_tree_is_not_found(client, users, other_tree):
    node = goal(other_tree, "Theirs")
    measure = Measure.objects.create(
        node=node,
        name="Secret",
        direction="increase",
        baseline_value=0,
        baseline_date=dt.date(2026, 1, 1),
        target_value=1,
        target_date=dt.date(2027, 1, 1),
    )
    client.force_login(users["viewer"])
    assert client.get(f"/dashboard/measures/{measure.pk}/").status_code == 404
    client.force_login(users["leadership"])
    assert client.get(f"/dashboard/measures/{measure.pk}/").status_code == 200


# --- Filters ---------------------------------------------------------------------------


def test_the_tree_filter_keeps_one_tree(client, users, tree, other_tree):
    goal(tree, "Mine")
    goal(other_tree, "Theirs")
    client.force_login(users["leadership"])

    response = client.get(URL, {"tree": other_tree.pk})

    assert sunburst_labels(response) == ["Other tree", "Theirs"]
    assert f'<option value="{other_tree.pk}" selected>' in response.content.decode()


def test_a_tree_the_user_may_not_read_is_ignored_with_a_message(client, users, tree, other_tree):
    goal(tree, "Mine")
    goal(other_tree, "Theirs")
    client.force_login(users["viewer"])

    response = client.get(URL, {"tree": other_tree.pk})

    assert sunburst_labels(response) == ["Tree", "Mine"]
    assert b"That tree does not exist or you may not read it" in response.content


def test_the_domain_filter_keeps_linked_nodes_with_their_kin(client, users, tree):
    sales = goal(tree, "Sales")
    linked_bet = Node.objects.create(tree=tree, parent=sales, kind=NodeKind.BET, title="Linked bet")
    Node.objects.create(tree=tree, parent=linked_bet, kind=NodeKind.INITIATIVE, title="Below it")
    Node.objects.create(tree=tree, parent=sales, kind=NodeKind.BET, title="Unlinked bet")
    goal(tree, "Costs")
    domain = Domain.objects.create(name="Orders", slug="orders")
    product = DataProduct.objects.create(
        name="Order facts",
        slug="order-facts",
        domain=domain,
        product_type="aggregate",
        stage="build",
    )
    DataProductLink.objects.create(data_product=product, node=linked_bet, role="uses")
    client.force_login(users["viewer"])

    everything = client.get(URL)
    filtered = client.get(URL, {"domain": domain.pk})

    assert sorted(sunburst_labels(everything)) == [
        "Below it", "Costs", "Linked bet", "Sales", "Tree", "Unlinked bet",
    ]  # fmt: skip
    assert sunburst_labels(filtered) == ["Tree", "Sales", "Linked bet", "Below it"]


def test_the_period_filter_keeps_measures_due_in_it(client, users, tree):
    node = goal(tree, "Goal")
    today = timezone.localdate()
    soon, later = (
        Measure.objects.create(
            node=node,
            name=name,
            direction="increase",
            baseline_value=0,
            baseline_date=today - dt.timedelta(days=30),
            target_value=10,
            target_date=target,
        )
        for name, target in [
            ("Soon", today + dt.timedelta(days=30)),
            ("Later", dt.date(today.year + 2, 6, 1)),
        ]
    )
    give_verdicts([soon.pk, later.pk], ["off_track", "on_track"])
    client.force_login(users["viewer"])

    everything = status_counts(client.get(URL))
    due_soon = status_counts(client.get(URL, {"period": "next-90"}))

    assert (everything["Off track"], everything["On track"]) == (1, 1)
    assert (due_soon["Off track"], due_soon["On track"]) == (1, 0)


# --- Escaping and colours ---------------------------------------------------------------


def test_user_text_is_escaped_in_the_figure_json(client, users, tree):
    goal(tree, "</script><b>x</b>")
    client.force_login(users["viewer"])

    response = client.get(URL)

    assert "</script><b>" not in response.content.decode()
    # json_script escaped it for HTML; the label is also escaped for Plotly.
    assert "&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in sunburst_labels(response)


def test_quotes_in_user_text_are_drawn_as_quotes(client, users, tree):
    # Plotly decodes &amp; &lt; &gt; but not &quot;: an escaped quote showed as "&quot;".
    goal(tree, 'Say "hi" & it\'s <b>')
    client.force_login(users["viewer"])

    labels = sunburst_labels(client.get(URL))

    assert 'Say "hi" &amp; it\'s &lt;b&gt;' in labels
    assert not any("&quot;" in label or "&#x27;" in label for label in labels)


def test_every_status_has_one_colour():
    assert set(dashboard.STATUS_COLOURS) == set(VerdictStatus.values)
    assert dashboard.status_colour(None) == dashboard.STATUS_COLOURS["no_data"]


def test_figures_are_coloured_by_status(client, users, tree):
    bulk_tree(tree, goals=1, bets=2, initiatives=1, measures=1)
    price(tree)
    measures = list(Measure.objects.order_by("id").values_list("id", flat=True))
    give_verdicts(measures, ["missed", "on_track"])
    client.force_login(users["viewer"])

    response = client.get(URL)

    bubbles = figure_from(response, "bubbles-figure")["data"]
    assert [(t["name"], t["marker"]["color"]) for t in bubbles] == [
        ("On track", dashboard.STATUS_COLOURS["on_track"]),
        ("Missed", dashboard.STATUS_COLOURS["missed"]),
    ]
    sunburst = figure_from(response, "sunburst-figure")["data"][0]
    colours = dict(zip(sunburst["labels"], sunburst["marker"]["colors"], strict=True))
    assert colours["Bet 0.0"] == dashboard.STATUS_COLOURS["missed"]
    assert colours["Initiative 0.1.0"] == dashboard.STATUS_COLOURS["on_track"]


# --- Speed: queries and sizes at two sizes ----------------------------------------------


@pytest.mark.parametrize(
    ("goals", "bets", "initiatives"),
    [(2, 5, 9), (10, 30, 33)],  # 102 and 10,210 nodes
)
def test_queries_and_figure_sizes_do_not_grow_with_the_portfolio(
    client, users, tree, other_tree, django_assert_max_num_queries, goals, bets, initiatives
):
    nodes = bulk_tree(tree, goals=goals, bets=bets, initiatives=initiatives, measures=1)
    bulk_tree(other_tree, goals=2, bets=2, initiatives=2, measures=1)
    price(tree)
    # Goal titles as long as the model allows: labels are cut, so the size stays bounded.
    Node.objects.filter(tree=tree, kind=NodeKind.GOAL).update(title="G" * 300)
    statuses = list(dashboard.STATUS_COLOURS)
    ids = list(Measure.objects.order_by("id").values_list("id", flat=True))
    give_verdicts(ids, [statuses[i % len(statuses)] for i in range(len(ids))])
    client.force_login(users["leadership"])

    for params in ({}, {"tree": tree.pk, "domain": "", "period": "this-year"}):
        with django_assert_max_num_queries(10):
            response = client.get(URL, params)
        assert response.status_code == 200

    response = client.get(URL)
    figures = response.context["figures"]
    assert set(figures) == {"status_counts", "goal_values", "bubbles", "sunburst"}
    for name, figure in figures.items():
        size = len(json.dumps(figure, separators=(",", ":")))
        assert size <= MAX_FIGURE_BYTES, f"{name} is {size:,} bytes"
    assert sum(status_counts(response).values()) == len(ids)
    sunburst = figure_from(response, "sunburst-figure")["data"][0]
    assert len(sunburst["ids"]) <= dashboard.SUNBURST_MAX_SEGMENTS
    if len(nodes) > dashboard.SUNBURST_MAX_SEGMENTS:
        assert "Initiative 0.0.0" not in sunburst["labels"]  # goals and bets only
        assert "Bet 0.0" in sunburst["labels"]


def test_goal_bars_are_capped_with_the_rest_summed(client, users, tree):
    goals = dashboard.GOAL_MAX_BARS + 5
    bulk_tree(tree, goals=goals, bets=1, initiatives=0)
    Node.objects.filter(tree=tree, kind=NodeKind.GOAL).update(expected_value_amount=Decimal(10))
    client.force_login(users["viewer"])

    trace = figure_from(client.get(URL), "values-figure")["data"][0]

    assert len(trace["x"]) == dashboard.GOAL_MAX_BARS
    assert trace["x"][-1] == "Other goals (6)"
    assert trace["y"][-1] == 60.0


# --- One measure -------------------------------------------------------------------------


def test_the_measure_figure_has_plan_observations_and_forecast(client, users, tree):
    node = goal(tree, "Goal")
    metric = make_metric(tree, kind="push", source_name="Check-ins", name="Reorder rate")
    pulling.observations_push(
        metric=metric,
        raw_points=[(f"2026-0{month}-01", 10 + 2 * month) for month in range(1, 7)],
    )
    measure = Measure.objects.create(
        node=node,
        name="Reorder rate",
        unit="%",
        direction="increase",
        baseline_value=10,
        baseline_date=dt.date(2026, 1, 1),
        target_value=40,
        target_date=dt.date(2026, 12, 31),
        metric=metric,
    )
    measures_evaluate(measure_ids=[measure.pk], at=dt.datetime(2026, 6, 15, tzinfo=dt.UTC))
    verdict = Verdict.objects.get(measure=measure, is_current=True)
    client.force_login(users["viewer"])

    response = client.get(f"/dashboard/measures/{measure.pk}/")

    traces = {t["name"]: t for t in figure_from(response, "measure-figure")["data"]}
    assert set(traces) == {"Planned trajectory", "Observations", "Forecast band (80 %)", "Forecast"}
    assert traces["Planned trajectory"]["x"] == ["2026-01-01", "2026-12-31"]
    assert traces["Planned trajectory"]["y"] == [10.0, 40.0]
    assert traces["Observations"]["y"] == [12.0, 14.0, 16.0, 18.0, 20.0, 22.0]
    band = traces["Forecast band (80 %)"]
    assert band["fill"] == "toself"
    assert band["x"][1:3] == ["2026-12-31", "2026-12-31"]
    assert band["y"][1:3] == [verdict.forecast_high, verdict.forecast_low]
    assert traces["Forecast"]["y"][-1] == verdict.forecast_value
    assert dashboard.decision_markers(measure) == []  # no decision taken yet


def test_decisions_on_the_node_are_marked_on_the_measure_chart(client, users, tree):
    from outcomes.reviews.services import decision_create
    from valuetree.services import node_create, node_update

    node = node_create(tree=tree, parent=goal(tree, "Goal"), title="Checkout <b>bet</b>")
    measure = Measure.objects.create(
        node=node,
        name="Reorder rate",
        direction="increase",
        baseline_value=10,
        baseline_date=dt.date(2026, 1, 1),
        target_value=40,
        target_date=dt.date(2026, 12, 31),
    )
    node_update(node=node, status="active")  # a status change, not a decision
    decision_create(node=node, kind="persevere", rationale="Early days", by=users["owner"])
    decision_create(node=node, kind="kill", rationale="Nobody checks out", by=users["owner"])

    markers = dashboard.decision_markers(Measure.objects.select_related("node").get(pk=measure.pk))
    assert [marker["label"] for marker in markers] == [
        "Checkout <b>bet</b>: persevere",
        "Checkout <b>bet</b>: kill",
    ]
    client.force_login(users["viewer"])
    response = client.get(f"/dashboard/measures/{measure.pk}/")
    layout = figure_from(response, "measure-figure")["layout"]
    assert len(layout["shapes"]) == 2
    texts = [annotation["text"] for annotation in layout["annotations"]]
    assert any(": kill" in text and "<b>" not in text for text in texts)


def test_a_measure_without_values_draws_only_its_plan(client, users, tree):
    measure = Measure.objects.create(
        node=goal(tree, "Goal"),
        name="Not measured",
        direction="decrease",
        baseline_value=5,
        baseline_date=dt.date(2026, 1, 1),
        target_value=1,
        target_date=dt.date(2026, 12, 31),
    )
    client.force_login(users["viewer"])

    response = client.get(f"/dashboard/measures/{measure.pk}/")

    traces = figure_from(response, "measure-figure")["data"]
    assert [t["name"] for t in traces] == ["Planned trajectory", "Observations"]
    assert traces[1]["y"] == []
    assert b"Not evaluated yet." in response.content


# --- Why this status, and re-evaluating ------------------------------------------------


@pytest.fixture
def evaluated(tree):
    node = goal(tree, "Goal")
    metric = make_metric(tree, kind="push", source_name="Check-ins", name="Reorder rate")
    pulling.observations_push(
        metric=metric,
        raw_points=[(f"2026-0{month}-01", 30.0 + (month % 2)) for month in range(1, 7)],
    )
    measure = Measure.objects.create(
        node=node,
        name="Reorder rate",
        unit="%",
        direction="increase",
        baseline_value=10,
        baseline_date=dt.date(2026, 1, 1),
        target_value=60,
        target_date=dt.date(2026, 12, 31),
        metric=metric,
    )
    measures_evaluate(measure_ids=[measure.pk], at=dt.datetime(2026, 6, 15, tzinfo=dt.UTC))
    return measure


def test_the_measure_page_and_the_dashboard_say_why(client, users, evaluated):
    verdict = Verdict.objects.get(measure=evaluated, is_current=True)
    assert verdict.status == "off_track"
    assert verdict.reason.startswith("Flat at 30.5% since 1 Jan 2026; ")
    client.force_login(users["viewer"])

    page = client.get(f"/dashboard/measures/{evaluated.pk}/").content.decode()
    assert "Flat at 30.5% since 1 Jan 2026; " in page
    assert "(model: level)" in page
    assert "Re-evaluate now" not in page  # viewers cannot
    board = client.get(URL).content.decode()
    assert "Flat at 30.5% since 1 Jan 2026; " in board


@pytest.mark.parametrize(("role", "status"), [("editor", 302), ("viewer", 403), ("outsider", 404)])
def test_editors_re_evaluate_a_measure(client, users, evaluated, role, status):
    client.force_login(users[role])
    if role == "editor":
        assert (
            "Re-evaluate now" in client.get(f"/dashboard/measures/{evaluated.pk}/").content.decode()
        )
    response = client.post(f"/measures/{evaluated.pk}/re-evaluate/")
    assert response.status_code == status
    assert evaluated.verdicts.count() == (2 if status == 302 else 1)


def test_re_evaluating_with_htmx_refreshes_the_page(client, users, evaluated):
    client.force_login(users["editor"])
    response = client.post(f"/measures/{evaluated.pk}/re-evaluate/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"
    assert client.get(f"/measures/{evaluated.pk}/re-evaluate/").status_code == 405


def _strip_tags(html: str) -> str:
    """The page's text as read (the figures' JSON left out)."""
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize(
    ("values", "baseline", "target", "unit", "shown", "hidden"),
    [
        # An error rate: floatformat:2 printed forecast and range as "0.00".
        (
            [0.0012, 0.0011, 0.001, 0.0009, 0.0008, 0.0007],
            0.0012,
            0.0004,
            "ratio",
            ["0.0007 ratio", "0.0012 ratio"],
            ["0.00 ratio", "0.00 –", "– 0.00)"],
        ),
        # Revenue: the values table printed "6000000000000.0 EUR".
        (
            [1e12, 2e12, 3e12, 4e12, 5e12, 6e12],
            1e12,
            5e14,
            "EUR",
            ["6,000,000,000,000 EUR"],
            ["6000000000000.0", ".00 EUR"],
        ),
    ],
)
def test_the_measure_and_metric_pages_show_figures_as_people_read_them(
    client, users, tree, values, baseline, target, unit, shown, hidden
):
    node = goal(tree, "Goal")
    metric = make_metric(tree, kind="push", source_name="Check-ins", name="Figure", unit=unit)
    pulling.observations_push(
        metric=metric,
        raw_points=[(f"2026-06-0{day}", value) for day, value in enumerate(values, start=1)],
    )
    measure = Measure.objects.create(
        node=node,
        name="Figure",
        unit=unit,
        direction="increase" if target > baseline else "decrease",
        baseline_value=baseline,
        baseline_date=dt.date(2026, 5, 1),
        target_value=target,
        target_date=dt.date(2026, 12, 31),
        metric=metric,
    )
    measures_evaluate(measure_ids=[measure.pk], at=dt.datetime(2026, 6, 7, tzinfo=dt.UTC))
    verdict = Verdict.objects.get(measure=measure, is_current=True)
    assert verdict.forecast_value is not None
    client.force_login(users["viewer"])

    for url in (
        f"/dashboard/measures/{measure.pk}/",
        f"/metrics/{metric.pk}/",
        f"/trees/{tree.slug}/metrics/",
    ):
        page = _strip_tags(client.get(url).content.decode())
        for text in hidden:
            assert text not in page, (url, text)
    page = _strip_tags(client.get(f"/dashboard/measures/{measure.pk}/").content.decode())
    for text in shown:
        assert text in page
    forecast = page.split("Forecast at target date", 1)[1][:200]
    assert re.search(r"\d", forecast.split("(", 1)[0].replace("0.00 ", ""))


def test_killed_work_leaves_the_dashboard(client, users, tree):
    """A bet killed months ago still led "Needs attention" with its initiative's
    off-track measure, was counted by status and drawn in the charts."""
    from outcomes.reviews.services import decision_create
    from valuetree.services import node_create

    root = goal(tree, "Grow")
    killed = node_create(tree=tree, parent=root, title="Fax ordering")
    under = node_create(tree=tree, parent=killed, title="Fax machines in shops")
    live = node_create(tree=tree, parent=root, title="Self-service")
    measures = [
        Measure.objects.create(
            node=node,
            name=name,
            direction="increase",
            baseline_value=0,
            baseline_date=dt.date(2026, 1, 1),
            target_value=10,
            target_date=dt.date(2026, 12, 31),
        )
        for node, name in ((under, "Fax orders"), (killed, "Fax share"), (live, "Reorders"))
    ]
    give_verdicts([m.pk for m in measures], ["off_track", "missed", "at_risk"])
    decision_create(node=killed, kind="kill", rationale="Nobody faxes", by=users["owner"])
    client.force_login(users["viewer"])

    response = client.get(URL)

    page = response.content.decode()
    assert "Fax" not in page
    assert "Reorders" in page
    assert {label: n for label, n in status_counts(response).items() if n} == {"At risk": 1}
    assert not any("Fax" in label for label in sunburst_labels(response))
