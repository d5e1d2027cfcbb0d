from __future__ import annotations

from django.urls import path

from valuetree.views import catalogue, trees

app_name = "valuetree"
urlpatterns = [
    path("", trees.home, name="home"),
    # Tree page and node editing routes: added with their views (issue 3, in progress).
    path("data-products/", catalogue.data_product_list, name="data-product-list"),
    path("data-products/new/", catalogue.data_product_create, name="data-product-create"),
    path("data-products/<slug:slug>/", catalogue.data_product_detail, name="data-product"),
    path(
        "data-products/<slug:slug>/edit/",
        catalogue.data_product_edit,
        name="data-product-edit",
    ),
]
