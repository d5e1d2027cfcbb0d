from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from outcomes import apis
from outcomes.reports import apis as report_apis
from outcomes.reviews import apis as review_apis

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
    # Scheduled review reports (issue 13).
    path(
        "trees/<slug:slug>/review-schedule/",
        report_apis.TreeScheduleView.as_view(),
        name="tree-review-schedule",
    ),
    path(
        "trees/<slug:slug>/review-schedule/test/",
        report_apis.ScheduleTestView.as_view(),
        name="tree-review-schedule-test",
    ),
    path(
        "trees/<slug:slug>/deliveries/",
        report_apis.TreeDeliveriesView.as_view(),
        name="tree-deliveries",
    ),
    path(
        "deliveries/<int:delivery_id>/resend/",
        report_apis.DeliveryResendView.as_view(),
        name="delivery-resend",
    ),
    # Value reviews, decisions and learnings (DESIGN.md §5b).
    path("trees/<slug:slug>/reviews/", review_apis.TreeReviewsView.as_view(), name="tree-reviews"),
    path(
        "trees/<slug:slug>/reviews/compare/",
        review_apis.ReviewCompareView.as_view(),
        name="tree-reviews-compare",
    ),
    path("reviews/<int:review_id>/", review_apis.ReviewDetailView.as_view(), name="review-detail"),
    path(
        "reviews/<int:review_id>/publish/",
        review_apis.ReviewPublishView.as_view(),
        name="review-publish",
    ),
    path(
        "reviews/<int:review_id>/amend/", review_apis.ReviewAmendView.as_view(), name="review-amend"
    ),
    path("reviews/<int:review_id>/hold/", review_apis.ReviewHoldView.as_view(), name="review-hold"),
    path(
        "reviews/<int:review_id>/export/",
        review_apis.ReviewExportView.as_view(),
        name="review-export",
    ),
    path(
        "nodes/<int:node_id>/decisions/",
        review_apis.NodeDecisionsView.as_view(),
        name="node-decisions",
    ),
    path(
        "trees/<slug:slug>/decisions/",
        review_apis.TreeDecisionsView.as_view(),
        name="tree-decisions",
    ),
    path(
        "decisions/<int:decision_id>/",
        review_apis.DecisionDetailView.as_view(),
        name="decision-detail",
    ),
    path(
        "trees/<slug:slug>/learnings/",
        review_apis.TreeLearningsView.as_view(),
        name="tree-learnings",
    ),
    path("learnings/", review_apis.LearningSearchView.as_view(), name="learning-search"),
    path(
        "learnings/<int:learning_id>/",
        review_apis.LearningDetailView.as_view(),
        name="learning-detail",
    ),
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
