"""Review schedules (issue 13): recurrence in a time zone, claims, runs, deliveries."""

from __future__ import annotations

import calendar
import datetime as dt
import smtplib
from email import message_from_bytes

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.models import ValueReview
from outcomes.reports import recurrence, services
from outcomes.reports.models import (
    Delivery,
    DeliveryStatus,
    ReportUnsubscribe,
    ReviewSchedule,
    RunStatus,
    ScheduledRun,
)
from outcomes.reports.transports import TransportError
from outcomes.reviews import services as review_services
from valuetree import services as node_services

pytestmark = pytest.mark.django_db

OSLO = "Europe/Oslo"
NINE = dt.time(9, 0)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# --- Recurrence --------------------------------------------------------------------------


def test_weekly_nine_oslo_stays_nine_local_across_spring_change():
    # 2026-03-29: Oslo moves from UTC+1 to UTC+2 (CET → CEST).
    dates = recurrence.next_n(
        "FREQ=WEEKLY;BYDAY=MO",
        starts_on=dt.date(2026, 1, 5),
        time_of_day=NINE,
        tz_name=OSLO,
        after=utc(2026, 3, 20),
    )
    assert dates[:2] == [utc(2026, 3, 23, 8), utc(2026, 3, 30, 7)]
    zone = recurrence.zone(OSLO)
    assert {d.astimezone(zone).time() for d in dates} == {NINE}


def test_weekly_nine_oslo_stays_nine_local_across_autumn_change():
    # 2026-10-25: back from UTC+2 to UTC+1.
    dates = recurrence.next_n(
        "FREQ=WEEKLY;BYDAY=MO",
        starts_on=dt.date(2026, 1, 5),
        time_of_day=NINE,
        tz_name=OSLO,
        after=utc(2026, 10, 15),
    )
    assert dates[:2] == [utc(2026, 10, 19, 7), utc(2026, 10, 26, 8)]
    zone = recurrence.zone(OSLO)
    assert {d.astimezone(zone).time() for d in dates} == {NINE}


def test_quarterly_third_monday_and_words():
    rule = "FREQ=MONTHLY;INTERVAL=3;BYDAY=3MO"
    dates = recurrence.next_n(
        rule, starts_on=dt.date(2026, 1, 1), time_of_day=NINE, tz_name=OSLO, after=utc(2026, 1, 1)
    )
    assert [d.date() for d in dates] == [
        dt.date(2026, 1, 19),
        dt.date(2026, 4, 20),
        dt.date(2026, 7, 20),
        dt.date(2026, 10, 19),
        dt.date(2027, 1, 18),
    ]
    words = recurrence.describe(
        "FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO",
        starts_on=dt.date(2026, 1, 1),
        time_of_day=NINE,
        tz_name=OSLO,
    )
    assert words.startswith("every 3 months on the first Monday at 09:00 Europe/Oslo")
    assert recurrence.describe(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR",
        starts_on=dt.date(2026, 1, 2),
        time_of_day=NINE,
        tz_name="UTC",
    ).startswith("every 2 weeks on Friday at 09:00 UTC")


@pytest.mark.parametrize(
    "rule",
    [
        "",
        "FREQ=HOURLY",
        "FREQ=WEEKLY;BYHOUR=9",
        "DTSTART:20260101T000000\nRRULE:FREQ=DAILY",
        "X=1",
        "FREQ=MONTHLY;BYMONTHDAY=99",
        # dateutil loops for ever on INTERVAL=0 and fails as it iterates (IndexError,
        # ValueError: a 500) on the next ones; RFC 5545 ranges refuse them up front.
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;INTERVAL=-1",
        "FREQ=MONTHLY;BYDAY=9MO",
        "FREQ=MONTHLY;BYMONTHDAY=0",
        "FREQ=DAILY;BYMONTH=13",
        "FREQ=YEARLY;BYWEEKNO=60",
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;COUNT=99999999999999999999",
        "FREQ=DAILY;UNTIL=2027",
        "FREQ=DAILY;FREQ=YEARLY",
        "FREQ=DAILY;BYDAY=XX",
        "FREQ=DAILY;UNTIL=20200101",
        "FREQ=DAILY\x00",
        "FREQ=WEEKLY;",  # a ';' at the end: dateutil's "not enough values to unpack"
        "FREQ=WEEKLY;;BYDAY=MO",
        "FREQ=WEEKLY;INTERVAL=\u0661",  # ARABIC-INDIC DIGIT ONE: a digit to \\d, not to RFC 5545
        "FREQ=DAILY;" + "BYMONTH=1," * 1000,
    ],
)
def test_unusable_rules_are_refused(rule):
    with pytest.raises(ValidationError) as e:
        recurrence.parse(rule, starts_on=dt.date(2026, 1, 1), time_of_day=NINE)
    assert "rrule" in e.value.message_dict


