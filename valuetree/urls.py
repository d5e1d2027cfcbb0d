from __future__ import annotations

from django.urls import path

from valuetree.views import catalogue, discovery, glossary, tokens, trees

app_name = "valuetree"
urlpatterns = [
    path("", trees.home, name="home"),
    path("trees/new/", trees.tree_create, name="tree-create"),
    path("search/", trees.search, name="search"),
    path("trees/<slug:slug>/", trees.tree_page, name="tree"),
    path("trees/<slug:slug>/settings/", trees.tree_settings, name="tree-settings"),
    path("trees/<slug:slug>/trash/", trees.tree_trash, name="tree-trash"),
    path(
        "trees/<slug:slug>/diagram.<str:fmt>",
        trees.tree_diagram_export,
        name="tree-diagram-export",
    ),
    path(
        "trees/<slug:slug>/members/<int:membership_id>/",
        trees.member_update,
        name="member-update",
    ),
    path("trees/<slug:slug>/nodes/new/", trees.node_create, name="node-create"),
    path("nodes/<int:node_id>/", trees.node_panel, name="node"),
    path("nodes/<int:node_id>/edit/", trees.node_edit, name="node-edit"),
    path("nodes/<int:node_id>/status/", trees.node_status, name="node-status"),
    path("nodes/<int:node_id>/move/", trees.node_move, name="node-move"),
    path("nodes/<int:node_id>/delete/", trees.node_delete, name="node-delete"),
    path(
        "nodes/<int:node_id>/data-products/",
        trees.node_data_products,
        name="node-data-products",
    ),
    path("links/<int:link_id>/delete/", trees.link_delete, name="link-delete"),
    path("data-products/", catalogue.data_product_list, name="data-product-list"),
    path("data-products/new/", catalogue.data_product_create, name="data-product-create"),
    path("data-products/board/", discovery.board, name="board"),
    path("data-products/import/", catalogue.data_product_import, name="data-product-import"),
    path("data-products/similar/", discovery.similar_check, name="similar-check"),
    path(
        "data-products/<slug:slug>/stage/",
        discovery.product_transition,
        name="data-product-transition",
    ),
    path(
        "data-products/<slug:slug>/duplicate/",
        discovery.product_duplicate,
        name="data-product-duplicate",
    ),
    path(
        "data-products/<slug:slug>/interest/",
        discovery.register_interest,
        name="data-product-interest",
    ),
    path(
        "data-products/<slug:slug>/interest/<int:interest_id>/withdraw/",
        discovery.withdraw_interest,
        name="data-product-interest-withdraw",
    ),
    path("glossary/", glossary.glossary_list, name="glossary"),
    path("glossary/new/", glossary.glossary_term_create, name="glossary-term-create"),
    path("glossary/export/", glossary.glossary_export, name="glossary-export"),
    path("glossary/<slug:slug>/", glossary.glossary_term, name="glossary-term"),
    path("glossary/<slug:slug>/edit/", glossary.glossary_term_edit, name="glossary-term-edit"),
    path(
        "glossary/<slug:slug>/columns/",
        glossary.glossary_column_link,
        name="glossary-column-link",
    ),
    path(
        "glossary/<slug:slug>/columns/<int:link_id>/delete/",
        glossary.glossary_column_unlink,
        name="glossary-column-unlink",
    ),
    path(
        "glossary/<slug:slug>/delete/", glossary.glossary_term_delete, name="glossary-term-delete"
    ),
    path("notifications/", discovery.notification_list, name="notifications"),
    path("account/tokens/", tokens.token_list, name="tokens"),
    path("account/tokens/<str:token_key>/revoke/", tokens.token_revoke, name="token-revoke"),
    path("notifications/read/", discovery.notifications_read, name="notifications-read"),
    path("notifications/badge/", discovery.notification_badge, name="notification-badge"),
    path("data-products/<slug:slug>/", catalogue.data_product_detail, name="data-product"),
    path(
        "data-products/<slug:slug>/edit/",
        catalogue.data_product_edit,
        name="data-product-edit",
    ),
]
