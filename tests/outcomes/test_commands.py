"""Management commands of outcomes: rotate_credentials, pull_metrics, load_demo_metrics."""

from __future__ import annotations

import io
import sqlite3
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.utils import timezone

from outcomes.credentials import CredentialsUnreadable, credentials_decrypt
from outcomes.demo import live_metrics_view
from outcomes.models import Measure, Metric, MetricSource, Observation, PullRun, PullStatus
from tests.factories import make_metric

KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))
SECRET = {"headers": {"Authorization": "Bearer rotate-me-secret"}}


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out, **options)
    return out.getvalue()


# --- Credentials ----------------------------------------------------------------------


@pytest.fixture
def secret_source(tree, settings):
    settings.CREDENTIALS_KEYS = [KEY_A]
    return make_metric(
        tree,
        kind="http_json",
        source_name="API",
        config={"url": "https://kpi.example.com"},
        credentials=SECRET,
        query="$.value",
        schedule_interval=timedelta(hours=1),
    ).source


def test_credentials_are_encrypted_at_rest_and_kept_out_of_history(secret_source):
    stored = MetricSource.objects.values_list("credentials_encrypted", flat=True).get()
    assert "rotate-me-secret" not in stored
    assert credentials_decrypt(stored) == SECRET
    history_fields = {field.name for field in MetricSource.history.model._meta.fields}
    assert "credentials_encrypted" not in history_fields


def test_rotation_moves_credentials_to_the_newest_key(secret_source, settings):
    settings.CREDENTIALS_KEYS = [KEY_B, KEY_A]
    assert "1 sources re-encrypted" in run("rotate_credentials")
    settings.CREDENTIALS_KEYS = [KEY_B]  # the old key is gone: the new one must do
    secret_source.refresh_from_db()
    assert credentials_decrypt(secret_source.credentials_encrypted) == SECRET


def test_rotation_without_the_old_key_changes_nothing(secret_source, settings):
    before = MetricSource.objects.values_list("credentials_encrypted", flat=True).get()
    settings.CREDENTIALS_KEYS = [KEY_C]
    with pytest.raises(CommandError, match="Nothing was changed"):
        run("rotate_credentials")
    assert MetricSource.objects.values_list("credentials_encrypted", flat=True).get() == before
    with pytest.raises(CredentialsUnreadable):
        credentials_decrypt(before)


def test_a_pull_with_unreadable_credentials_fails_with_a_clear_message(secret_source, settings):
    from outcomes import pulling

    settings.CREDENTIALS_KEYS = [KEY_C]
    metric = secret_source.metrics.get()
    assert pulling.metric_claim(metric=metric)
    run_ = pulling.metric_pull(metric_id=metric.pk, trigger="manual")
    assert run_.status == PullStatus.FAILED
    assert "cannot be decrypted" in run_.error


# --- pull_metrics ---------------------------------------------------------------------


@pytest.fixture
def warehouse(tmp_path, settings):
    settings.METRICS_SQLITE_DIRS = [str(tmp_path)]
    path = tmp_path / "dw.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE kpi (day TEXT, value REAL)")
        db.executemany("INSERT INTO kpi VALUES (?, ?)", [("2026-01-01", 1.5), ("2026-01-02", 2.5)])
    db.close()
    return f"sqlite:///{path}"


def test_pull_metrics_pulls_in_process_and_reports(tree, warehouse):
    good = make_metric(
        tree,
        kind="sql",
        source_name="DW",
        config={"url": warehouse},
        query="SELECT day, value FROM kpi",
        schedule_interval=timedelta(hours=1),
        name="Good",
    )
    output = run("pull_metrics", metric=[good.pk])
    assert "Good: 2 values" in output
    assert "1 pulled, 0 failed." in output
    assert list(good.observations.values_list("value", flat=True)) == [1.5, 2.5]
    good.refresh_from_db()
    assert good.claimed_at is None


def test_pull_metrics_fails_loudly_when_a_pull_fails(tree, warehouse):
    make_metric(
        tree,
        kind="sql",
        source_name="DW",
        config={"url": warehouse},
        query="SELECT value FROM no_such_table",
        schedule_interval=timedelta(hours=1),
        name="Broken",
    )
    with pytest.raises(CommandError, match="1 of 1 pulls failed"):
        run("pull_metrics", "--all")
    assert PullRun.objects.get().status == PullStatus.FAILED
    assert Observation.objects.count() == 0


def test_pull_metrics_names_an_unknown_metric(db):
    with pytest.raises(CommandError, match="No pulled metric with id 424242"):
        run("pull_metrics", metric=[424242])


