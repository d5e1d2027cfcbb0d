"""Every API endpoint × every role → the status it must answer (DESIGN.md §7).

The rules, in the order they apply: not logged in → 401; a tree the caller may not
see → 404 (its existence is not leaked); visible but not allowed → 403; a body that
fails validation → 400 with field messages.

Roles: per tree ``owner`` (everything, manages members), ``editor`` (nodes and
measures), ``viewer`` (reads); ``leadership`` reads every tree and edits nothing;
``outsider`` is logged in with no role; ``anonymous`` has no credentials. Domains are
written by staff only; data products are changed by their owner (here the tree's
owner) only. A new ``/api/`` route without a case below fails
``test_every_api_route_has_a_permission_case``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, resolve, reverse
from rest_framework.test import APIClient

from outcomes.models import Measure, Metric, MetricSource
from outcomes.services import measure_create
from tests.factories import ROLES as USER_ROLES
from tests.factories import make_metric, make_role_users, make_tree
from valuetree import services
from valuetree.models import (
    DataContract,
    DataProduct,
    DataProductLink,
    Domain,
    GlossaryTerm,
    Membership,
    Node,
    OutputPort,
    ValueTree,
)
from valuetree.trash import node_trash

ROLES = (*USER_ROLES, "anonymous")
# Public by design: the OpenAPI schema and its docs page.
PUBLIC_ROUTES = {"api-schema": "/api/schema/", "api-docs": "/api/docs/"}


@dataclass
class World:
    """Fresh objects for one request: DELETEs cannot leak into other cases."""

    users: dict[str, AbstractBaseUser]
    tree: ValueTree
    goal: Node
    bet: Node
    initiative: Node
    measure: Measure
    domain: Domain  # owns the product
    spare_domain: Domain  # owns nothing, so only permissions can stop its deletion
    product: DataProduct
    link: DataProductLink
    viewer_membership: Membership
    push_metric: Metric  # in a push source
    pulled_metric: Metric  # in an HTTP JSON source (never actually fetched here)
    term: GlossaryTerm  # a term of ``domain``: its product owners (the tree owner) edit it

    @property
    def push_source(self) -> MetricSource:
        return self.push_metric.source


@pytest.fixture(scope="module")
def built_world(django_db_setup, django_db_blocker) -> Iterator[World]:
    """The world, built once for this module inside a transaction rolled back at the
    module's end. Each test runs in a savepoint within it (its ``db`` fixture) and gets
    a deep copy of the objects, so what one case writes or deletes is undone before the
    next, as with Django's ``TestCase.setUpTestData`` (about 1,000 cases: building the
    world for each was a tenth of the suite's time)."""
    with django_db_blocker.unblock(), transaction.atomic():
        users = make_role_users()
        yield build_world(users, make_tree(users))
        transaction.set_rollback(True)


@pytest.fixture
def world(built_world, db) -> World:
    return copy.deepcopy(built_world)


def build_world(users, tree) -> World:
    goal = services.node_create(tree=tree, parent=None, title="Grow revenue")
    bet = services.node_create(tree=tree, parent=goal, title="Self-service checkout")
    initiative = services.node_create(tree=tree, parent=bet, title="One-click reorder")
    measure = measure_create(
        node=initiative,
        name="Reorder rate",
        unit="%",
        direction="increase",
        baseline_value=10,
        baseline_date="2026-01-01",
        target_value=20,
        target_date="2027-01-01",
    )
    domain = services.domain_create(name="Sales", slug="sales")
    spare_domain = services.domain_create(name="Logistics", slug="logistics")
    product = services.data_product_create(
        name="Orders", slug="orders", domain=domain, owner=users["owner"]
    )
    link = services.data_product_link(product=product, node=initiative, role="produces")
    term = services.glossary_term_create(name="Order", synonyms=["purchase"], domain=domain)
    return World(
        term=term,
        users=users,
        tree=tree,
        goal=goal,
        bet=bet,
        initiative=initiative,
        measure=measure,
        domain=domain,
        spare_domain=spare_domain,
        product=product,
        link=link,
        viewer_membership=Membership.objects.get(tree=tree, user=users["viewer"]),
        push_metric=make_metric(tree, kind="push", source_name="Check-ins", name="Pushed"),
        pulled_metric=make_metric(
            tree,
            kind="http_json",
            source_name="KPI API",
            config={"url": "https://kpi.example.com"},
            query="$.value",
            schedule_interval=timedelta(hours=1),
            name="Pulled",
        ),
    )


# --- Expected statuses -----------------------------------------------------------------


def term_url(w: World) -> str:
    return f"/api/glossary/{w.term.slug}/"


def contract_port(w: World) -> OutputPort:
    """An output port of the world's product with a data contract (made on first use)."""
    port, _ = OutputPort.objects.get_or_create(data_product=w.product, name="order_lines")
    DataContract.objects.get_or_create(
        output_port=port,
        defaults={
            "contract_id": "orders-order-lines-v1",
            "schema": [{"name": "order_lines", "properties": [{"name": "order_id"}]}],
        },
    )
    return port


def column_link_body(w: World) -> dict[str, Any]:
    contract_port(w)
    return {"data_product": w.product.slug, "port": "order_lines", "column": "order_id"}


def column_link_url(w: World) -> str:
    contract_port(w)
    link = services.glossary_column_link(
        term=w.term, product=w.product, port="order_lines", column="order_id"
    )
    return f"/api/glossary/{w.term.slug}/columns/{link.pk}/"


def statuses(
    *, owner: int, editor: int, viewer: int, leadership: int, outsider: int
) -> dict[str, int]:
    return {
        "owner": owner,
        "editor": editor,
        "viewer": viewer,
        "leadership": leadership,
        "outsider": outsider,
        "anonymous": 401,
    }


def everyone(ok: int) -> dict[str, int]:
    """Anyone logged in, whatever their roles."""
    return statuses(owner=ok, editor=ok, viewer=ok, leadership=ok, outsider=ok)


def tree_readers(ok: int = 200) -> dict[str, int]:
    return statuses(owner=ok, editor=ok, viewer=ok, leadership=ok, outsider=404)


