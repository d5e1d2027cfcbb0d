"""REST API for measures, metric sources, metrics and their observations.

Reading follows the tree's visibility; changing anything, pushing values or asking for a
pull needs the owner or editor role in the tree.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outcomes import evaluation, pulling, selectors, services
from outcomes.models import Measure, Metric, MetricSource, Observation, PullTrigger, Verdict
from outcomes.models import VerdictStatus as VerdictStatusChoices
from outcomes.serializers import (
    CurrentVerdictSerializer,
    MeasureSerializer,
    MetricSerializer,
    MetricSourceFromPortSerializer,
    MetricSourceSerializer,
    MetricSourceUpdateSerializer,
    MetricUpdateSerializer,
    NodeOutcomeSerializer,
    ObservationSerializer,
    PullRunSerializer,
    PushedValueSerializer,
    PushResultSerializer,
    VerdictPolicySerializer,
    VerdictSerializer,
)
from valuetree import documents, strict
from valuetree.apis import RoleCheckedWrites, json_response, require_role, tree_for_request
from valuetree.models import DataProduct
from valuetree.openapi import PaginatedActions
from valuetree.parsers import JSONParser
from valuetree.selectors import EDIT_ROLES, csv_cell, nodes_for_user


class MeasureViewSet(
    PaginatedActions,
    RoleCheckedWrites,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Measures of success. Create them with `POST /api/nodes/{id}/measures/`."""

    serializer_class = MeasureSerializer
    filterset_fields = {
        "node": ["exact"],
        "node__tree__slug": ["exact"],
        "direction": ["exact"],
        "is_guardrail": ["exact"],
    }
    search_fields = ["name"]
    ordering_fields = ["name", "target_date", "created_at"]

    write_actions = RoleCheckedWrites.write_actions | {"evaluate"}

    def get_queryset(self) -> QuerySet[Measure]:
        return selectors.measures_for_user(self.request.user)

    def check_write(self, measure: Measure) -> None:
        require_role(tree_for_request(self.request, pk=measure.node.tree_id), EDIT_ROLES)

    def perform_update(self, serializer: MeasureSerializer) -> None:
        services.measure_update(measure=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance: Measure) -> None:
        services.measure_delete(measure=instance)

    @extend_schema(filters=False, responses=VerdictSerializer(many=True))
    @action(detail=True, methods=["get"])
    def verdicts(self, request: Request, pk: str) -> Response:
        """The measure's verdict history, newest first, each with the observations it used."""
        measure = self.get_object()
        page = self.paginate_queryset(selectors.measure_verdicts(measure))
        return self.get_paginated_response(VerdictSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: VerdictSerializer})
    @action(detail=True, methods=["post"], throttle_scope="evaluations")
    def evaluate(self, request: Request, pk: str) -> Response:
        """Evaluate the measure now (owner or editor); answers the new current verdict."""
        measure = self.get_object()
        evaluation.measures_evaluate(measure_ids=[measure.pk])
        verdict = Verdict.objects.get(measure=measure, is_current=True)
        return Response(VerdictSerializer(verdict).data)


class NodeMeasuresView(generics.ListCreateAPIView):
    """A node's measures; POST adds one (owner or editor of the node's tree)."""

    serializer_class = MeasureSerializer
    pagination_class = None
    queryset = Measure.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self) -> QuerySet[Measure]:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return selectors.measures_for_user(self.request.user).filter(node_id=self.kwargs["node_id"])

    @extend_schema(responses={201: MeasureSerializer})
    def post(self, request: Request, node_id: int) -> Response:
        node = get_object_or_404(nodes_for_user(request.user), pk=node_id)
        require_role(tree_for_request(request, pk=node.tree_id), EDIT_ROLES)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        measure = services.measure_create(node=node, **serializer.validated_data)
        return Response(MeasureSerializer(measure).data, status=status.HTTP_201_CREATED)

    def get(self, request: Request, node_id: int) -> Response:
        get_object_or_404(nodes_for_user(request.user), pk=node_id)
        return super().get(request, node_id=node_id)


