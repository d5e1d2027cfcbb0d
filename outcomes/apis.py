"""REST API for measures. Reading follows the tree's visibility; editing needs the
owner or editor role in the measure's tree."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from outcomes import selectors, services
from outcomes.models import Measure
from outcomes.serializers import MeasureSerializer
from valuetree.apis import RoleCheckedWrites, require_role, tree_for_request
from valuetree.selectors import EDIT_ROLES, nodes_for_user


class MeasureViewSet(
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

    def get_queryset(self) -> QuerySet[Measure]:
        return selectors.measures_for_user(self.request.user)

    def check_write(self, measure: Measure) -> None:
        require_role(tree_for_request(self.request, pk=measure.node.tree_id), EDIT_ROLES)

    def perform_update(self, serializer: MeasureSerializer) -> None:
        services.measure_update(measure=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance: Measure) -> None:
        services.measure_delete(measure=instance)


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
