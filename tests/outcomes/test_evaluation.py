"""Evaluating measures against the database: stored verdicts, evidence, roll-up, queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from outcomes import evaluation, pulling, tasks
from outcomes.evaluation import measures_evaluate
from outcomes.models import Measure, Metric, Verdict, VerdictPolicy
from outcomes.selectors import tree_outcomes
from outcomes.services import (
    measure_create,
    measure_update,
    metric_delete,
    metric_source_delete,
    metric_update,
)
from tests.factories import make_metric
from valuetree import services as tree_services
from valuetree.models import MAX_WEIGHT

AT = datetime(2026, 7, 2, 12, tzinfo=UTC)  # halfway from 2026-01-01 to 2026-12-31


@pytest.fixture
def bet(tree):
    goal = tree_services.node_create(tree=tree, parent=None, title="Grow")
    return tree_services.node_create(tree=tree, parent=goal, title="Self-service")


def add_measure(node, *, metric=None, values=(), **fields):
    measure = measure_create(
        node=node,
        name=fields.pop("name", "Reorders"),
        direction=fields.pop("direction", "increase"),
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


def pushed(tree, name):
    return make_metric(tree, kind="push", source_name="Check-ins", name=name, granularity="month")


AHEAD = [(f"2026-0{month}-01", 15.0 * (month - 1)) for month in range(1, 7)]  # 0 … 75


def test_a_verdict_is_stored_with_the_observations_it_used(tree, bet):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=AHEAD, unit="orders")
    assert measures_evaluate(measure_ids=[measure.pk], at=AT) == 1

    verdict = Verdict.objects.get(measure=measure, is_current=True)
    assert verdict.status == "on_track"  # 75 % done at mid-year, rising 15 a month
    assert verdict.plan_status == "on_track"  # ahead of the straight line
    assert verdict.latest_value == 75.0
    assert verdict.progress == pytest.approx(0.75)
    used = sorted(metric.observations.values_list("id", flat=True))
    assert sorted(verdict.observation_ids) == used
    assert verdict.forecast_value > 100
    assert verdict.forecast_probability > 0.6
    assert verdict.forecast_model == "linear"
    assert "chance of reaching 100 orders by 31 Dec 2026" in verdict.reason
    assert verdict.reason.startswith("Rising about")


def test_too_few_observations_are_too_early_with_a_reason(tree, bet):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=AHEAD[:3])
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    verdict = Verdict.objects.get(measure=measure)
    assert verdict.status == "too_early"
    assert verdict.forecast_probability is None
    assert verdict.reason == "Too early to tell: too few observations (3; 5 needed); latest 30."


def test_an_unchanged_metric_is_not_refitted(tree, bet, monkeypatch):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=AHEAD)
    fits = []
    real_fit = evaluation.verdicts.fit_history
    monkeypatch.setattr(
        evaluation.verdicts, "fit_history", lambda *a: fits.append(1) or real_fit(*a)
    )
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    assert len(fits) == 1
    pulling.observations_push(metric=metric, raw_points=[("2026-06-01", 80)])  # edited
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    assert len(fits) == 2
    assert Verdict.objects.get(measure=measure, is_current=True).latest_value == 80.0
    # A later moment with no newer observation reads the same rows: no refit.
    measures_evaluate(measure_ids=[measure.pk], at=AT.replace(day=20))
    assert len(fits) == 2
    # A correction of an old period leaves the newest row as it was, but the write is
    # stamped on the metric: refitted, and the forecast moves.
    before = Verdict.objects.get(measure=measure, is_current=True).forecast_value
    pulling.observations_push(metric=metric, raw_points=[("2026-02-01", 500)])
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    assert len(fits) == 3
    assert Verdict.objects.get(measure=measure, is_current=True).forecast_value != before


def test_re_evaluating_keeps_history_and_one_current_verdict(tree, bet):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=AHEAD[:4])
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    pulling.observations_push(metric=metric, raw_points=AHEAD[4:])
    measures_evaluate(measure_ids=[measure.pk], at=AT)

    statuses = list(measure.verdicts.order_by("id").values_list("status", "is_current"))
    assert statuses == [("too_early", False), ("on_track", True)]


def test_a_measure_without_a_metric_has_no_data(bet):
    measure = add_measure(bet)
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    assert Verdict.objects.get(measure=measure).status == "no_data"


def test_the_tree_policy_decides_the_band(tree, bet):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=AHEAD)
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    current = Verdict.objects.get(is_current=True)
    assert current.status == "on_track"
    # Above the forecast's chance, and out of the toss-up band (0.45-0.55) the plan
    # would decide: the tree's own cut makes it at risk.
    VerdictPolicy.objects.create(
        tree=tree,
        on_track_probability=min(1.0, current.forecast_probability + 0.01),
        at_risk_probability=min(current.forecast_probability, 0.56),
    )
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    assert Verdict.objects.get(is_current=True).status == "at_risk"


def test_new_observations_are_evaluated_after_they_commit(
    tree, bet, django_capture_on_commit_callbacks, monkeypatch
):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric)
    monkeypatch.setattr(
        tasks.evaluate_measures, "delay", lambda *args: tasks.evaluate_measures(*args)
    )
    with django_capture_on_commit_callbacks(execute=True):
        pulling.observations_push(metric=metric, raw_points=[("2026-07-01", 50)])
    assert Verdict.objects.get(measure=measure, is_current=True).latest_value == 50.0


def test_evaluations_queued_by_a_burst_of_pushes_are_coalesced(
    tree, bet, django_capture_on_commit_callbacks, monkeypatch
):
    """Pushes queued while the worker was behind: the first evaluation reads them all,
    those queued before it began are no-ops; a push after it is evaluated."""
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric)
    queued: list = []
    monkeypatch.setattr(tasks.evaluate_measures, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        pulling.observations_push(metric=metric, raw_points=[("2026-06-01", 40)])
    with django_capture_on_commit_callbacks(execute=True):
        pulling.observations_push(metric=metric, raw_points=[("2026-07-01", 50)])
    (first, second) = queued
    # The worker, behind, begins the first one later than the margin after both pushes.
    late = datetime.fromisoformat(second[1]) + evaluation.COALESCE_MARGIN
    assert measures_evaluate(measure_ids=first[0], at=late) == 1
    assert Verdict.objects.get(measure=measure, is_current=True).latest_value == 50.0
    assert tasks.evaluate_measures(*second) == 0  # already read by the first
    assert tasks.evaluate_measures(*first) == 0
    assert Verdict.objects.filter(measure=measure).count() == 1
    # A change after that evaluation began is evaluated.
    after = (late + evaluation.COALESCE_MARGIN).isoformat()
    assert tasks.evaluate_measures(first[0], after) == 1
    # Without a time (an edited target, the daily run), always.
    assert tasks.evaluate_measures(first[0]) == 1
    assert Verdict.objects.filter(measure=measure).count() == 3


def test_an_evaluation_that_began_within_the_margin_of_a_change_does_not_cover_it(tree, bet):
    """Clocks of the web server and the worker may differ: only an evaluation that began
    COALESCE_MARGIN after the change is taken to have read it."""
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=AHEAD)
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    just_before = AT - evaluation.COALESCE_MARGIN / 2
    assert measures_evaluate(measure_ids=[measure.pk], changed_at=just_before) == 1


@pytest.mark.parametrize(
    ("change", "reevaluated"),
    [
        pytest.param({"target_value": 200}, True, id="target"),
        pytest.param({"baseline_value": -10}, True, id="baseline"),
        pytest.param({"target_date": "2027-06-30"}, True, id="dates"),
        pytest.param({"direction": "at_least"}, True, id="direction"),
        pytest.param({"weight": 3}, True, id="weight"),
        # The stored reason reads "Flat at 30.5% since …": a new unit must reach it.
        pytest.param({"unit": "orders"}, True, id="unit"),
        pytest.param({"name": "Repeat orders"}, False, id="name-only"),
    ],
)
def test_editing_the_question_re_evaluates_after_commit(
    tree,
    bet,
    change,
    reevaluated,
    django_capture_on_commit_callbacks,
    monkeypatch,
    django_assert_max_num_queries,
):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=AHEAD)
    queued = []
    monkeypatch.setattr(tasks.evaluate_measures, "delay", queued.append)
    # full_clean (node, metric, one check per constraint — the bounds of issue 14 add three —,
    # each in a savepoint), UPDATE,
    # history row: the same with or without a re-evaluation, which runs after commit
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        django_assert_max_num_queries(21),
    ):
        measure_update(measure=measure, **change)
    assert queued == ([[measure.pk]] if reevaluated else [])
    assert len(callbacks) == (1 if reevaluated else 0)


@pytest.mark.parametrize(
    ("change", "reevaluated"),
    [
        # A stale measure's editor allows more time between values: it stayed "stale"
        # on every page until the nightly re-evaluation, then until a worker ran.
        pytest.param({"expected_frequency": timedelta(days=3650)}, True, id="expected"),
        pytest.param({"granularity": "week"}, True, id="granularity"),
        pytest.param({"name": "Repeat orders"}, False, id="name-only"),
        pytest.param({"expected_frequency": timedelta(days=3)}, False, id="same-value"),
    ],
)
def test_editing_a_metric_s_staleness_re_evaluates_its_measures_at_once(
    tree, bet, change, reevaluated, django_capture_on_commit_callbacks, monkeypatch
):
    metric = pushed(tree, "Reorders")
    metric_update(metric=metric, expected_frequency=timedelta(days=3))
    measure = add_measure(bet, metric=metric, values=AHEAD)
    other = add_measure(bet, name="Not fed by it")
    measures_evaluate(measure_ids=[measure.pk, other.pk])
    before = dict(Verdict.objects.filter(is_current=True).values_list("measure_id", "pk"))
    assert Verdict.objects.get(pk=before[measure.pk]).status == "stale"  # June's value
    queued = []
    monkeypatch.setattr(tasks.evaluate_measures, "delay", queued.append)

    with django_capture_on_commit_callbacks(execute=True):
        metric_update(metric=Metric.objects.get(pk=metric.pk), **change)

    after = dict(Verdict.objects.filter(is_current=True).values_list("measure_id", "pk"))
    assert queued == []  # no worker needed: the next page already reads the new verdict
    assert after[other.pk] == before[other.pk]
    assert (after[measure.pk] != before[measure.pk]) is reevaluated
    if "expected_frequency" in change and reevaluated:
        assert Verdict.objects.get(pk=after[measure.pk]).status != "stale"


@pytest.mark.parametrize("count", [1, 30])
def test_a_metric_edit_re_evaluates_its_measures_in_a_constant_number_of_queries(
    tree,
    bet,
    count,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
    monkeypatch,
):
    metric = pushed(tree, "Reorders")
    measures = [add_measure(bet, metric=metric, name=f"Reorders {i}") for i in range(count)]
    pulling.observations_push(metric=metric, raw_points=AHEAD)
    monkeypatch.setattr(tasks.evaluate_measures, "delay", pytest.fail)
    metric = Metric.objects.get(pk=metric.pk)
    # The edit: full_clean (source, unique name, one check per constraint, each in a
    # savepoint), UPDATE, history row, the ids of its measures: 23. The evaluation after
    # the commit (the callbacks run as the capture closes, inside the count): measures,
    # policies, the fit's probe and history, UPDATE and INSERT of verdicts: 10.
    with (
        django_assert_max_num_queries(33),
        django_capture_on_commit_callbacks(execute=True),
    ):
        metric_update(metric=metric, expected_frequency=timedelta(days=90))
    current = Verdict.objects.filter(measure__in=measures, is_current=True)
    assert current.count() == count


def test_a_metric_feeding_many_measures_leaves_them_to_the_queue(
    tree, bet, django_capture_on_commit_callbacks, monkeypatch
):
    from outcomes import services

    monkeypatch.setattr(services, "REEVALUATE_IN_PROCESS_UP_TO", 2)
    metric = pushed(tree, "Reorders")
    measures = [add_measure(bet, metric=metric, name=f"Reorders {i}") for i in range(3)]
    queued = []
    monkeypatch.setattr(tasks.evaluate_measures, "delay", queued.append)

    with django_capture_on_commit_callbacks(execute=True):
        metric_update(metric=metric, expected_frequency=timedelta(days=90))

    assert queued == [sorted(m.pk for m in measures)]
    assert not Verdict.objects.exists()


def test_a_new_target_changes_the_current_verdict(tree, bet):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=AHEAD)
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    assert Verdict.objects.get(is_current=True).status == "on_track"
    measure_update(measure=measure, target_value=400)
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    current = Verdict.objects.get(is_current=True)
    assert current.status == "off_track"
    assert "chance of reaching 400 by 31 Dec 2026" in current.reason


@pytest.mark.parametrize("count", [3, 30])
def test_evaluation_queries_do_not_grow_with_measures(
    tree, bet, count, django_assert_max_num_queries
):
    metric = pushed(tree, "Reorders")
    pulling.observations_push(metric=metric, raw_points=AHEAD)
    ids = [add_measure(bet, metric=metric, name=f"M{n}").pk for n in range(count)]
    evaluation.fit_cache.clear()
    # ids, measures, policies, fit keys, observations, UPDATE, measures still there,
    # INSERT (+ savepoints)
    with django_assert_max_num_queries(10):
        assert measures_evaluate(measure_ids=ids, at=AT) == count


def test_roll_up_and_realised_value_up_the_tree(tree, bet):
    initiative = tree_services.node_create(
        tree=tree,
        parent=bet,
        title="One-click reorder",
        expected_value_amount=1000,
        investment_amount=300,
    )
    metric = pushed(tree, "Reorders")
    value_measure = add_measure(initiative, metric=metric, values=AHEAD, is_value_measure=True)
    guard = pushed(tree, "Complaints")
    guardrail = add_measure(
        initiative,
        metric=guard,
        values=[(day, 100 + n % 2) for n, (day, _) in enumerate(AHEAD)],
        name="Complaints",
        direction="decrease",
        baseline_value=100,
        target_value=0,
        is_guardrail=True,
    )
    measures_evaluate(measure_ids=[value_measure.pk, guardrail.pk], at=AT)

    outcomes = tree_outcomes([tree.pk])
    # The guardrail (complaints flat at 100, target 0) caps the on-track initiative.
    assert outcomes[initiative.pk].status == "off_track"
    assert outcomes[initiative.pk].realised_value == pytest.approx(750.0)
    assert outcomes[initiative.pk].expected_value == 1000.0
    # A bet without figures of its own sums its initiatives'.
    assert outcomes[bet.pk].expected_value == 1000.0
    assert outcomes[bet.pk].realised_value == pytest.approx(750.0)
    assert outcomes[bet.pk].investment == 300.0
    assert outcomes[bet.pk].status == outcomes[initiative.pk].status


def test_killed_nodes_leave_the_roll_up_done_nodes_count(tree, bet):
    good = tree_services.node_create(tree=tree, parent=bet, title="Reorder button")
    bad = tree_services.node_create(tree=tree, parent=bet, title="Loyalty points")
    metric = pushed(tree, "Reorders")
    flat = pushed(tree, "Points")
    ids = [
        add_measure(good, metric=metric, values=AHEAD).pk,
        add_measure(bad, metric=flat, values=[(d, 0) for d, _ in AHEAD], name="Points").pk,
    ]
    measures_evaluate(measure_ids=ids, at=AT)
    assert tree_outcomes([tree.pk])[bet.pk].status == "at_risk"  # on track + off track

    tree_services.node_update(node=bad, status="killed")
    outcomes = tree_outcomes([tree.pk])
    assert outcomes[bet.pk].status == "on_track"
    assert outcomes[bad.pk].status == "off_track"  # still shown with its last verdict

    tree_services.node_update(node=good, status="done")
    assert tree_outcomes([tree.pk])[bet.pk].status == "on_track"  # done counts


def test_killed_nodes_leave_the_value_and_investment_totals(tree, bet):
    kept = tree_services.node_create(
        tree=tree, parent=bet, title="Reorder", expected_value_amount=1000, investment_amount=300
    )
    killed = tree_services.node_create(
        tree=tree, parent=bet, title="Points", expected_value_amount=500, investment_amount=200
    )
    metric = pushed(tree, "Reorders")
    ids = [
        add_measure(node, metric=metric, values=AHEAD, is_value_measure=True).pk
        for node in (kept, killed)
    ]
    measures_evaluate(measure_ids=ids, at=AT)
    before = tree_outcomes([tree.pk])[bet.pk]
    assert (before.expected_value, before.investment) == (1500.0, 500.0)
    assert before.realised_value == pytest.approx(1500 * 0.75)

    tree_services.node_update(node=killed, status="killed")
    outcomes = tree_outcomes([tree.pk])
    after = outcomes[bet.pk]
    assert (after.expected_value, after.investment) == (1000.0, 300.0)
    assert after.realised_value == pytest.approx(750.0)
    assert after.expected_by_unit == {"": 1000.0}
    # The killed node keeps its own figures.
    assert (outcomes[killed.pk].expected_value, outcomes[killed.pk].investment) == (500.0, 200.0)
    # ... and a goal above sums only what its bets still count.
    goal = outcomes[bet.parent_id]
    assert (goal.expected_value, goal.investment) == (1000.0, 300.0)


def test_equal_inputs_share_a_roll_up_and_different_ones_never_do(tree, bet):
    """tree_outcomes runs roll_up once per distinct input: initiatives with the same
    verdicts share a result, but parents with the same own measures and different
    children (or a killed child) do not; the tree page's path (``measure_rows``) and
    the plain one agree on every node."""
    from outcomes.selectors import _measure_rows

    goal = bet.parent
    other = tree_services.node_create(tree=tree, parent=goal, title="Other bet")
    ahead, flat = pushed(tree, "Reorders"), pushed(tree, "Points")
    ids = []
    kids = {}
    for parent, title, metric in [
        (bet, "A", ahead),
        (bet, "B", ahead),
        (other, "C", flat),
        (other, "D", ahead),
    ]:
        kids[title] = tree_services.node_create(tree=tree, parent=parent, title=title)
        values = AHEAD if metric is ahead else [(d, 0) for d, _ in AHEAD]
        ids.append(add_measure(kids[title], metric=metric, values=values, name=title).pk)
    for parent in (bet, other):  # the same own measure on both bets, no metric
        add_measure(parent, name=f"Own {parent.title}")
    measures_evaluate(measure_ids=ids, at=AT)

    outcomes = tree_outcomes([tree.pk])
    assert outcomes[kids["A"].pk] == outcomes[kids["B"].pk] == outcomes[kids["D"].pk]
    assert (outcomes[kids["A"].pk].status, outcomes[kids["C"].pk].status) == (
        "on_track",
        "off_track",
    )
    assert outcomes[bet.pk].status == "on_track"
    assert outcomes[other.pk].status == "at_risk"  # on track + off track
    assert tree_outcomes([tree.pk], measure_rows=_measure_rows(tree.pk)) == outcomes

    tree_services.node_update(node=kids["C"], status="killed")
    outcomes = tree_outcomes([tree.pk])
    assert outcomes[other.pk].status == "on_track"
    assert outcomes[kids["C"].pk].status == "off_track"
    assert tree_outcomes([tree.pk], measure_rows=_measure_rows(tree.pk)) == outcomes


def test_extreme_weights_are_refused_and_the_largest_rolls_up(tree, bet):
    metric = pushed(tree, "Reorders")
    with pytest.raises(ValidationError) as refused:
        add_measure(bet, metric=metric, name="Huge", weight=1.5e308)
    assert "weight" in refused.value.message_dict
    ids = [
        add_measure(bet, metric=metric, values=AHEAD, name=f"M{n}", weight=MAX_WEIGHT).pk
        for n in range(3)
    ]
    measures_evaluate(measure_ids=ids, at=AT)
    outcome = tree_outcomes([tree.pk])[bet.pk]
    assert (outcome.status, outcome.score) == ("on_track", 0.75)


def test_an_evaluation_queued_for_a_deleted_measure_does_nothing(tree, bet):
    gone = add_measure(bet, name="Gone")
    gone_id = gone.pk
    gone.delete()

    assert tasks.evaluate_measures([gone_id]) == 0
    assert Verdict.objects.count() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_measure_deleted_during_its_evaluation_gets_no_verdict(tree, bet, monkeypatch):
    """Deleted after the worker read it, before the verdicts are written: no
    foreign-key error at commit, the other measures' verdicts are stored."""
    from outcomes import verdicts

    kept, gone = add_measure(bet, name="Kept"), add_measure(bet, name="Gone")
    evaluate = verdicts.evaluate
    calls = []

    def evaluate_then_delete(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            Measure.objects.filter(pk=gone.pk).delete()
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(verdicts, "evaluate", evaluate_then_delete)
    assert measures_evaluate(measure_ids=[kept.pk, gone.pk], at=AT) == 1
    assert list(Verdict.objects.values_list("measure_id", flat=True)) == [kept.pk]


def test_the_measure_page_names_the_plan_status_in_words(tree, bet, users, client):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=AHEAD, unit="orders")
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    client.force_login(users["viewer"])
    html = client.get(f"/dashboard/measures/{measure.pk}/").content.decode()
    assert "against the straight-line plan: on track)" in html
    assert "ontrack" not in html


