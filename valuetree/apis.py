"""REST API for trees, nodes, memberships, domains and data products.

Access: a tree the caller may not see answers 404 (its existence is not leaked); a
tree the caller sees but may not change answers 403; no credentials answer 401.
Views are thin: serializers validate, services write, selectors read.
"""

from __future__ import annotations

from typing import Any

import django_filters
import orjson
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from valuetree import diagram, interchange, selectors, services, standards, strict, trash
from valuetree.models import (
    PLANNED_STAGES,
    DataProduct,
    DataProductLink,
    DataProductType,
    Domain,
    GlossaryColumnLink,
    GlossaryTerm,
    LifecycleStage,
    Membership,
    Node,
    OutputPort,
    TrashedSubtree,
    ValueTree,
)
from valuetree.openapi import PaginatedActions
from valuetree.serializers import (
    BoardFilterSerializer,
    BoardProductSerializer,
    ConsumerInterestSerializer,
    DataProductLinkSerializer,
    DataProductSavedSerializer,
    DataProductSerializer,
    DomainSerializer,
    DuplicateSerializer,
    GlossaryColumnLinkSerializer,
    GlossaryTermSerializer,
    HistoryEntrySerializer,
    MembershipSerializer,
    MembershipUpdateSerializer,
    NodeCreateSerializer,
    NodeMoveSerializer,
    NodeSerializer,
    NotificationSerializer,
    NotificationsReadSerializer,
    OrphansSerializer,
    SimilarityProbeSerializer,
    SimilarProductSerializer,
    TransitionSerializer,
    TreeListSerializer,
    TreeSerializer,
)
from valuetree.similarity import Probe, similar_products


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Let services raise Django's ValidationError: it becomes a 400 with field messages.

    Django's key for errors of no one field (``__all__``) becomes DRF's
    (``non_field_errors``), so a client meets one key whichever layer refused.
    """
    if isinstance(exc, DjangoValidationError):
        detail = serializers.as_serializer_error(exc)
        if NON_FIELD_ERRORS in detail:
            key = api_settings.NON_FIELD_ERRORS_KEY
            detail[key] = [*detail.get(key, []), *detail.pop(NON_FIELD_ERRORS)]
        exc = DRFValidationError(detail)
    return drf_exception_handler(exc, context)


def json_response(data: Any, *, status_code: int = 200) -> HttpResponse:
    return HttpResponse(
        orjson.dumps(data, default=_json_default),
        status=status_code,
        content_type="application/json",
    )


def _json_default(value: Any) -> Any:
    # Decimal amounts: numbers in JSON, like the rest of the API.
    return float(value)


def require_role(tree: ValueTree, roles: frozenset[str]) -> None:
    if tree.caller_role not in roles:
        raise PermissionDenied(f"Your role in this tree ({tree.caller_role}) does not allow this.")


def tree_for_request(
    request: Request, *, slug: str | None = None, pk: int | None = None
) -> ValueTree:
    """The tree with the caller's role, or 404 when the caller may not see it."""
    lookup = {"slug": slug} if slug is not None else {"pk": pk}
    return get_object_or_404(selectors.trees_for_user(request.user), **lookup)


class RoleCheckedWrites:
    """Checks the caller's right to change an object before its input is validated.

    DRF runs object permissions inside ``get_object()``, before the serializer: a
    viewer who may not edit gets 403, not field messages about a change they could
    never make.
    """

    write_actions = frozenset({"update", "partial_update", "destroy"})
    # A costly action names its rate limit: `@action(..., throttle_scope="imports")`.
    throttle_scope: str | None = None

    def check_object_permissions(self, request: Request, obj: Any) -> None:
        super().check_object_permissions(request, obj)
        if self.action in self.write_actions:
            self.check_write(obj)

    def check_write(self, obj: Any) -> None:
        raise NotImplementedError


class RawBodyParser(BaseParser):
    """Hands the request body to the view untouched (tree documents in JSON or YAML)."""

    media_type = "*/*"

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> bytes:
        return stream.read()


def raw_body(request: Request) -> bytes:
    """The body a RawBodyParser read; with no body at all DRF never calls the parser
    and gives an empty dict, which is an empty document (a 400), not a 500."""
    return request.data if isinstance(request.data, bytes) else b""


TREE_DOCUMENT_SCHEMA = inline_serializer(
    "TreeDocument",
    fields={
        "id": serializers.IntegerField(),
        "slug": serializers.SlugField(),
        "name": serializers.CharField(),
        "vision": serializers.CharField(),
        "description": serializers.CharField(),
        "goals": serializers.ListField(
            child=serializers.DictField(),
            help_text="Nodes with their fields, `measures` and `children` (bets, then initiatives).",
        ),
    },
)

