"""Metric sources, metrics and their values in the browser, through Django's test client:
who may see and change what, write-only credentials, Pull now, CSV uploads, check-ins,
the chart's data and the metrics page's query count."""

from __future__ import annotations

import datetime as dt
import json
import re
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from outcomes import services as outcome_services
from outcomes.credentials import credentials_decrypt
from outcomes.models import (
    Measure,
    Metric,
    MetricSource,
    Observation,
    PullRun,
    PullStatus,
    PullTrigger,
)
from tests.factories import make_metric, make_role_users, make_tree
from valuetree import services

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SECRET = "Bearer sk-very-secret-token-4711"
API = "https://metrics.example.com"


@pytest.fixture
def as_role(users):
    def login(role: str) -> Client:
        client = Client()
        if role != "anonymous":
            client.force_login(users[role])
        return client

    return login


@pytest.fixture
def pulled(tree):
    """A pulled metric (HTTP JSON; nothing is fetched: tasks are not run here)."""
    return make_metric(
        tree,
        kind="http_json",
        source_name="Stats API",
        config={"url": API},
        credentials={"headers": {"Authorization": SECRET}},
        name="Signups",
        query="$.signups",
        schedule_interval=dt.timedelta(hours=1),
    )


@pytest.fixture
def pushed(tree):
    return make_metric(tree, source_name="Survey", name="NPS", unit="points")


@pytest.fixture
def measure(tree, pushed):
    goal = services.node_create(tree=tree, parent=None, title="Goal")
    return outcome_services.measure_create(
        node=goal,
        name="Happier customers",
        direction="increase",
        baseline_value=10,
        baseline_date=dt.date(2026, 1, 1),
        target_value=40,
        target_date=dt.date(2027, 1, 1),
        metric=pushed,
    )


def metric_state(metric: Metric) -> tuple:
    metric = Metric.objects.get(pk=metric.pk)
    return (
        metric.name,
        metric.query,
        metric.options,
        metric.schedule_interval,
        metric.schedule_cron,
        metric.timezone,
        metric.is_active,
    )


def field_error(html: str, field: str) -> str:
    """The error shown next to a field of the form (valuetree/_form_fields.html)."""
    found = re.search(rf'<span class="field-error" id="id_{field}_error"[^>]*>(.*?)</span>', html)
    return found.group(1) if found else ""


READERS = {"owner": 200, "editor": 200, "viewer": 200, "leadership": 200, "outsider": 404}
EDITORS = {"owner": 200, "editor": 200, "viewer": 403, "leadership": 403, "outsider": 404}


@pytest.mark.django_db
class TestAccess:
    @pytest.mark.parametrize("role", [*READERS, "anonymous"])
    @pytest.mark.parametrize(
        "page", ["/trees/tree/metrics/", "/metrics/{pulled}/", "/metrics/{pushed}/"]
    )
    def test_readers_see_the_pages(self, as_role, pulled, pushed, page, role):
        response = as_role(role).get(page.format(pulled=pulled.pk, pushed=pushed.pk))
        if role == "anonymous":
            assert response.status_code == 302
            assert response["Location"].startswith("/accounts/login/")
        else:
            assert response.status_code == READERS[role]

    @pytest.mark.parametrize("role", [*EDITORS, "anonymous"])
    @pytest.mark.parametrize(
        "page",
        [
            "/trees/tree/sources/new/",
            "/sources/{source}/edit/",
            "/sources/{source}/delete/",
            "/sources/{source}/metrics/new/",
            "/metrics/{metric}/edit/",
            "/metrics/{metric}/delete/",
        ],
    )
    def test_only_editors_open_the_forms(self, as_role, pulled, page, role):
        url = page.format(source=pulled.source_id, metric=pulled.pk)
        response = as_role(role).get(url)
        if role == "anonymous":
            assert response.status_code == 302
        else:
            assert response.status_code == EDITORS[role]

    @pytest.mark.parametrize("role", ["viewer", "leadership", "outsider"])
    def test_readers_change_nothing(self, as_role, pulled, pushed, measure, role):
        client = as_role(role)
        expected = 404 if role == "outsider" else 403
        posts = [
            (f"/metrics/{pulled.pk}/pull/", {}),
            (f"/metrics/{pushed.pk}/check-in/", {"value": "5"}),
            (f"/measures/{measure.pk}/check-in/", {"value": "5"}),
            (f"/metrics/{pulled.pk}/delete/", {}),
            (f"/sources/{pulled.source_id}/delete/", {}),
            ("/trees/tree/sources/new/", {"kind": "push", "name": "Mine"}),
        ]
        for url, data in posts:
            assert client.post(url, data).status_code == expected, url
        assert Metric.objects.count() == 2
        assert MetricSource.objects.count() == 2
        assert not Observation.objects.exists()
        assert Metric.objects.get(pk=pulled.pk).claimed_at is None

    def test_viewer_sees_no_edit_controls(self, as_role, pulled, pushed):
        html = as_role("viewer").get("/trees/tree/metrics/").content.decode()
        assert "Signups" in html
        for control in ("Pull now", "Add a source", "/edit/", "/delete/", "Add a metric"):
            assert control not in html
        metric_html = as_role("viewer").get(f"/metrics/{pushed.pk}/").content.decode()
        assert "/check-in/" not in metric_html
        assert "/upload/" not in metric_html

    def test_tree_page_links_to_the_metrics_page(self, as_role, tree):
        html = as_role("viewer").get("/trees/tree/").content.decode()
        assert 'href="/trees/tree/metrics/"' in html


