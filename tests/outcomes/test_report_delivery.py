"""Report delivery with real parts: an SMTP server (aiosmtpd) on a local port, the PDF
read back with pypdf, Slack and Teams webhooks on local stub servers."""

from __future__ import annotations

import datetime as dt
import io
import re
import socket
from email import message_from_bytes, policy

import orjson
import pytest
from aiosmtpd.controller import Controller
from django.test import override_settings
from pypdf import PdfReader

from outcomes.reports import cards, services
from outcomes.reports.content import report_content
from outcomes.reports.models import Delivery, ReviewSchedule
from outcomes.reports.transports import TransportError
from outcomes.reviews import services as review_services
from outcomes.reviews.selectors import review_data
from tests.factories import bulk_tree
from tests.stub_http import StubServer
from valuetree import services as node_services

pytestmark = pytest.mark.django_db


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse_with: str | None = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        if self.refuse_with:
            return self.refuse_with
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=controller.port,
            EMAIL_USE_TLS=False,
            EMAIL_TIMEOUT=5,
        ):
            yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def queued(monkeypatch):
    from outcomes import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks.send_delivery, "delay", lambda delivery_id: sent.append(delivery_id))
    return sent


@pytest.fixture
def decided(tree, users):
    """A tree with a published review holding a kill decision."""
    users["owner"].email = "owner@example.com"
    users["owner"].save(update_fields=["email"])
    goal = node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    bet = node_services.node_create(tree=tree, parent=goal, title="Fax ordering", status="active")
    first = review_services.review_start(tree=tree, by=users["owner"])
    review_services.review_publish(review=first, by=users["owner"])
    review = review_services.review_start(tree=tree, by=users["owner"], title="Q3 value review")
    review_services.decision_create(
        node=bet,
        kind="kill",
        rationale="Nobody faxes any more",
        by=users["owner"],
        review=review,
        default_evidence=False,
    )
    return review_services.review_publish(review=review, by=users["owner"])


def schedule(tree, users, **fields):
    values = {
        "rrule": "FREQ=WEEKLY;BYDAY=MO",
        "starts_on": dt.date(2026, 1, 5),
        "time_of_day": dt.time(9),
        "timezone": "Europe/Oslo",
        "recipient_roles": ["owner"],
        "channels": ["email"],
    }
    values.update(fields)
    return services.schedule_save(tree=tree, by=users["owner"], **values)


def test_the_email_arrives_over_smtp_with_both_parts_the_pdf_and_the_chart(
    tree, users, decided, smtp, queued
):
    schedule(tree, users, pdf_landscape=True)
    run_ids = services.run_deliver(
        run=services.ScheduledRun.objects.create(
            schedule=ReviewSchedule.objects.get(),
            run_at=dt.datetime(2026, 3, 23, 8, tzinfo=dt.UTC),
            review=decided,
        )
    )
    assert len(run_ids) == 1
    assert services.delivery_send(delivery_id=run_ids[0], final_attempt=False) == "sent"
    [(rcpt, raw)] = smtp.messages
    assert rcpt == ["owner@example.com"]
    message = message_from_bytes(raw, policy=policy.default)
    assert "Q3 value review" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Nobody faxes any more" in text and "Nobody faxes any more" in html
    assert "Fax ordering killed" in text
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert [p["Content-ID"] for p in images] == ["<headline>"]
    assert images[0].get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'src="cid:headline"' in html
    [pdf] = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename().endswith(".pdf")
    reader = PdfReader(io.BytesIO(pdf.get_content()))
    page = reader.pages[0]
    assert page.mediabox.width > page.mediabox.height  # landscape
    words = " ".join(p.extract_text() for p in reader.pages)
    assert "Q3 value review" in words
    assert "Nobody faxes any more" in words
    assert "Tree" in words and "Page 1 of" in words  # header and page numbers
    assert Delivery.objects.get().status == "sent"


def _pdf_words(pdf: bytes, tree_name: str) -> str:
    """The PDF's text in one line, without the page headers and footers (an item may
    break across a page)."""
    pages = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        text = re.sub(r"Page \d+ of \d+|As of [\d-]+ [\d:]+ \w+", " ", page.extract_text())
        pages.append(text.replace(tree_name, " "))
    return " ".join(" ".join(pages).split())


