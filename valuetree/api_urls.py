from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from valuetree import apis

# JSON only: no `.json` suffix twins (and `?format=` belongs to the tree export).
router = DefaultRouter()
router.include_format_suffixes = False
router.register("trees", apis.TreeViewSet, basename="tree")
router.register("nodes", apis.NodeViewSet, basename="node")
router.register("domains", apis.DomainViewSet, basename="domain")
router.register("data-products", apis.DataProductViewSet, basename="data-product")
router.register("notifications", apis.NotificationViewSet, basename="notification")
router.register("glossary", apis.GlossaryTermViewSet, basename="glossary-term")

members = DefaultRouter(trailing_slash=True)
members.include_root_view = False
members.include_format_suffixes = False
members.register("members", apis.MembershipViewSet, basename="tree-member")

urlpatterns = [
    # Before the router: its detail route would take `import` for a product's slug.
    path("data-products/import/", apis.DataProductImportView.as_view(), name="data-product-import"),
    path(
        "data-products/<slug:slug>/odps/",
        apis.DataProductOdpsView.as_view(),
        name="data-product-odps",
    ),
    path(
        "data-products/<slug:slug>/ports/<path:port>/contract/",  # a name may hold "/"
        apis.DataContractView.as_view(),
        name="data-product-contract",
    ),
    path("", include(router.urls)),
    path("trees/<slug:tree_slug>/", include(members.urls)),
]
