"""Writes to measures, metric sources and metrics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from outcomes import connectors
from outcomes.credentials import credentials_decrypt, credentials_encrypt, credentials_rotate
from outcomes.models import (
    Direction,
    Measure,
    Metric,
    MetricSource,
    SourceKind,
    Verdict,
    VerdictPolicy,
    VerdictStatus,
)
from outcomes.pulling import next_pull_after, schedule_validate
from valuetree.models import DataContract, Node, OutputPort, ValueTree
from valuetree.services import ItemsInvalid

MEASURE_FIELDS = (
    "name",
    "unit",
    "direction",
    "baseline_value",
    "baseline_date",
    "target_value",
    "target_date",
    "kind",
    "weight",
    "is_guardrail",
    "is_value_measure",
    "metric",
)


def measure_validate(measure: Measure) -> None:
    """Field checks plus the rules that tie fields together, with messages a user can act on."""
    measure.full_clean()
    if measure.metric_id is not None and measure.metric.source.tree_id != measure.node.tree_id:
        raise ValidationError({"metric": "Choose a metric of this tree."})
    _measure_rules(measure)


def _measure_rules(measure: Measure) -> None:
    if measure.direction == Direction.INCREASE and measure.target_value <= measure.baseline_value:
        raise ValidationError(
            {"target_value": "An 'increase' measure needs a target above its baseline."}
        )
    if measure.direction == Direction.DECREASE and measure.target_value >= measure.baseline_value:
        raise ValidationError(
            {"target_value": "A 'decrease' measure needs a target below its baseline."}
        )


def _measure_build(*, node_id: int, position: int, fields: dict[str, Any]) -> Measure:
    unknown = set(fields) - set(MEASURE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
    measure = Measure(node_id=node_id, position=position, **fields)
    measure_validate(measure)
    return measure


@transaction.atomic
def measure_create(*, node: Node, **fields: Any) -> Measure:
    top = Measure.objects.filter(node=node).aggregate(top=Max("position"))["top"]
    measure = _measure_build(node_id=node.pk, position=0 if top is None else top + 1, fields=fields)
    measure.save()
    return measure


# Editing these changes the question a verdict answers, or the words of its stored
# reason ("Flat at 30.5% since …" carries the unit): the measure is re-evaluated once
# the edit commits (the other fields only rename or describe it).
QUESTION_FIELDS = (
    "unit",
    "direction",
    "baseline_value",
    "baseline_date",
    "target_value",
    "target_date",
    "weight",
    "is_guardrail",
    "metric_id",
)


def _question(measure: Measure) -> tuple[Any, ...]:
    return tuple(str(getattr(measure, name)) for name in QUESTION_FIELDS)


@transaction.atomic
def measure_update(*, measure: Measure, **fields: Any) -> Measure:
    """Change a measure's fields; when its question changes (QUESTION_FIELDS), queue its
    re-evaluation after the transaction commits.

    Raises ValidationError for unknown fields or values that contradict each other.
    """
    from outcomes import tasks

    unknown = set(fields) - set(MEASURE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be changed here."))
    before = _question(measure)
    for name, value in fields.items():
        setattr(measure, name, value)
    measure_validate(measure)
    measure.save()
    # full_clean() gave every field its Python type, so equal values compare equal.
    if _question(measure) != before:
        measure_ids = [measure.pk]
        transaction.on_commit(lambda: tasks.evaluate_measures.delay(measure_ids))
    return measure


def measure_reevaluate(*, measure: Measure) -> int:
    """Evaluate one measure now (the editors' "re-evaluate" button); verdicts written."""
    from outcomes.evaluation import measures_evaluate

    return measures_evaluate(measure_ids=[measure.pk])


def measure_evaluate_after_save(*, measure: Measure) -> int:
    """Evaluate a measure just saved in this request, so the page it returns to shows
    its verdict: one with a metric (its values may go back years), or one whose metric
    was taken away while a verdict from it is current (it has no data now). Verdicts
    written (0 when there is nothing to evaluate)."""
    if measure.metric_id or (
        Verdict.objects.filter(measure=measure, is_current=True)
        .exclude(status=VerdictStatus.NO_DATA)
        .exists()
    ):
        return measure_reevaluate(measure=measure)
    return 0


def measure_delete(*, measure: Measure) -> None:
    measure.delete()


def measures_create_for_new_nodes(items: list[tuple[int, int, dict[str, Any]]]) -> list[Measure]:
    """Create many measures, each ``(node id, position, fields)``, on nodes a tree
    import has just created, in bulk (with their history): the fields are checked as
    ``measure_create`` checks them, without a query per measure for the node, which
    the import made, or for the metric, which an import never sets.

    Raises ItemsInvalid (a ValidationError) naming the items refused by index.
    """
    measures: list[Measure] = []
    errors: dict[int, ValidationError] = {}
    for index, (node_id, position, fields) in enumerate(items):
        try:
            unknown = set(fields) - set(MEASURE_FIELDS) | ({"metric"} & set(fields))
            if unknown:
                raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
            measure = Measure(node_id=node_id, position=position, **fields)
            measure.clean_fields(exclude=["node", "metric"])
            measure.clean()
            _measure_rules(measure)
        except ValidationError as error:
            errors[index] = error
            continue
        measures.append(measure)
    if errors:
        raise ItemsInvalid(errors)
    return bulk_create_with_history(measures, Measure, batch_size=500)


def measure_create_at(node_id: int, position: int, fields: dict[str, Any]) -> Measure:
    """Create a measure at a given position (tree import, where the node is new)."""
    measure = _measure_build(node_id=node_id, position=position, fields=fields)
    measure.save()
    return measure


# --- Metric sources -------------------------------------------------------------------

SOURCE_FIELDS = ("kind", "name", "config")
METRIC_FIELDS = (
    "name",
    "query",
    "options",
    "unit",
    "granularity",
    "schedule_interval",
    "schedule_cron",
    "timezone",
    "expected_frequency",
    "is_active",
)


def _source_validate(source: MetricSource, credentials: dict[str, Any]) -> None:
    source.full_clean(exclude=["credentials_encrypted"])
    if not isinstance(source.config, dict):
        raise ValidationError({"config": "The configuration must be an object."})
    if not isinstance(credentials, dict):
        raise ValidationError({"credentials": "The credentials must be an object."})
    connectors.get(source.kind).validate_source(source.config, credentials)


@transaction.atomic
def metric_source_create(
    *,
    tree: ValueTree,
    kind: str,
    name: str,
    config: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
    owner: Any = None,
    output_port: OutputPort | None = None,
) -> MetricSource:
    source = MetricSource(
        tree=tree,
        kind=kind,
        name=name,
        config=config or {},
        owner=owner,
        output_port=output_port,
    )
    _source_validate(source, credentials or {})
    source.credentials_encrypted = credentials_encrypt(credentials or {})
    source.save()
    return source


@transaction.atomic
def metric_source_update(
    *, source: MetricSource, credentials: dict[str, Any] | None = None, **fields: Any
) -> MetricSource:
    """Change a source. `credentials=None` keeps the stored ones; `{}` clears them."""
    unknown = set(fields) - {"name", "config", "owner"}
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed here."))
    for name, value in fields.items():
        setattr(source, name, value)
    kept = credentials is None
    if (
        kept
        and source.credentials_encrypted
        and not _same_origin(source, MetricSource.objects.get(pk=source.pk).config)
    ):
        # Stored secrets go only where they were entered for: otherwise an editor who
        # never saw them could point the source at a server of their own and read them.
        raise ValidationError(
            {
                "credentials": "The address changed: enter the credentials again (or send "
                "{} to remove them); stored ones are never sent to a new address."
            }
        )
    effective = credentials_decrypt(source.credentials_encrypted) if kept else credentials
    _source_validate(source, effective)
    if not kept:
        source.credentials_encrypted = credentials_encrypt(credentials)
    source.save()
    return source


def _same_origin(source: MetricSource, stored_config: Any) -> bool:
    """Whether the source's new address reaches the same origin as the stored one, read
    by the parser its connector connects with (connectors' `origin`)."""
    connector = connectors.get(source.kind)
    new = connector.origin(source.config if isinstance(source.config, dict) else {})
    return new is not None and new == connector.origin(stored_config)


# Up to this many measures, an edit's re-evaluation runs in this process right after the
# commit, so the pages the editor goes to next show the new verdicts (as a saved
# measure's, services.measure_evaluate_after_save): the measures of one metric share
# one fit, and 100 cost ~10-25 ms and a constant 9-10 queries (SQLite and PostgreSQL,
# measured). More go to the `verdicts` queue: a large fan-out (a source's every
# metric, a widely used one) would hold a web worker, and on the embedded SQLite its
# one write lock, for as long as the worker takes.
REEVALUATE_IN_PROCESS_UP_TO = 100


def _reevaluate_after_commit(measures: Any) -> None:
    """Re-evaluate these measures once the transaction commits: in this process when
    they are few (``REEVALUATE_IN_PROCESS_UP_TO``), otherwise on the queue."""
    from outcomes import tasks
    from outcomes.evaluation import measures_evaluate

    measure_ids = list(measures.values_list("pk", flat=True))
    if not measure_ids:
        return
    if len(measure_ids) <= REEVALUATE_IN_PROCESS_UP_TO:
        transaction.on_commit(lambda: measures_evaluate(measure_ids=measure_ids))
    else:
        transaction.on_commit(lambda: tasks.evaluate_measures.delay(measure_ids))


@transaction.atomic
def metric_source_delete(*, source: MetricSource) -> None:
    """Delete a source and its metrics; the measures they fed are left without a metric
    and re-evaluated (no data), so no verdict from deleted values stays current."""
    _reevaluate_after_commit(Measure.objects.filter(metric__source=source))
    source.delete()


def credentials_rotate_all() -> int:
    """Re-encrypt every source's credentials with the newest key; how many were rewritten."""
    rotated = 0
    for source in MetricSource.objects.exclude(credentials_encrypted="").only(
        "id", "credentials_encrypted"
    ):
        MetricSource.objects.filter(pk=source.pk).update(
            credentials_encrypted=credentials_rotate(source.credentials_encrypted)
        )
        rotated += 1
    return rotated


# --- Metric sources from data products ------------------------------------------------

# ODCS v3 server types, by the SQLAlchemy dialect+driver that reads them. Whether that
# dialect is installed is left to the SQL connector, whose message says what to install.
ODCS_SQL_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "sqlserver": "mssql+pymssql",
    "synapse": "mssql+pymssql",
    "redshift": "redshift+psycopg2",
    "trino": "trino",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "duckdb": "duckdb",
}
# ODCS has no SQLite server type: a `local` or `custom` server with one of these formats
# (or a non-standard `type: sqlite`) names a SQLite file by its `path`.
SQLITE_FORMATS = {"sqlite", "sqlite3"}
DEFAULT_SERVER_PORTS = {"redshift": 5439}


