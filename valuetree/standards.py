"""Data products as Bitol ODPS and data contracts as Bitol ODCS, in and out (YAML or JSON).

**ODPS v1.0.0 ↔ DataProduct** (a YAML stream may hold several products: one per
``---`` document, or a list of them in one document)::

    apiVersion: v1.0.0          # v0.9.0 is read too; v1.0.0 is written
    kind: DataProduct
    id: orders                  # ↔ slug (must be a valid slug)
    name: Orders                # ↔ name (required here)
    version: 1.2.0              # ↔ version
    status: active              # ↔ stage: proposed=discovery, draft=design (and build),
                                #   active=live, deprecated, retired
    domain: sales               # ↔ Domain.slug (or its name); it must exist (required here)
    description:
      purpose: …                # ↔ purpose
      usage: …                  # ↔ description
    team:                       # v1.0.0: an object (RFC-0016); v0.9.0: the members list
      name: Team Checkout       # ↔ owning_team (unless the owningTeam property says)
      members:
        - {username: alice, role: owner}   # ↔ owner; the user must exist
    outputPorts:                # tags, customProperties, authoritativeDefinitions: read, not kept
      - name: orders-table      # ↔ OutputPort.name
        version: 1.0.0          # the port's contract version; a new contract's version
        type: table             # ↔ OutputPort.kind
        contractId: orders-v1   # ↔ the port's DataContract.contract_id
    customProperties:           # what ODPS has no field for, so a round trip is exact
      - {property: productType, value: aggregate}
      - {property: lifecycleStage, value: build}      # the exact stage; must fit status
      - {property: owningTeam, value: Team Checkout}
      - {property: outputPortLocations, value: {orders-table: warehouse.sales.orders}}

Other ODPS fields (tenant, tags, inputPorts, managementPorts, support, other team
members, limitations, other custom properties) are accepted and not kept. A key ODPS
does not define is an error. An import upserts by ``id``: an existing product is
updated (only by someone who may edit it), a new one is created, owned by the team's
``owner`` or else by the importing user. A field left out leaves an existing product's
value as it is; ``outputPorts``, when given, is the whole list of ports (matched by
name, so a kept port keeps its contract). A ``contractId`` on a port without a
contract creates a draft contract with that id (its ODCS import fills it in); on a
port with a contract it renames that contract. A stage change goes through
``services.data_product_transition`` (so its lifecycle rules apply).

**ODCS v3.0.x and v3.1.0 ↔ DataContract**: ``apiVersion`` ↔ api_version (an export
says the version the contract was written in), ``id`` ↔ contract_id, ``name``, ``version``,
``status``, ``description.purpose`` ↔ purpose, and ``schema``, ``slaProperties``,
``team``, ``servers`` kept in ODCS's own shapes (checked: lists of mappings, the keys
ODCS requires, the types of the keys it defines; other keys are kept as they are).
v3.1.0 adds the ``team`` object (``name``, ``members``…; the list is still read) and
the logical types ``timestamp`` and ``time``, and more server types. After our own
checks a document is held to Bitol's Pydantic model (``open-data-contract-standard``).
``dataProduct`` is the product's name or its slug, ``domain`` its domain's (name or slug), and the custom property
``outputPort`` names the port. Which port a contract attaches to:

1. a contract with the document's ``id`` exists → its port (naming another port is
   an error at ``id``);
2. otherwise the port named by the caller (``--port``, the API URL), else by the
   ``outputPort`` custom property, of the product named by the caller, else by
   ``dataProduct``. A port that does not exist is created only when the caller asks
   (with a kind); a port that already has a contract gets this one in its place.

Every import is validated whole first (every problem, each named by its path —
``outputPorts[1].type``, prefixed by the product's index when there are several,
``[2].status`` — and, for YAML, its line), then written in one transaction, so a
refused import writes nothing. ``user=None`` is the operator at ``manage.py``, who
may change every product.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from open_data_contract_standard.model import OpenDataContractStandard
from pydantic import ValidationError as PydanticValidationError
from rest_framework import serializers

from valuetree import documents, selectors, services

# Shared with the tree documents: the same path syntax, line lookup and checks.
from valuetree.interchange import DocumentValidator as BaseValidator
from valuetree.interchange import ImportFailed, Item, Problem, flatten_errors, item_list, quote_it
from valuetree.interchange import join_path as join
from valuetree.models import (
    DataContract,
    DataProduct,
    DataProductType,
    Domain,
    LifecycleStage,
    OutputPort,
)

ODPS_API_VERSION = "v1.0.0"
ODPS_API_VERSIONS = ("v0.9.0", "v1.0.0")
ODCS_API_VERSION = "v3.0.2"
ODCS_API_VERSIONS = ("v3.0.0", "v3.0.1", "v3.0.2", "v3.1.0")
STATUSES = ("proposed", "draft", "active", "deprecated", "retired")
STATUS_TO_STAGE = {
    "proposed": LifecycleStage.DISCOVERY,
    "draft": LifecycleStage.DESIGN,
    "active": LifecycleStage.LIVE,
    "deprecated": LifecycleStage.DEPRECATED,
    "retired": LifecycleStage.RETIRED,
}
STAGE_TO_STATUS = {
    LifecycleStage.DISCOVERY: "proposed",
    LifecycleStage.DESIGN: "draft",
    LifecycleStage.BUILD: "draft",
    LifecycleStage.LIVE: "active",
    LifecycleStage.DEPRECATED: "deprecated",
    LifecycleStage.RETIRED: "retired",
}
YAML_CONTENT_TYPE = "application/yaml; charset=utf-8"


class Forbidden(Problem):
    """A problem no change to the document fixes: the user may not change this object."""


# --- Parsing -----------------------------------------------------------------------


def parse_stream(raw: bytes | str, *, fmt: str = "yaml") -> tuple[list[Any], list[dict[str, int]]]:
    """The documents of a YAML stream (or one JSON document) and, per document, the
    line of every path in it, read by the safe loader (``valuetree.documents``).
    Empty YAML documents (a trailing ``---``) are skipped; no document at all is an
    ImportFailed "The document is empty"."""
    loaded = documents.load(raw, fmt=fmt, stream=True)
    return [data for data, _ in loaded], [lines for _, lines in loaded]


def _prefixed(lines: dict[str, int], prefix: str) -> dict[str, int]:
    if not prefix:
        return lines
    return {
        (f"{prefix}{key}" if key.startswith("[") else f"{prefix}.{key}"): line
        for key, line in lines.items()
    }


# --- Validation --------------------------------------------------------------------


class Validator(BaseValidator):
    """Collects every problem of a whole import before anything is written."""

    def __init__(self, lines: Mapping[str, int]) -> None:
        super().__init__(lines)
        self.domains: dict[str, list[str]] = {}  # slug -> paths that name it
        self.property_spec = PROPERTY_SPEC  # ODCS v3.0.x; v3.1.0 sets its own

    def forbid(self, path: str, message: str) -> None:
        self.problems.append(Forbidden(path, message, self.line_of(path)))

    def plain(self, value: Any, path: str) -> Any:
        """``value`` as JSON can hold it: no NaN or infinity, dates as ISO text (YAML
        reads ``2026-01-01`` as a date), text keys only."""
        if isinstance(value, float) and not math.isfinite(value):
            self.add(path, "Numbers must be finite: NaN and infinity are not allowed.")
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    self.add(join(path, str(key)), "Keys must be text.")
                    continue
                out[key] = self.plain(item, join(path, key))
            return out
        if isinstance(value, list):
            return [self.plain(item, join(path, index)) for index, item in enumerate(value)]
        return value

    def each(self, values: Any, path: str) -> Iterator[tuple[str, Any]]:
        if isinstance(values, list):
            for index, value in enumerate(values):
                yield join(path, index), value

    def shape(self, item: Any, spec: dict[str, Any], path: str) -> None:
        """Check one ODCS item against ``spec`` ({key: (kind, required)}): a mapping,
        its required keys present, its known keys of the right kind."""
        if not isinstance(item, dict):
            self.add(path, "Expected a mapping of fields.")
            return
        for key, (kind, required) in spec.items():
            where = join(path, key)
            if key not in item:
                if required:
                    self.add(where, "This field is required.")
                continue
            value = item[key]
            if isinstance(kind, tuple):  # a choice
                if value not in kind:
                    self.add(where, f"{value!r} is not one of: {', '.join(kind)}.")
            elif kind == "scalar":
                if isinstance(value, dict | list):
                    self.add(where, "Expected text, a number, true/false or null.")
            elif kind in ("properties", "members"):
                if not isinstance(value, list):
                    self.add(where, "Expected a list.")
                else:
                    child_spec = self.property_spec if kind == "properties" else TEAM_SPEC
                    for child_path, child in self.each(value, where):
                        self.shape(child, child_spec, child_path)
            elif kind == "items":
                self.shape(value, {**self.property_spec, "name": (str, False)}, where)
            elif kind is str and isinstance(value, bool | int | float):
                self.add(where, quote_it(value))
            elif kind is int and (isinstance(value, bool) or not isinstance(value, int)):
                self.add(where, "Expected a whole number.")
            elif not isinstance(value, kind) or (kind is str and value == "" and required):
                self.add(where, f"Expected {_KIND_NAMES[kind]}.")


_KIND_NAMES = {str: "text", bool: "true or false", list: "a list", dict: "a mapping"}

# ODCS v3 item shapes: the keys it requires, and the kind of each key it defines.
LOGICAL_TYPES = ("string", "date", "number", "integer", "object", "array", "boolean")
# v3.1.0 adds `timestamp` and `time` (official JSON Schema odcs-json-schema-v3.1.0.json).
LOGICAL_TYPES_V31 = ("string", "date", "timestamp", "time", "number", "integer", "object",
                     "array", "boolean")  # fmt: skip
PROPERTY_SPEC: dict[str, Any] = {
    "name": (str, True),
    "logicalType": (LOGICAL_TYPES, False),
    "physicalType": (str, False),
    "physicalName": (str, False),
    "businessName": (str, False),
    "description": (str, False),
    "required": (bool, False),
    "unique": (bool, False),
    "primaryKey": (bool, False),
    "primaryKeyPosition": (int, False),
    "partitioned": (bool, False),
    "partitionKeyPosition": (int, False),
    "criticalDataElement": (bool, False),
    "classification": (str, False),
    "encryptedName": (str, False),
    "logicalTypeOptions": (dict, False),
    "examples": (list, False),
    "tags": (list, False),
    "quality": (list, False),
    "customProperties": (list, False),
    "authoritativeDefinitions": (list, False),
    "properties": ("properties", False),
    "items": ("items", False),
}
SCHEMA_OBJECT_SPEC: dict[str, Any] = {
    "name": (str, True),
    "logicalType": (("object",), False),
    "physicalType": (str, False),
    "physicalName": (str, False),
    "businessName": (str, False),
    "description": (str, False),
    "dataGranularityDescription": (str, False),
    "tags": (list, False),
    "quality": (list, False),
    "customProperties": (list, False),
    "authoritativeDefinitions": (list, False),
    "properties": ("properties", False),
}
SLA_SPEC: dict[str, Any] = {
    "property": (str, True),
    "value": ("scalar", True),
    "valueExt": ("scalar", False),
    "unit": (str, False),
    "element": (str, False),
    "driver": (str, False),
}
TEAM_SPEC: dict[str, Any] = {
    "username": (str, True),
    "name": (str, False),
    "role": (str, False),
    "description": (str, False),
    "dateIn": (str, False),
    "dateOut": (str, False),
    "replacedByUsername": (str, False),
    "comment": (str, False),
}
SERVER_TYPES = (
    "api", "athena", "azure", "bigquery", "clickhouse", "databricks", "denodo", "dremio",
    "duckdb", "glue", "cloudsql", "db2", "informix", "kafka", "kinesis", "local", "mysql",
    "oracle", "postgresql", "postgres", "presto", "pubsub", "redshift", "s3", "sftp",
    "snowflake", "sqlserver", "synapse", "trino", "vertica", "custom",
)  # fmt: skip
# v3.1.0 adds hive, impala and zen.
SERVER_TYPES_V31 = (*SERVER_TYPES[:-1], "hive", "impala", "zen", "custom")
SERVER_SPEC: dict[str, Any] = {
    "server": (str, True),
    "type": (SERVER_TYPES, True),
    "description": (str, False),
    "environment": (str, False),
    "host": (str, False),
    "port": (int, False),
    "database": (str, False),
    "schema": (str, False),
    "catalog": (str, False),
    "location": (str, False),
    "format": (str, False),
    "roles": (list, False),
    "customProperties": (list, False),
}
PROPERTY_SPEC_V31 = {**PROPERTY_SPEC, "logicalType": (LOGICAL_TYPES_V31, False)}
SERVER_SPEC_V31 = {**SERVER_SPEC, "type": (SERVER_TYPES_V31, True)}
# v3.1.0's team object (RFC-0016); its members are TEAM_SPEC items.
TEAM_OBJECT_SPEC: dict[str, Any] = {
    "id": (str, False),
    "name": (str, False),
    "description": (str, False),
    "members": ("members", False),
    "tags": (list, False),
    "customProperties": (list, False),
    "authoritativeDefinitions": (list, False),
}


class CustomPropertySerializer(serializers.Serializer):
    property = serializers.CharField()
    value = Item()
    description = serializers.CharField(allow_blank=True, required=False)


class DescriptionSerializer(serializers.Serializer):
    purpose = serializers.CharField(allow_blank=True, required=False)
    limitations = serializers.CharField(allow_blank=True, required=False)
    usage = serializers.CharField(allow_blank=True, required=False)
    authoritativeDefinitions = item_list()
    customProperties = item_list()


class TeamMemberSerializer(serializers.Serializer):
    username = serializers.CharField(required=False)
    name = serializers.CharField(allow_blank=True, required=False)
    description = serializers.CharField(allow_blank=True, required=False)
    role = serializers.CharField(allow_blank=True, required=False)
    dateIn = serializers.CharField(required=False)
    dateOut = serializers.CharField(required=False)
    replacedByUsername = serializers.CharField(required=False)
    tags = item_list()
    customProperties = item_list()
    authoritativeDefinitions = item_list()


class OdpsOutputPortSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    version = serializers.CharField(max_length=50)
    # Optional in ODPS (v0.9.0 and v1.0.0): left out, a kept port keeps its kind.
    type = serializers.CharField(max_length=50, required=False)
    description = serializers.CharField(allow_blank=True, required=False)
    contractId = serializers.CharField(max_length=200, required=False)
    sbom = item_list()
    inputContracts = item_list()
    # ODPS v1.0.0 output ports may carry these too: accepted, not kept.
    tags = item_list()
    customProperties = item_list()
    authoritativeDefinitions = item_list()


class TeamSerializer(serializers.Serializer):
    """ODPS v1.0.0 / ODCS v3.1.0 ``team`` object (RFC-0016)."""

    id = serializers.CharField(required=False)
    name = serializers.CharField(allow_blank=True, required=False)
    description = serializers.CharField(allow_blank=True, required=False)
    members = item_list()
    tags = item_list()
    customProperties = item_list()
    authoritativeDefinitions = item_list()


class OdpsSerializer(serializers.Serializer):
    apiVersion = serializers.ChoiceField(choices=ODPS_API_VERSIONS)
    kind = serializers.ChoiceField(choices=["DataProduct"])
    id = serializers.SlugField(max_length=100)
    name = serializers.CharField(max_length=200)
    version = serializers.CharField(max_length=50, allow_blank=True, required=False)
    status = serializers.ChoiceField(choices=STATUSES)
    # "Business domain" in ODPS, free text: the slug we export, or the domain's name.
    domain = serializers.CharField(max_length=200)
    tenant = serializers.CharField(allow_blank=True, required=False)
    description = Item(required=False)
    customProperties = item_list()
    tags = item_list()
    inputPorts = item_list()
    outputPorts = Item(required=False)  # absent: the ports stay as they are
    managementPorts = item_list()
    support = item_list()
    team = Item(required=False)  # v1.0.0: an object with members; v0.9.0: a list
    authoritativeDefinitions = item_list()
    productCreatedTs = Item(required=False)


class OdcsSerializer(serializers.Serializer):
    apiVersion = serializers.ChoiceField(choices=ODCS_API_VERSIONS)
    kind = serializers.ChoiceField(choices=["DataContract"])
    id = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=200, allow_blank=True, required=False)
    version = serializers.CharField(max_length=50)
    # Free text in every ODCS v3 schema: proposed/draft/active/deprecated/retired are
    # its examples (v3.0.0's were production/test/development), not a list to pick from.
    status = serializers.CharField(max_length=20)
    dataProduct = serializers.CharField(max_length=200, required=False)  # its name or slug
    # "Name of the logical data domain" in ODCS: the domain's name or its slug.
    domain = serializers.CharField(max_length=200, required=False)
    tenant = serializers.CharField(allow_blank=True, required=False)
    description = Item(required=False)
    schema = item_list()
    slaProperties = item_list()
    team = Item(required=False)  # a list of members; v3.1.0 also an object with members
    servers = item_list()
    support = Item(required=False)
    price = Item(required=False)
    roles = item_list()
    slaDefaultElement = serializers.CharField(required=False)
    tags = item_list()
    customProperties = item_list()
    authoritativeDefinitions = item_list()
    contractCreatedTs = Item(required=False)


def _custom_properties(v: Validator, values: Any, path: str) -> dict[str, tuple[str, Any]]:
    """{property: (path of its value, value)} of valid custom properties."""
    found: dict[str, tuple[str, Any]] = {}
    for item_path, item in v.each(values, path):
        checked = v.check(CustomPropertySerializer(data=item), item, item_path)
        if checked is not None:
            found.setdefault(checked["property"], (join(item_path, "value"), checked["value"]))
    return found


# --- ODPS import -------------------------------------------------------------------


@dataclass
class _PlannedProduct:
    path: str  # "" or "[i]"
    slug: str
    domain: str
    fields: dict[str, Any]
    stage: str
    owner: str | None
    ports: list[dict[str, Any]] | None
    contract_ids: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    # port name -> (path of contractId, contract id, port version)


def _plan_product(v: Validator, data: Any, prefix: str) -> _PlannedProduct | None:
    data = v.plain(data, prefix)
    header = v.check(OdpsSerializer(data=data), data, prefix)
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("domain"), str):
        v.domains.setdefault(data["domain"], []).append(join(prefix, "domain"))
    fields: dict[str, Any] = {}
    description = data.get("description")
    if description is not None:
        checked = v.check(
            DescriptionSerializer(data=description), description, join(prefix, "description")
        )
        if checked is not None:
            if "purpose" in checked:
                fields["purpose"] = checked["purpose"]
            if "usage" in checked:
                fields["description"] = checked["usage"]
    custom = _custom_properties(v, data.get("customProperties"), join(prefix, "customProperties"))
    stage: str | None = None
    if "productType" in custom:
        where, value = custom["productType"]
        if value in DataProductType.values:
            fields["product_type"] = value
        else:
            v.add(where, f"Use one of: {', '.join(DataProductType.values)}.")
    if "owningTeam" in custom:
        where, value = custom["owningTeam"]
        if isinstance(value, str) and len(value) <= 200:
            fields["owning_team"] = value
        else:
            v.add(where, "Expected text of at most 200 characters.")
    if "lifecycleStage" in custom:
        where, value = custom["lifecycleStage"]
        status = data.get("status")
        if value not in LifecycleStage.values:
            v.add(where, f"Use one of: {', '.join(LifecycleStage.values)}.")
        elif status in STATUSES and STAGE_TO_STATUS[value] != status:
            v.add(where, f"Stage {value!r} does not fit status {status!r}.")
        else:
            stage = value
    locations: dict[str, str] = {}
    if "outputPortLocations" in custom:
        where, value = custom["outputPortLocations"]
        if isinstance(value, dict) and all(isinstance(x, str) for x in value.values()):
            locations = value
        else:
            v.add(where, "Expected a mapping of port name to location.")
    owner: str | None = None
    team, members_path = data.get("team"), join(prefix, "team")
    if isinstance(team, dict):
        checked = v.check(TeamSerializer, team, members_path)
        if checked and checked.get("name") and "owningTeam" not in custom:
            if len(checked["name"]) <= 200:
                fields["owning_team"] = checked["name"]
            else:
                v.add(join(members_path, "name"), "Expected text of at most 200 characters.")
        team, members_path = team.get("members"), join(members_path, "members")
    elif team is not None and not isinstance(team, list):
        v.add(
            members_path, "Expected a team: an object with `members` (or, before v1.0.0, a list)."
        )
    for member_path, member in v.each(team, members_path):
        checked = v.check(TeamMemberSerializer, member, member_path)
        if checked is None or checked.get("role") != "owner":
            continue
        if owner is not None:
            v.add(join(member_path, "role"), "Only one team member may be the owner.")
        elif not checked.get("username"):
            v.add(join(member_path, "username"), "The owner needs a username.")
        else:
            owner = checked["username"]
            v.usernames.setdefault(owner, join(member_path, "username"))
    ports: list[dict[str, Any]] | None = None
    contract_ids: dict[str, tuple[str, str, str]] = {}
    if "outputPorts" in data:
        ports = []
        raw_ports = data["outputPorts"]
        if not isinstance(raw_ports, list):
            v.add(join(prefix, "outputPorts"), "Expected a list of output ports.")
        seen: set[str] = set()
        for port_path, port in v.each(raw_ports, join(prefix, "outputPorts")):
            name = port.get("name") if isinstance(port, dict) else None
            if isinstance(name, str) and name in seen:
                v.add(join(port_path, "name"), f"Port names must be unique: {name!r} is repeated.")
            seen.add(name)
            checked = v.check(OdpsOutputPortSerializer(data=port), port, port_path)
            if checked is None:
                continue
            ports.append(
                {"name": name, "kind": checked.get("type"), "location": locations.get(name)}
            )
            if checked.get("contractId"):
                contract_ids[name] = (
                    join(port_path, "contractId"),
                    checked["contractId"],
                    checked["version"],
                )
        for name in locations:
            if name not in seen and isinstance(raw_ports, list):
                v.add(custom["outputPortLocations"][0], f"No output port named {name!r}.")
    elif locations:
        v.add(custom["outputPortLocations"][0], "Give the outputPorts these locations are for.")
    if header is None:
        return None
    stage = stage or STATUS_TO_STAGE[header["status"]]
    fields |= {"name": header["name"], "slug": header["id"]}
    if "version" in header:
        fields["version"] = header["version"]
    return _PlannedProduct(
        prefix, header["id"], header["domain"], fields, stage, owner, ports, contract_ids
    )


# Where a service's complaint about a model field points in the ODPS document.
_PRODUCT_FIELD_PATHS = {
    "name": "name",
    "slug": "id",
    "domain": "domain",
    "owner": "team",
    "owning_team": "customProperties",
    "product_type": "customProperties",
    "stage": "status",
    "version": "version",
    "output_ports": "outputPorts",
    "description": "description.usage",
    "purpose": "description.purpose",
    "contract_id": "outputPorts",
}


def _raise_at(error: ValidationError, prefix: str, paths: dict[str, str]) -> None:
    problems = []
    for where, message in flatten_errors(serializers.as_serializer_error(error)):
        key = where.split(".", 1)[0].split("[", 1)[0]
        mapped = paths.get(key, "")
        path = join(prefix, mapped) if prefix and mapped else (mapped or prefix)
        problems.append(Problem(path, message))
    raise ImportFailed(problems) from None


def _may_edit(user: AbstractBaseUser | None, product: DataProduct) -> bool:
    return user is None or selectors.data_product_can_edit(user, product)


def odps_import(
    documents: list[Any],
    *,
    user: AbstractBaseUser | None,
    lines: list[dict[str, int]] | None = None,
) -> list[DataProduct]:
    """Create or update every product in ``documents`` (decoded ODPS), all or nothing."""
    lines = lines or [{} for _ in documents]
    entries: list[tuple[str, Any]] = []
    all_lines: dict[str, int] = {}
    for index, (document, document_lines) in enumerate(zip(documents, lines, strict=True)):
        prefix = f"[{index}]" if len(documents) > 1 else ""
        all_lines |= _prefixed(document_lines, prefix)
        if isinstance(document, list):
            entries.extend((f"{prefix}[{i}]", item) for i, item in enumerate(document))
        else:
            entries.append((prefix, document))
    v = Validator(all_lines)
    if not entries:
        v.add("", "No data products in the document.")
    planned: list[_PlannedProduct] = []
    slugs: dict[str, str] = {}
    for prefix, data in entries:
        product = _plan_product(v, data, prefix)
        if product is None:
            continue
        if product.slug in slugs:
            v.add(
                join(prefix, "id"),
                f"{product.slug!r} is also at {slugs[product.slug] or 'the top'}.",
            )
        slugs[product.slug] = prefix
        planned.append(product)
    users = {
        u.get_username(): u for u in get_user_model().objects.filter(username__in=list(v.usernames))
    }
    for username, path in v.usernames.items():
        if username not in users:
            v.add(path, f"No user named {username!r}.")
    domains: dict[str, Domain] = {}
    for found in Domain.objects.filter(Q(slug__in=list(v.domains)) | Q(name__in=list(v.domains))):
        domains.setdefault(found.name, found)
    for found in Domain.objects.filter(slug__in=list(v.domains)):
        domains[found.slug] = found  # a slug wins over another domain's name
    for slug, paths in v.domains.items():
        if slug not in domains:
            for path in paths:
                v.add(path, f"No domain with slug or name {slug!r}.")
    existing = {
        p.slug: p
        for p in DataProduct.objects.filter(slug__in=list(slugs))
        .select_related("domain")
        .prefetch_related("output_ports")
    }
    contracts = {
        c.contract_id: c
        for c in DataContract.objects.filter(
            contract_id__in=[cid for p in planned for _, cid, _ in p.contract_ids.values()]
        ).select_related("output_port__data_product")
    }
    claimed: dict[str, str] = {}
    for product in planned:
        current = existing.get(product.slug)
        if current is not None and not _may_edit(user, current):
            v.forbid(
                join(product.path, "id"),
                f"Only the owner of {product.slug!r} (or staff) may change it.",
            )
        for port_name, (path, contract_id, _) in product.contract_ids.items():
            if contract_id in claimed:
                v.add(path, f"Contract {contract_id!r} is also claimed at {claimed[contract_id]}.")
            claimed[contract_id] = path
            other = contracts.get(contract_id)
            if other is not None and (
                other.output_port.data_product.slug != product.slug
                or other.output_port.name != port_name
            ):
                v.add(
                    path,
                    f"Contract {contract_id!r} belongs to port {other.output_port.name!r} of "
                    f"{other.output_port.data_product.slug!r}.",
                )
    if v.problems:
        raise ImportFailed(v.problems)
    written = []
    with transaction.atomic():
        for product in planned:
            written.append(
                _write_product(
                    product,
                    current=existing.get(product.slug),
                    user=user,
                    domain=domains[product.domain],
                    users=users,
                )
            )
    return written


def _write_product(
    planned: _PlannedProduct,
    *,
    current: DataProduct | None,
    user: AbstractBaseUser | None,
    domain: Domain,
    users: dict[str, AbstractBaseUser],
) -> DataProduct:
    fields = dict(planned.fields, domain=domain)
    if planned.owner:
        fields["owner"] = users[planned.owner]
    elif current is None:
        fields["owner"] = user
    ports = None
    if planned.ports is not None:
        old = {p.name: p for p in current.output_ports.all()} if current else {}
        ports = [
            {
                **port,
                **{
                    # Left out of the document: as the port was (new: empty).
                    key: getattr(old[port["name"]], key) if port["name"] in old else ""
                    for key in ("kind", "location")
                    if port[key] is None
                },
            }
            for port in planned.ports
        ]
    try:
        if current is None:
            product = services.data_product_create(output_ports=ports, by=user, **fields)
        else:
            product = services.data_product_update(
                product=current, output_ports=ports, by=user, **fields
            )
        if product.stage != planned.stage:
            services.data_product_transition(
                product=product, to_stage=planned.stage, by=user, note="Imported from ODPS"
            )
            product.refresh_from_db(fields=["stage", "updated_at"])
    except ValidationError as error:
        _raise_at(error, planned.path, _PRODUCT_FIELD_PATHS)
    port_rows = {p.name: p for p in OutputPort.objects.filter(data_product=product)}
    for port_name, (path, contract_id, version) in planned.contract_ids.items():
        port = port_rows[port_name]
        contract = DataContract.objects.filter(output_port=port).first()
        if contract is None:
            contract = DataContract(output_port=port, version=version)
        if contract.contract_id == contract_id and contract.pk:
            continue
        contract.contract_id = contract_id
        try:
            contract.full_clean()
        except ValidationError as error:
            _raise_at(error, "", dict.fromkeys(error.message_dict, path))
        contract.save()
    return product


def odps_import_text(
    raw: bytes | str, *, user: AbstractBaseUser | None, fmt: str = "yaml"
) -> list[DataProduct]:
    documents, lines = parse_stream(raw, fmt=fmt)
    return odps_import(documents, user=user, lines=lines)


# --- ODCS import -------------------------------------------------------------------


def _product_named(v: Validator, wanted: str) -> DataProduct | None:
    """The product an ODCS ``dataProduct`` names: the standard says its name; its
    slug is accepted too. A name two products share is an error asking for the slug."""
    found = list(
        DataProduct.objects.select_related("domain").filter(Q(slug=wanted) | Q(name=wanted))[:3]
    )
    by_slug = [p for p in found if p.slug == wanted]
    if by_slug:
        return by_slug[0]
    if len(found) > 1:
        v.add("dataProduct", f"Several data products are named {wanted!r}: give the slug.")
        return None
    if not found:
        v.add("dataProduct", f"No data product named {wanted!r} (by name or slug).")
        return None
    return found[0]


def _check_with_official_model(v: Validator, data: dict[str, Any]) -> None:
    """Hold an ODCS document to Bitol's own Pydantic model (PyPI
    ``open-data-contract-standard``, the v3.1.x model, which reads v3.0.x too) after
    our checks passed: it knows every field of the standard, including those we
    accept and do not keep (support, price, roles…), and refuses a number where the
    standard says text. Its complaints are added by their path."""
    try:
        OpenDataContractStandard.model_validate(data)
    except PydanticValidationError as error:
        for item in error.errors():
            path = ""
            for key in item["loc"]:
                if isinstance(key, str) and (
                    key.startswith(("list[", "function-")) or key in ("Team",)
                ):
                    continue  # the branch of a union Pydantic tried, not a key
                path = join(path, "schema" if key == "schema_" else key)
            message = item["msg"]
            if item["type"] == "string_type" and isinstance(item.get("input"), int | float):
                message = quote_it(item["input"])
            v.add(path, f"{message} (ODCS).")


def odcs_import(
    data: Any,
    *,
    user: AbstractBaseUser | None,
    lines: dict[str, int] | None = None,
    product_slug: str | None = None,
    port_name: str | None = None,
    create_port_kind: str | None = None,
) -> DataContract:
    """Attach the contract in ``data`` (decoded ODCS) to its port, all or nothing; the
    rule for which port is in the module docstring."""
    v = Validator(lines if lines is not None else {})
    data = v.plain(data, "")
    header = v.check(OdcsSerializer(data=data), data, "")
    if not isinstance(data, dict):
        raise ImportFailed(v.problems)
    purpose = None
    if data.get("description") is not None:
        checked = v.check(
            DescriptionSerializer(data=data["description"]), data["description"], "description"
        )
        purpose = checked.get("purpose") if checked else None
    v31 = data.get("apiVersion") == "v3.1.0"
    if v31:
        v.property_spec = PROPERTY_SPEC_V31
    for key, spec in (
        ("schema", SCHEMA_OBJECT_SPEC),
        ("slaProperties", SLA_SPEC),
        ("team", TEAM_SPEC),
        ("servers", SERVER_SPEC_V31 if v31 else SERVER_SPEC),
    ):
        for item_path, item in v.each(data.get(key), key):
            v.shape(item, spec, item_path)
    team = data.get("team")
    if isinstance(team, dict):
        if v31:
            v.shape(team, TEAM_OBJECT_SPEC, "team")
        else:
            v.add("team", "Before ODCS v3.1.0 the team is a list of members; say v3.1.0.")
    elif team is not None and not isinstance(team, list):
        v.add("team", "Expected a team: a list of members, or (v3.1.0) an object with members.")
    if not v.problems:
        _check_with_official_model(v, data)
    custom = _custom_properties(v, data.get("customProperties"), "customProperties")
    doc_port = custom.get("outputPort", (None, None))[1]
    if doc_port is not None and not isinstance(doc_port, str):
        v.add(custom["outputPort"][0], "Expected the name of an output port.")
        doc_port = None
    if header is None:
        raise ImportFailed(v.problems)
    contract = (
        DataContract.objects.select_related("output_port__data_product__domain")
        .filter(contract_id=header["id"])
        .first()
    )
    port: OutputPort | None = None
    product: DataProduct | None = None
    wanted_port = port_name or doc_port
    if contract is not None:
        port = contract.output_port
        product = port.data_product
        wanted_product = product_slug or header.get("dataProduct")
        if (wanted_product and wanted_product not in (product.slug, product.name)) or (
            wanted_port and wanted_port != port.name
        ):
            v.add(
                "id",
                f"Contract {header['id']!r} belongs to port {port.name!r} of {product.slug!r}.",
            )
    else:
        wanted_product = product_slug or header.get("dataProduct")
        if not wanted_product:
            v.add("dataProduct", "Name the data product this contract is for.")
        else:
            product = _product_named(v, wanted_product)
        if (
            product is not None
            and product_slug
            and header.get("dataProduct") not in (None, product.slug, product.name)
        ):
            v.add("dataProduct", f"The contract is for {header['dataProduct']!r}, not here.")
        if not wanted_port:
            v.add("customProperties", "Name the output port (the `outputPort` custom property).")
        elif product is not None:
            port = OutputPort.objects.filter(data_product=product, name=wanted_port).first()
            if port is None and not create_port_kind:
                v.add(
                    custom["outputPort"][0] if "outputPort" in custom else "customProperties",
                    f"{product.slug!r} has no output port named {wanted_port!r}.",
                )
    if product is not None:
        if header.get("domain") and header["domain"] not in (
            product.domain.slug,
            product.domain.name,
        ):
            v.add(
                "domain",
                f"{product.slug!r} is in domain {product.domain.name!r} "
                f"(slug {product.domain.slug!r}).",
            )
        if not _may_edit(user, product):
            v.forbid("id", f"Only the owner of {product.slug!r} (or staff) may change it.")
    if v.problems:
        raise ImportFailed(v.problems)
    assert product is not None
    with transaction.atomic():
        if port is None:
            assert wanted_port and create_port_kind
            kept = [
                {"name": p.name, "kind": p.kind, "location": p.location}
                for p in product.output_ports.all()
            ]
            try:
                services.data_product_update(
                    product=product,
                    output_ports=[*kept, {"name": wanted_port, "kind": create_port_kind}],
                    by=user,
                )
            except ValidationError as error:
                _raise_at(error, "", {"output_ports": "customProperties"})
            port = OutputPort.objects.get(data_product=product, name=wanted_port)
        if contract is None:
            contract = DataContract.objects.filter(output_port=port).first() or DataContract(
                output_port=port
            )
        contract.contract_id = header["id"]
        contract.api_version = header["apiVersion"]
        contract.name = header.get("name", "")
        contract.version = header["version"]
        contract.status = header["status"]
        contract.purpose = purpose or ""
        contract.schema = data.get("schema", [])
        contract.sla_properties = data.get("slaProperties", [])
        contract.team = data.get("team") if data.get("team") is not None else []
        contract.servers = data.get("servers", [])
        try:
            contract.full_clean()
        except ValidationError as error:
            _raise_at(
                error,
                "",
                {"contract_id": "id", "name": "name", "version": "version", "status": "status"},
            )
        contract.save()
        services.data_contract_imported(contract=contract)
    return contract


def odcs_import_text(raw: bytes | str, *, fmt: str = "yaml", **options: Any) -> DataContract:
    documents, lines = parse_stream(raw, fmt=fmt)
    if len(documents) != 1:
        raise ImportFailed([Problem("", "Give one data contract per document.")])
    return odcs_import(documents[0], lines=lines[0], **options)


# --- Export ------------------------------------------------------------------------


def _contract_of(port: OutputPort) -> DataContract | None:
    try:
        return port.contract
    except DataContract.DoesNotExist:
        return None


def products_for_export(*, slugs: list[str] | None = None) -> QuerySet[DataProduct]:
    """Products with all that ``data_product_to_odps`` reads, in a constant number of
    queries however many there are."""
    products = selectors.data_product_list().prefetch_related("output_ports__contract")
    if slugs is not None:
        products = products.filter(slug__in=slugs)
    return products.order_by("slug")


def data_product_to_odps(product: DataProduct) -> dict[str, Any]:
    """The product as an ODPS v1.0.0 document that ``odps_import`` reads back."""
    ports = sorted(product.output_ports.all(), key=lambda p: p.name)
    output_ports = []
    for port in ports:
        contract = _contract_of(port)
        out = {
            "name": port.name,
            "version": contract.version if contract else (product.version or "1.0.0"),
        }
        if port.kind:
            out["type"] = port.kind
        if contract:
            out["contractId"] = contract.contract_id
        output_ports.append(out)
    document: dict[str, Any] = {
        "apiVersion": ODPS_API_VERSION,
        "kind": "DataProduct",
        "id": product.slug,
        "name": product.name,
        "version": product.version,
        "status": STAGE_TO_STATUS[product.stage],
        "domain": product.domain.slug,
        "description": {"purpose": product.purpose, "usage": product.description},
    }
    # ODPS v1.0.0's team is an object (RFC-0016); the owning team is its name.
    team: dict[str, Any] = {}
    if product.owning_team:
        team["name"] = product.owning_team
    if product.owner is not None:
        team["members"] = [{"username": product.owner.get_username(), "role": "owner"}]
    if team:
        document["team"] = team
    document["outputPorts"] = output_ports
    document["customProperties"] = [
        {"property": "productType", "value": str(product.product_type)},
        {"property": "lifecycleStage", "value": str(product.stage)},
        {"property": "owningTeam", "value": product.owning_team},
        {"property": "outputPortLocations", "value": {p.name: p.location for p in ports}},
    ]
    return document


def _ordered(item: Any, spec: dict[str, Any]) -> Any:
    """ODCS items with their keys in the standard's order, then the rest by name, so an
    export does not depend on how the database keeps JSON keys."""
    if not isinstance(item, dict):
        return item
    keys = [k for k in spec if k in item] + sorted(k for k in item if k not in spec)
    out = {}
    for key in keys:
        value = item[key]
        if key == "properties" and isinstance(value, list):
            value = [_ordered(child, PROPERTY_SPEC) for child in value]
        elif key == "items" and spec is PROPERTY_SPEC:
            value = _ordered(value, PROPERTY_SPEC)
        out[key] = value
    return out


def contract_to_odcs(contract: DataContract) -> dict[str, Any]:
    """The contract as an ODCS v3.0.2 document that ``odcs_import`` reads back."""
    port = contract.output_port
    product = port.data_product
    document: dict[str, Any] = {
        "apiVersion": contract.api_version or ODCS_API_VERSION,
        "kind": "DataContract",
        "id": contract.contract_id,
        "name": contract.name,
        "version": contract.version,
        "status": contract.status,
        "domain": product.domain.slug,
        "dataProduct": product.slug,
        "description": {"purpose": contract.purpose},
    }
    for key, attribute, spec in (
        ("schema", "schema", SCHEMA_OBJECT_SPEC),
        ("servers", "servers", SERVER_SPEC),
        ("team", "team", TEAM_SPEC),
        ("slaProperties", "sla_properties", SLA_SPEC),
    ):
        value = getattr(contract, attribute)
        if isinstance(value, dict):  # v3.1.0's team object
            value = _ordered(value, TEAM_OBJECT_SPEC)
            if isinstance(value.get("members"), list):
                value["members"] = [_ordered(item, TEAM_SPEC) for item in value["members"]]
            document[key] = value
        else:
            document[key] = [_ordered(item, spec) for item in value]
    document["schema"] = selectors.schema_with_glossary(
        document["schema"], product_id=product.pk, port=port.name
    )
    document["customProperties"] = [{"property": "outputPort", "value": port.name}]
    return document


def to_yaml(items: list[dict[str, Any]]) -> str:
    """One YAML document, or a ``---`` stream of several."""
    return documents.dump_yaml(items)


def problems_by_path(problems: list[Problem]) -> dict[str, list[str]]:
    """Problems as the API's field errors: {path: [message]}, the line in the message."""
    out: dict[str, list[str]] = {}
    for problem in problems:
        message = f"Line {problem.line}: {problem.message}" if problem.line else problem.message
        out.setdefault(problem.path or "non_field_errors", []).append(message)
    return out


def contract_for_port(*, slug: str, port: str) -> DataContract | None:
    """The contract of output port ``port`` of product ``slug``, ready to export."""
    return (
        DataContract.objects.select_related("output_port__data_product__domain")
        .filter(output_port__data_product__slug=slug, output_port__name=port)
        .first()
    )
