from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from outcomes.models import (
    Measure,
    Metric,
    MetricSource,
    Observation,
    PullRun,
    Verdict,
    VerdictPolicy,
    VerdictStatus,
)
from outcomes.selectors import expected_frequency, metric_health
from outcomes.services import METRIC_FIELDS
from valuetree import strict
from valuetree.models import NodeKind, OutputPort, ValueTree
from valuetree.selectors import EDIT_ROLES

MEASURE_API_FIELDS = [
    "id",
    "node",
    "name",
    "unit",
    "direction",
    "baseline_value",
    "baseline_date",
    "target_value",
    "target_date",
    "kind",
    "weight",
    "is_guardrail",
    "is_value_measure",
    "metric",
    "created_at",
    "updated_at",
]


class _MetricOfTheTreeField(serializers.PrimaryKeyRelatedField):
    """A metric id that does not exist answers as one of another tree does (the service's
    "Choose a metric of this tree."): the answer must not tell which ids exist elsewhere."""

    default_error_messages = {"does_not_exist": "Choose a metric of this tree."}


class MeasureSerializer(strict.ModelSerializer):
    metric = _MetricOfTheTreeField(queryset=Metric.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Measure
        fields = MEASURE_API_FIELDS
        read_only_fields = ["id", "node", "created_at", "updated_at"]


class MeasureItemSerializer(strict.ModelSerializer):
    """One measure inside an imported tree document (no ids: the node is its place)."""

    class Meta:
        model = Measure
        fields = [
            f
            for f in MEASURE_API_FIELDS
            # A metric id means nothing in another installation: documents leave it out.
            if f not in {"id", "node", "metric", "created_at", "updated_at"}
        ]


class OutputPortRefSerializer(strict.ModelSerializer):
    """The data product output port a source was made from."""

    data_product = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = OutputPort
        fields = ["id", "data_product", "name"]
        read_only_fields = fields


class MetricSourceSerializer(strict.ModelSerializer):
    """A metric source. `credentials` are write-only: they are encrypted and never shown;
    leave them out of an update to keep the stored ones, send `{}` to remove them."""

    tree = serializers.SlugRelatedField(slug_field="slug", queryset=ValueTree.objects.all())
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    credentials = serializers.JSONField(write_only=True, required=False)
    has_credentials = serializers.SerializerMethodField()
    output_port = OutputPortRefSerializer(
        read_only=True,
        allow_null=True,
        help_text="The data product port the source was made from (POST /api/metric-sources/"
        "from-port/), or null.",
    )

    class Meta:
        model = MetricSource
        fields = [
            "id",
            "tree",
            "kind",
            "name",
            "config",
            "credentials",
            "has_credentials",
            "owner",
            "output_port",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "owner", "output_port", "created_at", "updated_at"]

    def get_has_credentials(self, source: MetricSource) -> bool:
        return bool(source.credentials_encrypted)


class MetricSourceFromPortSerializer(strict.Serializer):
    """A SQL source from the server in a data product output port's data contract."""

    tree = serializers.SlugField(help_text="The tree the source belongs to.")
    data_product = serializers.SlugField(help_text="The data product's slug.")
    port = serializers.CharField(max_length=200, help_text="The output port's name.")
    server = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="The server's name in the contract; may be left out when it lists one.",
    )
    name = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Default: “product: port”.",
    )
    username = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="The database user (a read-only account).",
    )
    credentials = serializers.JSONField(
        write_only=True, required=False, help_text='{"password": "..."}, stored encrypted.'
    )


class MetricSourceUpdateSerializer(MetricSourceSerializer):
    """The tree and kind of a source are fixed once it exists."""

    tree = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta(MetricSourceSerializer.Meta):
        read_only_fields = ["id", "tree", "kind", "owner", "created_at", "updated_at"]


class MetricSerializer(strict.ModelSerializer):
    source = serializers.PrimaryKeyRelatedField(queryset=MetricSource.objects.all())
    health = serializers.SerializerMethodField(
        help_text="paused, unhealthy, waiting (no value yet), stale or healthy."
    )
    effective_expected_frequency = serializers.SerializerMethodField()
    last_error_detail = serializers.SerializerMethodField(
        help_text="The last error quoting what the source answered; only for the tree's "
        "owners and editors (null for others, or when it says no more than last_error)."
    )

    class Meta:
        model = Metric
        read_only_fields = [
            "id",
            "next_pull_at",
            "last_success_at",
            "last_failure_at",
            "last_error",
            "last_error_detail",
            "consecutive_failures",
            "created_at",
            "updated_at",
        ]
        # What can be written is what the service takes.
        fields = [
            "id",
            "source",
            *METRIC_FIELDS,
            "effective_expected_frequency",
            "health",
            *read_only_fields[1:],
        ]

    def get_last_error_detail(self, metric: Metric) -> str | None:
        if getattr(metric, "caller_role", None) not in EDIT_ROLES:
            return None
        return metric.last_error_detail or None

    def get_health(self, metric: Metric) -> str:
        return metric_health(metric)

    def get_effective_expected_frequency(self, metric: Metric) -> float | None:
        """Seconds after the last success when the metric counts as stale."""
        frequency = expected_frequency(metric)
        return frequency.total_seconds() if frequency else None


class MetricUpdateSerializer(MetricSerializer):
    """A metric stays in its source."""

    source = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta(MetricSerializer.Meta):
        read_only_fields = [*MetricSerializer.Meta.read_only_fields, "source"]