@pytest.mark.parametrize(
    "rule,has_days",
    [
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", False),
        ("FREQ=WEEKLY;BYMONTH=4;BYMONTHDAY=31", False),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29", True),  # leap days only
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=FR", True),
        ("FREQ=DAILY;BYWEEKNO=53;BYDAY=MO", True),
        ("FREQ=DAILY;BYMONTH=6", True),
        # INTERVAL thins the filter's days out: 2026-01-01 is a Thursday, so every
        # 7th day from it is a Thursday, never a Tuesday; every 14th week from a week
        # never lands in one of the listed ISO weeks 2 and 3 after the first pair.
        ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", False),
        ("FREQ=DAILY;INTERVAL=7;BYDAY=TH", True),
        ("FREQ=DAILY;INTERVAL=14;BYDAY=TU,TH", True),
        ("FREQ=WEEKLY;INTERVAL=3;BYDAY=MO;BYMONTH=2", True),
        ("FREQ=WEEKLY;INTERVAL=2;WKST=SU;BYDAY=SU", True),
    ],
)
def test_rules_without_days_are_found_without_walking_to_the_year_9999(rule, has_days):
    # dateutil walks every period to the year 9999 to learn that a daily rule never
    # matches (~1-5 s a request); a yearly probe with the same filters walks years.
    start = dt.datetime(2026, 1, 1, 9)  # noqa: DTZ001 - a local wall time, as parse() uses
    parsed = recurrence.rrulestr(rule, dtstart=start)
    found = recurrence._first_date(parsed, start)
    assert (found is not None) is has_days
    if has_days:
        # The same first date as dateutil's own walk.
        assert found == parsed.after(start, inc=True)
        assert recurrence.parse(rule, starts_on=start.date(), time_of_day=NINE)
    else:
        with pytest.raises(ValidationError):
            recurrence.parse(rule, starts_on=start.date(), time_of_day=NINE)


def _first_by_hand(freq, interval, days, months, monthdays, wkst, start):
    """An independent oracle for small rules: the first day from ``start`` within
    HORIZON_YEARS that is on the rule's INTERVAL and passes its filters (dateutil's
    defaults: a weekly rule with neither BYDAY nor BYMONTHDAY takes the start's
    weekday)."""
    names = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
    weekdays = {names.index(d) for d in days}
    if freq == "WEEKLY" and not weekdays and not monthdays:
        weekdays = {start.weekday()}
    first_week = (start.toordinal() - 1 - names.index(wkst)) // 7
    day = start
    end = start.replace(year=start.year + recurrence.HORIZON_YEARS)
    while day < end:
        if freq == "DAILY":
            on_interval = (day - start).days % interval == 0
        else:
            on_interval = (
                (day.toordinal() - 1 - names.index(wkst)) // 7 - first_week
            ) % interval == 0
        length = calendar.monthrange(day.year, day.month)[1]
        if (
            on_interval
            and (not weekdays or day.weekday() in weekdays)
            and (not months or day.month in months)
            and (
                not monthdays or any(day.day == (m if m > 0 else length + 1 + m) for m in monthdays)
            )
        ):
            return day
        day += dt.timedelta(days=1)
    return None


@settings(max_examples=80, deadline=None)
@given(
    freq=st.sampled_from(["DAILY", "WEEKLY"]),
    interval=st.integers(1, 60),
    days=st.lists(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]), max_size=3),
    months=st.lists(st.integers(1, 12), max_size=2),
    monthdays=st.lists(st.integers(-31, 31).filter(bool), max_size=2),
    wkst=st.sampled_from(["MO", "SU", "WE"]),
    start=st.dates(dt.date(2000, 1, 1), dt.date(2040, 12, 31)),
)
def test_the_first_date_matches_an_oracle_by_hand(
    freq, interval, days, months, monthdays, wkst, start
):
    parts = [f"FREQ={freq}", f"INTERVAL={interval}", f"WKST={wkst}"]
    for name, values in (("BYDAY", days), ("BYMONTH", months), ("BYMONTHDAY", monthdays)):
        if values:
            parts.append(f"{name}={','.join(map(str, sorted(set(values))))}")
    moment = dt.datetime.combine(start, NINE)
    parsed = recurrence.rrulestr(";".join(parts), dtstart=moment)
    found = recurrence._first_date(parsed, moment)
    expected = _first_by_hand(freq, interval, days, months, monthdays, wkst, start)
    assert (found.date() if found else None) == expected, ";".join(parts)


def test_utc_until_is_read_as_rfc_5545_asks():
    # RFC 5545 §3.3.10: beside a DTSTART with a time zone, UNTIL MUST be in UTC (…Z).
    # dateutil refused it beside our local DTSTART: a valid rule was a 400.
    dates = recurrence.next_n(
        "FREQ=WEEKLY;BYDAY=MO;UNTIL=20260131T000000Z",
        starts_on=dt.date(2026, 1, 1),
        time_of_day=NINE,
        tz_name=OSLO,
        after=utc(2026, 1, 1),
    )
    assert [d.day for d in dates] == [5, 12, 19, 26]


