from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from outcomes import apis

# JSON only: no `.json` suffix twins (and `?format=` belongs to the tree export).
router = DefaultRouter()
router.include_format_suffixes = False
router.include_root_view = False
router.register("measures", apis.MeasureViewSet, basename="measure")
router.register("metric-sources", apis.MetricSourceViewSet, basename="metric-source")
router.register("metrics", apis.MetricViewSet, basename="metric")

urlpatterns = [
    path("", include(router.urls)),
    path(
        "nodes/<int:node_id>/measures/",
        apis.NodeMeasuresView.as_view(),
        name="node-measures",
    ),
]
