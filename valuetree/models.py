"""Value trees (vision → goals → bets → initiatives), memberships and data products.

Trees are adjacency lists: ``Node.parent`` plus a sibling ``position``. A goal's parent
is empty because it hangs directly under the tree's vision.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from knox.models import AbstractAuthToken
from simple_history.models import HistoricalRecords

# Bounds of the numbers people type, by what they mean. Beyond them a number is a typo
# or an attack, and arithmetic on it (weighted means, sums over a tree) would overflow.
MAX_WEIGHT = 1000.0
"""A node's or measure's weight among its siblings: 0 (does not count) to 1000."""
MAX_AMOUNT_DIGITS = 16
"""Investments and expected values: decimals with 2 places, at most 14 before the point."""
MAX_POSITION = 100_000
"""A sibling position (0-based); no parent holds this many children."""


# Addresses beside the trees' own: /trees/new/ (the create page) and /api/trees/import/.
# A tree with such a slug could never be opened.
RESERVED_TREE_SLUGS = frozenset({"new", "import"})


def check_tree_slug(slug: str) -> None:
    """Refuse a tree slug the site's own addresses take.

    Raises django.core.exceptions.ValidationError {"slug": [...]} for "new" or "import"."""
    from django.core.exceptions import ValidationError

    if slug in RESERVED_TREE_SLUGS:
        raise ValidationError(
            {
                "slug": f"“{slug}” is reserved: it is taken by an address of the site; choose another."
            }
        )


class ValueTree(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    vision = models.TextField(
        help_text="The vision statement at the root of the tree.",
    )
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

    def clean(self) -> None:
        check_tree_slug(self.slug)


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
    investment_amount = models.DecimalField(
        max_digits=MAX_AMOUNT_DIGITS,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="What the work costs, ≥ 0, in investment_unit.",
    )
    investment_unit = models.CharField(
        max_length=30, blank=True, help_text="EUR, USD, person-weeks…"
    )
    expected_value_amount = models.DecimalField(
        max_digits=MAX_AMOUNT_DIGITS,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="The value the work is expected to bring, ≥ 0, in expected_value_unit.",
    )
    expected_value_unit = models.CharField(max_length=30, blank=True)
    confidence = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="How sure we are, 0–100.",
    )
    weight = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(MAX_WEIGHT)],
        help_text="Its weight among its siblings in the roll-up, 0–1000.",
    )
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
            models.CheckConstraint(
                condition=Q(weight__gte=0) & Q(weight__lte=MAX_WEIGHT), name="node_weight_0_1000"
            ),
            models.CheckConstraint(
                condition=Q(investment_amount__isnull=True) | Q(investment_amount__gte=0),
                name="node_investment_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(expected_value_amount__isnull=True) | Q(expected_value_amount__gte=0),
                name="node_expected_value_not_negative",
            ),
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


# The stages shown on the public discovery board.
PLANNED_STAGES = (LifecycleStage.DISCOVERY, LifecycleStage.DESIGN)
# Stages in which teams may still register as early consumers.
CONSUMER_STAGES = (*PLANNED_STAGES, LifecycleStage.BUILD)
# Stages in which a product should no longer be relied on.
ENDING_STAGES = (LifecycleStage.DEPRECATED, LifecycleStage.RETIRED)


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
    version = models.CharField(max_length=50, blank=True, help_text="The product's version.")
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="duplicates",
        help_text="The product this one duplicates; set by the “duplicate of…” action.",
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
            models.CheckConstraint(
                condition=~Q(duplicate_of=models.F("pk")), name="data_product_not_own_duplicate"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public_plan(self) -> bool:
        """Discovery and design happen in the open, on the board."""
        return self.stage in PLANNED_STAGES


class OutputPort(models.Model):
    data_product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="output_ports"
    )
    name = models.CharField(max_length=200)
    # Empty where an ODPS document gives no `type` (optional in the standard).
    kind = models.CharField(
        max_length=50, blank=True, help_text="table, api, file, stream, dashboard…"
    )
    location = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["data_product_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["data_product", "name"], name="output_port_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.data_product}: {self.name}"


class DataContract(models.Model):
    """The data contract of one output port, as in Bitol ODCS: what the port serves
    (schema), how well (SLA properties), who answers for it (team) and where it is
    served (servers). The JSON parts keep ODCS's own shapes, validated on import."""

    output_port = models.OneToOneField(
        OutputPort, on_delete=models.CASCADE, related_name="contract"
    )
    contract_id = models.CharField(max_length=200, unique=True, help_text="The contract's ODCS id.")
    # The ODCS version the contract was written in: an export says the same, so its
    # shapes (v3.1.0's team object, timestamp types…) fit the version it names.
    api_version = models.CharField(max_length=10, default="v3.0.2")
    name = models.CharField(max_length=200, blank=True)
    version = models.CharField(max_length=50, default="1.0.0")
    status = models.CharField(max_length=20, default="draft")
    purpose = models.TextField(blank=True)
    schema = models.JSONField(default=list, blank=True)
    sla_properties = models.JSONField(default=list, blank=True)
    team = models.JSONField(default=list, blank=True)
    servers = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["contract_id"]

    def __str__(self) -> str:
        return self.name or self.contract_id


