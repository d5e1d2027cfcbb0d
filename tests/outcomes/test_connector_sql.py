"""The SQL connector against a real PostgreSQL and a SQLite file.

PostgreSQL tests use a scratch database of their own (not Django's test database, one
per xdist worker) on the server of ``TEST_POSTGRES_URL`` (tests/postgres.py; default
127.0.0.1:5432 with trust auth). Without PostgreSQL they are skipped, except on CI where
a missing database must not pass unnoticed.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest
from django.core.exceptions import ValidationError
from psycopg import sql

from outcomes.connectors import sql as sql_connector
from outcomes.connectors.base import FetchRequest, PullError, TransientPullError
from outcomes.connectors.sql import CONNECTOR
from tests import postgres

WAREHOUSE = postgres.per_worker("valuetree_warehouse_test")
PG_ADMIN = postgres.admin_params()
# Metrics read as a role without superuser or file privileges: the connector refuses others.
READER = "valuetree_test_reader"
PG_URL = f"postgresql://{READER}@{postgres.host()}:{postgres.port()}/{WAREHOUSE}"
SECRET = "s3cret-value"

DAILY = {
    date(2024, 1, 1): Decimal("1.50"),
    date(2024, 1, 2): Decimal("2.25"),
    date(2024, 1, 3): Decimal("3.00"),
    date(2024, 1, 4): Decimal("4.75"),
    date(2024, 1, 5): Decimal("5.50"),
}
SINCE = datetime(2024, 1, 2, 12, tzinfo=UTC)
UNTIL = datetime(2024, 1, 4, 12, tzinfo=UTC)


def fetch_request(
    url: str,
    query: str,
    *,
    credentials: dict[str, str] | None = None,
    timeout: float = 5.0,
    max_points: int | None = None,
) -> FetchRequest:
    return FetchRequest(
        config={"url": url},
        credentials=credentials or {},
        query=query,
        options={},
        since=SINCE,
        until=UNTIL,
        step_seconds=86400,
        timeout=timeout,
        extra={} if max_points is None else {"max_points": max_points},
    )


def error_chain(error: BaseException | None) -> str:
    """Every message in the exception and its causes, as a log would show them."""
    messages = []
    while error is not None:
        messages.append(f"{error!s} {error!r}")
        error = error.__cause__ or error.__context__
    return "\n".join(messages)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def reach(settings, tmp_path):
    """Local databases (any port) and SQLite files in the test's folder or /srv are allowed."""
    settings.METRICS_ALLOWED_HOSTS = ["127.0.0.1", postgres.host()]
    settings.METRICS_SQLITE_DIRS = [str(tmp_path), "/srv"]


@pytest.fixture(scope="module")
def warehouse() -> Iterator[str]:
    try:
        admin = psycopg.connect(**PG_ADMIN, dbname="postgres", autocommit=True)
    except psycopg.OperationalError as error:
        reason = (
            f"PostgreSQL at {postgres.host()}:{postgres.port()} is unreachable ({error}): "
            "the SQL connector's PostgreSQL tests did NOT run"
        )
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason)
        pytest.skip(reason)
    name = sql.Identifier(WAREHOUSE)
    with admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
        # Dates compare with the timestamptz :since/:until in the session's time zone.
        admin.execute(sql.SQL("ALTER DATABASE {} SET timezone TO 'UTC'").format(name))
        create_role(admin, READER)
    with psycopg.connect(**PG_ADMIN, dbname=WAREHOUSE, autocommit=True) as db:
        db.execute("CREATE TABLE daily (day date PRIMARY KEY, value numeric(12, 2) NOT NULL)")
        with db.cursor() as cursor:
            cursor.executemany("INSERT INTO daily VALUES (%s, %s)", list(DAILY.items()))
        # Write rights too: only the read-only transaction may stop the write tests.
        reader = sql.Identifier(READER)
        db.execute(sql.SQL("GRANT ALL ON daily TO {}").format(reader))
        db.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(reader))
    yield PG_URL
    with psycopg.connect(**PG_ADMIN, dbname="postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def create_role(admin: psycopg.Connection, name: str, *grants: str) -> None:
    """A login role (kept between runs: roles are cluster-wide), with `grants` roles."""
    role = sql.Identifier(name)
    exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone()
    if not exists:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER").format(role))
    for grant in grants:
        admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(grant), role))


def daily_rows() -> int:
    with psycopg.connect(**PG_ADMIN, dbname=WAREHOUSE) as db:
        return db.execute("SELECT count(*) FROM daily").fetchone()[0]


