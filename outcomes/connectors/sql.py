"""SQL: one query against a warehouse through SQLAlchemy, read-only and time-limited.

The source's config is {"url": a SQLAlchemy URL without a password} and its credentials
{"password": "..."}: the password is merged in only at connect time, because the URL is
stored unencrypted. "postgresql://" (and Heroku-style "postgres://") means psycopg 3,
the driver this project depends on, whatever SQLAlchemy's default driver is.

The metric's query returns one value (one column, one row) or a time series
((period, value) rows). It may use :since and :until, bound as aware UTC datetimes (on
SQLite, as text 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC); write \\: for a literal colon.

Each pull opens one connection (NullPool), runs the query in a transaction that is
never committed, and closes the connection. How far the database itself enforces
"read only" and the time limit depends on the dialect:

- PostgreSQL: SET TRANSACTION READ ONLY and SET LOCAL statement_timeout. psycopg is made
  to prepare every statement (prepare_threshold=0) so that the extended protocol refuses
  "COMMIT; DELETE ...": several statements in one query would otherwise end the
  read-only transaction and run the rest outside it. Other PostgreSQL drivers do not get
  that guard. Behind PgBouncer in transaction mode this needs PgBouncer 1.21+ with
  max_prepared_statements set.
- SQLite: PRAGMA query_only and a progress handler that aborts past the deadline (the
  stdlib driver runs one statement per call).
- MySQL / MariaDB: SET SESSION TRANSACTION READ ONLY and max_execution_time (MySQL,
  SELECTs only) or max_statement_time (MariaDB).
- Snowflake: ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS; the transaction is the only
  write guard.
- Anything else (Trino, BigQuery, ...): only the uncommitted transaction, which several
  of these engines ignore. There the account in the URL MUST be read-only.

Everywhere, an account that may only read is the real guard; the rest is a safety net.
Accounts the read-only transaction cannot hold back are refused on connect: on
PostgreSQL a superuser, a member of a superuser role, a member of
pg_read_server_files, pg_write_server_files or pg_execute_server_program, or one
granted EXECUTE on a server file function (pg_read_file, pg_ls_dir, ...); on MySQL /
MariaDB one with FILE, SUPER or ALL PRIVILEGES on *.*.

Where a source may point: a SQLite file only inside METRICS_SQLITE_DIRS (never the
app's own database), and a network database only at a public address, unless the host
(or host:port) is in METRICS_ALLOWED_HOSTS — the same policy as outbound HTTP, checked
when the pull connects. psycopg is handed the checked address (hostaddr), so the name
cannot resolve elsewhere between the check and the connection; other drivers resolve
again themselves.

Drivers read the whole result into memory: a server-side cursor (DECLARE CURSOR) would
refuse writes with a syntax error instead of a clear message. max_points bounds what is
kept and the statement timeout bounds the work.
"""

from __future__ import annotations

import math
import os
import re
import socket
import sqlite3
import time
from datetime import UTC
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from sqlalchemy import DateTime, bindparam, create_engine, text
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, StatementError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import TextClause

from outcomes.connectors import http
from outcomes.connectors.base import (
    PERIOD_UNIT_OPTION,
    FetchRequest,
    PullError,
    RawPoint,
    TransientPullError,
    period_unit_problem,
)
from outcomes.credentials import redact

DEFAULT_MAX_POINTS = 10_000
PARAMETERS = ("since", "until")
URL_EXAMPLE = "postgresql://reader@db:5432/warehouse"
SHAPE_HINT = "return one value, or (period, value) rows for a time series"

