"""Pull errors never hand a source's credentials to its readers.

A source may answer with the request's own headers (an echo endpoint, an error page that
quotes the request). Readers of the tree see only a description of what failed; the
source's editors see the full text; both are redacted of every part and common encoding
of the credentials. JSONPath may only select, so it cannot transform a secret past the
redaction or guess it through filters.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core.exceptions import ValidationError

from outcomes import pulling
from outcomes.connectors import http_json
from outcomes.credentials import REDACT_MIN_RUN, redact
from tests.factories import make_metric
from tests.stub_http import StubServer

TOKEN = "tok_" + "9f2c7ad1e04b58c3" * 5  # 84 characters: longer than any quote we cut
SECRET_HEADER = f"Bearer {TOKEN}"


def runs_of(text: str, secret: str) -> list[str]:
    """The runs of REDACT_MIN_RUN characters of `secret` that occur in `text`."""
    return [
        secret[i : i + REDACT_MIN_RUN]
        for i in range(len(secret) - REDACT_MIN_RUN + 1)
        if secret[i : i + REDACT_MIN_RUN] in text
    ]


@pytest.fixture
def echo(settings):
    """A source that answers with the headers it was sent, as httpbin's /headers does."""
    with StubServer() as server:
        settings.METRICS_ALLOWED_HOSTS = [server.host_port]
        server.route("/headers", lambda path, headers: (200, {}, {"headers": headers}))
        yield server


def pulled(tree, echo, query: str):
    metric = make_metric(
        tree,
        kind="http_json",
        config={"url": echo.url},
        credentials={"headers": {"Authorization": SECRET_HEADER}},
        query=query,
        options={"path": "/headers"},
        schedule_interval=timedelta(hours=1),
    )
    assert pulling.metric_claim(metric=metric)
    run = pulling.metric_pull(metric_id=metric.pk, trigger="manual")
    metric.refresh_from_db()
    return metric, run


def test_an_echoed_secret_header_is_described_to_readers_and_redacted_for_editors(
    users, tree, echo, client_for
):
    metric, run = pulled(tree, echo, "$.headers.authorization")

    assert echo.requests[0].headers["authorization"] == SECRET_HEADER  # it did go out
    assert run.error == (
        f"Value 1: the value (a text of {len(SECRET_HEADER)} characters) is not a finite number."
    )
    assert metric.last_error == run.error
    assert run.error_detail.startswith("Value 1: '***")
    for text in (run.error, run.error_detail, metric.last_error, metric.last_error_detail):
        assert runs_of(text, TOKEN) == []

    viewer, editor = client_for(users["viewer"]), client_for(users["editor"])
    for client, sees_detail in ((viewer, False), (editor, True)):
        shown = client.get(f"/api/metrics/{metric.pk}/").json()
        runs = client.get(f"/api/metrics/{metric.pk}/pull-runs/").json()["results"]
        assert shown["last_error"] == run.error
        assert shown["last_error_detail"] == (run.error_detail if sees_detail else None)
        assert runs[0]["error_detail"] == (run.error_detail if sees_detail else None)
        assert runs_of(str(shown) + str(runs), TOKEN) == []


def test_pages_show_the_full_error_to_editors_only(users, tree, echo, client, settings):
    settings.METRICS_UNHEALTHY_AFTER = 1  # so "think again" lists it too
    metric, run = pulled(tree, echo, "$.headers.authorization")
    detail = run.error_detail.replace("'", "&#x27;")

    client.force_login(users["viewer"])
    for url in (f"/metrics/{metric.pk}/", "/trees/tree/metrics/"):
        page = client.get(url).content.decode()
        assert "is not a finite number" in page, url
        assert detail not in page, url
        assert runs_of(page, TOKEN) == [], url
    page = client.get("/trees/tree/think-again/").content.decode()
    assert "is not a finite number" in page
    assert detail not in page and runs_of(page, TOKEN) == []
    client.force_login(users["editor"])
    for url in (f"/metrics/{metric.pk}/", "/trees/tree/think-again/"):
        page = client.get(url).content.decode()
        assert detail in page, url
        assert runs_of(page, TOKEN) == [], url


@pytest.mark.parametrize(
    "query",
    [
        "$.headers.authorization.`sub(/Bearer /, )`",
        '$.headers.authorization.`split(" ", 1, -1)`',
        "$.headers.authorization.`str()`",
        "$.headers.authorization.`len`",
        "$.headers[?(@.authorization =~ 'Bearer t')]",
        "$.headers[?(@.authorization > 'Bearer t')]",
        "$.headers.authorization + $.headers.host",
    ],
)
def test_transforming_jsonpaths_are_refused(query):
    with pytest.raises(ValidationError, match="is not accepted"):
        http_json.CONNECTOR.validate_metric(query, {})


def test_a_stored_transforming_jsonpath_fails_the_pull_without_the_secret(tree, echo, monkeypatch):
    monkeypatch.setattr(http_json.CONNECTOR, "validate_metric", lambda query, options: None)
    metric, run = pulled(tree, echo, "$.headers.authorization.`sub(/Bearer /, )`")

    assert run.error.startswith("The query: This JSONPath uses sub(), which is not accepted")
    assert runs_of(run.error + run.error_detail + metric.last_error_detail, TOKEN) == []