@pytest.mark.django_db
class TestSources:
    def test_create_a_source_whose_secret_is_never_shown(self, as_role, tree):
        client = as_role("editor")
        response = client.post(
            "/trees/tree/sources/new/",
            {
                "kind": "http_json",
                "name": "Stats API",
                "url": API,
                "headers": "Accept: application/json",
                "secret_headers": f"Authorization: {SECRET}",
            },
        )
        assert response.status_code == 302
        source = MetricSource.objects.get(name="Stats API")
        assert source.config == {"url": API, "headers": {"Accept": "application/json"}}
        assert credentials_decrypt(source.credentials_encrypted) == {
            "headers": {"Authorization": SECRET}
        }
        assert SECRET not in source.credentials_encrypted
        metric = outcome_services.metric_create(
            source=source, name="Signups", query="$.n", schedule_interval=dt.timedelta(hours=1)
        )
        for url in (
            "/trees/tree/metrics/",
            f"/sources/{source.pk}/edit/",
            f"/metrics/{metric.pk}/",
            f"/metrics/{metric.pk}/edit/",
        ):
            html = client.get(url).content.decode()
            assert "sk-very-secret" not in html, url
        listing = client.get("/trees/tree/metrics/").content.decode()
        assert "<td>Stored</td>" in listing
        edit = client.get(f"/sources/{source.pk}/edit/").content.decode()
        assert "Stored; leave blank to keep." in edit
        assert "Accept: application/json" in edit  # public headers are shown

    def test_a_refused_form_does_not_echo_the_secret(self, as_role, tree):
        response = as_role("editor").post(
            "/trees/tree/sources/new/",
            {
                "kind": "http_json",
                "name": "Stats API",
                "url": "ftp://metrics.example.com",
                "secret_headers": f"Authorization: {SECRET}",
                "password": SECRET,
            },
        )
        assert response.status_code == 400
        html = response.content.decode()
        assert "sk-very-secret" not in html
        assert "https://" in field_error(html, "url")
        assert "Unknown credential" in field_error(html, "password")
        assert not MetricSource.objects.exists()

    @pytest.mark.parametrize(
        ("data", "field", "message"),
        [
            ({"kind": "http_json", "url": ""}, "url", "Enter the address"),
            ({"kind": "http_json", "url": API, "headers": "no colon"}, "headers", "Line 1"),
            ({"kind": "sql", "url": "sqlite:///x.db", "headers": "A: b"}, "headers", "Unknown"),
            ({"kind": "sql", "url": "not a url"}, "url", ""),
            ({"kind": "teapot"}, "kind", "Select a valid choice"),
            ({"kind": "push", "name": ""}, "name", "required"),
        ],
    )
    def test_bad_input_shows_errors_and_creates_nothing(self, as_role, tree, data, field, message):
        response = as_role("editor").post("/trees/tree/sources/new/", {"name": "S", **data})
        assert response.status_code == 400
        error = field_error(response.content.decode(), field)
        assert error, response.content.decode()
        assert message in error
        assert not MetricSource.objects.exists()

    def test_a_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(self, as_role, pulled):
        source = pulled.source
        client = as_role("editor")
        form = {"name": "Renamed", "url": API + "/v2", "headers": ""}
        assert client.post(f"/sources/{source.pk}/edit/", form).status_code == 302
        source.refresh_from_db()
        assert (source.name, source.config["url"]) == ("Renamed", API + "/v2")
        assert credentials_decrypt(source.credentials_encrypted) == {
            "headers": {"Authorization": SECRET}
        }
        form["secret_headers"] = "Authorization: Bearer new"
        client.post(f"/sources/{source.pk}/edit/", form)
        source.refresh_from_db()
        assert credentials_decrypt(source.credentials_encrypted) == {
            "headers": {"Authorization": "Bearer new"}
        }
        client.post(
            f"/sources/{source.pk}/edit/", {**form, "secret_headers": "", "clear_credentials": "on"}
        )
        source.refresh_from_db()
        assert source.credentials_encrypted == ""

    def test_a_refused_edit_changes_nothing(self, as_role, pulled):
        source = pulled.source
        before = (source.name, source.config, source.credentials_encrypted)
        response = as_role("owner").post(
            f"/sources/{source.pk}/edit/",
            {"name": "Renamed", "url": "ftp://x", "secret_headers": "Authorization: other"},
        )
        assert response.status_code == 400
        assert "Edit source “Stats API”" in response.content.decode()
        source.refresh_from_db()
        assert (source.name, source.config, source.credentials_encrypted) == before

    def test_the_kind_of_a_source_cannot_change(self, as_role, pushed):
        as_role("editor").post(
            f"/sources/{pushed.source_id}/edit/", {"kind": "sql", "name": "Survey 2"}
        )
        source = MetricSource.objects.get(pk=pushed.source_id)
        assert (source.kind, source.name) == ("push", "Survey 2")

    def test_delete_asks_first_then_deletes_the_metrics(self, as_role, pulled, measure):
        client = as_role("editor")
        page = client.get(f"/sources/{pulled.source_id}/delete/").content.decode()
        assert "Its 1 metric and all their values will be deleted" in page
        response = client.post(f"/sources/{pulled.source_id}/delete/")
        assert response.status_code == 302
        assert not Metric.objects.filter(pk=pulled.pk).exists()