class ObservationSerializer(strict.ModelSerializer):
    """One value of a metric for one period; ``id`` is what a verdict's
    ``observation_ids`` name (``GET /api/observations/{id}/``)."""

    class Meta:
        model = Observation
        fields = ["id", "metric", "period_start", "value", "pulled_at", "pull_run"]
        read_only_fields = fields


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "number"}],
        "nullable": True,
        "description": "ISO 8601 (2026, 2026-09, 2026-W36, 2026-09-01T08:00+02:00), or a "
        "Unix timestamp in the unit the metric's options.period_unit names (s or ms).",
    }
)
class PeriodField(serializers.Field):
    """A pushed period as sent: text, or a number (a Unix timestamp). Parsing is the pull
    path's (``pulling.parse_period``), so every entry point reads periods alike."""

    def to_internal_value(self, data: object) -> object:
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            raise serializers.ValidationError("Give the period as text or a Unix timestamp.")
        return data

    def to_representation(self, value: object) -> object:
        return value


class PushedValueSerializer(strict.Serializer):
    """One value sent to a push metric. Without a period it is the current period's value."""

    period = PeriodField(required=False, allow_null=True, default=None)
    value = serializers.JSONField()


class PushResultSerializer(strict.Serializer):
    pull_run = serializers.IntegerField()
    values_written = serializers.IntegerField()


class PullRunSerializer(strict.ModelSerializer):
    """Context `show_detail`: whether the caller may edit the metric's source."""

    user = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Who pushed or asked for it; null for scheduled pulls.",
    )
    error_detail = serializers.SerializerMethodField(
        help_text="The error quoting what the source answered; only for the tree's owners "
        "and editors (null for others, or when it says no more than error)."
    )

    def get_error_detail(self, run: PullRun) -> str | None:
        if not self.context.get("show_detail"):
            return None
        return run.error_detail or None

    class Meta:
        model = PullRun
        fields = [
            "id",
            "metric",
            "trigger",
            "status",
            "attempt",
            "started_at",
            "finished_at",
            "duration_ms",
            "values_written",
            "samples_skipped",
            "error",
            "error_detail",
            "user",
        ]


VERDICT_API_FIELDS = [
    "id",
    "measure",
    "evaluated_at",
    "as_of",
    "status",
    "judged_status",
    "progress",
    "expected_progress",
    "latest_value",
    "latest_period",
    "observation_ids",
    "forecast_value",
    "forecast_low",
    "forecast_high",
    "forecast_probability",
    "forecast_note",
    "forecast_model",
    "unit",
    "plan_status",
    "reason",
    "is_current",
]


class VerdictSerializer(strict.ModelSerializer):
    """One evaluation of a measure. `judged_status` is what the numbers say; it differs
    from `status` only when the data is stale. `reason` says why in words;
    `forecast_model` names the fitted shape; `plan_status` is the straight-line plan's
    own verdict; forecast values are in the measure's `unit`."""

    unit = serializers.CharField(
        source="measure.unit", read_only=True, help_text="The unit of every value here."
    )

    observation_ids = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="The observations this verdict used (the evidence): "
        "`GET /api/metrics/{id}/observations/` lists them.",
    )

    class Meta:
        model = Verdict
        fields = VERDICT_API_FIELDS
        read_only_fields = VERDICT_API_FIELDS


class CurrentVerdictSerializer(VerdictSerializer):
    """A measure's current verdict with where it sits: tree, node and measure name."""

    tree = serializers.SlugRelatedField(
        source="measure.node.tree", slug_field="slug", read_only=True
    )
    node = serializers.IntegerField(source="measure.node_id", read_only=True)
    node_title = serializers.CharField(source="measure.node.title", read_only=True)
    measure_name = serializers.CharField(source="measure.name", read_only=True)

    class Meta(VerdictSerializer.Meta):
        fields = ["tree", "node", "node_title", "measure_name", *VERDICT_API_FIELDS]


class NodeOutcomeSerializer(strict.Serializer):
    """A node's rolled-up verdict and value (documentation of the roll-up's rows)."""

    node = serializers.IntegerField()
    parent = serializers.IntegerField(allow_null=True)
    kind = serializers.ChoiceField(choices=NodeKind.choices)
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=VerdictStatus.choices)
    score = serializers.FloatField(
        allow_null=True, help_text="0–1 from its measures and children, by weight."
    )
    expected_value = serializers.FloatField(allow_null=True)
    realised_value = serializers.FloatField(
        allow_null=True, help_text="Expected value × the value measure's delivered fraction."
    )
    investment = serializers.FloatField(allow_null=True)


class VerdictPolicySerializer(strict.ModelSerializer):
    """A tree's verdict thresholds. The status: a forecast chance of reaching the target
    ≥ on_track_probability is on track, ≥ at_risk_probability at risk (0 ≤ at_risk ≤
    on_track ≤ 1; left out: unchanged). The straight-line plan's own verdict: bands as
    fractions of the baseline→target distance, 0 ≤ on_track_within ≤ at_risk_within ≤ 1."""

    on_track_within = serializers.FloatField(min_value=0.0, max_value=1.0)
    at_risk_within = serializers.FloatField(min_value=0.0, max_value=1.0)
    on_track_probability = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    at_risk_probability = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)

    class Meta:
        model = VerdictPolicy
        fields = [
            "on_track_within",
            "at_risk_within",
            "on_track_probability",
            "at_risk_probability",
        ]

    def validate(self, attrs: dict[str, float]) -> dict[str, float]:
        if attrs["at_risk_within"] < attrs["on_track_within"]:
            raise serializers.ValidationError(
                {
                    "at_risk_within": "Must be at least on_track_within: at risk starts "
                    "where on track ends."
                }
            )
        on_track, at_risk = attrs.get("on_track_probability"), attrs.get("at_risk_probability")
        if on_track is not None and at_risk is not None and at_risk > on_track:
            raise serializers.ValidationError(
                {"at_risk_probability": "Must be at most on_track_probability."}
            )
        return attrs
