"""`manage.py load_demo`: the Helix Diagnostics demo organisation and its value tree.

Reads ``valuetree/demo/organisation.yaml`` (users, domains, data products),
``valuetree/demo/diagnostics.yaml`` (the tree, a version-1 tree document) and
``valuetree/demo/glossary.yaml`` (the default business glossary, which the duplicate
score and synonym search use) and loads them in one transaction. Running it again
changes nothing:

- users are upserted by username, domains and data products by slug, and a row is
  saved only when it differs, so a second run writes no rows and no history;
- glossary terms are created when no term has their name (in any case): a term
  edited in the browser keeps its edits, a deleted one comes back;
- the tree is imported only when no tree has its slug, so edits made to the demo
  tree in the browser survive; its memberships are granted when the tree or the
  member is new, and an existing role is never changed.

Every demo user gets the password in ``DEMO_PASSWORD`` (default ``valuetree-demo``).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework import serializers

from valuetree import interchange, services
from valuetree.models import (
    ConsumerInterest,
    DataProduct,
    DataProductType,
    Domain,
    GlossaryTerm,
    LifecycleStage,
    Membership,
    Node,
    NodeKind,
    Role,
    ValueTree,
)

DEMO_DIR = Path(__file__).resolve().parent.parent.parent / "demo"
ORGANISATION_FILE = DEMO_DIR / "organisation.yaml"
TREE_FILE = DEMO_DIR / "diagnostics.yaml"
GLOSSARY_FILE = DEMO_DIR / "glossary.yaml"

DEFAULT_PASSWORD = "valuetree-demo"
PASSWORD_ENV = "DEMO_PASSWORD"
LEADERSHIP = "leadership"
EMAIL_DOMAIN = "helix-diagnostics.example"
DEFAULT_URL = "http://127.0.0.1:8000/"

User = get_user_model()


# --- The organisation file -----------------------------------------------------------


class _Strict(serializers.Serializer):
    """Refuses unknown keys, so a typo in a demo file fails loudly instead of silently
    dropping a field."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {str(key): "Unknown field." for key in sorted(unknown, key=str)}
                )
        return super().to_internal_value(data)


class UserEntry(_Strict):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150)
    title = serializers.CharField()
    role = serializers.ChoiceField(choices=[*Role.values, LEADERSHIP])


class DomainEntry(_Strict):
    slug = serializers.SlugField(max_length=100)
    name = serializers.CharField(max_length=200)
    owning_team = serializers.CharField(max_length=200, allow_blank=True, default="")
    description = serializers.CharField(allow_blank=True, default="")


class PortEntry(_Strict):
    name = serializers.CharField(max_length=200)
    kind = serializers.CharField(max_length=50)
    location = serializers.CharField(max_length=500, allow_blank=True, default="")


class DataProductEntry(_Strict):
    slug = serializers.SlugField(max_length=100)
    name = serializers.CharField(max_length=200)
    domain = serializers.SlugField()
    owner = serializers.CharField(allow_null=True, default=None)
    owning_team = serializers.CharField(max_length=200, allow_blank=True, default="")
    description = serializers.CharField(allow_blank=True, default="")
    purpose = serializers.CharField(allow_blank=True, default="")
    product_type = serializers.ChoiceField(choices=DataProductType.choices)
    stage = serializers.ChoiceField(choices=LifecycleStage.choices)
    output_ports = PortEntry(many=True, min_length=1, max_length=3)


class EarlyConsumerEntry(_Strict):
    data_product = serializers.SlugField()
    initiative = serializers.CharField(help_text="The title of an initiative of the demo tree.")
    user = serializers.CharField()
    team = serializers.CharField(max_length=200)
    purpose = serializers.CharField()


