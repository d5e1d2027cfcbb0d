"""Evaluating measures against the database: stored verdicts, evidence, roll-up, queries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from outcomes import pulling, tasks
from outcomes.evaluation import measures_evaluate
from outcomes.models import Measure, Verdict, VerdictPolicy
from outcomes.selectors import tree_outcomes
from outcomes.services import measure_create
from tests.factories import make_metric
from valuetree import services as tree_services

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


def test_a_verdict_is_stored_with_the_observations_it_used(tree, bet):
    metric = pushed(tree, "Reorders")
    measure = add_measure(
        bet, metric=metric, values=[("2026-03-01", 20), ("2026-05-01", 40), ("2026-07-01", 50)]
    )
    assert measures_evaluate(measure_ids=[measure.pk], at=AT) == 1

    verdict = Verdict.objects.get(measure=measure, is_current=True)
    assert verdict.status == "on_track"  # 50 % done, 50 % planned
    assert verdict.latest_value == 50.0
    assert verdict.progress == pytest.approx(0.5)
    used = sorted(metric.observations.values_list("id", flat=True))
    assert sorted(verdict.observation_ids) == used
    assert verdict.forecast_value is not None and verdict.forecast_probability is not None


def test_re_evaluating_keeps_history_and_one_current_verdict(tree, bet):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=[("2026-06-01", 10)])
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    pulling.observations_push(metric=metric, raw_points=[("2026-07-01", 52)])
    measures_evaluate(measure_ids=[measure.pk], at=AT)

    statuses = list(measure.verdicts.order_by("id").values_list("status", "is_current"))
    assert statuses == [("off_track", False), ("on_track", True)]


def test_a_measure_without_a_metric_has_no_data(bet):
    measure = add_measure(bet)
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    assert Verdict.objects.get(measure=measure).status == "no_data"


def test_the_tree_tolerance_decides_the_band(tree, bet):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric, values=[("2026-07-01", 40)])  # 10 points behind
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    assert Verdict.objects.get(is_current=True).status == "at_risk"
    VerdictPolicy.objects.create(tree=tree, on_track_within=0.12, at_risk_within=0.3)
    measures_evaluate(measure_ids=[measure.pk], at=AT)
    assert Verdict.objects.get(is_current=True).status == "on_track"


def test_new_observations_are_evaluated_after_they_commit(
    tree, bet, django_capture_on_commit_callbacks, monkeypatch
):
    metric = pushed(tree, "Reorders")
    measure = add_measure(bet, metric=metric)
    monkeypatch.setattr(tasks.evaluate_measures, "delay", lambda ids: tasks.evaluate_measures(ids))
    with django_capture_on_commit_callbacks(execute=True):
        pulling.observations_push(metric=metric, raw_points=[("2026-07-01", 50)])
    assert Verdict.objects.get(measure=measure, is_current=True).latest_value == 50.0


@pytest.mark.parametrize("count", [3, 30])
def test_evaluation_queries_do_not_grow_with_measures(
    tree, bet, count, django_assert_max_num_queries
):
    metric = pushed(tree, "Reorders")
    pulling.observations_push(metric=metric, raw_points=[("2026-06-01", 45), ("2026-07-01", 50)])
    ids = [add_measure(bet, metric=metric, name=f"M{n}").pk for n in range(count)]
    # ids, measures, tolerances, observations, UPDATE, measures still there, INSERT
    # (+ savepoints)
    with django_assert_max_num_queries(9):
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
    value_measure = add_measure(
        initiative, metric=metric, values=[("2026-07-01", 50)], is_value_measure=True
    )
    guard = pushed(tree, "Complaints")
    guardrail = add_measure(
        initiative,
        metric=guard,
        values=[("2026-07-01", 100)],
        name="Complaints",
        direction="decrease",
        baseline_value=100,
        target_value=0,
        is_guardrail=True,
    )
    measures_evaluate(measure_ids=[value_measure.pk, guardrail.pk], at=AT)

    outcomes = tree_outcomes([tree.pk])
    # The guardrail (no progress on complaints) caps the on-track initiative.
    assert outcomes[initiative.pk].status == "off_track"
    assert outcomes[initiative.pk].realised_value == pytest.approx(500.0)
    assert outcomes[initiative.pk].expected_value == 1000.0
    # A bet without figures of its own sums its initiatives'.
    assert outcomes[bet.pk].expected_value == 1000.0
    assert outcomes[bet.pk].realised_value == pytest.approx(500.0)
    assert outcomes[bet.pk].investment == 300.0
    assert outcomes[bet.pk].status == outcomes[initiative.pk].status


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
