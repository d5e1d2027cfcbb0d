from __future__ import annotations

from django.urls import path

from outcomes import views
from outcomes.reports import views as reports
from outcomes.reviews import views as reviews

app_name = "outcomes"
urlpatterns = [
    # Value reviews, decisions and learnings (DESIGN.md §5b).
    path("trees/<slug:slug>/reviews/", reviews.review_list, name="reviews"),
    path("trees/<slug:slug>/reviews/compare/", reviews.review_compare, name="review-compare"),
    path("trees/<slug:slug>/decisions/", reviews.decision_log, name="decisions"),
    path("trees/<slug:slug>/learnings/", reviews.learning_log, name="learnings"),
    path("reviews/<int:review_id>/", reviews.review_page, name="review"),
    path("reviews/<int:review_id>/publish/", reviews.review_publish, name="review-publish"),
    path("reviews/<int:review_id>/amend/", reviews.review_amend, name="review-amend"),
    path("reviews/<int:review_id>/edit/", reviews.review_edit, name="review-edit"),
    path("reviews/<int:review_id>/hold/", reviews.review_hold, name="review-hold"),
    path("reviews/<int:review_id>/tree/", reviews.review_tree, name="review-tree"),
    # Before the JSON/Markdown downloads: the PDF is the report's (issue 13).
    path("reviews/<int:review_id>/review.pdf", reports.review_pdf, name="review-pdf"),
    path(
        "reviews/<int:review_id>/review.<str:fmt>",
        reviews.review_download,
        name="review-download",
    ),
    path("nodes/<int:node_id>/decide/", reviews.decide, name="decide"),
    path("learnings/", reviews.learning_search, name="learning-search"),
    # Scheduled review reports (issue 13).
    path("reports/unsubscribe/<str:token>/", reports.unsubscribe, name="report-unsubscribe"),
    path("reports/calendar/<str:token>.ics", reports.calendar_feed, name="review-calendar"),
    path("trees/<slug:slug>/review-schedule/", reports.schedule_page, name="review-schedule"),
    path(
        "trees/<slug:slug>/review-schedule/test/",
        reports.schedule_send_test,
        name="review-schedule-test",
    ),
    path(
        "trees/<slug:slug>/review-schedule/calendar/",
        reports.schedule_calendar,
        name="review-schedule-calendar",
    ),
    path("deliveries/<int:delivery_id>/resend/", reports.delivery_resend, name="delivery-resend"),
    path("learnings/<int:learning_id>/delete/", reviews.learning_delete, name="learning-delete"),
    path("nodes/<int:node_id>/measures/new/", views.measure_create, name="measure-create"),
    path("measures/<int:measure_id>/edit/", views.measure_edit, name="measure-edit"),
    path("measures/<int:measure_id>/delete/", views.measure_delete, name="measure-delete"),
    path("measures/<int:measure_id>/check-in/", views.measure_check_in, name="measure-check-in"),
    path(
        "measures/<int:measure_id>/re-evaluate/",
        views.measure_reevaluate,
        name="measure-reevaluate",
    ),
    path("trees/<slug:slug>/metrics/", views.tree_metrics, name="tree-metrics"),
    path("trees/<slug:slug>/sources/new/", views.source_create, name="source-create"),
    path(
        "trees/<slug:slug>/sources/from-port/",
        views.source_from_port,
        name="source-from-port",
    ),
    path("sources/<int:source_id>/edit/", views.source_edit, name="source-edit"),
    path("sources/<int:source_id>/delete/", views.source_delete, name="source-delete"),
    path("sources/<int:source_id>/metrics/new/", views.metric_create, name="metric-create"),
    path("metrics/<int:metric_id>/", views.metric_page, name="metric"),
    path("metrics/<int:metric_id>/edit/", views.metric_edit, name="metric-edit"),
    path("metrics/<int:metric_id>/delete/", views.metric_delete, name="metric-delete"),
    path("metrics/<int:metric_id>/pull/", views.metric_pull, name="metric-pull"),
    path("metrics/<int:metric_id>/upload/", views.metric_upload, name="metric-upload"),
    path("metrics/<int:metric_id>/check-in/", views.metric_check_in, name="metric-check-in"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/measures/<int:measure_id>/", views.dashboard_measure, name="dashboard-measure"),
    path("trees/<slug:slug>/think-again/", views.tree_think_again, name="tree-think-again"),
    path(
        "trees/<slug:slug>/verdict-policy/",
        views.tree_verdict_policy,
        name="tree-verdict-policy",
    ),
]