@pytest.mark.django_db
class TestMetricForms:
    def test_create_a_pulled_metric(self, as_role, pulled):
        response = as_role("editor").post(
            f"/sources/{pulled.source_id}/metrics/new/",
            {
                "name": "Orders",
                "query": "$.data[*].orders",
                "path": "/stats?team=a",
                "period_path": "$.data[*].day",
                "unit": "count",
                "granularity": "day",
                "interval_minutes": "30",
                "timezone": "Europe/Paris",
                "expected_hours": "36",
                "is_active": "on",
            },
        )
        metric = Metric.objects.get(name="Orders")
        assert response.status_code == 302
        assert response["Location"] == f"/metrics/{metric.pk}/"
        assert metric.options == {"path": "/stats?team=a", "period_path": "$.data[*].day"}
        assert metric.schedule_interval == dt.timedelta(minutes=30)
        assert metric.expected_frequency == dt.timedelta(hours=36)
        assert metric.next_pull_at is not None

    def test_saving_the_edit_page_keeps_what_it_shows_rounded(self, as_role, pulled):
        """An interval of 90 s (the API takes seconds) showed as 2 minutes and an
        expected frequency of 7 minutes as 0.116667 hours: saving the page for a new
        name made them 120 s and 420.0012 s."""
        from outcomes.forms import _metric_initial

        outcome_services.metric_update(
            metric=pulled,
            schedule_interval=dt.timedelta(seconds=90),
            expected_frequency=dt.timedelta(minutes=7),
        )
        pulled.refresh_from_db()
        shown = {k: v for k, v in _metric_initial(pulled).items() if v is not None}
        shown["is_active"] = "on" if shown.pop("is_active") else ""
        response = as_role("editor").post(
            f"/metrics/{pulled.pk}/edit/", {**shown, "name": "Renamed"}
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        pulled.refresh_from_db()
        assert pulled.name == "Renamed"
        assert pulled.schedule_interval == dt.timedelta(seconds=90)
        assert pulled.expected_frequency == dt.timedelta(minutes=7)
        # A value typed in is taken.
        response = as_role("editor").post(
            f"/metrics/{pulled.pk}/edit/", {**shown, "interval_minutes": "5"}
        )
        pulled.refresh_from_db()
        assert pulled.schedule_interval == dt.timedelta(minutes=5)

    def test_push_metric_form_has_no_query_or_schedule(self, as_role, pushed):
        html = as_role("editor").get(f"/sources/{pushed.source_id}/metrics/new/").content.decode()
        assert 'name="query"' not in html
        assert 'name="interval_minutes"' not in html
        response = as_role("editor").post(
            f"/sources/{pushed.source_id}/metrics/new/",
            {"name": "CSAT", "granularity": "week", "timezone": "UTC", "is_active": "on"},
        )
        assert response.status_code == 302
        assert Metric.objects.get(name="CSAT").granularity == "week"

    def test_prometheus_options(self, as_role, tree):
        source = outcome_services.metric_source_create(
            tree=tree, kind="prometheus", name="Prom", config={"url": API}
        )
        response = as_role("editor").post(
            f"/sources/{source.pk}/metrics/new/",
            {
                "name": "Latency",
                "query": "sum(rate(x[5m]))",
                "mode": "range",
                "step": "300",
                "granularity": "hour",
                "schedule_cron": "0 * * * *",
                "timezone": "UTC",
            },
        )
        assert response.status_code == 302
        metric = Metric.objects.get(name="Latency")
        assert metric.options == {"mode": "range", "step": 300}
        assert (metric.schedule_cron, metric.is_active) == ("0 * * * *", False)

    @pytest.mark.parametrize(
        ("changes", "field", "message"),
        [
            ({"interval_minutes": "60", "schedule_cron": "0 6 * * *"}, "schedule_cron", "not both"),
            ({"interval_minutes": "", "schedule_cron": ""}, "interval_minutes", "interval"),
            ({"interval_minutes": "", "schedule_cron": "every day"}, "schedule_cron", "cron"),
            ({"timezone": "Mars/Olympus"}, "timezone", "Unknown time zone"),
            ({"query": "$[[["}, "query", "JSONPath"),
            ({"period_path": "$[[["}, "period_path", "JSONPath"),
            ({"interval_minutes": "0"}, "interval_minutes", "greater than or equal to 1"),
            ({"name": ""}, "name", "required"),
        ],
    )
    def test_bad_input_shows_errors_and_changes_nothing(
        self, as_role, pulled, changes, field, message
    ):
        before = metric_state(pulled)
        form = {
            "name": "Signups renamed",
            "query": "$.signups",
            "granularity": "day",
            "interval_minutes": "60",
            "timezone": "UTC",
            "is_active": "on",
            **changes,
        }
        response = as_role("editor").post(f"/metrics/{pulled.pk}/edit/", form)
        assert response.status_code == 400
        html = response.content.decode()
        assert message in field_error(html, field), html
        assert "Edit metric “Signups”" in html  # the unsaved name is not shown as saved
        assert metric_state(pulled) == before

    def test_edit_form_starts_on_the_stored_values(self, as_role, pulled):
        html = as_role("editor").get(f"/metrics/{pulled.pk}/edit/").content.decode()
        assert 'name="interval_minutes" value="60"' in html
        assert "$.signups</textarea>" in html

    def test_a_new_expected_frequency_shows_on_the_measure_at_once(
        self, as_role, pushed, measure, django_capture_on_commit_callbacks, monkeypatch
    ):
        """An editor who allowed the metric more time between values still read "Stale"
        on the measure after saving, until a worker ran the queued re-evaluation."""
        from outcomes import tasks
        from outcomes.evaluation import measures_evaluate
        from outcomes.models import Verdict
        from outcomes.pulling import observations_push

        outcome_services.metric_update(metric=pushed, expected_frequency=dt.timedelta(days=1))
        observations_push(metric=pushed, raw_points=[("2026-03-01", 20.0)])
        measures_evaluate(measure_ids=[measure.pk])
        assert Verdict.objects.get(measure=measure, is_current=True).status == "stale"
        monkeypatch.setattr(tasks.evaluate_measures, "delay", pytest.fail)
        form = {"name": "NPS", "unit": "points", "granularity": "day", "timezone": "UTC"}

        with django_capture_on_commit_callbacks(execute=True):
            response = as_role("editor").post(
                f"/metrics/{pushed.pk}/edit/",
                {**form, "expected_hours": "87600", "is_active": "on"},
            )

        assert response.status_code == 302
        assert Verdict.objects.get(measure=measure, is_current=True).status != "stale"
        page = as_role("viewer").get(f"/dashboard/measures/{measure.pk}/").content.decode()
        assert 'data-verdict="stale"' not in page

    def test_delete_asks_first(self, as_role, pushed, measure):
        client = as_role("editor")
        page = client.get(f"/metrics/{pushed.pk}/delete/").content.decode()
        assert "Happier customers" in page
        assert client.post(f"/metrics/{pushed.pk}/delete/").status_code == 302
        assert not Metric.objects.filter(pk=pushed.pk).exists()
        assert Measure.objects.get(pk=measure.pk).metric_id is None


@pytest.mark.django_db
class TestPullNow:
    def test_queues_exactly_once(self, users, as_role, pulled, django_capture_on_commit_callbacks):
        client = as_role("editor")
        with (
            mock.patch("outcomes.tasks.pull_metric.delay") as delay,
            django_capture_on_commit_callbacks(execute=True),
        ):
            first = client.post(f"/metrics/{pulled.pk}/pull/", HTTP_HX_REQUEST="true")
            second = client.post(f"/metrics/{pulled.pk}/pull/", HTTP_HX_REQUEST="true")
        # Who asked is recorded on the run (the task's third argument).
        delay.assert_called_once_with(pulled.pk, PullTrigger.MANUAL, users["editor"].pk)
        assert Metric.objects.get(pk=pulled.pk).claimed_at is not None
        assert first.status_code == second.status_code == 200
        assert "Pull queued" in first.content.decode()
        second_html = second.content.decode()
        assert second_html.lstrip().startswith(f'<div class="pull" id="pull-{pulled.pk}">')
        assert "already queued or running" in second_html
        assert "<html" not in second_html

    def test_without_javascript_it_redirects_back_with_a_message(
        self, as_role, pulled, django_capture_on_commit_callbacks
    ):
        client = as_role("owner")
        with (
            mock.patch("outcomes.tasks.pull_metric.delay") as delay,
            django_capture_on_commit_callbacks(execute=True),
        ):
            response = client.post(f"/metrics/{pulled.pk}/pull/", {"return": "metric"})
            assert response["Location"] == f"/metrics/{pulled.pk}/"
            again = client.post(f"/metrics/{pulled.pk}/pull/", follow=True)
        assert delay.call_count == 1
        assert again.redirect_chain == [("/trees/tree/metrics/", 302)]
        assert "already queued or running" in again.content.decode()
        assert "Pulling now" in again.content.decode()

    def test_a_push_metric_is_not_pulled(self, as_role, pushed):
        with mock.patch("outcomes.tasks.pull_metric.delay") as delay:
            response = as_role("editor").post(f"/metrics/{pushed.pk}/pull/", HTTP_HX_REQUEST="true")
        assert response.status_code == 422
        assert "push metric is not pulled" in response.content.decode()
        delay.assert_not_called()

    def test_button_only_on_pulled_metrics(self, as_role, pulled, pushed):
        html = as_role("editor").get("/trees/tree/metrics/").content.decode()
        assert f'id="pull-{pulled.pk}"' in html
        assert f'id="pull-{pushed.pk}"' not in html


@pytest.mark.django_db
class TestSendingValues:
    def upload(self, client, metric, text: str):
        return client.post(
            f"/metrics/{metric.pk}/upload/",
            {"file": SimpleUploadedFile("values.csv", text.encode(), content_type="text/csv")},
        )

    def test_csv_upload_stores_every_line(self, as_role, pushed, users):
        response = self.upload(
            as_role("editor"),
            pushed,
            "period,value\n2026-01-01,10\n2026-01-02,12.5\n\n2026-01-03,11\n",
        )
        assert response.status_code == 302
        values = list(
            Observation.objects.filter(metric=pushed)
            .order_by("period_start")
            .values_list("period_start", "value")
        )
        assert values == [
            (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 10.0),
            (dt.datetime(2026, 1, 2, tzinfo=dt.UTC), 12.5),
            (dt.datetime(2026, 1, 3, tzinfo=dt.UTC), 11.0),
        ]
        run = PullRun.objects.get(metric=pushed)
        assert (run.trigger, run.status, run.values_written, run.user) == (
            "upload",
            PullStatus.SUCCEEDED,
            3,
            users["editor"],
        )

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (
                "period,value\n2026-01-01,10\n2026-01-02,lots\n",
                "Line 3: &#x27;lots&#x27; is not a number.",
            ),
            ("period,value\n2026-01-01,10\nyesterday,5\n", "Line 3: period"),
            ("period,value\n2026-01-01,10\n2026-01-01,11\n", "Line 3: a second value"),
            ("day,amount\n2026-01-01,10\n", "Line 1: the header"),
            ("period,value\n", "no values"),
            ("period,value\n2026-01-01,nan\n", "Line 2"),
            # Both were taken: the first `period` column won; blank text read as a header.
            ("period,value,period\n2026-01-01,10,2026-02-01\n", "names the column"),
            (" \n\n", "The file is empty"),
        ],
    )
    def test_a_bad_line_stores_nothing_and_is_named(self, as_role, pushed, text, message):
        response = self.upload(as_role("editor"), pushed, text)
        assert response.status_code == 400
        html = response.content.decode()
        assert message in field_error(html, "file"), html
        assert not Observation.objects.exists()
        assert not PullRun.objects.exists()

    def test_a_file_that_is_not_utf8_is_refused(self, as_role, pushed):
        response = as_role("editor").post(
            f"/metrics/{pushed.pk}/upload/",
            {"file": SimpleUploadedFile("values.csv", b"period,value\n\xff\xfe,1\n")},
        )
        assert response.status_code == 400
        assert "not UTF-8" in field_error(response.content.decode(), "file")

    def test_upload_to_a_pulled_metric_is_refused(self, as_role, pulled):
        response = self.upload(as_role("editor"), pulled, "period,value\n2026-01-01,1\n")
        assert response.status_code == 400
        assert not Observation.objects.exists()

    def test_check_in_on_the_metric_page(self, as_role, pushed):
        client = as_role("editor")
        response = client.post(f"/metrics/{pushed.pk}/check-in/", {"value": "42", "period": ""})
        assert response.status_code == 302
        observation = Observation.objects.get(metric=pushed)
        assert observation.value == 42.0
        assert observation.period_start == dt.datetime.combine(
            timezone.now().date(), dt.time(0), tzinfo=dt.UTC
        )
        assert PullRun.objects.get(metric=pushed).trigger == "check_in"
        page = client.get(f"/metrics/{pushed.pk}/").content.decode()
        assert "Checked in 42 points for “NPS”." in page

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"value": "lots"}, "&#x27;lots&#x27; is not a number."),
            # float() takes these; a pushed value may not be one (pulling.parse_value).
            ({"value": "1_000"}, "&#x27;1_000&#x27; is not a number."),
            ({"value": "\u0661\u0662"}, "is not a number."),  # Arabic-Indic 12
            ({"value": "\uff11\uff12"}, "is not a number."),  # full-width 12
            ({"value": "1e999"}, "not a finite number"),
            ({"value": "NaN"}, "not a finite number"),
            ({"value": "5", "period": "2999-01-01"}, "in the future"),
            ({"value": "5", "period": "soon"}, "is not a date"),
        ],
    )
    def test_a_refused_check_in_stores_nothing(self, as_role, pushed, data, message):
        response = as_role("editor").post(f"/metrics/{pushed.pk}/check-in/", data)
        assert response.status_code == 400
        assert message in response.content.decode()
        assert not Observation.objects.exists()

    def test_node_page_shows_the_metric_and_a_check_in_form(self, as_role, measure, pushed):
        node_url = f"/nodes/{measure.node_id}/"
        editor_html = as_role("editor").get(node_url).content.decode()
        assert f'<a href="/metrics/{pushed.pk}/">NPS</a>' in editor_html
        assert f'action="/measures/{measure.pk}/check-in/"' in editor_html
        viewer_html = as_role("viewer").get(node_url).content.decode()
        assert f'<a href="/metrics/{pushed.pk}/">NPS</a>' in viewer_html
        assert "/check-in/" not in viewer_html

    def test_node_page_has_no_check_in_for_a_pulled_metric(self, as_role, measure, pulled):
        outcome_services.measure_update(measure=measure, metric=pulled)
        html = as_role("editor").get(f"/nodes/{measure.node_id}/").content.decode()
        assert "Signups" in html
        assert "/check-in/" not in html
        response = as_role("editor").post(f"/measures/{measure.pk}/check-in/", {"value": "1"})
        assert response.status_code == 404

    def test_check_in_from_the_node_page(self, as_role, measure, pushed):
        client = as_role("editor")
        response = client.post(
            f"/measures/{measure.pk}/check-in/", {"value": "7.5", "period": "2026-02-01"}
        )
        assert response.status_code == 302
        assert response["Location"] == f"/nodes/{measure.node_id}/"
        observation = Observation.objects.get(metric=pushed)
        assert (observation.period_start, observation.value) == (
            dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
            7.5,
        )
        refused = client.post(f"/measures/{measure.pk}/check-in/", {"value": "", "period": "x"})
        assert refused.status_code == 400
        assert "This field is required." in field_error(refused.content.decode(), "value")
        assert Observation.objects.count() == 1