class OrganisationEntry(_Strict):
    login = serializers.CharField()
    users = UserEntry(many=True, min_length=1)
    domains = DomainEntry(many=True)
    data_products = DataProductEntry(many=True)
    early_consumers = EarlyConsumerEntry(many=True, default=list)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        usernames = {user["username"] for user in attrs["users"]}
        domains = {domain["slug"] for domain in attrs["domains"]}
        problems: dict[str, str] = {}
        if attrs["login"] not in usernames:
            problems["login"] = f"{attrs['login']!r} is not one of the users."
        for index, product in enumerate(attrs["data_products"]):
            if product["domain"] not in domains:
                problems[f"data_products[{index}].domain"] = f"No domain {product['domain']!r}."
            if product["owner"] and product["owner"] not in usernames:
                problems[f"data_products[{index}].owner"] = f"No user {product['owner']!r}."
        slugs = {product["slug"] for product in attrs["data_products"]}
        for index, entry in enumerate(attrs["early_consumers"]):
            if entry["data_product"] not in slugs:
                problems[f"early_consumers[{index}].data_product"] = "Not a demo data product."
            if entry["user"] not in usernames:
                problems[f"early_consumers[{index}].user"] = f"No user {entry['user']!r}."
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


def read_yaml(path: Path) -> tuple[Any, dict[str, int]]:
    try:
        return interchange.parse(path.read_bytes(), fmt="yaml")
    except interchange.ImportFailed as failed:
        raise CommandError(f"{path}: {failed}") from None


def _messages(errors: Any) -> list[str]:
    return [
        f"{path or 'document'}: {message}" for path, message in interchange.flatten_errors(errors)
    ]


def read_organisation(path: Path | None = None) -> dict[str, Any]:
    path = path or ORGANISATION_FILE
    data, _ = read_yaml(path)
    entry = OrganisationEntry(data=data)
    if not entry.is_valid():
        raise CommandError(f"{path} is invalid: " + "; ".join(_messages(entry.errors)))
    return entry.validated_data


def demo_password() -> str:
    # An empty variable is as good as unset: an empty password would lock everyone out.
    return os.environ.get(PASSWORD_ENV) or DEFAULT_PASSWORD


# --- Loading -------------------------------------------------------------------------


@dataclass
class LoadResult:
    organisation: dict[str, Any]
    tree: ValueTree
    tree_created: bool
    users: dict[str, AbstractUser]
    # (what, how) -> how many, e.g. ("user", "created") -> 13
    changes: Counter[tuple[str, str]]


class _Passwords:
    """Hashes the demo password once and checks each stored hash once.

    Every demo user shares one hash (and so one salt): the password is published
    anyway, and it keeps a repeated load from running the slow hasher per user.
    """

    def __init__(self, password: str) -> None:
        self.password = password
        self._hash: str | None = None
        self._checked: dict[str, bool] = {}

    def hashed(self) -> str:
        if self._hash is None:
            self._hash = make_password(self.password)
        return self._hash

    def matches(self, encoded: str) -> bool:
        if encoded not in self._checked:
            self._checked[encoded] = check_password(self.password, encoded)
        return self._checked[encoded]


