"""Fields that say who someone is come from the request's user, or from an explicit
owner-only action, never from what a client claims (issue 14 §6). One test per model
and entry point."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from outcomes.models import MetricSource, PullRun
from outcomes.reviews.models import Decision, Learning
from tests.factories import make_metric, make_user
from valuetree import services
from valuetree.models import (
    ConsumerInterest,
    DataProduct,
    LifecycleTransition,
    Membership,
    Notification,
    ValueTree,
)


@pytest.fixture
def lab(db):
    return services.domain_create(name="Laboratory", slug="lab")


def product_body(**overrides: object) -> dict:
    return {
        "slug": "volumes",
        "name": "Test volumes",
        "domain": "lab",
        "purpose": "Plan staffing.",
    } | overrides


@pytest.mark.django_db
class TestDataProductOwner:
    def test_the_creator_owns_what_they_propose(self, users, lab, client_for):
        response = client_for(users["editor"]).post("/api/data-products/", product_body())
        assert response.status_code == 201, response.content
        assert response.json()["owner"] == "editor"
        assert DataProduct.objects.get().owner == users["editor"]

    def test_naming_another_owner_at_create_is_refused(self, users, lab, client_for):
        before = Notification.objects.count()
        response = client_for(users["editor"]).post(
            "/api/data-products/", product_body(owner="viewer")
        )
        assert response.status_code == 400
        assert "owner" in response.json()
        assert not DataProduct.objects.exists()
        assert Notification.objects.count() == before

    def test_a_null_owner_is_refused(self, users, lab, client_for):
        response = client_for(users["editor"]).post("/api/data-products/", product_body(owner=None))
        assert response.status_code == 400
        assert "owner" in response.json()
        assert not DataProduct.objects.exists()

    def test_staff_may_create_for_someone_else(self, users, lab, client_for):
        staff = make_user("admin", is_staff=True)
        response = client_for(staff).post("/api/data-products/", product_body(owner="viewer"))
        assert response.status_code == 201, response.content
        assert DataProduct.objects.get().owner == users["viewer"]

    def test_its_owner_hands_it_over_but_not_to_nobody(self, users, lab, client_for):
        owner = client_for(users["editor"])
        owner.post("/api/data-products/", product_body())
        assert owner.patch("/api/data-products/volumes/", {"owner": None}).status_code == 400
        response = owner.patch("/api/data-products/volumes/", {"owner": "viewer"})
        assert response.status_code == 200, response.content
        assert DataProduct.objects.get().owner == users["viewer"]
        # Handed over: the former owner may no longer change it.
        assert owner.patch("/api/data-products/volumes/", {"owner": "editor"}).status_code == 403

    def test_the_page_offers_only_the_creator(self, users, lab, client):
        client.force_login(users["editor"])
        response = client.post(
            "/data-products/new/",
            {
                "name": "Test volumes",
                "slug": "volumes",
                "domain": str(lab.pk),
                "owner": "viewer",
                "product_type": "aggregate",
                "stage": "discovery",
                "ports-TOTAL_FORMS": "0",
                "ports-INITIAL_FORMS": "0",
            },
        )
        assert response.status_code == 400
        assert not DataProduct.objects.exists()

    def test_an_odps_document_cannot_make_someone_else_owner(self, users, lab, client_for):
        document = (
            "apiVersion: v1.0.0\nkind: DataProduct\nid: volumes\nname: Test volumes\n"
            "status: proposed\ndomain: lab\nteam:\n  - {username: viewer, role: owner}\n"
        )
        response = client_for(users["editor"]).post(
            "/api/data-products/import/", document, content_type="application/yaml"
        )
        assert response.status_code == 400, response.content
        assert "You own the data products you propose" in str(response.json())
        assert not DataProduct.objects.exists()


@pytest.mark.django_db
class TestRecordedPeople:
    def test_a_metric_source_is_owned_by_its_creator(self, users, tree, client_for):
        response = client_for(users["editor"]).post(
            "/api/metric-sources/",
            {"tree": tree.slug, "kind": "push", "name": "Pushed", "owner": "owner"},
        )
        assert response.status_code == 201, response.content
        assert response.json()["owner"] == "editor"
        assert MetricSource.objects.get().owner == users["editor"]

    def test_a_push_is_recorded_as_the_caller_s(self, users, tree, client_for):
        metric = make_metric(tree)
        response = client_for(users["editor"]).post(
            f"/api/metrics/{metric.pk}/observations/",
            {"period": "2026-01-01", "value": 3, "user": "owner"},
        )
        assert response.status_code == 201, response.content
        assert PullRun.objects.get().user == users["editor"]

    def test_a_transition_is_by_the_caller(self, users, lab, client_for):
        owner = client_for(users["editor"])
        owner.post("/api/data-products/", product_body())
        response = owner.post(
            "/api/data-products/volumes/transitions/", {"stage": "design", "by": "owner"}
        )
        assert response.status_code == 201, response.content
        assert response.json()["by"] == "editor"
        assert LifecycleTransition.objects.filter(to_stage="design").get().by == users["editor"]

    def test_an_interest_is_registered_by_the_caller(self, users, tree, lab, client_for):
        goal = services.node_create(tree=tree, title="Goal")
        bet = services.node_create(tree=tree, parent=goal, title="Bet")
        initiative = services.node_create(tree=tree, parent=bet, title="Initiative")
        services.data_product_create(by=users["owner"], **product_body(domain=lab))
        response = client_for(users["editor"]).post(
            "/api/data-products/volumes/interests/",
            {"node": initiative.pk, "team": "Lab", "purpose": "Staffing", "user": "owner"},
        )
        assert response.status_code == 201, response.content
        assert ConsumerInterest.objects.get().user == users["editor"]

    def test_a_new_tree_is_owned_by_its_creator(self, users, client_for):
        response = client_for(users["viewer"]).post(
            "/api/trees/", {"name": "Mine", "slug": "mine", "vision": "v", "owner": "owner"}
        )
        assert response.status_code == 201
        assert Membership.objects.get(tree__slug="mine").user == users["viewer"]


def tree_document(by: str | None) -> dict:
    """A tree whose initiative carries a decision and a learning "by" someone."""
    said = {} if by is None else {"by": by}
    return {
        "version": 1,
        "slug": "forged",
        "name": "Forged",
        "vision": "v",
        "learnings": [
            {"kind": "process", "text": "Review monthly", "at": "2026-01-02T00:00:00Z", **said}
        ],
        "goals": [
            {
                "title": "Goal",
                "children": [
                    {
                        "title": "Bet",
                        "children": [
                            {
                                "title": "Initiative",
                                "decisions": [
                                    {
                                        "kind": "kill",
                                        "rationale": "The CEO said so",
                                        "at": "2026-01-01T00:00:00Z",
                                        **said,
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }


@pytest.mark.django_db
class TestWhoDecidedInATreeImport:
    """A tree document's decisions and learnings said who made them, and the API import
    attributed them to any user named: a decision "by" someone who never made it."""

    def test_the_api_refuses_decisions_by_someone_else(self, users, client_for):
        response = client_for(users["editor"]).post(
            "/api/trees/import/", tree_document("owner"), format="json"
        )
        assert response.status_code == 400, response.content
        paths = {error["path"] for error in response.json()["errors"]}
        assert paths == {"learnings[0].by", "goals[0].children[0].children[0].decisions[0].by"}
        assert not ValueTree.objects.filter(slug="forged").exists()
        assert not Decision.objects.exists() and not Learning.objects.exists()

    @pytest.mark.parametrize("by", ["editor", None])
    def test_the_api_takes_the_caller_s_own_or_nobody_s(self, users, client_for, by):
        response = client_for(users["editor"]).post(
            "/api/trees/import/", tree_document(by), format="json"
        )
        assert response.status_code == 201, response.content
        expected = users["editor"] if by else None
        assert Decision.objects.get().by == expected
        assert Learning.objects.get().by == expected

    def test_staff_and_the_operator_restore_history_as_it_was(self, users, client_for, tmp_path):
        staff = make_user("admin", is_staff=True)
        response = client_for(staff).post(
            "/api/trees/import/", tree_document("owner"), format="json"
        )
        assert response.status_code == 201, response.content
        path = tmp_path / "tree.json"
        path.write_text(json.dumps({**tree_document("owner"), "slug": "restored"}))
        call_command("import_tree", str(path), "--owner", "editor", stdout=io.StringIO())
        assert [d.by for d in Decision.objects.order_by("pk")] == [users["owner"]] * 2
