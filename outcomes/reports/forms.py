"""The schedule form of the schedule page (the service validates; this shapes input)."""

from __future__ import annotations

from django import forms

from outcomes.reports.models import Channel, PublishMode, RecipientRole, SendPolicy


class ScheduleForm(forms.Form):
    rrule = forms.CharField(
        label="Recurrence (RFC 5545 RRULE)",
        max_length=500,
        help_text="e.g. FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO (every 3 months on the first "
        "Monday) or FREQ=WEEKLY;INTERVAL=2;BYDAY=FR.",
    )
    starts_on = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    time_of_day = forms.TimeField(label="At", widget=forms.TimeInput(attrs={"type": "time"}))
    timezone = forms.CharField(label="Time zone", max_length=64, help_text="e.g. Europe/Oslo")
    is_active = forms.BooleanField(label="Active", required=False, initial=True)
    publish_mode = forms.ChoiceField(label="The review", choices=PublishMode.choices)
    send_policy = forms.ChoiceField(label="Send", choices=SendPolicy.choices)
    recipient_roles = forms.MultipleChoiceField(
        label="Recipients by role",
        choices=RecipientRole.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    extra_addresses = forms.CharField(
        label="Other addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One per line.",
    )
    channels = forms.MultipleChoiceField(
        label="Channels", choices=Channel.choices, widget=forms.CheckboxSelectMultiple
    )
    attach_pdf = forms.BooleanField(label="Attach the PDF", required=False, initial=True)
    pdf_landscape = forms.BooleanField(label="PDF in landscape", required=False)
    reminder_days = forms.IntegerField(
        label="Remind owners this many days before (0: no reminder)",
        min_value=0,
        max_value=60,
        initial=0,
    )
    slack_webhook = forms.CharField(
        label="Slack incoming-webhook address",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave blank to keep the one stored.",
    )
    teams_webhook = forms.CharField(
        label="Teams Workflows webhook address",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave blank to keep the one stored.",
    )
    remove_webhooks = forms.BooleanField(label="Remove the stored webhooks", required=False)

    def service_fields(self) -> dict:
        """The cleaned data as ``schedule_save`` keyword arguments."""
        data = dict(self.cleaned_data)
        remove = data.pop("remove_webhooks")
        for name in ("slack_webhook", "teams_webhook"):
            value = data.pop(name) or None
            data[name] = "" if remove else value
        return data
