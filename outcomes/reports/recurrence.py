"""Review dates from an RFC 5545 recurrence rule, in a time zone.

The rule's occurrences are computed by dateutil.rrule on *local wall-clock* datetimes
(DTSTART = ``starts_on`` at ``time_of_day``) and only then placed in the time zone, so a
review at 09:00 Europe/Oslo is at 09:00 local before and after each DST change (07:00
or 08:00 UTC). No date arithmetic is written here: every date comes from the rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr
from django.core.exceptions import ValidationError

# Parts that would say something the schedule's own fields say (the start, the time).
_REFUSED_PARTS = ("DTSTART", "BYHOUR", "BYMINUTE", "BYSECOND", "BYSETPOS=", "BYEASTER")
_FREQS = {YEARLY: "year", MONTHLY: "month", WEEKLY: "week", DAILY: "day"}
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
]  # fmt: skip
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}
MAX_RULE_LENGTH = 500


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ValidationError when there is none."""
    if not name or name not in available_timezones():
        raise ValidationError({"timezone": f"{name!r} is not an IANA time zone name."})
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:  # pragma: no cover - listed above
        raise ValidationError({"timezone": f"{name!r} is not an IANA time zone name."}) from e


def _normalise(text: str) -> str:
    text = (text or "").strip()
    return text[len("RRULE:") :] if text.upper().startswith("RRULE:") else text


def parse(text: str, *, starts_on: date, time_of_day: time) -> rrule:
    """The dateutil rule for an RRULE value, anchored at local ``starts_on time_of_day``
    (naive). Raises ValidationError (key ``rrule``) for an unreadable rule, one more
    frequent than daily, one that sets the time itself, or one with no occurrence.
    """
    value = _normalise(text)
    if not value or len(value) > MAX_RULE_LENGTH:
        raise ValidationError({"rrule": "Enter a recurrence rule such as FREQ=MONTHLY;BYDAY=1MO."})
    upper = value.upper()
    for part in _REFUSED_PARTS:
        if part in upper:
            name = part.rstrip("=").lower()
            raise ValidationError(
                {"rrule": f"Leave {name} out: the start date and time are set apart."}
            )
    if "\n" in value or not upper.startswith("FREQ=") and ";FREQ=" not in upper:
        raise ValidationError({"rrule": "A rule needs FREQ (e.g. FREQ=WEEKLY;INTERVAL=2)."})
    start = datetime.combine(starts_on, time_of_day.replace(tzinfo=None, microsecond=0))
    try:
        rule = rrulestr(value, dtstart=start)
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise ValidationError({"rrule": f"The rule cannot be read: {e}"}) from None
    if not isinstance(rule, rrule) or rule._freq not in _FREQS:
        raise ValidationError({"rrule": "Reviews recur daily at most: use FREQ=DAILY or rarer."})
    if rule._until is not None and rule._until.tzinfo is not None:
        # An UNTIL in UTC (…Z) against a local DTSTART: compare as local wall time.
        rule = rule.replace(until=rule._until.replace(tzinfo=None))
    if rule.after(start, inc=True) is None:
        raise ValidationError({"rrule": "The rule has no date on or after the start."})
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
    rule = parse(text, starts_on=starts_on, time_of_day=time_of_day)
    local_after = after.astimezone(tz).replace(tzinfo=None)
    for local in rule.xafter(local_after, inc=False):
        moment = _aware(local, tz)
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


def _weekday(wd: object) -> str:
    name = _DAYS[wd.weekday]  # type: ignore[attr-defined]
    n = getattr(wd, "n", None)
    if n:
        return f"the {_ORDINALS.get(n, f'{n}th')} {name}"
    return name


def describe(text: str, *, starts_on: date, time_of_day: time, tz_name: str) -> str:
    """The rule in words: "every 3 months on the first Monday at 09:00 Europe/Oslo".

    Covers FREQ, INTERVAL, BYDAY (with ordinals), BYMONTHDAY, BYMONTH, COUNT and
    UNTIL; other parts are appended as the rule's own text.
    """
    rule = parse(text, starts_on=starts_on, time_of_day=time_of_day)
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
            days.append(f"the {_ORDINALS.get(n, f'{n}th')} {_DAYS[wd]}")
    if days:
        words.append("on " + _join(days))
    if "BYMONTHDAY=" in upper:
        monthdays = sorted(rule._bymonthday) + sorted(rule._bynmonthday)
        words.append("on day " + _join(["last" if d == -1 else str(d) for d in monthdays]))
    words.append(f"at {time_of_day:%H:%M} {tz_name}")
    if rule._count:
        words.append(f"{rule._count} times")
    if rule._until:
        words.append(f"until {rule._until:%Y-%m-%d}")
    words.append(f"from {starts_on:%Y-%m-%d}")
    return " ".join(words)