def _server_label(server: dict[str, Any]) -> str:
    return str(server.get("server") or "(unnamed)")


def _server_field(server: dict[str, Any], *names: str) -> str:
    """The first of the server's fields that is set, or a ValidationError naming them."""
    for name in names:
        value = server.get(name)
        if value not in (None, ""):
            return str(value)
    raise ValidationError(
        {
            "server": f"The server “{_server_label(server)}” in the contract has no "
            f"{' or '.join(names)}: add it to the data contract, or add the source by its URL."
        }
    )


def _is_sqlite(server: dict[str, Any]) -> bool:
    kind = str(server.get("type") or "").lower()
    file_format = str(server.get("format") or "").lower()
    return kind == "sqlite" or (kind in ("local", "custom") and file_format in SQLITE_FORMATS)


def contract_server_url(server: dict[str, Any], *, username: str = "") -> str:
    """The SQLAlchemy URL (without a password) of a data contract's server (ODCS v3).

    postgres(ql) → postgresql+psycopg://[user@]host[:port]/database. The ODCS `schema`
    is left out: a search_path needs the `options` URL parameter, which the SQL
    connector's URL allow-list refuses (it lets drivers be handed arbitrary settings),
    so a metric's query names its tables with their schema (`schema.table`). Trino and
    Snowflake take the schema in the URL's path; BigQuery takes project/dataset.

    SQLite is not an ODCS server type: a `local` or `custom` server with format `sqlite`
    (or a non-standard `type: sqlite`) and an absolute `path` (else `database` or
    `location`) becomes sqlite:///path.
    """
    from sqlalchemy.engine import URL

    kind = str(server.get("type") or "").lower()
    user = username or None
    if _is_sqlite(server):
        path = _server_field(server, "path", "database", "location").removeprefix("file://")
        if not path.startswith("/"):
            raise ValidationError(
                {
                    "server": f"The server “{_server_label(server)}” gives the SQLite file as "
                    f"{path!r}: the contract must give its absolute path."
                }
            )
        url = URL.create("sqlite", database=path)
    elif kind not in ODCS_SQL_DRIVERS:
        raise ValidationError(
            {
                "server": f"The server “{_server_label(server)}” is of type “{kind or '(none)'}”, "
                f"not a SQL database this service can query. Choose a server of type "
                f"{', '.join(sorted({*ODCS_SQL_DRIVERS, 'sqlite'}))}."
            }
        )
    elif kind == "duckdb":
        url = URL.create("duckdb", database=_server_field(server, "database", "path"))
    elif kind == "snowflake":
        database = _server_field(server, "database")
        schema = server.get("schema")
        warehouse = server.get("warehouse")
        url = URL.create(
            "snowflake",
            username=user,
            host=_server_field(server, "account", "host"),
            database=f"{database}/{schema}" if schema else database,
            query={"warehouse": str(warehouse)} if warehouse else {},
        )
    elif kind == "bigquery":
        url = URL.create(
            "bigquery",
            host=_server_field(server, "project"),
            database=_server_field(server, "dataset"),
        )
    else:
        if kind == "trino":
            catalog = _server_field(server, "catalog")
            schema = server.get("schema")
            database = f"{catalog}/{schema}" if schema else catalog
        else:
            database = _server_field(server, "database")
        port = server.get("port") or DEFAULT_SERVER_PORTS.get(kind)
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise ValidationError(
                {"server": f"The server “{_server_label(server)}” has no valid port: {port!r}."}
            )
        url = URL.create(
            ODCS_SQL_DRIVERS[kind],
            username=user,
            host=_server_field(server, "host"),
            port=port,
            database=database,
        )
    return url.render_as_string(hide_password=False)


