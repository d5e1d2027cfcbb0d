from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from valuetree.models import (
    DataProduct,
    DataProductLink,
    Domain,
    Membership,
    Node,
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