def tree_editors(ok: int) -> dict[str, int]:
    return statuses(owner=ok, editor=ok, viewer=403, leadership=403, outsider=404)


def tree_owners(ok: int) -> dict[str, int]:
    return statuses(owner=ok, editor=403, viewer=403, leadership=403, outsider=404)


def product_owner(ok: int) -> dict[str, int]:
    return statuses(owner=ok, editor=403, viewer=403, leadership=403, outsider=403)


STAFF_ONLY = everyone(403)  # none of the six role users is staff


# --- Request bodies --------------------------------------------------------------------


def measure_body(w: World) -> dict[str, Any]:
    return {
        "name": "Basket size",
        "unit": "EUR",
        "direction": "increase",
        "baseline_value": 30,
        "baseline_date": "2026-01-01",
        "target_value": 45,
        "target_date": "2027-01-01",
    }


def tree_document(w: World) -> dict[str, Any]:
    return {
        "version": 1,
        "slug": "imported",
        "name": "Imported",
        "vision": "An imported vision",
        "goals": [{"title": "Imported goal", "children": [{"title": "Imported bet"}]}],
    }


# --- Reviews, decisions, learnings (made on first use, in the world's tree) -------------


def draft_review(w: World) -> Any:
    from outcomes.reviews import services as review_services
    from outcomes.reviews.models import ValueReview

    open_review = ValueReview.objects.filter(tree=w.tree, status="draft").first()
    return open_review or review_services.review_start(tree=w.tree, by=w.users["owner"])


def published_review(w: World) -> Any:
    from outcomes.reviews import services as review_services

    return review_services.review_publish(review=draft_review(w), by=w.users["owner"])


def review_url(suffix: str = "", *, published: bool = False) -> Builder:
    return lambda w: (
        f"/api/reviews/{(published_review if published else draft_review)(w).pk}/{suffix}"
    )


def compare_url(w: World) -> str:
    first, second = published_review(w), published_review(w)
    return f"/api/trees/{w.tree.slug}/reviews/compare/?from={first.pk}&to={second.pk}"


def decision_url(w: World) -> str:
    from outcomes.reviews import services as review_services

    decision = review_services.decision_create(
        node=w.bet, kind="persevere", rationale="Keep going", by=w.users["owner"]
    )
    return f"/api/decisions/{decision.pk}/"


def learning_url(w: World) -> str:
    from outcomes.reviews import services as review_services

    learning = review_services.learning_create(
        tree=w.tree, by=w.users["editor"], kind="surprise", text="Reorders came from mobile"
    )
    return f"/api/learnings/{learning.pk}/"


def spare_in_trash(w: World) -> int:
    goal = services.node_create(tree=w.tree, parent=None, title="Spare goal")
    return node_trash(node=goal).pk


# --- The matrix ------------------------------------------------------------------------

Builder = Callable[[World], Any]


# --- Review schedules and deliveries (issue 13) ------------------------------------------


def _schedule(w: World, extra_addresses: tuple[str, ...] = ()) -> Any:
    import datetime as dt

    from outcomes.reports import services as report_services

    return report_services.schedule_save(
        tree=w.tree,
        by=w.users["owner"],
        rrule="FREQ=WEEKLY;BYDAY=MO",
        starts_on=dt.date(2026, 1, 5),
        time_of_day=dt.time(9),
        timezone="Europe/Oslo",
        recipient_roles=["owner"],
        extra_addresses=list(extra_addresses),
        channels=["email"],
    )


def schedule_url(suffix: str = "") -> Builder:
    def build(w: World) -> str:
        _schedule(w)
        return f"/api/trees/{w.tree.slug}/review-schedule/{suffix}"

    return build


def schedule_body(w: World) -> dict[str, Any]:
    return {
        "rrule": "FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO",
        "starts_on": "2026-01-01",
        "time_of_day": "09:00",
        "timezone": "Europe/Oslo",
        "channels": ["email", "slack"],
        "slack_webhook": "https://hooks.slack.com/services/T/B/secret",
        "recipient_roles": ["owner", "leadership"],
    }


def send_test_url(w: World) -> str:
    published_review(w)
    for user in w.users.values():
        user.email = f"{user.username}@example.com"
        user.save(update_fields=["email"])
    return f"/api/trees/{w.tree.slug}/review-schedule/test/"


def resend_url(w: World) -> str:
    from outcomes.reports.models import Delivery

    # A resend goes only to an address the schedule still sends to.
    _schedule(w, extra_addresses=("a@example.com",))
    delivery = Delivery.objects.create(
        review=published_review(w), channel="email", recipient="a@example.com", status="sent"
    )
    return f"/api/deliveries/{delivery.pk}/resend/"


@dataclass(frozen=True)
class Case:
    id: str
    route: str  # URL name; the request's URL must resolve to it
    method: str
    url: Builder
    expected: dict[str, int]
    body: Builder | None = None
    # The key a 400 must name (a field message; ``errors`` for the import document).
    field: str | None = None


# The ``*-invalid`` cases pin the order of the rules: a caller who may not write gets
# 403 (or 404 for a hidden tree) whatever the body; only a caller who may write learns
# what is wrong with it (400). Otherwise field messages answer people who cannot act
# on them, and e.g. the members endpoint tells any logged-in user which usernames exist.


def tree_url(suffix: str = "") -> Builder:
    return lambda w: f"/api/trees/{w.tree.slug}/{suffix}"


def node_url(suffix: str = "") -> Builder:
    return lambda w: f"/api/nodes/{w.initiative.pk}/{suffix}"


def product_url(suffix: str = "") -> Builder:
    return lambda w: f"/api/data-products/{w.product.slug}/{suffix}"


def odps_body(slug: str, status: str = "proposed") -> Builder:
    return lambda w: {
        "apiVersion": "v1.0.0",
        "kind": "DataProduct",
        "id": slug,
        "name": slug.title(),
        "status": status,
        "domain": w.domain.slug,
    }


