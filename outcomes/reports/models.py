"""Review schedules, their runs, rendered reports and the delivery log.

The database is the schedule (as for metrics): beat claims the due rows with a
conditional UPDATE. A run is one (schedule, scheduled time), unique, so a redelivered
task never makes a second review; a delivery is one (review, channel, recipient),
unique, so a redelivered task never sends twice.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now


class SendPolicy(models.TextChoices):
    ALWAYS = "always", "Always"
    ONLY_IF_CHANGED = "only_if_changed", "Only when something changed"
    SKIP_IF_EMPTY = "skip_if_empty", "Skip when the tree is empty"


class PublishMode(models.TextChoices):
    AUTO = "auto", "Publish automatically"
    DRAFT = "draft", "Open a draft for the owners to complete"


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SLACK = "slack", "Slack"
    TEAMS = "teams", "Microsoft Teams"


class RecipientRole(models.TextChoices):
    OWNERS = "owner", "Owners"
    EDITORS = "editor", "Editors"
    VIEWERS = "viewer", "Viewers"
    LEADERSHIP = "leadership", "Leadership"


class ReviewSchedule(models.Model):
    """When a tree's value review is held and who receives its report.

    ``rrule`` is an RFC 5545 RRULE value (``FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO``) read by
    dateutil; its occurrences are local dates from ``starts_on`` at ``time_of_day`` in
    ``timezone`` (so 09:00 Europe/Oslo stays 09:00 local across DST changes).
    ``next_run_at`` is the next occurrence in UTC, recomputed when the rule changes and
    after each run (outcomes/reports/recurrence.py).
    """

    tree = models.OneToOneField(
        "valuetree.ValueTree", on_delete=models.CASCADE, related_name="review_schedule"
    )
    rrule = models.CharField(max_length=500)
    starts_on = models.DateField()
    time_of_day = models.TimeField()
    timezone = models.CharField(max_length=64, default="UTC")
    is_active = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    # Set by the beat that claimed the run, cleared when the run is done.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Days before a run to remind the owners of items needing a decision (0: none).
    reminder_days = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(60)])
    # The run time the last reminder was sent for (so each run reminds once).
    reminded_for = models.DateTimeField(null=True, blank=True)
    recipient_roles = models.JSONField(default=list, blank=True)
    extra_addresses = models.JSONField(default=list, blank=True)
    channels = models.JSONField(default=list, blank=True)
    send_policy = models.CharField(
        max_length=20, choices=SendPolicy.choices, default=SendPolicy.ALWAYS
    )
    attach_pdf = models.BooleanField(default=True)
    pdf_landscape = models.BooleanField(default=False)
    publish_mode = models.CharField(
        max_length=10, choices=PublishMode.choices, default=PublishMode.AUTO
    )
    # Webhook URLs are secrets: Fernet-encrypted with CREDENTIALS_KEYS, never shown.
    slack_webhook_encrypted = models.TextField(blank=True)
    teams_webhook_encrypted = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["is_active", "next_run_at"], name="schedule_due")]
        constraints = [
            models.CheckConstraint(
                condition=Q(send_policy__in=SendPolicy.values), name="schedule_policy_valid"
            ),
            models.CheckConstraint(
                condition=Q(publish_mode__in=PublishMode.values), name="schedule_mode_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tree_id}: {self.rrule} at {self.time_of_day} {self.timezone}"


class RunStatus(models.TextChoices):
    STARTED = "started", "Started"
    AWAITING_PUBLISH = "awaiting_publish", "Draft waiting to be published"
    DELIVERING = "delivering", "Delivering"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class ScheduledRun(models.Model):
    """One scheduled time of a schedule and the review it made."""

    schedule = models.ForeignKey(ReviewSchedule, on_delete=models.CASCADE, related_name="runs")
    run_at = models.DateTimeField()
    review = models.ForeignKey(
        "outcomes.ValueReview", null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.STARTED)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["schedule_id", "-run_at"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "run_at"], name="run_once_per_time"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} at {self.run_at:%Y-%m-%d %H:%M} ({self.status})"


class ReviewRender(models.Model):
    """A published review rendered once for every recipient: the e-mail's HTML (CSS
    inlined, charts by Content-ID) and text, the chart PNGs, the PDF."""

    review = models.OneToOneField(
        "outcomes.ValueReview", on_delete=models.CASCADE, related_name="render"
    )
    subject = models.CharField(max_length=300)
    html = models.TextField()
    text = models.TextField()
    # {content_id: base64 PNG}
    images = models.JSONField(default=dict)
    pdf = models.BinaryField(null=True, blank=True)
    landscape = models.BooleanField(default=False)
    rendered_at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return f"Render of review {self.review_id}"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class DeliveryPurpose(models.TextChoices):
    REPORT = "report", "Report"
    TEST = "test", "Test"
    REMINDER = "reminder", "Reminder"


class Delivery(models.Model):
    """One report to one recipient on one channel: the delivery log.

    ``recipient`` is an e-mail address, or ``webhook`` for Slack and Teams. Reports are
    unique per (review, channel, recipient): a task delivered twice finds the row sent.
    Tests ("Send a test") are logged too but not unique.
    """

    review = models.ForeignKey(
        "outcomes.ValueReview", on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    recipient = models.CharField(max_length=254)
    purpose = models.CharField(
        max_length=10, choices=DeliveryPurpose.choices, default=DeliveryPurpose.REPORT
    )
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["review", "channel", "recipient"],
                condition=Q(purpose="report"),
                name="delivery_once_per_recipient",
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="delivery_channel_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient} ({self.status})"


class ReportUnsubscribe(models.Model):
    """An address that stopped receiving one tree's reports (List-Unsubscribe)."""

    tree = models.ForeignKey("valuetree.ValueTree", on_delete=models.CASCADE)
    address = models.EmailField()
    at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tree", "address"], name="unsubscribe_once"),
        ]

    def __str__(self) -> str:
        return f"{self.address} from {self.tree_id}"


class CalendarToken(models.Model):
    """A revocable secret in a user's calendar-feed URL (only its SHA-256 is stored)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_tokens"
    )
    tree = models.ForeignKey("valuetree.ValueTree", on_delete=models.CASCADE)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Calendar of {self.tree_id} for {self.user_id}"
