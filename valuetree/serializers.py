"""DRF serializers: validation of API input and representation of single objects.

The whole tree is not serialised here: ``selectors.tree_get`` builds it from
``values()`` and the view renders it with orjson (STYLE.md, large reads).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from valuetree.models import (
    DataProduct,
    DataProductLink,
    Domain,
    Membership,
    Node,
    NodeKind,
    OutputPort,
    ValueTree,
)

User = get_user_model()


def username_field(**kwargs: object) -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True), **kwargs
    )


class TreeSerializer(serializers.ModelSerializer):
    caller_role = serializers.CharField(read_only=True)

    class Meta:
        model = ValueTree
        fields = [
            "id",
            "slug",
            "name",
            "vision",
            "description",
            "caller_role",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class TreeListSerializer(TreeSerializer):
    owner = serializers.CharField(source="owner_username", read_only=True, allow_null=True)
    goal_count = serializers.IntegerField(read_only=True)
    bet_count = serializers.IntegerField(read_only=True)
    initiative_count = serializers.IntegerField(read_only=True)

    class Meta(TreeSerializer.Meta):
        fields = [
            *TreeSerializer.Meta.fields,
            "owner",
            "goal_count",
            "bet_count",
            "initiative_count",
        ]


class NodeSerializer(serializers.ModelSerializer):
    """A node on its own. Its tree, parent, kind and position change only by a move."""

    tree = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owner = username_field(allow_null=True, required=False)
    accountable = username_field(allow_null=True, required=False)

    class Meta:
        model = Node
        fields = [
            "id",
            "tree",
            "parent",
            "position",
            "kind",
            "title",
            "description",
            "hypothesis",
            "owner",
            "accountable",
            "investment_amount",
            "investment_unit",
            "expected_value_amount",
            "expected_value_unit",
            "confidence",
            "weight",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "tree", "parent", "position", "kind", "created_at", "updated_at"]


class NodeCreateSerializer(NodeSerializer):
    """Create input: ``parent`` is a node of the same tree (empty for a goal); ``kind``
    defaults to the only kind the parent may hold; ``position`` to the end."""

    parent = serializers.PrimaryKeyRelatedField(
        queryset=Node.objects.none(), allow_null=True, required=False
    )
    kind = serializers.ChoiceField(choices=NodeKind.choices, required=False)
    position = serializers.IntegerField(min_value=0, required=False)

    class Meta(NodeSerializer.Meta):
        read_only_fields = ["id", "tree", "created_at", "updated_at"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Parents come from the same tree only ("does not exist" otherwise).
        if "tree" in self.context:
            self.fields["parent"].queryset = Node.objects.filter(tree=self.context["tree"])


class NodeMoveSerializer(serializers.Serializer):
    parent = serializers.PrimaryKeyRelatedField(queryset=Node.objects.none(), allow_null=True)
    position = serializers.IntegerField(min_value=0, required=False, allow_null=True)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if "tree_id" in self.context:
            self.fields["parent"].queryset = Node.objects.filter(tree_id=self.context["tree_id"])


class MembershipSerializer(serializers.ModelSerializer):
    user = username_field()

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class MembershipUpdateSerializer(MembershipSerializer):
    class Meta(MembershipSerializer.Meta):
        read_only_fields = ["id", "user", "created_at"]


class DomainSerializer(serializers.ModelSerializer):
    class Meta:
        model = Domain
        fields = ["id", "slug", "name", "description", "owning_team", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class OutputPortSerializer(serializers.ModelSerializer):
    class Meta:
        model = OutputPort
        fields = ["name", "kind", "location"]


class DataProductSerializer(serializers.ModelSerializer):
    domain = serializers.SlugRelatedField(slug_field="slug", queryset=Domain.objects.all())
    owner = username_field(allow_null=True, required=False)
    output_ports = OutputPortSerializer(many=True, required=False)

    class Meta:
        model = DataProduct
        fields = [
            "id",
            "slug",
            "name",
            "domain",
            "owner",
            "owning_team",
            "description",
            "purpose",
            "product_type",
            "stage",
            "output_ports",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_output_ports(self, ports: list[dict]) -> list[dict]:
        names = [port["name"] for port in ports]
        if len(names) != len(set(names)):
            raise serializers.ValidationError("Each output port needs its own name.")
        return ports


class DataProductLinkSerializer(serializers.ModelSerializer):
    data_product = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = DataProductLink
        fields = ["id", "data_product", "node", "role", "created_at"]
        read_only_fields = ["id", "data_product", "created_at"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Only nodes the caller can see: any other id reads as "does not exist".
        self.fields["node"].queryset = self.context.get("visible_nodes", Node.objects.none())


class HistoryEntrySerializer(serializers.Serializer):
    model = serializers.CharField()
    object_id = serializers.IntegerField()
    label = serializers.CharField()
    action = serializers.ChoiceField(choices=["created", "changed", "deleted"])
    changed_fields = serializers.ListField(child=serializers.CharField())
    user = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField()
