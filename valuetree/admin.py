from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from valuetree.models import (
    ApiToken,
    ConsumerInterest,
    DataContract,
    DataProduct,
    DataProductLink,
    Domain,
    LifecycleTransition,
    Membership,
    Node,
    Notification,
    OutputPort,
    ValueTree,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(ValueTree)
class ValueTreeAdmin(SimpleHistoryAdmin):
    list_display = ["name", "slug", "updated_at"]
    search_fields = ["name", "slug", "vision"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(SimpleHistoryAdmin):
    list_display = ["tree", "user", "role"]
    list_filter = ["role", "tree"]
    autocomplete_fields = ["user", "tree"]


@admin.register(Node)
class NodeAdmin(SimpleHistoryAdmin):
    list_display = ["title", "kind", "tree", "parent", "position", "status", "owner"]
    list_filter = ["kind", "status", "tree"]
    search_fields = ["title", "description", "hypothesis"]
    list_select_related = ["tree", "parent", "owner"]
    raw_id_fields = ["parent", "owner", "accountable"]


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "owning_team"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


class OutputPortInline(admin.TabularInline):
    model = OutputPort
    extra = 0


@admin.register(DataProduct)
class DataProductAdmin(SimpleHistoryAdmin):
    list_display = ["name", "domain", "stage", "product_type", "owner"]
    list_filter = ["stage", "product_type", "domain"]
    search_fields = ["name", "purpose", "description"]
    list_select_related = ["domain", "owner"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [OutputPortInline]


@admin.register(OutputPort)
class OutputPortAdmin(admin.ModelAdmin):
    list_display = ["name", "data_product", "kind", "location"]
    list_select_related = ["data_product"]


@admin.register(DataProductLink)
class DataProductLinkAdmin(SimpleHistoryAdmin):
    list_display = ["data_product", "node", "role"]
    list_filter = ["role"]
    raw_id_fields = ["node"]
    list_select_related = ["data_product", "node"]


@admin.register(DataContract)
class DataContractAdmin(SimpleHistoryAdmin):
    list_display = ["contract_id", "name", "version", "status", "output_port"]
    search_fields = ["contract_id", "name"]
    list_select_related = ["output_port__data_product"]
    raw_id_fields = ["output_port"]


@admin.register(ConsumerInterest)
class ConsumerInterestAdmin(SimpleHistoryAdmin):
    list_display = ["data_product", "team", "node", "user", "created_at"]
    search_fields = ["team", "purpose", "data_product__name"]
    list_select_related = ["data_product", "node", "user"]
    raw_id_fields = ["node", "user"]


@admin.register(LifecycleTransition)
class LifecycleTransitionAdmin(admin.ModelAdmin):
    """The record of moves: read here, made through the product's page or the API."""

    list_display = ["data_product", "from_stage", "to_stage", "by", "at"]
    list_filter = ["to_stage"]
    list_select_related = ["data_product", "by"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["recipient", "kind", "subject", "created_at", "read_at"]
    list_filter = ["kind"]
    list_select_related = ["recipient"]
    raw_id_fields = ["recipient", "data_product", "related_product"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made by their user (/account/tokens/) or `issue_token`, the only places
    that can show them; here staff see and revoke them."""

    list_display = ["name", "user", "token_key", "created", "expiry"]
    list_select_related = ["user"]
    search_fields = ["name", "token_key", "user__username"]
    fields = ["name", "user", "token_key", "created", "expiry"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
