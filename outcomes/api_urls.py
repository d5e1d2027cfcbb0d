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
router.register("verdicts", apis.VerdictViewSet, basename="verdict")
router.register("observations", apis.ObservationViewSet, basename="observation")

urlpatterns = [
    path("", include(router.urls)),
    path(
        "nodes/<int:node_id>/measures/",
        apis.NodeMeasuresView.as_view(),
        name="node-measures",
    ),
    # Under /api/trees/ but served here, so valuetree does not import outcomes.
    path("trees/<slug:slug>/outcomes/", apis.TreeOutcomesView.as_view(), name="tree-outcomes"),
    path(
        "trees/<slug:slug>/verdict-policy/",
        apis.TreeVerdictPolicyView.as_view(),
        name="tree-verdict-policy",
    ),
]
