"""The open catalogue over the API: the board, orphans, similar products, lifecycle
moves, early consumers, duplicates and notifications (the permission matrix is in
test_api_permissions.py)."""

from __future__ import annotations

import pytest

from valuetree import services
from valuetree.models import (
    ConsumerInterest,
    DataProduct,
    DataProductLink,
    LifecycleTransition,
    Notification,
)
from valuetree.similarity import SAME_DOMAIN_FACTOR

TURNAROUND = {
    "name": "Patient sample turnaround",
    "purpose": "Time from sample collection to validated result for every patient sample",
}
TWIN = {
    "slug": "sample-turnaround-times",
    "name": "Sample turnaround times",
    "purpose": "Time from sample collection to reported result for each sample",
    "output_ports": [{"name": "sample_turnaround_weekly", "kind": "table"}],
}


@pytest.fixture
def domains(db):
    return {
        slug: services.domain_create(name=slug.title(), slug=slug)
        for slug in ("lab", "imaging", "finance")
    }


@pytest.fixture
def turnaround(users, domains):
    """A planned product of the lab, owned by the tree's owner."""
    return services.data_product_create(
        slug="turnaround",
        domain=domains["lab"],
        owner=users["owner"],
        output_ports=[{"name": "sample_turnaround_daily", "kind": "table"}],
        by=users["owner"],
        **TURNAROUND,
    )


@pytest.fixture
def budget(users, domains):
    return services.data_product_create(
        slug="budget",
        name="Cost centre budget",
        purpose="Planned and actual spend per cost centre",
        domain=domains["finance"],
        owner=users["editor"],
        stage="design",
    )


@pytest.fixture
def bet(tree):
    goal = services.node_create(tree=tree, parent=None, title="Faster results")
    return services.node_create(tree=tree, parent=goal, title="Automate the lab")


@pytest.fixture
def initiative(tree, bet):
    return services.node_create(tree=tree, parent=bet, title="Ward alerts")


@pytest.fixture
def hidden(users):
    """A tree only the outsider can read, with an initiative."""
    tree = services.tree_create(owner=users["outsider"], name="Hidden", slug="hidden", vision="v")
    goal = services.node_create(tree=tree, parent=None, title="Hidden goal")
    bet = services.node_create(tree=tree, parent=goal, title="Hidden bet")
    return services.node_create(tree=tree, parent=bet, title="Hidden initiative")


def as_(client_for, users, role):
    return client_for(users[role] if role != "anonymous" else None)


# --- Create and update show similar products -----------------------------------------------