def _changed(instance: Any, desired: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``desired`` that ``instance`` does not already hold."""
    return {name: value for name, value in desired.items() if getattr(instance, name) != value}


def upsert_user(
    entry: dict[str, Any], *, passwords: _Passwords, changes: Counter[tuple[str, str]]
) -> tuple[AbstractUser, bool]:
    """The demo user named by ``entry``, and whether it was created."""
    desired = {
        "first_name": entry["first_name"],
        "last_name": entry["last_name"],
        "email": f"{entry['username']}@{EMAIL_DOMAIN}",
        "is_active": True,
    }
    user = User.objects.filter(username=entry["username"]).first()
    if user is None:
        user = User(username=entry["username"], password=passwords.hashed(), **desired)
        user.full_clean()
        user.save()
        changes["user", "created"] += 1
        created = True
    else:
        created = False
        updates = _changed(user, desired)
        if not passwords.matches(user.password):
            # The printed login must work, even after someone changed the password.
            updates["password"] = passwords.hashed()
        if updates:
            for name, value in updates.items():
                setattr(user, name, value)
            user.full_clean()
            user.save(update_fields=list(updates))
            changes["user", "updated"] += 1
    leadership = services.leadership_group()
    is_leader = user.groups.filter(pk=leadership.pk).exists()
    if entry["role"] == LEADERSHIP and not is_leader:
        user.groups.add(leadership)
    elif entry["role"] != LEADERSHIP and is_leader:
        user.groups.remove(leadership)
    return user, created


def upsert_domain(entry: dict[str, Any], *, changes: Counter[tuple[str, str]]) -> Domain:
    desired = {key: value for key, value in entry.items() if key != "slug"}
    domain = Domain.objects.filter(slug=entry["slug"]).first()
    if domain is None:
        changes["domain", "created"] += 1
        return services.domain_create(slug=entry["slug"], **desired)
    updates = _changed(domain, desired)
    if updates:
        changes["domain", "updated"] += 1
        services.domain_update(domain=domain, **updates)
    return domain


def _port_rows(ports: Any) -> list[tuple[str, str, str]]:
    return sorted((port["name"], port["kind"], port["location"]) for port in ports)


def upsert_data_product(
    entry: dict[str, Any],
    *,
    domains: dict[str, Domain],
    users: dict[str, AbstractUser],
    changes: Counter[tuple[str, str]],
) -> DataProduct:
    desired = {key: value for key, value in entry.items() if key not in ("slug", "output_ports")}
    desired["domain"] = domains[entry["domain"]]
    desired["owner"] = users[entry["owner"]] if entry["owner"] else None
    ports = [dict(port) for port in entry["output_ports"]]
    product = DataProduct.objects.filter(slug=entry["slug"]).first()
    if product is None:
        changes["data product", "created"] += 1
        return services.data_product_create(slug=entry["slug"], output_ports=ports, **desired)
    updates = _changed(product, desired)
    stage = updates.pop("stage", None)
    current_ports = product.output_ports.values("name", "kind", "location")
    same_ports = _port_rows(current_ports) == _port_rows(ports)
    if updates or not same_ports or stage:
        changes["data product", "updated"] += 1
    if updates or not same_ports:
        # Ports are replaced only when they differ: replacing deletes and re-creates rows.
        services.data_product_update(
            product=product, output_ports=None if same_ports else ports, **updates
        )
    if stage:
        # The demo resets its own content, whatever the lifecycle's order.
        services.data_product_transition(
            product=product, to_stage=stage, by=None, note="Demo reloaded", any_move=True
        )
    return product


@transaction.atomic
def load_demo(*, password: str | None = None) -> LoadResult:
    """Load the demo organisation and tree; safe to run any number of times."""
    organisation = read_organisation()
    document, lines = read_yaml(TREE_FILE)
    passwords = _Passwords(password or demo_password())
    changes: Counter[tuple[str, str]] = Counter()

    users: dict[str, AbstractUser] = {}
    new_users: set[str] = set()
    for entry in organisation["users"]:
        user, created = upsert_user(entry, passwords=passwords, changes=changes)
        users[entry["username"]] = user
        if created:
            new_users.add(entry["username"])
    domains = {
        entry["slug"]: upsert_domain(entry, changes=changes) for entry in organisation["domains"]
    }
    for entry in organisation["data_products"]:
        upsert_data_product(entry, domains=domains, users=users, changes=changes)
    _add_glossary(changes=changes)

    tree = ValueTree.objects.filter(slug=document.get("slug")).first()
    tree_created = tree is None
    if tree is None:
        try:
            tree = interchange.tree_import(
                document, owner=users[organisation["login"]], lines=lines, operator=True
            )
        except interchange.ImportFailed as failed:
            raise CommandError(f"{TREE_FILE}: {failed}") from None

    _add_early_consumers(organisation["early_consumers"], tree=tree, users=users, changes=changes)

    # Roles in an existing tree are its owners' business: only a new tree or a new
    # member gets the role the organisation file gives, and no role is ever changed.
    members = set(Membership.objects.filter(tree=tree).values_list("user_id", flat=True))
    for entry in organisation["users"]:
        user = users[entry["username"]]
        if entry["role"] not in Role.values or user.pk in members:
            continue
        if tree_created or entry["username"] in new_users:
            services.membership_set(tree=tree, user=user, role=entry["role"])
            changes["membership", "created"] += 1
    return LoadResult(
        organisation=organisation,
        tree=tree,
        tree_created=tree_created,
        users=users,
        changes=changes,
    )


def _add_glossary(*, changes: Counter[tuple[str, str]]) -> None:
    """The default glossary's terms that are missing (by name, any case); existing
    terms are left as they are, so edits made in the browser survive a reload."""
    rows, _ = read_yaml(GLOSSARY_FILE)
    existing = {name.lower() for name in GlossaryTerm.objects.values_list("name", flat=True)}
    missing: list[dict[str, Any]] = []
    for row in rows["terms"]:
        name = " ".join(str(row["name"]).split())
        if name.lower() in existing:
            continue
        missing.append(
            {
                "name": name,
                "definition": str(row.get("definition") or ""),
                "synonyms": row.get("synonyms") or [],
                "abbreviations": row.get("abbreviations") or [],
            }
        )
        existing.add(name.lower())
    # One import checks every term against one index of the others' forms: creating
    # them one by one read every term's forms again for each (542 terms: 10 s).
    if missing:
        created = services.glossary_import(rows=missing, by=None)["created"]
        changes["glossary term", "created"] += created


def _add_early_consumers(
    entries: list[dict[str, Any]],
    *,
    tree: ValueTree,
    users: dict[str, AbstractUser],
    changes: Counter[tuple[str, str]],
) -> None:
    """Teams waiting for planned products; added once, never changed (a registration
    withdrawn in the demo stays withdrawn only until the next load)."""
    for entry in entries:
        node = Node.objects.filter(tree=tree, title=entry["initiative"]).first()
        product = DataProduct.objects.get(slug=entry["data_product"])
        if node is None or ConsumerInterest.objects.filter(data_product=product, node=node):
            continue  # the demo tree was edited, or it is there already
        services.consumer_interest_register(
            product=product,
            node=node,
            user=users[entry["user"]],
            team=entry["team"],
            purpose=entry["purpose"],
        )
        changes["early consumer", "created"] += 1


# --- The command ---------------------------------------------------------------------


class Command(BaseCommand):
    help = (
        "Load the demo organisation (Helix Diagnostics): users in every role, domains, "
        "data products and a value tree. Safe to run again: it never duplicates rows "
        "and never overwrites edits made to the demo tree."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", default=DEFAULT_URL, help=f"Where the server runs (default {DEFAULT_URL})."
        )

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        password = demo_password()
        try:
            result = load_demo(password=password)
        except ValidationError as error:
            # The demo files are ours, but the database may hold a clashing row
            # (say, a domain of the same name under another slug).
            details = error.message_dict if hasattr(error, "error_dict") else error.messages
            raise CommandError(
                "The demo could not be loaded, nothing was written: "
                + "; ".join(_messages(details))
            ) from None
        self._report(result, password=password, url=url)

    def _report(self, result: LoadResult, *, password: str, url: str) -> None:
        organisation = result.organisation
        from_env = password != DEFAULT_PASSWORD
        shown = f"the password in {PASSWORD_ENV}" if from_env else password
        if not from_env and not settings.DEBUG:
            self.stderr.write(
                self.style.WARNING(
                    f"{PASSWORD_ENV} is not set: every demo user has the published password "
                    f"{DEFAULT_PASSWORD!r}. Set {PASSWORD_ENV} before anyone else can reach "
                    "this server."
                )
            )

        tree = result.tree
        kinds = Counter(Node.objects.filter(tree=tree).values_list("kind", flat=True))
        state = "imported" if result.tree_created else "already there, left as it is"
        changes = ", ".join(
            f"{count} {what}{'s' if count != 1 else ''} {how}"
            for (what, how), count in sorted(result.changes.items())
        )
        self.stdout.write(f"Changes: {changes or 'none, everything was already loaded'}.")
        self.stdout.write(
            f"Tree {tree.name!r} ({tree.slug}, {state}): {kinds[NodeKind.GOAL]} goals, "
            f"{kinds[NodeKind.BET]} bets, {kinds[NodeKind.INITIATIVE]} initiatives."
        )

        roles = dict(Membership.objects.filter(tree=tree).values_list("user__username", "role"))
        width = max(len(entry["username"]) for entry in organisation["users"])
        self.stdout.write("")
        self.stdout.write(f"Other demo users (same password: {shown}):")
        for entry in organisation["users"]:
            if entry["username"] == organisation["login"]:
                continue
            role = LEADERSHIP if entry["role"] == LEADERSHIP else roles.get(entry["username"])
            if role == LEADERSHIP:
                where = "reads all trees"
            else:
                where = "in the demo tree" if role else "not in the demo tree"
            name = f"{entry['first_name']} {entry['last_name']}, {entry['title']}"
            self.stdout.write(
                f"  {entry['username']:<{width}}  {role or '-':<10}  {where:<20}  {name}"
            )
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: open {url} and log in as {organisation['login']} / {shown}"
            )
        )
