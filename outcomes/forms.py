"""Browser forms for measures, metric sources, metrics and the values sent to push metrics.

The forms turn fields into the shapes the services take (a source's config and
credentials, a metric's options and schedule); the services and connectors enforce the
rules, and `add_mapped_errors` shows their errors next to the field they are about.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from outcomes.models import Granularity, Measure, Metric, MetricSource, SourceKind
from outcomes.pulling import parse_value
from outcomes.services import MEASURE_FIELDS
from valuetree.forms import ServiceModelForm

# The largest CSV a browser upload takes; the API takes bigger batches.
CSV_MAX_BYTES = 2 * 1024 * 1024


class PushedValueField(forms.FloatField):
    """A value checked in by hand, read as every pushed value is (pulling.parse_value):
    Django's FloatField takes what float() takes, "1_000" and digits of any script
    ("١٢", "１２") among them, which the API refuses."""

    def to_python(self, value: Any) -> float | None:
        if value in self.empty_values:
            return None
        try:
            return parse_value(str(value).strip())
        except ValueError as error:
            message = str(error)
            raise ValidationError(message[:1].upper() + message[1:], code="invalid") from None


def add_mapped_errors(
    form: forms.BaseForm, error: ValidationError, fields: dict[str, str] | None = None
) -> None:
    """Show a service's ValidationError on the form. Keys such as `config.url` or
    `options.path` are renamed through `fields`; a key the form has no field for goes
    to the top of the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for key, messages in error.message_dict.items():
        name = (fields or {}).get(key, key)
        form.add_error(name if name in form.fields else None, messages)