@pytest.mark.django_db
class TestSavedProductsShowSimilarOnes:
    def test_create_answers_the_similar_products_and_records_the_creator(
        self, users, client_for, turnaround, domains
    ):
        response = client_for(users["editor"]).post(
            "/api/data-products/", {**TWIN, "domain": "imaging"}, format="json"
        )
        assert response.status_code == 201
        body = response.json()
        assert body["owner"] == "editor"
        [similar] = body["similar_products"]
        assert {k: similar[k] for k in ("slug", "name", "domain", "owner", "stage")} == {
            "slug": "turnaround",
            "name": "Patient sample turnaround",
            "domain": "lab",
            "owner": "owner",
            "stage": "discovery",
        }
        assert similar["score"] >= 0.35
        made = DataProduct.objects.get(slug=TWIN["slug"])
        assert list(made.transitions.values_list("from_stage", "to_stage", "by__username")) == [
            ("", "discovery", "editor")
        ]
        assert list(Notification.objects.values_list("recipient__username", "kind")) == [
            ("owner", "similar_product")
        ]

    def test_update_answers_the_similar_products(self, users, client_for, turnaround, budget):
        response = client_for(users["editor"]).patch(
            f"/api/data-products/{budget.slug}/",
            {"name": "Sample turnaround", "purpose": "Time from sample collection to result"},
            format="json",
        )
        assert response.status_code == 200
        assert [s["slug"] for s in response.json()["similar_products"]] == ["turnaround"]

    @pytest.mark.parametrize("slug", ["board", "similar", "orphans", "import", "new"])
    def test_a_reserved_slug_is_a_field_error(self, users, client_for, domains, slug):
        response = client_for(users["editor"]).post(
            "/api/data-products/", {"slug": slug, "name": "X", "domain": "lab"}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {"slug": [f"“{slug}” is reserved; choose another slug."]}
        assert not DataProduct.objects.exists()

    def test_live_without_a_port_is_refused_with_nothing_written(self, users, client_for, domains):
        response = client_for(users["editor"]).post(
            "/api/data-products/",
            {"slug": "qc", "name": "QC", "domain": "lab", "stage": "live"},
            format="json",
        )
        assert response.status_code == 400
        assert response.json() == {
            "output_ports": ["A live data product needs at least one output port."]
        }
        assert not DataProduct.objects.exists()
        assert not LifecycleTransition.objects.exists()

    def test_patching_the_stage_answers_the_new_stage(self, users, client_for, turnaround):
        response = client_for(users["owner"]).patch(
            "/api/data-products/turnaround/", {"stage": "design"}, format="json"
        )
        assert response.status_code == 200
        assert DataProduct.objects.get(slug="turnaround").stage == "design"
        assert response.json()["stage"] == "design"


# --- The board ---------------------------------------------------------------------------


@pytest.mark.django_db
class TestBoard:
    def test_names_readable_nodes_and_counts_the_others(
        self, users, client_for, turnaround, initiative, hidden
    ):
        services.data_product_link(product=turnaround, node=initiative, role="uses")
        services.data_product_link(product=turnaround, node=hidden, role="uses")
        services.consumer_interest_register(
            product=turnaround, node=initiative, user=users["editor"], team="Ward 3", purpose="P"
        )
        services.consumer_interest_register(
            product=turnaround, node=hidden, user=users["outsider"], team="Secret", purpose="Q"
        )

        response = client_for(users["viewer"]).get("/api/data-products/board/")

        assert response.status_code == 200
        [row] = response.json()
        assert row["slug"] == "turnaround"
        assert row["output_ports"] == [
            {"name": "sample_turnaround_daily", "kind": "table", "location": ""}
        ]
        assert row["serves"] == [
            {
                "tree": "tree",
                "node": initiative.pk,
                "kind": "initiative",
                "title": "Ward alerts",
                "role": "uses",
            }
        ]
        assert row["serves_elsewhere"] == 1
        interests = sorted(row["interests"], key=lambda i: i["team"])
        assert [
            (i["team"], i["node"], i["node_title"], i["tree"], i["user"]) for i in interests
        ] == [
            ("Secret", None, None, None, "outsider"),
            ("Ward 3", initiative.pk, "Ward alerts", "tree", "editor"),
        ]
        assert "Hidden initiative" not in response.content.decode()

    def test_only_planned_products_and_filters(self, users, client_for, turnaround, budget):
        services.data_product_create(slug="old", name="Old", domain=budget.domain, stage="retired")
        client = client_for(users["outsider"])

        def slugs(query=""):
            response = client.get(f"/api/data-products/board/{query}")
            assert response.status_code == 200
            return [p["slug"] for p in response.json()]

        assert slugs() == ["budget", "turnaround"]
        assert slugs("?stage=design") == ["budget"]
        assert slugs("?domain=lab") == ["turnaround"]
        assert slugs("?q=spend") == ["budget"]
        assert slugs("?q=spend&domain=lab") == []

    @pytest.mark.parametrize(
        ("query", "field"),
        [("?stage=live", "stage"), ("?domain=nowhere", "domain")],
    )
    def test_bad_filters_are_field_errors(self, users, client_for, turnaround, query, field):
        response = client_for(users["viewer"]).get(f"/api/data-products/board/{query}")
        assert response.status_code == 400
        assert list(response.json()) == [field]

    def test_anonymous_is_401(self, client_for, turnaround):
        assert client_for().get("/api/data-products/board/").status_code == 401


# --- Orphans -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_orphans_lists_unused_products_and_initiatives_on_ending_ones(
    users, client_for, turnaround, budget, initiative, hidden, domains
):
    ending = services.data_product_create(
        slug="ending", name="Ending", domain=domains["lab"], stage="deprecated"
    )
    services.data_product_mark_duplicate(product=ending, original=turnaround, by=None)
    services.data_product_link(product=ending, node=initiative, role="uses")
    services.data_product_link(product=ending, node=hidden, role="uses")

    response = client_for(users["viewer"]).get("/api/data-products/orphans/")

    assert response.status_code == 200
    body = response.json()
    assert [p["slug"] for p in body["products"]] == ["budget", "turnaround"]
    assert body["initiatives"] == [
        {
            "tree": "tree",
            "node": initiative.pk,
            "title": "Ward alerts",
            "role": "uses",
            "data_product": "ending",
            "stage": "deprecated",
            "successor": "turnaround",
        }
    ]


