"""Less friction on the metric pages (issue 15)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from outcomes import demo, pulling
from outcomes.models import MetricSource, PullRun
from outcomes.views import observation_figure
from tests.factories import make_metric


@pytest.mark.django_db
def test_a_single_value_is_charted_on_a_scale_of_days(tree):
    metric = make_metric(tree, name="Reports opened")
    moment = dt.datetime(2026, 9, 1, 6, tzinfo=dt.UTC)
    axis = observation_figure(metric, [(moment, 3.0)])["layout"]["xaxis"]
    assert axis["range"] == ["2026-08-25", "2026-09-08"]
    assert axis["tickformat"] == "%d %b %Y"
    two = observation_figure(metric, [(moment, 3.0), (moment + dt.timedelta(days=30), 4.0)])
    assert "range" not in two["layout"]["xaxis"]


@pytest.mark.django_db
def test_check_ins_are_received_values_not_pulls_and_the_table_stays_open(client, users, tree):
    metric = make_metric(tree, name="Reports opened")
    client.force_login(users["editor"])
    response = client.post(f"/metrics/{metric.pk}/check-in/", {"value": "3"})
    assert response.status_code == 302
    assert PullRun.objects.get(metric=metric).trigger == "check_in"
    html = client.get(f"/metrics/{metric.pk}/").content.decode()
    assert '<details class="values" open>' in html
    assert '<span class="muted">received</span>' in html
    assert " ms</td>" not in html
    assert "Recent pulls and check-ins" in html


@pytest.mark.django_db
def test_push_source_form_asks_only_for_a_name(client, users, tree):
    client.force_login(users["editor"])
    html = client.get(f"/trees/{tree.slug}/sources/new/?kind=push").content.decode()
    for absent in ('name="url"', 'name="headers"', 'name="secret_headers"', 'name="password"'):
        assert absent not in html
    response = client.post(
        f"/trees/{tree.slug}/sources/new/?kind=push", {"kind": "push", "name": "Check-ins"}
    )
    assert response.status_code == 302
    source = MetricSource.objects.get(name="Check-ins")
    assert (source.kind, source.config) == ("push", {})
    html = client.get(f"/sources/{source.pk}/edit/").content.decode()
    assert 'name="password"' not in html
    # The full form still offers every kind.
    assert 'name="url"' in client.get(f"/trees/{tree.slug}/sources/new/").content.decode()


def test_demo_metric_names_read_as_words():
    for spec in (*demo.WAREHOUSE_METRICS, demo.LIVE_METRIC, demo.PUSH_METRIC):
        assert "_" not in spec.words, spec.words
        assert spec.words[0].isupper()


@pytest.mark.django_db
def test_recent_values_follow_every_write(tree):
    metric = make_metric(tree, name="Samples")
    now = timezone.now()
    points = [pulling.Point(now - dt.timedelta(days=20 - i), float(i)) for i in range(20)]
    pulling.observations_write(metric=metric, points=points, run=None, pulled_at=now)
    metric.refresh_from_db()
    assert metric.recent_values == [float(i) for i in range(8, 20)]


MEASURE = {
    "name": "Reports opened by 08:00",
    "unit": "reports",
    "direction": "increase",
    "baseline_value": "0",
    "baseline_date": "2026-01-01",
    "target_value": "20",
    "target_date": "2027-01-01",
    "kind": "lagging",
    "weight": "1",
}


@pytest.mark.django_db
class TestMeasureDialog:
    @pytest.fixture
    def goal(self, tree):
        from valuetree import services

        return services.node_create(tree=tree, parent=None, title="Goal")

    def test_a_new_push_metric_and_a_first_value_in_one_flow(self, client, users, tree, goal):
        from outcomes.models import Measure, Observation, Verdict

        client.force_login(users["editor"])
        response = client.post(
            f"/nodes/{goal.pk}/measures/new/",
            {**MEASURE, "new_metric": "Reports opened", "first_value": "4"},
            HTTP_HX_REQUEST="true",
        )
        assert response.status_code == 200
        assert response["HX-Refresh"] == "true"
        measure = Measure.objects.get(name="Reports opened by 08:00")
        assert measure.metric.name == "Reports opened"
        assert measure.metric.source.kind == "push"
        assert list(
            Observation.objects.filter(metric=measure.metric).values_list("value", flat=True)
        ) == [4.0]
        assert Verdict.objects.filter(measure=measure, is_current=True, latest_value=4.0).exists()

    def test_a_refused_flow_writes_nothing(self, client, users, tree, goal):
        from outcomes.models import Measure, Metric

        client.force_login(users["editor"])
        response = client.post(
            f"/nodes/{goal.pk}/measures/new/",
            {**MEASURE, "target_value": "-5", "new_metric": "Reports opened", "first_value": "4"},
            HTTP_HX_REQUEST="true",
        )
        assert response.status_code == 422  # swapped into the dialog
        assert 'id="dialog-title"' in response.content.decode()
        assert not Measure.objects.exists() and not Metric.objects.exists()

    def test_a_refused_new_metric_name_is_shown_on_its_own_field(self, client, users, tree, goal):
        from outcomes.models import Measure, Metric

        client.force_login(users["editor"])
        response = client.post(
            f"/nodes/{goal.pk}/measures/new/", {**MEASURE, "new_metric": "R" * 201}
        )
        assert response.status_code == 400
        form = response.context["form"]
        assert "at most 200 characters" in form.errors["new_metric"][0]
        assert "name" not in form.errors  # the measure's own name is fine
        assert not Measure.objects.exists() and not Metric.objects.exists()

    @pytest.mark.parametrize("first_value", ["1_000", "\uff14", "NaN"])
    def test_a_first_value_is_read_as_a_pushed_value(self, client, users, tree, goal, first_value):
        """The API refuses "1_000" and digits of other scripts; so does this form."""
        from outcomes.models import Measure, Metric

        client.force_login(users["editor"])
        response = client.post(
            f"/nodes/{goal.pk}/measures/new/",
            {**MEASURE, "new_metric": "Reports opened", "first_value": first_value},
        )
        assert response.status_code == 400
        assert "number" in response.content.decode()
        assert not Measure.objects.exists() and not Metric.objects.exists()

    def test_a_first_value_needs_a_push_metric(self, client, users, tree, goal):
        pulled = make_metric(
            tree,
            kind="prometheus",
            source_name="Prom",
            config={"url": "https://prom.example"},
            query="up",
            schedule_interval=dt.timedelta(hours=1),
        )
        client.force_login(users["editor"])
        for extra, message in (
            ({"first_value": "4"}, "Choose or name a push metric"),
            ({"first_value": "4", "metric": str(pulled.pk)}, "Only a push metric"),
            ({"new_metric": "X", "metric": str(pulled.pk)}, "not both"),
        ):
            response = client.post(f"/nodes/{goal.pk}/measures/new/", {**MEASURE, **extra})
            assert response.status_code == 400
            assert message in response.content.decode()

    def test_the_node_page_opens_measure_forms_in_a_dialog(self, client, users, tree, goal):
        client.force_login(users["editor"])
        html = client.get(f"/nodes/{goal.pk}/").content.decode()
        assert f'hx-get="/nodes/{goal.pk}/measures/new/"' in html
        assert '<dialog id="dialog"' in html
        fragment = client.get(f"/nodes/{goal.pk}/measures/new/", HTTP_HX_REQUEST="true")
        assert "<html" not in fragment.content.decode()
        assert 'name="new_metric"' in fragment.content.decode()
