"""Writes for review schedules, their runs and deliveries (issue 13).

The run path: beat claims due schedules (``schedules_claim_due``, one conditional
UPDATE each, like ``metrics_claim_due``) → ``schedule_run`` makes the review of the
period (published, or a draft left for the owners) → ``run_deliver`` renders it once
and writes one ``Delivery`` per (channel, recipient) → ``delivery_send`` sends each.

Exactly once, and where it stops being provable. A delivery row moves

    queued/retrying ──claim──▶ sending ──the server's 250, recorded at once──▶ sent
                                  │
                            (worker dies)
                                  ▼
              taken over after the lease (REPORT_DELIVERY_LEASE_SECONDS), sent again

- *claim*: a conditional UPDATE, committed before any SMTP traffic, so one worker at
  a time owns the row; a ``sent`` row is never claimed again (only "resend" requeues
  it, on purpose).
- *sent*: by its 250 answer to the end-of-data mark an SMTP server accepts
  responsibility for the message (RFC 5321 §6.1); before it, it has not. The e-mail
  transport calls back the moment that 250 is read (valuetree/mail.py), before QUIT
  or anything else, and the row is marked sent by an UPDATE prepared beforehand and
  autocommitted. A row its dead worker left ``sending`` therefore never got its 250:
  the server did not accept the message, and it is sent again.
- What is left: the database and the SMTP server cannot commit together, so a kill
  landing between the server writing its 250 and the worker writing that UPDATE (one
  read, a few lines of Python, one write; microseconds, plus waits for the CPU and
  the GIL) sends the row again, with the same Message-ID, which mail stores use to
  drop the repeat. The earlier design marked the row after closing the SMTP session
  (QUIT and its answer) and through the ORM: the chaos test saw 201 mails for 200.
  A server that delivers a message although the client vanished before its 250 came
  (RFC 1047) also gets it twice; again with the same Message-ID.
- Why not the other way round (count the row as sent once the end-of-data mark is
  written, before the answer): a server may drop a message whose client disappears
  before it answered; aiosmtpd does, and the chaos test then lost a row. We prefer
  the rare duplicate that mail stores can drop to a silent loss.
- A 4xx/5xx answer or a dropped connection before the 250 retries or fails the row as
  usual; a failure after it (QUIT) does not touch a sent row.
- Slack and Teams webhooks are marked sent after their HTTP answer: a worker killed
  between the POST and reading its answer posts again (at-least-once in that window).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import F as models_F
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from outcomes.connectors.http import validate_url
from outcomes.credentials import credentials_decrypt, credentials_encrypt
from outcomes.reports import cards, recurrence
from outcomes.reports.content import report_content
from outcomes.reports.models import (
    Channel,
    Delivery,
    DeliveryPurpose,
    DeliveryStatus,
    PublishMode,
    RecipientRole,
    ReportUnsubscribe,
    ReviewSchedule,
    RunStatus,
    ScheduledRun,
    SendPolicy,
)
from outcomes.reports.render import report_email, review_render
from outcomes.reports.transports import (
    EmailTransport,
    SlackTransport,
    TeamsTransport,
    TransportError,
)
from outcomes.reviews import selectors as review_selectors
from outcomes.reviews import services as review_services
from outcomes.reviews.models import OPEN_REVIEW_STATUSES, ReviewStatus, ValueReview
from outcomes.reviews.selectors import review_data
from valuetree.models import Membership, ValueTree
from valuetree.selectors import readable_tree_ids

logger = logging.getLogger(__name__)

SCHEDULE_FIELDS = (
    "rrule",
    "starts_on",
    "time_of_day",
    "timezone",
    "is_active",
    "reminder_days",
    "recipient_roles",
    "extra_addresses",
    "channels",
    "send_policy",
    "attach_pdf",
    "pdf_landscape",
    "publish_mode",
)
MAX_EXTRA_ADDRESSES = 200
UNSUBSCRIBE_SALT = "valuetree.reports.unsubscribe"
WEBHOOK_RECIPIENT = "webhook"


# --- Schedules -------------------------------------------------------------------------


def _clean_list(value: Any, allowed: list[str], field: str) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValidationError({field: "Give a list of names."})
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValidationError(
            {field: f"Unknown: {', '.join(unknown)}; choose from {', '.join(allowed)}."}
        )
    return [v for v in allowed if v in value]


def _clean_addresses(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part for part in value.replace(",", "\n").split() if part]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValidationError({"extra_addresses": "Give a list of e-mail addresses."})
    if len(value) > MAX_EXTRA_ADDRESSES:
        raise ValidationError({"extra_addresses": f"At most {MAX_EXTRA_ADDRESSES} addresses."})
    bad = []
    for address in value:
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address[:80])
    if bad:
        raise ValidationError({"extra_addresses": f"Not e-mail addresses: {', '.join(bad)}."})
    return list(dict.fromkeys(a.strip().lower() for a in value))


# Slack's and Teams' webhook addresses are a few hundred characters; browsers and
# servers commonly stop at 2,000 (RFC 9110 §4.1 asks for at least 8,000 of a server).
MAX_WEBHOOK_LENGTH = 2000


def _webhook(url: Any, field: str) -> str:
    if isinstance(url, str) and len(url) > MAX_WEBHOOK_LENGTH:
        raise ValidationError(
            {field: f"A webhook address has at most {MAX_WEBHOOK_LENGTH} characters."}
        )
    try:
        validate_url(url)
    except ValidationError as e:
        # The messages describe the address's form, never quote it.
        raise ValidationError({field: e.messages}) from None
    return credentials_encrypt({"url": url})


def next_run(schedule: ReviewSchedule, after: datetime) -> datetime | None:
    """The schedule's first occurrence strictly after ``after`` (UTC), None when the
    rule has ended (outcomes/reports/recurrence.py)."""
    return recurrence.next_after(
        schedule.rrule,
        starts_on=schedule.starts_on,
        time_of_day=schedule.time_of_day,
        tz_name=schedule.timezone,
        after=after,
    )


@transaction.atomic
def schedule_save(
    *,
    tree: ValueTree,
    by: AbstractBaseUser | None,
    slack_webhook: str | None = None,
    teams_webhook: str | None = None,
    now: datetime | None = None,
    **fields: Any,
) -> ReviewSchedule:
    """Create or change the review schedule of ``tree``.

    ``fields`` are SCHEDULE_FIELDS; a webhook given as "" is removed, None leaves it
    as it is (write-only: nothing reads it back). ``next_run_at`` is recomputed when
    the rule, start, time or zone changes (PostHog's subscription keeps it the same
    way). Raises ValidationError with field messages; nothing is saved then.
    """
    unknown = set(fields) - set(SCHEDULE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
    schedule = ReviewSchedule.objects.select_for_update().filter(tree=tree).first()
    creating = schedule is None
    if creating:
        schedule = ReviewSchedule(tree=tree, created_by=by)
    timing_before = (schedule.rrule, schedule.starts_on, schedule.time_of_day, schedule.timezone)
    for name, value in fields.items():
        setattr(schedule, name, value)
    errors: dict[str, list[str]] = {}

    def check(step: Any) -> None:
        try:
            step()
        except ValidationError as e:
            for key, messages in e.message_dict.items():
                errors.setdefault(key, []).extend(messages)

    def clean_lists() -> None:
        schedule.recipient_roles = _clean_list(
            schedule.recipient_roles, RecipientRole.values, "recipient_roles"
        )

    def clean_channels() -> None:
        schedule.channels = _clean_list(schedule.channels, Channel.values, "channels")

    def clean_addresses() -> None:
        schedule.extra_addresses = _clean_addresses(schedule.extra_addresses)

    def clean_webhooks() -> None:
        if slack_webhook is not None:
            schedule.slack_webhook_encrypted = (
                _webhook(slack_webhook, "slack_webhook") if slack_webhook else ""
            )
        if teams_webhook is not None:
            schedule.teams_webhook_encrypted = (
                _webhook(teams_webhook, "teams_webhook") if teams_webhook else ""
            )

    def clean_fields() -> None:
        schedule.full_clean(exclude=["tree", "created_by", "rrule"], validate_constraints=False)

    def clean_zone() -> None:
        recurrence.zone(schedule.timezone)

    def clean_rule() -> None:
        if schedule.starts_on and schedule.time_of_day:
            recurrence.parse(
                schedule.rrule,
                starts_on=schedule.starts_on,
                time_of_day=schedule.time_of_day,
                tz_name=schedule.timezone,
            )

    for step in (
        clean_lists,
        clean_channels,
        clean_addresses,
        clean_webhooks,
        clean_fields,
        clean_zone,
    ):
        check(step)
    if not errors:
        check(clean_rule)
    if not errors:
        if Channel.SLACK in schedule.channels and not schedule.slack_webhook_encrypted:
            errors["slack_webhook"] = ["Slack is a channel: give its incoming-webhook address."]
        if Channel.TEAMS in schedule.channels and not schedule.teams_webhook_encrypted:
            errors["teams_webhook"] = ["Teams is a channel: give its Workflows webhook address."]
    if errors:
        raise ValidationError(errors)
    timing = (schedule.rrule, schedule.starts_on, schedule.time_of_day, schedule.timezone)
    if creating or timing != timing_before or schedule.next_run_at is None:
        schedule.next_run_at = next_run(schedule, now or timezone.now())
    schedule.save()
    return schedule


def schedules_claim_due(*, now: datetime | None = None, limit: int = 500) -> list[tuple[int, str]]:
    """Claim the schedules whose next run is due: ``[(schedule id, run_at ISO)]``.

    One conditional UPDATE each moves ``next_run_at`` to the following occurrence only
    while it still holds the value read, so two beats never claim one run. A run
    missed while beat was down is run once (not once per missed date).
    """
    now = now or timezone.now()
    due = (
        ReviewSchedule.objects.filter(is_active=True, next_run_at__lte=now)
        .order_by("next_run_at")
        .only("id", "next_run_at", "rrule", "starts_on", "time_of_day", "timezone")[:limit]
    )
    claimed = []
    for schedule in due:
        run_at = schedule.next_run_at
        try:
            following = next_run(schedule, max(now, run_at))
        except ValidationError as e:
            # A rule stored before a check was added: this run goes ahead, then the
            # schedule waits for its owners to correct it (one bad row must not stop
            # every other schedule's beat).
            logger.warning("Schedule %s cannot be read any more: %s", schedule.pk, e.messages)
            following = None
        changed = ReviewSchedule.objects.filter(pk=schedule.pk, next_run_at=run_at).update(
            next_run_at=following, claimed_at=now
        )
        if changed:
            claimed.append((schedule.pk, run_at.isoformat()))
    return claimed


def _open_review(tree: ValueTree) -> ValueReview | None:
    return ValueReview.objects.filter(tree=tree, status__in=OPEN_REVIEW_STATUSES).first()


def schedule_run(*, schedule_id: int, run_at: datetime) -> ScheduledRun:
    """Make the review of one scheduled run and start its delivery. Idempotent: the
    run is unique per (schedule, run_at), so a redelivered task finds it, and the
    review it made once.

    Publish mode ``auto`` publishes a snapshot of the tree now and delivers it, even
    while the tree's people have a review of their own open (that draft is left as it
    is: ``review_snapshot``). Mode ``draft`` opens a draft for the owners, delivered
    once they publish it (``runs_deliver_published``); when the tree already has an
    open review, the run waits for that one instead of opening another.
    """
    schedule = ReviewSchedule.objects.select_related("tree").get(pk=schedule_id)
    tree = schedule.tree
    try:
        with transaction.atomic():
            run = ScheduledRun.objects.create(schedule=schedule, run_at=run_at)
    except IntegrityError:
        run = ScheduledRun.objects.get(schedule=schedule, run_at=run_at)
        if run.status != RunStatus.STARTED:
            if run.status == RunStatus.DELIVERING and run.review_id:
                _queue(deliveries_create(run=run))
            return run
    local = run_at.astimezone(recurrence.shown_zone(schedule.timezone))
    title = f"Scheduled review {local:%Y-%m-%d}"
    with transaction.atomic():
        # Locked and read again: a task redelivered after its review was made (the
        # worker died before the deliveries were written), or its twin running at
        # once, delivers that review instead of publishing a second snapshot.
        run = ScheduledRun.objects.select_for_update().get(pk=run.pk)
        review = run.review
        if review is None:
            if schedule.publish_mode == PublishMode.AUTO:
                review = review_services.review_snapshot(tree=tree, by=None, title=title)
            else:
                review = _open_review(tree) or review_services.review_start(
                    tree=tree, by=None, title=title
                )
            run.review = review
            run.status = RunStatus.STARTED if review.is_published else RunStatus.AWAITING_PUBLISH
            run.detail = (
                "" if review.is_published else f"Waiting for “{review.title}” to be published."
            )
            run.save(update_fields=["review", "status", "detail"])
    ReviewSchedule.objects.filter(pk=schedule.pk).update(claimed_at=None)
    if review.is_published:
        run_deliver(run=run)
    else:
        _tell_owners_a_draft_waits(tree, review)
    return run


def _tell_owners_a_draft_waits(tree: ValueTree, review: ValueReview) -> None:
    """The tree's owners hear (in-app and by e-mail) that the scheduled review waits
    for them: it is delivered once they publish it."""
    from valuetree.services import notify

    notify(
        # A deactivated owner (someone who left) is told nothing.
        recipients=Membership.objects.filter(
            tree=tree, role="owner", user__is_active=True
        ).values_list("user_id", flat=True),
        kind="review_reminder",
        subject=f"The scheduled review of {tree.name} waits for you: “{review.title}”",
        body="Complete and publish it; its report goes to the recipients once it is published.",
        url=reverse("outcomes:review", kwargs={"review_id": review.pk}),
    )


def runs_deliver_published() -> list[int]:
    """Start delivering the runs whose draft has since been published (beat)."""
    started = []
    for run in ScheduledRun.objects.filter(
        status=RunStatus.AWAITING_PUBLISH, review__status=ReviewStatus.PUBLISHED
    ).only("id"):
        if ScheduledRun.objects.filter(pk=run.pk, status=RunStatus.AWAITING_PUBLISH).update(
            status=RunStatus.STARTED, detail=""
        ):
            run_deliver(run=ScheduledRun.objects.get(pk=run.pk))
            started.append(run.pk)
    return started


def skip_reason(schedule: ReviewSchedule, data: dict[str, Any]) -> str | None:
    """Why the schedule's policy holds this review back, None to send it."""
    if schedule.send_policy == SendPolicy.SKIP_IF_EMPTY and not data["snapshot"]["nodes"]:
        return "The tree is empty; the schedule skips empty reports."
    if schedule.send_policy == SendPolicy.ONLY_IF_CHANGED and data["changes_count"] == 0:
        return "Nothing changed since the previous review; the schedule sends only changes."
    return None


