"""Every date, datetime and time input renders an ISO value, and every form with one
saves when submitted unchanged (issue 15, defect 1: en-GB dates in <input type=date>
looked empty and the browser refused to submit)."""

from __future__ import annotations

import datetime as dt
import importlib
import re
from html.parser import HTMLParser

import pytest
from django import forms
from django.apps import apps
from django.conf import settings

from outcomes.models import Measure
from valuetree import services

ISO = {
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "datetime-local": re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$"),
    "time": re.compile(r"^\d{2}:\d{2}(:\d{2})?$"),
}
TEMPORAL = (forms.DateField, forms.DateTimeField, forms.TimeField)


def _project_forms() -> list[type[forms.BaseForm]]:
    """Every form class defined in one of the project's apps (their forms modules)."""
    local = [
        app.name
        for app in apps.get_app_configs()
        if str(app.path).startswith(str(settings.BASE_DIR)) and ".venv" not in str(app.path)
    ]
    for name in local:
        try:
            importlib.import_module(f"{name}.forms")
        except ModuleNotFoundError:
            continue
    found, stack = [], [forms.BaseForm]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if sub.__module__.split(".")[0] in local:
                found.append(sub)
    return found


def _temporal_forms() -> set[str]:
    return {
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _project_forms()
        if any(isinstance(field, TEMPORAL) for field in cls.base_fields.values())
    }


class _FormScraper(HTMLParser):
    """The fields of the first POST form inside <main>, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self.types: dict[str, str] = {}
        self._in_form = False
        self._in_main = False
        self._done = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "main":
            self._in_main = True
        if (
            tag == "form"
            and self._in_main
            and not self._done
            and (a.get("method") or "").lower() == "post"
        ):
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            self.types[name] = kind
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind in ("submit", "button", "file"):
                return
            # A checked box without a value sends "on", as browsers do.
            default = "on" if kind in ("checkbox", "radio") else ""
            self.data.setdefault(name, []).append(a.get("value") or default)
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select].append(a.get("value") or "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][0] += (
                data.lstrip("\n") if not self.data[self._textarea][0] else data
            )

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def scrape(html: str, *, temporal: bool = False) -> _FormScraper:
    """The page's first POST form; with ``temporal``, its first one with a date or time
    input (a page may have side forms before it, e.g. "subscribe" on a schedule)."""
    while True:
        scraper = _FormScraper()
        scraper.feed(html)
        if not temporal or not scraper._done or set(scraper.types.values()) & set(ISO):
            return scraper
        # Drop the form just read and look at the next one.
        start = html.find("<form", html.find("<main"))
        end = html.find("</form>", start)
        if start < 0 or end < 0:
            return scraper
        html = html[:start] + html[end + len("</form>") :]


# --- One case per form with a date/time field: (url of the edit page, object check) ----


def _measure_case(tree, users):
    from tests.factories import make_metric

    goal = services.node_create(tree=tree, parent=None, title="Goal")
    metric = make_metric(tree, name="Turnaround hours")
    measure = Measure.objects.create(
        node=goal,
        name="Turnaround",
        unit="hours",
        direction="decrease",
        baseline_value=48,
        baseline_date=dt.date(2026, 9, 1),
        target_value=24,
        target_date=dt.date(2027, 1, 31),
        metric=metric,
    )

    def unchanged() -> bool:
        measure.refresh_from_db()
        return (measure.baseline_date, measure.target_date, measure.metric_id) == (
            dt.date(2026, 9, 1),
            dt.date(2027, 1, 31),
            metric.pk,
        )

    return f"/measures/{measure.pk}/edit/", unchanged


def _schedule_case(tree, users):
    from outcomes.reports.models import ReviewSchedule
    from outcomes.reports.services import schedule_save

    schedule_save(
        tree=tree,
        by=users["owner"],
        rrule="FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO",
        starts_on=dt.date(2026, 9, 1),
        time_of_day=dt.time(9, 0),
        timezone="Europe/Oslo",
        channels=["email"],
        recipient_roles=["owner"],
    )

    def unchanged() -> bool:
        schedule = ReviewSchedule.objects.get(tree=tree)
        return (schedule.rrule, schedule.starts_on, schedule.time_of_day, schedule.timezone) == (
            "FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO",
            dt.date(2026, 9, 1),
            dt.time(9, 0),
            "Europe/Oslo",
        )

    # Only a tree's owners change its schedule.
    return f"/trees/{tree.slug}/review-schedule/", unchanged, "owner"


CASES = {
    "outcomes.forms.MeasureForm": _measure_case,
    "outcomes.reports.forms.ScheduleForm": _schedule_case,
}


def test_every_form_with_a_date_field_has_a_case():
    """A new form with a date/time field must be added to CASES, so the test below
    renders and submits it too."""
    assert _temporal_forms() <= set(CASES), sorted(_temporal_forms() - set(CASES))


@pytest.mark.django_db
@pytest.mark.parametrize("form_name", sorted(CASES))
def test_form_renders_iso_and_saves_unchanged(client, users, tree, form_name):
    url, unchanged, *role = CASES[form_name](tree, users)
    client.force_login(users[role[0] if role else "editor"])
    page = client.get(url)
    assert page.status_code == 200
    form = scrape(page.content.decode(), temporal=True)
    temporal = {n: t for n, t in form.types.items() if t in ISO}
    assert temporal, "the form shows no browser date/time input"
    for name, kind in temporal.items():
        (value,) = form.data[name]
        assert ISO[kind].match(value), (name, value)
    response = client.post(url, form.data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert unchanged()


@pytest.mark.parametrize(
    ("field", "value", "kind", "expected"),
    [
        (forms.DateField(), dt.date(2026, 9, 1), "date", "2026-09-01"),
        (
            forms.DateTimeField(),
            dt.datetime(2026, 9, 1, 7, 5, tzinfo=dt.UTC),
            "datetime-local",
            "2026-09-01T07:05",
        ),
        (forms.TimeField(), dt.time(7, 5), "time", "07:05"),
    ],
)
def test_html_inputs_render_iso_in_british_english(settings, field, value, kind, expected):
    """A plain form derived from HtmlInputsForm gets the browser's input, in ISO."""
    from django.utils import translation

    from valuetree.forms import HtmlInputsForm

    form_class = type("F", (HtmlInputsForm,), {"when": field})
    with translation.override("en-gb"):
        html = str(form_class(initial={"when": value})["when"])
        assert f'type="{kind}"' in html
        assert f'value="{expected}"' in html
        # and the value the browser sends back parses to the same moment
        bound = form_class(data={"when": expected})
        assert bound.is_valid(), bound.errors
        assert bound.cleaned_data["when"] == value


def test_plain_date_input_renders_iso_in_british_english():
    """Even a form that does not use HtmlInputsMixin renders ISO (the format module)."""
    from django.utils import translation

    class Plain(forms.Form):
        when = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    with translation.override("en-gb"):
        assert 'value="2026-09-01"' in str(Plain(initial={"when": dt.date(2026, 9, 1)})["when"])
        assert Plain(data={"when": "01/09/2026"}).is_valid()
