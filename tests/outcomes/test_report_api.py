"""The review-schedule API: write-only webhooks, owners-only addresses, the schema."""

from __future__ import annotations

import json

import pytest

from outcomes.reports.models import ReviewSchedule

pytestmark = pytest.mark.django_db

BODY = {
    "rrule": "FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO",
    "starts_on": "2026-01-01",
    "time_of_day": "09:00",
    "timezone": "Europe/Oslo",
    "channels": ["email", "teams"],
    "teams_webhook": "https://prod-1.westeurope.logic.azure.com/workflows/x?sig=topsecretsig",
    "recipient_roles": ["owner"],
    "extra_addresses": ["board@example.com"],
}


def test_put_then_get_never_shows_the_webhook(client_for, users, tree):
    owner = client_for(users["owner"])
    response = owner.put(f"/api/trees/{tree.slug}/review-schedule/", BODY, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert "topsecretsig" not in response.content.decode()
    assert data["has_teams_webhook"] is True and "teams_webhook" not in data
    assert data["description"].startswith("every 3 months on the first Monday at 09:00")
    assert len(data["next_dates"]) == 5 and data["next_dates"][0].endswith("+01:00")
    assert data["extra_addresses"] == ["board@example.com"]
    viewer = client_for(users["viewer"]).get(f"/api/trees/{tree.slug}/review-schedule/")
    assert viewer.status_code == 200
    assert "extra_addresses" not in viewer.json()
    assert "topsecretsig" not in ReviewSchedule.objects.get().teams_webhook_encrypted


def test_a_schedule_that_does_not_exist_is_404(client_for, users, tree):
    response = client_for(users["owner"]).get(f"/api/trees/{tree.slug}/review-schedule/")
    assert response.status_code == 404


def test_bad_time_zone_is_a_400_naming_it(client_for, users, tree):
    response = client_for(users["owner"]).put(
        f"/api/trees/{tree.slug}/review-schedule/",
        {**BODY, "timezone": "Atlantis/Capital"},
        format="json",
    )
    assert response.status_code == 400
    assert "timezone" in response.json()
    assert not ReviewSchedule.objects.exists()


def test_the_schema_documents_schedules_and_keeps_webhooks_write_only(client_for):
    response = client_for().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = json.loads(response.content)
    assert {"get", "put"} <= set(schema["paths"]["/api/trees/{slug}/review-schedule/"])
    assert "get" in schema["paths"]["/api/trees/{slug}/deliveries/"]
    assert "post" in schema["paths"]["/api/deliveries/{delivery_id}/resend/"]
    components = schema["components"]["schemas"]
    assert "slack_webhook" not in components["Schedule"]["properties"]
    assert "slack_webhook" in components["ScheduleRequest"]["properties"]


@pytest.mark.parametrize(
    "field,value",
    [
        ("rrule", "FREQ=DAILY;INTERVAL=0"),  # dateutil loops for ever
        ("rrule", "FREQ=MONTHLY;BYDAY=9MO"),  # IndexError while iterating
        ("rrule", "FREQ=MONTHLY;BYMONTHDAY=0"),
        ("rrule", "FREQ=DAILY\x00"),
        ("rrule", "FREQ=DAILY;" + "X" * 10_000),
        ("starts_on", "0001-01-01"),
        ("starts_on", "9999-12-31"),
        ("timezone", "Europe/Oslo\r\nBcc: x@example.com"),
        ("reminder_days", -1),
        ("reminder_days", 10**9),
        ("extra_addresses", ["a@example.com\r\nBcc: evil@example.com"]),
        ("extra_addresses", ["not-an-address"]),
        # Private/metadata addresses are refused at connect time (DNS can change after
        # saving): test_report_delivery.py::test_webhook_to_a_private_address_is_refused.
        ("teams_webhook", "file:///etc/passwd"),
        ("teams_webhook", "https://example.com/etc/passwd/" + "a" * 10_000),
    ],
)
def test_hostile_schedule_input_is_a_400_and_saves_nothing(client_for, users, tree, field, value):
    response = client_for(users["owner"]).put(
        f"/api/trees/{tree.slug}/review-schedule/", {**BODY, field: value}, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert "/etc/passwd" not in response.content.decode()  # write-only even when refused
    assert not ReviewSchedule.objects.exists()