class MeasureForm(ServiceModelForm):
    class Meta:
        model = Measure
        fields = list(MEASURE_FIELDS)
        labels = {
            "is_guardrail": "Guardrail (can only lower the node's verdict)",
            "is_value_measure": "Value measure",
            "metric": "Metric",
        }
        help_texts = {
            "metric": "Where this measure's numbers come from (optional).",
            "kind": "Leading: moves early and predicts; lagging: confirms the outcome later.",
            "weight": "How much this measure counts in its node's verdict (1 = equal).",
            "is_guardrail": "Something that must not get worse while you chase the target.",
            "is_value_measure": (
                "Its progress turns the node's expected value into realised value on the dashboard."
            ),
        }

    # Connect to data in the same dialog: a new push metric, and a first value.
    new_metric = forms.CharField(
        label="…or a new push metric, called",
        required=False,
        max_length=200,
        help_text="For values you check in by hand or send to the API.",
    )
    first_value = PushedValueField(
        label="First value (checked in now)",
        required=False,
        help_text="Optional: today's value of a push metric, so the verdict starts now.",
    )
    # The extra fields, which are not the measure's own.
    CONNECT_FIELDS = ("new_metric", "first_value")

    def __init__(self, *args: Any, metrics: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["metric"]
        field.queryset = metrics
        field.empty_label = "No metric (values come from elsewhere)"
        field.label_from_instance = lambda metric: f"{metric.source.name} › {metric.name}"
        # Rarely changed after the first time: folded under "More details".
        self.folded_fields = ["kind", "weight", "is_guardrail", "is_value_measure"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        metric, new = data.get("metric"), data.get("new_metric")
        if metric and new:
            self.add_error("new_metric", "Pick a metric above or name a new one, not both.")
        if data.get("first_value") is not None:
            if not (metric or new):
                self.add_error("first_value", "Choose or name a push metric for this value.")
            elif metric and metric.source.kind != SourceKind.PUSH:
                self.add_error("first_value", "Only a push metric takes checked-in values.")
        return data

    def measure_fields(self) -> dict[str, Any]:
        """The cleaned fields the measure services take."""
        return {k: v for k, v in self.cleaned_data.items() if k not in self.CONNECT_FIELDS}


# --- Metric sources -------------------------------------------------------------------


def headers_from_lines(text: str) -> dict[str, str]:
    """{name: value} from "Name: value" lines. Errors name the line, never a value,
    because the lines may be secret."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name:
            raise ValidationError(f"Line {number}: write each header as “Name: value”.")
        if name.lower() in (known.lower() for known in headers):
            raise ValidationError(f"Line {number}: the header {name} is given twice.")
        headers[name] = value.strip()
    return headers


def headers_to_lines(headers: Any) -> str:
    if not isinstance(headers, dict):
        return ""
    return "\n".join(f"{name}: {value}" for name, value in headers.items())


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value: what was typed into it is not sent back
    in the page, not even when the form comes back with errors."""

    def format_value(self, value: Any) -> None:
        return None


# Where a connector's error keys show on the source form.
SOURCE_ERROR_FIELDS = {
    "config.url": "url",
    "config.headers": "headers",
    "credentials.headers": "secret_headers",
    "credentials.password": "password",
}


class MetricSourceForm(forms.Form):
    """A source's connection, by kind. Credentials are write-only: an edit shows whether
    some are stored, never what they are, and blank fields keep them."""

    kind = forms.ChoiceField(choices=SourceKind.choices, initial=SourceKind.HTTP_JSON)
    name = forms.CharField(max_length=200)
    url = forms.CharField(
        label="Address",
        required=False,
        max_length=2000,
        help_text=(
            "HTTP JSON and Prometheus: the base address, starting with https://. "
            "SQL: a SQLAlchemy URL without the password, e.g. "
            "postgresql://reader@db:5432/warehouse. Push: leave empty."
        ),
    )
    headers = forms.CharField(
        label="Headers (not secret)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Accept: application/json"}),
        help_text="HTTP JSON and Prometheus: one per line, as “Name: value”.",
    )
    secret_headers = forms.CharField(
        label="Secret headers",
        required=False,
        strip=False,
        widget=WriteOnlyTextarea(
            attrs={"rows": 2, "placeholder": "Authorization: Bearer …", "autocomplete": "off"}
        ),
        help_text="HTTP JSON and Prometheus: one per line, stored encrypted.",
    )
    password = forms.CharField(
        label="SQL password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="SQL: the database password, stored encrypted.",
    )

    # What a push source needs: nothing to connect to, so no address, headers or password.
    CONNECTION_FIELDS = ("url", "headers", "secret_headers", "password")

    def __init__(
        self,
        *args: Any,
        source: MetricSource | None = None,
        kind: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.source = source
        kind = source.kind if source is not None else kind
        if kind == SourceKind.PUSH:
            # Values are sent to a push source: only its kind and name are asked for.
            for name in self.CONNECTION_FIELDS:
                del self.fields[name]
            self.fields["kind"].initial = SourceKind.PUSH
            self.fields["kind"].widget = forms.HiddenInput()
        if source is None:
            return
        # A source's kind is fixed: its metrics' queries are written for it.
        self.fields["kind"].disabled = True
        self.fields["kind"].help_text = "The kind of a source cannot change."
        config = source.config if isinstance(source.config, dict) else {}
        self.initial.update(
            kind=source.kind,
            name=source.name,
            url=config.get("url", ""),
            headers=headers_to_lines(config.get("headers", {})),
        )
        stored = bool(source.credentials_encrypted)
        for name in ("secret_headers", "password"):
            if name in self.fields:
                self.fields[name].help_text += (
                    " Stored; leave blank to keep." if stored else " None stored."
                )
        if stored:
            self.fields["clear_credentials"] = forms.BooleanField(
                label="Remove the stored credentials", required=False
            )

    def clean_headers(self) -> dict[str, str]:
        return headers_from_lines(self.cleaned_data["headers"])

    def clean_secret_headers(self) -> dict[str, str]:
        return headers_from_lines(self.cleaned_data["secret_headers"])

    def clean_kind(self) -> str:
        kind = self.cleaned_data["kind"]
        if "url" not in self.fields and kind != SourceKind.PUSH:
            raise ValidationError("This form adds a push source.")
        return kind

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("clear_credentials") and (data.get("secret_headers") or data.get("password")):
            self.add_error(
                "clear_credentials",
                "Either remove the stored credentials or enter new ones, not both.",
            )
        return data

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        config: dict[str, Any] = {}
        if data.get("url"):
            config["url"] = data["url"]
        if data.get("headers"):
            config["headers"] = data["headers"]
        return config

    def credentials(self) -> dict[str, Any] | None:
        """The credentials to store; None keeps the stored ones (an edit left blank)."""
        data = self.cleaned_data
        entered: dict[str, Any] = {}
        if data.get("secret_headers"):
            entered["headers"] = data["secret_headers"]
        if data.get("password"):
            entered["password"] = data["password"]
        if self.source is None:
            return entered
        if data.get("clear_credentials"):
            return {}
        return entered or None

    def add_service_errors(self, error: ValidationError) -> None:
        add_mapped_errors(self, error, SOURCE_ERROR_FIELDS)


# Where the port service's error keys show on the form.
PORT_SOURCE_ERROR_FIELDS = {
    "port": "server",
    "server": "server",
    "credentials.password": "password",
}


def server_words(server: dict[str, Any]) -> str:
    """ "prod: postgresql at db.example.com": enough to tell a contract's servers apart."""
    where = next(
        (
            str(server[key])
            for key in ("host", "account", "project", "path", "database", "location")
            if server.get(key)
        ),
        "",
    )
    kind = server.get("type") or "unknown type"
    return f"{server.get('server') or '(unnamed)'}: {kind}{f' at {where}' if where else ''}"


class MetricSourceFromPortForm(forms.Form):
    """A SQL source from a data product's output port: one choice names the port and a
    server of its data contract, as "<port id>:<server name>"."""

    server = forms.ChoiceField(
        label="Data product port and server",
        help_text="Products linked to this tree come first. The server's address comes "
        "from the port's data contract.",
    )
    name = forms.CharField(
        max_length=200,
        required=False,
        help_text="Leave empty for “product: port”.",
    )
    username = forms.CharField(
        label="Database user",
        max_length=200,
        required=False,
        help_text="An account that may only read. Not used for SQLite files.",
    )
    password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted, never shown again.",
    )

    def __init__(self, *args: Any, ports: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ports = {port.pk: port for port in ports}
        groups: dict[str, list[tuple[str, str]]] = {}
        for port in ports:
            group = "Linked to this tree" if port.is_linked else "Other data products"
            for server in port.servers:
                value = f"{port.pk}:{server.get('server') or ''}"
                label = f"{port.data_product.name} › {port.name} — {server_words(server)}"
                groups.setdefault(group, []).append((value, label))
        self.fields["server"].choices = [("", "Choose a port and server"), *groups.items()]

    def clean_server(self) -> tuple[Any, str]:
        """The port and the server's name."""
        port_id, _, server = self.cleaned_data["server"].partition(":")
        return self.ports[int(port_id)], server

    def add_service_errors(self, error: ValidationError) -> None:
        add_mapped_errors(self, error, PORT_SOURCE_ERROR_FIELDS)


# --- Metrics --------------------------------------------------------------------------

QUERY_LABELS = {
    SourceKind.HTTP_JSON: ("JSONPath of the value", "e.g. $.data.value, or $.data[*].value"),
    SourceKind.PROMETHEUS: (
        "PromQL query",
        "It must return exactly one series, e.g. sum(rate(http_requests_total[5m])).",
    ),
    SourceKind.SQL: (
        "SQL query",
        "One value, or (period, value) rows; :since and :until bound the window.",
    ),
}
# Which option fields each kind has, beyond the common ones.
KIND_FIELDS = {
    SourceKind.PUSH: (),
    SourceKind.HTTP_JSON: ("query", "path", "period_path"),
    SourceKind.PROMETHEUS: ("query", "mode", "step"),
    SourceKind.SQL: ("query",),
}
OPTION_FIELDS = ("path", "period_path", "mode", "step")
SCHEDULE_FIELDS = ("interval_minutes", "schedule_cron")
METRIC_ERROR_FIELDS = {
    "schedule_interval": "interval_minutes",
    "expected_frequency": "expected_hours",
    "options.path": "path",
    "options.period_path": "period_path",
    "options.mode": "mode",
    "options.step": "step",
}


class MetricForm(forms.Form):
    """A metric of a source: its query and options (by the source's kind), schedule and
    the period its values are filed under."""

    name = forms.CharField(max_length=200)
    query = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    path = forms.CharField(
        label="Path",
        required=False,
        max_length=2000,
        help_text="Appended to the source's address; may carry a query string, e.g. /stats?team=a.",
    )
    period_path = forms.CharField(
        label="JSONPath of the periods",
        required=False,
        max_length=500,
        help_text="Optional: one period per value, e.g. $.data[*].date. Empty: the value is now's.",
    )
    mode = forms.ChoiceField(
        choices=[("instant", "Instant: the current value"), ("range", "Range: a value per step")],
        initial="instant",
    )
    step = forms.IntegerField(
        label="Step (seconds)",
        required=False,
        min_value=1,
        help_text="Range mode: seconds between values. Empty: the granularity.",
    )
    unit = forms.CharField(max_length=50, required=False, help_text="%, EUR, days, count…")
    granularity = forms.ChoiceField(
        choices=Granularity.choices,
        initial=Granularity.DAY,
        help_text="Each value is filed under the start of its period.",
    )
    interval_minutes = forms.IntegerField(
        label="Pull every (minutes)",
        required=False,
        min_value=1,
        max_value=366 * 24 * 60,
        help_text="Give an interval or a cron expression.",
    )
    schedule_cron = forms.CharField(
        label="Or on a cron schedule",
        required=False,
        max_length=100,
        help_text="Five fields, e.g. 0 6 * * 1-5 (06:00 on weekdays, in the time zone below).",
    )
    timezone = forms.CharField(
        label="Time zone",
        max_length=64,
        initial="UTC",
        help_text="An IANA name like Europe/Paris: periods and cron times are cut in it.",
    )
    expected_hours = forms.FloatField(
        label="Expect a new value at least every (hours)",
        required=False,
        min_value=0.02,
        max_value=3660 * 24,
        help_text="Older than this, the metric is stale. Empty: twice the pull interval.",
    )
    is_active = forms.BooleanField(
        label="Active", required=False, initial=True, help_text="A paused metric is not pulled."
    )

    def __init__(self, *args: Any, kind: str, metric: Metric | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        keep = set(KIND_FIELDS[SourceKind(kind)])
        for name in ("query", *OPTION_FIELDS):
            if name not in keep:
                del self.fields[name]
        if kind == SourceKind.PUSH:
            for name in SCHEDULE_FIELDS:
                del self.fields[name]
            self.fields["expected_hours"].help_text = "Older than this, the metric is stale."
            self.fields["is_active"].help_text = "A paused metric shows as paused."
        else:
            label, help_text = QUERY_LABELS[SourceKind(kind)]
            self.fields["query"].label = label
            self.fields["query"].help_text = help_text
            self.fields["query"].required = True
        self.metric = metric
        if metric is not None:
            self.initial.update(_metric_initial(metric))

    def clean_timezone(self) -> str:
        return self.cleaned_data["timezone"].strip()

    def service_fields(self) -> dict[str, Any]:
        """The metric's fields as metric_create / metric_update take them."""
        data = self.cleaned_data
        options: dict[str, Any] = {}
        if self.kind == SourceKind.HTTP_JSON:
            options.update({name: data[name] for name in ("path", "period_path") if data[name]})
        elif self.kind == SourceKind.PROMETHEUS:
            options["mode"] = data["mode"]
            if data["step"] is not None:
                options["step"] = data["step"]
        minutes = data.get("interval_minutes")
        hours = data["expected_hours"]
        interval = timedelta(minutes=minutes) if minutes else None
        expected = timedelta(hours=hours) if hours else None
        if self.metric is not None:
            # A field shown rounded and sent back as it was shown keeps the metric's own
            # value: 90 seconds (set through the API) showed as 2 minutes, and saving the
            # page for another change made the schedule 2 minutes.
            if sent_as_shown(self, "interval_minutes"):
                interval = self.metric.schedule_interval
            if sent_as_shown(self, "expected_hours"):
                expected = self.metric.expected_frequency
        return {
            "name": data["name"],
            "query": data.get("query", ""),
            "options": options,
            "unit": data["unit"],
            "granularity": data["granularity"],
            "schedule_interval": interval,
            "schedule_cron": data.get("schedule_cron", "").strip(),
            "timezone": data["timezone"],
            "expected_frequency": expected,
            "is_active": data["is_active"],
        }

    def add_service_errors(self, error: ValidationError) -> None:
        add_mapped_errors(self, error, METRIC_ERROR_FIELDS)


def _metric_initial(metric: Metric) -> dict[str, Any]:
    options = metric.options if isinstance(metric.options, dict) else {}
    initial: dict[str, Any] = {
        "name": metric.name,
        "query": metric.query,
        "path": options.get("path", ""),
        "period_path": options.get("period_path", ""),
        "mode": options.get("mode", "instant"),
        "step": options.get("step"),
        "unit": metric.unit,
        "granularity": metric.granularity,
        "schedule_cron": metric.schedule_cron,
        "timezone": metric.timezone,
        "is_active": metric.is_active,
    }
    if metric.schedule_interval:
        initial["interval_minutes"] = round(metric.schedule_interval.total_seconds() / 60)
    if metric.expected_frequency:
        initial["expected_hours"] = f"{metric.expected_frequency.total_seconds() / 3600:g}"
    return initial


# --- Values sent to push metrics ------------------------------------------------------


class CsvUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=(
            "A header line period,value, then one value per line; periods as dates "
            "(2026-03-01) or ISO times. All or nothing: a bad line stores no value."
        ),
    )

    def clean_file(self) -> str:
        """The file's text (the field's cleaned value is its content, not the upload)."""
        upload = self.cleaned_data["file"]
        if upload.size > CSV_MAX_BYTES:
            raise ValidationError(
                f"The file is {upload.size / 1024 / 1024:.1f} MB; a browser upload takes at "
                f"most {CSV_MAX_BYTES // 1024 // 1024} MB. Split it, or send it to the API."
            )
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text; save it as CSV (UTF-8).") from None


class CheckInForm(forms.Form):
    value = PushedValueField(label="Value")
    period = forms.CharField(
        label="Period",
        required=False,
        max_length=50,
        widget=forms.TextInput(attrs={"placeholder": "now"}),
        help_text="Empty: now. Or a date such as 2026-03-01 (in the metric's time zone).",
    )


def sent_as_shown(form: forms.Form, name: str) -> bool:
    """Whether field ``name`` came back as the edit page showed it (the text of its
    initial value, blanks aside). A page shows some stored values rounded (90 s as
    2 minutes, a band of 0.123456 as 12.35 %); such a field sent back unchanged must
    keep the stored value, not the rounded one, when the page is saved for another
    change."""
    shown = form.initial.get(name)
    return (
        name in form.fields
        and shown is not None
        and str(form.data.get(name, "")).strip() == str(shown).strip()
    )


class VerdictPolicyForm(forms.Form):
    """A tree's tolerance bands, as percentages of the baseline→target distance, shown
    to 2 decimals. ``current`` is the tree's policy: a band sent back as shown keeps
    its stored value (one set through the API may be finer than the page shows)."""

    on_track_percent = forms.FloatField(
        label="On track while trailing the plan by at most (%)",
        min_value=0,
        max_value=100,
        help_text="E.g. 5: a measure 5 points of its way behind plan is still on track.",
    )
    at_risk_percent = forms.FloatField(
        label="At risk while trailing by at most (%)",
        min_value=0,
        max_value=100,
        help_text="Further behind than this is off track.",
    )
    FIELDS = {"on_track_within": "on_track_percent", "at_risk_within": "at_risk_percent"}

    def __init__(self, data: Any = None, *, current: Any = None) -> None:
        initial = {}
        if current is not None:
            initial = {
                field: round(getattr(current, band) * 100, 2) for band, field in self.FIELDS.items()
            }
        super().__init__(data, initial=initial)
        self.current = current

    def bands(self) -> dict[str, float]:
        """{"on_track_within": fraction, "at_risk_within": fraction} (0–1)."""
        return {
            band: getattr(self.current, band)
            if self.current is not None and sent_as_shown(self, field)
            else self.cleaned_data[field] / 100
            for band, field in self.FIELDS.items()
        }