IMPORT_ERROR_SCHEMA = inline_serializer(
    "ImportErrors",
    fields={
        "detail": serializers.CharField(),
        "errors": serializers.ListField(child=serializers.DictField()),
    },
)


class TrashItemSerializer(strict.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    descendant_count = serializers.IntegerField()
    parent = serializers.IntegerField(source="parent_id", allow_null=True)
    deleted_at = serializers.DateTimeField()
    deleted_by = serializers.CharField(source="deleted_by.username", default=None)


class TreeViewSet(PaginatedActions, RoleCheckedWrites, viewsets.ModelViewSet):
    """Value trees. Anyone logged in may create one and becomes its owner."""

    lookup_field = "slug"
    search_fields = ["name", "vision"]
    ordering_fields = ["name", "created_at", "updated_at"]

    def get_queryset(self) -> QuerySet[ValueTree]:
        if self.action == "list":
            return selectors.tree_list(user=self.request.user)
        return selectors.trees_for_user(self.request.user)

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return TreeListSerializer if self.action == "list" else TreeSerializer

    @extend_schema(responses=TREE_DOCUMENT_SCHEMA)
    def retrieve(self, request: Request, slug: str) -> HttpResponse:
        tree = tree_for_request(request, slug=slug)
        document = selectors.tree_get(tree=tree)
        document["caller_role"] = tree.caller_role
        return json_response(document)

    def perform_create(self, serializer: TreeSerializer) -> None:
        tree = services.tree_create(owner=self.request.user, **serializer.validated_data)
        tree.caller_role = "owner"
        serializer.instance = tree

    def check_write(self, tree: ValueTree) -> None:
        require_role(tree, selectors.MANAGE_ROLES)

    def perform_update(self, serializer: TreeSerializer) -> None:
        services.tree_update(tree=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance: ValueTree) -> None:
        services.tree_delete(tree=instance)

    @extend_schema(request=NodeCreateSerializer, responses={201: NodeSerializer})
    @action(detail=True, methods=["post"], url_path="nodes")
    def create_node(self, request: Request, slug: str) -> Response:
        """Add a node: a goal (no parent), a bet under a goal, an initiative under a bet."""
        tree = tree_for_request(request, slug=slug)
        require_role(tree, selectors.EDIT_ROLES)
        serializer = NodeCreateSerializer(data=request.data, context={"tree": tree})
        serializer.is_valid(raise_exception=True)
        node = services.node_create(tree=tree, **serializer.validated_data)
        return Response(NodeSerializer(node).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=HistoryEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request: Request, slug: str) -> Response:
        """Who changed what in this tree, its nodes and measures, newest first."""
        tree = tree_for_request(request, slug=slug)
        return self.paginated(selectors.tree_history(tree=tree), HistoryEntrySerializer)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "yaml"], default="json")],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "application/yaml"): OpenApiTypes.OBJECT,
        },
    )
    @action(detail=True, methods=["get"])
    def export(self, request: Request, slug: str) -> HttpResponse:
        """The tree as a document that `import` reads back: JSON (default) or YAML."""
        tree = tree_for_request(request, slug=slug)
        fmt = request.query_params.get("format", "json")
        if fmt not in interchange.FORMATS:
            raise DRFValidationError({"format": [f"Use one of: {', '.join(interchange.FORMATS)}."]})
        body, content_type = interchange.tree_export_text(tree=tree, fmt=fmt)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{tree.slug}.{fmt}"'
        return response

    @extend_schema(responses=TrashItemSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="trash")
    def trash(self, request: Request, slug: str) -> Response:
        """Deleted subtrees that can still be restored (30 days), newest first."""
        tree = tree_for_request(request, slug=slug)
        return self.paginated(trash.trash_for_tree(tree=tree), TrashItemSerializer)

    @extend_schema(request=None, responses={201: NodeSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path=r"trash/(?P<item_id>[0-9]+)/restore",
        url_name="trash-restore",
    )
    def trash_restore(self, request: Request, slug: str, item_id: str) -> Response:
        """Put a deleted subtree back where it was (editors and owners)."""
        tree = tree_for_request(request, slug=slug)
        require_role(tree, selectors.EDIT_ROLES)
        item = TrashedSubtree.objects.filter(tree=tree, pk=int(item_id)).first()
        if item is None:
            raise NotFound("Nothing with that id in this tree's trash.")
        node = trash.trash_restore(item=item)
        return Response(NodeSerializer(node).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(diagram.FORMATS), default="svg"),
            OpenApiParameter("measures", bool, default=True, description="Measures' values."),
        ],
        responses={
            (200, "image/svg+xml"): OpenApiTypes.STR,
            (200, "image/png"): OpenApiTypes.BINARY,
            (200, "text/plain"): OpenApiTypes.STR,
        },
    )
    @action(detail=True, methods=["get"])
    def diagram(self, request: Request, slug: str) -> HttpResponse:
        """The tree as a picture for a slide: SVG (default), PNG or a Mermaid flowchart,
        with verdict colours, a legend and (unless `measures=false`) measures' values."""
        tree = tree_for_request(request, slug=slug)
        fmt = request.query_params.get("format", "svg")
        if fmt not in diagram.FORMATS:
            raise DRFValidationError({"format": [f"Use one of: {', '.join(diagram.FORMATS)}."]})
        measures = strict.query_bool(request.query_params.get("measures"), name="measures")
        measures = True if measures is None else measures
        try:
            body, content_type, filename = diagram.diagram_export(tree, fmt=fmt, measures=measures)
        except diagram.TooLargeForPng as error:
            raise DRFValidationError({"format": [str(error)]}) from error
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT, "application/yaml": OpenApiTypes.STR},
        parameters=[OpenApiParameter("slug", str, description="Import under this slug instead.")],
        responses={201: TreeSerializer, 400: IMPORT_ERROR_SCHEMA},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, RawBodyParser],
        throttle_scope="imports",
    )
    def import_tree(self, request: Request) -> Response:
        """Create a tree from a JSON or YAML document (the body, or a `file` upload).

        Nothing is written unless the whole document is valid; errors name the field
        and, for YAML, the line."""
        upload = (
            request.FILES.get("file") if request.content_type.startswith("multipart/") else None
        )
        raw = upload.read() if upload else raw_body(request)
        name = upload.name if upload else ""
        fmt = interchange.guess_format(content_type=request.content_type, filename=name)
        try:
            tree = interchange.tree_import_text(
                raw, fmt=fmt, owner=request.user, slug=request.query_params.get("slug")
            )
        except interchange.ImportFailed as failed:
            return Response(failed.as_dict(), status=status.HTTP_400_BAD_REQUEST)
        tree.caller_role = "owner"
        return Response(TreeSerializer(tree).data, status=status.HTTP_201_CREATED)