@pytest.mark.parametrize(
    "zone,until,days",
    [
        # 09:00 in Oslo in January is 08:00 UTC: an UNTIL of exactly that instant
        # includes it (UNTIL is inclusive), and the rule has a date (it was refused).
        (OSLO, "20260105T080000Z", [5]),
        (OSLO, "20260112T075959Z", [5]),
        # 09:00 in New York is 14:00 UTC: 10:00 UTC on the 12th is before that review.
        ("America/New_York", "20260112T100000Z", [5]),
        ("America/New_York", "20260112T140000Z", [5, 12]),
    ],
)
def test_a_utc_until_is_the_instant_it_names_in_the_schedules_zone(zone, until, days):
    rule = f"FREQ=WEEKLY;BYDAY=MO;UNTIL={until}"
    dates = recurrence.next_n(
        rule,
        starts_on=dt.date(2026, 1, 1),
        time_of_day=NINE,
        tz_name=zone,
        after=utc(2026, 1, 1),
    )
    assert [d.day for d in dates] == days


@pytest.mark.parametrize("until", ["20260101T250000Z", "20260230T090000Z", "20261301T000000Z"])
def test_a_utc_until_that_is_no_time_is_refused(until):
    with pytest.raises(ValidationError) as e:
        recurrence.parse(
            f"FREQ=DAILY;UNTIL={until}",
            starts_on=dt.date(2026, 1, 1),
            time_of_day=NINE,
            tz_name=OSLO,
        )
    assert "UNTIL" in e.value.message_dict["rrule"][0]


@pytest.mark.parametrize("starts_on", [dt.date(1, 1, 1), dt.date(9999, 12, 31)])
def test_starts_far_in_the_past_or_future_are_refused(starts_on):
    # From the year 1 dateutil walks ~740,000 days to reach today on every read; near
    # 9999-12-31 a local time west of UTC overflows (OverflowError: a 500).
    with pytest.raises(ValidationError) as e:
        recurrence.parse("FREQ=DAILY", starts_on=starts_on, time_of_day=dt.time(23))
    assert "starts_on" in e.value.message_dict


def test_the_last_dates_before_the_calendar_ends_do_not_overflow():
    dates = recurrence.next_n(
        "FREQ=YEARLY",
        starts_on=recurrence.LAST_START,
        time_of_day=dt.time(23),
        tz_name="Pacific/Pago_Pago",
        after=utc(2026, 1, 1),
        n=9000,
    )
    assert dates[0].year == 3000 and dates[-1].year == 9999


def test_ended_rule_has_no_next_date():
    assert (
        recurrence.next_after(
            "FREQ=DAILY;COUNT=2",
            starts_on=dt.date(2026, 1, 1),
            time_of_day=NINE,
            tz_name="UTC",
            after=utc(2026, 2, 1),
        )
        is None
    )


@pytest.mark.parametrize(
    "rule,says",
    [
        # dateutil drops a BYDAY ordinal outside a monthly or yearly rule: "the last
        # Friday" would silently be every Friday (RFC 5545 §3.3.10: MUST NOT).
        ("FREQ=WEEKLY;BYDAY=-1FR", "BYDAY's numbers"),
        ("FREQ=DAILY;BYDAY=2MO", "BYDAY's numbers"),
        ("FREQ=YEARLY;BYWEEKNO=20;BYDAY=1MO", "BYDAY's numbers"),
        # In a yearly rule with BYMONTH the number counts within the month (as dateutil
        # does): at most 5, not dateutil's "list index out of range".
        ("FREQ=YEARLY;BYMONTH=12;BYDAY=53MO", "at most 5"),
        # RFC 5545: COUNT and UNTIL MUST NOT occur together; dateutil warns that it
        # will raise on them, which would make a stored schedule unreadable.
        ("FREQ=DAILY;COUNT=3;UNTIL=20300101", "COUNT or UNTIL"),
    ],
)
def test_parts_are_refused_where_they_would_mean_something_else(rule, says):
    with pytest.raises(ValidationError) as e:
        recurrence.parse(rule, starts_on=dt.date(2026, 1, 5), time_of_day=NINE)
    assert says in e.value.message_dict["rrule"][0]


@pytest.mark.parametrize(
    "rule,words",
    [
        ("FREQ=MONTHLY;BYDAY=-2FR", "every month on the second last Friday at"),
        (
            "FREQ=YEARLY;BYDAY=22MO,-1TU,11WE",
            "on the 22nd Monday, the last Tuesday and the 11th Wednesday at",
        ),
        ("FREQ=MONTHLY;BYMONTHDAY=-2,-1,3", "every month on day 3, second last and last at"),
        # The parts the words do not cover are given as the rule's own text, so "every
        # week" is not all a rule limited to ISO week 1 (once a year) says.
        ("FREQ=WEEKLY;BYWEEKNO=1", "every week BYWEEKNO=1 at"),
        ("FREQ=MONTHLY;BYYEARDAY=100;WKST=SU", "every month BYYEARDAY=100 WKST=SU at"),
    ],
)
def test_rules_in_words_say_what_they_do(rule, words):
    said = recurrence.describe(rule, starts_on=dt.date(2026, 1, 5), time_of_day=NINE, tz_name="UTC")
    assert words in said


# --- Schedules ---------------------------------------------------------------------------