def test_review_changes_name_fields_and_statuses_in_words():
    from django.template.loader import render_to_string

    html = render_to_string(
        "outcomes/reviews/_changes.html",
        {
            "changes": {
                "measure_moves": [
                    {"name": "M", "node_title": "N", "from": "on_track", "to": "at_risk"}
                ],
                "edits": [{"name": "M", "field": "target_value", "from": 1, "to": 2}],
            }
        },
    )
    assert "target value 1 → 2" in html
    assert '>on track</span> → <span data-verdict="at_risk">at risk</span>' in html


@pytest.mark.parametrize("delete", ["metric", "source"])
def test_a_measure_whose_metric_is_deleted_has_no_data_again(
    tree, bet, delete, django_capture_on_commit_callbacks, monkeypatch
):
    """Its last verdict ("on track", "rising about 15 a month…") stayed current on every
    page though nothing fed the measure any more."""
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=AHEAD)
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    assert Verdict.objects.get(measure=measure, is_current=True).status == "on_track"
    monkeypatch.setattr(
        tasks.evaluate_measures, "delay", lambda ids: measures_evaluate(measure_ids=ids, at=AT)
    )

    with django_capture_on_commit_callbacks(execute=True):
        if delete == "metric":
            metric_delete(metric=metric)
        else:
            metric_source_delete(source=metric.source)

    current = Verdict.objects.get(measure=measure, is_current=True)
    assert (current.status, current.reason) == ("no_data", "No observations yet.")
    assert Verdict.objects.filter(measure=measure).count() == 2  # the history stays
