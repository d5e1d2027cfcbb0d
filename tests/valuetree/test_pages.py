"""Server-rendered pages: login, home, and an admin page for every model."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.factories import make_user


@pytest.mark.django_db
def test_a_non_staff_user_logs_in_and_sees_their_trees(users, tree, client):
    response = client.post(reverse("login"), {"username": "viewer", "password": "pw-viewer"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    home = client.get("/").content.decode()
    assert "Signed in as <strong>viewer</strong>" in home
    assert '<a href="/trees/tree/">Tree</a>' in home
    assert '<span class="badge">viewer</span>' in home


@pytest.mark.django_db
def test_wrong_password_shows_an_error_and_logs_nobody_in(users, client):
    response = client.post(reverse("login"), {"username": "viewer", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_anonymous_home_offers_login(client):
    html = client.get("/").content.decode()
    assert f'href="{reverse("login")}"' in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model",
    [m for m in admin.site._registry if m._meta.app_label in {"valuetree", "outcomes"}],
    ids=lambda m: m._meta.label,
)
def test_every_model_has_a_working_admin(tree, client, rf, model):
    root = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(root)
    opts = model._meta
    assert (
        client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code
        == 200
    )
    # Records only services write (the lifecycle's moves) cannot be added by hand.
    request = rf.get("/")
    request.user = root
    addable = admin.site._registry[model].has_add_permission(request)
    add_page = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    assert add_page.status_code == (200 if addable else 403)