# What to pip install when a dialect or its driver is missing, by "name+driver", then name.
PIP_PACKAGES = {
    "trino": "trino[sqlalchemy]",
    "snowflake": "snowflake-sqlalchemy",
    "bigquery": "sqlalchemy-bigquery",
    "databricks": "databricks-sqlalchemy",
    "redshift": "sqlalchemy-redshift",
    "redshift+redshift_connector": "redshift_connector",
    "clickhouse": "clickhouse-sqlalchemy",
    "duckdb": "duckdb-engine",
    "mysql": "mysqlclient",
    "mysql+mysqldb": "mysqlclient",
    "mysql+pymysql": "PyMySQL",
    "mysql+mysqlconnector": "mysql-connector-python",
    "mariadb": "mysqlclient",
    "mariadb+mysqldb": "mysqlclient",
    "mariadb+pymysql": "PyMySQL",
    "mariadb+mariadbconnector": "mariadb",
    "mssql": "pyodbc",
    "mssql+pyodbc": "pyodbc",
    "mssql+pymssql": "pymssql",
    "oracle": "oracledb",
    "oracle+oracledb": "oracledb",
    "oracle+cx_oracle": "cx_Oracle",
    "postgresql+psycopg2": "psycopg2-binary",
    "postgresql+pg8000": "pg8000",
}

# Some drivers take the password as a URL query parameter; it must not be stored there either.
PASSWORD_QUERY_KEYS = frozenset({"password", "passwd", "pwd"})

# Connection failures that the next try will not fix: the server answered and said no.
REFUSED_LOGIN = (
    "authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "access denied",
    "unknown database",
    "incorrect username or password",
    "permission denied",
    "unable to open database file",
)

# SQLSTATE classes that may pass on the next try: connection lost (08), serialization
# failure or deadlock (40), out of resources (53), server shutting down or starting (57P).
TRANSIENT_SQLSTATES = ("08", "40", "53", "57P")
MYSQL_READ_ONLY = 1792
MYSQL_TIMEOUTS = frozenset({3024, 1969})  # MySQL max_execution_time, MariaDB max_statement_time
MYSQL_CONNECTION_LOST = frozenset({2006, 2013})


class _UrlProblem(Exception):
    """The configured URL cannot be used; the message says why and never repeats the URL."""


