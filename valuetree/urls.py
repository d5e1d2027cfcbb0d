from __future__ import annotations

from django.urls import path

from valuetree import views

app_name = "valuetree"
urlpatterns = [
    path("", views.home, name="home"),
]