def run_deliver(*, run: ScheduledRun) -> list[int]:
    """Apply the send policy, render the review once, write one delivery per channel
    and recipient, queue them. Returns the queued delivery ids."""
    schedule = run.schedule
    review = run.review
    reason = skip_reason(schedule, review_data(review))
    if reason:
        run.status, run.detail = RunStatus.SKIPPED, reason
        run.save(update_fields=["status", "detail"])
        return []
    if Channel.EMAIL in schedule.channels:
        review_render(review, landscape=schedule.pdf_landscape)
    run.status = RunStatus.DELIVERING
    run.save(update_fields=["status"])
    ids = deliveries_create(run=run)
    _queue(ids)
    return ids


def recipients(schedule: ReviewSchedule) -> list[str]:
    """The e-mail addresses of a schedule: active members in the chosen roles, the
    leadership (users or groups with ``read_all_trees``) when chosen, the extra
    addresses; less those that unsubscribed from this tree. Lower case, no repeats."""
    User = get_user_model()
    roles = set(schedule.recipient_roles)
    found: list[str] = []
    member_roles = roles - {RecipientRole.LEADERSHIP}
    if member_roles:
        found += Membership.objects.filter(
            tree_id=schedule.tree_id, role__in=member_roles, user__is_active=True
        ).values_list("user__email", flat=True)
    if RecipientRole.LEADERSHIP in roles:
        perm = Q(user_permissions__codename="read_all_trees") | Q(
            groups__permissions__codename="read_all_trees"
        )
        found += User.objects.filter(perm, is_active=True).values_list("email", flat=True)
    found += schedule.extra_addresses
    gone = set(
        ReportUnsubscribe.objects.filter(tree_id=schedule.tree_id).values_list("address", flat=True)
    )
    addresses = dict.fromkeys(a.strip().lower() for a in found if a and a.strip())
    return [a for a in addresses if a not in gone]


