"""The tree's "think again" list: each category on a small hand-built tree, the page per
role, escaping, and the query count at two sizes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from outcomes import services as outcome_services
from outcomes.evaluation import measures_evaluate
from outcomes.models import Measure, Metric
from outcomes.pulling import observations_push
from outcomes.think_again import think_again
from tests.factories import bulk_tree, make_metric, make_tree
from valuetree import services
from valuetree.models import DataProductLink, NodeKind

AT = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)  # after every target date below
XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def node(tree, parent, title):
    return services.node_create(tree=tree, parent=parent, title=title)


def measure(on, *, metric=None, name="Measure"):
    return outcome_services.measure_create(
        node=on,
        name=name,
        direction="increase",
        baseline_value=0,
        baseline_date=dt.date(2026, 1, 1),
        target_value=100,
        target_date=dt.date(2026, 6, 1),
        metric=metric,
    )


def judged(tree, on, value, name):
    """A measure on `on` whose only value is `value` (target 100, date passed), evaluated."""
    metric = make_metric(tree, name=name)
    observations_push(metric=metric, raw_points=[("2026-05-01", value)])
    made = measure(on, metric=metric, name=name)
    measures_evaluate(measure_ids=[made.pk], at=AT)
    return made


def titles(items):
    return [item.get("title", item.get("name")) for item in items]


@pytest.fixture
def goal(tree):
    return node(tree, None, "Goal")


@pytest.fixture
def product():
    domain = services.domain_create(name="Sales", slug="sales")

    def make(name):
        slug = slugify(name)
        return services.data_product_create(name=name, slug=slug, domain=domain)

    return make


def link(product, on):
    return services.data_product_link(product=product, node=on, role="uses")


# --- Categories -----------------------------------------------------------------------


def test_bets_whose_initiatives_all_missed(tree, goal):
    all_missed = node(tree, goal, "All missed")
    for title in ("A", "B"):
        judged(tree, node(tree, all_missed, title), 10, f"{title} metric")
    mixed = node(tree, goal, "Mixed")
    judged(tree, node(tree, mixed, "C"), 10, "C metric")
    judged(tree, node(tree, mixed, "D"), 100, "D metric")
    unjudged = node(tree, goal, "No data")
    measure(node(tree, unjudged, "E"))
    node(tree, goal, "No initiatives")

    missed = think_again(tree)["missed_bets"]

    assert missed == [
        {"id": all_missed.pk, "title": "All missed", "parent_title": "Goal", "initiative_count": 2}
    ]


def test_initiatives_without_measures(tree, goal):
    bet = node(tree, goal, "Bet")
    measure(node(tree, bet, "Measured"))
    bare = node(tree, bet, "Bare")
    node(tree, goal, "Bet without initiatives")  # bets and goals need no measure

    assert think_again(tree)["initiatives_without_measures"] == [
        {"id": bare.pk, "title": "Bare", "parent_title": "Bet"}
    ]


def test_measures_without_a_metric(tree, goal):
    initiative = node(tree, node(tree, goal, "Bet"), "Initiative")
    measure(initiative, metric=make_metric(tree, name="Fed"), name="Fed")
    orphan = measure(initiative, name="Unfed")
    on_goal = measure(goal, name="Goal measure")

    assert think_again(tree)["measures_without_metric"] == [
        {"id": on_goal.pk, "name": "Goal measure", "node_id": goal.pk, "node_title": "Goal"},
        {"id": orphan.pk, "name": "Unfed", "node_id": initiative.pk, "node_title": "Initiative"},
    ]


def test_stale_and_failing_metrics_with_their_last_error(tree):
    now = timezone.now()
    day = dt.timedelta(days=1)
    healthy = make_metric(tree, name="Healthy", expected_frequency=day)
    stale = make_metric(tree, name="Stale", expected_frequency=day)
    failing = make_metric(tree, name="Failing")
    paused = make_metric(tree, name="Paused", is_active=False)
    make_metric(tree, name="Waiting")
    Metric.objects.filter(pk=healthy.pk).update(last_success_at=now)
    Metric.objects.filter(pk=stale.pk).update(last_success_at=now - 3 * day)
    Metric.objects.filter(pk__in=[failing.pk, paused.pk]).update(
        consecutive_failures=5, last_error="HTTP 500 from the API", last_failure_at=now
    )

    flagged = think_again(tree)["stale_or_failing_metrics"]

    assert [(m["name"], m["health"], m["last_error"]) for m in flagged] == [
        ("Failing", "unhealthy", "HTTP 500 from the API"),
        ("Stale", "stale", ""),
    ]
    assert flagged[0]["consecutive_failures"] == 5
    assert flagged[1]["last_success_at"] == now - 3 * day


def test_products_linked_to_goals_only(users, tree, goal, product):
    bet = node(tree, goal, "Bet")
    initiative = node(tree, bet, "Initiative")
    goal_only = product("Goal only")
    link(goal_only, goal)
    services.data_product_link(product=goal_only, node=goal, role="produces")
    also_bet = product("Also bet")
    link(also_bet, goal)
    link(also_bet, bet)
    link(product("On initiative"), initiative)
    product("Unlinked")  # not in this tree at all
    elsewhere = make_tree(users, slug="other", name="Other")
    link(product("Other tree's goal"), node(elsewhere, None, "Their goal"))

    assert think_again(tree)["products_serving_no_bet"] == [
        {
            "id": goal_only.pk,
            "name": "Goal only",
            "slug": "goal-only",
            "goals": [{"id": goal.pk, "title": "Goal"}],
        }
    ]


def test_bets_with_no_data_product(tree, goal, product):
    served_itself = node(tree, goal, "Served itself")
    link(product("P1"), served_itself)
    through_initiative = node(tree, goal, "Served through an initiative")
    link(product("P2"), node(tree, through_initiative, "Initiative"))
    unserved = node(tree, goal, "Unserved")
    node(tree, unserved, "Initiative too")
    link(product("P3"), goal)  # the goal's product serves none of its bets

    assert think_again(tree)["bets_without_data_product"] == [
        {"id": unserved.pk, "title": "Unserved", "parent_title": "Goal"}
    ]


def test_lists_follow_the_outline(tree):
    second = node(tree, None, "Second goal")
    first = services.node_create(tree=tree, parent=None, title="First goal", position=0)
    node(tree, second, "Bet of the second")
    node(tree, first, "Bet of the first")

    assert titles(think_again(tree)["bets_without_data_product"]) == [
        "Bet of the first",
        "Bet of the second",
    ]


def test_an_empty_tree_has_nothing_to_think_again(tree):
    assert think_again(tree) == {
        "missed_bets": [],
        "initiatives_without_measures": [],
        "measures_without_metric": [],
        "stale_or_failing_metrics": [],
        "products_serving_no_bet": [],
        "bets_without_data_product": [],
    }


# --- The page -------------------------------------------------------------------------


def page_url(tree):
    return reverse("outcomes:tree-think-again", args=[tree.slug])


@pytest.mark.parametrize("role", ["owner", "editor", "viewer", "leadership"])
def test_tree_readers_see_the_page(users, tree, role):
    client = Client()
    client.force_login(users[role])

    response = client.get(page_url(tree))

    assert response.status_code == 200
    assert "Think again" in response.text


def test_others_get_a_404(users, tree):
    client = Client()
    client.force_login(users["outsider"])

    assert client.get(page_url(tree)).status_code == 404


def test_anonymous_users_are_sent_to_log_in(tree):
    response = Client().get(page_url(tree))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_tree_page_links_to_it(users, tree):
    client = Client()
    client.force_login(users["viewer"])

    assert (
        f'href="{page_url(tree)}"' in client.get(reverse("valuetree:tree", args=[tree.slug])).text
    )


def test_items_link_to_their_pages_and_user_text_is_escaped(users, tree, product):
    goal = node(tree, None, XSS)
    bet = node(tree, goal, f"Bet {XSS}")
    initiative = node(tree, bet, f"Initiative {XSS}")
    unfed = measure(goal, name=f"Measure {XSS}")
    failing = make_metric(tree, name=f"Metric {XSS}")
    Metric.objects.filter(pk=failing.pk).update(consecutive_failures=3, last_error=f"Error {XSS}")
    link(product(f"Product {XSS}"), goal)
    client = Client()
    client.force_login(users["viewer"])

    text = client.get(page_url(tree)).text

    assert XSS not in text
    assert text.count(ESCAPED) >= 7
    for url in (
        reverse("valuetree:node", args=[bet.pk]),
        reverse("valuetree:node", args=[initiative.pk]),
        reverse("valuetree:node", args=[goal.pk]),
        reverse("outcomes:dashboard-measure", args=[unfed.pk]),
        reverse("outcomes:metric", args=[failing.pk]),
        reverse("valuetree:data-product", args=[slugify(f"Product {XSS}")]),
    ):
        assert f'href="{url}"' in text
    assert client.get(reverse("outcomes:dashboard-measure", args=[unfed.pk])).status_code == 200


# --- Query count ----------------------------------------------------------------------


def fill(tree, product, *, bets: int) -> None:
    """goals × bets × 2 initiatives, one measure per initiative (half without metric),
    failing metrics, and products on goals, bets and initiatives."""
    nodes = bulk_tree(tree, goals=2, bets=bets, initiatives=2)
    initiatives = [n for n in nodes if n.kind == NodeKind.INITIATIVE]
    metrics = [make_metric(tree, name=f"Metric {index}") for index in range(bets)]
    Metric.objects.filter(pk__in=[m.pk for m in metrics]).update(consecutive_failures=9)
    Measure.objects.bulk_create(
        Measure(
            node=initiative,
            name="Measure",
            direction="increase",
            baseline_value=0,
            baseline_date=dt.date(2026, 1, 1),
            target_value=1,
            target_date=dt.date(2026, 6, 1),
            metric=metrics[index % bets] if index % 2 else None,
        )
        for index, initiative in enumerate(initiatives[1:])
    )
    measures_evaluate(at=AT)
    DataProductLink.objects.bulk_create(
        DataProductLink(data_product=product(f"Product {index}"), node=linked, role="uses")
        for index, linked in enumerate(nodes[::3])
    )


@pytest.mark.parametrize("bets", [2, 20])
def test_query_count_does_not_grow_with_the_tree(
    users, tree, product, bets, django_assert_max_num_queries
):
    fill(tree, product, bets=bets)
    with django_assert_max_num_queries(7):
        items = think_again(tree)
    assert len(items["stale_or_failing_metrics"]) == bets
    assert len(items["initiatives_without_measures"]) == 1

    client = Client()
    client.force_login(users["viewer"])
    # The session, the user and the tree, then the list's seven.
    with django_assert_max_num_queries(10):
        assert client.get(page_url(tree)).status_code == 200


def test_killed_work_is_not_asked_about_again(tree, goal, users):
    """A bet killed because its initiatives missed stayed on the list ("Bets whose
    initiatives all missed", "Bets with no data product"), with its initiative
    "without measures" and its measure "without a metric"."""
    from outcomes.reviews.services import decision_create

    killed = node(tree, goal, "Fax ordering")
    judged(tree, node(tree, killed, "Fax machines"), 10, "Fax orders")
    node(tree, killed, "Fax paper")  # no measures
    measure(killed, name="Fax share")  # no metric
    decision_create(node=killed, kind="kill", rationale="Nobody faxes", by=users["owner"])
    live = node(tree, goal, "Self-service")

    found = think_again(tree)

    assert found["missed_bets"] == []
    assert found["initiatives_without_measures"] == []
    assert found["measures_without_metric"] == []
    assert titles(found["bets_without_data_product"]) == [live.title]