# --- PostgreSQL: results ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        PG_URL,
        PG_URL.replace("postgresql://", "postgresql+psycopg://"),
        PG_URL.replace("postgresql://", "postgres://"),
    ],
    # Ids without the URL: it names the xdist worker's database, and every worker
    # must collect the same tests.
    ids=["postgresql", "postgresql+psycopg", "postgres"],
)
def test_single_value(warehouse, url):
    points = CONNECTOR.fetch(fetch_request(url, "SELECT sum(value) FROM daily"))

    assert points == [(None, Decimal("17.00"))]


def test_time_series(warehouse):
    points = CONNECTOR.fetch(fetch_request(warehouse, "SELECT day, value FROM daily ORDER BY day"))

    assert points == list(DAILY.items())


@pytest.mark.parametrize(
    ("where", "days"),
    [
        ("day >= :since AND day < :until", [3, 4]),
        ("day >= :since", [3, 4, 5]),
        ("day < :until", [1, 2, 3, 4]),
    ],
)
def test_since_and_until_are_bound(warehouse, where, days):
    query = f"SELECT day, value FROM daily WHERE {where} ORDER BY day"

    points = CONNECTOR.fetch(fetch_request(warehouse, query))

    assert [period for period, _ in points] == [date(2024, 1, day) for day in days]


@pytest.mark.parametrize(
    ("query", "value"),
    [
        ("SELECT 1.5::numeric", Decimal("1.5")),
        ("SELECT 42", 42),
        ("SELECT 2.5::float8", 2.5),
        ("SELECT '7'", "7"),
        # A percent sign must reach PostgreSQL as is (psycopg's placeholders are %s).
        ("SELECT count(*) FROM daily WHERE day::text LIKE '2024-01-0%'", 5),
    ],
)
def test_values_are_returned_raw(warehouse, query, value):
    [(period, got)] = CONNECTOR.fetch(fetch_request(warehouse, query))

    assert period is None
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize(
    "query", ["SELECT day, value FROM daily WHERE false", "SELECT value FROM daily WHERE false"]
)
def test_no_rows_is_an_empty_list(warehouse, query):
    assert CONNECTOR.fetch(fetch_request(warehouse, query)) == []


def test_max_points_is_the_limit(warehouse):
    query = "SELECT day, value FROM daily ORDER BY day"

    assert len(CONNECTOR.fetch(fetch_request(warehouse, query, max_points=5))) == 5
    with pytest.raises(PullError, match="returned more than 4 rows"):
        CONNECTOR.fetch(fetch_request(warehouse, query, max_points=4))


# --- PostgreSQL: refusals --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "statement"),
    [
        ("INSERT INTO daily VALUES ('2024-02-01', 9)", "INSERT"),
        # PostgreSQL names the outer statement when a CTE writes.
        ("WITH d AS (DELETE FROM daily RETURNING 1) SELECT count(*) FROM d", "SELECT"),
        ("UPDATE daily SET value = 0", "UPDATE"),
        ("CREATE TABLE sneaky (x int)", "CREATE TABLE"),
        ("DROP TABLE daily", "DROP TABLE"),
    ],
)
def test_writes_are_refused(warehouse, query, statement):
    with pytest.raises(PullError) as caught:
        CONNECTOR.fetch(fetch_request(warehouse, query))

    assert type(caught.value) is PullError
    # Readers get the SQLSTATE; the driver's words only in the editors' text.
    assert f"cannot execute {statement} in a read-only transaction" in caught.value.full
    assert "cannot execute" not in str(caught.value)
    assert str(caught.value).startswith("The query tried to write (SQLSTATE 25006;")
    assert str(caught.value).endswith("metric queries may only read.")
    assert daily_rows() == len(DAILY)


@pytest.mark.parametrize(
    "query",
    ["COMMIT; DELETE FROM daily", "ROLLBACK; DELETE FROM daily; SELECT 1"],
)
def test_several_statements_cannot_escape_the_read_only_transaction(warehouse, query):
    with pytest.raises(PullError, match="must be a single statement"):
        CONNECTOR.fetch(fetch_request(warehouse, query))

    assert daily_rows() == len(DAILY)


def test_statement_timeout(warehouse):
    with pytest.raises(PullError) as caught:
        CONNECTOR.fetch(fetch_request(warehouse, "SELECT pg_sleep(5)", timeout=1))

    assert type(caught.value) is PullError
    assert "The query ran longer than 1 s (METRICS_FETCH_TIMEOUT)" in str(caught.value)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT day, value, value * 2 AS doubled FROM daily",
            "The query returned 3 columns (day, value, doubled): return one value",
        ),
        ("SELECT value FROM daily", "The query returned 5 rows of one column: return one value"),
        ("SET LOCAL work_mem = '8MB'", "The query returned no result"),
        ("SELEC 1", 'The query failed (syntax error at or near "SELEC"'),
        ("SELECT x FROM nowhere", 'The query failed (relation "nowhere" does not exist'),
    ],
)
def test_unusable_queries(warehouse, query, message):
    with pytest.raises(PullError) as caught:
        CONNECTOR.fetch(fetch_request(warehouse, query))

    assert type(caught.value) is PullError
    assert message in caught.value.full


