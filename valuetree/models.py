"""Value trees (vision → goals → bets → initiatives), memberships and data products.

Trees are adjacency lists: ``Node.parent`` plus a sibling ``position``. A goal's parent
is empty because it hangs directly under the tree's vision.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class ValueTree(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    vision = models.TextField(help_text="The vision statement at the root of the tree.")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name", "id"]
        permissions = [
            ("read_all_trees", "Can read every value tree (organisation-wide leadership role)")
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    tree = models.ForeignKey(ValueTree, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tree_memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["tree_id", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["tree", "user"], name="membership_unique_user"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.tree}"


class NodeKind(models.TextChoices):
    GOAL = "goal", "Goal"
    BET = "bet", "Bet"
    INITIATIVE = "initiative", "Initiative"


# The kind a parent must have for each kind of child; goals have no parent node.
PARENT_KIND: dict[str, str | None] = {
    NodeKind.GOAL: None,
    NodeKind.BET: NodeKind.GOAL,
    NodeKind.INITIATIVE: NodeKind.BET,
}
CHILD_KIND: dict[str | None, str | None] = {
    None: NodeKind.GOAL,
    NodeKind.GOAL: NodeKind.BET,
    NodeKind.BET: NodeKind.INITIATIVE,
    NodeKind.INITIATIVE: None,
}


class NodeStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    ACTIVE = "active", "Active"
    DONE = "done", "Done"
    KILLED = "killed", "Killed"


class Node(models.Model):
    tree = models.ForeignKey(ValueTree, on_delete=models.CASCADE, related_name="nodes")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=12, choices=NodeKind.choices)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, help_text="The outcome this node stands for.")
    hypothesis = models.TextField(
        blank=True,
        help_text="Bets and initiatives: We believe that … will result in …; we will know when …",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_nodes",
    )
    accountable = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="accountable_nodes",
    )
    investment_amount = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    investment_unit = models.CharField(
        max_length=30, blank=True, help_text="EUR, USD, person-weeks…"
    )
    expected_value_amount = models.DecimalField(
        max_digits=16, decimal_places=2, null=True, blank=True
    )
    expected_value_unit = models.CharField(max_length=30, blank=True)
    confidence = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
        help_text="How sure we are, 0–100.",
    )
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    status = models.CharField(
        max_length=10, choices=NodeStatus.choices, default=NodeStatus.PROPOSED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["tree_id", "parent_id", "position", "id"]
        indexes = [models.Index(fields=["tree", "parent", "position"])]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=NodeKind.values), name="node_kind_valid"),
            models.CheckConstraint(
                condition=Q(status__in=NodeStatus.values), name="node_status_valid"
            ),
            # Goals hang under the vision (no parent); bets and initiatives need one.
            models.CheckConstraint(
                condition=(Q(kind=NodeKind.GOAL) & Q(parent__isnull=True))
                | (~Q(kind=NodeKind.GOAL) & Q(parent__isnull=False)),
                name="node_goal_iff_no_parent",
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("pk")), name="node_not_own_parent"),
            models.CheckConstraint(
                condition=~Q(kind=NodeKind.GOAL) | Q(hypothesis=""),
                name="node_goal_has_no_hypothesis",
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__lte=100),
                name="node_confidence_0_100",
            ),
            models.CheckConstraint(condition=Q(weight__gte=0), name="node_weight_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"


class Domain(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    owning_team = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DataProductType(models.TextChoices):
    SOURCE_ALIGNED = "source_aligned", "Source-aligned"
    AGGREGATE = "aggregate", "Aggregate"
    CONSUMER_ALIGNED = "consumer_aligned", "Consumer-aligned"


class LifecycleStage(models.TextChoices):
    DISCOVERY = "discovery", "Discovery"
    DESIGN = "design", "Design"
    BUILD = "build", "Build"
    LIVE = "live", "Live"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"


class DataProduct(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="data_products")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_data_products",
    )
    owning_team = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    purpose = models.TextField(blank=True)
    product_type = models.CharField(
        max_length=20, choices=DataProductType.choices, default=DataProductType.SOURCE_ALIGNED
    )
    stage = models.CharField(
        max_length=12, choices=LifecycleStage.choices, default=LifecycleStage.DISCOVERY
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stage__in=LifecycleStage.values), name="data_product_stage_valid"
            ),
            models.CheckConstraint(
                condition=Q(product_type__in=DataProductType.values),
                name="data_product_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class OutputPort(models.Model):
    data_product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="output_ports"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=50, help_text="table, api, file, stream, dashboard…")
    location = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["data_product_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["data_product", "name"], name="output_port_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.data_product}: {self.name}"


class LinkRole(models.TextChoices):
    PRODUCES = "produces", "Produces"
    USES = "uses", "Uses"


class DataProductLink(models.Model):
    """A data product serving a node: the node's work produces it or uses it."""

    data_product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="links")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="data_product_links")
    role = models.CharField(max_length=10, choices=LinkRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["node_id", "data_product__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["data_product", "node", "role"], name="data_product_link_unique"
            ),
            models.CheckConstraint(
                condition=Q(role__in=LinkRole.values), name="data_product_link_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.data_product} {self.role} for {self.node}"
