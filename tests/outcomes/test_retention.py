"""Retention: old verdicts and pull runs are pruned; evidence is kept."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection, models
from django.test.utils import isolate_apps

from outcomes import retention, tasks
from outcomes.models import Observation, PullRun, PullStatus, Verdict
from tests.factories import make_metric

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def verdict(measure, days_ago: int, *, current: bool = False) -> Verdict:
    at = NOW - timedelta(days=days_ago)
    return Verdict.objects.create(
        measure=measure,
        evaluated_at=at,
        as_of=at,
        status="on_track",
        judged_status="on_track",
        expected_progress=0.5,
        is_current=current,
    )


def run(metric, days_ago: int, status: str = PullStatus.SUCCEEDED) -> PullRun:
    return PullRun.objects.create(
        metric=metric, trigger="schedule", status=status, started_at=NOW - timedelta(days=days_ago)
    )


@pytest.fixture
def metric(tree):
    return make_metric(tree, kind="push", name="Signups")


@pytest.fixture
def measure(tree, metric):
    from outcomes.services import measure_create
    from valuetree import services

    goal = services.node_create(tree=tree, parent=None, title="Goal")
    return measure_create(
        node=goal,
        name="Signups",
        direction="increase",
        baseline_value=0,
        baseline_date=date(2026, 1, 1),
        target_value=10,
        target_date=date(2027, 1, 1),
        metric=metric,
    )


def test_old_verdicts_go_but_the_current_and_recent_ones_stay(measure, settings):
    settings.VERDICT_HISTORY_DAYS = 30
    old, recent = verdict(measure, 31), verdict(measure, 29)
    current = verdict(measure, 500, current=True)

    assert retention.verdicts_prune(now=NOW) == 1
    assert set(Verdict.objects.values_list("pk", flat=True)) == {recent.pk, current.pk}
    assert not Verdict.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_verdict_another_row_points_at_is_kept(users, tree, measure, settings, monkeypatch):
    """The hook: any model citing a verdict (a review, a decision) protects it."""
    settings.VERDICT_HISTORY_DAYS = 30
    cited, uncited = verdict(measure, 100), verdict(measure, 100)
    with isolate_apps("outcomes"):

        class Review(models.Model):  # noqa: DJ008
            verdict = models.ForeignKey(Verdict, on_delete=models.PROTECT, related_name="+")

            class Meta:
                app_label = "outcomes"
                db_table = "i16_test_review"

    # As if Review were installed: Verdict's reverse relations include it.
    relations = [*retention._relations_to(Verdict), Review._meta.get_field("verdict").remote_field]
    monkeypatch.setattr(retention, "_relations_to", lambda model: relations)
    with connection.schema_editor() as editor:
        editor.create_model(Review)
    try:
        Review.objects.create(verdict=cited)
        assert retention.verdict_ids_referenced() == {cited.pk}
        assert retention.verdicts_prune(now=NOW) == 1
        assert list(Verdict.objects.values_list("pk", flat=True)) == [cited.pk]
        assert not Verdict.objects.filter(pk=uncited.pk).exists()
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(Review)


def test_old_runs_go_except_the_latest_and_the_running_even_those_that_stored_values(
    metric, settings
):
    """A push metric has a run per pushed value: those runs are pruned like the others,
    and their values stay, without the run (issue 16 §15)."""
    settings.PULL_RUN_HISTORY_DAYS = 10
    settings.PULL_RUNS_KEEP_LATEST = 2
    old = [run(metric, days) for days in (40, 39, 38, 37)]
    stored_by = run(metric, 50)
    value = Observation.objects.create(
        metric=metric, period_start=NOW, value=1, pull_run=stored_by, pulled_at=NOW
    )
    running = run(metric, 60, PullStatus.RUNNING)
    newest = [run(metric, 2), run(metric, 1)]

    assert retention.pull_runs_prune(now=NOW) == 5
    assert set(PullRun.objects.values_list("pk", flat=True)) == {
        running.pk,
        *(r.pk for r in newest),
    }
    value.refresh_from_db()
    assert value.value == 1
    assert value.pull_run is None
    assert not PullRun.objects.filter(pk__in=[stored_by.pk, *(r.pk for r in old)]).exists()


def test_a_pushed_metric_keeps_only_the_configured_history_of_runs(metric, settings):
    """The case of the closing note: one push a day is one run per value; the runs keep
    the configured history, the values all stay."""
    from outcomes import pulling

    settings.PULL_RUN_HISTORY_DAYS = 30
    settings.PULL_RUNS_KEEP_LATEST = 10
    for days in range(100, 0, -1):
        pushed = pulling.observations_push(
            metric=metric, raw_points=[((NOW - timedelta(days=days)).date().isoformat(), days)]
        )
        PullRun.objects.filter(pk=pushed.pk).update(started_at=NOW - timedelta(days=days))
    assert PullRun.objects.count() == 100

    assert retention.pull_runs_prune(now=NOW) == 70  # started 31 to 100 days ago
    assert PullRun.objects.count() == 30
    assert Observation.objects.filter(metric=metric).count() == 100
    assert Observation.objects.filter(pull_run__isnull=False).count() == 30


def test_runs_a_decision_cites_are_kept_directly_or_through_a_cited_value(
    users, tree, metric, settings
):
    from outcomes.reviews.models import Decision, Evidence

    settings.PULL_RUN_HISTORY_DAYS = 10
    settings.PULL_RUNS_KEEP_LATEST = 0
    cited, behind_a_cited_value, uncited, behind_an_uncited_value = (
        run(metric, days) for days in (40, 41, 42, 43)
    )
    value = Observation.objects.create(
        metric=metric, period_start=NOW, value=1, pull_run=behind_a_cited_value, pulled_at=NOW
    )
    Observation.objects.create(
        metric=metric,
        period_start=NOW - timedelta(days=1),
        value=2,
        pull_run=behind_an_uncited_value,
        pulled_at=NOW,
    )
    decision = Decision.objects.create(
        tree=tree, node_title="Goal", kind="persevere", rationale="The numbers say so."
    )
    Evidence.objects.create(decision=decision, kind="pull_run", pull_run=cited)
    Evidence.objects.create(decision=decision, kind="observation", observation=value)

    assert retention.pull_run_ids_referenced() == {cited.pk, behind_a_cited_value.pk}
    assert retention.pull_runs_prune(now=NOW) == 2
    assert set(PullRun.objects.values_list("pk", flat=True)) == {
        cited.pk,
        behind_a_cited_value.pk,
    }
    value.refresh_from_db()
    assert value.pull_run_id == behind_a_cited_value.pk


def test_expired_api_tokens_are_pruned(users):
    from valuetree import services
    from valuetree.models import ApiToken

    expired, _ = services.api_token_create(user=users["viewer"], name="old script")
    working, _ = services.api_token_create(user=users["viewer"], name="new script")
    ApiToken.objects.filter(pk=expired.pk).update(expiry=NOW - timedelta(seconds=1))

    assert retention.api_tokens_expired_prune(now=NOW) == 1
    assert list(ApiToken.objects.values_list("pk", flat=True)) == [working.pk]


def test_the_latest_runs_are_kept_even_when_all_are_old(metric, settings):
    settings.PULL_RUN_HISTORY_DAYS = 10
    settings.PULL_RUNS_KEEP_LATEST = 3
    runs = [run(metric, days) for days in range(100, 90, -1)]  # ten, all old

    assert retention.pull_runs_prune(now=NOW) == 7
    assert set(PullRun.objects.values_list("pk", flat=True)) == {r.pk for r in runs[-3:]}


def test_the_task_prunes_everything_and_is_scheduled(measure, metric, settings):
    settings.VERDICT_HISTORY_DAYS = 1
    settings.PULL_RUN_HISTORY_DAYS = 1
    settings.PULL_RUNS_KEEP_LATEST = 0
    verdict(measure, 2 + (datetime.now(UTC) - NOW).days)
    run(metric, 2 + (datetime.now(UTC) - NOW).days)

    assert tasks.prune_history() == {"verdicts": 1, "pull_runs": 1, "api_tokens": 0, "trash": 0}
    assert settings.CELERY_BEAT_SCHEDULE["prune-history"]["task"] == "outcomes.tasks.prune_history"


@pytest.mark.parametrize("size", [5, 50])
def test_pruning_costs_a_few_queries_per_metric(
    metric, settings, django_assert_max_num_queries, size
):
    settings.PULL_RUN_HISTORY_DAYS = 1
    settings.PULL_RUNS_KEEP_LATEST = 1
    for days in range(size):
        run(metric, 10 + days)
    # The cited runs and values (one query per relation to a run or a value), then one
    # query per model that points at a pull run (the delete collector), decision
    # evidence among them: constant, whatever the number of runs.
    with django_assert_max_num_queries(12):
        assert retention.pull_runs_prune(now=NOW) == size - 1


def test_the_command_prunes_and_says_how_much(metric, settings, capsys):
    from django.core.management import call_command

    settings.PULL_RUN_HISTORY_DAYS = 1
    settings.PULL_RUNS_KEEP_LATEST = 0
    run(metric, 10 + (datetime.now(UTC) - NOW).days)

    call_command("prune_history")

    assert capsys.readouterr().out.strip() == (
        "Deleted 0 verdict(s), 1 pull run(s), 0 expired API token(s) and 0 trashed subtree(s) "
        "older than 30 days."
    )
    assert not PullRun.objects.exists()


def test_the_daily_prune_empties_the_trash_after_30_days(tree, users):
    """The trash keeps a deleted subtree 30 days; the daily task forgot to purge it."""
    from valuetree import services as tree_services
    from valuetree import trash
    from valuetree.models import TrashedSubtree

    goal = tree_services.node_create(tree=tree, parent=None, title="Goal")
    old = trash.node_trash(node=tree_services.node_create(tree=tree, parent=goal, title="Old"))
    recent = trash.node_trash(node=tree_services.node_create(tree=tree, parent=goal, title="New"))
    TrashedSubtree.objects.filter(pk=old.pk).update(
        deleted_at=datetime.now(UTC) - timedelta(days=31)
    )
    assert tasks.prune_history()["trash"] == 1
    assert list(TrashedSubtree.objects.values_list("pk", flat=True)) == [recent.pk]