def schedule_for(tree, users, **fields):
    values = {
        "rrule": "FREQ=WEEKLY;BYDAY=MO",
        "starts_on": dt.date(2026, 1, 5),
        "time_of_day": NINE,
        "timezone": OSLO,
        "recipient_roles": ["owner", "viewer"],
        "extra_addresses": ["Board@Example.com"],
        "channels": ["email"],
    }
    values.update(fields)
    return services.schedule_save(tree=tree, by=users["owner"], now=utc(2026, 3, 20), **values)


@pytest.fixture
def addressed(users):
    for role, user in users.items():
        user.email = f"{role}@example.com"
        user.save(update_fields=["email"])
    return users


def test_schedule_save_computes_next_run_and_refuses_bad_input(tree, users):
    schedule = schedule_for(tree, users)
    assert schedule.next_run_at == utc(2026, 3, 23, 8)
    assert schedule.extra_addresses == ["board@example.com"]
    with pytest.raises(ValidationError) as e:
        schedule_for(
            tree,
            users,
            timezone="Mars/Olympus",
            channels=["email", "fax"],
            extra_addresses=["not an address"],
            recipient_roles=["owner", "king"],
        )
    assert {"timezone", "channels", "extra_addresses", "recipient_roles"} <= set(
        e.value.message_dict
    )
    schedule.refresh_from_db()
    assert schedule.timezone == OSLO
    with pytest.raises(ValidationError) as e:
        schedule_for(tree, users, channels=["email", "slack"])
    assert "slack_webhook" in e.value.message_dict


@pytest.mark.parametrize("name", ["localtime", "posixrules", "right/UTC", "Mars/Olympus", ""])
def test_a_schedule_zone_is_an_iana_name(tree, users, name):
    # "localtime" is the host's alias of /etc/localtime where the host has one (Debian,
    # Ubuntu): the zone the host runs in, which another host holds otherwise.
    with pytest.raises(ValidationError) as e:
        schedule_for(tree, users, timezone=name)
    assert set(e.value.message_dict) == {"timezone"}
    assert recurrence.is_iana_zone(name) is False
    assert recurrence.is_iana_zone(OSLO) is True
    assert not ReviewSchedule.objects.exists()


def test_webhook_urls_are_encrypted_at_rest(tree, users):
    url = "https://hooks.slack.com/services/T000/B000/secretsecretsecret"
    schedule = schedule_for(tree, users, channels=["slack"], slack_webhook=url)
    stored = ReviewSchedule.objects.filter(pk=schedule.pk).values_list(
        "slack_webhook_encrypted", flat=True
    )[0]
    assert stored and "secretsecret" not in stored and "hooks.slack.com" not in stored
    assert services._webhook_url(schedule, "slack") == url
    # None keeps it, "" removes it.
    schedule_for(tree, users, channels=["slack"])
    assert services._webhook_url(ReviewSchedule.objects.get(), "slack") == url


def test_beat_claims_a_due_run_once(tree, users):
    schedule = schedule_for(tree, users)
    assert services.schedules_claim_due(now=utc(2026, 3, 23, 7, 59)) == []
    claimed = services.schedules_claim_due(now=utc(2026, 3, 23, 8, 1))
    assert claimed == [(schedule.pk, utc(2026, 3, 23, 8).isoformat())]
    assert services.schedules_claim_due(now=utc(2026, 3, 23, 8, 2)) == []
    schedule.refresh_from_db()
    # The next Monday is after the spring change: 09:00 CEST is 07:00 UTC.
    assert schedule.next_run_at == utc(2026, 3, 30, 7)


def test_a_missed_stretch_runs_once(tree, users):
    schedule = schedule_for(tree, users)
    claimed = services.schedules_claim_due(now=utc(2026, 5, 1))
    assert len(claimed) == 1
    schedule.refresh_from_db()
    assert schedule.next_run_at == utc(2026, 5, 4, 7)


@pytest.fixture
def queued(monkeypatch):
    from outcomes import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks.send_delivery, "delay", lambda delivery_id: sent.append(delivery_id))
    return sent


def test_a_run_publishes_the_review_and_queues_one_delivery_per_recipient(
    tree, addressed, queued, django_capture_on_commit_callbacks
):
    node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    schedule = schedule_for(tree, addressed)
    services.schedules_claim_due(now=utc(2026, 3, 23, 8, 1))
    with django_capture_on_commit_callbacks(execute=True):
        run = services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, 23, 8))
    assert run.status == RunStatus.DELIVERING
    assert run.review.is_published
    rows = Delivery.objects.filter(review=run.review)
    assert sorted(rows.values_list("recipient", flat=True)) == [
        "board@example.com",
        "owner@example.com",
        "viewer@example.com",
    ]
    assert sorted(queued) == sorted(rows.values_list("id", flat=True))
    # A redelivered run task makes no second review and no second row.
    with django_capture_on_commit_callbacks(execute=True):
        again = services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, 23, 8))
    assert again.pk == run.pk
    assert ValueReview.objects.filter(tree=tree).count() == 1
    assert Delivery.objects.count() == 3


