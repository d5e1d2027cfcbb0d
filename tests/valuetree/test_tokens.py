"""API tokens (django-rest-knox): hashed, named, expiring, revocable by their user in the
browser, and tokens issued in clear before are hashed by the migration."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from importlib import import_module
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone
from knox.crypto import hash_token
from rest_framework.test import APIClient

from valuetree import services
from valuetree.models import ApiToken

ROOT = Path(__file__).resolve().parents[2]


def api_status(key: str) -> int:
    return APIClient().get("/api/trees/", HTTP_AUTHORIZATION=f"Token {key}").status_code


@pytest.mark.django_db
def test_a_token_works_until_it_expires(users):
    token, key = services.api_token_create(user=users["viewer"], name="script", days=7)
    assert abs(token.expiry - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    assert api_status(key) == 200
    ApiToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert api_status(key) == 401


@pytest.mark.django_db
def test_a_token_of_an_inactive_user_is_refused(users):
    _, key = services.api_token_create(user=users["viewer"], name="script")
    users["viewer"].is_active = False
    users["viewer"].save()
    assert api_status(key) == 401


@pytest.mark.django_db
def test_the_page_lists_creates_once_and_revokes(users, client):
    _, older = services.api_token_create(user=users["editor"], name="Nightly export")
    services.api_token_create(user=users["viewer"], name="Not mine")
    client.force_login(users["editor"])

    page = client.get("/account/tokens/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Nightly export" in text and older[:15] in text
    assert older not in text and "Not mine" not in text

    made = client.post("/account/tokens/", {"name": "CI pipeline", "days": 30})
    assert made.status_code == 200
    assert "no-store" in made["Cache-Control"]
    new = ApiToken.objects.get(name="CI pipeline")
    shown = made.content.decode()
    key = shown.split('<code id="new-token">')[1].split("</code>")[0]
    assert key.startswith(new.token_key) and hash_token(key) == new.digest
    assert api_status(key) == 200
    assert key not in client.get("/account/tokens/").content.decode()  # shown once

    revoked = client.post(f"/account/tokens/{new.token_key}/revoke/")
    assert revoked.status_code == 302
    assert api_status(key) == 401
    assert api_status(older) == 200


@pytest.mark.django_db
def test_a_user_cannot_revoke_another_users_token(users, client):
    theirs, key = services.api_token_create(user=users["viewer"], name="Theirs")
    client.force_login(users["editor"])
    client.post(f"/account/tokens/{theirs.token_key}/revoke/")
    assert api_status(key) == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field"), [({"name": "", "days": 30}, "name"), ({"name": "x", "days": 9999}, "days")]
)
def test_a_bad_token_form_is_a_400_that_creates_nothing(users, client, data, field):
    client.force_login(users["editor"])
    response = client.post("/account/tokens/", data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert ApiToken.objects.count() == 0


def test_the_page_needs_a_login(client, db):
    assert client.get("/account/tokens/").status_code == 302


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_hashes_tokens_issued_in_clear(users):
    clear = "0123456789abcdef0123456789abcdef01234567"  # a DRF authtoken key
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, "
            "user_id integer)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)",
            [clear, timezone.now(), users["viewer"].pk],
        )
    try:
        migration = import_module("valuetree.migrations.0004_i16_api_tokens")
        migration.hash_old_tokens(apps, SimpleNamespace(connection=connection))
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM authtoken_token")
            assert cursor.fetchone() == (0,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE authtoken_token")
    [token] = ApiToken.objects.all()
    assert (token.user, token.name) == (users["viewer"], "Issued before tokens were hashed")
    assert clear not in token.digest
    assert api_status(clear) == 200


def test_issue_token_works_in_a_fresh_shell(tmp_path):
    """As the README shows: no DEBUG, no SECRET_KEY, a checkout's manage.py."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["DATA_DIR"] = str(tmp_path)

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )

    assert manage("migrate", "--noinput").returncode == 0
    created = manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        "get_user_model().objects.create_user('demo')",
    )
    assert created.returncode == 0, created.stderr
    issued = manage("issue_token", "demo")
    assert issued.returncode == 0, issued.stderr
    assert issued.stdout.strip().startswith("vt_")