def test_driver_messages_quote_data_only_for_editors(warehouse):
    # A driver quotes the value it could not use, and a query decides what that is.
    with pytest.raises(PullError) as caught:
        CONNECTOR.fetch(fetch_request(warehouse, "SELECT CAST('Bearer leaked' AS numeric)"))

    assert "Bearer leaked" in caught.value.full
    assert str(caught.value) == (
        "The query failed (SQLSTATE 22P02; the database's message is shown to the "
        "source's editors)."
    )


def test_unreachable_server_is_transient():
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/{WAREHOUSE}"

    with pytest.raises(TransientPullError, match="Could not connect to the database"):
        CONNECTOR.fetch(fetch_request(url, "SELECT 1", timeout=2))


@pytest.mark.parametrize(
    ("url", "error_type", "message"),
    [
        (
            postgres.url("valuetree_no_such_database"),
            PullError,
            'database "valuetree_no_such_database" does not exist',
        ),
        ("postgresql://postgres@127.0.0.1:{port}/x", TransientPullError, "Connection refused"),
    ],
)
def test_password_never_appears_in_errors(warehouse, url, error_type, message):
    url = url.format(port=free_port())

    with pytest.raises(PullError) as caught:
        CONNECTOR.fetch(fetch_request(url, "SELECT 1", credentials={"password": SECRET}))

    assert type(caught.value) is error_type
    assert message in caught.value.full
    assert SECRET not in error_chain(caught.value) + caught.value.full


# --- SQLite ----------------------------------------------------------------------------


@pytest.fixture
def sqlite_warehouse(tmp_path):
    path = tmp_path / "warehouse.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE daily (day TEXT PRIMARY KEY, value REAL NOT NULL)")
        db.executemany(
            "INSERT INTO daily VALUES (?, ?)",
            [(day.isoformat(), float(value)) for day, value in DAILY.items()],
        )
    db.close()
    return path


def sqlite_rows(path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT count(*) FROM daily").fetchone()[0]
    finally:
        db.close()


def test_sqlite_single_value(sqlite_warehouse):
    url = f"sqlite:///{sqlite_warehouse}"

    assert CONNECTOR.fetch(fetch_request(url, "SELECT sum(value) FROM daily")) == [(None, 17.0)]


def test_sqlite_time_series_with_since_and_until(sqlite_warehouse):
    url = f"sqlite:///{sqlite_warehouse}"
    query = "SELECT day, value FROM daily WHERE day >= :since AND day < :until ORDER BY day"

    points = CONNECTOR.fetch(fetch_request(url, query))

    assert points == [("2024-01-03", 3.0), ("2024-01-04", 4.75)]


@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO daily VALUES ('2024-02-01', 9)",
        "DELETE FROM daily",
        "CREATE TABLE t (x)",
        # query_only alone lets ATTACH create a file anywhere the worker may write.
        "ATTACH '{outside}' AS elsewhere",
    ],
)
def test_sqlite_writes_are_refused(sqlite_warehouse, tmp_path, query):
    outside = tmp_path / "attached.sqlite3"
    with pytest.raises(PullError) as caught:
        CONNECTOR.fetch(
            fetch_request(f"sqlite:///{sqlite_warehouse}", query.format(outside=outside))
        )

    assert "not authorized" in caught.value.full
    assert str(caught.value).endswith("metric queries may only read.")
    assert sqlite_rows(sqlite_warehouse) == len(DAILY)
    assert not outside.exists()


@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://reader@db.example/dw?local_infile=1",
        "postgresql://reader@db.example/dw?sslkey=/etc/valuetree/key",
    ],
)
def test_driver_options_outside_the_allow_list_are_refused(url):
    with pytest.raises(ValidationError, match="is not accepted"):
        CONNECTOR.validate_source({"url": url}, {})


def test_an_account_dialect_needs_the_allow_list():
    from sqlalchemy.engine import make_url

    from outcomes.connectors import sql

    class Snowflake:
        name, driver = "snowflake", "snowflake"

    with pytest.raises(PullError, match="names an account"):
        sql._checked_host(make_url("snowflake://reader@myorg-acct/dw"), Snowflake)


def test_a_query_the_server_never_stops_is_cut_off_by_the_client(warehouse, monkeypatch):
    """As if the server ignored statement_timeout: only the client's deadline is left."""
    from outcomes.connectors import sql

    monkeypatch.setattr(sql, "_guard", lambda connection, timeout: None)
    with pytest.raises(PullError) as caught:
        CONNECTOR.fetch(fetch_request(PG_URL, "SELECT pg_sleep(30)", timeout=1))
    assert "s3cret" not in str(caught.value)


