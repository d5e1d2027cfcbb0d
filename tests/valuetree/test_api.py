"""What the API does for a user who is allowed (the permission matrix is elsewhere)."""

from __future__ import annotations

import pytest

from valuetree import services
from valuetree.models import DataProduct, Membership, Node


@pytest.fixture
def editor(users, client_for):
    return client_for(users["editor"])


@pytest.fixture
def goal(tree):
    return services.node_create(tree=tree, parent=None, title="Faster results")


@pytest.mark.django_db
class TestTrees:
    def test_create_makes_the_caller_owner(self, users, client_for):
        response = client_for(users["outsider"]).post(
            "/api/trees/", {"name": "New", "slug": "fresh", "vision": "Better care"}
        )
        assert response.status_code == 201
        assert response.json()["caller_role"] == "owner"
        assert Membership.objects.get(tree__slug="fresh").user == users["outsider"]

    def test_invalid_tree_gets_field_messages(self, users, client_for, tree):
        response = client_for(users["editor"]).post("/api/trees/", {"name": "", "slug": tree.slug})
        assert response.status_code == 400
        assert set(response.json()) == {"name", "slug", "vision"}

    def test_list_shows_only_visible_trees_with_search(self, users, client_for, tree):
        services.tree_create(owner=users["outsider"], name="Hidden", slug="hidden", vision="v")
        response = client_for(users["viewer"]).get("/api/trees/?search=tree")
        assert [t["slug"] for t in response.json()["results"]] == ["tree"]


@pytest.mark.django_db
class TestNodes:
    def test_create_infers_the_kind_from_the_parent(self, tree, goal, editor):
        response = editor.post(
            f"/api/trees/{tree.slug}/nodes/", {"parent": goal.pk, "title": "Bet"}
        )
        assert response.status_code == 201
        assert (response.json()["kind"], response.json()["parent"]) == ("bet", goal.pk)

    def test_create_without_a_parent_adds_a_goal(self, tree, editor):
        # Was a 500: the serializer let `parent` out, the service needs it.
        response = editor.post(f"/api/trees/{tree.slug}/nodes/", {"title": "Goal"})
        assert response.status_code == 201
        assert (response.json()["kind"], response.json()["parent"]) == ("goal", None)

    def test_wrong_kind_is_a_400_naming_the_parent(self, tree, goal, editor):
        response = editor.post(
            f"/api/trees/{tree.slug}/nodes/",
            {"parent": goal.pk, "kind": "initiative", "title": "Misplaced"},
        )
        assert response.status_code == 400
        assert response.json() == {
            "parent": ["An initiative must sit under a bet, not under a goal."]
        }
        assert not Node.objects.filter(title="Misplaced").exists()

    def test_parent_from_another_tree_reads_as_missing(self, users, tree, editor):
        other = services.tree_create(owner=users["editor"], name="O", slug="o", vision="v")
        foreign = services.node_create(tree=other, parent=None, title="Foreign goal")
        response = editor.post(
            f"/api/trees/{tree.slug}/nodes/", {"parent": foreign.pk, "title": "B"}
        )
        assert response.status_code == 400
        assert "parent" in response.json()

    def test_update_changes_fields_but_not_the_place(self, goal, editor):
        response = editor.patch(
            f"/api/nodes/{goal.pk}/", {"title": "Renamed", "confidence": 70, "kind": "bet"}
        )
        assert response.status_code == 200
        goal.refresh_from_db()
        assert (goal.title, goal.confidence, goal.kind) == ("Renamed", 70, "goal")

    def test_move_and_refused_move(self, tree, goal, editor):
        second = services.node_create(tree=tree, parent=None, title="Second goal")
        bet = services.node_create(tree=tree, parent=goal, title="Bet")
        response = editor.post(f"/api/nodes/{bet.pk}/move/", {"parent": second.pk, "position": 0})
        assert response.status_code == 200
        assert response.json()["parent"] == second.pk
        refused = editor.post(f"/api/nodes/{bet.pk}/move/", {"parent": None})
        assert refused.status_code == 400
        assert refused.json() == {
            "parent": ["A bet must sit under a goal; only goals hang under the vision."]
        }
        assert Node.objects.get(pk=bet.pk).parent_id == second.pk

    def test_delete_needs_cascade_for_a_subtree(self, tree, goal, editor):
        services.node_create(tree=tree, parent=goal, title="Bet")
        refused = editor.delete(f"/api/nodes/{goal.pk}/")
        assert refused.status_code == 400
        assert "1 descendant(s)" in refused.json()["cascade"][0]
        assert editor.delete(f"/api/nodes/{goal.pk}/?cascade=true").status_code == 204
        assert Node.objects.filter(tree=tree).count() == 0

    def test_filters(self, tree, goal, editor):
        services.node_create(tree=tree, parent=goal, title="Bet", status="killed")
        response = editor.get(f"/api/nodes/?tree__slug={tree.slug}&status=killed")
        assert [n["title"] for n in response.json()["results"]] == ["Bet"]