def contract_url(w: World) -> str:
    """The contract of a port of the world's product (made on first use)."""
    port, _ = OutputPort.objects.get_or_create(
        data_product=w.product, name="orders-table", defaults={"kind": "table"}
    )
    DataContract.objects.get_or_create(output_port=port, defaults={"contract_id": "orders-v1"})
    return f"/api/data-products/{w.product.slug}/ports/orders-table/contract/"


def odcs_body(status: object = "active") -> Builder:
    return lambda w: {
        "apiVersion": "v3.0.2",
        "kind": "DataContract",
        "id": "orders-v1",
        "version": "1.0.0",
        "status": status,
        "servers": [{"server": "prod", "type": "postgres"}],
    }


def member_url(w: World) -> str:
    return f"/api/trees/{w.tree.slug}/members/{w.viewer_membership.pk}/"


def measure_url(w: World) -> str:
    return f"/api/measures/{w.measure.pk}/"


def source_url(w: World) -> str:
    return f"/api/metric-sources/{w.push_source.pk}/"


def metric_url(suffix: str = "", pulled: bool = False) -> Builder:
    return lambda w: f"/api/metrics/{(w.pulled_metric if pulled else w.push_metric).pk}/{suffix}"


def port_source_body(w: World) -> dict[str, Any]:
    """A SQL source from an output port of the world's product, whose contract names a
    (public, never contacted) PostgreSQL server."""
    port = OutputPort.objects.create(data_product=w.product, name="warehouse", kind="table")
    DataContract.objects.create(
        output_port=port,
        contract_id="orders-warehouse",
        servers=[
            {
                "server": "prod",
                "type": "postgresql",
                "host": "db.example.com",
                "port": 5432,
                "database": "dw",
                "schema": "sales",
            }
        ],
    )
    return {"tree": w.tree.slug, "data_product": w.product.slug, "port": "warehouse"}


def observation_url(w: World) -> str:
    """An observation of the world's push metric (pushed on first use)."""
    from outcomes.pulling import observations_push

    observation = w.push_metric.observations.first()
    if observation is None:
        observations_push(metric=w.push_metric, raw_points=[("2026-01-01", 1)], trigger="push")
        observation = w.push_metric.observations.get()
    return f"/api/observations/{observation.pk}/"


def interest_url(w: World) -> str:
    """A team (the editor's) waiting for the world's product (registered on first use)."""
    interest = w.product.interests.first() or services.consumer_interest_register(
        product=w.product, node=w.initiative, user=w.users["editor"], team="CRM", purpose="Churn"
    )
    return f"/api/data-products/{w.product.slug}/interests/{interest.pk}/"


def duplicate_body(original: str = "orders-archive") -> Builder:
    """Marks the world's product a duplicate of ``original`` (made on first use)."""

    def build(w: World) -> dict[str, Any]:
        if not DataProduct.objects.filter(slug=original).exists():
            services.data_product_create(name="Orders archive", slug=original, domain=w.domain)
        return {"original": original, "then": "keep"}

    return build


def domain_url(w: World) -> str:
    return f"/api/domains/{w.spare_domain.slug}/"