# --- The demo -------------------------------------------------------------------------


def test_demo_metrics_load_link_measures_and_pull_offline(
    db, tmp_path, settings, django_capture_on_commit_callbacks
):
    from outcomes.models import Verdict

    settings.METRICS_SQLITE_DIRS = [str(tmp_path)]
    run("load_demo")
    with django_capture_on_commit_callbacks(execute=True):
        output = run("load_demo_metrics")
    # Every demo measure has a verdict from the start.
    assert Verdict.objects.filter(is_current=True).count() == Measure.objects.count()
    assert "Demo metrics: 6 metrics in tree helix-diagnostics" in output
    assert Measure.objects.filter(metric__isnull=False).count() == 6
    kinds = sorted(MetricSource.objects.values_list("kind", flat=True))
    assert kinds == ["http_json", "push", "sql"]
    check_ins = Observation.objects.filter(metric__source__kind="push").count()
    assert check_ins > 0

    # Again: nothing doubles, the warehouse is rewritten.
    run("load_demo_metrics")
    assert Metric.objects.count() == 6
    assert Observation.objects.filter(metric__source__kind="push").count() == check_ins

    # The warehouse metrics pull for real, with no network.
    sql_ids = list(Metric.objects.filter(source__kind="sql").values_list("pk", flat=True))
    output = run("pull_metrics", metric=sql_ids)
    assert f"{len(sql_ids)} pulled, 0 failed." in output
    for metric in Metric.objects.filter(pk__in=sql_ids):
        assert metric.observations.count() > 100


def test_the_demo_endpoint_answers_what_the_demo_http_source_reads():
    import json

    from outcomes.connectors.http import parse_json
    from outcomes.connectors.http_json import CONNECTOR

    response = live_metrics_view(RequestFactory().get("/demo/live-metrics/"))
    body = json.loads(response.content)
    assert set(body) == {"as_of", "floor"}
    # The demo metric's JSONPath finds one number in it.
    assert CONNECTOR.validate_metric("$.floor.queue_to_action_minutes", {}) is None
    assert isinstance(parse_json(response.content)["floor"]["queue_to_action_minutes"], float)


def test_the_demo_dashboard_shows_true_realised_value(
    db, tmp_path, settings, client, django_capture_on_commit_callbacks
):
    """The demo marks value measures and starts with a year of history, so realised
    value is there from the start: each bet's expected value × its value measure's
    delivered fraction (its verdict's progress), summed per unit up to its goal."""
    from django.contrib.auth import get_user_model

    from outcomes.models import Verdict
    from outcomes.selectors import tree_outcomes
    from valuetree.models import Node

    settings.METRICS_SQLITE_DIRS = [str(tmp_path)]
    run("load_demo")
    with django_capture_on_commit_callbacks(execute=True):
        run("load_demo_metrics")
    # A year of history: the warehouse metrics pulled once, the live feed's past year.
    for metric in Metric.objects.exclude(source__kind="push"):
        first = metric.observations.order_by("period_start").first().period_start
        assert timezone.now() - first >= timedelta(days=364), metric.name

    value_measures = Measure.objects.filter(is_value_measure=True, metric__isnull=False)
    assert value_measures.count() == 4
    tree_id = Node.objects.get(title__startswith="Real-time sample tracking").tree_id
    outcomes = tree_outcomes([tree_id])
    expected_realised: dict[int, float] = {}
    for measure in value_measures.select_related("node"):
        progress = Verdict.objects.get(measure=measure, is_current=True).progress
        assert progress is not None and 0 < progress <= 1, measure.name
        node = measure.node
        realised = float(node.expected_value_amount) * progress
        assert outcomes[node.pk].realised_by_unit == {"EUR/year": pytest.approx(realised)}
        if node.kind == "bet":
            expected_realised[node.parent_id] = expected_realised.get(node.parent_id, 0) + realised
    [(goal_id, goal_realised)] = expected_realised.items()
    assert outcomes[goal_id].realised_by_unit == {"EUR/year": pytest.approx(goal_realised)}

    client.force_login(get_user_model().objects.get(username="demo"))
    page = client.get("/dashboard/")
    assert page.status_code == 200
    rows = {(row["id"], row["unit"]): row for row in page.context["goal_rows"]}
    assert rows[goal_id, "EUR/year"]["realised"] == pytest.approx(goal_realised)
    assert goal_realised > 0
    html = page.content.decode()
    from valuetree.outline import format_amount

    assert format_amount(rows[goal_id, "EUR/year"]["realised"], "EUR/year") in html