@pytest.mark.django_db
class TestMetricPage:
    def test_chart_data_is_embedded_and_escaped(self, as_role, tree):
        metric = make_metric(tree, source_name=XSS, name=XSS, unit=XSS)
        from outcomes.pulling import observations_push

        observations_push(metric=metric, raw_points=[("2026-01-01", 1), ("2026-01-02", 3)])
        html = as_role("viewer").get(f"/metrics/{metric.pk}/").content.decode()
        assert XSS not in html
        assert ESCAPED in html
        found = re.search(
            r'<script id="metric-figure" type="application/json">(.*?)</script>', html, re.S
        )
        figure = json.loads(found.group(1))
        assert figure["data"][0]["x"] == ["2026-01-01 00:00:00", "2026-01-02 00:00:00"]
        assert figure["data"][0]["y"] == [1.0, 3.0]
        assert figure["data"][0]["name"] == ESCAPED
        assert figure["layout"]["yaxis"]["title"]["text"] == ESCAPED
        assert "/static/vendor/plotly/plotly.min.js" in html
        assert "/static/js/charts.js" in html
        assert "cdn" not in html.lower()
        assert 'data-figure="metric-figure"' in html

    def test_quotes_in_chart_text_are_not_entities(self, as_role, tree):
        name = 'NPS "weekly" & it\'s'
        metric = make_metric(tree, name=name, unit='"pts"')
        from outcomes.pulling import observations_push

        observations_push(metric=metric, raw_points=[("2026-01-01", 1)])
        html = as_role("viewer").get(f"/metrics/{metric.pk}/").content.decode()
        found = re.search(
            r'<script id="metric-figure" type="application/json">(.*?)</script>', html, re.S
        )
        figure = json.loads(found.group(1))
        assert figure["data"][0]["name"] == 'NPS "weekly" &amp; it\'s'
        assert figure["layout"]["yaxis"]["title"]["text"] == '"pts"'

    def test_no_values_no_chart(self, as_role, pushed):
        html = as_role("viewer").get(f"/metrics/{pushed.pk}/").content.decode()
        assert "No values yet." in html
        assert "plotly" not in html

    def test_shows_health_runs_and_measures(self, as_role, pulled, measure):
        outcome_services.measure_update(measure=measure, metric=pulled)
        Metric.objects.filter(pk=pulled.pk).update(
            consecutive_failures=3, last_error=f"The source answered 500 {XSS}"
        )
        now = timezone.now()
        PullRun.objects.create(
            metric=pulled,
            trigger=PullTrigger.SCHEDULE,
            status=PullStatus.FAILED,
            started_at=now,
            finished_at=now,
            duration_ms=120,
            error=f"Timed out {XSS}",
        )
        for url in (f"/metrics/{pulled.pk}/", "/trees/tree/metrics/"):
            html = as_role("viewer").get(url).content.decode()
            assert XSS not in html, url
            assert "health--unhealthy" in html
            assert f"3 failed pulls in a row: The source answered 500 {ESCAPED}" in html
            assert f"Timed out {ESCAPED}" in html
            assert "120 ms" in html
        metric_html = as_role("viewer").get(f"/metrics/{pulled.pk}/").content.decode()
        assert (
            f'<a href="/nodes/{measure.node_id}/">Goal</a>: <a href="/dashboard/measures/{measure.pk}/">Happier customers</a>'
            in metric_html
        )
        assert "Every hour" in metric_html