# --- Similar products --------------------------------------------------------------------


@pytest.mark.django_db
class TestSimilar:
    def test_probe_finds_the_twin_with_its_score(self, users, client_for, turnaround, budget):
        response = client_for(users["outsider"]).post(
            "/api/data-products/similar/",
            {
                "name": TWIN["name"],
                "purpose": TWIN["purpose"],
                "output_ports": ["sample_turnaround_weekly"],
            },
            format="json",
        )
        assert response.status_code == 200
        [found] = response.json()["results"]
        assert (found["slug"], found["owner"]) == ("turnaround", "owner")
        assert 0.35 <= found["score"] <= 1
        assert not Notification.objects.exists()  # a probe writes nothing

    def test_a_name_alone_is_enough(self, users, client_for, turnaround, budget):
        response = client_for(users["viewer"]).post(
            "/api/data-products/similar/", {"name": "Cost centre budget"}, format="json"
        )
        assert response.status_code == 200
        assert [(p["slug"], p["score"]) for p in response.json()["results"]] == [("budget", 1.0)]

    def test_a_probe_in_the_products_own_domain_weighs_it_less(
        self, users, client_for, turnaround, budget
    ):
        def score(body):
            response = client_for(users["viewer"]).post(
                "/api/data-products/similar/", body, format="json"
            )
            assert response.status_code == 200
            return {p["slug"]: p["score"] for p in response.json()["results"]}

        alone = score({"name": "Cost centre budget"})
        same = score({"name": "Cost centre budget", "domain": budget.domain.slug})
        assert same["budget"] == pytest.approx(alone["budget"] * SAME_DOMAIN_FACTOR, abs=1e-3)
        assert score({"name": "Cost centre budget", "domain": None}) == alone

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "name"),
            ({"name": ""}, "name"),
            ({"name": "X", "output_ports": "a"}, "output_ports"),
            ({"name": "X", "domain": "no-such-domain"}, "domain"),
        ],
    )
    def test_bad_probe_is_a_field_error(self, users, client_for, turnaround, body, field):
        response = client_for(users["viewer"]).post(
            "/api/data-products/similar/", body, format="json"
        )
        assert response.status_code == 400
        assert list(response.json()) == [field]

    def test_a_product_is_not_similar_to_itself(self, users, client_for, turnaround, budget):
        services.data_product_create(
            slug="twin",
            domain=budget.domain,
            owner=None,
            **{k: v for k, v in TWIN.items() if k != "slug"},
        )
        response = client_for(users["viewer"]).get("/api/data-products/turnaround/similar/")
        assert response.status_code == 200
        assert [p["slug"] for p in response.json()["results"]] == ["twin"]

    def test_similar_of_a_missing_product_is_404(self, users, client_for, db):
        assert (
            client_for(users["viewer"]).get("/api/data-products/nope/similar/").status_code == 404
        )