class SqlConnector:
    kind = "sql"
    uses_window = True
    samples_periods = False

    def validate_source(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        errors: dict[str, str] = {}
        for key in sorted(set(config) - {"url"}):
            errors[f"config.{key}"] = "Unknown setting: a SQL source has only a url."
        for key in sorted(set(credentials) - {"password"}):
            errors[f"credentials.{key}"] = "Unknown credential: a SQL source takes only a password."
        password = credentials.get("password")
        if password is not None and not isinstance(password, str):
            errors["credentials.password"] = "The password must be text."
        try:
            url, dialect = _parse_url(config.get("url"))
        except _UrlProblem as problem:
            errors["config.url"] = str(problem)
        else:
            if dialect.name == "sqlite" and (problem := _sqlite_problem(url)):
                errors["config.url"] = problem
        if errors:
            raise ValidationError(errors)

    def validate_metric(self, query: str, options: dict[str, Any]) -> None:
        errors: dict[str, str] = {}
        for key in sorted(options):
            if key != PERIOD_UNIT_OPTION:
                errors[f"options.{key}"] = "Unknown option: a SQL metric has only period_unit."
        if problem := period_unit_problem(options):
            errors[f"options.{PERIOD_UNIT_OPTION}"] = problem
        if not isinstance(query, str) or not query.strip():
            errors["query"] = (
                "Enter the SQL query: one value, or (period, value) rows for a time series."
            )
        elif problem := _parameter_problem(query):
            errors["query"] = problem
        if errors:
            raise ValidationError(errors)

    def origin(self, config: dict[str, Any]) -> tuple[str, str, int | str | None] | None:
        """(dialect+driver and TLS options, host, port) as SQLAlchemy reads the URL when
        connecting, with the dialect's default port; for SQLite ("sqlite+pysqlite", "",
        the file's path).

        The TLS options (sslmode, sslrootcert, as written) belong to the "scheme", as
        https does: with a weaker one a server in between may ask the driver for the
        password in clear (libpq sends it when asked), so the password stays with them.
        """
        try:
            url, dialect = _parse_url(config.get("url"))
        except _UrlProblem:
            return None
        scheme = f"{dialect.name}+{dialect.driver}"
        if dialect.name == "sqlite":
            return scheme, "", os.path.realpath(url.database or "")
        tls = ";".join(f"{key}={url.query[key]!r}" for key in TLS_QUERY_KEYS if key in url.query)
        if tls:
            scheme = f"{scheme};{tls}"
        return scheme, (url.host or "").lower(), _port(url, dialect)

    def fetch(self, request: FetchRequest) -> list[RawPoint]:
        try:
            url, dialect = _parse_url(request.config.get("url"))
        except _UrlProblem as problem:
            raise PullError(str(problem)) from None
        if problem := _parameter_problem(request.query):
            raise PullError(problem)
        connect_args = _connect_args(dialect, request.timeout)
        if dialect.name == "sqlite":
            _require_sqlite_file(url)
        else:
            connect_args |= _checked_host(url, dialect)
        password = request.credentials.get("password") or ""
        if password:
            url = url.set(password=password)

        statement, used = _statement(request.query)
        params = {name: getattr(request, name).astimezone(UTC) for name in used}
        max_points = int(request.extra.get("max_points", DEFAULT_MAX_POINTS))
        engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
        try:
            columns, rows = _run(engine, statement, params, request.timeout, max_points, password)
        finally:
            engine.dispose()
        return _points(columns, rows, max_points)


def _parse_url(raw: object) -> tuple[URL, type[Dialect]]:
    """The URL to connect to and its dialect class, or _UrlProblem."""
    if not isinstance(raw, str) or not raw.strip():
        raise _UrlProblem(f"Enter a SQLAlchemy URL, e.g. {URL_EXAMPLE}.")
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):
        raise _UrlProblem(
            f"Not a SQLAlchemy URL: write dialect[+driver]://user@host:port/database, "
            f"e.g. {URL_EXAMPLE}."
        ) from None
    values = [url.username, url.host, url.database, *url.query]
    for value in url.query.values():
        values += value if isinstance(value, tuple) else [value]
    if any("\x00" in value for value in values if isinstance(value, str)):
        # %00 unquoted: no path, name or address holds one (os.path and drivers raise).
        raise _UrlProblem("The URL holds a NUL character (%00); remove it.")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise _UrlProblem("The port must be a number from 1 to 65535.")
    if url.password or PASSWORD_QUERY_KEYS & {key.lower() for key in url.query}:
        raise _UrlProblem(
            "Remove the password from the URL and put it in the credentials: "
            "the URL is stored unencrypted."
        )
    unknown = sorted(set(url.query) - URL_QUERY_KEYS)
    if unknown:
        # Driver options in the URL can open files or change what the driver trusts
        # (MySQL's local_infile lets a server read this server's files).
        raise _UrlProblem(
            f"The URL option {unknown[0]!r} is not accepted; allowed: "
            f"{', '.join(sorted(URL_QUERY_KEYS))}."
        )
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise _UrlProblem(_not_installed(url.drivername, url.get_backend_name())) from None
    if dialect.is_async:
        raise _UrlProblem(
            f"{dialect.driver} is an asyncio driver: use a synchronous one, "
            "e.g. postgresql+psycopg://."
        )
    try:
        dialect.import_dbapi()
    except ImportError:
        raise _UrlProblem(
            _not_installed(f"{dialect.name}+{dialect.driver}", dialect.name)
        ) from None
    return url, dialect


def _not_installed(drivername: str, backend: str) -> str:
    package = PIP_PACKAGES.get(drivername) or PIP_PACKAGES.get(backend)
    install = f': pip install "{package}"' if package else ""
    return f"The SQLAlchemy dialect or driver for {drivername} is not installed on this server{install}."