@pytest.mark.django_db
class TestMetricsPage:
    def test_lists_sources_metrics_and_runs(self, as_role, pulled, pushed):
        from outcomes.pulling import observations_push

        observations_push(metric=pushed, raw_points=[("2026-01-05", 31)])
        html = as_role("leadership").get("/trees/tree/metrics/").content.decode()
        assert "Stats API" in html and "Survey" in html
        assert "HTTP JSON" in html
        assert "Every hour" in html
        assert "Pushed: values are sent to it" in html
        assert "31 points" in html
        assert "health--healthy" in html
        assert "health--waiting" in html
        assert "Pushed</td>" in html  # the run's trigger

    def test_user_text_is_escaped(self, as_role, tree):
        make_metric(tree, source_name=XSS, name=XSS, unit=XSS)
        for url in ("/trees/tree/metrics/", f"/sources/{MetricSource.objects.get().pk}/edit/"):
            html = as_role("editor").get(url).content.decode()
            assert XSS not in html, url
            assert ESCAPED in html, url

    @pytest.mark.parametrize("size", [2, 20])
    def test_query_count_is_pinned(self, users, size, django_assert_num_queries):
        from outcomes.pulling import observations_push

        tree = make_tree(make_role_users(prefix="q"), slug=f"q{size}")
        for index in range(size):
            source = f"Source {index % 3}"
            if index % 2:
                metric = make_metric(tree, source_name=source, name=f"Pushed {index}")
                observations_push(metric=metric, raw_points=[("2026-01-01", index)])
            else:
                make_metric(
                    tree,
                    kind="http_json",
                    source_name=f"Api {index % 3}",
                    config={"url": API},
                    credentials={"headers": {"Authorization": SECRET}},
                    name=f"Pulled {index}",
                    query="$.n",
                    schedule_cron="0 6 * * 1-5",
                )
        client = Client()
        client.force_login(tree.memberships.get(role="owner").user)
        # session, user, tree with role, sources, metrics, latest values, recent runs
        with django_assert_num_queries(7):
            response = client.get(f"/trees/{tree.slug}/metrics/")
        assert response.status_code == 200
        assert response.content.decode().count('<tr id="metric-') == size