@pytest.mark.django_db
def test_a_token_is_checked_in_one_query_whatever_the_users_other_tokens(
    users, django_assert_num_queries
):
    """knox read every token of the user on each request (to delete expired ones); ours
    reads only the working tokens with the presented prefix (valuetree/auth.py)."""
    from rest_framework.test import APIRequestFactory

    from valuetree.auth import TokenAuthentication

    for index in range(5):
        services.api_token_create(user=users["viewer"], name=f"other {index}")
    expired, _ = services.api_token_create(user=users["viewer"], name="expired")
    ApiToken.objects.filter(pk=expired.pk).update(expiry=timezone.now() - timedelta(days=1))
    token, key = services.api_token_create(user=users["viewer"], name="script")
    request = APIRequestFactory().get("/api/trees/", HTTP_AUTHORIZATION=f"Token {key}")
    with django_assert_num_queries(1):
        user, found = TokenAuthentication().authenticate(request)
    assert (user, found) == (users["viewer"], token)
    assert ApiToken.objects.filter(pk=expired.pk).exists()  # the daily prune deletes it


@pytest.mark.django_db
def test_an_expired_or_revoked_token_is_refused_at_once_and_the_request_writes_nothing(users):
    token, key = services.api_token_create(user=users["viewer"], name="script")
    assert api_status(key) == 200
    ApiToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert api_status(key) == 401
    assert ApiToken.objects.filter(pk=token.pk).exists()  # refused, not deleted on a GET
    other, other_key = services.api_token_create(user=users["viewer"], name="second")
    assert api_status(other_key) == 200
    assert services.api_token_revoke(user=users["viewer"], token_key=other.token_key) == 1
    assert api_status(other_key) == 401  # nothing cached


@pytest.mark.django_db
def test_a_wrong_token_with_a_known_prefix_is_refused(users):
    _, key = services.api_token_create(user=users["viewer"], name="script")
    forged = key[:15] + ("0" if key[15] != "0" else "1") + key[16:]
    assert api_status(forged) == 401
    assert api_status(key) == 200


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["vt_\xff\xfe", "\xe9t\xe9"])
def test_a_token_that_is_not_utf8_is_a_401_not_a_500(raw):
    """The header reaches DRF as Latin-1 bytes; knox decodes the token as UTF-8."""
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/trees/", HTTP_AUTHORIZATION=f"Token {raw}")
    assert response.status_code == 401


@pytest.mark.django_db
def test_issue_token_rotate_with_a_bad_lifetime_keeps_the_old_token(users):
    """--rotate revoked the tokens of that name, then refused the new one (--days out
    of range): the pipeline using the old token lost its access for a typo."""
    from django.core.management import CommandError, call_command

    _, old = services.api_token_create(user=users["editor"], name="ci", days=30)
    with pytest.raises(CommandError, match="1 to"):
        call_command("issue_token", users["editor"].username, name="ci", days=9999, rotate=True)
    assert api_status(old) == 200
    assert ApiToken.objects.filter(user=users["editor"], name="ci").count() == 1


@pytest.mark.django_db
def test_the_token_page_refuses_posts_without_the_csrf_token(users):
    """A page of another site cannot make or revoke a logged-in user's tokens."""
    from django.test import Client

    _, key = services.api_token_create(user=users["editor"], name="CI")
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["editor"])
    made = client.post("/account/tokens/", {"name": "Forged", "days": 30})
    revoked = client.post(f"/account/tokens/{key[:15]}/revoke/")
    assert (made.status_code, revoked.status_code) == (403, 403)
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["CI"]
    assert api_status(key) == 200


@pytest.mark.django_db
def test_a_user_holds_at_most_the_limit_of_working_tokens(users, client, settings):
    """The page made tokens without limit (a row each, for ever until they expire):
    past API_TOKEN_LIMIT_PER_USER working tokens it asks to revoke one first."""
    settings.API_TOKEN_LIMIT_PER_USER = 3
    for n in range(3):
        services.api_token_create(user=users["editor"], name=f"t{n}")
    client.force_login(users["editor"])
    refused = client.post("/account/tokens/", {"name": "one more", "days": 30})
    assert refused.status_code == 400
    assert "revoke one" in refused.content.decode()
    assert ApiToken.objects.filter(user=users["editor"]).count() == 3
    # An expired token does not count.
    ApiToken.objects.filter(name="t0").update(expiry=timezone.now() - timedelta(days=1))
    assert client.post("/account/tokens/", {"name": "one more", "days": 30}).status_code == 200