def _parameter_problem(query: str) -> str | None:
    unknown = sorted(set(text(query).compile().params) - set(PARAMETERS))
    if not unknown:
        return None
    names = ", ".join(f":{name}" for name in unknown)
    return f"Unknown parameter {names}: only :since and :until are bound (write \\: for a colon)."


def _statement(query: str) -> tuple[TextClause, list[str]]:
    """The query with typed :since/:until binds, and which of them it uses.

    Only the parameters the query names are passed, so a query without any works, and
    typing them lets SQLAlchemy render datetimes for SQLite, which has no datetime type.
    """
    statement = text(query)
    used = [name for name in PARAMETERS if name in statement.compile().params]
    binds = [bindparam(name, type_=DateTime(timezone=True)) for name in used]
    return statement.bindparams(*binds), used


def _sqlite_problem(url: URL) -> str | None:
    """Why a SQLite URL may not be read, or None: only files in METRICS_SQLITE_DIRS."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return "Give the path of a SQLite file; in-memory and URI databases hold no metrics."
    path = os.path.realpath(database)
    folders = [os.path.realpath(folder) for folder in settings.METRICS_SQLITE_DIRS]
    if not any(os.path.commonpath([path, folder]) == folder for folder in folders):
        return (
            f"SQLite files can only be read from {', '.join(folders) or 'nowhere'} "
            "(METRICS_SQLITE_DIRS)."
        )
    return None


def _require_sqlite_file(url: URL) -> None:
    if problem := _sqlite_problem(url):
        raise PullError(problem)
    # sqlite3 creates a missing file on connect: a typo would leave an empty database
    # behind and fail later with "no such table".
    if not os.path.isfile(url.database):
        raise PullError(f"There is no SQLite database file at {url.database}.")


# The port each dialect's driver uses when the URL gives none (443 for HTTP-based ones).
DEFAULT_PORTS = {
    "postgresql": 5432,
    "redshift": 5439,
    "mysql": 3306,
    "mariadb": 3306,
    "mssql": 1433,
    "oracle": 1521,
    "trino": 8080,
    "clickhouse": 8123,
}


def _port(url: URL, dialect: type[Dialect]) -> int:
    return url.port or DEFAULT_PORTS.get(dialect.name, 443)


# Dialects whose URL "host" names an account or project, not an address to check.
ACCOUNT_DIALECTS = {"snowflake", "bigquery", "databricks"}
# The options that decide how the connection is protected: part of a source's origin.
TLS_QUERY_KEYS = ("sslmode", "sslrootcert")
# The only options a SQL URL may carry (TLS, names, where to look).
URL_QUERY_KEYS = {
    "sslmode",
    "sslrootcert",
    "application_name",
    "charset",
    "warehouse",
    "role",
    "schema",
    "catalog",
    "http_path",
}


def _checked_host(url: URL, dialect: type[Dialect]) -> dict[str, Any]:
    """PullError unless the database's host is public or allow-listed; connect args that
    pin the checked address where the driver allows it."""
    if not url.host:
        raise PullError(
            "Give the database's host name in the URL; a local socket connection is refused."
        )
    port = _port(url, dialect)
    if dialect.name in ACCOUNT_DIALECTS:
        if http.host_allowed(url.host, port):
            return {}
        raise PullError(
            f"A {dialect.name} URL names an account ({url.host}), not an address this "
            f"server can check: an operator must allow it in METRICS_ALLOWED_HOSTS."
        )
    addresses = http.checked_addresses(url.host, port)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return {"hostaddr": addresses[0]}
    return {}


def _connect_args(dialect: type[Dialect], timeout: float) -> dict[str, Any]:
    seconds = max(1, math.ceil(timeout))
    match dialect.name, dialect.driver:
        case "postgresql", "psycopg":
            # prepare_threshold=0: see the module docstring (one statement per query).
            return {"connect_timeout": seconds, "prepare_threshold": 0}
        case "postgresql", "psycopg2":
            return {"connect_timeout": seconds}
        case "postgresql", "pg8000":
            return {"timeout": seconds}
        case (("mysql" | "mariadb"), ("mysqldb" | "pymysql")):
            return {"connect_timeout": seconds}
        case "sqlite", _:
            return {"timeout": timeout}  # how long to wait for a writer's lock
    return {}


def _run(
    engine: Engine,
    statement: TextClause,
    params: dict[str, Any],
    timeout: float,
    max_points: int,
    password: str,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    try:
        connection = engine.connect()
    except DBAPIError as error:
        raise _connect_error(error, password) from error
    # Leaving this block closes the connection without a commit: whatever the query did
    # is rolled back, also on the error paths. The deadline shuts the socket down on
    # the client side too: a server that never answers must not hold a worker thread.
    with connection, http.Deadline(timeout + 1) as deadline:
        if sock := _driver_socket(connection):
            deadline.track(sock)
        try:
            _guard(connection, timeout)
            result = connection.execute(statement, params)
            if not result.returns_rows:
                raise PullError(f"The query returned no result: a metric query must {SHAPE_HINT}.")
            columns = list(result.keys())
            rows = [tuple(row) for row in result.fetchmany(max_points + 1)]
            connection.rollback()
        except DBAPIError as error:
            raise _query_error(error, timeout, password) from error
        except StatementError as error:  # raised before reaching the database, e.g. binding
            message = _scrub(str(error.orig or error), password)
            raise PullError(
                f"The query could not be run ({_HIDDEN})",
                full=f"The query could not be run: {message}",
            ) from error
    return columns, rows


def _driver_socket(connection: Connection) -> socket.socket | None:
    """A duplicate of the driver's socket, to shut down at the deadline (psycopg, PyMySQL)."""
    raw = connection.connection.driver_connection
    fileno = getattr(getattr(raw, "pgconn", None), "socket", None)
    if fileno is None and isinstance(getattr(raw, "_sock", None), socket.socket):
        fileno = raw._sock.fileno()
    if not isinstance(fileno, int) or fileno < 0:
        return None
    return socket.socket(fileno=os.dup(fileno))