# --- Lifecycle transitions -----------------------------------------------------------------


@pytest.mark.django_db
class TestTransitions:
    def url(self, product):
        return f"/api/data-products/{product.slug}/transitions/"

    def test_list_shows_who_and_when(self, users, client_for, turnaround):
        services.data_product_transition(
            product=turnaround, to_stage="design", by=users["owner"], note="Schema drafted"
        )
        response = client_for(users["outsider"]).get(self.url(turnaround))
        assert response.status_code == 200
        assert [
            (t["from_stage"], t["to_stage"], t["by"], t["note"]) for t in response.json()["results"]
        ] == [
            ("", "discovery", "owner", ""),
            ("discovery", "design", "owner", "Schema drafted"),
        ]
        assert all(t["at"] for t in response.json()["results"])
        assert "stage" not in response.json()["results"][0]  # write-only

    def test_the_owner_moves_it_on(self, users, client_for, turnaround):
        response = client_for(users["owner"]).post(
            self.url(turnaround), {"stage": "live", "note": "Ready"}, format="json"
        )
        assert response.status_code == 201
        body = response.json()
        assert (body["from_stage"], body["to_stage"], body["by"], body["note"]) == (
            "discovery",
            "live",
            "owner",
            "Ready",
        )
        assert DataProduct.objects.get(pk=turnaround.pk).stage == "live"

    @pytest.mark.parametrize(
        ("start", "body", "expected"),
        [
            (
                "live",
                {"stage": "discovery"},
                {
                    "stage": [
                        "A live product cannot move to discovery (allowed: deprecated, retired)."
                    ]
                },
            ),
            ("discovery", {"stage": "discovery"}, {"stage": ["The product is discovery already."]}),
            ("discovery", {"stage": "bogus"}, {"stage": ['"bogus" is not a valid choice.']}),
            ("discovery", {}, {"stage": ["This field is required."]}),
        ],
    )
    def test_refused_moves_are_field_errors_with_nothing_written(
        self, users, client_for, turnaround, start, body, expected
    ):
        if start != "discovery":
            services.data_product_transition(product=turnaround, to_stage=start, by=None)
        before = LifecycleTransition.objects.count()
        response = client_for(users["owner"]).post(self.url(turnaround), body, format="json")
        assert response.status_code == 400
        assert response.json() == expected
        assert DataProduct.objects.get(pk=turnaround.pk).stage == start
        assert LifecycleTransition.objects.count() == before

    def test_live_without_an_owner_is_an_owner_error(self, users, client_for, domains):
        services.data_product_create(
            slug="qc",
            name="QC",
            domain=domains["lab"],
            owner=None,
            output_ports=[{"name": "qc", "kind": "table"}],
        )
        staff = users["leadership"]
        staff.is_staff = True
        staff.save()
        response = client_for(staff).post(
            "/api/data-products/qc/transitions/", {"stage": "live"}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {"owner": ["A live data product needs an owner."]}
        assert DataProduct.objects.get(slug="qc").stage == "discovery"

    @pytest.mark.parametrize(("role", "status"), [("editor", 403), ("anonymous", 401)])
    def test_others_cannot_move_it(self, users, client_for, turnaround, role, status):
        response = as_(client_for, users, role).post(
            self.url(turnaround), {"stage": "design"}, format="json"
        )
        assert response.status_code == status
        assert DataProduct.objects.get(pk=turnaround.pk).stage == "discovery"
        assert turnaround.transitions.count() == 1

    def test_deprecating_tells_who_relies_on_it(
        self,
        users,
        client_for,
        turnaround,
        initiative,
        mailoutbox,
        django_capture_on_commit_callbacks,
    ):
        initiative.owner = users["editor"]
        initiative.save()
        users["editor"].email = "editor@example.com"
        users["editor"].save()
        services.data_product_link(product=turnaround, node=initiative, role="uses")
        with django_capture_on_commit_callbacks(execute=True):
            response = client_for(users["owner"]).post(
                self.url(turnaround), {"stage": "deprecated"}, format="json"
            )
        assert response.status_code == 201
        assert list(Notification.objects.values_list("recipient__username", "kind")) == [
            ("editor", "deprecation")
        ]
        assert [m.to for m in mailoutbox] == [["editor@example.com"]]

    def test_work_under_a_killed_bet_is_not_told(
        self, users, client_for, turnaround, bet, initiative, django_capture_on_commit_callbacks
    ):
        """The bet was killed, its initiatives with it: their owner was still told
        "Your work relying on it: Ward alerts"."""
        initiative.owner = users["editor"]
        initiative.save()
        services.data_product_link(product=turnaround, node=initiative, role="uses")
        services.node_update(node=bet, status="killed")
        with django_capture_on_commit_callbacks(execute=True):
            response = client_for(users["owner"]).post(
                self.url(turnaround), {"stage": "deprecated"}, format="json"
            )
        assert response.status_code == 201
        assert not Notification.objects.filter(kind="deprecation").exists()


# --- Early consumers -----------------------------------------------------------------------


@pytest.mark.django_db
class TestInterests:
    def url(self, product, suffix=""):
        return f"/api/data-products/{product.slug}/interests/{suffix}"

    def body(self, node, **extra):
        return {"node": node.pk, "team": "Ward 3", "purpose": "Faster alerts", **extra}

    def test_an_editor_registers_and_the_owner_is_told(
        self, users, client_for, turnaround, initiative
    ):
        response = client_for(users["editor"]).post(
            self.url(turnaround), self.body(initiative), format="json"
        )
        assert response.status_code == 201
        body = response.json()
        assert {
            k: body[k] for k in ("data_product", "team", "node", "node_title", "tree", "user")
        } == {
            "data_product": "turnaround",
            "team": "Ward 3",
            "node": initiative.pk,
            "node_title": "Ward alerts",
            "tree": "tree",
            "user": "editor",
        }
        assert list(Notification.objects.values_list("recipient__username", "kind")) == [
            ("owner", "interest")
        ]

    def test_list_hides_initiatives_of_trees_you_cannot_read(
        self, users, client_for, turnaround, initiative
    ):
        services.consumer_interest_register(
            product=turnaround, node=initiative, user=users["editor"], team="Ward 3", purpose="P"
        )
        seen = {
            role: [
                (i["team"], i["node"], i["node_title"], i["tree"])
                for i in client_for(users[role]).get(self.url(turnaround)).json()["results"]
            ]
            for role in ("viewer", "outsider")
        }
        assert seen == {
            "viewer": [("Ward 3", initiative.pk, "Ward alerts", "tree")],
            "outsider": [("Ward 3", None, None, None)],
        }

    @pytest.mark.parametrize(
        ("role", "node", "status", "message"),
        [
            ("viewer", "initiative", 403, None),  # reads the tree, may not edit it
            ("leadership", "initiative", 403, None),
            # A node in a tree you cannot see "does not exist" (400, no leak).
            ("outsider", "initiative", 400, 'Invalid pk "{pk}" - object does not exist.'),
            ("outsider", "hidden", 201, None),
            ("editor", "hidden", 400, 'Invalid pk "{pk}" - object does not exist.'),
            ("editor", "bet", 400, "Pick an initiative, not a bet."),
            ("anonymous", "initiative", 401, None),
        ],
    )
    def test_who_may_register_for_which_node(
        self, users, client_for, turnaround, bet, initiative, hidden, role, node, status, message
    ):
        target = {"initiative": initiative, "hidden": hidden, "bet": bet}[node]
        response = as_(client_for, users, role).post(
            self.url(turnaround), self.body(target), format="json"
        )
        assert response.status_code == status
        if message is not None:
            assert response.json() == {"node": [message.format(pk=target.pk)]}
        assert ConsumerInterest.objects.count() == (1 if status == 201 else 0)

    def test_a_live_product_is_refused(self, users, client_for, turnaround, initiative):
        services.data_product_transition(product=turnaround, to_stage="live", by=None)
        response = client_for(users["editor"]).post(
            self.url(turnaround), self.body(initiative), format="json"
        )
        assert response.status_code == 400
        assert list(response.json()) == ["data_product"]
        assert "“Patient sample turnaround” is live" in response.json()["data_product"][0]
        assert not ConsumerInterest.objects.exists()

    def test_registering_twice_is_refused(self, users, client_for, turnaround, initiative):
        client = client_for(users["editor"])
        assert (
            client.post(self.url(turnaround), self.body(initiative), format="json").status_code
            == 201
        )
        again = client.post(
            self.url(turnaround), self.body(initiative, team="Ward 4"), format="json"
        )
        assert again.status_code == 400
        assert again.json() == {
            "node": ["“Ward alerts” is already registered as waiting for this product."]
        }
        assert list(ConsumerInterest.objects.values_list("team", flat=True)) == ["Ward 3"]

    @pytest.mark.parametrize(
        ("role", "status"),
        [("editor", 204), ("owner", 204), ("viewer", 403), ("outsider", 403), ("anonymous", 401)],
    )
    def test_withdraw_by_who_registered_or_the_owner(
        self, users, client_for, turnaround, initiative, role, status
    ):
        interest = services.consumer_interest_register(
            product=turnaround, node=initiative, user=users["editor"], team="T", purpose="P"
        )
        response = as_(client_for, users, role).delete(self.url(turnaround, f"{interest.pk}/"))
        assert response.status_code == status
        assert ConsumerInterest.objects.filter(pk=interest.pk).exists() == (status != 204)

    def test_withdraw_through_another_product_is_404(
        self, users, client_for, turnaround, budget, initiative
    ):
        interest = services.consumer_interest_register(
            product=turnaround, node=initiative, user=users["editor"], team="T", purpose="P"
        )
        response = client_for(users["editor"]).delete(self.url(budget, f"{interest.pk}/"))
        assert response.status_code == 404
        assert ConsumerInterest.objects.filter(pk=interest.pk).exists()


# --- Duplicate of ------------------------------------------------------------------------


@pytest.fixture
def duplicate(users, domains, initiative):
    """The editor's product, serving the initiative, with a team waiting for it."""
    made = services.data_product_create(
        slug="duplicate",
        domain=domains["imaging"],
        owner=users["editor"],
        **{k: v for k, v in TWIN.items() if k != "slug"},
    )
    services.data_product_link(product=made, node=initiative, role="uses")
    services.consumer_interest_register(
        product=made, node=initiative, user=users["viewer"], team="Ward 3", purpose="P"
    )
    Notification.objects.all().delete()
    return made


@pytest.mark.django_db
class TestDuplicateOf:
    url = "/api/data-products/duplicate/duplicate-of/"

    @pytest.mark.parametrize(
        ("then", "stage", "links", "interests"),
        [("keep", "discovery", 0, 0), ("merge", "retired", 1, 1), ("retire", "retired", 0, 0)],
    )
    def test_mark_then_keep_merge_or_retire(
        self, users, client_for, turnaround, duplicate, then, stage, links, interests
    ):
        response = client_for(users["editor"]).post(
            self.url, {"original": "turnaround", "then": then}, format="json"
        )
        assert response.status_code == 200
        assert (response.json()["duplicate_of"], response.json()["stage"]) == ("turnaround", stage)
        assert (turnaround.links.count(), turnaround.interests.count()) == (links, interests)
        assert list(
            Notification.objects.filter(kind="duplicate").values_list(
                "recipient__username", "data_product__slug", "related_product__slug"
            )
        ) == [("owner", "turnaround", "duplicate")]

    def test_then_defaults_to_keep(self, users, client_for, turnaround, duplicate):
        response = client_for(users["editor"]).post(
            self.url, {"original": "turnaround"}, format="json"
        )
        assert response.status_code == 200
        assert DataProduct.objects.get(slug="duplicate").stage == "discovery"

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"original": "duplicate"}, {"original": ["A product cannot duplicate itself."]}),
            (
                {"original": "nowhere"},
                {"original": ["Object with slug=nowhere does not exist."]},
            ),
            ({}, {"original": ["This field is required."]}),
            (
                {"original": "turnaround", "then": "burn"},
                {"then": ['"burn" is not a valid choice.']},
            ),
            (
                {"original": "old"},
                {"original": ["“Old” is retired; pick a living one."]},
            ),
        ],
    )
    def test_refused_with_a_field_error_and_nothing_written(
        self, users, client_for, turnaround, duplicate, domains, body, expected
    ):
        services.data_product_create(slug="old", name="Old", domain=domains["lab"], stage="retired")
        response = client_for(users["editor"]).post(self.url, body, format="json")
        assert response.status_code == 400
        assert response.json() == expected
        assert DataProduct.objects.get(slug="duplicate").duplicate_of_id is None
        assert not Notification.objects.exists()

    @pytest.mark.parametrize(
        ("role", "status"), [("owner", 403), ("viewer", 403), ("anonymous", 401)]
    )
    def test_only_its_owner_may_mark_it(
        self, users, client_for, turnaround, duplicate, role, status
    ):
        response = as_(client_for, users, role).post(
            self.url, {"original": "turnaround", "then": "merge"}, format="json"
        )
        assert response.status_code == status
        assert DataProduct.objects.get(slug="duplicate").duplicate_of_id is None
        assert DataProductLink.objects.get().data_product.slug == "duplicate"


