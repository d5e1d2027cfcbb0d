"""Review dates from an RFC 5545 recurrence rule, in a time zone.

The rule's occurrences are computed by dateutil.rrule on *local wall-clock* datetimes
(DTSTART = ``starts_on`` at ``time_of_day``) and only then placed in the time zone, so a
review at 09:00 Europe/Oslo is at 09:00 local before and after each DST change (07:00
or 08:00 UTC). No date arithmetic is written here: every date comes from the rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.relativedelta import relativedelta
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr
from django.contrib.humanize.templatetags.humanize import ordinal
from django.core.exceptions import ValidationError

# Parts that would say something the schedule's own fields say (the start, the time).
_REFUSED_PARTS = ("DTSTART", "BYHOUR", "BYMINUTE", "BYSECOND", "BYSETPOS=", "BYEASTER")
_FREQS = {YEARLY: "year", MONTHLY: "month", WEEKLY: "week", DAILY: "day"}
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
]  # fmt: skip
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}
# Parts the words of describe() do not cover: shown as the rule's own text.
_UNDESCRIBED_PARTS = ("BYYEARDAY", "BYWEEKNO", "WKST")
MAX_RULE_LENGTH = 500
MAX_INTERVAL = 1000
# A rule must have a date within this many years of its start (see _first_date).
HORIZON_YEARS = 100
# The Gregorian calendar repeats after 400 years (146,097 days, exactly 20,871 weeks).
GREGORIAN_CYCLE_YEARS = 400
# The first and last start dates taken: outside them dateutil walks centuries of empty
# periods (a rule from the year 1 iterates ~740,000 days to reach today) or a local
# date near 9999-12-31 overflows when placed in UTC.
FIRST_START = date(1970, 1, 1)
LAST_START = date(2999, 12, 31)
# RFC 5545 §3.3.10 value ranges of the numeric parts (dateutil does not check them:
# INTERVAL=0 loops for ever, BYMONTHDAY=0 or BYDAY=9MO raise IndexError as it iterates,
# BYMONTH=13 walks to the year 9999 for nothing). BYDAY's ordinal is at most 5 in a
# month (RFC 5545: "within a MONTHLY rule"), 53 in a year.
_RANGES = {"BYMONTH": (1, 12), "BYMONTHDAY": (1, 31), "BYYEARDAY": (1, 366), "BYWEEKNO": (1, 53)}
_SIGNED = {"BYMONTHDAY", "BYYEARDAY", "BYWEEKNO"}
_NUMBER = re.compile(r"[+-]?\d{1,6}\Z", re.ASCII)
_BYDAY = re.compile(r"([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)\Z", re.ASCII)
# UNTIL is a DATE or DATE-TIME (§3.3.4, §3.3.5), not whatever dateutil's fuzzy parser
# reads ("2027" would become today's day and month in 2027).
_UNTIL = re.compile(r"\d{8}(T\d{6}Z?)?\Z", re.ASCII)


# Files of a host's zoneinfo folder that available_timezones() lists although IANA
# publishes no such zone: Debian's and Ubuntu's "localtime", a link to /etc/localtime,
# i.e. whatever zone that host runs in. (It already leaves out "posixrules", right/ and
# posix/.)
_HOST_ALIASES = frozenset({"localtime"})


@cache
def _iana_zone_names() -> frozenset[str]:
    # Cached: available_timezones() opens every file of the host's zoneinfo folder.
    return frozenset(available_timezones()) - _HOST_ALIASES


def is_iana_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone name ("Europe/Oslo", "UTC") available on
    this host: the one rule for every stored time zone (review schedules, metrics).
    Not a host's alias ("localtime") nor any other file ZoneInfo would load
    ("posixrules", "right/UTC")."""
    return bool(name) and name in _iana_zone_names()


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ValidationError when there is none."""
    if not is_iana_zone(name):
        raise ValidationError({"timezone": f"{name!r} is not an IANA time zone name."})
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:  # pragma: no cover - listed above
        raise ValidationError({"timezone": f"{name!r} is not an IANA time zone name."}) from e


def shown_zone(name: str) -> ZoneInfo:
    """The zone to show a stored schedule's times in: :func:`zone`, or UTC for a name
    stored before a check refused it ("localtime", valid until is_iana_zone) or one
    tzdata dropped. For what is only shown (a run's title, a reminder's subject): a
    run goes ahead and its owners are told to correct the schedule
    (``selectors.schedule_summary``); never for computing a date."""
    try:
        return zone(name)
    except ValidationError:
        return ZoneInfo("UTC")


def _normalise(text: str) -> str:
    text = (text or "").strip()
    return text[len("RRULE:") :] if text.upper().startswith("RRULE:") else text


def _check_parts(upper: str, tz: ZoneInfo | None = None) -> str:
    """Check the numeric parts of an upper-cased RRULE value against RFC 5545's ranges
    before dateutil sees them; the value with a UTC ``UNTIL`` (``…Z``) made local wall
    time (as the rule's DTSTART is): the wall time in ``tz`` at that instant, or read
    as wall time when no zone is given. Raises ValidationError (key ``rrule``)."""

    def refuse(message: str) -> ValidationError:
        return ValidationError({"rrule": message})

    parts = []
    if any("=" not in part for part in upper.split(";")):
        raise refuse("Each part is NAME=VALUE, separated by single ';' (no ';' at the end).")
    names = [part.partition("=")[0] for part in upper.split(";")]
    if len(set(names)) != len(names):
        raise refuse("Give each part once (RFC 5545 §3.3.10).")
    if "COUNT" in names and "UNTIL" in names:
        raise refuse("Give COUNT or UNTIL, not both (RFC 5545 §3.3.10).")
    freq = next((p.partition("=")[2] for p in upper.split(";") if p.startswith("FREQ=")), "")
    # BYDAY's numbers count within the month in a monthly rule and in a yearly rule
    # with BYMONTH (as dateutil counts them), within the year in a yearly rule; RFC
    # 5545 forbids them elsewhere, where dateutil drops them ("-1FR" would be every
    # Friday), and beside BYWEEKNO.
    numbered = freq == "MONTHLY" or freq == "YEARLY" and "BYWEEKNO" not in names
    for part in upper.split(";"):
        name, _, value = part.partition("=")
        if name == "INTERVAL":
            if not _NUMBER.match(value) or not 1 <= int(value) <= MAX_INTERVAL:
                raise refuse(f"INTERVAL is a whole number from 1 to {MAX_INTERVAL}.")
        elif name == "COUNT":
            if not _NUMBER.match(value) or int(value) < 1:
                raise refuse("COUNT is a whole number from 1.")
        elif name == "UNTIL":
            if not _UNTIL.match(value):
                raise refuse("UNTIL is a date (20271231) or a date and time (20271231T090000Z).")
            if value.endswith("Z") and tz is not None:
                try:
                    value = _utc_until_in(value, tz)
                except ValueError:  # 25 o'clock, 30 February
                    raise refuse(f"UNTIL is not a date and time: {value!r}.") from None
            part = f"UNTIL={value.rstrip('Z')}"
        elif name in _RANGES:
            low, high = _RANGES[name]
            for item in value.split(","):
                number = int(item) if _NUMBER.match(item) else 0
                if not low <= (abs(number) if name in _SIGNED else number) <= high:
                    raise refuse(f"{name} takes numbers from {low} to {high}: not {item[:12]!r}.")
        elif name == "BYDAY":
            limit = 5 if freq == "MONTHLY" or "BYMONTH" in names else 53
            for item in value.split(","):
                found = _BYDAY.match(item)
                if found and found.group(2) and not numbered:
                    raise refuse(
                        "BYDAY's numbers (1MO, -1FR) go in a monthly or yearly rule without "
                        f"BYWEEKNO: not {item[:12]!r} here."
                    )
                if not found or found.group(2) and not 1 <= int(found.group(2)) <= limit:
                    raise refuse(
                        f"BYDAY takes days such as MO, 1MO or -1FR (at most {limit}): "
                        f"not {item[:12]!r}."
                    )
        parts.append(part)
    return ";".join(parts)


def _utc_until_in(value: str, tz: ZoneInfo) -> str:
    """A UTC ``UNTIL`` date-time (``20271231T090000Z``) as the wall time in ``tz`` at that
    instant (``20271231T100000`` in Oslo), clamped to the calendar's ends."""
    instant = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    try:
        local = instant.astimezone(tz)
    except OverflowError:  # past either end of the calendar in that zone
        return "99991231T235959" if instant.year == date.max.year else "00010101T000000"
    return f"{local.year:04d}{local:%m%dT%H%M%S}"


def _first_date(rule: rrule, start: datetime) -> datetime | None:
    """The rule's first date on or after ``start``, None when it has none within
    HORIZON_YEARS.

    dateutil finds that a rule has no date by walking period after period to the
    year 9999, and an UNTIL does not stop a walk that produces nothing: about 5 s for
    FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30, ~0.25-0.75 s for a monthly rule such as
    FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30. So the rule is first asked through a probe
    that starts a whole number of 400-year Gregorian cycles later (146,097 days: the
    same weekdays, leap days, ISO weeks, and a whole number of days, weeks and months,
    so every INTERVAL phase is kept), as late as leaves HORIZON_YEARS before 9999: a
    probe that finds nothing stops at 9999 within one cycle after its horizon.

    A monthly or yearly rule is its own probe. A daily or weekly rule with day filters
    is probed as a yearly rule with the same filters, which steps whole years and
    yields every day the filters allow (dateutil applies one filter to every period:
    the daily rule's days are among them); a day counts when it also falls on the
    rule's INTERVAL — a whole number of INTERVAL days (DAILY) or weeks counted from
    WKST (WEEKLY) after the start's. Only once the probe finds a day within the horizon
    is the rule itself asked, and its walk then ends at that day. A daily rule without
    a day filter (none of BYMONTHDAY, BYYEARDAY, BYWEEKNO, BYDAY) always has days.
    """
    monthdays = tuple(rule._bymonthday or ()) + tuple(rule._bynmonthday or ())
    filtered = monthdays or rule._byyearday or rule._byweekno or rule._byweekday
    if rule._freq in (DAILY, WEEKLY) and not filtered:
        return rule.after(start, inc=True)
    cycles = max(0, (date.max.year - HORIZON_YEARS - start.year) // GREGORIAN_CYCLE_YEARS)
    shifted = start.replace(year=start.year + cycles * GREGORIAN_CYCLE_YEARS)
    until = shifted + relativedelta(years=HORIZON_YEARS)
    if rule._freq in (MONTHLY, YEARLY):
        probe = rule.replace(dtstart=shifted, until=until, count=None)
        found = probe.after(shifted, inc=True)
        return None if found is None else rule.after(start, inc=True)
    probe = rrule(
        YEARLY,
        dtstart=shifted,
        until=until,
        wkst=rule._wkst,
        bymonth=rule._bymonth,
        bymonthday=monthdays or None,
        byyearday=rule._byyearday,
        byweekno=rule._byweekno,
        byweekday=rule._byweekday,
    )
    interval = rule._interval

    def period(moment: datetime) -> int:
        ordinal = moment.toordinal()  # day 1 (0001-01-01) was a Monday
        return ordinal if rule._freq == DAILY else (ordinal - 1 - rule._wkst) // 7

    first_period = period(shifted)
    for day in probe:
        if (period(day) - first_period) % interval == 0:
            return rule.after(start, inc=True)
    return None


def parse(text: str, *, starts_on: date, time_of_day: time, tz_name: str | None = None) -> rrule:
    """The dateutil rule for an RRULE value, anchored at local ``starts_on time_of_day``
    (naive) in the zone ``tz_name`` (a UTC UNTIL is placed in it; without a zone it is
    read as wall time). Raises ValidationError (key ``rrule``) for an unreadable rule, a part out
    of RFC 5545's range, one more frequent than daily, one that sets the time itself,
    or one with no occurrence; (key ``starts_on``) for a start before FIRST_START or
    after LAST_START.
    """
    value = _normalise(text)
    if not value or len(value) > MAX_RULE_LENGTH:
        raise ValidationError({"rrule": "Enter a recurrence rule such as FREQ=MONTHLY;BYDAY=1MO."})
    if not FIRST_START <= starts_on <= LAST_START:
        raise ValidationError(
            {"starts_on": f"Start between {FIRST_START:%Y-%m-%d} and {LAST_START:%Y-%m-%d}."}
        )
    upper = value.upper()
    for part in _REFUSED_PARTS:
        if part in upper:
            name = part.rstrip("=").lower()
            raise ValidationError(
                {"rrule": f"Leave {name} out: the start date and time are set apart."}
            )
    if "\n" in value or not upper.startswith("FREQ=") and ";FREQ=" not in upper:
        raise ValidationError({"rrule": "A rule needs FREQ (e.g. FREQ=WEEKLY;INTERVAL=2)."})
    # An UNTIL in UTC (…Z), as RFC 5545 asks for beside a DTSTART with a time zone, is
    # made the zone's wall time at that instant: dateutil refuses a UTC UNTIL beside a
    # naive DTSTART.
    value = _check_parts(upper, zone(tz_name) if tz_name else None)
    start = datetime.combine(starts_on, time_of_day.replace(tzinfo=None, microsecond=0))
    try:
        rule = rrulestr(value, dtstart=start)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
        raise ValidationError({"rrule": f"The rule cannot be read: {e}"}) from None
    if not isinstance(rule, rrule) or rule._freq not in _FREQS:
        raise ValidationError({"rrule": "Reviews recur daily at most: use FREQ=DAILY or rarer."})
    try:
        first = _first_date(rule, start)
    except (ValueError, IndexError, OverflowError) as e:
        raise ValidationError({"rrule": f"The rule cannot be read: {e}"}) from None
    if first is None:
        raise ValidationError(
            {
                "rrule": "The rule has no date in the "
                f"{HORIZON_YEARS} years from the start: check its filters (and INTERVAL)."
            }
        )
    return rule


def _aware(local: datetime, tz: ZoneInfo) -> datetime:
    """A local wall time placed in ``tz`` (the first of two at a fall-back fold; a time
    that does not exist at a spring-forward gap reads as the hour after), in UTC."""
    return local.replace(tzinfo=tz).astimezone(UTC)


def occurrences(
    text: str, *, starts_on: date, time_of_day: time, tz_name: str, after: datetime
) -> Iterator[datetime]:
    """The rule's occurrences strictly after ``after`` (aware), as aware UTC datetimes."""
    tz = zone(tz_name)
    rule = parse(text, starts_on=starts_on, time_of_day=time_of_day, tz_name=tz_name)
    local_after = after.astimezone(tz).replace(tzinfo=None)
    for local in rule.xafter(local_after, inc=False):
        try:
            moment = _aware(local, tz)
        except OverflowError:  # past 9999-12-31 in UTC: the calendar ends there
            return
        if moment > after:
            yield moment


def next_after(
    text: str, *, starts_on: date, time_of_day: time, tz_name: str, after: datetime
) -> datetime | None:
    """The first occurrence strictly after ``after`` (UTC), None when the rule ended."""
    return next(
        occurrences(
            text, starts_on=starts_on, time_of_day=time_of_day, tz_name=tz_name, after=after
        ),
        None,
    )


def next_n(
    text: str, *, starts_on: date, time_of_day: time, tz_name: str, after: datetime, n: int = 5
) -> list[datetime]:
    """Up to ``n`` occurrences after ``after`` (UTC)."""
    found = []
    for moment in occurrences(
        text, starts_on=starts_on, time_of_day=time_of_day, tz_name=tz_name, after=after
    ):
        found.append(moment)
        if len(found) == n:
            break
    return found


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _ordinal(n: int) -> str:
    """1 → "first", 22 → "22nd", -1 → "last", -2 → "second last"."""
    if n < 0:
        return "last" if n == -1 else f"{_ordinal(-n)} last"
    return _ORDINALS.get(n) or str(ordinal(n))


def _weekday(wd: object) -> str:
    name = _DAYS[wd.weekday]  # type: ignore[attr-defined]
    n = getattr(wd, "n", None)
    if n:
        return f"the {_ordinal(n)} {name}"
    return name


def describe(text: str, *, starts_on: date, time_of_day: time, tz_name: str) -> str:
    """The rule in words: "every 3 months on the first Monday at 09:00 Europe/Oslo".

    Covers FREQ, INTERVAL, BYDAY (with ordinals), BYMONTHDAY, BYMONTH, COUNT and
    UNTIL; other parts are appended as the rule's own text.
    """
    rule = parse(text, starts_on=starts_on, time_of_day=time_of_day, tz_name=tz_name)
    unit = _FREQS[rule._freq]
    interval = rule._interval
    words = [f"every {unit}" if interval == 1 else f"every {interval} {unit}s"]
    upper = _normalise(text).upper()
    if "BYMONTH=" in upper and rule._bymonth:
        words.append("in " + _join([_MONTHS[m - 1] for m in sorted(rule._bymonth)]))
    days = []
    if "BYDAY=" in upper:
        for wd in rule._byweekday or ():
            days.append(_DAYS[wd])
        for wd, n in rule._bynweekday or ():
            days.append(f"the {_ordinal(n)} {_DAYS[wd]}")
    if days:
        words.append("on " + _join(days))
    if "BYMONTHDAY=" in upper:
        monthdays = sorted(rule._bymonthday) + sorted(rule._bynmonthday)
        words.append("on day " + _join([_ordinal(d) if d < 0 else str(d) for d in monthdays]))
    for part in upper.split(";"):
        if part.partition("=")[0] in _UNDESCRIBED_PARTS:
            words.append(part)
    words.append(f"at {time_of_day:%H:%M} {tz_name}")
    if rule._count:
        words.append(f"{rule._count} times")
    if rule._until:
        words.append(f"until {rule._until:%Y-%m-%d}")
    words.append(f"from {starts_on:%Y-%m-%d}")
    return " ".join(words)