# SQLite actions a metric query may take: reading, and the functions it reads with.
_SQLITE_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
}


def _sqlite_authorizer(action: int, *args: Any) -> int:
    # query_only still lets ATTACH create a file anywhere: only reads get through.
    return sqlite3.SQLITE_OK if action in _SQLITE_ALLOWED else sqlite3.SQLITE_DENY


def _guard(connection: Connection, timeout: float) -> None:
    """Make the database refuse writes and stop the query at the deadline, where it can."""
    dialect = connection.dialect
    milliseconds = max(1, round(timeout * 1000))
    if dialect.name == "postgresql":
        # SET TRANSACTION must come first in the transaction, before any query.
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
        _refuse_privileged(_postgresql_privileges(connection))
    elif dialect.name == "sqlite":
        raw = connection.connection.driver_connection
        raw.execute("PRAGMA query_only = ON")
        deadline = time.monotonic() + timeout
        raw.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
        raw.set_authorizer(_sqlite_authorizer)
    elif dialect.name in ("mysql", "mariadb"):
        grants = [row[0] for row in connection.exec_driver_sql("SHOW GRANTS")]
        _refuse_privileged(mysql_privileges(grants))
        connection.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
        if getattr(dialect, "is_mariadb", False):
            connection.exec_driver_sql(f"SET SESSION max_statement_time = {timeout:g}")
        else:
            connection.exec_driver_sql(f"SET SESSION max_execution_time = {milliseconds}")
        # The session's read-only characteristic applies from the next transaction.
        connection.rollback()
    elif dialect.name == "snowflake":
        seconds = max(1, math.ceil(timeout))
        connection.exec_driver_sql(f"ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = {seconds}")