@pytest.mark.django_db
class TestMeasureForm:
    def test_metric_choices_are_the_trees_own(self, as_role, users, pushed, measure):
        other_tree = make_tree(users, slug="other", name="Other")
        foreign = make_metric(other_tree, source_name="Elsewhere", name="Foreign")
        client = as_role("editor")
        html = client.get(f"/measures/{measure.pk}/edit/").content.decode()
        assert f'<option value="{pushed.pk}" selected>Survey › NPS</option>' in html
        assert "Foreign" not in html
        form = {
            "name": "Happier customers",
            "direction": "increase",
            "baseline_value": 10,
            "baseline_date": "2026-01-01",
            "target_value": 40,
            "target_date": "2027-01-01",
            "kind": "lagging",
            "weight": 1,
            "metric": foreign.pk,
        }
        response = client.post(f"/measures/{measure.pk}/edit/", form)
        assert response.status_code == 400
        assert "Select a valid choice" in field_error(response.content.decode(), "metric")
        assert Measure.objects.get(pk=measure.pk).metric_id == pushed.pk
        client.post(f"/measures/{measure.pk}/edit/", {**form, "metric": ""})
        assert Measure.objects.get(pk=measure.pk).metric_id is None

    def test_taking_the_metric_away_clears_the_verdict_at_once(self, as_role, pushed, measure):
        """The page the editor returned to still said "Reached" with its forecast (the
        measure was re-evaluated only when it had a metric) until a worker ran."""
        from outcomes.evaluation import measures_evaluate
        from outcomes.models import Verdict
        from outcomes.pulling import observations_push

        observations_push(metric=pushed, raw_points=[("2026-03-01", 45.0)])
        measures_evaluate(measure_ids=[measure.pk])
        assert Verdict.objects.get(measure=measure, is_current=True).status != "no_data"
        form = {
            "name": "Happier customers",
            "direction": "increase",
            "baseline_value": 10,
            "baseline_date": "2026-01-01",
            "target_value": 40,
            "target_date": "2027-01-01",
            "kind": "lagging",
            "weight": 1,
            "metric": "",
        }

        response = as_role("editor").post(f"/measures/{measure.pk}/edit/", form)

        assert response.status_code == 302
        current = Verdict.objects.get(measure=measure, is_current=True)
        assert (current.status, current.reason) == ("no_data", "No observations yet.")