def test_the_pdf_lists_every_change_and_every_node(tree, users):
    """No silent truncation: a review with more changes than the e-mail shows (and
    than the PDF used to hold, 300) has each of them in the PDF, and each node in the
    tree as it stood."""
    from outcomes.reports.charts import report_charts
    from outcomes.reports.render import EMAIL_MAX_CHANGES, pdf_bytes

    node_services.node_create(tree=tree, parent=None, title="Seed goal")
    first = review_services.review_start(tree=tree, by=users["owner"])
    review_services.review_publish(review=first, by=users["owner"])
    nodes = bulk_tree(tree, goals=3, bets=6, initiatives=18)  # 3 + 18 + 324 nodes
    review = review_services.review_publish(
        review=review_services.review_start(tree=tree, by=users["owner"], title="Big review"),
        by=users["owner"],
    )
    content = report_content(review_data(review))
    assert len(content["changes"]) >= len(nodes) > 300 > EMAIL_MAX_CHANGES
    assert sum(len(g["items"]) for g in content["change_groups"]) == len(content["changes"])
    words = _pdf_words(pdf_bytes(content, report_charts(content), landscape=False), tree.name)
    changes_part, tree_part = words.split("The tree as it stood")
    assert "more:" not in changes_part
    assert f"Initiatives added ({18 * 18})" in changes_part
    for node in nodes:
        alone = re.compile(rf"(?<![\w.]){re.escape(node.title)}(?![\w.])")
        assert alone.search(changes_part), f"{node.title} missing from what changed"
        assert alone.search(tree_part), f"{node.title} missing from the tree"


def test_an_smtp_4xx_is_retried_and_a_5xx_is_not(tree, users, decided, smtp, queued):
    schedule(tree, users)
    services.send_test(tree=tree, user=users["owner"])
    delivery = Delivery.objects.get()
    smtp.refuse_with = "451 4.3.0 try again later"
    with pytest.raises(TransportError) as e:
        services.delivery_send(delivery_id=delivery.pk, final_attempt=False)
    assert not e.value.permanent
    delivery.refresh_from_db()
    assert delivery.status == "retrying" and "451" in delivery.error
    assert delivery.sent_at is None
    smtp.refuse_with = "554 5.7.1 rejected"
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == "failed"
    delivery.refresh_from_db()
    assert delivery.sent_at is None
    smtp.refuse_with = None
    assert smtp.messages == []