# A read-only transaction does not hold these back: a PostgreSQL superuser can run
# COPY ... TO PROGRAM (a shell command on the database host) and pg_read_file(), and
# members of these predefined roles read, write or run files on it (PostgreSQL 11+,
# "Predefined Roles"). MySQL's FILE privilege reads and writes the server's files
# (LOAD_FILE, INTO OUTFILE) and SUPER may lift read_only.
POSTGRESQL_PRIVILEGED_ROLES = (
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
)
# Functions of the server's files that PostgreSQL 11+ lets be granted one by one (GRANT
# EXECUTE ON FUNCTION): without pg_read_server_files they still read the data directory,
# the catalogs' own files included (global/1260 holds every role's password hash);
# adminpack's write, rename and delete files.
POSTGRESQL_FILE_FUNCTIONS = (
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "lo_import",
    "lo_export",
    "pg_file_write",
    "pg_file_rename",
    "pg_file_unlink",
    "pg_logdir_ls",
)
MYSQL_PRIVILEGED = ("ALL PRIVILEGES", "FILE", "SUPER")
_MYSQL_GLOBAL_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON \*\.\* TO ", re.IGNORECASE)


def _postgresql_privileges(connection: Connection) -> list[str]:
    """What the connected account has of: superuser, the predefined roles above,
    membership in a superuser role (a query could take it on with set_config('role')),
    and EXECUTE on a file function of POSTGRESQL_FILE_FUNCTIONS (granted to it or to a
    role it belongs to; function rights are the database's own)."""
    row = connection.exec_driver_sql(
        "SELECT r.rolsuper, ARRAY("
        "  SELECT p.rolname FROM pg_roles p"
        "  WHERE p.rolname = ANY(%(roles)s) AND pg_has_role(current_user, p.oid, 'MEMBER')"
        "  ORDER BY p.rolname"
        "), ARRAY("
        "  SELECT s.rolname FROM pg_roles s"
        "  WHERE s.rolsuper AND s.rolname <> current_user"
        "  AND pg_has_role(current_user, s.oid, 'MEMBER')"
        "  ORDER BY s.rolname"
        "), ARRAY("
        "  SELECT DISTINCT f.proname FROM pg_proc f"
        "  WHERE f.proname = ANY(%(functions)s)"
        "  AND f.pronamespace = 'pg_catalog'::regnamespace"
        "  AND has_function_privilege(current_user, f.oid, 'EXECUTE')"
        "  ORDER BY f.proname"
        ") FROM pg_roles r WHERE r.rolname = current_user",
        {
            "roles": list(POSTGRESQL_PRIVILEGED_ROLES),
            "functions": list(POSTGRESQL_FILE_FUNCTIONS),
        },
    ).one()
    if row[0]:
        return ["superuser"]  # which holds everything below
    superuser_roles = [f"membership in the superuser role {name}" for name in row[2]]
    functions = [f"EXECUTE on {name}()" for name in row[3]]
    return list(row[1]) + superuser_roles + functions


def mysql_privileges(grants: list[str]) -> list[str]:
    """The privileges in MYSQL_PRIVILEGED that SHOW GRANTS lines give on *.*."""
    found: set[str] = set()
    for grant in grants:
        match = _MYSQL_GLOBAL_GRANT.match(grant.strip())
        if not match:
            continue
        held = {p.strip().upper() for p in match["privileges"].split(",")}
        found |= held & set(MYSQL_PRIVILEGED)
    return sorted(found)


def _refuse_privileged(privileges: list[str]) -> None:
    if privileges:
        raise PullError(
            f"The database account has {', '.join(privileges)}, which let a query read or "
            "run files on the database server whatever the read-only transaction says. "
            "Connect with a read-only role that has only SELECT on what the metrics read."
        )


