"""Reads for the schedule page and API: the schedule in words, its next dates, the
delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from outcomes.reports import recurrence
from outcomes.reports.models import Delivery, ReviewSchedule, ScheduledRun
from valuetree.models import ValueTree

DELIVERY_LOG_ROWS = 100


def schedule_of(tree: ValueTree) -> ReviewSchedule | None:
    return ReviewSchedule.objects.filter(tree=tree).first()


def schedule_summary(schedule: ReviewSchedule, *, now: datetime | None = None) -> dict[str, Any]:
    """``{"words", "next_dates"}``: the rule in words and the next five dates (aware,
    in the schedule's time zone); for a stored rule that no longer reads, why, and no
    dates."""
    now = now or timezone.now()
    kwargs = {
        "starts_on": schedule.starts_on,
        "time_of_day": schedule.time_of_day,
        "tz_name": schedule.timezone,
    }
    try:
        zone = recurrence.zone(schedule.timezone)
        return {
            "words": recurrence.describe(schedule.rrule, **kwargs),
            "next_dates": [
                moment.astimezone(zone)
                for moment in recurrence.next_n(schedule.rrule, after=now, n=5, **kwargs)
            ]
            if schedule.is_active
            else [],
        }
    except ValidationError as e:
        # A rule stored before a check was added (or a zone tzdata dropped): the page
        # and the API still answer, and say so, so an owner can correct it.
        return {"words": "This schedule cannot be read: " + " ".join(e.messages), "next_dates": []}


def deliveries(tree: ValueTree) -> QuerySet[Delivery]:
    """The tree's deliveries, newest first, with their review's title (one query)."""
    return (
        Delivery.objects.filter(review__tree=tree)
        .select_related("review")
        .only(
            "id",
            "channel",
            "recipient",
            "purpose",
            "status",
            "attempts",
            "error",
            "created_at",
            "sent_at",
            "review__id",
            "review__title",
        )
        .order_by("-created_at", "-id")
    )


def runs(tree: ValueTree) -> QuerySet[ScheduledRun]:
    return ScheduledRun.objects.filter(schedule__tree=tree).select_related("review")[:20]