def deliveries_create(*, run: ScheduledRun) -> list[int]:
    """The delivery rows of a run (existing rows stay as they are: unique per review,
    channel and recipient); the ids still to send."""
    schedule = run.schedule
    wanted = []
    if Channel.EMAIL in schedule.channels:
        wanted += [(Channel.EMAIL, address) for address in recipients(schedule)]
    for channel in (Channel.SLACK, Channel.TEAMS):
        if channel in schedule.channels:
            wanted.append((channel, WEBHOOK_RECIPIENT))
    Delivery.objects.bulk_create(
        [Delivery(review_id=run.review_id, channel=c, recipient=r) for c, r in wanted],
        ignore_conflicts=True,
    )
    return list(
        Delivery.objects.filter(
            review_id=run.review_id,
            purpose=DeliveryPurpose.REPORT,
            status__in=(DeliveryStatus.QUEUED, DeliveryStatus.RETRYING),
        ).values_list("id", flat=True)
    )


def _queue(ids: list[int]) -> None:
    from outcomes import tasks

    def send() -> None:
        for delivery_id in ids:
            tasks.send_delivery.delay(delivery_id)

    transaction.on_commit(send)


def send_test(*, tree: ValueTree, user: AbstractBaseUser) -> Delivery:
    """ "Send a test": the tree's latest published review to ``user``'s own address
    only (never the schedule's recipients). Raises ValidationError when there is no
    published review or the user has no address."""
    if not user.email:
        raise ValidationError({"email": "Your account has no e-mail address to send a test to."})
    review = (
        ValueReview.objects.filter(tree=tree, status=ReviewStatus.PUBLISHED)
        .order_by("-as_of", "-id")
        .first()
    )
    if review is None:
        raise ValidationError({"review": "The tree has no published review to send yet."})
    schedule = ReviewSchedule.objects.filter(tree=tree).first()
    review_render(review, landscape=bool(schedule and schedule.pdf_landscape))
    delivery = Delivery.objects.create(
        review=review,
        channel=Channel.EMAIL,
        recipient=user.email.lower(),
        purpose=DeliveryPurpose.TEST,
        requested_by=user,
    )
    _queue([delivery.pk])
    return delivery