def contract_servers(port: OutputPort) -> list[dict[str, Any]]:
    """The servers in the port's data contract, or a ValidationError on `port`."""
    contract = DataContract.objects.filter(output_port=port).first()
    if contract is None:
        raise ValidationError(
            {
                "port": f"The port “{port.name}” of {port.data_product.name} has no data "
                "contract: its owner must add one, with the servers it is served from."
            }
        )
    servers = [server for server in contract.servers or [] if isinstance(server, dict)]
    if not servers:
        raise ValidationError(
            {
                "port": f"The data contract of the port “{port.name}” lists no servers: its "
                "owner must add the server the port is served from."
            }
        )
    return servers


def _contract_server(servers: list[dict[str, Any]], name: str | None) -> dict[str, Any]:
    names = ", ".join(_server_label(server) for server in servers)
    if not name:
        if len(servers) == 1:
            return servers[0]
        raise ValidationError(
            {"server": f"The contract lists several servers ({names}): choose one."}
        )
    for server in servers:
        if server.get("server") == name:
            return server
    raise ValidationError(
        {"server": f"The contract has no server “{name}”; choose one of: {names}."}
    )


def metric_source_from_port(
    *,
    tree: ValueTree,
    port: OutputPort,
    server: str | None = None,
    name: str = "",
    username: str = "",
    credentials: dict[str, Any] | None = None,
    owner: Any = None,
) -> MetricSource:
    """A SQL source reading the server of a data product's output port, as its data
    contract gives it (`server` by name; the only one when left out).

    The URL is built by contract_server_url and then goes through metric_source_create
    like any other: the connector's checks (drivers, URL options, SQLite folders) apply
    here and the reach policy at each pull. The product need not be linked to a node of
    the tree: measures may be fed by products that serve other trees. Errors name
    `port`, `server`, `name` or `credentials.password`.
    """
    servers = contract_servers(port)
    url = contract_server_url(_contract_server(servers, server), username=username)
    if not name:
        name = f"{port.data_product.name}: {port.name}"
        if len(servers) > 1:
            name = f"{name} ({server})"
    try:
        return metric_source_create(
            tree=tree,
            kind=SourceKind.SQL,
            name=name,
            config={"url": url},
            credentials=credentials,
            owner=owner,
            output_port=port,
        )
    except ValidationError as error:
        # The URL came from the contract: its problems are the chosen server's.
        if not hasattr(error, "error_dict"):
            raise
        raise ValidationError(
            {
                ("server" if key in ("config", "config.url") else key): messages
                for key, messages in error.error_dict.items()
            }
        ) from None