# --- Notifications -----------------------------------------------------------------------


@pytest.mark.django_db
class TestNotifications:
    @pytest.fixture
    def inboxes(self, users):
        own = [
            services.notify(recipients=[users["viewer"].pk], kind="interest", subject=s)[0]
            for s in ("first", "second", "third")
        ]
        other = services.notify(recipients=[users["editor"].pk], kind="interest", subject="x")[0]
        return own, other

    def test_list_is_your_own_newest_first(self, users, client_for, inboxes):
        response = client_for(users["viewer"]).get("/api/notifications/")
        assert response.status_code == 200
        assert [n["subject"] for n in response.json()["results"]] == ["third", "second", "first"]
        assert client_for(users["outsider"]).get("/api/notifications/").json()["results"] == []

    def test_read_marks_only_the_given_ones_of_your_own(self, users, client_for, inboxes):
        own, other = inboxes
        client = client_for(users["viewer"])
        response = client.post(
            "/api/notifications/read/", {"ids": [own[0].pk, other.pk]}, format="json"
        )
        assert response.status_code == 200
        assert response.json() == {"marked": 1}
        unread = client.get("/api/notifications/?unread=true").json()["results"]
        assert [n["subject"] for n in unread] == ["third", "second"]
        assert Notification.objects.get(pk=other.pk).read_at is None
        everything = client.get("/api/notifications/").json()["results"]
        assert [n["read_at"] is not None for n in everything] == [False, False, True]

    def test_read_without_ids_marks_all_of_yours(self, users, client_for, inboxes):
        _, other = inboxes
        response = client_for(users["viewer"]).post("/api/notifications/read/", {}, format="json")
        assert response.json() == {"marked": 3}
        assert Notification.objects.filter(read_at__isnull=True).get() == other

    @pytest.mark.parametrize("url", ["/api/notifications/", "/api/notifications/read/"])
    def test_anonymous_is_401(self, client_for, db, url):
        client = client_for()
        response = client.get(url) if url.endswith("notifications/") else client.post(url, {})
        assert response.status_code == 401
