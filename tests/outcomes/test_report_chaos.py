"""Chaos: 200 report e-mails in flight, `kill -9` the worker, restart it: every
(review, channel, recipient) is delivered, checked row by row against a real SMTP
server's mailbox.

A row the dead worker had not started is sent exactly once. A row it was sending at
the kill may have reached the server before the row was marked sent: SMTP cannot tell
a sender whether a message whose 250 it never read arrived, so such a row may arrive
twice — with the same Message-ID, which mail stores use to drop the repeat. The test
pins exactly that: no row is lost, no row outside the crash window arrives twice, and
every repeat carries its row's Message-ID.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import time
from collections import Counter

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from outcomes.reports import services
from outcomes.reports.models import Delivery, ScheduledRun
from outcomes.reports.render import review_render
from outcomes.reviews import services as review_services
from tests.workers import RedisServer, Worker, database_url_of, free_port, send_tasks, worker_env
from valuetree import services as node_services

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the worker shares the test database: PostgreSQL pass only",
    ),
]

RECIPIENTS = 200
MESSAGE_ID = re.compile(rb"^Message-ID:\s*<valuetree-delivery-(\d+)@", re.M | re.I)


class Mailbox:
    def __init__(self) -> None:
        self.ids: list[int] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        await asyncio.sleep(0.02)  # a server that takes its time: the kill lands mid-way
        found = MESSAGE_ID.search(envelope.content)
        with self.lock:
            self.ids.append(int(found.group(1)) if found else -1)
        return "250 OK"


def send_deliveries(broker_url: str, ids: list[int]) -> None:
    send_tasks(broker_url, [("outcomes.tasks.send_delivery", [i]) for i in ids], queue="reports")


def test_every_delivery_arrives_when_the_worker_dies(tree, users, tmp_path, settings):
    node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    review = review_services.review_start(tree=tree, by=users["owner"], title="Chaos review")
    review = review_services.review_publish(review=review, by=users["owner"])
    schedule = services.schedule_save(
        tree=tree,
        by=users["owner"],
        rrule="FREQ=WEEKLY;BYDAY=MO",
        starts_on=dt.date(2026, 1, 5),
        time_of_day=dt.time(9),
        timezone="UTC",
        recipient_roles=[],
        extra_addresses=[f"reader{i}@example.com" for i in range(RECIPIENTS)],
        channels=["email"],
        attach_pdf=False,
    )
    run = ScheduledRun.objects.create(
        schedule=schedule, run_at=dt.datetime.now(dt.UTC), review=review
    )
    review_render(review)
    ids = services.deliveries_create(run=run)
    assert len(ids) == RECIPIENTS

    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    redis = RedisServer(tmp_path)
    redis.start()
    settings.REPORT_DELIVERY_LEASE_SECONDS = 5
    env = worker_env(
        database_url=database_url_of(connection),
        broker_url=redis.url,
        TEST_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        REPORT_DELIVERY_LEASE_SECONDS="5",
        CELERY_VISIBILITY_TIMEOUT="10",
    )
    worker = Worker(env, threads=8, queues="reports", name="report-chaos")
    try:
        worker.start()
        send_deliveries(redis.url, ids)
        deadline = time.monotonic() + 120
        while len(mailbox.ids) < 40:
            assert time.monotonic() < deadline, "no progress before the crash\n" + worker.log_tail()
            time.sleep(0.02)
        worker.kill()
        time.sleep(1)  # let the killed worker's sessions go
        in_flight = set(Delivery.objects.filter(status="sending").values_list("id", flat=True))
        sent_at_crash = Delivery.objects.filter(status="sent").count()
        assert sent_at_crash < RECIPIENTS, "the crash came too late to test anything"

        worker = Worker(env, threads=8, queues="reports", name="report-chaos-2")
        worker.start()
        deadline = time.monotonic() + 240
        while Delivery.objects.exclude(status="sent").exists():
            assert time.monotonic() < deadline, (
                f"{Delivery.objects.exclude(status='sent').count()} deliveries never finished\n"
                + worker.log_tail()
            )
            # What beat's sweeper does every minute.
            stuck = services.deliveries_sweep_stuck()
            if stuck:
                send_deliveries(redis.url, stuck)
            time.sleep(1)
        worker.stop()
        worker = None
    finally:
        if worker is not None:
            worker.kill()
        redis.kill()
        smtp.stop()

    arrived = Counter(mailbox.ids)
    assert -1 not in arrived, "every message carries its row's Message-ID"
    assert set(arrived) == set(ids), "no delivery lost"
    repeated = {pk for pk, count in arrived.items() if count > 1}
    assert repeated <= in_flight, (
        f"rows sent twice outside the crash window: {repeated - in_flight}"
    )
    assert all(count <= 2 for count in arrived.values())
    assert Delivery.objects.filter(status="sent").count() == RECIPIENTS