class LifecycleTransition(models.Model):
    """A data product moving from one lifecycle stage to another: who, when, why.
    ``from_stage`` is empty for the stage a product was created in."""

    data_product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="transitions"
    )
    from_stage = models.CharField(max_length=12, choices=LifecycleStage.choices, blank=True)
    to_stage = models.CharField(max_length=12, choices=LifecycleStage.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="data_product_transitions",
    )
    note = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["data_product_id", "at", "id"]

    def __str__(self) -> str:
        return f"{self.data_product}: {self.from_stage or 'new'} → {self.to_stage}"


class ConsumerInterest(models.Model):
    """A team waiting for a planned data product: who, why, and the initiative the
    product would serve. It shows on the product (who is waiting) and on the
    initiative (what it waits for)."""

    data_product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="interests"
    )
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="consumer_interests")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="consumer_interests",
    )
    team = models.CharField(max_length=200)
    purpose = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["data_product_id", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["data_product", "node"], name="consumer_interest_unique_node"
            )
        ]

    def __str__(self) -> str:
        return f"{self.team} waits for {self.data_product}"


class NotificationKind(models.TextChoices):
    SIMILAR_PRODUCT = "similar_product", "Similar data product"
    DEPRECATION = "deprecation", "Data product deprecated"
    INTEREST = "interest", "Early consumer"
    DUPLICATE = "duplicate", "Marked as a duplicate"
    REVIEW_REMINDER = "review_reminder", "Value review coming"


class Notification(models.Model):
    """An in-app message to one user (also sent by e-mail when they have an address)."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    subject = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    data_product = models.ForeignKey(
        DataProduct,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    related_product = models.ForeignKey(
        DataProduct,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # Its e-mail, sent by a Celery task with retries (services.notification_email_send):
    # "" (no e-mail), queued, sending, retrying, sent, failed.
    email_status = models.CharField(max_length=10, blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_error = models.TextField(blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=NotificationKind.values), name="notification_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return f"To {self.recipient}: {self.subject}"


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


class ApiToken(AbstractAuthToken):
    """A named API token (django-rest-knox): only a SHA-512 digest is stored, the token
    is shown once when it is made, it expires, and its user may revoke it.

    `token_key` is the token's first 15 characters, kept to find and name it."""

    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…)"


class DataProductEmbedding(models.Model):
    """The text embedding of a data product (see ``valuetree.similarity``): the text it
    was computed from (glossary terms appended), that text's hash — so it is computed
    again only when the text changes — and the vector as float32 bytes."""

    data_product = models.OneToOneField(
        DataProduct, on_delete=models.CASCADE, primary_key=True, related_name="embedding"
    )
    model = models.CharField(max_length=100)
    text = models.TextField()
    text_hash = models.CharField(max_length=64)
    fields = models.JSONField(default=dict, help_text="name, purpose, ports, usage, columns")
    term_ids = models.JSONField(default=list, help_text="Glossary terms the text holds.")
    vector = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return f"Embedding of {self.data_product_id} ({self.model})"


class GlossaryTerm(models.Model):
    """A business glossary term (as in DataHub and OpenMetadata): its definition, its
    synonyms and abbreviations, the domain that owns it and the products and columns
    it describes. Synonyms widen catalogue search and count in duplicate detection."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    definition = models.TextField(blank=True)
    synonyms = models.JSONField(default=list, blank=True)
    abbreviations = models.JSONField(default=list, blank=True)
    domain = models.ForeignKey(
        Domain,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="glossary_terms",
        help_text="The domain that owns the term; empty for a term of the whole company.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="glossary_terms",
    )
    data_products = models.ManyToManyField(DataProduct, blank=True, related_name="glossary_terms")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def forms(self) -> list[str]:
        return [self.name, *self.synonyms, *self.abbreviations]


class GlossaryColumnLink(models.Model):
    """A glossary term describing one column of a product's data contract
    (``port`` / ``column`` as in the contract's schema)."""

    term = models.ForeignKey(GlossaryTerm, on_delete=models.CASCADE, related_name="columns")
    data_product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="column_terms"
    )
    port = models.CharField(max_length=200)
    column = models.CharField(max_length=200)

    class Meta:
        ordering = ["data_product_id", "port", "column"]
        constraints = [
            models.UniqueConstraint(
                fields=["term", "data_product", "port", "column"], name="glossary_column_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.term}: {self.data_product_id}/{self.port}.{self.column}"


# How long a deleted subtree can be restored from its tree's trash.
TRASH_DAYS = 30


class TrashedSubtree(models.Model):
    """A deleted node with everything under it, kept for ``TRASH_DAYS`` so a mistake
    can be undone from the tree's trash (issue 15). ``document`` is the subtree in the
    tree document's node shape (``interchange``), with each measure's metric id kept:
    restoring recreates the nodes, measures and data-product links under the same
    parent, at the same position."""

    tree = models.ForeignKey(ValueTree, on_delete=models.CASCADE, related_name="trash")
    parent = models.ForeignKey(
        Node, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=NodeKind.choices)
    title = models.CharField(max_length=300)
    descendant_count = models.PositiveIntegerField(default=0)
    document = models.JSONField(encoder=DjangoJSONEncoder)  # dates as ISO text
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deleted_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-deleted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.title} (deleted)"