class MembershipViewSet(viewsets.ModelViewSet):
    """Members of a tree. Everyone who reads the tree sees them; owners manage them."""

    serializer_class = MembershipSerializer
    pagination_class = None
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    queryset = Membership.objects.none()  # for the schema; requests use get_queryset

    def tree(self) -> ValueTree:
        if not hasattr(self, "_tree"):
            self._tree = tree_for_request(self.request, slug=self.kwargs["tree_slug"])
        return self._tree

    def get_queryset(self) -> QuerySet[Membership]:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return Membership.objects.filter(tree=self.tree()).select_related("user")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return (
            MembershipUpdateSerializer if self.action == "partial_update" else MembershipSerializer
        )

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)  # 401 first
        if getattr(self, "swagger_fake_view", False):
            return
        tree = self.tree()  # 404 for a tree the caller cannot see, before any input is read
        if request.method not in SAFE_METHODS:
            require_role(tree, selectors.MANAGE_ROLES)

    def perform_create(self, serializer: MembershipSerializer) -> None:
        serializer.instance = services.membership_set(tree=self.tree(), **serializer.validated_data)

    def perform_update(self, serializer: MembershipSerializer) -> None:
        # PATCH without a role keeps the one the member has.
        role = serializer.validated_data.get("role", serializer.instance.role)
        serializer.instance = services.membership_set(
            tree=self.tree(), user=serializer.instance.user, role=role
        )

    def perform_destroy(self, instance: Membership) -> None:
        services.membership_remove(membership=instance)


