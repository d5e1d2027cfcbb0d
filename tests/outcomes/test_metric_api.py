"""The metrics API: sources and their credentials, metrics, pull now, pushes and reads.

Who may call what is pinned in tests/valuetree/test_api_permissions.py; here the
owner or editor calls, and a viewer only where the answer itself differs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from outcomes import services, tasks
from outcomes.credentials import credentials_decrypt
from outcomes.models import Metric, MetricSource, Observation, PullRun
from tests.factories import make_metric, make_role_users, make_tree
from valuetree import services as tree_services

SECRET = "s3cret-token"
HTTP_SOURCE = {
    "tree": "tree",
    "kind": "http_json",
    "name": "Stats API",
    "config": {"url": "https://api.example.com", "headers": {"Accept": "application/json"}},
    "credentials": {"headers": {"Authorization": f"Bearer {SECRET}"}},
}


@pytest.fixture
def editor(users, client_for):
    return client_for(users["editor"])


@pytest.fixture
def hidden_tree(db):
    """A tree whose members are other people: the standard users cannot see it."""
    return make_tree(make_role_users(prefix="x"), slug="hidden", name="Hidden")


@pytest.fixture
def push_metric(tree) -> Metric:
    return make_metric(tree, kind="push", source_name="Pushed", name="Signups")


@pytest.fixture
def pulled_metric(tree) -> Metric:
    return make_metric(
        tree,
        kind="http_json",
        source_name="Stats API",
        config={"url": "https://api.example.com"},
        query="$.value",
        schedule_interval=timedelta(hours=1),
    )


@pytest.fixture
def queued(monkeypatch):
    """The pulls queued through `pull_metric.delay`, as their arguments."""
    calls: list[tuple] = []
    monkeypatch.setattr(tasks.pull_metric, "delay", lambda *args: calls.append(args))
    return calls


def observations_url(metric: Metric) -> str:
    return f"/api/metrics/{metric.pk}/observations/"


def stored(metric: Metric) -> list[tuple[str, float]]:
    return [
        (period.date().isoformat(), value)
        for period, value in metric.observations.order_by("period_start").values_list(
            "period_start", "value"
        )
    ]


# --- Metric sources and their credentials ---------------------------------------------


def test_source_credentials_go_in_and_never_come_out(users, tree, editor, client_for):
    created = editor.post("/api/metric-sources/", HTTP_SOURCE)

    assert created.status_code == 201, created.content
    assert SECRET.encode() not in created.content
    body = created.json()
    assert "credentials" not in body
    assert (body["has_credentials"], body["tree"], body["owner"]) == (True, "tree", "editor")
    source = MetricSource.objects.get()
    assert source.credentials_encrypted
    assert SECRET not in source.credentials_encrypted
    assert credentials_decrypt(source.credentials_encrypted) == HTTP_SOURCE["credentials"]
    # Every reader, in detail and in lists, sees only that there are credentials.
    for user in ("owner", "editor", "viewer"):
        client = client_for(users[user])
        detail = client.get(f"/api/metric-sources/{source.pk}/")
        listed = client.get("/api/metric-sources/")
        assert (detail.status_code, listed.status_code) == (200, 200)
        assert SECRET.encode() not in detail.content + listed.content
        assert "credentials" not in detail.json()
        assert [s["has_credentials"] for s in listed.json()["results"]] == [True]


def test_a_patch_without_credentials_keeps_them_and_empty_credentials_remove_them(tree, editor):
    source_id = editor.post("/api/metric-sources/", HTTP_SOURCE).json()["id"]
    url = f"/api/metric-sources/{source_id}/"

    renamed = editor.patch(
        url, {"name": "Renamed", "config": {"url": "https://api.example.com/v2"}}
    )
    assert renamed.status_code == 200, renamed.content
    assert SECRET.encode() not in renamed.content
    assert renamed.json()["has_credentials"] is True
    source = MetricSource.objects.get()
    assert (source.name, source.config) == ("Renamed", {"url": "https://api.example.com/v2"})
    assert credentials_decrypt(source.credentials_encrypted) == HTTP_SOURCE["credentials"]

    # Stored credentials never follow the source to another host: that would hand them
    # to whoever runs it.
    moved = editor.patch(url, {"config": {"url": "https://collector.attacker.example"}})
    assert moved.status_code == 400
    assert "enter the credentials again" in moved.json()["credentials"][0]
    source.refresh_from_db()
    assert source.config == {"url": "https://api.example.com/v2"}

    replaced = editor.patch(url, {"credentials": {"headers": {"X-Key": "other-token"}}})
    assert replaced.status_code == 200, replaced.content
    source.refresh_from_db()
    assert credentials_decrypt(source.credentials_encrypted) == {
        "headers": {"X-Key": "other-token"}
    }

    cleared = editor.patch(url, {"credentials": {}})
    assert cleared.status_code == 200, cleared.content
    assert cleared.json()["has_credentials"] is False
    source.refresh_from_db()
    assert source.credentials_encrypted == ""


@pytest.mark.parametrize(
    "changes", [{"kind": "push"}, {"tree": "other"}, {"tree": "hidden"}, {"tree": "nope"}]
)
def test_the_kind_and_tree_of_a_source_are_read_only(users, tree, editor, hidden_tree, changes):
    make_tree(users, slug="other", name="Other")
    source_id = editor.post("/api/metric-sources/", HTTP_SOURCE).json()["id"]

    response = editor.patch(f"/api/metric-sources/{source_id}/", {**changes, "name": "Renamed"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["kind"], body["tree"]) == ("Renamed", "http_json", "tree")
    source = MetricSource.objects.select_related("tree").get()
    assert (source.name, source.kind, source.tree.slug) == ("Renamed", "http_json", "tree")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"config": {"url": "ftp://api.example.com"}}, "config.url"),
        ({"config": {"url": "https://api.example.com", "token": "x"}}, "config.token"),
        ({"credentials": {"password": "x"}}, "credentials.password"),
        ({"credentials": "Bearer x"}, "credentials"),
        ({"credentials": {"headers": {"Authorization": "a\nb"}}}, "credentials.headers"),
        ({"kind": "carrier_pigeon"}, "kind"),
        ({"tree": None}, "tree"),
        ({"name": ""}, "name"),
    ],
)
def test_a_bad_source_is_refused_naming_the_field(tree, editor, changes, field):
    response = editor.post("/api/metric-sources/", {**HTTP_SOURCE, **changes})

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not MetricSource.objects.exists()


@pytest.mark.parametrize("slug", ["hidden", "nope"])
def test_a_source_cannot_be_created_in_a_tree_the_caller_cannot_see(
    tree, editor, hidden_tree, slug
):
    # A hidden tree and no tree at all answer alike: the API does not tell them apart.
    response = editor.post("/api/metric-sources/", {**HTTP_SOURCE, "tree": slug})

    assert response.status_code == 404
    assert not MetricSource.objects.exists()


# --- Metrics --------------------------------------------------------------------------


def test_a_push_metric_is_created(tree, editor):
    source = services.metric_source_create(tree=tree, kind="push", name="Pushed")

    response = editor.post("/api/metrics/", {"source": source.pk, "name": "Signups"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["health"], body["next_pull_at"]) == ("Signups", "waiting", None)
    assert Metric.objects.get().source == source


def test_a_pulled_metric_is_created_and_due_at_once(tree, editor):
    source = services.metric_source_create(
        tree=tree, kind="http_json", name="Stats", config={"url": "https://api.example.com"}
    )

    response = editor.post(
        "/api/metrics/",
        {
            "source": source.pk,
            "name": "Active users",
            "query": "$.data.active",
            "options": {"path": "/stats"},
            "schedule_interval": "01:00:00",
        },
    )

    assert response.status_code == 201, response.content
    metric = Metric.objects.get()
    assert (metric.query, metric.options, metric.schedule_interval) == (
        "$.data.active",
        {"path": "/stats"},
        timedelta(hours=1),
    )
    assert metric.next_pull_at is not None
    assert metric.next_pull_at <= timezone.now()
    assert response.json()["effective_expected_frequency"] == 7200.0


@pytest.mark.parametrize(
    ("kind", "fields", "keys"),
    [
        (
            "http_json",
            {"schedule_interval": "01:00:00", "schedule_cron": "0 * * * *"},
            {"schedule_cron"},
        ),
        ("http_json", {"schedule_interval": "00:00:30"}, {"schedule_interval"}),
        ("http_json", {}, {"schedule_interval"}),
        ("http_json", {"schedule_cron": "every day"}, {"schedule_cron"}),
        ("http_json", {"schedule_cron": "0 6 * * *", "timezone": "Mars/Olympus"}, {"timezone"}),
        # Files of the host's zoneinfo folder that are no IANA name: ZoneInfo loaded them.
        ("http_json", {"schedule_cron": "0 6 * * *", "timezone": "posixrules"}, {"timezone"}),
        ("http_json", {"schedule_cron": "0 6 * * *", "timezone": "right/UTC"}, {"timezone"}),
        # The host's alias of /etc/localtime (Debian, Ubuntu): whatever zone that host runs in.
        ("http_json", {"schedule_cron": "0 6 * * *", "timezone": "localtime"}, {"timezone"}),
        ("http_json", {"schedule_interval": "01:00:00", "query": "$[["}, {"query"}),
        (
            "http_json",
            {"schedule_interval": "01:00:00", "options": {"colour": "red"}},
            {"options.colour"},
        ),
        ("push", {"schedule_interval": "01:00:00"}, {"schedule_interval"}),
        ("push", {"schedule_cron": "0 6 * * *"}, {"schedule_interval"}),
    ],
)
def test_a_bad_metric_is_refused_naming_the_fields(tree, editor, kind, fields, keys):
    pulled = kind == "http_json"
    config = {"url": "https://api.example.com"} if pulled else None
    source = services.metric_source_create(tree=tree, kind=kind, name="Source", config=config)
    query = {"query": "$.value"} if pulled else {}

    response = editor.post("/api/metrics/", {"source": source.pk, "name": "M", **query, **fields})

    assert response.status_code == 400
    assert set(response.json()) == keys, response.json()
    assert not Metric.objects.exists()


@pytest.mark.parametrize(
    ("which", "as_text"),
    [
        ("hidden", False),
        ("missing", False),
        ("hidden", True),
        ("missing", True),
    ],
)
def test_a_metric_cannot_be_created_in_a_source_the_caller_cannot_see(
    tree, editor, hidden_tree, which, as_text
):
    hidden_source = services.metric_source_create(tree=hidden_tree, kind="push", name="Hidden")
    source_id = hidden_source.pk if which == "hidden" else hidden_source.pk + 1000
    if as_text:
        source_id = str(source_id)

    response = editor.post("/api/metrics/", {"source": source_id, "name": "Peek"})

    # A hidden source and no source at all answer alike: the API does not tell them apart.
    assert response.status_code == 404
    assert not Metric.objects.exists()


def test_the_source_of_a_metric_is_read_only(users, tree, push_metric, editor):
    source_id = push_metric.source_id
    other_source = services.metric_source_create(tree=tree, kind="push", name="Other")

    response = editor.patch(
        f"/api/metrics/{push_metric.pk}/", {"source": other_source.pk, "unit": "users"}
    )

    assert response.status_code == 200, response.content
    assert response.json()["source"] == source_id
    push_metric.refresh_from_db()
    assert (push_metric.source_id, push_metric.unit) == (source_id, "users")


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/metric-sources/", lambda metric: {"tree": "tree", "kind": "push", "name": "Pushed"}),
        ("/api/metrics/", lambda metric: {"source": metric.source_id, "name": "Signups"}),
    ],
    ids=["source", "metric"],
)
def test_a_name_is_unique_within_its_tree_or_source(push_metric, editor, url, body):
    response = editor.post(url, body(push_metric))

    assert response.status_code == 400
    assert "must make a unique set" in json.dumps(response.json())
    assert (MetricSource.objects.count(), Metric.objects.count()) == (1, 1)


def test_a_viewer_cannot_create_a_metric(users, tree, client_for):
    source = services.metric_source_create(tree=tree, kind="push", name="Pushed")

    response = client_for(users["viewer"]).post(
        "/api/metrics/", {"source": source.pk, "name": "Signups"}
    )

    assert response.status_code == 403
    assert not Metric.objects.exists()


# --- Pull now -------------------------------------------------------------------------


def test_pull_now_queues_one_pull_and_refuses_while_it_is_claimed(
    users, pulled_metric, editor, queued, django_capture_on_commit_callbacks
):
    url = f"/api/metrics/{pulled_metric.pk}/pull/"

    with django_capture_on_commit_callbacks(execute=True):
        first = editor.post(url)
    with django_capture_on_commit_callbacks(execute=True):
        second = editor.post(url)

    assert (first.status_code, second.status_code) == (202, 409)
    assert "already queued or running" in second.json()["detail"]
    assert queued == [(pulled_metric.pk, "manual", users["editor"].pk)]
    pulled_metric.refresh_from_db()
    assert pulled_metric.claimed_at is not None


def test_a_push_metric_cannot_be_pulled(push_metric, editor, queued):
    response = editor.post(f"/api/metrics/{push_metric.pk}/pull/")

    assert response.status_code == 400
    assert "push metric is not pulled" in json.dumps(response.json())
    assert queued == []
    push_metric.refresh_from_db()
    assert push_metric.claimed_at is None


def test_a_viewer_cannot_ask_for_a_pull(users, pulled_metric, client_for, queued):
    response = client_for(users["viewer"]).post(f"/api/metrics/{pulled_metric.pk}/pull/")

    assert response.status_code == 403
    pulled_metric.refresh_from_db()
    assert pulled_metric.claimed_at is None


# --- Pushing values -------------------------------------------------------------------

CSV = "period,value\n2026-03-01,1\n2026-03-02,2.5\n"


def csv_body(client, url, text=CSV):
    return client.post(url, data=text, content_type="text/csv")


def csv_upload(client, url, text=CSV):
    upload = SimpleUploadedFile("values.csv", text.encode(), content_type="text/csv")
    return client.post(url, {"file": upload}, format="multipart")


def json_list(client, url, _text=None):
    return client.post(
        url, [{"period": "2026-03-01", "value": 1}, {"period": "2026-03-02", "value": "2.5"}]
    )


def json_wrapped(client, url, _text=None):
    return client.post(
        url,
        {
            "observations": [
                {"period": "2026-03-01", "value": 1},
                {"period": "2026-03-02", "value": 2.5},
            ]
        },
    )


@pytest.mark.parametrize(
    ("send", "trigger"),
    [(json_list, "push"), (json_wrapped, "push"), (csv_body, "upload"), (csv_upload, "upload")],
)
def test_values_are_pushed_in_every_form(users, push_metric, editor, send, trigger):
    response = send(editor, observations_url(push_metric))

    assert response.status_code == 201, response.content
    run = PullRun.objects.get()
    assert response.json() == {"pull_run": run.pk, "values_written": 2}
    assert (run.trigger, run.status, run.user) == (trigger, "succeeded", users["editor"])
    assert stored(push_metric) == [("2026-03-01", 1.0), ("2026-03-02", 2.5)]


def test_a_single_value_is_pushed(push_metric, editor):
    response = editor.post(observations_url(push_metric), {"period": "2026-03-01", "value": 4})

    assert response.status_code == 201, response.content
    assert response.json()["values_written"] == 1
    assert stored(push_metric) == [("2026-03-01", 4.0)]


def test_a_value_without_period_is_the_current_period(push_metric, editor):
    before = timezone.now().date().isoformat()
    response = editor.post(observations_url(push_metric), {"value": 7})
    after = timezone.now().date().isoformat()

    assert response.status_code == 201, response.content
    [(period, value)] = stored(push_metric)
    assert (period in {before, after}, value) == (True, 7.0)


def test_a_period_pushed_again_replaces_its_value(push_metric, editor):
    url = observations_url(push_metric)
    editor.post(url, {"period": "2026-03-01", "value": 4})

    again = editor.post(url, {"period": "2026-03-01T15:00:00Z", "value": 9})

    assert again.status_code == 201, again.content
    assert stored(push_metric) == [("2026-03-01", 9.0)]
    assert Observation.objects.get().pull_run_id == again.json()["pull_run"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            [{"period": "2026-03-01", "value": 1}, {"period": "2026-03-02", "value": "abc"}],
            "observations[1]: 'abc' is not a number.",
        ),
        (
            {"observations": [{"period": "2026-03-01", "value": 1}, {"value": "NaN"}]},
            "observations[1]: 'NaN' is not a finite number",
        ),
        (
            [{"period": "2026-03-01", "value": "1e400"}, {"period": "2026-03-02", "value": 2}],
            "observations[0]: '1e400' is not a finite number",
        ),
        ({"period": "2026-03-01", "value": True}, "True is not a number."),
        ({"period": "2026-03-01", "value": None}, "may not be null"),
        ({"period": "yesterday", "value": 1}, "Period 'yesterday' is not a date"),
        # float() reads these as Unix times; a period is ASCII digits like a value.
        ({"period": "1_767_225_600", "value": 1}, "Period '1_767_225_600' is not a date"),
        (
            {"period": "\uff11\uff17\uff16\uff17\uff12\uff12\uff15\uff16\uff10\uff10", "value": 1},
            "is not a date",
        ),
        (
            {"period": "2999-01-01", "value": 1},
            "Period 2999-01-01 00:00 UTC is in the future",
        ),
        (
            [{"period": "2026-03-01", "value": 1}, {"period": "2026-03-01T12:00:00Z", "value": 2}],
            "observations[1]: a second value for the period",
        ),
        ([], "no values"),
    ],
)
def test_a_bad_json_push_stores_nothing_and_names_the_item(push_metric, editor, body, message):
    response = editor.post(observations_url(push_metric), body)

    assert response.status_code == 400
    assert message in json.dumps(response.json()), response.json()
    assert not Observation.objects.exists()
    assert not PullRun.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # The first `period` column was taken, the second dropped without a word.
        ("period,value,period\n2026-01-01,1,2026-02-01\n", "names the column 'period' twice"),
        ("Value,period,VALUE\n1,2026-01-01,2\n", "names the column 'value' twice"),
        # Spaces and line breaks were read as a header naming neither column.
        (" \n\t\n", "The file is empty"),
    ],
)
@pytest.mark.parametrize("as_file", [False, True], ids=["body", "multipart"])
def test_a_csv_push_with_an_ambiguous_or_blank_header_is_refused(
    push_metric, editor, body, message, as_file
):
    if as_file:
        upload = SimpleUploadedFile("values.csv", body.encode(), content_type="text/csv")
        response = editor.post(observations_url(push_metric), {"file": upload}, format="multipart")
    else:
        response = editor.generic("POST", observations_url(push_metric), body, "text/csv")
    assert response.status_code == 400
    assert message in json.dumps(response.json()), response.json()
    assert not PullRun.objects.exists()


@pytest.mark.parametrize("content_type", ["text/csv", "application/json"])
def test_an_empty_push_body_is_an_empty_document(push_metric, editor, content_type):
    """With no body DRF gives an empty dict whatever the Content-Type: an empty CSV
    answered `value: This field is required.`"""
    response = editor.generic("POST", observations_url(push_metric), b"", content_type)
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["The document is empty."]}
    assert not PullRun.objects.exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            '[{"period": "2026-03-01", "value": 1}, {"period": "2026-03-02", "value": NaN}]',
            "Not valid JSON: unexpected character",
        ),
        (
            '[{"period": "2026-03-01", "value": 1}, {"period": "2026-03-02", "value": 1e400}]',
            # Out of float range: the parser (valuetree.parsers) refuses it as infinity.
            "Not valid JSON: number is infinity",
        ),
    ],
)
def test_non_finite_json_numbers_are_refused(push_metric, editor, raw, message):
    response = editor.post(observations_url(push_metric), raw, content_type="application/json")

    assert response.status_code == 400
    assert message in json.dumps(response.json()), response.json()
    assert not Observation.objects.exists()
    assert not PullRun.objects.exists()


@pytest.mark.parametrize("send", [csv_body, csv_upload])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("period,value\n2026-03-01,1\n2026-03-02,abc\n", "Line 3: 'abc' is not a number."),
        ("period,value\n2026-03-01,1\n\n2026-03-02,inf\n", "Line 4: 'inf' is not a finite number"),
        ("period,value\n2026-03-01,1\n2026-03-02,2,3\n", "Line 3: 3 columns, the header has 2"),
        ("date,amount\n2026-03-01,1\n", "Line 1: the header must name"),
        ("period,value\n", "no values"),
    ],
)
def test_a_bad_csv_stores_nothing_and_names_the_line(push_metric, editor, send, text, message):
    response = send(editor, observations_url(push_metric), text)

    assert response.status_code == 400
    assert message in json.dumps(response.json()), response.json()
    assert not Observation.objects.exists()
    assert not PullRun.objects.exists()


@pytest.mark.parametrize(
    "send",
    [
        lambda client, url: client.post(
            url, data=b"period,value\n2026-03-01,\xff\n", content_type="text/csv"
        ),
        lambda client, url: client.post(
            url,
            {"file": SimpleUploadedFile("v.csv", b"period,value\n2026-03-01,\xff\n")},
            format="multipart",
        ),
    ],
    ids=["body", "file"],
)
def test_a_csv_that_is_not_utf8_is_refused(push_metric, editor, send):
    response = send(editor, observations_url(push_metric))

    assert response.status_code == 400
    assert "UTF-8" in json.dumps(response.json())
    assert not Observation.objects.exists()


def test_values_cannot_be_pushed_to_a_pulled_metric(pulled_metric, editor):
    response = editor.post(observations_url(pulled_metric), {"period": "2026-03-01", "value": 1})

    assert response.status_code == 400
    assert "pulled from its source" in json.dumps(response.json())
    assert not Observation.objects.exists()
    assert not PullRun.objects.exists()


def test_a_viewer_cannot_push_but_can_read(users, push_metric, client_for):
    viewer = client_for(users["viewer"])
    url = observations_url(push_metric)

    assert viewer.post(url, {"period": "2026-03-01", "value": 1}).status_code == 403
    assert viewer.get(url).status_code == 200
    assert not Observation.objects.exists()


# --- Reading observations and pull runs -----------------------------------------------


@pytest.fixture
def five_days(push_metric, editor):
    # Sent out of order: the answer is ordered by period all the same.
    days = ["2026-03-04", "2026-03-01", "2026-03-05", "2026-03-02", "2026-03-03"]
    response = editor.post(
        observations_url(push_metric),
        [{"period": day, "value": int(day[-1])} for day in days],
    )
    assert response.status_code == 201, response.content
    return push_metric


@pytest.mark.parametrize(
    ("query", "days"),
    [
        ("", [1, 2, 3, 4, 5]),
        ("?since=2026-03-02T00:00:00Z", [2, 3, 4, 5]),
        ("?until=2026-03-03T00:00:00Z", [1, 2]),
        ("?since=2026-03-02T00:00:00Z&until=2026-03-04T00:00:00Z", [2, 3]),
        ("?since=2026-03-02T01:00:00%2B01:00", [2, 3, 4, 5]),
    ],
)
def test_observations_are_read_in_period_order_within_bounds(
    users, five_days, client_for, query, days
):
    response = client_for(users["viewer"]).get(observations_url(five_days) + query)

    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert [row["value"] for row in rows] == [float(day) for day in days]
    assert [datetime.fromisoformat(row["period_start"]) for row in rows] == [
        datetime(2026, 3, day, tzinfo=UTC) for day in days
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    # An empty bound is no date either (the schema says date-time): leave it out.
    [("since", "yesterday"), ("until", "2026-13-01"), ("since", ""), ("until", "")],
)
def test_a_bad_bound_is_refused(five_days, editor, name, value):
    response = editor.get(f"{observations_url(five_days)}?{name}={value}")

    assert response.status_code == 400
    assert list(response.json()) == [name]


def test_pull_runs_are_listed_newest_first(users, pulled_metric, push_metric, editor):
    now = timezone.now()
    PullRun.objects.create(
        metric=pulled_metric,
        trigger="schedule",
        status="failed",
        started_at=now - timedelta(hours=2),
        error="The source answered HTTP 500",
    )
    PullRun.objects.create(
        metric=pulled_metric,
        trigger="manual",
        status="succeeded",
        started_at=now - timedelta(hours=1),
        values_written=3,
        user=users["owner"],
    )
    PullRun.objects.create(metric=push_metric, trigger="push", status="succeeded", started_at=now)

    response = editor.get(f"/api/metrics/{pulled_metric.pk}/pull-runs/")

    assert response.status_code == 200, response.content
    runs = response.json()["results"]
    assert [
        (r["metric"], r["trigger"], r["status"], r["values_written"], r["user"], r["error"])
        for r in runs
    ] == [
        (pulled_metric.pk, "manual", "succeeded", 3, "owner", ""),
        (pulled_metric.pk, "schedule", "failed", 0, None, "The source answered HTTP 500"),
    ]


def test_pushes_are_listed_as_runs_of_the_pushing_user(users, push_metric, client_for):
    url = observations_url(push_metric)
    client_for(users["owner"]).post(url, {"period": "2026-03-01", "value": 1})
    csv_body(client_for(users["editor"]), url)

    runs = client_for(users["viewer"]).get(f"/api/metrics/{push_metric.pk}/pull-runs/").json()

    assert [(r["trigger"], r["values_written"], r["user"]) for r in runs["results"]] == [
        ("upload", 2, "editor"),
        ("push", 1, "owner"),
    ]


# --- Measures point at metrics of their own tree --------------------------------------


@pytest.fixture
def measure(tree):
    goal = tree_services.node_create(tree=tree, parent=None, title="Goal")
    return services.measure_create(
        node=goal,
        name="Signups",
        direction="increase",
        baseline_value=1,
        baseline_date="2026-01-01",
        target_value=2,
        target_date="2027-01-01",
    )


def test_a_measure_is_linked_to_a_metric_of_its_tree(measure, push_metric, editor):
    response = editor.patch(f"/api/measures/{measure.pk}/", {"metric": push_metric.pk})

    assert response.status_code == 200, response.content
    assert response.json()["metric"] == push_metric.pk
    measure.refresh_from_db()
    assert measure.metric == push_metric

    unlinked = editor.patch(f"/api/measures/{measure.pk}/", {"metric": None})
    assert unlinked.status_code == 200, unlinked.content
    measure.refresh_from_db()
    assert measure.metric is None


@pytest.mark.parametrize("tree_of_metric", ["visible", "hidden"])
def test_a_measure_cannot_use_a_metric_of_another_tree(
    users, measure, editor, hidden_tree, tree_of_metric
):
    other = (
        make_tree(users, slug="other", name="Other") if tree_of_metric == "visible" else hidden_tree
    )
    foreign = make_metric(other, kind="push")

    response = editor.patch(f"/api/measures/{measure.pk}/", {"metric": foreign.pk})

    assert response.status_code == 400
    assert "metric" in response.json(), response.json()
    measure.refresh_from_db()
    assert measure.metric is None


# --- The OpenAPI schema ---------------------------------------------------------------


@pytest.fixture
def schema(db, client_for):
    response = client_for().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_documents_observations_and_pull_runs(schema):
    paths = schema["paths"]
    observations = paths["/api/metrics/{id}/observations/"]
    assert set(observations) >= {"get", "post"}
    assert {p["name"] for p in observations["get"]["parameters"]} >= {"since", "until"}
    assert set(observations["post"]["requestBody"]["content"]) == {
        "application/json",
        "text/csv",
        "multipart/form-data",
    }
    assert "post" in paths["/api/metrics/{id}/pull/"]
    assert "get" in paths["/api/metrics/{id}/pull-runs/"]


def test_the_schema_never_shows_credentials_in_a_response(schema):
    components = schema["components"]["schemas"]
    assert "has_credentials" in components["MetricSource"]["properties"]
    assert "credentials" not in components["MetricSource"]["properties"]
    assert "credentials" in components["MetricSourceRequest"]["properties"]
    # An update may replace the credentials but not move the source or change its kind.
    patch = components["PatchedMetricSourceUpdateRequest"]["properties"]
    assert "credentials" in patch
    assert {"tree", "kind"} & set(patch) == set()
    leaking = [
        name
        for name, component in components.items()
        if not name.endswith("Request") and "credentials" in component.get("properties", {})
    ]
    assert leaking == []


def test_a_csv_body_over_the_size_cap_is_refused_before_parsing(push_metric, editor):
    body = "period,value\n" + "2026-03-01,1\n" * (5 * 1024 * 1024 // 13 + 10)
    response = editor.post(observations_url(push_metric), data=body, content_type="text/csv")
    assert response.status_code == 400
    assert "larger than 5 MiB" in json.dumps(response.json())
    assert not Observation.objects.exists()


def test_too_many_pushed_values_get_a_message_about_pushing(push_metric, editor, settings):
    settings.METRICS_MAX_POINTS = 2
    body = "period,value\n2026-03-01,1\n2026-03-02,2\n2026-03-03,3\n"
    response = editor.post(observations_url(push_metric), data=body, content_type="text/csv")
    assert response.status_code == 400
    assert "3 values at once; at most 2" in json.dumps(response.json())
    assert not Observation.objects.exists()


@pytest.mark.parametrize("value", ["1_000", "١٢٣", "１２", "1,5"])
def test_a_pushed_value_python_would_read_but_a_person_might_not_is_refused(
    push_metric, editor, value
):
    response = editor.post(observations_url(push_metric), {"period": "2026-03-01", "value": value})
    assert response.status_code == 400
    assert "is not a number" in json.dumps(response.json(), ensure_ascii=False)
    assert not push_metric.observations.exists()


def test_a_push_with_a_token_costs_a_fixed_number_of_queries_and_writes_in_one_transaction(
    users, push_metric, django_assert_num_queries, django_capture_on_commit_callbacks, monkeypatch
):
    """The push path of bench/load.py (issue 16 §10): the token (one query), the metric
    with the caller's role (one), then one write transaction — the run, the value, the
    metric's recent values and health — and the evaluation queued after commit, which
    reads the measures then, outside the write lock."""
    from rest_framework.test import APIClient

    queued: list = []
    monkeypatch.setattr(tasks.evaluate_measures, "delay", lambda ids, _changed: queued.append(ids))
    measure = services.measure_create(
        node=tree_services.node_create(tree=push_metric.source.tree, parent=None, title="Goal"),
        name="Signups",
        direction="increase",
        baseline_value=0,
        baseline_date="2026-01-01",
        target_value=10,
        target_date="2027-01-01",
        metric=push_metric,
    )
    _, key = tree_services.api_token_create(user=users["editor"], name="pusher")
    client = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    # token, metric + role, SAVEPOINT, run, value, recent values, UPDATE metric,
    # RELEASE SAVEPOINT, then after commit: the measures
    with (
        django_assert_num_queries(9),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            observations_url(push_metric), {"period": "2026-03-01", "value": 4}, format="json"
        )
    assert response.status_code == 201, response.content
    assert stored(push_metric) == [("2026-03-01", 4.0)]
    assert queued == [[measure.pk]]
    push_metric.refresh_from_db()
    assert push_metric.recent_values == [4.0]
    assert push_metric.last_success_at is not None


def test_a_viewer_cannot_push_with_a_token(users, push_metric):
    from rest_framework.test import APIClient

    _, key = tree_services.api_token_create(user=users["viewer"], name="reader")
    client = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.post(
        observations_url(push_metric), {"period": "2026-03-01", "value": 4}, format="json"
    )
    assert response.status_code == 403
    assert stored(push_metric) == []


@pytest.mark.parametrize("as_float", [False, True])
def test_a_hidden_source_answers_a_new_metric_like_a_missing_one(editor, hidden_tree, as_float):
    """No probing: a source of a tree the caller cannot see gets the answer an id that
    does not exist gets, whether the id is sent as 7 or as 7.0."""
    from tests.factories import make_metric

    hidden = make_metric(hidden_tree, kind="push", name="Secret").source
    body = {"name": "Mine", "granularity": "day"}

    def ident(pk):
        return float(pk) if as_float else pk

    there = editor.post("/api/metrics/", {**body, "source": ident(hidden.pk)})
    missing = editor.post("/api/metrics/", {**body, "source": ident(hidden.pk + 1000)})
    assert (there.status_code, there.json()) == (missing.status_code, missing.json())
    assert not Metric.objects.filter(name="Mine").exists()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///%00",  # the database's path holds a NUL once unquoted
        "sqlite:////srv/a%00b.sqlite3",
        "postgresql://reader@db.example.com:0/w",
        "postgresql://reader@db.example.com:-1/w",
        "postgresql://reader@db.example.com:65536/w",
        "postgresql://reader@db.example.com:99999999999999999999/w",
        "postgresql://reader@db.example.com/w%00x",
    ],
)
def test_a_sql_url_no_driver_can_use_is_a_400(editor, tree, settings, url):
    settings.METRICS_SQLITE_DIRS = ["/srv"]
    client = editor
    client.raise_request_exception = False
    body = {"tree": tree.slug, "kind": "sql", "name": "Warehouse", "config": {"url": url}}
    response = client.post("/api/metric-sources/", body)
    assert response.status_code == 400, response.content
    assert "config" in json.dumps(response.json())
    assert not MetricSource.objects.exists()


@pytest.mark.parametrize("kind", ["http_json", "prometheus"])
@pytest.mark.parametrize(
    "url",
    [
        "https://[::1",  # urlsplit: "Invalid IPv6 URL"
        "https://api.example.com\uff0f@x/",  # urlsplit: invalid under NFKC normalization
    ],
)
def test_an_http_url_python_cannot_split_is_a_400(editor, tree, kind, url):
    editor.raise_request_exception = False
    body = {"tree": "tree", "kind": kind, "name": "API", "config": {"url": url}}
    response = editor.post("/api/metric-sources/", body)
    assert response.status_code == 400, response.content
    assert not MetricSource.objects.exists()


def test_a_redirect_to_an_address_python_cannot_split_fails_the_pull_plainly(settings):
    """A source's Location header is the source's to write: a bad one is a PullError
    naming the redirect, not a crash of the pull ("Unexpected error")."""
    from outcomes.connectors import http
    from outcomes.connectors.base import PullError
    from tests.stub_http import StubServer

    with StubServer() as server:
        settings.METRICS_ALLOWED_HOSTS = [server.host_port]
        server.route("/start", (302, {"Location": "https://[::1"}, b""))
        with pytest.raises(PullError, match="redirected"):
            http.http_get(f"{server.url}/start")