CASES = [
    Case("api-root", "api-root", "GET", lambda w: "/api/", everyone(200)),
    # Trees
    Case("tree-list", "tree-list", "GET", lambda w: "/api/trees/", everyone(200)),
    Case(
        "tree-create",
        "tree-list",
        "POST",
        lambda w: "/api/trees/",
        everyone(201),
        body=lambda w: {"slug": "new-tree", "name": "New tree", "vision": "Another vision"},
    ),
    Case(
        "tree-create-invalid",
        "tree-list",
        "POST",
        lambda w: "/api/trees/",
        everyone(400),
        body=lambda w: {"slug": "not a slug", "name": "New tree", "vision": "Another vision"},
        field="slug",
    ),
    Case(
        "tree-import",
        "tree-import-tree",
        "POST",
        lambda w: "/api/trees/import/",
        everyone(201),
        body=tree_document,
    ),
    Case(
        "tree-import-invalid",
        "tree-import-tree",
        "POST",
        lambda w: "/api/trees/import/",
        everyone(400),
        body=lambda w: {**tree_document(w), "vision": ""},
        field="errors",
    ),
    Case("tree-retrieve", "tree-detail", "GET", tree_url(), tree_readers()),
    Case(
        "tree-update",
        "tree-detail",
        "PUT",
        tree_url(),
        tree_owners(200),
        body=lambda w: {"slug": w.tree.slug, "name": "Tree v2", "vision": "A sharper vision"},
    ),
    Case(
        "tree-partial-update",
        "tree-detail",
        "PATCH",
        tree_url(),
        tree_owners(200),
        body=lambda w: {"name": "Renamed"},
    ),
    Case(
        "tree-partial-update-invalid",
        "tree-detail",
        "PATCH",
        tree_url(),
        statuses(owner=400, editor=403, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"slug": "not a slug"},
        field="slug",
    ),
    Case("tree-destroy", "tree-detail", "DELETE", tree_url(), tree_owners(204)),
    Case(
        "tree-create-node",
        "tree-create-node",
        "POST",
        tree_url("nodes/"),
        tree_editors(201),
        body=lambda w: {"parent": w.bet.pk, "title": "Saved baskets"},
    ),
    Case(
        "tree-create-node-invalid",
        "tree-create-node",
        "POST",
        tree_url("nodes/"),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"parent": w.initiative.pk, "title": "Under a leaf"},
        field="parent",
    ),
    Case("tree-export-json", "tree-export", "GET", tree_url("export/?format=json"), tree_readers()),
    Case("tree-export-yaml", "tree-export", "GET", tree_url("export/?format=yaml"), tree_readers()),
    Case("tree-history", "tree-history", "GET", tree_url("history/"), tree_readers()),
    Case("tree-diagram-svg", "tree-diagram", "GET", tree_url("diagram/"), tree_readers()),
    Case("tree-trash", "tree-trash", "GET", tree_url("trash/"), tree_readers()),
    Case(
        "tree-trash-restore",
        "tree-trash-restore",
        "POST",
        # The builder puts a spare goal in the trash first (the world's nodes stay).
        lambda w: f"/api/trees/{w.tree.slug}/trash/{spare_in_trash(w)}/restore/",
        tree_editors(201),
    ),
    Case(
        "tree-diagram-mermaid",
        "tree-diagram",
        "GET",
        tree_url("diagram/?format=mermaid"),
        tree_readers(),
    ),
    # Members
    Case("member-list", "tree-member-list", "GET", tree_url("members/"), tree_readers()),
    Case(
        "member-create",
        "tree-member-list",
        "POST",
        tree_url("members/"),
        tree_owners(201),
        body=lambda w: {"user": "outsider", "role": "viewer"},
    ),
    Case(
        "member-create-invalid",
        "tree-member-list",
        "POST",
        tree_url("members/"),
        statuses(owner=400, editor=403, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"user": "outsider", "role": "boss"},
        field="role",
    ),
    Case("member-retrieve", "tree-member-detail", "GET", member_url, tree_readers()),
    Case(
        "member-partial-update",
        "tree-member-detail",
        "PATCH",
        member_url,
        tree_owners(200),
        body=lambda w: {"role": "editor"},
    ),
    Case("member-destroy", "tree-member-detail", "DELETE", member_url, tree_owners(204)),
    # Nodes
    Case("node-list", "node-list", "GET", lambda w: "/api/nodes/", everyone(200)),
    Case("node-retrieve", "node-detail", "GET", node_url(), tree_readers()),
    Case(
        "node-update",
        "node-detail",
        "PUT",
        node_url(),
        tree_editors(200),
        body=lambda w: {"title": "Two-click reorder", "hypothesis": "We believe that…"},
    ),
    Case(
        "node-partial-update",
        "node-detail",
        "PATCH",
        node_url(),
        tree_editors(200),
        body=lambda w: {"status": "active"},
    ),
    Case(
        "node-partial-update-invalid",
        "node-detail",
        "PATCH",
        node_url(),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"confidence": 101},
        field="confidence",
    ),
    Case("node-destroy", "node-detail", "DELETE", node_url(), tree_editors(204)),
    Case(
        "node-move",
        "node-move",
        "POST",
        node_url("move/"),
        tree_editors(200),
        body=lambda w: {"parent": w.bet.pk, "position": 0},
    ),
    Case("node-history", "node-history", "GET", node_url("history/"), tree_readers()),
    # Measures
    Case("node-measure-list", "node-measures", "GET", node_url("measures/"), tree_readers()),
    Case(
        "node-measure-create",
        "node-measures",
        "POST",
        node_url("measures/"),
        tree_editors(201),
        body=measure_body,
    ),
    Case(
        "node-measure-create-invalid",
        "node-measures",
        "POST",
        node_url("measures/"),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {**measure_body(w), "target_value": 1},
        field="target_value",
    ),
    Case("measure-list", "measure-list", "GET", lambda w: "/api/measures/", everyone(200)),
    Case("measure-retrieve", "measure-detail", "GET", measure_url, tree_readers()),
    Case(
        "measure-update",
        "measure-detail",
        "PUT",
        measure_url,
        tree_editors(200),
        body=measure_body,
    ),
    Case(
        "measure-partial-update",
        "measure-detail",
        "PATCH",
        measure_url,
        tree_editors(200),
        body=lambda w: {"weight": 2},
    ),
    Case(
        "measure-partial-update-invalid",
        "measure-detail",
        "PATCH",
        measure_url,
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"weight": -1},
        field="weight",
    ),
    Case("measure-destroy", "measure-detail", "DELETE", measure_url, tree_editors(204)),
    # Metric sources and metrics
    Case(
        "source-list", "metric-source-list", "GET", lambda w: "/api/metric-sources/", everyone(200)
    ),
    Case(
        "source-create",
        "metric-source-list",
        "POST",
        lambda w: "/api/metric-sources/",
        tree_editors(201),
        body=lambda w: {"tree": w.tree.slug, "kind": "push", "name": "Survey"},
    ),
    Case(
        "source-create-invalid",
        "metric-source-list",
        "POST",
        lambda w: "/api/metric-sources/",
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"tree": w.tree.slug, "kind": "carrier-pigeon", "name": "Survey"},
        field="kind",
    ),
    Case("source-retrieve", "metric-source-detail", "GET", source_url, tree_readers()),
    Case(
        "source-update",
        "metric-source-detail",
        "PUT",
        source_url,
        tree_editors(200),
        body=lambda w: {"tree": w.tree.slug, "kind": "push", "name": "Check-ins v2", "config": {}},
    ),
    Case(
        "source-partial-update",
        "metric-source-detail",
        "PATCH",
        source_url,
        tree_editors(200),
        body=lambda w: {"name": "Monthly check-ins"},
    ),
    Case(
        "source-partial-update-invalid",
        "metric-source-detail",
        "PATCH",
        source_url,
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"config": {"url": "https://example.com"}},
        field="config",
    ),
    Case("source-destroy", "metric-source-detail", "DELETE", source_url, tree_editors(204)),
    Case(
        "source-from-port",
        "metric-source-from-port",
        "POST",
        lambda w: "/api/metric-sources/from-port/",
        tree_editors(201),
        body=port_source_body,
    ),
    Case(
        "source-from-port-invalid",
        "metric-source-from-port",
        "POST",
        lambda w: "/api/metric-sources/from-port/",
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {**port_source_body(w), "server": "no-such-server"},
        field="server",
    ),
    Case("metric-list", "metric-list", "GET", lambda w: "/api/metrics/", everyone(200)),
    Case(
        "metric-create",
        "metric-list",
        "POST",
        lambda w: "/api/metrics/",
        tree_editors(201),
        body=lambda w: {"source": w.push_source.pk, "name": "NPS"},
    ),
    Case(
        "metric-create-invalid",
        "metric-list",
        "POST",
        lambda w: "/api/metrics/",
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"source": w.push_source.pk, "name": "NPS", "schedule_cron": "0 * * * *"},
        field="schedule_interval",
    ),
    Case("metric-retrieve", "metric-detail", "GET", metric_url(), tree_readers()),
    Case(
        "metric-update",
        "metric-detail",
        "PUT",
        metric_url(),
        tree_editors(200),
        body=lambda w: {"source": w.push_source.pk, "name": "Pushed v2", "unit": "%"},
    ),
    Case(
        "metric-partial-update",
        "metric-detail",
        "PATCH",
        metric_url(),
        tree_editors(200),
        body=lambda w: {"unit": "EUR"},
    ),
    Case(
        "metric-partial-update-invalid",
        "metric-detail",
        "PATCH",
        metric_url(),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"timezone": "Mars/Olympus"},
        field="timezone",
    ),
    Case("metric-destroy", "metric-detail", "DELETE", metric_url(), tree_editors(204)),
    Case("metric-pull", "metric-pull", "POST", metric_url("pull/", pulled=True), tree_editors(202)),
    Case(
        "metric-observations",
        "metric-observations",
        "GET",
        metric_url("observations/"),
        tree_readers(),
    ),
    Case(
        "metric-push",
        "metric-observations",
        "POST",
        metric_url("observations/"),
        tree_editors(201),
        body=lambda w: {"period": "2026-01-01", "value": 42},
    ),
    Case(
        "metric-push-invalid",
        "metric-observations",
        "POST",
        metric_url("observations/"),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"period": "2026-01-01", "value": "forty-two"},
        field="non_field_errors",
    ),
    Case("metric-pull-runs", "metric-pull-runs", "GET", metric_url("pull-runs/"), tree_readers()),
    Case(
        "observation-list", "observation-list", "GET", lambda w: "/api/observations/", everyone(200)
    ),
    Case("observation-detail", "observation-detail", "GET", observation_url, tree_readers()),
    # Verdicts, roll-ups and tolerance bands
    Case(
        "measure-verdicts",
        "measure-verdicts",
        "GET",
        lambda w: f"/api/measures/{w.measure.pk}/verdicts/",
        tree_readers(),
    ),
    Case(
        "measure-evaluate",
        "measure-evaluate",
        "POST",
        lambda w: f"/api/measures/{w.measure.pk}/evaluate/",
        tree_editors(200),
    ),
    Case("verdict-list", "verdict-list", "GET", lambda w: "/api/verdicts/", everyone(200)),
    Case(
        "verdict-export",
        "verdict-export",
        "GET",
        lambda w: f"/api/verdicts/export/?tree={w.tree.slug}",
        everyone(200),
    ),
    Case("tree-outcomes", "tree-outcomes", "GET", tree_url("outcomes/"), tree_readers()),
    Case(
        "tree-verdict-policy",
        "tree-verdict-policy",
        "GET",
        tree_url("verdict-policy/"),
        tree_readers(),
    ),
    Case(
        "tree-verdict-policy-update",
        "tree-verdict-policy",
        "PUT",
        tree_url("verdict-policy/"),
        tree_editors(200),
        body=lambda w: {"on_track_within": 0.1, "at_risk_within": 0.2},
    ),
    Case(
        "tree-verdict-policy-update-invalid",
        "tree-verdict-policy",
        "PUT",
        tree_url("verdict-policy/"),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"on_track_within": 0.3, "at_risk_within": 0.1},
        field="at_risk_within",
    ),
    # Domains
    Case("domain-list", "domain-list", "GET", lambda w: "/api/domains/", everyone(200)),
    Case(
        "domain-create",
        "domain-list",
        "POST",
        lambda w: "/api/domains/",
        STAFF_ONLY,
        body=lambda w: {"slug": "payments", "name": "Payments"},
    ),
    Case(
        "domain-create-invalid",
        "domain-list",
        "POST",
        lambda w: "/api/domains/",
        STAFF_ONLY,
        body=lambda w: {"slug": "not a slug", "name": "Payments"},
    ),
    Case("domain-retrieve", "domain-detail", "GET", domain_url, everyone(200)),
    Case(
        "domain-update",
        "domain-detail",
        "PUT",
        domain_url,
        STAFF_ONLY,
        body=lambda w: {"slug": "logistics", "name": "Logistics & returns"},
    ),
    Case(
        "domain-partial-update",
        "domain-detail",
        "PATCH",
        domain_url,
        STAFF_ONLY,
        body=lambda w: {"owning_team": "Team Parcel"},
    ),
    Case("domain-destroy", "domain-detail", "DELETE", domain_url, STAFF_ONLY),
    # The business glossary
    Case("glossary-list", "glossary-term-list", "GET", lambda w: "/api/glossary/", everyone(200)),
    Case(
        "glossary-create-in-a-domain",
        "glossary-term-list",
        "POST",
        lambda w: "/api/glossary/",
        product_owner(201),
        body=lambda w: {"name": "Basket", "synonyms": ["cart"], "domain": w.domain.slug},
    ),
    Case(
        "glossary-create-company-wide",
        "glossary-term-list",
        "POST",
        lambda w: "/api/glossary/",
        STAFF_ONLY,
        body=lambda w: {"name": "Basket", "synonyms": ["cart"]},
    ),
    Case(
        "glossary-create-invalid",
        "glossary-term-list",
        "POST",
        lambda w: "/api/glossary/",
        product_owner(400),
        body=lambda w: {"name": w.term.name, "domain": w.domain.slug},
        field="name",
    ),
    Case("glossary-retrieve", "glossary-term-detail", "GET", term_url, everyone(200)),
    Case(
        "glossary-update",
        "glossary-term-detail",
        "PUT",
        term_url,
        product_owner(200),
        body=lambda w: {"name": "Order", "definition": "A purchase", "domain": w.domain.slug},
    ),
    Case(
        "glossary-partial-update",
        "glossary-term-detail",
        "PATCH",
        term_url,
        product_owner(200),
        body=lambda w: {"abbreviations": ["ORD"], "data_products": [w.product.slug]},
    ),
    Case("glossary-destroy", "glossary-term-detail", "DELETE", term_url, product_owner(204)),
    Case(
        "glossary-columns",
        "glossary-term-columns",
        "GET",
        lambda w: f"/api/glossary/{w.term.slug}/columns/",
        everyone(200),
    ),
    Case(
        "glossary-column-link",
        "glossary-term-columns",
        "POST",
        lambda w: f"/api/glossary/{w.term.slug}/columns/",
        product_owner(201),
        body=column_link_body,
    ),
    Case(
        "glossary-column-link-invalid",
        "glossary-term-columns",
        "POST",
        lambda w: f"/api/glossary/{w.term.slug}/columns/",
        product_owner(400),
        body=lambda w: {**column_link_body(w), "column": "no_such_column"},
        field="column",
    ),
    Case(
        "glossary-column-unlink",
        "glossary-term-column",
        "DELETE",
        column_link_url,
        product_owner(204),
    ),
    Case(
        "glossary-export",
        "glossary-term-export",
        "GET",
        lambda w: "/api/glossary/export/?as=csv",
        everyone(200),
    ),
    Case(
        "glossary-import",
        "glossary-term-import",
        "POST",
        lambda w: "/api/glossary/import/",
        STAFF_ONLY,
        body=lambda w: {"terms": [{"name": "Basket", "synonyms": ["cart"]}]},
    ),
    # Data products
    Case(
        "product-list", "data-product-list", "GET", lambda w: "/api/data-products/", everyone(200)
    ),
    Case(
        "product-create",
        "data-product-list",
        "POST",
        lambda w: "/api/data-products/",
        everyone(201),
        body=lambda w: {"slug": "returns", "name": "Returns", "domain": w.domain.slug},
    ),
    Case("product-retrieve", "data-product-detail", "GET", product_url(), everyone(200)),
    Case(
        "product-update",
        "data-product-detail",
        "PUT",
        product_url(),
        product_owner(200),
        body=lambda w: {"slug": w.product.slug, "name": "Orders v2", "domain": w.domain.slug},
    ),
    Case(
        "product-partial-update",
        "data-product-detail",
        "PATCH",
        product_url(),
        product_owner(200),
        body=lambda w: {"stage": "design"},
    ),
    Case(
        "product-partial-update-invalid",
        "data-product-detail",
        "PATCH",
        product_url(),
        statuses(owner=400, editor=403, viewer=403, leadership=403, outsider=403),
        body=lambda w: {"stage": "bogus"},
        field="stage",
    ),
    Case("product-destroy", "data-product-detail", "DELETE", product_url(), product_owner(204)),
    Case("product-history", "data-product-history", "GET", product_url("history/"), everyone(200)),
    Case("product-links", "data-product-links", "GET", product_url("links/"), everyone(200)),
    Case(
        "product-link",
        "data-product-links",
        "POST",
        product_url("links/"),
        # The outsider cannot see the node: it "does not exist" for them (400, no leak).
        statuses(owner=201, editor=201, viewer=403, leadership=403, outsider=400),
        body=lambda w: {"node": w.bet.pk, "role": "uses"},
        field="node",
    ),
    Case(
        "product-unlink",
        "data-product-unlink",
        "DELETE",
        lambda w: f"/api/data-products/{w.product.slug}/links/{w.link.pk}/",
        tree_editors(204),
    ),
    # Data products in the open: board, similar products, lifecycle, early consumers
    Case(
        "product-board",
        "data-product-board",
        "GET",
        lambda w: f"/api/data-products/board/?domain={w.domain.slug}&q=orders",
        everyone(200),
    ),
    Case(
        "product-board-invalid",
        "data-product-board",
        "GET",
        lambda w: "/api/data-products/board/?stage=live",
        everyone(400),
        field="stage",
    ),
    Case(
        "product-orphans",
        "data-product-orphans",
        "GET",
        lambda w: "/api/data-products/orphans/",
        everyone(200),
    ),
    Case(
        "product-similar-check",
        "data-product-similar-check",
        "POST",
        lambda w: "/api/data-products/similar/",
        everyone(200),
        body=lambda w: {"name": "Order lines", "output_ports": ["orders-table"]},
    ),
    Case(
        "product-similar-check-invalid",
        "data-product-similar-check",
        "POST",
        lambda w: "/api/data-products/similar/",
        everyone(400),
        body=lambda w: {"name": ""},
        field="name",
    ),
    Case("product-similar", "data-product-similar", "GET", product_url("similar/"), everyone(200)),
    Case(
        "product-transitions",
        "data-product-transitions",
        "GET",
        product_url("transitions/"),
        everyone(200),
    ),
    Case(
        "product-transition",
        "data-product-transitions",
        "POST",
        product_url("transitions/"),
        product_owner(201),
        body=lambda w: {"stage": "design", "note": "Sketching the schema"},
    ),
    Case(
        "product-transition-invalid",
        "data-product-transitions",
        "POST",
        product_url("transitions/"),
        statuses(owner=400, editor=403, viewer=403, leadership=403, outsider=403),
        body=lambda w: {"stage": "retired-ish"},
        field="stage",
    ),
    Case(
        "product-interests",
        "data-product-interests",
        "GET",
        product_url("interests/"),
        everyone(200),
    ),
    Case(
        "product-interest-register",
        "data-product-interests",
        "POST",
        product_url("interests/"),
        # The outsider cannot see the node: it "does not exist" for them (400, no leak).
        statuses(owner=201, editor=201, viewer=403, leadership=403, outsider=400),
        body=lambda w: {"node": w.initiative.pk, "team": "CRM", "purpose": "Churn model"},
        field="node",
    ),
    Case(
        "product-interest-register-invalid",
        "data-product-interests",
        "POST",
        product_url("interests/"),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=400),
        body=lambda w: {"node": w.bet.pk, "team": "CRM", "purpose": "Churn model"},
        field="node",
    ),
    Case(
        "product-interest-withdraw",
        "data-product-withdraw-interest",
        "DELETE",
        interest_url,
        # Who registered it (the editor) or the product's owner.
        statuses(owner=204, editor=204, viewer=403, leadership=403, outsider=403),
    ),
    Case(
        "product-duplicate-of",
        "data-product-duplicate-of",
        "POST",
        product_url("duplicate-of/"),
        product_owner(200),
        body=duplicate_body(),
    ),
    Case(
        "product-duplicate-of-invalid",
        "data-product-duplicate-of",
        "POST",
        product_url("duplicate-of/"),
        statuses(owner=400, editor=403, viewer=403, leadership=403, outsider=403),
        body=duplicate_body("orders"),
        field="original",
    ),
    # Notifications: everyone has their own
    Case(
        "notification-list",
        "notification-list",
        "GET",
        lambda w: "/api/notifications/?unread=true",
        everyone(200),
    ),
    Case(
        "notification-read",
        "notification-read",
        "POST",
        lambda w: "/api/notifications/read/",
        everyone(200),
        body=lambda w: {},
    ),
    Case(
        "notification-read-invalid",
        "notification-read",
        "POST",
        lambda w: "/api/notifications/read/",
        everyone(400),
        body=lambda w: {"ids": ["first"]},
        field="ids",
    ),
    # Data products and contracts as Bitol ODPS / ODCS
    Case(
        "product-import-odps",
        "data-product-import",
        "POST",
        lambda w: "/api/data-products/import/",
        everyone(201),
        body=odps_body("returns"),
    ),
    Case(
        "product-import-odps-existing",
        "data-product-import",
        "POST",
        lambda w: "/api/data-products/import/",
        product_owner(201),
        body=odps_body("orders", status="draft"),
    ),
    Case(
        "product-import-odps-invalid",
        "data-product-import",
        "POST",
        lambda w: "/api/data-products/import/",
        everyone(400),
        body=odps_body("returns", status="bogus"),
        field="status",
    ),
    Case("product-odps", "data-product-odps", "GET", product_url("odps/"), everyone(200)),
    Case("product-contract", "data-product-contract", "GET", contract_url, everyone(200)),
    Case(
        "product-contract-import",
        "data-product-contract",
        "PUT",
        contract_url,
        product_owner(200),
        body=odcs_body(),
    ),
    Case(
        "product-contract-import-invalid",
        "data-product-contract",
        "PUT",
        contract_url,
        statuses(owner=400, editor=403, viewer=403, leadership=403, outsider=403),
        body=odcs_body(status=5),  # text in ODCS (any text: "bogus" is a valid status)
        field="status",
    ),
    # Value reviews: readers read; owners and editors hold, publish and amend
    Case("reviews-list", "tree-reviews", "GET", tree_url("reviews/"), tree_readers()),
    Case(
        "review-start",
        "tree-reviews",
        "POST",
        tree_url("reviews/"),
        tree_editors(201),
        body=lambda w: {"title": "Q2 review"},
    ),
    Case(
        "review-start-invalid",
        "tree-reviews",
        "POST",
        tree_url("reviews/"),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"title": "x" * 201},
        field="title",
    ),
    Case("review-detail", "review-detail", "GET", review_url(), tree_readers()),
    Case(
        "review-update",
        "review-detail",
        "PATCH",
        review_url(),
        tree_editors(200),
        body=lambda w: {"notes": "Agenda: fax", "attendees": ["owner", "editor"]},
    ),
    Case(
        "review-update-invalid",
        "review-detail",
        "PATCH",
        review_url(),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"attendees": ["outsider"]},
        field="attendees",
    ),
    Case("review-hold", "review-hold", "POST", review_url("hold/"), tree_editors(200)),
    Case("review-publish", "review-publish", "POST", review_url("publish/"), tree_editors(200)),
    Case(
        "review-publish-twice",
        "review-publish",
        "POST",
        review_url("publish/", published=True),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {},
        field="status",
    ),
    Case(
        "review-amend",
        "review-amend",
        "POST",
        review_url("amend/", published=True),
        tree_editors(201),
        body=lambda w: {"text": "Fax figures were wrong", "reason": "Source fixed"},
    ),
    Case(
        "review-amend-invalid",
        "review-amend",
        "POST",
        review_url("amend/", published=True),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"text": "No reason given"},
        field="reason",
    ),
    Case(
        "review-export",
        "review-export",
        "GET",
        lambda w: review_url("export/", published=True)(w) + "?format=md",
        tree_readers(),
    ),
    Case("reviews-compare", "tree-reviews-compare", "GET", compare_url, tree_readers()),
    # Decisions: created, never changed or deleted
    Case("node-decisions", "node-decisions", "GET", node_url("decisions/"), tree_readers()),
    Case(
        "node-decide",
        "node-decisions",
        "POST",
        node_url("decisions/"),
        tree_editors(201),
        body=lambda w: {"kind": "kill", "rationale": "Nobody reorders"},
    ),
    Case(
        "node-decide-invalid",
        "node-decisions",
        "POST",
        node_url("decisions/"),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"kind": "kill", "rationale": ""},
        field="rationale",
    ),
    Case("tree-decisions", "tree-decisions", "GET", tree_url("decisions/"), tree_readers()),
    Case("decision-detail", "decision-detail", "GET", decision_url, tree_readers()),
    # Learnings: editors keep the log; readers search it
    Case(
        "tree-learnings", "tree-learnings", "GET", tree_url("learnings/?q=mobile"), tree_readers()
    ),
    Case(
        "tree-learning-create",
        "tree-learnings",
        "POST",
        tree_url("learnings/"),
        tree_editors(201),
        body=lambda w: {"kind": "validated", "text": "People reorder on mobile"},
    ),
    Case(
        "tree-learning-create-invalid",
        "tree-learnings",
        "POST",
        tree_url("learnings/"),
        statuses(owner=400, editor=400, viewer=403, leadership=403, outsider=404),
        body=lambda w: {"kind": "hunch", "text": "x"},
        field="kind",
    ),
    Case(
        "learning-search", "learning-search", "GET", lambda w: "/api/learnings/?q=x", everyone(200)
    ),
    Case("learning-detail", "learning-detail", "GET", learning_url, tree_readers()),
    Case(
        "learning-update",
        "learning-detail",
        "PATCH",
        learning_url,
        tree_editors(200),
        body=lambda w: {"text": "Reorders came from the app"},
    ),
    Case("learning-delete", "learning-detail", "DELETE", learning_url, tree_editors(204)),
    # Review schedules: readers read it; owners set it, read deliveries, resend, test
    Case("review-schedule", "tree-review-schedule", "GET", schedule_url(), tree_readers()),
    Case(
        "review-schedule-set",
        "tree-review-schedule",
        "PUT",
        tree_url("review-schedule/"),
        tree_owners(200),
        body=schedule_body,
    ),
    Case(
        "review-schedule-set-invalid",
        "tree-review-schedule",
        "PUT",
        tree_url("review-schedule/"),
        statuses(owner=400, editor=403, viewer=403, leadership=403, outsider=404),
        body=lambda w: {**schedule_body(w), "rrule": "FREQ=SECONDLY"},
        field="rrule",
    ),
    Case(
        "review-schedule-test",
        "tree-review-schedule-test",
        "POST",
        send_test_url,
        tree_owners(202),
    ),
    Case("tree-deliveries", "tree-deliveries", "GET", tree_url("deliveries/"), tree_owners(200)),
    Case("delivery-resend", "delivery-resend", "POST", resend_url, tree_owners(202)),
]


