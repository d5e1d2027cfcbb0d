"""Rate limits with a real shared cache (Redis): the login lockout (django-axes), the
login throttle per address, API throttles per user and per anonymous address, and the
tighter scopes of imports, pulls now and evaluations, in the API and the browser.
Every refusal is a 429 with Retry-After and changes nothing."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import redis
from django.test import Client
from rest_framework.test import APIClient

from outcomes.services import measure_create
from tests.factories import make_metric
from tests.workers import SHARED_REDIS, redis_ready
from valuetree import services
from valuetree.models import ValueTree

RATES = {
    "anon": "3/min",
    "user": "1000/min",
    "imports": "2/hour",
    "pulls": "2/hour",
    "evaluations": "2/hour",
    "renders": "2/hour",
    "logins": "1000/min",
}


@pytest.fixture
def rates(settings):
    """Real rates, counted in the machine's Redis under a key prefix of this test only."""
    url = f"{SHARED_REDIS}/0"
    assert redis_ready(url), "Redis at 127.0.0.1:6379 is down"
    prefix = f"vt-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": prefix,
        }
    }

    def set_rates(**changes: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**RATES, **changes},
        }

    set_rates()
    yield set_rates
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    assert keys, "the throttles counted nowhere in Redis"
    client.delete(*keys)


def assert_throttled(answer) -> None:
    assert answer.status_code == 429, answer.content[:300]
    assert int(answer["Retry-After"]) > 0


def api_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- Logins ------------------------------------------------------------------------------