def test_leadership_and_unsubscribed(tree, addressed, queued):
    schedule = schedule_for(tree, addressed, recipient_roles=["leadership", "editor"])
    assert services.recipients(schedule) == [
        "editor@example.com",
        "leadership@example.com",
        "board@example.com",
    ]
    token = services.unsubscribe_token(tree.pk, "Board@example.com")
    services.unsubscribe(token=token)
    assert ReportUnsubscribe.objects.filter(tree=tree, address="board@example.com").exists()
    assert "board@example.com" not in services.recipients(schedule)
    with pytest.raises(ValidationError):
        services.unsubscribe(token=token[:-2] + "xx")


def test_only_if_changed_skips_a_review_with_no_changes(tree, addressed, queued):
    node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    first = review_services.review_start(tree=tree, by=addressed["owner"])
    review_services.review_publish(review=first, by=addressed["owner"])
    schedule = schedule_for(tree, addressed, send_policy="only_if_changed")
    run = services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, 23, 8))
    assert run.status == RunStatus.SKIPPED
    assert "Nothing changed" in run.detail
    assert not Delivery.objects.exists()


def test_skip_if_empty(tree, addressed, queued):
    schedule = schedule_for(tree, addressed, send_policy="skip_if_empty")
    run = services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, 23, 8))
    assert run.status == RunStatus.SKIPPED


def test_a_deactivated_owner_is_not_told_a_draft_waits(tree, addressed, queued):
    from valuetree.models import Notification

    node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    schedule = schedule_for(tree, addressed, publish_mode="draft")
    node_services.membership_set(tree=tree, user=addressed["editor"], role="owner")
    addressed["owner"].is_active = False
    addressed["owner"].save(update_fields=["is_active"])
    services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, 23, 8))
    assert [n.recipient for n in Notification.objects.all()] == [addressed["editor"]]


def test_draft_mode_waits_for_the_owners_then_delivers(
    tree, addressed, queued, django_capture_on_commit_callbacks
):
    node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    schedule = schedule_for(tree, addressed, publish_mode="draft")
    run = services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, 23, 8))
    assert run.status == RunStatus.AWAITING_PUBLISH
    assert not run.review.is_published
    from valuetree.models import Notification

    [told] = Notification.objects.all()
    assert told.recipient == addressed["owner"] and "waits for you" in told.subject
    assert services.runs_deliver_published() == []
    review_services.review_publish(review=run.review, by=addressed["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        assert services.runs_deliver_published() == [run.pk]
    assert ScheduledRun.objects.get().status == RunStatus.DELIVERING
    # The page's run list no longer says it waits for a draft that was published.
    assert ScheduledRun.objects.get().detail == ""
    assert len(queued) == 3


def test_auto_mode_publishes_its_snapshot_beside_a_draft_people_have_open(
    tree, addressed, queued, django_capture_on_commit_callbacks
):
    node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    first = review_services.review_start(tree=tree, by=addressed["owner"])
    first = review_services.review_publish(review=first, by=addressed["owner"])
    node_services.node_create(tree=tree, parent=None, title="Keep customers")
    draft = review_services.review_start(tree=tree, by=addressed["owner"], notes="ours")
    schedule = schedule_for(tree, addressed)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, 23, 8))
    assert run.status == RunStatus.DELIVERING
    assert run.review.is_published and run.review.pk != draft.pk
    assert run.review.previous == first
    assert [n["title"] for n in run.review.changes["added"]] == ["Keep customers"]
    assert len(queued) == 3
    # The people's draft is left as it was, and still publishes after the snapshot.
    draft.refresh_from_db()
    assert (draft.status, draft.notes, draft.previous) == ("draft", "ours", first)
    published = review_services.review_publish(review=draft, by=addressed["owner"])
    assert [n["title"] for n in published.changes["added"]] == ["Keep customers"]


def test_a_run_redelivered_after_its_snapshot_delivers_that_snapshot(
    tree, addressed, queued, monkeypatch, django_capture_on_commit_callbacks
):
    # The worker dies after the run's snapshot is committed and before its deliveries
    # are written (a render that fails, kill -9): the task comes back with the run
    # still "started". It must deliver that snapshot, not publish a second one (which,
    # with nothing changed since the first, only_if_changed would then skip).
    node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    schedule = schedule_for(tree, addressed, send_policy="only_if_changed")

    def dies(*, run):
        raise RuntimeError("worker lost")

    with monkeypatch.context() as patched:
        patched.setattr(services, "run_deliver", dies)
        with pytest.raises(RuntimeError):
            services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, 23, 8))
    [first] = ValueReview.objects.filter(tree=tree)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, 23, 8))
    assert list(ValueReview.objects.filter(tree=tree)) == [first]
    assert (run.review_id, run.status) == (first.pk, RunStatus.DELIVERING)
    assert len(queued) == 3