class MetricSourceViewSet(PaginatedActions, RoleCheckedWrites, viewsets.ModelViewSet):
    """Where a tree's numbers live. Credentials go in, never come out."""

    filterset_fields = {"tree__slug": ["exact"], "kind": ["exact"]}
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self) -> QuerySet[MetricSource]:
        return selectors.metric_sources_for_user(self.request.user)

    def get_serializer_class(self) -> type[serializers.Serializer]:
        if self.action in {"update", "partial_update"}:
            return MetricSourceUpdateSerializer
        return MetricSourceSerializer

    def check_write(self, source: MetricSource) -> None:
        require_role(tree_for_request(self.request, pk=source.tree_id), EDIT_ROLES)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The role first (404 hidden tree, 403 no right), then the body's field rules.
        slug = request.data.get("tree") if hasattr(request.data, "get") else None
        if isinstance(slug, str):
            require_role(tree_for_request(request, slug=slug), EDIT_ROLES)
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer: MetricSourceSerializer) -> None:
        data = dict(serializer.validated_data)
        tree = tree_for_request(self.request, pk=data.pop("tree").pk)
        require_role(tree, EDIT_ROLES)
        serializer.instance = services.metric_source_create(
            tree=tree, owner=self.request.user, **data
        )

    def perform_update(self, serializer: MetricSourceSerializer) -> None:
        services.metric_source_update(source=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance: MetricSource) -> None:
        services.metric_source_delete(source=instance)

    @extend_schema(request=MetricSourceFromPortSerializer, responses={201: MetricSourceSerializer})
    @action(detail=False, methods=["post"], url_path="from-port")
    def from_port(self, request: Request) -> Response:
        """A SQL source reading the server that a data product output port's data contract
        names (owner or editor of the tree). The server's type, host and database make
        the URL; `credentials` take the password. Errors name `port` and `server`."""
        # The role first (404 hidden tree, 403 no right), then the body's field rules.
        slug = request.data.get("tree") if hasattr(request.data, "get") else None
        if isinstance(slug, str):
            require_role(tree_for_request(request, slug=slug), EDIT_ROLES)
        serializer = MetricSourceFromPortSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tree = tree_for_request(request, slug=data["tree"])
        require_role(tree, EDIT_ROLES)
        product = DataProduct.objects.filter(slug=data["data_product"]).first()
        if product is None:
            raise ValidationError({"data_product": "There is no data product with this slug."})
        port = product.output_ports.select_related("data_product").filter(name=data["port"]).first()
        if port is None:
            names = ", ".join(product.output_ports.values_list("name", flat=True)) or "none"
            raise ValidationError(
                {"port": f"{product.name} has no output port “{data['port']}”; its ports: {names}."}
            )
        source = services.metric_source_from_port(
            tree=tree,
            port=port,
            server=data.get("server") or None,
            name=data.get("name", ""),
            username=data.get("username", ""),
            credentials=data.get("credentials"),
            owner=request.user,
        )
        return Response(MetricSourceSerializer(source).data, status=status.HTTP_201_CREATED)


MAX_CSV_BYTES = 5 * 1024 * 1024


class CSVParser(BaseParser):
    """`text/csv` bodies for pushing values: a `period,value` header, then one value a line."""

    media_type = "text/csv"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> str:
        body = stream.read(MAX_CSV_BYTES + 1)
        if len(body) > MAX_CSV_BYTES:
            raise ValidationError("The CSV is larger than 5 MiB; send it in parts.")
        try:
            return body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("The CSV must be UTF-8 text.") from None