def send(client: APIClient, method: str, url: str, body: Any = None) -> Any:
    if method == "GET":
        return client.get(url)  # a query string stays in the URL
    return getattr(client, method.lower())(url, body, format="json")


def client_as(world: World, role: str) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(world.users[role])
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "role"),
    [pytest.param(case, role, id=f"{case.id}-{role}") for case in CASES for role in ROLES],
)
def test_permission_matrix(world, case, role):
    url = case.url(world)
    assert resolve(urlsplit(url).path).url_name == case.route
    body = case.body(world) if case.body else None

    response = send(client_as(world, role), case.method, url, body)

    assert response.status_code == case.expected[role], response.content[:500]
    if role == "anonymous":
        assert response.headers["WWW-Authenticate"] == "Token"
    if response.status_code == 400 and case.field is not None:
        assert case.field in response.json()


# --- Every route is in the matrix ------------------------------------------------------


def view_methods(callback: Any) -> set[str]:
    """The HTTP methods a URL pattern's view answers (HEAD, OPTIONS aside)."""
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:  # a function view: at least its GET needs a case
        return {"GET"}
    allowed = {m for m in view_class.http_method_names if m not in {"head", "options", "trace"}}
    actions = getattr(callback, "actions", None)  # a viewset: the router's method map
    methods = (
        allowed & set(actions)
        if actions is not None
        else {m for m in allowed if hasattr(view_class, m)}
    )
    return {m.upper() for m in methods}


