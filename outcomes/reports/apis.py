"""The review schedule and its deliveries in the API (DESIGN.md §7 permission rules).

Readers of a tree read its schedule (without the extra addresses, which only owners
see); owners change it, read the delivery log, resend and send a test to themselves.
Webhook addresses are write-only: a response says only whether one is stored.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outcomes.reports import selectors, services
from outcomes.reports.models import (
    Channel,
    Delivery,
    PublishMode,
    RecipientRole,
    ReviewSchedule,
    SendPolicy,
)
from valuetree import strict
from valuetree.apis import require_role, tree_for_request
from valuetree.selectors import MANAGE_ROLES

DELIVERY_PAGE = 200


class ScheduleSerializer(strict.ModelSerializer):
    recipient_roles = serializers.ListField(
        child=serializers.ChoiceField(choices=RecipientRole.choices), required=False
    )
    extra_addresses = serializers.ListField(child=serializers.EmailField(), required=False)
    channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.choices))
    send_policy = serializers.ChoiceField(choices=SendPolicy.choices, required=False)
    publish_mode = serializers.ChoiceField(choices=PublishMode.choices, required=False)
    slack_webhook = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text='Write-only; "" removes it.'
    )
    teams_webhook = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text='Write-only; "" removes it.'
    )
    has_slack_webhook = serializers.SerializerMethodField()
    has_teams_webhook = serializers.SerializerMethodField()
    description = serializers.SerializerMethodField()
    next_dates = serializers.SerializerMethodField()

    class Meta:
        model = ReviewSchedule
        fields = [
            "rrule",
            "starts_on",
            "time_of_day",
            "timezone",
            "is_active",
            "next_run_at",
            "reminder_days",
            "recipient_roles",
            "extra_addresses",
            "channels",
            "send_policy",
            "attach_pdf",
            "pdf_landscape",
            "publish_mode",
            "slack_webhook",
            "teams_webhook",
            "has_slack_webhook",
            "has_teams_webhook",
            "description",
            "next_dates",
        ]
        read_only_fields = ["next_run_at"]

    def get_has_slack_webhook(self, obj: ReviewSchedule) -> bool:
        return bool(obj.slack_webhook_encrypted)

    def get_has_teams_webhook(self, obj: ReviewSchedule) -> bool:
        return bool(obj.teams_webhook_encrypted)

    def get_description(self, obj: ReviewSchedule) -> str:
        return selectors.schedule_summary(obj)["words"]

    def get_next_dates(self, obj: ReviewSchedule) -> list[str]:
        return [d.isoformat() for d in selectors.schedule_summary(obj)["next_dates"]]


class DeliverySerializer(strict.ModelSerializer):
    review_title = serializers.CharField(source="review.title", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "review",
            "review_title",
            "channel",
            "recipient",
            "purpose",
            "status",
            "attempts",
            "error",
            "created_at",
            "sent_at",
        ]
        read_only_fields = fields


def _schedule_data(schedule: ReviewSchedule, *, owner: bool) -> dict[str, Any]:
    data = ScheduleSerializer(schedule).data
    if not owner:
        data.pop("extra_addresses")
    return data


class TreeScheduleView(APIView):
    """GET: the tree's review schedule (404 when it has none). PUT (owners): create or
    replace it; the next run is recomputed when the timing changes."""

    @extend_schema(responses=ScheduleSerializer)
    def get(self, request: Request, slug: str) -> Response:
        tree = tree_for_request(request, slug=slug)
        schedule = selectors.schedule_of(tree)
        if schedule is None:
            raise NotFound("This tree has no review schedule.")
        return Response(_schedule_data(schedule, owner=tree.caller_role in MANAGE_ROLES))

    @extend_schema(request=ScheduleSerializer, responses=ScheduleSerializer)
    def put(self, request: Request, slug: str) -> Response:
        tree = tree_for_request(request, slug=slug)
        require_role(tree, MANAGE_ROLES)
        serializer = ScheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        schedule = services.schedule_save(
            tree=tree,
            by=request.user,
            slack_webhook=fields.pop("slack_webhook", None),
            teams_webhook=fields.pop("teams_webhook", None),
            **fields,
        )
        return Response(_schedule_data(schedule, owner=True))


class TreeDeliveriesView(APIView):
    """The tree's delivery log, newest first (owners; the latest 200)."""

    @extend_schema(responses=DeliverySerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        tree = tree_for_request(request, slug=slug)
        require_role(tree, MANAGE_ROLES)
        rows = selectors.deliveries(tree)[:DELIVERY_PAGE]
        return Response(DeliverySerializer(rows, many=True).data)


class ScheduleTestView(APIView):
    """Send the tree's latest published review to the caller's own address only."""

    @extend_schema(request=None, responses={202: DeliverySerializer})
    def post(self, request: Request, slug: str) -> Response:
        tree = tree_for_request(request, slug=slug)
        require_role(tree, MANAGE_ROLES)
        delivery = services.send_test(tree=tree, user=request.user)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryResendView(APIView):
    """Queue a sent or failed delivery again (owners of its tree)."""

    @extend_schema(request=None, responses={202: DeliverySerializer})
    def post(self, request: Request, delivery_id: int) -> Response:
        delivery = get_object_or_404(Delivery.objects.select_related("review"), pk=delivery_id)
        tree = tree_for_request(request, pk=delivery.review.tree_id)
        require_role(tree, MANAGE_ROLES)
        delivery = services.delivery_resend(delivery=delivery, by=request.user)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