# --- Metrics --------------------------------------------------------------------------


def _metric_validate(metric: Metric) -> None:
    # The schedule first: its messages say more than the constraints that back it up.
    schedule_validate(
        interval=metric.schedule_interval,
        cron=metric.schedule_cron,
        zone_name=metric.timezone,
        pulled=metric.source.kind != SourceKind.PUSH,
    )
    metric.full_clean()
    if metric.expected_frequency is not None and not (
        timedelta(minutes=1) <= metric.expected_frequency <= timedelta(days=3660)
    ):
        raise ValidationError(
            {"expected_frequency": "Give between one minute and ten years (3660 days)."}
        )
    if not isinstance(metric.options, dict):
        raise ValidationError({"options": "The options must be an object."})
    connectors.get(metric.source.kind).validate_metric(metric.query, metric.options)


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(METRIC_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))


@transaction.atomic
def metric_create(*, source: MetricSource, **fields: Any) -> Metric:
    """A new metric; a pulled one is due at once, so its first value comes within a minute."""
    _check_fields(fields)
    metric = Metric(source=source, **fields)
    _metric_validate(metric)
    if source.kind != SourceKind.PUSH and metric.is_active:
        metric.next_pull_at = timezone.now()
    metric.save()
    return metric


# A verdict is stale when the newest value is older than these allow
# (evaluation._staleness): editing one re-evaluates the measures the metric feeds.
STALENESS_FIELDS = ("expected_frequency", "schedule_interval", "schedule_cron", "granularity")