@pytest.mark.django_db
class TestHistory:
    def test_tree_history_names_user_action_and_fields(self, users, tree, goal, client_for):
        editor = client_for(users["editor"])
        editor.patch(f"/api/nodes/{goal.pk}/", {"title": "Renamed", "status": "active"})
        editor.post(
            f"/api/nodes/{goal.pk}/measures/",
            {
                "name": "NPS",
                "direction": "increase",
                "baseline_value": 10,
                "baseline_date": "2026-01-01",
                "target_value": 30,
                "target_date": "2027-01-01",
            },
        )
        editor.delete(f"/api/nodes/{goal.pk}/?cascade=true")
        entries = (
            client_for(users["viewer"]).get(f"/api/trees/{tree.slug}/history/").json()["results"]
        )
        summary = [(e["model"], e["action"], e["user"], e["changed_fields"]) for e in entries]
        assert ("node", "changed", "editor", ["status", "title"]) in summary
        assert ("measure", "created", "editor", []) in summary
        assert ("measure", "deleted", "editor", []) in summary
        assert ("node", "deleted", "editor", []) in summary
        assert summary[-1][:2] == ("tree", "created")

    def test_node_history(self, users, goal, client_for):
        client_for(users["editor"]).patch(f"/api/nodes/{goal.pk}/", {"weight": 3})
        entries = (
            client_for(users["viewer"]).get(f"/api/nodes/{goal.pk}/history/").json()["results"]
        )
        assert [(e["action"], e["changed_fields"]) for e in entries] == [
            ("changed", ["weight"]),
            ("created", []),
        ]


@pytest.mark.django_db
class TestMembers:
    def test_owner_adds_changes_and_removes_members(self, users, tree, client_for):
        owner = client_for(users["owner"])
        added = owner.post(
            f"/api/trees/{tree.slug}/members/", {"user": "outsider", "role": "viewer"}
        )
        assert added.status_code == 201
        member_id = added.json()["id"]
        changed = owner.patch(f"/api/trees/{tree.slug}/members/{member_id}/", {"role": "editor"})
        assert changed.json()["role"] == "editor"
        assert owner.delete(f"/api/trees/{tree.slug}/members/{member_id}/").status_code == 204
        assert not Membership.objects.filter(tree=tree, user=users["outsider"]).exists()

    def test_last_owner_cannot_be_removed(self, users, tree, client_for):
        membership = Membership.objects.get(tree=tree, user=users["owner"])
        response = client_for(users["owner"]).delete(
            f"/api/trees/{tree.slug}/members/{membership.pk}/"
        )
        assert response.status_code == 400
        assert response.json() == {"role": ["A tree needs at least one owner; add another first."]}

    def test_unknown_user_is_a_400(self, users, tree, client_for):
        response = client_for(users["owner"]).post(
            f"/api/trees/{tree.slug}/members/", {"user": "ghost", "role": "viewer"}
        )
        assert response.status_code == 400
        assert "user" in response.json()


@pytest.mark.django_db
class TestDataProducts:
    @pytest.fixture
    def domain(self):
        return services.domain_create(name="Laboratory", slug="lab")

    def test_create_with_ports_then_replace_them(self, users, client_for, domain):
        client = client_for(users["editor"])
        created = client.post(
            "/api/data-products/",
            {
                "name": "Lab results",
                "slug": "lab-results",
                "domain": "lab",
                "stage": "design",
                "output_ports": [{"name": "results", "kind": "table", "location": "lab.results"}],
            },
        )
        assert created.status_code == 201, created.content
        assert created.json()["owner"] == "editor"
        updated = client.patch(
            "/api/data-products/lab-results/",
            {"output_ports": [{"name": "api", "kind": "api", "location": "https://lab/api"}]},
        )
        assert updated.status_code == 200
        product = DataProduct.objects.get(slug="lab-results")
        assert list(product.output_ports.values_list("name", flat=True)) == ["api"]

    def test_duplicate_port_names_are_refused(self, users, client_for, domain):
        response = client_for(users["editor"]).post(
            "/api/data-products/",
            {
                "name": "X",
                "slug": "x",
                "domain": "lab",
                "output_ports": [{"name": "p", "kind": "table"}, {"name": "p", "kind": "api"}],
            },
        )
        assert response.status_code == 400
        assert response.json() == {"output_ports": ["Each output port needs its own name."]}
        assert not DataProduct.objects.exists()

    def test_link_and_unlink(self, users, client_for, domain, goal):
        product = services.data_product_create(name="P", slug="p", domain=domain)
        editor = client_for(users["editor"])
        linked = editor.post("/api/data-products/p/links/", {"node": goal.pk, "role": "produces"})
        assert linked.status_code == 201
        again = editor.post("/api/data-products/p/links/", {"node": goal.pk, "role": "produces"})
        assert again.status_code == 400
        listed = client_for(users["viewer"]).get("/api/data-products/p/links/").json()["results"]
        assert [(link["node"], link["role"]) for link in listed] == [(goal.pk, "produces")]
        outsider_view = (
            client_for(users["outsider"]).get("/api/data-products/p/links/").json()["results"]
        )
        assert outsider_view == []
        link_id = linked.json()["id"]
        assert editor.delete(f"/api/data-products/p/links/{link_id}/").status_code == 204
        assert product.links.count() == 0

    def test_filters_by_domain_and_stage(self, users, client_for, domain):
        other = services.domain_create(name="Imaging", slug="imaging")
        port = [{"name": "main", "kind": "table", "location": ""}]
        owner = users["owner"]
        for name, home in (("A", domain), ("B", other)):
            services.data_product_create(
                name=name,
                slug=name.lower(),
                domain=home,
                stage="live",
                owner=owner,
                output_ports=port,
            )
        services.data_product_create(name="C", slug="c", domain=domain, stage="discovery")
        response = client_for(users["viewer"]).get(
            "/api/data-products/?domain__slug=lab&stage=live"
        )
        assert [p["slug"] for p in response.json()["results"]] == ["a"]

    def test_domain_with_products_cannot_be_deleted(self, users, client_for, domain):
        services.data_product_create(name="A", slug="a", domain=domain)
        users["editor"].is_staff = True
        users["editor"].save()
        response = client_for(users["editor"]).delete("/api/domains/lab/")
        assert response.status_code == 400
        assert "still owns data products" in response.json()["domain"][0]


@pytest.mark.django_db
def test_schema_and_docs_are_served_offline(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/trees/{slug}/move" not in schema.content
    assert b"/api/nodes/{id}/move/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html