class NodeViewSet(
    PaginatedActions,
    RoleCheckedWrites,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Nodes of the trees you can see. Create them with `POST /api/trees/{slug}/nodes/`."""

    serializer_class = NodeSerializer
    filterset_fields = {
        "tree__slug": ["exact"],
        "kind": ["exact"],
        "status": ["exact"],
        "parent": ["exact", "isnull"],
    }
    search_fields = ["title", "description", "hypothesis"]
    ordering_fields = ["title", "created_at", "updated_at", "position"]

    def get_queryset(self) -> QuerySet[Node]:
        return selectors.nodes_for_user(self.request.user).select_related(
            "tree", "owner", "accountable"
        )

    write_actions = RoleCheckedWrites.write_actions | {"move"}

    def check_write(self, node: Node) -> None:
        require_role(tree_for_request(self.request, pk=node.tree_id), selectors.EDIT_ROLES)

    def perform_update(self, serializer: NodeSerializer) -> None:
        if "status" in serializer.validated_data:
            services.node_status_check(
                node=serializer.instance, status=serializer.validated_data["status"]
            )
        services.node_update(node=serializer.instance, **serializer.validated_data)

    @extend_schema(
        parameters=[OpenApiParameter("cascade", bool, description="Also delete the descendants.")]
    )
    def destroy(self, request: Request, pk: str) -> Response:
        node = self.get_object()
        cascade = bool(strict.query_bool(request.query_params.get("cascade"), name="cascade"))
        # Into the tree's trash: `POST /api/trees/{slug}/trash/{id}/restore/` undoes it.
        trash.node_trash(node=node, user=request.user, cascade=cascade)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=NodeMoveSerializer, responses=NodeSerializer)
    @action(detail=True, methods=["post"])
    def move(self, request: Request, pk: str) -> Response:
        """Move a node and its subtree under a new parent (null: a goal's place), at a position."""
        node = self.get_object()
        serializer = NodeMoveSerializer(data=request.data, context={"tree_id": node.tree_id})
        serializer.is_valid(raise_exception=True)
        node = services.node_move(node=node, **serializer.validated_data)
        return Response(NodeSerializer(node).data)

    @extend_schema(responses=HistoryEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        node = self.get_object()
        entries = selectors.history_entries(
            Node.history.filter(id=node.pk), model="node", limit=200
        )
        return self.paginated(entries, HistoryEntrySerializer)


class DomainViewSet(PaginatedActions, viewsets.ModelViewSet):
    """Data mesh domains: everyone reads them; staff manage them."""

    serializer_class = DomainSerializer
    queryset = Domain.objects.all()
    lookup_field = "slug"
    search_fields = ["name", "description", "owning_team"]

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)  # 401 first
        if request.method not in SAFE_METHODS and not request.user.is_staff:
            raise PermissionDenied("Only staff manage domains.")

    def perform_create(self, serializer: DomainSerializer) -> None:
        serializer.instance = services.domain_create(**serializer.validated_data)

    def perform_update(self, serializer: DomainSerializer) -> None:
        services.domain_update(domain=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance: Domain) -> None:
        services.domain_delete(domain=instance)


class ChoiceInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """Comma-separated choices; any unknown one is a 400, like a single choice."""


class DataProductFilter(strict.FilterSet):
    """The list's filters, validated like the board's: an unknown domain or stage is a
    400 naming the parameter, not an empty list."""

    domain = django_filters.ModelChoiceFilter(
        field_name="domain",
        to_field_name="slug",
        queryset=Domain.objects.all(),
        label="A domain's slug.",
    )
    domain__slug = django_filters.ModelChoiceFilter(
        field_name="domain",
        to_field_name="slug",
        queryset=Domain.objects.all(),
        label="A domain's slug (the older name of `domain`).",
    )
    stage = django_filters.ChoiceFilter(choices=LifecycleStage.choices)
    stage__in = ChoiceInFilter(field_name="stage", choices=LifecycleStage.choices)
    product_type = django_filters.ChoiceFilter(choices=DataProductType.choices)

    class Meta:
        model = DataProduct
        fields = ["domain", "domain__slug", "stage", "stage__in", "product_type"]


class DataProductViewSet(PaginatedActions, RoleCheckedWrites, viewsets.ModelViewSet):
    """Data products: public to everyone logged in (discovery is public); anyone may
    propose one; its owner (or staff) changes it."""

    serializer_class = DataProductSerializer
    lookup_field = "slug"
    filterset_class = DataProductFilter
    search_fields = ["name", "description", "purpose", "owning_team"]
    ordering_fields = ["name", "stage", "created_at", "updated_at"]

    def get_queryset(self) -> QuerySet[DataProduct]:
        return selectors.data_product_list()

    def check_write(self, product: DataProduct) -> None:
        if not selectors.data_product_can_edit(self.request.user, product):
            raise PermissionDenied("Only the data product's owner or staff may change it.")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        if self.action in ("create", "update", "partial_update"):
            return DataProductSavedSerializer
        return DataProductSerializer

    def perform_create(self, serializer: DataProductSerializer) -> None:
        serializer.instance = services.data_product_create(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer: DataProductSerializer) -> None:
        services.data_product_update(
            product=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance: DataProduct) -> None:
        services.data_product_delete(product=instance)

    @extend_schema(methods=["GET"], responses=DataProductLinkSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=DataProductLinkSerializer,
        responses={201: DataProductLinkSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    def links(self, request: Request, slug: str) -> Response:
        """The nodes this product serves (that you can see); POST links it to a node
        of a tree you edit."""
        product = self.get_object()
        visible = selectors.nodes_for_user(request.user)
        context = {"visible_nodes": visible}
        if request.method == "GET":
            links = DataProductLink.objects.filter(data_product=product, node__in=visible)
            return self.paginated(links, DataProductLinkSerializer, context=context)
        serializer = DataProductLinkSerializer(data=request.data, context=context)
        serializer.is_valid(raise_exception=True)
        node = serializer.validated_data["node"]
        require_role(tree_for_request(request, pk=node.tree_id), selectors.EDIT_ROLES)
        link = services.data_product_link(
            product=product, node=node, role=serializer.validated_data["role"]
        )
        return Response(
            DataProductLinkSerializer(link, context=context).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"links/(?P<link_id>\d+)")
    def unlink(self, request: Request, slug: str, link_id: str) -> Response:
        product = self.get_object()
        link = get_object_or_404(
            DataProductLink.objects.filter(
                data_product=product, node__in=selectors.nodes_for_user(request.user)
            ),
            pk=link_id,
        )
        require_role(tree_for_request(request, pk=link.node.tree_id), selectors.EDIT_ROLES)
        services.data_product_unlink(link=link)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=HistoryEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request: Request, slug: str) -> Response:
        product = self.get_object()
        entries = selectors.history_entries(
            DataProduct.history.filter(id=product.pk), model="data_product", limit=200
        )
        return self.paginated(entries, HistoryEntrySerializer)

    # --- In the open: the board, similar products, lifecycle, early consumers ---------

    @extend_schema(
        parameters=[
            OpenApiParameter("domain", str, description="A domain's slug."),
            OpenApiParameter("stage", str, enum=list(PLANNED_STAGES)),
            OpenApiParameter("q", str, description="Full-text search."),
        ],
        responses=BoardProductSerializer(many=True),
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def board(self, request: Request) -> Response:
        """Every product in discovery or design, across all domains: purpose, owner,
        planned ports, the nodes it serves (named in trees you can read, counted in
        others) and the teams waiting for it."""
        filters = BoardFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        products = selectors.discovery_board(
            request.user, domain=data.get("domain"), stage=data["stage"], query=data["q"]
        )
        return Response(BoardProductSerializer(products, many=True).data)

    @extend_schema(responses=OrphansSerializer)
    @action(detail=False, methods=["get"], pagination_class=None)
    def orphans(self, request: Request) -> Response:
        """Products serving no initiative, and initiatives (in trees you can read)
        relying on a deprecated or retired product."""
        return Response(
            OrphansSerializer(
                {
                    "products": selectors.orphan_products(),
                    "initiatives": selectors.initiatives_on_ending_products(request.user),
                }
            ).data
        )

    @extend_schema(request=SimilarityProbeSerializer, responses=SimilarProductSerializer(many=True))
    @action(detail=False, methods=["post"], url_path="similar", url_name="similar-check")
    def similar_check(self, request: Request) -> Response:
        """Products like one you are about to create, best first, with their scores."""
        probe = SimilarityProbeSerializer(data=request.data)
        probe.is_valid(raise_exception=True)
        data = probe.validated_data
        similar = similar_products(
            Probe(
                name=data["name"],
                purpose=data["purpose"],
                ports=" ".join(data["output_ports"]),
                domain_id=data["domain"].pk if data["domain"] else None,
            )
        )
        return self.paginated(similar, SimilarProductSerializer)

    @extend_schema(responses=SimilarProductSerializer(many=True))
    @action(detail=True, methods=["get"])
    def similar(self, request: Request, slug: str) -> Response:
        """Products like this one across all domains, best first, with their scores."""
        product = self.get_object()
        similar = similar_products(Probe.of(product), exclude_pk=product.pk)
        return self.paginated(similar, SimilarProductSerializer)

    @extend_schema(methods=["GET"], responses=TransitionSerializer(many=True))
    @extend_schema(
        methods=["POST"], request=TransitionSerializer, responses={201: TransitionSerializer}
    )
    @action(detail=True, methods=["get", "post"])
    def transitions(self, request: Request, slug: str) -> Response:
        """The product's moves through its lifecycle, who made them and when; POST
        (its owner) moves it on."""
        product = self.get_object()
        if request.method == "GET":
            return self.paginated(
                selectors.product_transitions(product=product), TransitionSerializer
            )
        self.check_write(product)
        serializer = TransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        transition = services.data_product_transition(
            product=product,
            to_stage=serializer.validated_data["stage"],
            by=request.user,
            note=serializer.validated_data.get("note", ""),
        )
        if transition is None:
            raise DRFValidationError({"stage": [f"The product is {product.stage} already."]})
        return Response(TransitionSerializer(transition).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses=ConsumerInterestSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=ConsumerInterestSerializer,
        responses={201: ConsumerInterestSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    def interests(self, request: Request, slug: str) -> Response:
        """The teams waiting for this product; POST registers yours, for an initiative
        of a tree you edit."""
        product = self.get_object()
        if request.method == "GET":
            interests = selectors.product_interests(request.user, product=product)
            return self.paginated(interests, ConsumerInterestSerializer)
        context = {"visible_nodes": selectors.nodes_for_user(request.user)}
        serializer = ConsumerInterestSerializer(data=request.data, context=context)
        serializer.is_valid(raise_exception=True)
        node = serializer.validated_data["node"]
        require_role(tree_for_request(request, pk=node.tree_id), selectors.EDIT_ROLES)
        interest = services.consumer_interest_register(
            product=product,
            node=node,
            user=request.user,
            team=serializer.validated_data["team"],
            purpose=serializer.validated_data["purpose"],
        )
        return Response(ConsumerInterestSerializer(interest).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"interests/(?P<interest_id>\d+)")
    def withdraw_interest(self, request: Request, slug: str, interest_id: str) -> Response:
        """Withdraw a registration: the team who made it, the product's owner or staff."""
        product = self.get_object()
        interest = get_object_or_404(product.interests.all(), pk=interest_id)
        if interest.user_id != request.user.pk and not selectors.data_product_can_edit(
            request.user, product
        ):
            raise PermissionDenied("Only who registered it or the product's owner may withdraw it.")
        services.consumer_interest_withdraw(interest=interest)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=DuplicateSerializer, responses=DataProductSerializer)
    @action(detail=True, methods=["post"], url_path="duplicate-of")
    def duplicate_of(self, request: Request, slug: str) -> Response:
        """Mark this product (its owner) as a duplicate of ``original``; then keep it,
        merge it into the original, or retire it."""
        product = self.get_object()
        self.check_write(product)
        serializer = DuplicateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.data_product_resolve_duplicate(
            product=product, by=request.user, **serializer.validated_data
        )
        product.refresh_from_db()
        return Response(DataProductSerializer(product).data)


# --- Bitol ODPS and ODCS documents -----------------------------------------------------

PRODUCT_SLUG = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="Product slug.")
PORT_NAME = OpenApiParameter("port", str, OpenApiParameter.PATH, description="Output port name.")
STANDARDS_BODY = {
    "application/yaml": OpenApiTypes.STR,
    "text/yaml": OpenApiTypes.STR,
    "application/json": OpenApiTypes.OBJECT,
}
STANDARDS_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="{path: [messages]}, e.g. `outputPorts[1].type`; nothing was written.",
)


def standards_document(request: Request) -> tuple[bytes, str]:
    """The raw body and its format (YAML for a YAML content type, else JSON)."""
    return raw_body(request), interchange.guess_format(content_type=request.content_type)


def standards_refusal(failed: interchange.ImportFailed) -> Response:
    """403 when the caller may not change a product the document names, else 400 with
    every problem by its path."""
    forbidden = [p.message for p in failed.problems if isinstance(p, standards.Forbidden)]
    if forbidden:
        raise PermissionDenied(" ".join(forbidden))
    return Response(standards.problems_by_path(failed.problems), status=status.HTTP_400_BAD_REQUEST)


def yaml_response(body: str, *, status_code: int = 200) -> HttpResponse:
    return HttpResponse(body, status=status_code, content_type=standards.YAML_CONTENT_TYPE)


class DataProductImportView(APIView):
    """Create or update data products from Bitol ODPS (YAML or JSON)."""

    parser_classes = [RawBodyParser]
    throttle_scope = "imports"

    @extend_schema(
        operation_id="data_products_import_odps",
        request=STANDARDS_BODY,
        responses={
            201: inline_serializer(
                "OdpsImported",
                fields={"slugs": serializers.ListField(child=serializers.SlugField())},
            ),
            400: STANDARDS_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        """One product, a list, or a `---` stream of them. Anyone logged in may add
        products; changing one needs its owner (or staff): 403. Nothing is written
        unless the whole document is valid."""
        raw, fmt = standards_document(request)
        try:
            products = standards.odps_import_text(raw, user=request.user, fmt=fmt)
        except interchange.ImportFailed as failed:
            return standards_refusal(failed)
        return Response({"slugs": [p.slug for p in products]}, status=status.HTTP_201_CREATED)


class DataProductOdpsView(APIView):
    @extend_schema(
        operation_id="data_products_odps",
        parameters=[PRODUCT_SLUG],
        responses={(200, "application/yaml"): OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        """The data product as Bitol ODPS YAML, which the import reads back."""
        product = get_object_or_404(standards.products_for_export(), slug=slug)
        return yaml_response(standards.to_yaml([standards.data_product_to_odps(product)]))


class DataContractView(APIView):
    parser_classes = [RawBodyParser]
    throttle_scope = "imports"  # the PUT; reads are not counted

    @extend_schema(
        operation_id="data_products_contract",
        parameters=[PRODUCT_SLUG, PORT_NAME],
        responses={(200, "application/yaml"): OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, slug: str, port: str) -> HttpResponse:
        """The port's data contract as Bitol ODCS YAML."""
        contract = standards.contract_for_port(slug=slug, port=port)
        if contract is None:
            raise NotFound("This port has no data contract.")
        return yaml_response(standards.to_yaml([standards.contract_to_odcs(contract)]))

    @extend_schema(
        operation_id="data_products_contract_import",
        parameters=[PRODUCT_SLUG, PORT_NAME],
        request=STANDARDS_BODY,
        responses={
            (200, "application/yaml"): OpenApiTypes.OBJECT,
            (201, "application/yaml"): OpenApiTypes.OBJECT,
            400: STANDARDS_ERRORS,
        },
    )
    def put(self, request: Request, slug: str, port: str) -> HttpResponse:
        """Set the port's data contract from Bitol ODCS (YAML or JSON): the product's
        owner (or staff) only. Answers the stored contract, 201 when it is new."""
        product = get_object_or_404(selectors.data_product_list(), slug=slug)
        if not selectors.data_product_can_edit(request.user, product):
            raise PermissionDenied("Only the data product's owner or staff may change it.")
        get_object_or_404(OutputPort, data_product=product, name=port)
        had_contract = standards.contract_for_port(slug=slug, port=port) is not None
        raw, fmt = standards_document(request)
        try:
            contract = standards.odcs_import_text(
                raw, fmt=fmt, user=request.user, product_slug=slug, port_name=port
            )
        except interchange.ImportFailed as failed:
            return standards_refusal(failed)
        return yaml_response(
            standards.to_yaml([standards.contract_to_odcs(contract)]),
            status_code=200 if had_contract else 201,
        )


class GlossaryTermViewSet(PaginatedActions, viewsets.ModelViewSet):
    """The business glossary: everyone reads it; staff, the term's owner and the
    owners of its domain's data products write it. Synonyms widen catalogue search
    and count in duplicate detection."""

    serializer_class = GlossaryTermSerializer
    lookup_field = "slug"
    search_fields = ["name", "definition"]

    def get_queryset(self) -> QuerySet[GlossaryTerm]:
        return selectors.glossary_terms()

    def check_object_permissions(self, request: Request, obj: GlossaryTerm) -> None:
        super().check_object_permissions(request, obj)
        if request.method not in SAFE_METHODS and not selectors.glossary_term_can_edit(
            request.user, obj
        ):
            raise PermissionDenied("Only staff, the term's owner or its domain's owners change it.")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Who may write is known from the domain alone: 403 before any 400.
        slug = request.data.get("domain") if isinstance(request.data, dict) else None
        domain = Domain.objects.filter(slug=slug).first() if isinstance(slug, str) else None
        if not selectors.glossary_may_write(request.user, domain):
            raise PermissionDenied(
                "Staff add company-wide terms; a domain's owners add terms of their domain."
            )
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer: GlossaryTermSerializer) -> None:
        serializer.instance = services.glossary_term_create(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer: GlossaryTermSerializer) -> None:
        domain = serializer.validated_data.get("domain", serializer.instance.domain)
        if domain != serializer.instance.domain and not selectors.glossary_may_write(
            self.request.user, domain
        ):
            raise PermissionDenied("You may not move the term into that domain.")
        services.glossary_term_update(term=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance: GlossaryTerm) -> None:
        services.glossary_term_delete(term=instance)

    @extend_schema(methods=["GET"], responses=GlossaryColumnLinkSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=GlossaryColumnLinkSerializer,
        responses={201: GlossaryColumnLinkSerializer},
    )
    @action(detail=True, methods=["get", "post"], url_path="columns", url_name="columns")
    def columns(self, request: Request, slug: str) -> Response:
        """The contract columns the term describes; POST links one more (the term's
        editors, or the product's owner): ``data_product`` (slug), ``port``,
        ``column`` — a column of that port's data contract. Linking it again
        changes nothing."""
        term = get_object_or_404(self.get_queryset(), slug=slug)
        if request.method == "GET":
            return self.paginated(
                selectors.glossary_term_columns(term), GlossaryColumnLinkSerializer
            )
        product_slug = request.data.get("data_product") if isinstance(request.data, dict) else None
        product = (
            DataProduct.objects.filter(slug=product_slug).first()
            if isinstance(product_slug, str)
            else None
        )
        # Who may link is known from the term and the product: 403 before any 400.
        if not selectors.glossary_term_can_edit(request.user, term) and (
            product is None or not selectors.glossary_column_can_link(request.user, term, product)
        ):
            raise PermissionDenied(
                "The term's editors and the product's owner link its columns to the term."
            )
        serializer = GlossaryColumnLinkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        link = services.glossary_column_link(
            term=term,
            product=serializer.validated_data["data_product"],
            port=serializer.validated_data["port"],
            column=serializer.validated_data["column"],
        )
        return Response(GlossaryColumnLinkSerializer(link).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"columns/(?P<link_id>[0-9]+)",
        url_name="column",
    )
    def column(self, request: Request, slug: str, link_id: str) -> Response:
        """Unlink one column from the term (the term's editors, or the product's owner)."""
        term = get_object_or_404(self.get_queryset(), slug=slug)
        link = get_object_or_404(
            GlossaryColumnLink.objects.select_related("data_product"), pk=link_id, term=term
        )
        if not selectors.glossary_column_can_link(request.user, term, link.data_product):
            raise PermissionDenied("The term's editors and the product's owner unlink its columns.")
        services.glossary_column_unlink(link=link)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[OpenApiParameter("as", str, enum=["yaml", "csv"], description="Default yaml.")],
        responses={
            # A YAML document reads as an object (like the tree export's).
            (200, "application/yaml"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    @action(detail=False, methods=["get"], url_path="export", url_name="export")
    def export(self, request: Request) -> HttpResponse:
        """The whole glossary as YAML or CSV (what the import reads)."""
        fmt = request.query_params.get("as", "yaml")
        if fmt not in ("yaml", "csv"):
            raise DRFValidationError({"as": "Choose yaml or csv."})
        return HttpResponse(
            selectors.glossary_export(fmt=fmt),
            content_type="text/csv" if fmt == "csv" else "application/yaml",
        )

    @extend_schema(
        request={"application/yaml": OpenApiTypes.STR, "text/csv": OpenApiTypes.STR},
        responses={
            200: inline_serializer(
                "GlossaryImported",
                fields={
                    "created": serializers.IntegerField(),
                    "updated": serializers.IntegerField(),
                },
            )
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        url_name="import",
        parser_classes=[RawBodyParser],
    )
    def import_terms(self, request: Request) -> Response:
        """Create or update terms by name from YAML (`terms: [...]`) or CSV (when the
        Content-Type is text/csv), all or nothing. Staff only."""
        if not request.user.is_staff:
            raise PermissionDenied("Only staff import the glossary.")
        fmt = "csv" if "csv" in (request.content_type or "") else "yaml"
        rows = services.glossary_rows_from_text(raw_body(request), fmt=fmt)
        return Response(services.glossary_import(rows=rows, by=request.user))


class NotificationViewSet(PaginatedActions, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Your notifications, newest first: similar products, early consumers,
    deprecations. ``?unread=true`` lists the unread ones only."""

    serializer_class = NotificationSerializer

    def get_queryset(self) -> QuerySet:
        notifications = selectors.notifications_for(self.request.user)
        if strict.query_bool(self.request.query_params.get("unread"), name="unread"):
            notifications = notifications.filter(read_at__isnull=True)
        return notifications

    @extend_schema(
        parameters=[OpenApiParameter("unread", bool, description="Only the unread ones.")]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=NotificationsReadSerializer,
        responses=inline_serializer("NotificationsRead", {"marked": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"])
    def read(self, request: Request) -> Response:
        """Mark the given notifications (or, with no ``ids``, all) as read."""
        serializer = NotificationsReadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        marked = services.notifications_mark_read(
            user=request.user, ids=serializer.validated_data.get("ids")
        )
        return Response({"marked": marked})