def test_a_peoples_review_follows_up_its_last_decisions_across_scheduled_snapshots(
    tree, addressed, queued, django_capture_on_commit_callbacks, client
):
    from outcomes.models import Decision

    goal = node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    bet = node_services.node_create(tree=tree, parent=goal, title="Self-service reorders")
    first = review_services.review_start(tree=tree, by=addressed["owner"], title="Q1")
    review_services.decision_create(
        node=bet, kind="persevere", rationale="Keep going", by=addressed["owner"], review=first
    )
    assert Decision.objects.get().review == first
    first = review_services.review_publish(review=first, by=addressed["owner"])
    schedule = schedule_for(tree, addressed)
    with django_capture_on_commit_callbacks(execute=True):
        for week in (23, 30):
            run = services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, week, 8))
            assert run.review.is_snapshot and run.review.changes["followup"][0]["rationale"] == (
                "Keep going"
            )
    second = review_services.review_start(tree=tree, by=addressed["owner"], title="Q2")
    assert second.previous == run.review  # its period runs from the last report
    second = review_services.review_publish(review=second, by=addressed["owner"])
    assert not second.is_snapshot
    [followed] = second.changes["followup"]
    assert (followed["kind"], followed["rationale"]) == ("persevere", "Keep going")
    # The list says which reviews were scheduled reports.
    client.force_login(addressed["owner"])
    page = client.get(f"/trees/{tree.slug}/reviews/").content.decode()
    assert page.count("scheduled report") == 2


# --- Sending -----------------------------------------------------------------------------


@pytest.fixture
def delivery(tree, addressed, queued):
    node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    schedule = schedule_for(tree, addressed, extra_addresses=[], recipient_roles=["owner"])
    run = services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, 23, 8))
    return Delivery.objects.get(review=run.review)


def test_a_delivery_is_sent_once(delivery):
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == "sent"
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == "sent"
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 1, "")
    assert delivery.sent_at is not None
    message = message_from_bytes(mail.outbox[0].message().as_bytes())
    assert message["List-Unsubscribe"].strip().startswith("<http://")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    types = [part.get_content_type() for part in message.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/related",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "image/png",
        "application/pdf",
    ]
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    body = html.get_payload(decode=True).decode()
    assert 'src="cid:headline"' in body
    assert "<style" not in body  # inlined
    assert "/reports/unsubscribe/" in body


def _failing(monkeypatch, error):
    from outcomes.reports import transports

    def send(self, message, **kwargs):
        raise error

    monkeypatch.setattr(transports.EmailTransport, "send", send)


def test_transient_failure_is_stored_and_raised_for_retry(delivery, monkeypatch):
    _failing(monkeypatch, TransportError("SMTP 451 try later"))
    with pytest.raises(TransportError):
        services.delivery_send(delivery_id=delivery.pk, final_attempt=False)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("retrying", 1)
    assert "451" in delivery.error
    # The last attempt's failure is final.
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=True) == "failed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)


def test_permanent_failure_is_not_retried(delivery, monkeypatch):
    _failing(monkeypatch, TransportError("SMTP 550 no such user", permanent=True))
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == "failed"
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == "failed"
    delivery.refresh_from_db()
    assert delivery.attempts == 1


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (smtplib.SMTPResponseException(451, b"greylisted"), False),
        (smtplib.SMTPResponseException(554, b"rejected"), True),
        (smtplib.SMTPServerDisconnected("gone"), False),
        (TimeoutError("timed out"), False),
        (smtplib.SMTPRecipientsRefused({"a@b": (550, b"no")}), True),
        (smtplib.SMTPRecipientsRefused({"a@b": (452, b"full")}), False),
    ],
)
def test_smtp_errors_are_classified(monkeypatch, error, permanent):
    from outcomes.reports import transports
    from valuetree import mail as mail_module

    class Broken:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send_messages(self, messages):
            raise error

    monkeypatch.setattr(mail_module, "get_connection", lambda: Broken())
    with pytest.raises(TransportError) as e:
        transports.EmailTransport().send(object())
    assert e.value.permanent is permanent


def test_a_row_left_sending_is_taken_over_only_after_the_lease(delivery):
    assert services.delivery_claim(delivery.pk)
    assert not services.delivery_claim(delivery.pk)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert services.delivery_claim(delivery.pk, now=later)


def test_send_a_test_goes_to_the_user_only(tree, addressed, queued):
    node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    with pytest.raises(ValidationError):
        services.send_test(tree=tree, user=addressed["owner"])
    review = review_services.review_start(tree=tree, by=addressed["owner"])
    review_services.review_publish(review=review, by=addressed["owner"])
    test = services.send_test(tree=tree, user=addressed["owner"])
    services.delivery_send(delivery_id=test.pk, final_attempt=False)
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert mail.outbox[0].subject.startswith("[Test] ")
    # Tests are not reports: a second test is another row.
    assert services.send_test(tree=tree, user=addressed["owner"]).pk != test.pk


def test_resend(delivery, addressed, queued):
    services.delivery_send(delivery_id=delivery.pk, final_attempt=False)
    services.delivery_resend(delivery=delivery, by=addressed["owner"])
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.QUEUED
    services.delivery_send(delivery_id=delivery.pk, final_attempt=False)
    assert len(mail.outbox) == 2


def test_the_task_backs_off_and_honours_retry_after(delivery, monkeypatch, settings):
    from celery.exceptions import Retry

    from outcomes import tasks

    asked: list[float] = []

    def retry(*, countdown, exc):
        asked.append(countdown)
        return Retry(exc=exc, when=countdown)

    monkeypatch.setattr(tasks.send_delivery, "retry", retry)
    _failing(monkeypatch, TransportError("HTTP 429", retry_after=600))
    with pytest.raises(Retry):
        tasks.send_delivery.apply(args=[delivery.pk], throw=True)
    _failing(monkeypatch, TransportError("SMTP 421"))
    with pytest.raises(Retry):
        tasks.send_delivery.apply(args=[delivery.pk], throw=True)
    assert asked == [600, settings.REPORT_DELIVERY_BACKOFF]