def raw_points_from_request(request: Request) -> tuple[list[Any], Any, str]:
    """The pushed values, how to name one in an error, and the trigger to record."""
    data = request.data
    if request.stream is None:
        # No body at all: DRF gives an empty dict without asking a parser, which then
        # read as a JSON object without its "value" whatever the Content-Type said.
        raise ValidationError(documents.EMPTY_MESSAGE)
    if isinstance(data, str):
        points, lines = pulling.csv_points(data)
        return points, lambda index: f"Line {lines[index]}", PullTrigger.UPLOAD
    if "file" in request.FILES:
        upload = request.FILES["file"]
        if upload.size > MAX_CSV_BYTES:
            raise ValidationError({"file": "The file is larger than 5 MiB; split it."})
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError({"file": "The CSV must be UTF-8 text."}) from None
        points, lines = pulling.csv_points(text)
        return points, lambda index: f"Line {lines[index]}", PullTrigger.UPLOAD
    items = data.get("observations", data) if isinstance(data, dict) else data
    many = isinstance(items, list)
    serializer = PushedValueSerializer(data=items, many=many)
    serializer.is_valid(raise_exception=True)
    rows = serializer.validated_data if many else [serializer.validated_data]
    points = [(row["period"], row["value"]) for row in rows]
    return points, (lambda index: f"observations[{index}]" if many else ""), PullTrigger.PUSH


