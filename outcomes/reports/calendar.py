"""A tree's coming review dates as an iCalendar feed (RFC 5545, via ``icalendar``),
at a URL holding a revocable per-user token, so people subscribe in their calendar.

Only the token's SHA-256 is stored; the URL is shown once when it is made. A feed
answers only while its user may still read the tree.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar, Event

from outcomes.reports import recurrence
from outcomes.reports.models import CalendarToken, ReviewSchedule
from valuetree.models import ValueTree
from valuetree.selectors import trees_for_user

FEED_DATES = 12
MAX_LIVE_LINKS = 5
EVENT_MINUTES = 60


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def calendar_token_issue(*, user: AbstractBaseUser, tree: ValueTree) -> str:
    """A new feed token for ``user`` and ``tree`` (returned once, stored hashed).

    A user keeps at most ``MAX_LIVE_LINKS`` links per tree: making another deletes the
    oldest beyond that, and the user's revoked ones (they answer 404 either way), so
    clicking "make a link" again and again cannot fill the table."""
    token = secrets.token_urlsafe(32)
    mine = CalendarToken.objects.filter(user=user, tree=tree)
    with transaction.atomic():
        # One issue at a time per user, so two at once cannot both keep five.
        User = get_user_model()
        list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk"))
        CalendarToken.objects.create(user=user, tree=tree, digest=_digest(token))
        keep = mine.filter(revoked_at__isnull=True).order_by("-id")
        keep = list(keep.values_list("pk", flat=True)[:MAX_LIVE_LINKS])
        mine.exclude(pk__in=keep).delete()
    return token


def calendar_tokens_revoke(*, user: AbstractBaseUser, tree: ValueTree) -> int:
    """Revoke every feed token of ``user`` for ``tree``; how many were live."""
    return CalendarToken.objects.filter(user=user, tree=tree, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def feed_url(token: str) -> str:
    return settings.SITE_URL + reverse("outcomes:review-calendar", kwargs={"token": token})


def feed_for_token(token: str, *, now: datetime | None = None) -> bytes | None:
    """The iCalendar bytes for a live token, None when the token is unknown, revoked,
    or its user may no longer read the tree."""
    found = (
        CalendarToken.objects.filter(digest=_digest(token), revoked_at__isnull=True)
        .select_related("user", "tree")
        .first()
    )
    if found is None or not found.user.is_active:
        return None
    if not trees_for_user(found.user).filter(pk=found.tree_id).exists():
        return None
    return tree_calendar(found.tree, now=now)


def tree_calendar(tree: ValueTree, *, now: datetime | None = None) -> bytes:
    """The next FEED_DATES review dates of ``tree``'s schedule as VEVENTs (none when
    it has no active schedule). UIDs are stable per date, so calendars update in place."""
    now = now or timezone.now()
    calendar = Calendar()
    calendar.add("prodid", "-//Valuetree//Review schedule//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"Value reviews · {tree.name}")
    schedule = ReviewSchedule.objects.filter(tree=tree, is_active=True).first()
    if schedule is not None:
        domain = settings.SITE_URL.split("//", 1)[-1].split("/", 1)[0] or "localhost"
        link = settings.SITE_URL + reverse("outcomes:reviews", kwargs={"slug": tree.slug})
        try:
            starts = recurrence.next_n(
                schedule.rrule,
                starts_on=schedule.starts_on,
                time_of_day=schedule.time_of_day,
                tz_name=schedule.timezone,
                after=now,
                n=FEED_DATES,
            )
        except ValidationError:
            starts = []  # a stored rule that no longer reads: no dates, not a 500
        for start in starts:
            event = Event()
            event.add("uid", f"review-{tree.pk}-{start:%Y%m%dT%H%M%SZ}@{domain}")
            event.add("summary", f"Value review: {tree.name}")
            event.add("dtstart", start)
            event.add("dtend", start + timedelta(minutes=EVENT_MINUTES))
            event.add("dtstamp", now)
            event.add("url", link)
            event.add("description", f"The value review of {tree.name}. {link}")
            calendar.add_component(event)
    return calendar.to_ical()