def test_owners_of_items_needing_a_decision_are_reminded_once(tree, addressed, monkeypatch):
    from valuetree.models import Notification

    goal = node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    node_services.node_create(tree=tree, parent=goal, title="Old bet", owner=addressed["editor"])
    node_services.node_create(tree=tree, parent=goal, title="Orphan bet")
    from valuetree.models import Node

    Node.objects.filter(tree=tree).update(created_at=utc(2025, 1, 1))
    schedule = schedule_for(tree, addressed, reminder_days=3)
    assert schedule.next_run_at == utc(2026, 3, 23, 8)
    assert services.reminders_send(now=utc(2026, 3, 20, 7)) == []
    assert services.reminders_send(now=utc(2026, 3, 20, 9)) == [schedule.pk]
    assert services.reminders_send(now=utc(2026, 3, 21)) == []
    notices = {n.recipient.username: n for n in Notification.objects.select_related("recipient")}
    assert set(notices) == {"editor", "owner"}
    assert "Old bet" in notices["editor"].body and "Orphan bet" not in notices["editor"].body
    assert "Orphan bet" in notices["owner"].body
    assert "need a decision" in notices["editor"].subject


def test_a_reminder_names_nodes_only_to_an_owner_who_may_read_the_tree(
    tree, addressed, monkeypatch
):
    """A node's owner who has left the tree (or never belonged to it) is not told its
    titles or the tree's name: the tree's owners are reminded of those items instead."""
    from valuetree.models import Membership, Node, Notification

    goal = node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    node_services.node_create(tree=tree, parent=goal, title="Secret bet", owner=addressed["editor"])
    node_services.node_create(
        tree=tree, parent=goal, title="Stranger bet", owner=addressed["outsider"]
    )
    Node.objects.filter(tree=tree).update(created_at=utc(2025, 1, 1))
    schedule = schedule_for(tree, addressed, reminder_days=3)
    node_services.membership_remove(
        membership=Membership.objects.get(tree=tree, user=addressed["editor"])
    )
    assert services.reminders_send(now=utc(2026, 3, 20, 9)) == [schedule.pk]
    notices = {n.recipient.username: n for n in Notification.objects.select_related("recipient")}
    assert set(notices) == {"owner"}
    assert "Secret bet" in notices["owner"].body and "Stranger bet" in notices["owner"].body


def test_a_deactivated_tree_owner_is_not_reminded(tree, addressed):
    from valuetree.models import Node, Notification

    goal = node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    node_services.node_create(tree=tree, parent=goal, title="Orphan bet")
    Node.objects.filter(tree=tree).update(created_at=utc(2025, 1, 1))
    schedule = schedule_for(tree, addressed, reminder_days=3)
    addressed["owner"].is_active = False
    addressed["owner"].save(update_fields=["is_active"])
    assert services.reminders_send(now=utc(2026, 3, 20, 9)) == [schedule.pk]
    assert not Notification.objects.filter(body__contains="Orphan bet").exists()


def test_the_sweeper_requeues_rows_a_dead_worker_left(
    delivery, queued, django_capture_on_commit_callbacks
):
    assert services.delivery_claim(delivery.pk)  # a worker took it, then died
    assert services.deliveries_sweep_stuck() == []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_sweep_stuck(now=later) == [delivery.pk]
    assert queued[-1] == delivery.pk
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == "sending"
    Delivery.objects.filter(pk=delivery.pk).update(status="sent")
    assert services.deliveries_sweep_stuck(now=later) == []


@pytest.mark.parametrize(
    "rule,starts_on",
    [
        # Never a date: dateutil walks every month (or year) to the year 9999 to learn
        # it, ~0.25-0.75 s of CPU a request (the schedule page parses a rule thrice).
        ("FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30", dt.date(2026, 1, 5)),
        ("FREQ=MONTHLY;BYMONTH=2", dt.date(2026, 1, 31)),  # the start's day 31
        ("FREQ=MONTHLY;BYMONTH=2,4,6,9,11;BYMONTHDAY=31;BYDAY=1MO,2TU,-1SU", dt.date(1970, 1, 1)),
        ("FREQ=MONTHLY;BYYEARDAY=366;BYMONTH=1;UNTIL=20270101", dt.date(2026, 1, 5)),
        ("FREQ=YEARLY;BYMONTH=2,4,6,9,11;BYMONTHDAY=31;BYDAY=1MO,1TU,1FR", dt.date(1970, 1, 1)),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", dt.date(2999, 12, 31)),
        # The daily rule's yearly probe walked to 9999 too when its filters never meet.
        ("FREQ=WEEKLY;BYMONTH=2,4,6,9,11;BYMONTHDAY=31;BYDAY=MO,TU,WE", dt.date(1970, 1, 1)),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", dt.date(2026, 1, 5)),
    ],
)
def test_rules_with_no_date_are_refused_without_walking_to_the_year_9999(
    rule, starts_on, monkeypatch
):
    from dateutil import rrule as dateutil_rrule

    periods = []
    rebuild = dateutil_rrule._iterinfo.rebuild

    def counted(self, year, month):
        periods.append((year, month))
        return rebuild(self, year, month)

    monkeypatch.setattr(dateutil_rrule._iterinfo, "rebuild", counted)
    with pytest.raises(ValidationError) as e:
        recurrence.parse(rule, starts_on=starts_on, time_of_day=NINE)
    assert "no date" in e.value.message_dict["rrule"][0]
    # dateutil starts each year anew: a rule is asked over the horizon and at most one
    # 400-year Gregorian cycle after it (the calendar repeats), not ~8,000 years to 9999.
    years = {year for year, _ in periods}
    assert len(years) <= 2 * recurrence.HORIZON_YEARS + 400, (min(years), max(years))