class MetricViewSet(PaginatedActions, RoleCheckedWrites, viewsets.ModelViewSet):
    """Metrics: what to pull, how often, and how healthy the pulls are."""

    filterset_fields = {
        "source": ["exact"],
        "source__tree__slug": ["exact"],
        "is_active": ["exact"],
    }
    search_fields = ["name"]
    ordering_fields = ["name", "next_pull_at", "last_success_at"]
    write_actions = RoleCheckedWrites.write_actions | {"pull"}

    def get_queryset(self) -> QuerySet[Metric]:
        return selectors.metrics_for_user(self.request.user)

    def get_serializer_class(self) -> type[serializers.Serializer]:
        if self.action in {"update", "partial_update"}:
            return MetricUpdateSerializer
        return MetricSerializer

    def check_write(self, metric: Metric) -> None:
        require_role(tree_for_request(self.request, pk=metric.source.tree_id), EDIT_ROLES)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The role first (404 hidden source, 403 no right), then the body's field rules.
        source_id = request.data.get("source") if hasattr(request.data, "get") else None
        if strict.is_id(source_id):
            # Text or number alike: a hidden source and a missing one both answer 404.
            source = get_object_or_404(
                selectors.metric_sources_for_user(request.user), pk=int(str(source_id).strip())
            )
            require_role(tree_for_request(request, pk=source.tree_id), EDIT_ROLES)
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer: MetricSerializer) -> None:
        data = dict(serializer.validated_data)
        source = get_object_or_404(
            selectors.metric_sources_for_user(self.request.user), pk=data.pop("source").pk
        )
        require_role(tree_for_request(self.request, pk=source.tree_id), EDIT_ROLES)
        serializer.instance = services.metric_create(source=source, **data)

    def perform_update(self, serializer: MetricSerializer) -> None:
        services.metric_update(metric=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance: Metric) -> None:
        services.metric_delete(metric=instance)

    @extend_schema(
        request=None,
        responses={202: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT},
        description="Queue a pull now. 409 when a pull of this metric is already queued or running.",
    )
    @action(detail=True, methods=["post"], throttle_scope="pulls")
    def pull(self, request: Request, pk: str) -> Response:
        metric = self.get_object()
        if not pulling.metric_pull_now(metric=metric, user=request.user):
            return Response(
                {"detail": "A pull of this metric is already queued or running."},
                status=status.HTTP_409_CONFLICT,
            )
        return Response({"detail": "Pull queued."}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        methods=["get"],
        parameters=[
            OpenApiParameter(
                "since", OpenApiTypes.DATETIME, description="Periods from (inclusive)."
            ),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Periods before."),
        ],
        responses=ObservationSerializer(many=True),
    )
    @extend_schema(
        methods=["post"],
        request={
            "application/json": PushedValueSerializer(many=True),
            "text/csv": OpenApiTypes.STR,
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            },
        },
        responses={201: PushResultSerializer},
        description=(
            "Send values to a push metric: one `{period, value}`, a list of them, "
            "`{observations: [...]}`, a `text/csv` body or a CSV `file` upload with a "
            "`period,value` header. All or nothing; a period sent again replaces its value."
        ),
    )
    @action(
        detail=True,
        methods=["get", "post"],
        parser_classes=[JSONParser, CSVParser, MultiPartParser],
    )
    def observations(self, request: Request, pk: str) -> Response:
        metric = self.get_object()
        if request.method == "GET":
            bounds = {}
            for name in ("since", "until"):
                if name in request.query_params:  # empty is a 400, like any bad value
                    field = serializers.DateTimeField()
                    try:
                        bounds[name] = field.to_internal_value(request.query_params[name])
                    except serializers.ValidationError as error:
                        raise serializers.ValidationError({name: error.detail}) from None
            rows = selectors.metric_observations(metric, **bounds)
            page = self.paginate_queryset(rows)
            return self.get_paginated_response(ObservationSerializer(page, many=True).data)
        # get_object() read the caller's role in the metric's tree (metrics_for_user):
        # the same rule as tree_for_request, without a second query.
        metric.source.tree.caller_role = metric.caller_role
        require_role(metric.source.tree, EDIT_ROLES)
        points, describe, trigger = raw_points_from_request(request)
        run = pulling.observations_push(
            metric=metric, raw_points=points, trigger=trigger, user=request.user, describe=describe
        )
        return Response(
            {"pull_run": run.pk, "values_written": run.values_written},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(responses=PullRunSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="pull-runs")
    def pull_runs(self, request: Request, pk: str) -> Response:
        metric = self.get_object()
        page = self.paginate_queryset(selectors.metric_pull_runs(metric))
        show_detail = getattr(metric, "caller_role", None) in EDIT_ROLES
        return self.get_paginated_response(
            PullRunSerializer(page, many=True, context={"show_detail": show_detail}).data
        )


# --- Verdicts, roll-ups and tolerance bands ----------------------------------------------

# The CSV export's columns, in order: (header, path in the verdict's values()).
VERDICT_CSV_COLUMNS = (
    ("tree", "measure__node__tree__slug"),
    ("node_id", "measure__node_id"),
    ("node_title", "measure__node__title"),
    ("measure_id", "measure_id"),
    ("measure_name", "measure__name"),
    ("status", "status"),
    ("progress", "progress"),
    ("expected_progress", "expected_progress"),
    ("latest_value", "latest_value"),
    ("latest_period", "latest_period"),
    ("forecast_value", "forecast_value"),
    ("forecast_low", "forecast_low"),
    ("forecast_high", "forecast_high"),
    ("forecast_probability", "forecast_probability"),
    ("as_of", "as_of"),
    ("evaluated_at", "evaluated_at"),
)


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer rows."""

    def write(self, value: str) -> str:
        return value


class CSVRenderer(BaseRenderer):
    """Lets `Accept: text/csv` reach the export; errors come out as a one-column CSV."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> Any:
        if isinstance(data, str | bytes):
            return data
        detail = data.get("detail", data) if isinstance(data, dict) else data
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["detail"])
        writer.writerow([csv_cell(str(detail))])
        return buffer.getvalue().encode(self.charset)


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number (1.5 is a 400), documented as an integer."""

    field_class = forms.IntegerField

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        # An id no database column can hold matches nothing (and reaches no database).
        if value is not None and abs(value) >= 2**63:
            return qs.none()
        return super().filter(qs, value)


class CurrentVerdictFilter(strict.FilterSet):
    tree = django_filters.CharFilter(field_name="measure__node__tree__slug", label="Tree slug.")
    node = IdFilter(field_name="measure__node_id", label="Node id.")
    measure = IdFilter(field_name="measure_id", label="Measure id.")
    status = django_filters.ChoiceFilter(choices=VerdictStatusChoices.choices)

    class Meta:
        model = Verdict
        fields = ["tree", "node", "measure", "status"]


class ObservationFilter(strict.FilterSet):
    metric = IdFilter(field_name="metric_id", label="Metric id.")
    verdict = IdFilter(method="evidence_of", label="Verdict id: the observations it used.")

    class Meta:
        model = Observation
        fields = ["metric", "verdict"]

    def evidence_of(self, queryset: QuerySet[Observation], name: str, value: int) -> QuerySet:
        if abs(value) >= 2**63:
            return queryset.none()
        return queryset.filter(pk__in=selectors.verdict_evidence_ids(self.request.user, value))


class ObservationViewSet(
    PaginatedActions, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Observations of the metrics you may read: the evidence of verdicts. A verdict's
    `observation_ids` are `GET /api/observations/{id}/`, or all at once
    `GET /api/observations/?verdict={verdict id}`. Values are sent to a metric at
    `POST /api/metrics/{id}/observations/`."""

    serializer_class = ObservationSerializer
    filter_backends = [strict.DjangoFilterBackend]
    filterset_class = ObservationFilter

    def get_queryset(self) -> QuerySet[Observation]:
        return selectors.observations_for_user(self.request.user)