def _refused(delivery: Delivery) -> str | None:
    """Why a report e-mail must not go to its address now, or None when it may.

    Checked at every send (and at "Resend"), since a retry or a resend comes after the
    delivery was made: the address unsubscribed from the tree's reports, or it is no
    longer one of the schedule's ``recipients`` (its member left the tree or the chosen
    roles, a leader lost read-all, the address was taken off the list, the schedule is
    gone), or the schedule no longer sends e-mail (an owner moved it to Slack). A test goes to whoever asked for it; webhooks have no address to check."""
    if delivery.channel != Channel.EMAIL or delivery.purpose != DeliveryPurpose.REPORT:
        return None
    tree_id = delivery.review.tree_id
    address = delivery.recipient.lower()
    if ReportUnsubscribe.objects.filter(tree_id=tree_id, address=address).exists():
        return f"{delivery.recipient} unsubscribed from this tree's reports."
    schedule = ReviewSchedule.objects.filter(tree_id=tree_id).first()
    if schedule is not None and Channel.EMAIL not in schedule.channels:
        return "This tree's reports are no longer sent by e-mail."
    if schedule is None or address not in recipients(schedule):
        return f"{delivery.recipient} no longer receives this tree's reports."
    return None


def delivery_resend(*, delivery: Delivery, by: AbstractBaseUser) -> Delivery:
    """Send a failed (or sent) delivery again: it is queued afresh. Refused while it
    is still on its way (a conditional UPDATE: two clicks queue it once), and to an
    address that may no longer have the report (``_refused``)."""
    if refused := _refused(delivery):
        raise ValidationError({"recipient": refused})
    changed = Delivery.objects.filter(
        pk=delivery.pk, status__in=(DeliveryStatus.SENT, DeliveryStatus.FAILED)
    ).update(status=DeliveryStatus.QUEUED, error="", requested_by=by, updated_at=timezone.now())
    if not changed:
        raise ValidationError({"status": "This delivery is still on its way."})
    _queue([delivery.pk])
    delivery.refresh_from_db()
    return delivery