HTMX = {"HTTP_HX_REQUEST": "true"}

# One valid form per kind the metrics page offers; each shows only its kind's fields.
KIND_FORMS = {
    "push": (
        {},
        {"name": "CSAT", "unit": "points", "granularity": "week", "timezone": "UTC"},
        {"name", "unit", "granularity", "timezone", "expected_hours", "is_active"},
    ),
    "http_json": (
        {"url": API},
        {
            "name": "Orders",
            "query": "$.orders",
            "path": "/stats",
            "granularity": "day",
            "interval_minutes": "30",
            "timezone": "UTC",
            "is_active": "on",
        },
        {
            "name",
            "query",
            "path",
            "period_path",
            "unit",
            "granularity",
            "interval_minutes",
            "schedule_cron",
            "timezone",
            "expected_hours",
            "is_active",
        },
    ),
    "sql": (
        {"url": "postgresql://reader@db:5432/warehouse"},
        {
            "name": "Active users",
            "query": "SELECT 1",
            "granularity": "day",
            "interval_minutes": "60",
            "timezone": "UTC",
            "is_active": "on",
        },
        {
            "name",
            "query",
            "unit",
            "granularity",
            "interval_minutes",
            "schedule_cron",
            "timezone",
            "expected_hours",
            "is_active",
        },
    ),
    "prometheus": (
        {"url": API},
        {
            "name": "Latency",
            "query": "sum(rate(x[5m]))",
            "mode": "instant",
            "granularity": "hour",
            "schedule_cron": "0 * * * *",
            "timezone": "UTC",
            "is_active": "on",
        },
        {
            "name",
            "query",
            "mode",
            "step",
            "unit",
            "granularity",
            "interval_minutes",
            "schedule_cron",
            "timezone",
            "expected_hours",
            "is_active",
        },
    ),
}


def form_fields(html: str) -> set[str]:
    return set(re.findall(r'<(?:input|select|textarea)[^>]* name="(\w+)"', html)) - {
        "csrfmiddlewaretoken"
    }