def api_endpoints() -> set[tuple[str, str]]:
    """(URL name, method) for every pattern under /api/ except the public ones."""
    found: set[tuple[str, str]] = set()

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/"):
                name = pattern.name or route  # an unnamed route can never be covered
                if name not in PUBLIC_ROUTES:
                    found.update((name, method) for method in view_methods(pattern.callback))

    walk(get_resolver().url_patterns, "")
    return found


def test_every_api_route_has_a_permission_case():
    endpoints = api_endpoints()
    covered = {(case.route, case.method) for case in CASES}
    assert ("tree-detail", "DELETE") in endpoints  # the walk found the routers
    assert endpoints - covered == set(), "endpoints without a permission case"
    assert covered - endpoints == set(), "cases for endpoints that no longer exist"


def test_case_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(PUBLIC_ROUTES))
def test_schema_and_docs_are_public(name):
    url = PUBLIC_ROUTES[name]
    assert resolve(url).url_name == name
    assert APIClient().get(url).status_code == 200


def test_no_format_suffix_twins_are_published(world):
    """The routers publish no ``/api/trees/{slug}.json`` twins: the API is JSON only
    and ``?format=`` belongs to the tree export. (Twins once crashed with a 500.)"""
    for case in CASES:
        match = resolve(urlsplit(case.url(world)).path)
        with pytest.raises(NoReverseMatch):
            reverse(match.url_name, kwargs={**match.kwargs, "format": "json"})
    response = client_as(world, "owner").get(f"/api/trees/{world.tree.slug}.json")
    assert response.status_code == 404


