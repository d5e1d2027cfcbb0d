"""The schedule page, send-a-test, resend, the calendar feed, unsubscribe, the PDF."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from icalendar import Calendar

from outcomes.reports import services
from outcomes.reports.models import CalendarToken, Delivery, ReportUnsubscribe, ReviewSchedule
from outcomes.reviews import services as review_services
from valuetree import services as node_services

pytestmark = pytest.mark.django_db

FORM = {
    "rrule": "FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO",
    "starts_on": "2026-01-01",
    "time_of_day": "09:00",
    "timezone": "Europe/Oslo",
    "is_active": "on",
    "publish_mode": "auto",
    "send_policy": "always",
    "recipient_roles": ["owner", "leadership"],
    "extra_addresses": "board@example.com",
    "channels": ["email"],
    "attach_pdf": "on",
    "reminder_days": "0",
}


@pytest.fixture
def page(tree):
    return reverse("outcomes:review-schedule", kwargs={"slug": tree.slug})


def test_owner_sets_the_schedule_and_reads_it_in_words(client, tree, users, page):
    client.force_login(users["owner"])
    assert client.get(page).status_code == 200
    response = client.post(page, FORM)
    assert response.status_code == 302
    schedule = ReviewSchedule.objects.get(tree=tree)
    assert schedule.recipient_roles == ["owner", "leadership"]
    html = client.get(page).content.decode()
    assert "Every 3 months on the first Monday at 09:00 Europe/Oslo" in html
    assert html.count("<li><time") == 5


@pytest.mark.parametrize(
    ("zone", "first"),
    [
        # Read in UTC and labelled with the schedule's zone: "Mon 2027-01-04 08:00
        # Europe/Oslo" for a 09:00 review; in Auckland the day before, "Sun … 20:00".
        ("Europe/Oslo", "Mon 2027-01-04 09:00 Europe/Oslo"),
        ("Pacific/Auckland", "Mon 2027-01-04 09:00 Pacific/Auckland"),
    ],
)
def test_the_next_dates_are_the_schedule_s_own_wall_time(client, tree, users, page, zone, first):
    client.force_login(users["owner"])
    assert client.post(page, {**FORM, "timezone": zone}).status_code == 302

    html = client.get(page).content.decode()

    assert f">{first}</time>" in html
    assert html.count(" 09:00 " + zone + "</time>") == 5


def test_a_bad_rule_answers_422_and_changes_nothing(client, tree, users, page):
    client.force_login(users["owner"])
    response = client.post(page, {**FORM, "rrule": "FREQ=HOURLY"})
    assert response.status_code == 422
    assert "Reviews recur daily at most" in response.content.decode()
    assert not ReviewSchedule.objects.exists()


def test_webhook_is_write_only_on_the_page(client, tree, users, page):
    client.force_login(users["owner"])
    secret = "https://hooks.slack.com/services/T/B/very-secret-token"
    client.post(page, {**FORM, "channels": ["email", "slack"], "slack_webhook": secret})
    html = client.get(page).content.decode()
    assert "very-secret-token" not in html
    assert "Slack yes" in html


@pytest.mark.parametrize(("role", "get", "post"), [("viewer", 200, 403), ("outsider", 404, 404)])
def test_others_cannot_change_it(client, tree, users, page, role, get, post):
    client.force_login(users[role])
    assert client.get(page).status_code == get
    assert client.post(page, FORM).status_code == post
    assert not ReviewSchedule.objects.exists()


def _published(tree, users):
    node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    review = review_services.review_start(tree=tree, by=users["owner"], title="Q1 value review")
    return review_services.review_publish(review=review, by=users["owner"])


def test_send_a_test_to_me_only(
    client, tree, users, page, django_capture_on_commit_callbacks, monkeypatch
):
    from outcomes import tasks

    monkeypatch.setattr(
        tasks.send_delivery, "delay", lambda pk: tasks.send_delivery.apply(args=[pk])
    )
    users["owner"].email = "owner@example.com"
    users["owner"].save()
    client.force_login(users["owner"])
    client.post(page, FORM)
    _published(tree, users)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("outcomes:review-schedule-test", kwargs={"slug": tree.slug}))
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    html = client.get(page).content.decode()
    assert "owner@example.com" in html and "Sent" in html
    delivery = Delivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("outcomes:delivery-resend", kwargs={"delivery_id": delivery.pk}))
    assert len(mail.outbox) == 2
    client.force_login(users["viewer"])
    assert (
        client.post(
            reverse("outcomes:delivery-resend", kwargs={"delivery_id": delivery.pk})
        ).status_code
        == 403
    )


def test_calendar_feed_by_token_and_revoked(client, tree, users, page):
    client.force_login(users["owner"])
    client.post(page, FORM)
    client.force_login(users["viewer"])
    calendar_url = reverse("outcomes:review-schedule-calendar", kwargs={"slug": tree.slug})
    client.post(calendar_url, {"action": "issue"})
    html = client.get(page).content.decode()
    feed = html.split("<code>", 1)[1].split("</code>", 1)[0]
    path = feed.split("8000", 1)[1]
    client.logout()
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    events = Calendar.from_ical(response.content).walk("VEVENT")
    assert len(events) == 12
    first = events[0].decoded("dtstart")
    local = first.astimezone(dt.timezone(dt.timedelta(hours=0)))
    assert first.tzinfo is not None and local.weekday() == 0
    assert str(events[0]["summary"]) == "Value review: Tree"
    assert CalendarToken.objects.get().digest not in path  # only the hash is stored
    client.force_login(users["viewer"])
    client.post(calendar_url, {"action": "revoke"})
    client.logout()
    assert client.get(path).status_code == 404


def test_a_feed_stops_when_its_user_leaves_the_tree(client, tree, users):
    from outcomes.reports import calendar

    token = calendar.calendar_token_issue(user=users["viewer"], tree=tree)
    assert calendar.feed_for_token(token) is not None
    tree.memberships.filter(user=users["viewer"]).delete()
    assert calendar.feed_for_token(token) is None


def test_making_links_again_and_again_keeps_five_live_ones(tree, users):
    from outcomes.reports import calendar
    from outcomes.reports.models import CalendarToken

    tokens = [calendar.calendar_token_issue(user=users["viewer"], tree=tree) for _ in range(8)]
    calendar.calendar_tokens_revoke(user=users["owner"], tree=tree)
    assert CalendarToken.objects.filter(user=users["viewer"]).count() == calendar.MAX_LIVE_LINKS
    assert [calendar.feed_for_token(t) is not None for t in tokens] == [False] * 3 + [True] * 5
    # Revoked links are cleared when the next one is made.
    calendar.calendar_tokens_revoke(user=users["viewer"], tree=tree)
    fresh = calendar.calendar_token_issue(user=users["viewer"], tree=tree)
    assert list(CalendarToken.objects.filter(user=users["viewer"]).values_list("revoked_at")) == [
        (None,)
    ]
    assert calendar.feed_for_token(fresh) is not None


def test_unsubscribe_page_one_click(client, tree):
    token = services.unsubscribe_token(tree.pk, "board@example.com")
    url = reverse("outcomes:report-unsubscribe", kwargs={"token": token})
    assert "Stop these reports" in client.get(url).content.decode()
    assert not ReportUnsubscribe.objects.exists()
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert ReportUnsubscribe.objects.filter(tree=tree, address="board@example.com").exists()
    assert client.get(url[:-3] + "zz/").status_code == 400


def test_unsubscribe_link_of_a_deleted_tree_is_a_400_not_a_500(client, tree):
    # The e-mail outlives its tree: the link must not write a row for a tree that is
    # gone (its foreign key fails: a 500 before the fix).
    token = services.unsubscribe_token(tree.pk, "board@example.com")
    url = reverse("outcomes:report-unsubscribe", kwargs={"token": token})
    from valuetree.models import ValueTree

    ValueTree.objects.filter(pk=tree.pk).delete()
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert not ReportUnsubscribe.objects.exists()
    assert client.get(url).status_code == 200


def test_review_page_offers_pdf_and_markdown(client, tree, users):
    review = _published(tree, users)
    client.force_login(users["viewer"])
    html = client.get(reverse("outcomes:review", kwargs={"review_id": review.pk})).content.decode()
    assert reverse("outcomes:review-pdf", kwargs={"review_id": review.pk}) in html
    assert reverse("outcomes:review-download", kwargs={"review_id": review.pk, "fmt": "md"}) in html
    response = client.get(reverse("outcomes:review-pdf", kwargs={"review_id": review.pk}))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    client.force_login(users["outsider"])
    assert (
        client.get(reverse("outcomes:review-pdf", kwargs={"review_id": review.pk})).status_code
        == 404
    )


def test_a_stored_rule_that_no_longer_reads_is_shown_not_a_500(client, tree, users):
    # Rows saved before a check was added (or with a zone tzdata dropped) bypass the
    # service's validation: the page, the API, the feed and the beat must survive them.
    from outcomes.reports import calendar

    schedule = ReviewSchedule.objects.create(
        tree=tree,
        rrule="FREQ=MONTHLY;BYDAY=9MO",
        starts_on=dt.date(2026, 1, 1),
        time_of_day=dt.time(9),
        timezone="UTC",
        channels=["email"],
        next_run_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    client.force_login(users["owner"])
    page = client.get(reverse("outcomes:review-schedule", kwargs={"slug": tree.slug}))
    assert page.status_code == 200
    assert "cannot be read" in page.content.decode()
    api = client.get(f"/api/trees/{tree.slug}/review-schedule/")
    assert api.status_code == 200 and api.json()["next_dates"] == []
    token = calendar.calendar_token_issue(user=users["owner"], tree=tree)
    assert b"VEVENT" not in calendar.feed_for_token(token)
    claimed = services.schedules_claim_due(now=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    assert claimed == [(schedule.pk, "2026-01-01T00:00:00+00:00")]
    schedule.refresh_from_db()
    assert schedule.next_run_at is None


def test_an_address_that_unsubscribed_gets_no_report_resent_or_retried(
    client, tree, users, page, django_capture_on_commit_callbacks, monkeypatch
):
    """Unsubscribing stopped new runs only: an owner's "Resend" (or a retry still
    queued) mailed the report to the address that had opted out."""
    from outcomes import tasks

    monkeypatch.setattr(
        tasks.send_delivery, "delay", lambda pk: tasks.send_delivery.apply(args=[pk])
    )
    review = _published(tree, users)
    sent = Delivery.objects.create(
        review=review, channel="email", recipient="board@example.com", status="sent"
    )
    # A report still waiting to retry when its address unsubscribed.
    queued = Delivery.objects.create(
        review=review, channel="email", recipient="board2@example.com", status="retrying"
    )
    for address in ("board@example.com", "board2@example.com"):
        services.unsubscribe(token=services.unsubscribe_token(tree.pk, address))
    client.force_login(users["owner"])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("outcomes:delivery-resend", kwargs={"delivery_id": sent.pk}))
        services.delivery_send(delivery_id=queued.pk, final_attempt=False)

    assert response.status_code == 302
    assert mail.outbox == []
    assert Delivery.objects.get(pk=sent.pk).status == "sent"  # not queued again
    queued.refresh_from_db()
    assert (queued.status, queued.error) == (
        "failed",
        "board2@example.com unsubscribed from this tree's reports.",
    )


def test_a_recipient_who_left_the_tree_gets_no_report_resent_or_retried(
    client, tree, users, page, django_capture_on_commit_callbacks, monkeypatch
):
    """A member taken off the tree (or a leader who lost read-all) was still sent the
    report by an owner's "Resend" or a retry still queued: the send checked only the
    unsubscribe list. The board's extra address still gets it, and a test still goes to
    whoever asks."""
    from outcomes import tasks
    from valuetree import services as tree_services

    monkeypatch.setattr(
        tasks.send_delivery, "delay", lambda pk: tasks.send_delivery.apply(args=[pk])
    )
    for role in ("owner", "editor", "viewer", "leadership"):
        users[role].email = f"{role}@example.com"
        users[role].save(update_fields=["email"])
    client.force_login(users["owner"])
    assert (
        client.post(
            page, {**FORM, "recipient_roles": ["owner", "editor", "viewer", "leadership"]}
        ).status_code
        == 302
    )
    review = _published(tree, users)
    sent = {
        address: Delivery.objects.create(
            review=review, channel="email", recipient=address, status="sent"
        )
        for address in ("viewer@example.com", "leadership@example.com", "board@example.com")
    }
    retrying = Delivery.objects.create(
        review=review, channel="email", recipient="editor@example.com", status="retrying"
    )
    test = Delivery.objects.create(
        review=review,
        channel="email",
        recipient="viewer@example.com",
        purpose="test",
        status="sent",
    )
    # The viewer and the editor leave the tree; the leader loses read-all.
    for role in ("viewer", "editor"):
        tree_services.membership_remove(membership=tree.memberships.get(user=users[role]))
    users["leadership"].groups.clear()

    with django_capture_on_commit_callbacks(execute=True):
        refused = [
            client.post(reverse("outcomes:delivery-resend", kwargs={"delivery_id": d.pk}))
            for d in (sent["viewer@example.com"], sent["leadership@example.com"])
        ]
        kept = client.post(
            reverse(
                "outcomes:delivery-resend", kwargs={"delivery_id": sent["board@example.com"].pk}
            )
        )
        services.delivery_send(delivery_id=retrying.pk, final_attempt=False)
        services.delivery_resend(delivery=test, by=users["owner"])

    assert [r.status_code for r in refused] == [302, 302]
    assert kept.status_code == 302
    assert sorted(m.to[0] for m in mail.outbox) == ["board@example.com", "viewer@example.com"]
    assert [
        m.subject.startswith("[Test] ") for m in mail.outbox if m.to == ["viewer@example.com"]
    ] == [True]
    for address in ("viewer@example.com", "leadership@example.com"):
        assert Delivery.objects.get(pk=sent[address].pk).status == "sent"  # not queued again
    retrying.refresh_from_db()
    assert (retrying.status, retrying.error) == (
        "failed",
        "editor@example.com no longer receives this tree's reports.",
    )
    with pytest.raises(ValidationError) as refusal:
        services.delivery_resend(delivery=sent["viewer@example.com"], by=users["owner"])
    assert refusal.value.message_dict == {
        "recipient": ["viewer@example.com no longer receives this tree's reports."]
    }