@pytest.mark.django_db
class TestMetricDialogs:
    """Metrics are added and edited in the metrics page's dialog (and the metric page's),
    like nodes: the form comes as the dialog's body, errors answer 422 into it, and a
    save empties it, re-draws the page's tables out of band and closes the dialog."""

    @pytest.fixture(params=list(KIND_FORMS))
    def kind_source(self, request, tree):
        config, _, _ = KIND_FORMS[request.param]
        source = outcome_services.metric_source_create(
            tree=tree, kind=request.param, name=f"{request.param} source", config=config
        )
        return request.param, source

    def test_the_page_opens_the_dialogs(self, as_role, pushed):
        html = as_role("editor").get("/trees/tree/metrics/").content.decode()
        assert f'hx-get="/sources/{pushed.source_id}/metrics/new/" hx-target="#dialog-body"' in html
        assert f'hx-get="/metrics/{pushed.pk}/edit/" hx-target="#dialog-body"' in html
        assert '<dialog id="dialog"' in html
        metric_page = as_role("editor").get(f"/metrics/{pushed.pk}/").content.decode()
        assert f'hx-get="/metrics/{pushed.pk}/edit/?return=metric"' in metric_page
        assert '<dialog id="dialog"' in metric_page

    def test_a_reader_gets_no_dialog(self, as_role, pushed):
        html = as_role("viewer").get("/trees/tree/metrics/").content.decode()
        assert '<dialog id="dialog"' not in html
        assert "/edit/" not in html

    def test_create_in_the_dialog_shows_only_the_kinds_fields(self, as_role, kind_source):
        kind, source = kind_source
        _, data, fields = KIND_FORMS[kind]
        client = as_role("editor")
        body = client.get(f"/sources/{source.pk}/metrics/new/", **HTMX).content.decode()
        assert "<html" not in body  # the dialog's body, not a page
        assert '<h2 id="dialog-title">' in body
        assert form_fields(body) == fields
        response = client.post(f"/sources/{source.pk}/metrics/new/", data, **HTMX)
        metric = Metric.objects.get(source=source, name=data["name"])
        assert response.status_code == 200
        trigger = json.loads(response["HX-Trigger-After-Settle"])
        assert trigger == {"vt:close-dialog": {"focus": f"#metric-link-{metric.pk}"}}
        html = response.content.decode()
        assert '<div id="metrics-list" hx-swap-oob="innerHTML">' in html
        assert f'id="metric-link-{metric.pk}">{data["name"]}</a>' in html
        assert '<div id="sources-list" hx-swap-oob="innerHTML">' in html
        assert f"Metric “{data['name']}” added." in html

    def test_edit_in_the_dialog(self, as_role, kind_source):
        kind, source = kind_source
        _, data, fields = KIND_FORMS[kind]
        metric = outcome_services.metric_create(
            source=source, **MetricFormService.fields(kind, data)
        )
        client = as_role("editor")
        body = client.get(f"/metrics/{metric.pk}/edit/", **HTMX).content.decode()
        assert form_fields(body) == fields
        assert f'value="{data["name"]}"' in body
        response = client.post(
            f"/metrics/{metric.pk}/edit/", {**data, "name": "Renamed", "unit": "kg"}, **HTMX
        )
        assert response.status_code == 200
        assert "vt:close-dialog" in response["HX-Trigger-After-Settle"]
        assert f'id="metric-link-{metric.pk}">Renamed</a>' in response.content.decode()
        assert (Metric.objects.get(pk=metric.pk).name, Metric.objects.get(pk=metric.pk).unit) == (
            "Renamed",
            "kg",
        )

    def test_errors_answer_422_into_the_dialog_and_change_nothing(self, as_role, pulled):
        before = metric_state(pulled)
        response = as_role("editor").post(
            f"/metrics/{pulled.pk}/edit/",
            {"name": "", "query": "$[[[", "granularity": "day", "timezone": "UTC"},
            **HTMX,
        )
        assert response.status_code == 422
        html = response.content.decode()
        assert "<html" not in html
        assert 'hx-post="/metrics/' in html
        assert "required" in field_error(html, "name")
        assert "HX-Trigger-After-Settle" not in response
        assert metric_state(pulled) == before

    def test_a_new_metric_with_errors_is_not_created(self, as_role, pushed):
        response = as_role("editor").post(
            f"/sources/{pushed.source_id}/metrics/new/",
            {"name": "", "granularity": "day", "timezone": "UTC"},
            **HTMX,
        )
        assert response.status_code == 422
        assert Metric.objects.filter(source_id=pushed.source_id).count() == 1

    def test_edit_from_the_metric_page_redraws_its_summary(self, as_role, pulled):
        response = as_role("editor").post(
            f"/metrics/{pulled.pk}/edit/?return=metric",
            {
                "name": "Signups per day",
                "query": "$.signups",
                "granularity": "day",
                "interval_minutes": "15",
                "timezone": "UTC",
                "is_active": "on",
            },
            **HTMX,
        )
        assert response.status_code == 200
        trigger = json.loads(response["HX-Trigger-After-Settle"])
        assert trigger == {"vt:close-dialog": {"focus": "#metric-title"}}
        html = response.content.decode()
        assert '<div id="metric-summary" hx-swap-oob="innerHTML">' in html
        assert ">Signups per day</h1>" in html
        assert "Every 15 minutes" in html
        assert "metrics-list" not in html

    def test_the_dialog_form_posts_back_to_the_page_it_came_from(self, as_role, pulled):
        body = as_role("editor").get(f"/metrics/{pulled.pk}/edit/?return=metric", **HTMX)
        assert f'hx-post="/metrics/{pulled.pk}/edit/?return=metric"' in body.content.decode()

    def test_secrets_are_never_rendered_into_the_dialog(self, as_role, pulled):
        body = as_role("editor").get(f"/metrics/{pulled.pk}/edit/", **HTMX).content.decode()
        assert SECRET not in body
        assert "sk-very-secret" not in body

    @pytest.mark.parametrize("role", ["viewer", "leadership"])
    def test_readers_cannot_use_the_dialog(self, as_role, pulled, role):
        client = as_role(role)
        assert client.get(f"/metrics/{pulled.pk}/edit/", **HTMX).status_code == 403
        before = metric_state(pulled)
        response = client.post(
            f"/sources/{pulled.source_id}/metrics/new/", {"name": "X", "query": "$.x"}, **HTMX
        )
        assert response.status_code == 403
        assert metric_state(pulled) == before
        assert not Metric.objects.filter(name="X").exists()

    def test_without_javascript_the_forms_are_pages(self, as_role, pushed):
        client = as_role("editor")
        page = client.get(f"/metrics/{pushed.pk}/edit/?return=metric").content.decode()
        assert "<html" in page and '<h1 id="dialog-title">' in page
        response = client.post(
            f"/metrics/{pushed.pk}/edit/?return=metric",
            {"name": "NPS 2", "granularity": "day", "timezone": "UTC", "is_active": "on"},
        )
        assert (response.status_code, response["Location"]) == (302, f"/metrics/{pushed.pk}/")


class MetricFormService:
    """A valid KIND_FORMS form as the services take it (through the form itself)."""

    @staticmethod
    def fields(kind: str, data: dict) -> dict:
        from outcomes.forms import MetricForm

        form = MetricForm(data, kind=kind)
        assert form.is_valid(), form.errors
        return form.service_fields()