# --- A hidden tree looks exactly like a missing one ------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("real", "missing"),
    [
        (tree_url(), lambda w: "/api/trees/no-such-tree/"),
        (tree_url("members/"), lambda w: "/api/trees/no-such-tree/members/"),
        (node_url(), lambda w: "/api/nodes/999999/"),
        (measure_url, lambda w: "/api/measures/999999/"),
        (tree_url("outcomes/"), lambda w: "/api/trees/no-such-tree/outcomes/"),
        (tree_url("verdict-policy/"), lambda w: "/api/trees/no-such-tree/verdict-policy/"),
        (
            lambda w: f"/api/measures/{w.measure.pk}/verdicts/",
            lambda w: "/api/measures/999999/verdicts/",
        ),
    ],
    ids=["tree", "members", "node", "measure", "outcomes", "verdict-policy", "verdicts"],
)
def test_outsider_cannot_tell_a_hidden_object_from_a_missing_one(world, real, missing):
    client = client_as(world, "outsider")
    hidden = client.get(real(world))
    absent = client.get(missing(world))
    assert (hidden.status_code, hidden.json()) == (absent.status_code, absent.json())
    assert hidden.status_code == 404


# --- Token authentication --------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "expected"),
    [("valid", 200), ("Token vt_0000000000000000000000000000000000000000", 401)],
    ids=["right-token", "wrong-token"],
)
def test_token_authentication(world, header, expected):
    _, key = services.api_token_create(user=world.users["viewer"], name="test")
    if header == "valid":
        header = f"Token {key}"
    response = APIClient().get("/api/trees/", HTTP_AUTHORIZATION=header)
    assert response.status_code == expected
    if expected == 200:
        assert [t["slug"] for t in response.json()["results"]] == [world.tree.slug]
    else:
        assert response.headers["WWW-Authenticate"] == "Token"