def test_the_acceptance_is_recorded_as_the_250_is_read_before_quit():
    """The e-mail transport calls ``accepted`` right after the server's 250 to the
    end-of-data mark, before closing the session: the server's QUIT handler finds
    the call made."""
    import threading

    from django.core.mail import EmailMessage

    from valuetree.mail import EmailTransport

    called = threading.Event()
    seen: dict[str, object] = {}

    class Recording:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            seen["content"] = envelope.content
            seen["called_before_250"] = called.is_set()
            return "250 OK"

        async def handle_QUIT(self, server, session, envelope):  # noqa: N802
            seen["called_before_quit"] = called.is_set()
            return "221 Bye"

    controller = Controller(Recording(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=controller.port,
            EMAIL_USE_TLS=False,
            EMAIL_TIMEOUT=10,
        ):
            message = EmailMessage("Hi", ".leading dot\nbody", to=["a@example.com"])
            EmailTransport().send(message, accepted=called.set)
    finally:
        controller.stop()
    assert seen["called_before_250"] is False
    assert seen["called_before_quit"] is True
    assert b"\n.leading dot" in seen["content"]  # dot-stuffed on the wire, unstuffed there


def test_a_delivery_is_marked_sent_when_the_server_accepts_it(
    tree, users, decided, smtp, queued, monkeypatch
):
    """A failure after the server's 250 (here: closing the session times out) is no
    failure of the delivery: it stays sent, and is not retried."""
    from django.core.mail.backends.smtp import EmailBackend

    def close(self):
        raise TimeoutError("QUIT unanswered")

    monkeypatch.setattr(EmailBackend, "close", close)
    schedule(tree, users)
    services.send_test(tree=tree, user=users["owner"])
    delivery = Delivery.objects.get()
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == "sent"
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.sent_at is not None and delivery.error == ""
    assert len(smtp.messages) == 1
    assert not services.delivery_claim(delivery.pk)  # never sent again by a redelivery


def test_a_row_its_worker_left_sending_is_sent_again_after_the_lease(
    tree, users, decided, smtp, queued
):
    """Recovery after a kill -9: the row never got the server's 250 (it would say
    sent), so the server did not take it; after the lease it is sent, once."""
    schedule(tree, users)
    services.send_test(tree=tree, user=users["owner"])
    delivery = Delivery.objects.get()
    assert services.delivery_claim(delivery.pk)  # the worker that died
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == "sending"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert delivery.pk in services.deliveries_sweep_stuck(now=later)
    Delivery.objects.filter(pk=delivery.pk).update(updated_at=later - dt.timedelta(hours=2))
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == "sent"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(smtp.messages) == 1


@pytest.fixture
def stub(settings):
    with StubServer() as server:
        settings.METRICS_ALLOWED_HOSTS = [server.host_port]
        yield server


def _webhook_delivery(tree, users, decided, stub, channel, path):
    url = stub.url + path
    schedule(tree, users, channels=[channel], **{f"{channel}_webhook": url})
    run = services.ScheduledRun.objects.create(
        schedule=ReviewSchedule.objects.get(),
        run_at=dt.datetime(2026, 3, 23, 8, tzinfo=dt.UTC),
        review=decided,
    )
    [delivery_id] = services.run_deliver(run=run)
    return delivery_id, url


def test_slack_webhook_gets_block_kit(tree, users, decided, stub, queued):
    stub.route("/services/T1/B1/xyzsecret", (200, {}, b"ok"))
    delivery_id, _ = _webhook_delivery(
        tree, users, decided, stub, "slack", "/services/T1/B1/xyzsecret"
    )
    assert services.delivery_send(delivery_id=delivery_id, final_attempt=False) == "sent"
    [request] = stub.requests
    assert request.method == "POST" and request.headers["content-type"] == "application/json"
    body = orjson.loads(request.body)
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Q3 value review · Tree", "emoji": True},
    }
    text = orjson.dumps(body).decode()
    assert "KILL Fax ordering: Nobody faxes any more" in text
    assert f"/reviews/{decided.pk}/" in text
    assert Delivery.objects.get().recipient == "webhook"


def test_teams_workflow_gets_an_adaptive_card(tree, users, decided, stub, queued):
    stub.route("/workflows/abc", (202, {}, b""))
    delivery_id, _ = _webhook_delivery(tree, users, decided, stub, "teams", "/workflows/abc")
    assert services.delivery_send(delivery_id=delivery_id, final_attempt=False) == "sent"
    body = orjson.loads(stub.requests[0].body)
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["actions"][0]["type"] == "Action.OpenUrl"
    assert any("Nobody faxes any more" in block.get("text", "") for block in card["body"])


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "retry_after"),
    [
        (429, {"Retry-After": "120"}, False, 120.0),
        (503, {}, False, None),
        (404, {}, True, None),
        (410, {}, True, None),
    ],
)
def test_webhook_answers_are_judged(
    tree, users, decided, stub, queued, status, headers, permanent, retry_after
):
    stub.route("/hook/secret-part", (status, headers, b"no_service"))
    delivery_id, url = _webhook_delivery(tree, users, decided, stub, "slack", "/hook/secret-part")
    try:
        services.delivery_send(delivery_id=delivery_id, final_attempt=False)
    except TransportError as e:
        assert not permanent
        assert e.retry_after == retry_after
    else:
        assert permanent
    delivery = Delivery.objects.get()
    assert delivery.status == ("failed" if permanent else "retrying")
    assert "secret-part" not in delivery.error and str(status) in delivery.error


@pytest.mark.parametrize("status", [404, 503])
def test_a_webhook_answer_that_echoes_its_address_is_redacted(
    tree, users, decided, stub, queued, status
):
    """The webhook's address is its secret: a server (or a proxy before it) that names
    the address it was asked for in its error body must not put it in the delivery's
    error, which the schedule page and the API show."""
    path = "/hook/T9/B9/s3cr3tW3bh00kT0k3n"
    stub.route(path, (status, {}, f"no such hook: {stub.url}{path}".encode()))
    delivery_id, _ = _webhook_delivery(tree, users, decided, stub, "slack", path)
    try:
        services.delivery_send(delivery_id=delivery_id, final_attempt=False)
    except TransportError as e:
        assert "s3cr3tW3bh00kT0k3n" not in e.message
    error = Delivery.objects.get().error
    assert str(status) in error
    assert "s3cr3tW3bh00kT0k3n" not in error and "W3bh00k" not in error


