"""Stored credentials stay with their origin: the decision reads each URL with the parser
that connects (SQLAlchemy's make_url for SQL, urllib3's parse_url for HTTP).

Each case is a URL two parsers read differently; the check must agree with the
connection, whatever Python's urlsplit says.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from outcomes import services
from outcomes.connectors import http
from outcomes.connectors import sql as sql_connector
from outcomes.connectors.base import FetchRequest, PullError
from outcomes.credentials import credentials_decrypt
from outcomes.models import MetricSource
from tests.outcomes.test_connector_sql import SINCE, UNTIL

SQL_HOME = "postgresql://reader@db.example.com:5432/warehouse"
HTTP_HOME = "https://api.example.com:443/v1"

# (new url, same origin as the stored one?)
SQL_CASES = [
    ("postgresql://reader@db.example.com/warehouse", True),  # default port left out
    ("postgres://other@DB.example.com:5432/elsewhere", True),  # alias, case, user, database
    ("postgresql+psycopg://reader@db.example.com:5432/w", True),  # the driver postgresql means
    ("postgresql://db.example.com#@127.0.0.1:8116/db", False),  # urlsplit: db.example.com
    ("postgresql://db.example.com\\@127.0.0.1/db", False),  # urlsplit: 127.0.0.1 either way
    ("postgresql://db.example.com%40@127.0.0.1/db", False),
    ("postgresql://us@er@127.0.0.1/db", False),  # @ in the user name
    ("postgresql://reader@db.example.com:5433/warehouse", False),  # another port
    ("postgresql://reader@[::1]:5432/warehouse", False),  # IPv6 brackets
    ("postgresql+psycopg2://reader@db.example.com:5432/w", False),  # another driver
    ("mysql+pymysql://reader@db.example.com:5432/w", False),  # another dialect
]
# The stored URL asks for a verified TLS connection: like https -> http, a weaker or
# other TLS setting is another way of talking to the server, where a server in between
# may ask the driver for the password in clear.
SQL_TLS_HOME = "postgresql://reader@db.example.com:5432/warehouse?sslmode=verify-full"
SQL_TLS_CASES = [
    ("postgresql://other@db.example.com/elsewhere?sslmode=verify-full", True),
    ("postgresql://reader@db.example.com:5432/warehouse", False),  # libpq's "prefer"
    ("postgresql://reader@db.example.com:5432/warehouse?sslmode=disable", False),
    ("postgresql://reader@db.example.com:5432/warehouse?sslmode=require", False),
    (
        "postgresql://reader@db.example.com/warehouse?sslmode=verify-full"
        "&sslrootcert=/tmp/mine.pem",
        False,
    ),
]
HTTP_CASES = [
    ("https://api.example.com/v2", True),  # default port left out
    ("https://API.example.com:443/", True),
    ("http://api.example.com:443/", False),  # another scheme
    ("https://api.example.com:8443/", False),  # another port
    ("https://api.example.com#@127.0.0.1:8116/", True),  # both parsers: a fragment
    ("https://api.example.com\\@127.0.0.1/", False),  # urlsplit 127.0.0.1, urllib3 api...
    ("https://api.example.com%40@127.0.0.1/", False),
    ("https://[::1]:443/", False),
    ("https://collector.attacker.example", False),
]


def make_source(tree, kind: str, url: str, credentials: dict) -> MetricSource:
    return services.metric_source_create(
        tree=tree, kind=kind, name="Source", config={"url": url}, credentials=credentials
    )


@pytest.mark.parametrize(("url", "same"), SQL_CASES)
def test_sql_credentials_stay_with_the_origin_sqlalchemy_connects_to(tree, url, same):
    source = make_source(tree, "sql", SQL_HOME, {"password": "pw-secret"})
    source.config = {"url": url}
    if same:
        services.metric_source_update(source=source, config={"url": url})
        assert credentials_decrypt(MetricSource.objects.get().credentials_encrypted) == {
            "password": "pw-secret"
        }
    else:
        with pytest.raises(ValidationError, match="enter the credentials again"):
            services.metric_source_update(source=source, config={"url": url})
        assert MetricSource.objects.get().config == {"url": SQL_HOME}


@pytest.mark.parametrize(("url", "same"), SQL_TLS_CASES)
def test_sql_credentials_stay_with_the_tls_settings_they_were_entered_for(tree, url, same):
    source = make_source(tree, "sql", SQL_TLS_HOME, {"password": "pw-secret"})
    source.config = {"url": url}
    if same:
        services.metric_source_update(source=source, config={"url": url})
        assert MetricSource.objects.get().config == {"url": url}
    else:
        with pytest.raises(ValidationError, match="enter the credentials again"):
            services.metric_source_update(source=source, config={"url": url})
        assert MetricSource.objects.get().config == {"url": SQL_TLS_HOME}


@pytest.mark.parametrize("kind", ["http_json", "prometheus"])
@pytest.mark.parametrize(("url", "same"), HTTP_CASES)
def test_http_credentials_stay_with_the_origin_urllib3_connects_to(tree, kind, url, same):
    credentials = {"headers": {"Authorization": "Bearer token-secret"}}
    source = make_source(tree, kind, HTTP_HOME, credentials)
    if same:
        services.metric_source_update(source=source, config={"url": url})
        assert credentials_decrypt(MetricSource.objects.get().credentials_encrypted) == (
            credentials
        )
    else:
        with pytest.raises(ValidationError, match="enter the credentials again"):
            services.metric_source_update(source=source, config={"url": url})
        assert MetricSource.objects.get().config == {"url": HTTP_HOME}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://reader@db.example.com/w",
        "postgresql://db.example.com#@127.0.0.1:8116/db",
        "postgresql://db.example.com\\@127.0.0.1/db",
        "postgresql://us@er@db2.example.com:6000/db",
        "postgresql://reader@[2001:db8::5]:5432/w",
    ],
)
def test_sql_origin_is_where_the_connector_connects(monkeypatch, url):
    """The origin is computed from the very (host, port) the pull checks and connects to."""
    asked = []

    def refuse(host, port):
        asked.append((host, port))
        raise PullError("stop before connecting")

    monkeypatch.setattr(http, "checked_addresses", refuse)
    request = FetchRequest(
        config={"url": url},
        credentials={"password": "pw"},
        query="SELECT 1",
        options={},
        since=SINCE,
        until=UNTIL,
        step_seconds=86400,
    )
    with pytest.raises(PullError, match="stop before connecting"):
        sql_connector.CONNECTOR.fetch(request)
    origin = sql_connector.CONNECTOR.origin({"url": url})
    assert [origin[1:]] == asked


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("postgresql://db.example.com#@127.0.0.1:8116/db", ("127.0.0.1", 8116)),
        ("postgresql://[::1]/db", ("::1", 5432)),
        ("postgres://h.example:5433/db", ("h.example", 5433)),
    ],
)
def test_sql_origin_fills_the_default_port_of_the_dialect(url, origin):
    assert sql_connector.CONNECTOR.origin({"url": url})[1:] == origin


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com\\@127.0.0.1/",  # urllib3 host api.example.com
        "http://api.example.com%40@127.0.0.1/",
        "http://api.example.com;@127.0.0.1/",
    ],
)
def test_an_address_two_parsers_read_differently_is_refused(url):
    with pytest.raises(ValidationError):
        http.validate_url(url)


def test_http_origin_is_what_urllib3_reads():
    assert http.origin("https://API.example.com/x") == ("https", "api.example.com", 443)
    assert http.origin("http://[2001:db8::1]:8080/") == ("http", "2001:db8::1", 8080)
    assert http.origin("http://h.example#@127.0.0.1:8116/") == ("http", "h.example", 80)
    assert http.origin("http://bücher.example/") == ("http", "xn--bcher-kva.example", 80)
