"""DRF serializers: validation of API input and representation of single objects.

The whole tree is not serialised here: ``selectors.tree_get`` builds it from
``values()`` and the view renders it with orjson (STYLE.md, large reads).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from valuetree import strict
from valuetree.models import (
    MAX_POSITION,
    PLANNED_STAGES,
    ConsumerInterest,
    DataProduct,
    DataProductLink,
    Domain,
    GlossaryColumnLink,
    GlossaryTerm,
    LifecycleStage,
    LifecycleTransition,
    Membership,
    Node,
    NodeKind,
    Notification,
    OutputPort,
    ValueTree,
)
from valuetree.services import DUPLICATE_OUTCOMES
from valuetree.similarity import Probe, similar_products

User = get_user_model()


def username_field(**kwargs: object) -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True), **kwargs
    )


class TreeSerializer(strict.ModelSerializer):
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


class NodeSerializer(strict.ModelSerializer):
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

    # Left out, it is a goal's: the service needs the key either way.
    parent = serializers.PrimaryKeyRelatedField(
        queryset=Node.objects.none(), allow_null=True, default=None
    )
    kind = serializers.ChoiceField(choices=NodeKind.choices, required=False)
    position = serializers.IntegerField(min_value=0, max_value=MAX_POSITION, required=False)

    class Meta(NodeSerializer.Meta):
        read_only_fields = ["id", "tree", "created_at", "updated_at"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Parents come from the same tree only ("does not exist" otherwise).
        if "tree" in self.context:
            self.fields["parent"].queryset = Node.objects.filter(tree=self.context["tree"])


class NodeMoveSerializer(strict.Serializer):
    parent = serializers.PrimaryKeyRelatedField(queryset=Node.objects.none(), allow_null=True)
    position = serializers.IntegerField(
        min_value=0, max_value=MAX_POSITION, required=False, allow_null=True
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if "tree_id" in self.context:
            self.fields["parent"].queryset = Node.objects.filter(tree_id=self.context["tree_id"])


class MembershipSerializer(strict.ModelSerializer):
    user = username_field()

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class MembershipUpdateSerializer(MembershipSerializer):
    class Meta(MembershipSerializer.Meta):
        read_only_fields = ["id", "user", "created_at"]


class DomainSerializer(strict.ModelSerializer):
    class Meta:
        model = Domain
        fields = ["id", "slug", "name", "description", "owning_team", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class OutputPortSerializer(strict.ModelSerializer):
    class Meta:
        model = OutputPort
        fields = ["name", "kind", "location"]


class DataProductSerializer(strict.ModelSerializer):
    domain = serializers.SlugRelatedField(slug_field="slug", queryset=Domain.objects.all())
    owner = username_field(
        required=False,
        help_text="Who answers for it. On create you are its owner (staff may name "
        "another); its owner hands it over with an update.",
    )
    output_ports = OutputPortSerializer(many=True, required=False)
    duplicate_of = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

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
            "version",
            "duplicate_of",
            "output_ports",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "duplicate_of", "created_at", "updated_at"]

    def validate_output_ports(self, ports: list[dict]) -> list[dict]:
        names = [port["name"] for port in ports]
        if len(names) != len(set(names)):
            raise serializers.ValidationError("Each output port needs its own name.")
        return ports


class DataProductLinkSerializer(strict.ModelSerializer):
    data_product = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = DataProductLink
        fields = ["id", "data_product", "node", "role", "created_at"]
        read_only_fields = ["id", "data_product", "created_at"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Only nodes the caller can see: any other id reads as "does not exist".
        self.fields["node"].queryset = self.context.get("visible_nodes", Node.objects.none())


class SimilarProductSerializer(strict.Serializer):
    """A product like another one, with its score in [0, 1]."""

    slug = serializers.CharField(source="product.slug")
    name = serializers.CharField(source="product.name")
    domain = serializers.CharField(source="product.domain.slug")
    owner = serializers.CharField(source="product.owner.username", allow_null=True)
    stage = serializers.CharField(source="product.stage")
    score = serializers.FloatField()
    label = serializers.CharField(help_text="“very likely the same product” or “related”.")
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Why they look alike.")
    shared_terms = serializers.ListField(child=serializers.CharField())


class SimilarityProbeSerializer(strict.Serializer):
    """A product being drafted, to check for similar ones before creating it."""

    name = serializers.CharField(max_length=200)
    purpose = serializers.CharField(required=False, allow_blank=True, default="")
    output_ports = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    domain = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Domain.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="The domain it will be in: products of the same domain weigh less.",
    )


class TransitionSerializer(strict.ModelSerializer):
    by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    from_stage = serializers.CharField(
        read_only=True, help_text="Empty for the stage the product was created in."
    )
    stage = serializers.ChoiceField(
        choices=LifecycleStage.choices, write_only=True, help_text="The stage to move to."
    )

    class Meta:
        model = LifecycleTransition
        fields = ["id", "from_stage", "to_stage", "by", "note", "at", "stage"]
        read_only_fields = ["id", "from_stage", "to_stage", "by", "at"]


class ConsumerInterestSerializer(strict.ModelSerializer):
    """A team waiting for a planned product. The initiative is named only to those
    who may read its tree (``node`` is null otherwise)."""

    data_product = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    node = serializers.PrimaryKeyRelatedField(queryset=Node.objects.none())
    node_title = serializers.SerializerMethodField()
    tree = serializers.SerializerMethodField()

    class Meta:
        model = ConsumerInterest
        fields = [
            "id",
            "data_product",
            "team",
            "purpose",
            "node",
            "node_title",
            "tree",
            "user",
            "created_at",
        ]
        read_only_fields = ["id", "data_product", "user", "created_at"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["node"].queryset = self.context.get("visible_nodes", Node.objects.none())

    def _visible(self, interest: ConsumerInterest) -> bool:
        return bool(getattr(interest, "visible", True))

    def to_representation(self, interest: ConsumerInterest) -> dict:
        data = super().to_representation(interest)
        if not self._visible(interest):
            data["node"] = None
        return data

    def get_node_title(self, interest: ConsumerInterest) -> str | None:
        return interest.node.title if self._visible(interest) else None

    def get_tree(self, interest: ConsumerInterest) -> str | None:
        return interest.node.tree.slug if self._visible(interest) else None


class DuplicateSerializer(strict.Serializer):
    original = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=DataProduct.objects.all(),
        help_text="The product this one duplicates.",
    )
    then = serializers.ChoiceField(choices=DUPLICATE_OUTCOMES, default="keep")


class NotificationSerializer(strict.ModelSerializer):
    data_product = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    related_product = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "kind",
            "subject",
            "body",
            "url",
            "data_product",
            "related_product",
            "created_at",
            "read_at",
        ]
        read_only_fields = fields


class DataProductSavedSerializer(DataProductSerializer):
    """A product just created or changed, with the products like it (best first)."""

    similar_products = serializers.SerializerMethodField()

    class Meta(DataProductSerializer.Meta):
        fields = [*DataProductSerializer.Meta.fields, "similar_products"]

    @extend_schema_field(SimilarProductSerializer(many=True))
    def get_similar_products(self, product: DataProduct) -> list[dict]:
        similar = similar_products(Probe.of(product), exclude_pk=product.pk)
        return SimilarProductSerializer(similar, many=True).data


class BoardFilterSerializer(strict.Serializer):
    domain = serializers.SlugRelatedField(
        slug_field="slug", queryset=Domain.objects.all(), required=False, allow_null=True
    )
    stage = serializers.ChoiceField(
        choices=[(s, s) for s in PLANNED_STAGES], required=False, allow_blank=True, default=""
    )
    q = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class ServedNodeSerializer(strict.Serializer):
    tree = serializers.CharField(source="node.tree.slug")
    node = serializers.IntegerField(source="node.id")
    kind = serializers.CharField(source="node.kind")
    title = serializers.CharField(source="node.title")
    role = serializers.CharField()


class BoardProductSerializer(DataProductSerializer):
    """A product on the discovery board: nodes it serves in trees the caller can read
    (and how many in others), and who waits for it."""

    serves = serializers.SerializerMethodField()
    serves_elsewhere = serializers.SerializerMethodField()
    interests = serializers.SerializerMethodField()

    class Meta(DataProductSerializer.Meta):
        fields = [*DataProductSerializer.Meta.fields, "serves", "serves_elsewhere", "interests"]

    @extend_schema_field(ServedNodeSerializer(many=True))
    def get_serves(self, product: DataProduct) -> list[dict]:
        return ServedNodeSerializer(product.served, many=True).data

    def get_serves_elsewhere(self, product: DataProduct) -> int:
        return product.served_elsewhere

    @extend_schema_field(ConsumerInterestSerializer(many=True))
    def get_interests(self, product: DataProduct) -> list[dict]:
        return ConsumerInterestSerializer(product.interests.all(), many=True).data


class EndingProductLinkSerializer(strict.Serializer):
    """An initiative relying on a deprecated or retired product."""

    tree = serializers.CharField(source="node.tree.slug")
    node = serializers.IntegerField(source="node.id")
    title = serializers.CharField(source="node.title")
    role = serializers.CharField()
    data_product = serializers.CharField(source="data_product.slug")
    stage = serializers.CharField(source="data_product.stage")
    successor = serializers.CharField(
        source="data_product.duplicate_of.slug", allow_null=True, default=None
    )


class OrphansSerializer(strict.Serializer):
    products = DataProductSerializer(many=True)
    initiatives = EndingProductLinkSerializer(many=True)


class NotificationsReadSerializer(strict.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), required=False)


class HistoryEntrySerializer(strict.Serializer):
    model = serializers.CharField()
    object_id = serializers.IntegerField()
    label = serializers.CharField()
    action = serializers.ChoiceField(choices=["created", "changed", "deleted"])
    changed_fields = serializers.ListField(child=serializers.CharField())
    user = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField()


class GlossaryColumnLinkSerializer(strict.ModelSerializer):
    """A glossary term describing one column of a product's data contract: the
    product by slug, the output port's name and the column's name (as in the
    contract's schema)."""

    data_product = serializers.SlugRelatedField(
        slug_field="slug", queryset=DataProduct.objects.all()
    )
    port = serializers.CharField(max_length=200)
    column = serializers.CharField(max_length=200)

    class Meta:
        model = GlossaryColumnLink
        fields = ["id", "data_product", "port", "column"]
        read_only_fields = ["id"]


class GlossaryTermSerializer(strict.ModelSerializer):
    """A business glossary term; ``domain`` by slug, ``data_products`` by slug."""

    domain = serializers.SlugRelatedField(
        slug_field="slug", queryset=Domain.objects.all(), allow_null=True, required=False
    )
    owner = serializers.CharField(source="owner.username", read_only=True, allow_null=True)
    synonyms = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    abbreviations = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    data_products = serializers.SlugRelatedField(
        slug_field="slug",
        many=True,
        queryset=DataProduct.objects.all(),
        required=False,
        help_text="Slugs of the data products the term describes.",
    )

    class Meta:
        model = GlossaryTerm
        fields = [
            "id",
            "slug",
            "name",
            "definition",
            "synonyms",
            "abbreviations",
            "domain",
            "owner",
            "data_products",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]
        extra_kwargs = {"slug": {"required": False}}