def test_webhook_to_a_private_address_is_refused_at_connect(tree, users, decided, queued, settings):
    settings.METRICS_ALLOWED_HOSTS = []
    with StubServer() as server:
        server.route("/hook", (200, {}, b"ok"))
        delivery_id, _ = _webhook_delivery(tree, users, decided, server, "slack", "/hook")
        assert services.delivery_send(delivery_id=delivery_id, final_attempt=False) == "failed"
        assert server.requests == []
    assert "loopback" in Delivery.objects.get().error


def test_slack_limits_hold_for_a_500_node_review(tree, users, queued):
    from valuetree.models import Node

    first = review_services.review_start(tree=tree, by=users["owner"])
    review_services.review_publish(review=first, by=users["owner"])
    # 500 nodes added since, with long titles: 500 long lines of "what changed".
    bulk_tree(tree, goals=5, bets=9, initiatives=10)
    Node.objects.filter(tree=tree, kind="initiative").update(title="An initiative " + "x" * 180)
    review = review_services.review_start(tree=tree, by=users["owner"], title="R" * 200)
    review = review_services.review_publish(review=review, by=users["owner"])
    content = report_content(review_data(review))
    assert content["node_count"] >= 500
    assert content["changes_count"] >= 500
    payload = cards.slack_payload(content)
    assert len(payload["blocks"]) <= 50
    assert len(payload["text"]) <= 4000
    for block in payload["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    assert len(orjson.dumps(cards.teams_payload(content))) <= 28 * 1024


# --- Catalogue notifications on the same delivery path -----------------------------------


def test_a_notification_email_survives_an_smtp_outage(users, smtp, monkeypatch):
    from valuetree import services as catalogue
    from valuetree import tasks
    from valuetree.models import Notification

    users["editor"].email = "editor@example.com"
    users["editor"].save(update_fields=["email"])
    retried: list[int] = []
    monkeypatch.setattr(tasks.email_notification, "delay", lambda pk: None)
    [notice] = catalogue.notify(
        recipients=[users["editor"].pk, users["viewer"].pk], kind="interest", subject="Hello"
    )[:1]
    assert notice.email_status == "queued"
    assert Notification.objects.get(recipient=users["viewer"]).email_status == ""  # no address
    smtp.refuse_with = "421 4.3.2 service not available"

    def retry(*, countdown, exc):
        from celery.exceptions import Retry

        retried.append(countdown)
        return Retry(exc=exc, when=countdown)

    monkeypatch.setattr(tasks.email_notification, "retry", retry)
    from celery.exceptions import Retry

    with pytest.raises(Retry):
        tasks.email_notification.apply(args=[notice.pk], throw=True)
    notice.refresh_from_db()
    assert (notice.email_status, notice.email_attempts) == ("retrying", 1)
    assert "421" in notice.email_error and retried
    smtp.refuse_with = None
    assert tasks.email_notification.apply(args=[notice.pk]).get() == "sent"
    assert tasks.email_notification.apply(args=[notice.pk]).get() == "sent"
    [(rcpt, raw)] = smtp.messages
    assert rcpt == ["editor@example.com"]
    assert b"[Valuetree] Hello" in raw


def test_a_notification_about_a_name_with_a_line_break_is_sent(users, monkeypatch):
    from django.core import mail

    from valuetree import services as catalogue
    from valuetree import tasks

    users["editor"].email = "editor@example.com"
    users["editor"].save(update_fields=["email"])
    monkeypatch.setattr(tasks.email_notification, "delay", lambda pk: None)
    [notice] = catalogue.notify(
        recipients=[users["editor"].pk], kind="interest", subject="“Lab\nevents” is now live"
    )
    assert catalogue.notification_email_send(notification_id=notice.pk, final_attempt=False) == (
        "sent"
    )
    assert mail.outbox[-1].subject == "[Valuetree] “Lab events” is now live"