# --- Sending ---------------------------------------------------------------------------


def unsubscribe_token(tree_id: int, address: str) -> str:
    return signing.dumps({"t": tree_id, "a": address.lower()}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_url(tree_id: int, address: str) -> str:
    return settings.SITE_URL + reverse(
        "outcomes:report-unsubscribe", kwargs={"token": unsubscribe_token(tree_id, address)}
    )


def unsubscribe(*, token: str) -> ReportUnsubscribe:
    """Stop a tree's reports to the address in a signed token. Replaying it changes
    nothing more. ValidationError if the token is not ours or its tree is gone."""
    try:
        value = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        raise ValidationError("This unsubscribe link is not valid.") from None
    if not ValueTree.objects.filter(pk=value["t"]).exists():
        # The tree was deleted since the e-mail went out: it sends nothing more, and a
        # row pointing at it would break its foreign key (a 500 on the link).
        raise ValidationError("This tree no longer exists: it sends no more reports.")
    found, _ = ReportUnsubscribe.objects.get_or_create(tree_id=value["t"], address=value["a"])
    return found


def _lease() -> timedelta:
    # A row left "sending" longer than a task may run belongs to a worker that died.
    return timedelta(seconds=settings.REPORT_DELIVERY_LEASE_SECONDS)


def deliveries_sweep_stuck(*, now: datetime | None = None) -> list[int]:
    """The deliveries whose worker died mid-send (left "sending" past the lease) or
    whose task message was lost (queued longer than the lease): queued again (beat).
    A row still being sent, or waiting for its retry's countdown, is left alone."""
    now = now or timezone.now()
    ids = list(
        Delivery.objects.filter(
            status__in=(DeliveryStatus.SENDING, DeliveryStatus.QUEUED),
            updated_at__lt=now - _lease(),
        ).values_list("id", flat=True)[:1000]
    )
    if ids:
        logger.warning("Re-queued %d deliveries that never finished: %s", len(ids), ids)
        _queue(ids)
    return ids


def delivery_claim(delivery_id: int, *, now: datetime | None = None) -> bool:
    """Mark a delivery as sending (attempts + 1, ``sent_at`` cleared) if nobody else is
    sending it: queued, waiting to retry, or left sending past the lease by a dead
    worker (which never read the server's acceptance: see the module's docstring)."""
    now = now or timezone.now()
    return bool(
        Delivery.objects.filter(
            Q(status__in=(DeliveryStatus.QUEUED, DeliveryStatus.RETRYING))
            | Q(status=DeliveryStatus.SENDING, updated_at__lt=now - _lease()),
            pk=delivery_id,
        ).update(status=DeliveryStatus.SENDING, attempts=_plus_one(), sent_at=None, updated_at=now)
    )


def _sent_marker(delivery_id: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """(mark, close): ``mark()`` marks the row sent (``sent_at`` now) in one
    autocommitted UPDATE whose cursor and SQL are made beforehand, so that as little as
    possible lies between reading the server's 250 and the database having the row as
    sent."""
    ops = connection.ops
    table = ops.quote_name(Delivery._meta.db_table)
    columns = [ops.quote_name(name) for name in ("status", "sent_at", "error", "id")]
    sql = (
        f"UPDATE {table} SET {columns[0]} = %s, {columns[1]} = %s, {columns[2]} = '' "
        f"WHERE {columns[3]} = %s AND {columns[0]} = %s"
    )
    cursor = connection.cursor()
    sent, sending = DeliveryStatus.SENT.value, DeliveryStatus.SENDING.value
    adapt = ops.adapt_datetimefield_value

    def mark() -> None:
        cursor.execute(sql, [sent, adapt(timezone.now()), delivery_id, sending])

    return mark, cursor.close


def _plus_one() -> Any:
    from django.db.models import F

    return F("attempts") + 1


def _webhook_url(schedule: ReviewSchedule | None, channel: str) -> str:
    token = ""
    if schedule is not None:
        token = (
            schedule.slack_webhook_encrypted
            if channel == Channel.SLACK
            else schedule.teams_webhook_encrypted
        )
    if not token:
        raise TransportError(f"The schedule has no {channel} webhook any more.", permanent=True)
    return credentials_decrypt(token)["url"]


def _send(delivery: Delivery) -> None:
    review = delivery.review
    schedule = ReviewSchedule.objects.filter(tree_id=review.tree_id).first()
    if refused := _refused(delivery):
        raise TransportError(refused, permanent=True)
    if delivery.channel == Channel.EMAIL:
        render = review_render(review, landscape=bool(schedule and schedule.pdf_landscape))
        attach = delivery.purpose == DeliveryPurpose.TEST or not schedule or schedule.attach_pdf
        domain = (
            settings.SITE_URL.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
        )
        message = report_email(
            subject=("[Test] " if delivery.purpose == DeliveryPurpose.TEST else "")
            + render.subject,
            text=render.text,
            html=render.html,
            images={cid: base64.b64decode(png) for cid, png in render.images.items()},
            pdf=bytes(render.pdf) if attach and render.pdf else None,
            to=delivery.recipient,
            unsubscribe_url=unsubscribe_url(review.tree_id, delivery.recipient),
            filename=f"review-{review.tree.slug}-{review.as_of:%Y-%m-%d}.pdf",
            # The same id on every attempt: a mail store can drop a repeat.
            message_id=f"<valuetree-delivery-{delivery.pk}@{domain}>",
        )
        mark, close = _sent_marker(delivery.pk)
        try:
            EmailTransport().send(message, accepted=mark)
        finally:
            close()
        return
    content = report_content(review_data(review))
    url = _webhook_url(schedule, delivery.channel)
    if delivery.channel == Channel.SLACK:
        SlackTransport().send(url, cards.slack_payload(content))
    else:
        TeamsTransport().send(url, cards.teams_payload(content))


def delivery_send(*, delivery_id: int, final_attempt: bool) -> str:
    """Send one delivery if it is still to send; its new status.

    Raises TransportError when a transient failure should be retried (the row then
    says "retrying" and the error); a permanent failure, or the final attempt's, is
    stored as "failed" and not raised.
    """
    if not delivery_claim(delivery_id):
        return (
            Delivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first()
            or "gone"
        )
    delivery = Delivery.objects.select_related("review__tree").get(pk=delivery_id)
    try:
        _send(delivery)
    except TransportError as e:
        failed = e.permanent or final_attempt
        Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.FAILED if failed else DeliveryStatus.RETRYING,
            error=e.message[:2000],
            sent_at=None,
            updated_at=timezone.now(),
        )
        logger.warning("Delivery %s (%s) failed: %s", delivery_id, delivery.channel, e.message)
        if failed:
            return DeliveryStatus.FAILED
        raise
    except Exception as e:
        # A fault of ours (rendering, a bug): stored and visible, not retried blindly.
        logger.exception("Delivery %s could not be prepared", delivery_id)
        Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.FAILED,
            error=f"The report could not be prepared ({type(e).__name__}).",
            sent_at=None,
            updated_at=timezone.now(),
        )
        return DeliveryStatus.FAILED
    now = timezone.now()
    # E-mail: already marked at the server's 250 (its sent_at is kept); webhooks: now.
    Delivery.objects.filter(pk=delivery_id).update(
        status=DeliveryStatus.SENT,
        sent_at=Coalesce("sent_at", Value(now)),
        error="",
        updated_at=now,
    )
    return DeliveryStatus.SENT