# --- PostgreSQL: accounts that can reach the server's files -----------------------------


def test_a_superuser_is_refused(warehouse):
    url = f"postgresql://postgres@127.0.0.1:5432/{WAREHOUSE}"
    with pytest.raises(PullError) as caught:
        CONNECTOR.fetch(fetch_request(url, "SELECT 1"))

    assert type(caught.value) is PullError
    assert str(caught.value).startswith("The database account has superuser,")
    assert "Connect with a read-only role" in str(caught.value)


@pytest.mark.parametrize(
    "role", ["pg_read_server_files", "pg_write_server_files", "pg_execute_server_program"]
)
def test_members_of_the_file_roles_are_refused(warehouse, role):
    name = f"valuetree_test_{role}"
    with psycopg.connect(**PG_ADMIN, dbname="postgres", autocommit=True) as admin:
        create_role(admin, name, role)
    url = f"postgresql://{name}@127.0.0.1:5432/{WAREHOUSE}"
    with pytest.raises(PullError, match=f"The database account has {role},"):
        CONNECTOR.fetch(fetch_request(url, "SELECT pg_read_file('/etc/hostname')"))


@pytest.mark.parametrize(
    ("function", "query"),
    [
        ("pg_read_file(text)", "SELECT length(pg_read_file('postgresql.auto.conf'))"),
        # pg_authid's file: every role's password hash, whatever the table's rights.
        ("pg_read_binary_file(text)", "SELECT length(pg_read_binary_file('global/1260'))"),
        ("pg_ls_dir(text)", "SELECT count(*) FROM pg_ls_dir('.')"),
    ],
)
def test_a_role_granted_a_server_file_function_is_refused(warehouse, function, query):
    """Since PostgreSQL 11 the file functions can be granted one by one (GRANT EXECUTE
    ON FUNCTION pg_read_file(text)): such a role reads the files of the data directory
    (the catalogs' own files among them), read-only transaction or not, without being
    in any predefined role."""
    name = f"valuetree_test_exec_{function.split('(')[0]}"
    with psycopg.connect(**PG_ADMIN, dbname="postgres", autocommit=True) as admin:
        create_role(admin, name)
    # Function rights belong to each database.
    with psycopg.connect(**PG_ADMIN, dbname=WAREHOUSE, autocommit=True) as admin:
        admin.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(
                sql.SQL(function), sql.Identifier(name)
            )
        )
    url = f"postgresql://{name}@127.0.0.1:5432/{WAREHOUSE}"
    with pytest.raises(PullError, match=f"has EXECUTE on {function.split('(')[0]}"):
        CONNECTOR.fetch(fetch_request(url, query))


def test_a_member_of_a_superuser_role_is_refused(warehouse):
    # It could become that role inside its query: SELECT set_config('role', ..., true).
    admin_role = "valuetree_test_admin"
    with psycopg.connect(**PG_ADMIN, dbname="postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [admin_role]).fetchone():
            admin.execute(
                sql.SQL("CREATE ROLE {} SUPERUSER NOLOGIN").format(sql.Identifier(admin_role))
            )
        create_role(admin, "valuetree_test_admin_member", admin_role)
    url = f"postgresql://valuetree_test_admin_member@127.0.0.1:5432/{WAREHOUSE}"
    query = f"SELECT set_config('role', '{admin_role}', true)"
    with pytest.raises(PullError, match=f"has membership in the superuser role {admin_role},"):
        CONNECTOR.fetch(fetch_request(url, query))


def test_a_role_without_those_privileges_reads(warehouse):
    with psycopg.connect(**PG_ADMIN, dbname=WAREHOUSE) as db:
        assert db.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = %s", [READER]
        ).fetchone() == (False,)
    assert CONNECTOR.fetch(fetch_request(PG_URL, "SELECT 1")) == [(None, 1)]


@pytest.mark.parametrize(
    ("grants", "privileges"),
    [
        (["GRANT USAGE ON *.* TO `reader`@`%`", "GRANT SELECT ON `w`.* TO `reader`@`%`"], []),
        (["GRANT FILE ON *.* TO `reader`@`%`"], ["FILE"]),
        (["GRANT SELECT, SUPER ON *.* TO 'r'@'localhost'"], ["SUPER"]),
        (
            ["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"],
            ["ALL PRIVILEGES"],
        ),
        (["GRANT ALL PRIVILEGES ON `w`.* TO `reader`@`%`"], []),  # one database: no FILE
    ],
)
def test_mysql_file_and_super_privileges_are_found(grants, privileges):
    assert sql_connector.mysql_privileges(grants) == privileges
