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