@pytest.mark.parametrize(
    "query", ["$.a.b", "$.teams[?(@.name == 'b')].nps", "$..value", "$.values[*]", "$.a[0:3]"]
)
def test_selecting_jsonpaths_pass(query):
    http_json.CONNECTOR.validate_metric(query, {})


@pytest.mark.parametrize(
    "leak",
    [
        TOKEN,
        TOKEN[:50],  # a quote cut short
        TOKEN[7:29],  # a part from the middle
        TOKEN.upper(),
        quote(SECRET_HEADER, safe=""),
        base64.b64encode(TOKEN.encode()).decode(),
        base64.b64encode(TOKEN[5:40].encode()).decode(),  # a part, off the 3-byte grid
        base64.urlsafe_b64encode(TOKEN[1:].encode()).decode(),
        TOKEN.encode().hex(),
        TOKEN[10:30].encode().hex().upper(),
        TOKEN[5:60][::-1],  # a part, reversed
        TOKEN[3:40].swapcase(),  # a server that changes case (upper- or lower-cases it)
    ],
)
def test_redaction_covers_parts_and_encodings_of_a_secret(leak):
    text = f"The source said: {leak} (end)"
    redacted = redact(text, [{"headers": {"Authorization": SECRET_HEADER}}])
    # The space before the token is part of the secret too.
    assert redacted.startswith("The source said:")
    assert redacted.endswith(" (end)")
    assert "***" in redacted
    kept = redacted.removeprefix("The source said:").removesuffix(" (end)").replace("***", "")
    kept = kept.strip()
    assert len(kept) < 4, kept  # at most the ends of an encoding that depend on what follows


def test_redaction_leaves_other_text_alone():
    text = "The query returned 3 rows of one column."
    assert redact(text, [{"password": "hunter2-secret"}]) == text
    assert redact("login failed: hunter2", [{"password": "hunter2"}]) == "login failed: ***"


SLASHED = "k3y/9Xw+Qp/7Lm2/Zt8+Rv0/Hs5"  # a base64 secret: a slash every few characters


@pytest.mark.parametrize(
    "leak",
    [
        json.dumps(SLASHED)[1:-1].replace("/", "\\/"),  # PHP's json_encode escapes "/"
        quote(SLASHED, safe="").lower(),  # lower-case percent-encoding
        SLASHED[::-1],
    ],
)
def test_redaction_covers_a_secret_whose_encodings_break_it_into_short_runs(leak):
    """Slashes every 4 to 5 characters: an encoding that changes each slash leaves no
    run of the secret as it is, so only the encoded form as a whole can match."""
    redacted = redact(f"echo: {leak}!", [{"headers": {"X-Key": SLASHED}}])
    assert redacted == "echo: ***!", redacted


def test_a_prometheus_nan_sample_names_no_time_the_source_wrote(tree, settings):
    """Readers see only a description of what the source answered: the time of a NaN
    sample that is not a Unix time (here the secret header, reversed: redaction cannot
    know it) was quoted, 40 characters of it."""
    with StubServer() as server:
        settings.METRICS_ALLOWED_HOSTS = [server.host_port]

        def answer(path, headers):
            echoed = headers.get("authorization", "")[::-1].swapcase()
            data = {"resultType": "scalar", "result": [echoed, "NaN"]}
            return 200, {}, {"status": "success", "data": data}

        server.route("/api/v1/query", answer)
        metric = make_metric(
            tree,
            kind="prometheus",
            config={"url": server.url},
            credentials={"headers": {"Authorization": SECRET_HEADER}},
            query="up",
            schedule_interval=timedelta(hours=1),
        )
        assert pulling.metric_claim(metric=metric)
        run = pulling.metric_pull(metric_id=metric.pk, trigger="manual")
    assert run.status == "failed" and "NaN" in run.error
    reversed_token = TOKEN[::-1].swapcase()
    assert runs_of(run.error.lower(), reversed_token.lower()) == [], run.error


def test_a_numeric_secret_echoed_as_the_value_is_not_stored(tree, echo):
    """A secret made of digits (an API key, a PIN) that an echo endpoint returns is a
    valid number: stored as an observation, every reader of the tree saw it on the
    chart. A value that holds one of the source's credentials is refused instead."""
    from outcomes.models import Observation

    metric = make_metric(
        tree,
        kind="http_json",
        config={"url": echo.url},
        credentials={"headers": {"X-Api-Key": "7351904622"}},
        query="$.headers.x-api-key",
        options={"path": "/headers"},
        schedule_interval=timedelta(hours=1),
    )
    assert pulling.metric_claim(metric=metric)
    run = pulling.metric_pull(metric_id=metric.pk, trigger="manual")
    assert run.status == "failed"
    assert not Observation.objects.filter(metric=metric).exists()
    assert "7351904622" not in run.error + run.error_detail
    assert "credential" in run.error


def test_numbers_that_share_digits_with_an_encoding_of_a_secret_are_stored():
    """Hex of "Bearer " is 42656172657220: a value is refused only for holding the
    secret itself, not its encodings, or ordinary numbers would fail pulls."""
    from outcomes.credentials import holds_secret

    secret = [{"headers": {"Authorization": SECRET_HEADER}}]
    assert not holds_secret(["4265617265", "1767225600", "0.396632"], secret)
    assert holds_secret(["9f2c7ad1"], [{"headers": {"X-Key": "key-9f2c7ad1e0"}}])