@pytest.mark.parametrize(
    "rule,starts_on,first",
    [
        ("FREQ=MONTHLY;INTERVAL=1000;BYMONTHDAY=31", dt.date(2026, 4, 1), dt.date(2109, 8, 31)),
        ("FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=29", dt.date(2097, 3, 1), dt.date(2104, 2, 29)),
        ("FREQ=MONTHLY;BYDAY=5FR;BYMONTH=2", dt.date(2026, 1, 1), dt.date(2036, 2, 29)),
        (
            "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29",
            dt.date(2096, 3, 1),
            dt.date(2104, 2, 29),
        ),
        (
            "FREQ=YEARLY;BYWEEKNO=53;BYDAY=MO;INTERVAL=1000",
            dt.date(2026, 1, 5),
            dt.date(2026, 12, 28),
        ),
        ("FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=29", dt.date(2999, 12, 31), dt.date(3004, 2, 29)),
        (
            "FREQ=DAILY;BYYEARDAY=-366;BYMONTH=1;INTERVAL=7",
            dt.date(2026, 1, 5),
            dt.date(2052, 1, 1),
        ),
    ],
)
def test_rare_rules_keep_their_first_date(rule, starts_on, first):
    parsed = recurrence.parse(rule, starts_on=starts_on, time_of_day=NINE)
    assert parsed.after(dt.datetime.combine(starts_on, NINE), inc=True).date() == first


def test_a_schedule_stored_in_localtime_still_runs_and_reminds(
    tree, addressed, queued, django_capture_on_commit_callbacks
):
    """A schedule saved in "localtime" while it was taken (before is_iana_zone refused
    it): its due run goes ahead, as the claim promises, and the reminders of every
    schedule still go out; its times are shown in UTC until an owner corrects it, and
    its page says it cannot be read."""
    from outcomes.reports.selectors import schedule_summary
    from valuetree.models import Node, Notification

    goal = node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    node_services.node_create(tree=tree, parent=goal, title="Old bet", owner=addressed["editor"])
    Node.objects.filter(tree=tree).update(created_at=utc(2025, 1, 1))
    schedule = schedule_for(tree, addressed, reminder_days=3)
    ReviewSchedule.objects.filter(pk=schedule.pk).update(timezone="localtime")
    assert services.reminders_send(now=utc(2026, 3, 20, 9)) == [schedule.pk]
    notice = Notification.objects.get(recipient=addressed["editor"])
    assert "on 2026-03-23 08:00" in notice.subject
    assert services.schedules_claim_due(now=utc(2026, 3, 23, 8, 1)) == [
        (schedule.pk, utc(2026, 3, 23, 8).isoformat())
    ]
    with django_capture_on_commit_callbacks(execute=True):
        run = services.schedule_run(schedule_id=schedule.pk, run_at=utc(2026, 3, 23, 8))
    assert run.status == RunStatus.DELIVERING
    assert run.review.title == "Scheduled review 2026-03-23"
    assert len(queued) == 3
    schedule.refresh_from_db()
    assert schedule.next_run_at is None
    assert schedule_summary(schedule)["words"].startswith("This schedule cannot be read")


def test_no_report_is_resent_or_retried_by_e_mail_once_the_schedule_stops_e_mailing(
    tree, addressed, delivery
):
    """An owner who moves the tree's reports from e-mail to Slack expects no more
    e-mail: a retry still queued, or a "Resend" of an older review, went to the same
    addresses as long as they stayed recipients of the schedule's roles."""
    url = "https://hooks.slack.com/services/T000/B000/secretsecretsecret"
    schedule_for(
        tree,
        addressed,
        extra_addresses=[],
        recipient_roles=["owner"],
        channels=["slack"],
        slack_webhook=url,
    )
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.RETRYING)
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == "failed"
    delivery.refresh_from_db()
    assert delivery.error == "This tree's reports are no longer sent by e-mail."
    with pytest.raises(ValidationError) as refusal:
        services.delivery_resend(delivery=delivery, by=addressed["owner"])
    assert refusal.value.message_dict == {
        "recipient": ["This tree's reports are no longer sent by e-mail."]
    }
    assert mail.outbox == []