@transaction.atomic
def metric_update(*, metric: Metric, **fields: Any) -> Metric:
    """Change a metric's fields; a new schedule sets the next pull, and a change to what
    makes its measures stale (``STALENESS_FIELDS``) re-evaluates them after the
    transaction commits (in this process when they are few: ``_reevaluate_after_commit``).
    Raises ValidationError."""
    _check_fields(fields)
    schedule_changed = any(
        name in fields and fields[name] != getattr(metric, name)
        for name in ("schedule_interval", "schedule_cron", "timezone", "is_active")
    )
    staleness_before = [getattr(metric, name) for name in STALENESS_FIELDS]
    for name, value in fields.items():
        setattr(metric, name, value)
    _metric_validate(metric)
    # Only what the caller changed: the claim and health columns belong to the pull
    # path, and this copy of them may be stale.
    changed = [*fields, "updated_at"]
    if schedule_changed:
        pulled = metric.source.kind != SourceKind.PUSH and metric.is_active
        metric.next_pull_at = next_pull_after(metric, timezone.now()) if pulled else None
        changed.append("next_pull_at")
    metric.save(update_fields=changed)
    # full_clean() gave every field its Python type, so equal values compare equal.
    if [getattr(metric, name) for name in STALENESS_FIELDS] != staleness_before:
        _reevaluate_after_commit(metric.measures.all())
    return metric


