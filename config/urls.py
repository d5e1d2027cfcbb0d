from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from config.throttling import throttle
from valuetree.schema_view import SchemaView

urlpatterns = [
    # Every form that checks a password or sends mail shares the per-address login
    # rate: the admin's own login form, and the password reset (e-mail) form.
    path("admin/login/", throttle("logins")(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("valuetree.api_urls")),
    path("api/", include("outcomes.api_urls")),
    # Login POSTs per address are throttled; django-axes locks an account out after
    # LOGIN_FAILURE_LIMIT failures (config/throttling.py).
    path("accounts/login/", throttle("logins")(auth_views.LoginView.as_view()), name="login"),
    path(
        "accounts/password_reset/",
        throttle("logins")(auth_views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("outcomes.urls")),
    path("", include("valuetree.urls")),
]
# Under /api/ a missing route or a crash answers JSON like every other API error.
handler404 = "valuetree.schema_view.not_found"
handler500 = "valuetree.schema_view.server_error"

if settings.DEMO_ENDPOINTS:
    from outcomes.demo import live_metrics_view

    urlpatterns.append(path("demo/live-metrics/", live_metrics_view, name="demo-live-metrics"))
