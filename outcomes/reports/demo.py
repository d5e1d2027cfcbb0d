"""The demo tree's review schedule: quarterly, first Monday 09:00 Europe/Oslo, with a
first run two minutes after loading so `make run` shows a report arriving (in the
console mail backend, with its PDF; in a Slack stub when REPORTS_DEMO_SLACK_WEBHOOK
names one, whose host must be in METRICS_ALLOWED_HOSTS)."""

from __future__ import annotations

import os
from datetime import date, time, timedelta

from django.utils import timezone

from outcomes.reports import services
from outcomes.reports.models import ReviewSchedule
from valuetree.models import Membership, Role, ValueTree

DEMO_FIRST_RUN_MINUTES = 2


def load_demo_schedule(*, tree: ValueTree, today: date) -> ReviewSchedule | None:
    """The schedule (None when the tree has one already)."""
    if ReviewSchedule.objects.filter(tree=tree).exists():
        return None
    owner = Membership.objects.filter(tree=tree, role=Role.OWNER).select_related("user").first()
    slack = os.environ.get("REPORTS_DEMO_SLACK_WEBHOOK", "").strip()
    schedule = services.schedule_save(
        tree=tree,
        by=owner.user if owner else None,
        rrule="FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO",
        starts_on=today.replace(day=1),
        time_of_day=time(9),
        timezone="Europe/Oslo",
        recipient_roles=["owner", "leadership"],
        extra_addresses=["board@helix.example"],
        channels=["email", "slack"] if slack else ["email"],
        slack_webhook=slack or None,
        send_policy="always",
        publish_mode="auto",
        attach_pdf=True,
        reminder_days=3,
    )
    # The first run soon, so a newcomer sees one; the rule takes over after it.
    ReviewSchedule.objects.filter(pk=schedule.pk).update(
        next_run_at=timezone.now() + timedelta(minutes=DEMO_FIRST_RUN_MINUTES)
    )
    return schedule