def _points(columns: list[str], rows: list[tuple[Any, ...]], max_points: int) -> list[RawPoint]:
    if not columns:
        raise PullError(f"The query returned no columns: {SHAPE_HINT}.")
    if len(columns) > 2:
        names = ", ".join(columns)
        raise PullError(f"The query returned {len(columns)} columns ({names}): {SHAPE_HINT}.")
    if len(columns) == 1:
        if len(rows) > 1:
            count = f"more than {max_points}" if len(rows) > max_points else str(len(rows))
            raise PullError(f"The query returned {count} rows of one column: {SHAPE_HINT}.")
        return [(None, row[0]) for row in rows]
    if len(rows) > max_points:
        raise PullError(
            f"The query returned more than {max_points} rows: aggregate in SQL "
            "(e.g. GROUP BY day) or narrow the window with :since."
        )
    return [(row[0], row[1]) for row in rows]


# Drivers quote data in their messages (`invalid input syntax for type numeric: "..."`),
# and a query can make a row say anything: readers get the SQLSTATE, editors the text.
_HIDDEN = "the database's message is shown to the source's editors"


def _split(
    kind: type[PullError], template: str, message: str, code: str, **extra: str
) -> PullError:
    """`template` with {message} as the driver's text for editors, and as only its code
    (and where to read the rest) for everyone else."""
    public = f"{code}; {_HIDDEN}" if code else _HIDDEN
    return kind(
        template.format(message=public, **extra), full=template.format(message=message, **extra)
    )


def _error_code(error: DBAPIError) -> str:
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate:
        return f"SQLSTATE {sqlstate}"
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return f"error {args[0]}"
    return ""


def _connect_error(error: DBAPIError, password: str) -> PullError:
    message = _driver_message(error, password)
    code = _error_code(error)
    if any(refusal in message.lower() for refusal in REFUSED_LOGIN):
        return _split(
            PullError,
            "The database refused the connection ({message}). Check the URL and the password.",
            message,
            code,
        )
    return _split(
        TransientPullError, "Could not connect to the database ({message}).", message, code
    )


def _query_error(error: DBAPIError, timeout: float, password: str) -> PullError:
    message = _driver_message(error, password)
    code = _error_code(error)
    lowered = message.lower()
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or ""
    args = getattr(orig, "args", ())
    mysql_code = args[0] if args and isinstance(args[0], int) else None

    if (
        sqlstate == "25006"
        or mysql_code == MYSQL_READ_ONLY
        or "read-only transaction" in lowered
        or "readonly database" in lowered
        or "not authorized" in lowered  # the SQLite authorizer: only reads pass
    ):
        return _split(
            PullError,
            "The query tried to write ({message}); metric queries may only read.",
            message,
            code,
        )
    if (
        (sqlstate == "57014" and "timeout" in lowered)
        or mysql_code in MYSQL_TIMEOUTS
        or lowered == "interrupted"  # SQLite: our progress handler hit the deadline
    ):
        return PullError(
            f"The query ran longer than {timeout:g} s (METRICS_FETCH_TIMEOUT): make it cheaper, "
            "e.g. filter with :since or aggregate less."
        )
    if "multiple commands" in lowered:
        return _split(PullError, "The query must be a single statement ({message}).", message, code)
    if (
        error.connection_invalidated
        or sqlstate.startswith(TRANSIENT_SQLSTATES)
        or mysql_code in MYSQL_CONNECTION_LOST
    ):
        return _split(
            TransientPullError,
            "The database connection failed during the query ({message}).",
            message,
            code,
        )
    return _split(PullError, "The query failed ({message}).", message, code)


def _driver_message(error: DBAPIError, password: str) -> str:
    # The driver's own message: SQLAlchemy's adds the SQL and a link to its docs.
    message = str(error.orig if error.orig is not None else error).strip()
    return _scrub(message, password)[:1000]


def _scrub(message: str, password: str) -> str:
    # No driver known to us echoes the password, but one that does must not leak it.
    return redact(message, [password])


CONNECTOR = SqlConnector()
