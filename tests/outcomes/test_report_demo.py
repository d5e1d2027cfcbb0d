"""`make run`'s demo: the schedule's first run lands in the mailbox with its PDF, although
the demo leaves a review draft open (the schedule publishes its own snapshot)."""

from __future__ import annotations

from email import message_from_bytes

import pytest
from django.core import mail

from outcomes.models import ValueReview
from outcomes.reports import services
from outcomes.reports.models import Delivery, ReviewSchedule, RunStatus


@pytest.fixture
def demo(helix_demo):
    return helix_demo


def test_the_demo_schedules_first_run_delivers_a_pdf_beside_the_open_draft(
    demo, monkeypatch, django_capture_on_commit_callbacks
):
    from outcomes import tasks

    queued: list[int] = []
    monkeypatch.setattr(
        tasks.send_delivery, "delay", lambda delivery_id: queued.append(delivery_id)
    )
    schedule = ReviewSchedule.objects.get()
    draft = ValueReview.objects.get(tree=schedule.tree, status="draft")
    [(schedule_id, _)] = services.schedules_claim_due(now=schedule.next_run_at)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.schedule_run(schedule_id=schedule_id, run_at=schedule.next_run_at)
    assert run.status == RunStatus.DELIVERING, run.detail
    assert run.review.is_published and run.review.pk != draft.pk
    assert ValueReview.objects.get(pk=draft.pk).status == "draft"
    rows = Delivery.objects.filter(review=run.review, channel="email")
    assert rows.count() >= 2 and sorted(queued) == sorted(rows.values_list("id", flat=True))
    assert services.delivery_send(delivery_id=queued[0], final_attempt=False) == "sent"
    [sent] = mail.outbox
    message = message_from_bytes(sent.message().as_bytes())
    pdfs = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1 and pdfs[0].get_payload(decode=True).startswith(b"%PDF")
    assert schedule.tree.name in sent.subject