def login(client: Client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_thirty_wrong_passwords_lock_the_account_out_even_for_the_right_one(rates, settings, users):
    settings.AXES_ENABLED = True
    client = Client()
    for _ in range(30):
        answer = login(client, "editor", "wrong password")
        assert answer.status_code in (200, 429)  # the form again, then the lockout
    assert_throttled(answer)
    right = login(client, "editor", "pw-editor")
    assert_throttled(right)
    assert int(right["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    assert "_auth_user_id" not in client.session
    # Another account, or the same from another address, is not locked.
    assert login(Client(), "owner", "pw-owner").status_code == 302
    other = Client()
    assert login(other, "editor", "pw-editor", address="198.51.100.9").status_code == 302
    assert "_auth_user_id" in other.session


def test_a_success_before_the_limit_resets_the_count(rates, settings, users):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(2):
        assert login(client, "viewer", "wrong").status_code == 200
    assert login(client, "viewer", "pw-viewer").status_code == 302
    client.logout()
    for _ in range(2):
        assert login(client, "viewer", "wrong").status_code == 200
    assert login(client, "viewer", "pw-viewer").status_code == 302


def test_login_posts_are_throttled_per_address_whatever_the_username(rates, users):
    rates(logins="5/min")
    client = Client()
    for index in range(5):
        assert login(client, f"nobody-{index}", "x").status_code == 200
    assert_throttled(login(client, "owner", "pw-owner"))
    assert "_auth_user_id" not in client.session
    assert login(Client(), "owner", "pw-owner", address="198.51.100.9").status_code == 302
    # The form itself is never throttled.
    assert client.get("/accounts/login/", REMOTE_ADDR="203.0.113.7").status_code == 200


# --- The API, per user and per anonymous address ---------------------------------------


def test_api_requests_are_throttled_per_user(rates, users, tree):
    rates(user="4/min")
    editor, viewer = api_client(users["editor"]), api_client(users["viewer"])
    for _ in range(4):
        assert editor.get(f"/api/trees/{tree.slug}/").status_code == 200
    assert_throttled(editor.get(f"/api/trees/{tree.slug}/"))
    assert viewer.get(f"/api/trees/{tree.slug}/").status_code == 200


def test_anonymous_api_requests_are_throttled_per_address(rates, db):
    client = APIClient()
    for _ in range(3):
        assert client.get("/api/docs/", REMOTE_ADDR="203.0.113.7").status_code == 200
    assert_throttled(client.get("/api/docs/", REMOTE_ADDR="203.0.113.7"))
    # A forged X-Forwarded-For does not make a new address (NUM_PROXIES is 0) …
    forged = client.get("/api/docs/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert_throttled(forged)
    # … and another address has its own count.
    assert client.get("/api/docs/", REMOTE_ADDR="198.51.100.9").status_code == 200


# --- Costly actions: imports, pulls now, evaluations -----------------------------------


def tree_document(slug: str) -> dict:
    return {"version": 1, "name": slug, "slug": slug, "vision": "A vision", "goals": []}


def test_imports_have_their_own_tighter_rate_shared_by_api_and_browser(rates, users):
    client = api_client(users["editor"])
    for slug in ("one", "two"):
        answer = client.post("/api/trees/import/", tree_document(slug), format="json")
        assert answer.status_code == 201, answer.content
    assert_throttled(client.post("/api/trees/import/", tree_document("three"), format="json"))
    assert not ValueTree.objects.filter(slug="three").exists()
    # Other calls of the same user go on.
    assert client.get("/api/trees/").status_code == 200
    # The browser's import page shows its form but refuses another import.
    browser = Client()
    browser.force_login(users["editor"])
    assert browser.get("/data-products/import/").status_code == 200
    refused = browser.post("/data-products/import/", {"standard": "odps", "text": "id: x"})
    assert_throttled(refused)
    assert b"Too many requests" in refused.content
    # Another user has a budget of their own.
    other = api_client(users["owner"])
    assert other.post("/api/trees/import/", tree_document("four"), format="json").status_code == 201


def test_pull_now_has_its_own_rate_in_api_and_browser(rates, users, tree):
    metric = make_metric(
        tree,
        kind="http_json",
        config={"url": "https://example.com/x"},
        query="$.value",
        schedule_interval=dt.timedelta(hours=1),
    )
    client = api_client(users["editor"])
    assert client.post(f"/api/metrics/{metric.pk}/pull/").status_code == 202
    assert client.post(f"/api/metrics/{metric.pk}/pull/").status_code == 409  # still counted
    assert_throttled(client.post(f"/api/metrics/{metric.pk}/pull/"))
    browser = Client()
    browser.force_login(users["editor"])
    assert_throttled(browser.post(f"/metrics/{metric.pk}/pull/"))


def test_evaluations_have_their_own_rate(rates, users, tree):
    goal = services.node_create(tree=tree, parent=None, title="Goal")
    measure = measure_create(
        node=goal,
        name="Revenue",
        direction="increase",
        baseline_value=0,
        baseline_date=dt.date(2026, 1, 1),
        target_value=10,
        target_date=dt.date(2027, 1, 1),
    )
    client = api_client(users["editor"])
    for _ in range(2):
        assert client.post(f"/api/measures/{measure.pk}/evaluate/").status_code == 200
    assert_throttled(client.post(f"/api/measures/{measure.pk}/evaluate/"))
    # Reading the policy is not counted; changing it (which re-evaluates) is.
    assert client.get(f"/api/trees/{tree.slug}/verdict-policy/").status_code == 200
    assert_throttled(client.put(f"/api/trees/{tree.slug}/verdict-policy/", {}, format="json"))


def test_review_pdfs_rendered_on_demand_have_their_own_rate(rates, users, tree):
    from outcomes.reviews import services as review_services

    services.node_create(tree=tree, parent=None, title="Goal")
    review = review_services.review_start(tree=tree, by=users["owner"])
    review = review_services.review_publish(review=review, by=users["owner"])
    browser = Client()
    browser.force_login(users["viewer"])
    url = f"/reviews/{review.pk}/review.pdf"
    # The stored render (the deliveries' orientation) is made once and not counted.
    for _ in range(3):
        answer = browser.get(url)
        assert answer.status_code == 200 and answer.content.startswith(b"%PDF")
    # Each landscape download renders anew: two an hour here, then a 429.
    for _ in range(2):
        assert browser.get(url + "?landscape=1").status_code == 200
    assert_throttled(browser.get(url + "?landscape=1"))
    assert browser.get(url).status_code == 200


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/admin/login/", {"username": "nobody", "password": "x"}),
        ("/accounts/password_reset/", {"email": "someone@example.com"}),
    ],
)
def test_every_login_form_shares_the_login_throttle(rates, users, path, fields):
    """The admin's own login form checks passwords too (0.6 s of CPU each), and the
    password reset form sends e-mail: both count against the same per-address rate as
    /accounts/login/, or a client guesses passwords (or sends mail) without limit."""
    from django.core import mail

    rates(logins="3/min")
    client = Client()
    for _ in range(3):
        assert client.post(path, fields, REMOTE_ADDR="203.0.113.7").status_code in (200, 302)
    sent = len(mail.outbox)
    assert_throttled(client.post(path, fields, REMOTE_ADDR="203.0.113.7"))
    assert len(mail.outbox) == sent
    assert login(client, "owner", "pw-owner").status_code == 429  # one counter per address