@transaction.atomic
def metric_delete(*, metric: Metric) -> None:
    """Delete a metric; the measures it fed are left without one and re-evaluated (no
    data), so no verdict from its deleted values stays current."""
    _reevaluate_after_commit(metric.measures.all())
    metric.delete()


# --- Verdict policy -------------------------------------------------------------------


def verdict_policy_set(
    *,
    tree_id: int,
    on_track_within: float,
    at_risk_within: float,
    on_track_probability: float | None = None,
    at_risk_probability: float | None = None,
) -> VerdictPolicy:
    """Set a tree's verdict thresholds and queue new verdicts for its measures: they
    change statuses now, not at the next daily run. Probabilities left out keep their
    current (or default) values. Raises ValidationError when the bands do not nest."""
    from outcomes import tasks

    current = VerdictPolicy.objects.filter(tree_id=tree_id).first() or VerdictPolicy()
    bands = {
        "on_track_within": on_track_within,
        "at_risk_within": at_risk_within,
        "on_track_probability": current.on_track_probability
        if on_track_probability is None
        else on_track_probability,
        "at_risk_probability": current.at_risk_probability
        if at_risk_probability is None
        else at_risk_probability,
    }
    if not 0 <= on_track_within <= at_risk_within <= 1:
        raise ValidationError(
            {"at_risk_within": "Give 0 ≤ the on-track band ≤ the at-risk band ≤ 100 %."}
        )
    if not 0 <= bands["at_risk_probability"] <= bands["on_track_probability"] <= 1:
        raise ValidationError(
            {"at_risk_probability": "Give 0 ≤ the at-risk chance ≤ the on-track chance ≤ 100 %."}
        )
    VerdictPolicy(tree_id=tree_id, **bands).full_clean(validate_unique=False)
    with transaction.atomic():
        policy, _ = VerdictPolicy.objects.update_or_create(tree_id=tree_id, defaults=bands)
        measure_ids = list(
            Measure.objects.filter(node__tree_id=tree_id).values_list("id", flat=True)
        )
        if measure_ids:
            transaction.on_commit(lambda: tasks.evaluate_measures.delay(measure_ids))
    return policy


# --- A measure's numbers in one flow (the measure dialog) -------------------------------

# The push source a measure's in-place metric goes into, one per tree.
CHECK_IN_SOURCE = "Check-ins"


@transaction.atomic
def push_metric_create(*, tree: ValueTree, name: str, unit: str = "", owner: Any = None) -> Metric:
    """A push metric in the tree's "Check-ins" source (created when missing), for values
    checked in by hand or sent to the API: what the measure dialog's "new push metric"
    makes. Raises ValidationError (e.g. a name the source already has)."""
    source = MetricSource.objects.filter(
        tree=tree, name=CHECK_IN_SOURCE, kind=SourceKind.PUSH
    ).first() or metric_source_create(
        tree=tree, kind=SourceKind.PUSH, name=CHECK_IN_SOURCE, owner=owner
    )
    if source.metrics.filter(name=name).exists():
        raise ValidationError(
            {
                "new_metric": f"The {CHECK_IN_SOURCE} source has a metric named {name!r}: pick it above."
            }
        )
    try:
        return metric_create(source=source, name=name, unit=unit, granularity="day")
    except ValidationError as error:
        # The dialog's field for this name is "new_metric": its "name" is the measure's.
        if not hasattr(error, "error_dict"):
            raise
        raise ValidationError(
            {
                ("new_metric" if key == "name" else key): value
                for key, value in error.error_dict.items()
            }
        ) from error