class VerdictViewSet(PaginatedActions, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The current verdict of every measure in the trees you may read.

    The history of one measure is at `GET /api/measures/{id}/verdicts/`."""

    serializer_class = CurrentVerdictSerializer
    filter_backends = [strict.DjangoFilterBackend]
    filterset_class = CurrentVerdictFilter
    filter_actions = ("export",)

    def get_queryset(self) -> QuerySet[Verdict]:
        return selectors.current_verdicts_for_user(self.request.user)

    @extend_schema(
        filters=True,
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="A header line, then one verdict a line: "
                + ", ".join(name for name, _ in VERDICT_CSV_COLUMNS)
                + ". Text that a spreadsheet would run as a formula starts with `'`.",
            )
        },
    )
    @action(detail=False, methods=["get"], renderer_classes=[JSONRenderer, CSVRenderer])
    def export(self, request: Request) -> StreamingHttpResponse:
        """The current verdicts as CSV, with the same filters as the list."""
        rows = (
            self.filter_queryset(self.get_queryset())
            .values_list(*(path for _, path in VERDICT_CSV_COLUMNS))
            .iterator(chunk_size=2000)
        )

        def lines() -> Iterator[str]:
            writer = csv.writer(_Echo())
            yield writer.writerow([name for name, _ in VERDICT_CSV_COLUMNS])
            for row in rows:
                yield writer.writerow([csv_cell(value) for value in row])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="verdicts.csv"'
        return response


class TreeOutcomesView(APIView):
    """Every node's rolled-up status, score and value, goals first then depth-first."""

    @extend_schema(responses=NodeOutcomeSerializer(many=True))
    def get(self, request: Request, slug: str) -> HttpResponse:
        tree = tree_for_request(request, slug=slug)
        return json_response(selectors.tree_outcome_rows(tree))


class TreeVerdictPolicyView(APIView):
    """A tree's tolerance bands (the defaults until someone sets them). Changing them
    re-evaluates the tree's measures."""

    throttle_scope = "evaluations"  # the PUT; reads are not counted

    @extend_schema(responses=VerdictPolicySerializer)
    def get(self, request: Request, slug: str) -> Response:
        tree = tree_for_request(request, slug=slug)
        policy = selectors.verdict_policy_get(tree)
        return Response(VerdictPolicySerializer(policy).data)

    @extend_schema(request=VerdictPolicySerializer, responses=VerdictPolicySerializer)
    def put(self, request: Request, slug: str) -> Response:
        tree = tree_for_request(request, slug=slug)
        require_role(tree, EDIT_ROLES)
        serializer = VerdictPolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy = services.verdict_policy_set(tree_id=tree.pk, **serializer.validated_data)
        return Response(VerdictPolicySerializer(policy).data)
