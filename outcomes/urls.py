from __future__ import annotations

from django.urls import path

from outcomes import views

app_name = "outcomes"
urlpatterns = [
    path("nodes/<int:node_id>/measures/new/", views.measure_create, name="measure-create"),
    path("measures/<int:measure_id>/edit/", views.measure_edit, name="measure-edit"),
    path("measures/<int:measure_id>/delete/", views.measure_delete, name="measure-delete"),
]
