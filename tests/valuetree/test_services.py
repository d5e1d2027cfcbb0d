"""Kind rules, positions, moves and deletes, against a real database."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from valuetree import services
from valuetree.models import DataProduct, Membership, Node


def positions(tree, parent):
    return list(
        Node.objects.filter(tree=tree, parent=parent)
        .order_by("position")
        .values_list("title", "position")
    )


@pytest.fixture
def shape(tree):
    """Two goals, each with two bets, each with two initiatives."""
    nodes = {}
    for g in range(2):
        goal = services.node_create(tree=tree, parent=None, title=f"G{g}")
        nodes[f"G{g}"] = goal
        for b in range(2):
            bet = services.node_create(tree=tree, parent=goal, title=f"G{g}B{b}")
            nodes[f"G{g}B{b}"] = bet
            for i in range(2):
                nodes[f"G{g}B{b}I{i}"] = services.node_create(
                    tree=tree, parent=bet, title=f"G{g}B{b}I{i}"
                )
    return nodes


@pytest.mark.django_db
class TestKindRules:
    def test_kind_follows_the_parent(self, shape):
        assert [shape[k].kind for k in ("G0", "G0B0", "G0B0I0")] == ["goal", "bet", "initiative"]

    @pytest.mark.parametrize(
        ("kind", "parent_key", "message"),
        [
            ("bet", None, "A bet must sit under a goal; only goals hang under the vision."),
            (
                "initiative",
                None,
                "An initiative must sit under a bet; only goals hang under the vision.",
            ),
            ("goal", "G0", "A goal must sit under the vision, not under a goal."),
            ("initiative", "G0", "An initiative must sit under a bet, not under a goal."),
            ("bet", "G0B0", "A bet must sit under a goal, not under a bet."),
            ("bet", "G0B0I0", "A bet must sit under a goal, not under an initiative."),
        ],
    )
    def test_wrong_parent_is_refused(self, tree, shape, kind, parent_key, message):
        before = Node.objects.count()
        parent = shape[parent_key] if parent_key else None
        with pytest.raises(ValidationError) as error:
            services.node_create(tree=tree, parent=parent, kind=kind, title="x")
        assert error.value.message_dict == {"parent": [message]}
        assert Node.objects.count() == before

    def test_nothing_goes_under_an_initiative(self, tree, shape):
        with pytest.raises(ValidationError) as error:
            services.node_create(tree=tree, parent=shape["G0B0I0"], title="x")
        assert "Initiatives are leaves" in str(error.value)

    def test_parent_from_another_tree_is_refused(self, users, shape):
        other = services.tree_create(owner=users["owner"], name="Other", slug="other", vision="v")
        with pytest.raises(ValidationError) as error:
            services.node_create(tree=other, parent=shape["G0"], title="x")
        assert error.value.message_dict == {"parent": ["The parent belongs to another tree."]}

    def test_goal_hypothesis_is_refused(self, tree):
        with pytest.raises(ValidationError) as error:
            services.node_create(tree=tree, parent=None, title="g", hypothesis="We believe")
        assert "hypothesis" in str(error.value).lower()

    @pytest.mark.parametrize(("field", "value"), [("confidence", 101), ("weight", -1)])
    def test_out_of_range_fields_are_refused(self, tree, field, value):
        with pytest.raises(ValidationError) as error:
            services.node_create(tree=tree, parent=None, title="g", **{field: value})
        assert field in error.value.message_dict
        assert not Node.objects.filter(title="g").exists()

    def test_database_refuses_a_parentless_bet_even_without_the_service(self, tree):
        with pytest.raises(IntegrityError), transaction.atomic():
            Node.objects.create(tree=tree, kind="bet", title="orphan")

    def test_database_refuses_a_goal_with_a_parent(self, tree, shape):
        with pytest.raises(IntegrityError), transaction.atomic():
            Node.objects.create(tree=tree, kind="goal", parent=shape["G0"], title="nested goal")


@pytest.mark.django_db
class TestPositions:
    def test_create_appends_and_inserts(self, tree, shape):
        services.node_create(tree=tree, parent=None, title="G-first", position=0)
        services.node_create(tree=tree, parent=None, title="G-last", position=99)
        assert positions(tree, None) == [("G-first", 0), ("G0", 1), ("G1", 2), ("G-last", 3)]

    def test_negative_position_is_refused(self, tree):
        with pytest.raises(ValidationError):
            services.node_create(tree=tree, parent=None, title="g", position=-1)


@pytest.mark.django_db
class TestMove:
    def test_bet_moves_to_another_goal_with_its_initiatives(self, tree, shape):
        services.node_move(node=shape["G0B0"], parent=shape["G1"], position=1)
        assert positions(tree, shape["G0"]) == [("G0B1", 0)]
        assert positions(tree, shape["G1"]) == [("G1B0", 0), ("G0B0", 1), ("G1B1", 2)]
        assert positions(tree, shape["G0B0"]) == [("G0B0I0", 0), ("G0B0I1", 1)]

    def test_move_without_position_goes_last(self, tree, shape):
        services.node_move(node=shape["G0B0I0"], parent=shape["G1B1"])
        assert positions(tree, shape["G1B1"]) == [("G1B1I0", 0), ("G1B1I1", 1), ("G0B0I0", 2)]
        assert positions(tree, shape["G0B0"]) == [("G0B0I1", 0)]

    @pytest.mark.parametrize(
        ("title", "position", "expected"),
        [
            ("G0", 2, ["G1", "G2", "G0"]),
            ("G0", 99, ["G1", "G2", "G0"]),
            ("G2", 0, ["G2", "G0", "G1"]),
            ("G1", 1, ["G0", "G1", "G2"]),
        ],
    )
    def test_reorder_among_siblings(self, tree, shape, title, position, expected):
        services.node_create(tree=tree, parent=None, title="G2")
        node = Node.objects.get(tree=tree, title=title)
        services.node_move(node=node, parent=None, position=position)
        assert positions(tree, None) == [(t, i) for i, t in enumerate(expected)]

    @pytest.mark.parametrize(
        ("node_key", "parent_key"),
        [
            ("G0B0I0", "G1"),  # initiative under a goal
            ("G0B0", "G1B0"),  # bet under a bet
            ("G0", "G1"),  # goal under a goal
            ("G0B0", None),  # bet to the vision
            ("G0B0", "G0B0I0"),  # a cycle: a bet under its own initiative
            ("G0", "G0B0I1"),  # a cycle: a goal under its own grandchild
        ],
    )
    def test_refused_move_changes_nothing(self, tree, shape, node_key, parent_key):
        before = list(Node.objects.order_by("id").values_list("id", "parent_id", "position"))
        parent = shape[parent_key] if parent_key else None
        with pytest.raises(ValidationError) as error:
            services.node_move(node=shape[node_key], parent=parent)
        assert "parent" in error.value.message_dict
        after = list(Node.objects.order_by("id").values_list("id", "parent_id", "position"))
        assert after == before

    def test_node_cannot_be_its_own_parent(self, shape):
        with pytest.raises(ValidationError) as error:
            services.node_move(node=shape["G0B0"], parent=shape["G0B0"])
        assert error.value.message_dict == {"parent": ["A node cannot be its own parent."]}

    def test_move_to_another_tree_is_refused(self, users, shape):
        other = services.tree_create(owner=users["owner"], name="Other", slug="other", vision="v")
        goal = services.node_create(tree=other, parent=None, title="Other goal")
        with pytest.raises(ValidationError):
            services.node_move(node=shape["G0B0"], parent=goal)
        assert Node.objects.get(pk=shape["G0B0"].pk).parent_id == shape["G0"].pk


@pytest.mark.django_db
class TestDelete:
    def test_subtree_delete_needs_cascade(self, tree, shape):
        with pytest.raises(ValidationError) as error:
            services.node_delete(node=shape["G0"])
        assert "6 descendant(s)" in str(error.value)
        assert Node.objects.filter(tree=tree).count() == 14

    def test_cascade_deletes_descendants_and_closes_the_gap(self, tree, shape):
        removed = services.node_delete(node=shape["G0"], cascade=True)
        assert removed == 6
        assert positions(tree, None) == [("G1", 0)]
        assert Node.objects.filter(tree=tree).count() == 7

    def test_leaf_deletes_without_cascade(self, tree, shape):
        assert services.node_delete(node=shape["G0B0I0"]) == 0
        assert positions(tree, shape["G0B0"]) == [("G0B0I1", 0)]

    def test_killing_is_a_status_not_a_deletion(self, tree, shape):
        services.node_update(node=shape["G0B0"], status="killed")
        assert Node.objects.get(pk=shape["G0B0"].pk).status == "killed"
        assert Node.objects.filter(tree=tree).count() == 14


@pytest.mark.django_db
class TestMembership:
    def test_last_owner_cannot_leave_or_be_demoted(self, tree, users):
        owner = Membership.objects.get(tree=tree, user=users["owner"])
        with pytest.raises(ValidationError):
            services.membership_remove(membership=owner)
        with pytest.raises(ValidationError):
            services.membership_set(tree=tree, user=users["owner"], role="viewer")
        assert Membership.objects.get(pk=owner.pk).role == "owner"

    def test_second_owner_lets_the_first_step_down(self, tree, users):
        services.membership_set(tree=tree, user=users["editor"], role="owner")
        services.membership_set(tree=tree, user=users["owner"], role="viewer")
        roles = dict(Membership.objects.filter(tree=tree).values_list("user__username", "role"))
        assert roles == {"owner": "viewer", "editor": "owner", "viewer": "viewer"}

    def test_unknown_role_is_refused(self, tree, users):
        with pytest.raises(ValidationError):
            services.membership_set(tree=tree, user=users["outsider"], role="admin")
        assert not Membership.objects.filter(user=users["outsider"]).exists()


@pytest.mark.django_db
def test_a_bad_output_port_is_reported_under_output_ports():
    domain = services.domain_create(name="Lab", slug="lab")
    with pytest.raises(ValidationError) as error:
        services.data_product_create(
            name="P", slug="p", domain=domain, output_ports=[{"name": "", "kind": "table"}]
        )
    assert error.value.message_dict == {
        "output_ports": ["Port 1: name: This field cannot be blank."]
    }
    assert not DataProduct.objects.exists()