# --- Reminders -------------------------------------------------------------------------


def reminders_send(*, now: datetime | None = None) -> list[int]:
    """Remind, ``reminder_days`` before each run, the owners of the items that need a
    decision (a node without an owner: the tree's owners), once per run: a conditional
    UPDATE sets ``reminded_for`` to the run time. In-app and by e-mail through the
    catalogue's notifications (their e-mail goes by Celery with retries). Returns the
    ids of the schedules reminded."""
    from valuetree.services import notify

    now = now or timezone.now()
    reminded = []
    candidates = ReviewSchedule.objects.filter(
        is_active=True, reminder_days__gt=0, next_run_at__isnull=False
    ).exclude(reminded_for=models_F("next_run_at"))
    for schedule in candidates.select_related("tree"):
        if schedule.next_run_at - timedelta(days=schedule.reminder_days) > now:
            continue
        if not ReviewSchedule.objects.filter(
            Q(reminded_for__isnull=True) | ~Q(reminded_for=schedule.next_run_at),
            pk=schedule.pk,
            next_run_at=schedule.next_run_at,
        ).update(reminded_for=schedule.next_run_at):
            continue
        reminded.append(schedule.pk)
        items = review_selectors.items_needing_decision(schedule.tree, now=now)
        if not items:
            continue
        User = get_user_model()
        ids = dict(
            User.objects.filter(
                username__in={i["node"]["owner"] for i in items if i["node"]["owner"]},
                is_active=True,
            ).values_list("username", "pk")
        )
        tree_owners = list(
            Membership.objects.filter(tree=schedule.tree, role="owner").values_list(
                "user_id", flat=True
            )
        )
        # A node's owner who may not read the tree (left it, or never a member) is not
        # told its titles: the tree's owners answer for those items. A deactivated
        # owner reads nothing (readable_tree_ids).
        readable = readable_tree_ids(
            user_ids={*ids.values(), *tree_owners}, tree_ids=[schedule.tree_id]
        )
        ids = {name: pk for name, pk in ids.items() if schedule.tree_id in readable[pk]}
        tree_owners = [pk for pk in tree_owners if schedule.tree_id in readable[pk]]
        by_owner: dict[int, list[str]] = {}
        for item in items:
            owner = ids.get(item["node"]["owner"])
            for user_id in [owner] if owner else tree_owners:
                by_owner.setdefault(user_id, []).append(
                    f"- {item['node']['title']}: {', '.join(item['reasons'])}"
                )
        when = schedule.next_run_at.astimezone(recurrence.shown_zone(schedule.timezone))
        for user_id, lines in by_owner.items():
            notify(
                recipients=[user_id],
                kind="review_reminder",
                subject=f"Value review of {schedule.tree.name} on {when:%Y-%m-%d %H:%M}: "
                f"{len(lines)} item{'s' if len(lines) != 1 else ''} of yours need a decision",
                body="\n".join(lines),
                url=reverse("outcomes:reviews", kwargs={"slug": schedule.tree.slug}),
            )
    return reminded
