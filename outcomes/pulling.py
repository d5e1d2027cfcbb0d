"""The pull path, shared by every connector (DESIGN.md §4).

Schedule → claim → fetch → validate → upsert → PullRun and health → queue evaluation.

- The database is the schedule: each metric has `next_pull_at`; beat claims due
  metrics with a conditional UPDATE and queues one task per claimed metric.
- A claim (`claimed_at`) lasts until the pull finishes, retries included. A claim older
  than PULL_STUCK_AFTER belongs to a pull whose worker died: the sweeper queues it again.
- Observations are upserted on (metric, period_start), so pulling or pushing a period
  twice leaves one row; a failed pull writes no observation at all.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError
from dateutil.parser import isoparse
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, Max, OuterRef, QuerySet
from django.utils import timezone

from outcomes import connectors
from outcomes.connectors import FetchRequest, PullError, RawPoint, TransientPullError
from outcomes.connectors.base import NON_FINITE_WORDS as _NON_FINITE_WORDS
from outcomes.connectors.base import describe_raw
from outcomes.credentials import CredentialsUnreadable, credentials_decrypt, holds_secret, redact
from outcomes.models import (
    LONGEST_INTERVAL,
    MAX_ABS_VALUE,
    RECENT_VALUES,
    Granularity,
    Measure,
    Metric,
    Observation,
    PullRun,
    PullStatus,
    PullTrigger,
    SourceKind,
)
from outcomes.reports.recurrence import is_iana_zone

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNIX_TIME_RANGE = (946_684_800, 4_102_444_800)  # 2000-01-01 to 2100-01-01
# Years a period may fall in. Far outside, an offset or a time zone takes a datetime
# past Python's year 1..9999 (year 1 at +01:00 is year 0 in UTC): refused, not a 500.
PERIOD_YEARS = (1900, 9999)
# metric.options["period_unit"]: what a number given as a period counts (default "s").
PERIOD_UNITS = {"s": 1, "ms": 1000}
LONGEST_SCHEDULE = LONGEST_INTERVAL
GRANULARITY_SECONDS = {
    Granularity.MINUTE: 60,
    Granularity.HOUR: 3600,
    Granularity.DAY: 86_400,
    Granularity.WEEK: 7 * 86_400,
    Granularity.MONTH: 30 * 86_400,
}
# The first pull of a metric asks for at most this much history.
FIRST_PULL_LOOKBACK = timedelta(days=365)


@dataclass(frozen=True)
class Point:
    period_start: datetime  # aware, UTC, the start of the metric's period
    value: float


class PointError(PullError):
    """One point of a batch is unusable; `index` says which (0-based).

    `detail` may quote the value (the sender sees it; a pull's editors see it in `full`);
    `shown`, for everyone else, only describes its shape.
    """

    def __init__(self, index: int, detail: str, *, shown: str | None = None) -> None:
        super().__init__(
            f"Value {index + 1}: {shown or detail}", full=f"Value {index + 1}: {detail}"
        )
        self.index = index
        self.detail = detail
        self.shown = shown


# A decimal number in ASCII: sign, digits with an optional fraction, optional exponent.
_DECIMAL_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


# --- Periods and values ---------------------------------------------------------------


def metric_zone(metric: Metric) -> ZoneInfo:
    return ZoneInfo(metric.timezone)


def period_start(moment: datetime, granularity: str, zone: ZoneInfo) -> datetime:
    """The start (in UTC) of the period holding `moment`, with periods cut in `zone`."""
    local = moment.astimezone(zone)
    if granularity == Granularity.MINUTE:
        start = local.replace(second=0, microsecond=0)
    elif granularity == Granularity.HOUR:
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        day = local.date()
        if granularity == Granularity.WEEK:
            day -= timedelta(days=day.weekday())
        elif granularity == Granularity.MONTH:
            day = day.replace(day=1)
        start = datetime.combine(day, dt_time(0), tzinfo=zone)
    return start.astimezone(UTC)


def parse_value(raw: Any) -> float:
    """A finite float, or ValueError with a message a user can act on."""
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"{raw!r} is not a number.")
    if isinstance(raw, int | float | Decimal):
        try:
            value = float(raw)
        except OverflowError:
            raise ValueError("the number is too large.") from None
    elif isinstance(raw, str):
        text = raw.strip()
        # float() also takes "1_000" and digits of any script ("١٢٣"): a value that
        # means one thing to Python and perhaps another to whoever sent it is refused.
        if not (_DECIMAL_NUMBER.fullmatch(text) or text.lower().lstrip("+-") in _NON_FINITE_WORDS):
            raise ValueError(f"{raw[:50]!r} is not a number.")
        value = float(text)
    else:
        raise ValueError(f"a {type(raw).__name__} is not a number.")
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number (NaN and infinity are refused).")
    if abs(value) > MAX_ABS_VALUE:
        # Every digit it has: as "%g" 1000000100000000 read "1e+15 is beyond ±1e+15".
        raise ValueError(
            f"{value!r} is beyond ±{MAX_ABS_VALUE:g}, the largest value a metric holds."
        )
    return value


def parse_period(raw: Any, zone: ZoneInfo, *, unit: str = "s") -> datetime:
    """An aware datetime from a datetime, a date, ISO 8601 text or a Unix time.

    ISO 8601 in every precision (python-dateutil's ``isoparse``): ``2026`` (the year's
    first day), ``2026-09``, ``2026-W36`` (the ISO week's Monday), ``2026-W36-2``,
    ``2026-245`` (ordinal day), dates, and times with or without an offset (``Z``,
    ``+02:00``); a time without one is in the metric's zone. A number (or text that
    is one) is a Unix time in ``unit`` — seconds, or milliseconds where the metric's
    ``options.period_unit`` is ``"ms"`` — between 2000 and 2100. Anything outside the
    years PERIOD_YEARS is a ValueError, so no zone arithmetic can overflow.
    """
    if isinstance(raw, datetime):
        if not PERIOD_YEARS[0] <= raw.year < PERIOD_YEARS[1]:
            raise ValueError(
                f"period {raw.isoformat()} is outside the years {PERIOD_YEARS[0]} to "
                f"{PERIOD_YEARS[1] - 1}."
            )
        return raw if raw.tzinfo else raw.replace(tzinfo=zone)
    if isinstance(raw, date):
        return parse_period(datetime.combine(raw, dt_time(0)), zone)
    if isinstance(raw, int | float | Decimal) and not isinstance(raw, bool):
        try:
            seconds = float(raw) / PERIOD_UNITS[unit]
        except (OverflowError, ValueError):
            seconds = math.nan
        # A number is a Unix time only where one is plausible: 20240101 (a date key)
        # or 2024 (a year) would otherwise be filed under 1970 without a word.
        if not UNIX_TIME_RANGE[0] <= seconds <= UNIX_TIME_RANGE[1]:
            unit_name = "Unix timestamp in milliseconds" if unit == "ms" else "Unix timestamp"
            raise ValueError(
                f"period {str(raw)[:50]!r} is not a {unit_name} between 2000 and 2100; "
                "give a date such as 2026-03-01."
            )
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(raw, str):
        text = raw.strip()
        # Only ASCII decimal text is a number here, as for values (parse_value):
        # float() also reads "1_767_225_600" and digits of any script.
        if _DECIMAL_NUMBER.fullmatch(text) and not _looks_like_a_year_or_date(text):
            number = float(text)
            if math.isfinite(number):
                return parse_period(number, zone, unit=unit)
        try:
            parsed = isoparse(text)
        except (ValueError, OverflowError):
            raise ValueError(
                f"period {raw[:50]!r} is not a date, an ISO 8601 time or a Unix timestamp."
            ) from None
        week = _ISO_WEEK.match(text)
        if week:
            # isoparse reads week 53 of a year of 52 weeks as next year's first week.
            year, number = int(week[1]), int(week[2])
            weeks = date(year, 12, 28).isocalendar().week
            if number > weeks:
                raise ValueError(
                    f"period {raw[:50]!r}: {year} has {weeks} ISO weeks, not {number}."
                )
        return parse_period(parsed, zone)
    raise ValueError(f"period {raw!r} is not a date, an ISO 8601 time or a Unix timestamp.")


_ISO_WEEK = re.compile(r"([0-9]{4})-?W([0-9]{2})")


def _looks_like_a_year_or_date(text: str) -> bool:
    # "2026" is the year and "20260901" the day in ISO 8601, not seconds after 1970.
    return text.isascii() and text.isdigit() and len(text) in (4, 8)


def is_non_finite(raw: Any) -> bool:
    """Whether a raw value is NaN or ±infinity: Prometheus's "NaN", "+Inf", "-Inf"
    (a stale series, a division by zero), or such a float."""
    if isinstance(raw, bool) or not isinstance(raw, str | float | int | Decimal):
        return False
    try:
        return not math.isfinite(float(raw.strip() if isinstance(raw, str) else raw))
    except (ValueError, OverflowError):
        return isinstance(raw, int | Decimal)  # too large for a float: infinite


def series_points_validate(
    raw_points: Sequence[RawPoint], *, metric: Metric, now: datetime
) -> tuple[list[Point], int]:
    """The samples of a series answer (a range query) as points, with the NaN and
    infinite samples skipped, and how many were skipped.

    A sample that is not a number at all is still an error: a NaN step means "no value
    at this time" in Prometheus; text where a number should be means a wrong query.
    All samples skipped is no error: the pull succeeds with nothing written.
    """
    kept = [(index, point) for index, point in enumerate(raw_points) if not is_non_finite(point[1])]
    skipped = len(raw_points) - len(kept)
    if not kept and skipped:
        return [], skipped
    try:
        points = points_validate(
            [point for _, point in kept], metric=metric, now=now, keep_last=True
        )
    except PointError as error:
        raise PointError(kept[error.index][0], error.detail, shown=error.shown) from None
    return points, skipped


def points_validate(
    raw_points: Sequence[RawPoint], *, metric: Metric, now: datetime, keep_last: bool = False
) -> list[Point]:
    """Numbers and periods from raw points; PointError/PullError for anything unusable.

    A point without a period is the current value. Periods are cut to the metric's
    granularity; a future period or too many points are errors, and so are two values in
    one period, unless `keep_last` (samples of a range query: the last one stands).
    """
    if not raw_points:
        raise PullError("The source returned no values.")
    limit = settings.METRICS_MAX_POINTS
    if len(raw_points) > limit:
        raise PullError(
            f"The source returned {len(raw_points):,} values; at most {limit:,} are taken "
            "at once (METRICS_MAX_POINTS). Narrow the query with :since / :until or a step."
        )
    zone = metric_zone(metric)
    unit = metric.options.get("period_unit", "s") if isinstance(metric.options, dict) else "s"
    current = period_start(now, metric.granularity, zone)
    points: dict[datetime, Point] = {}
    for index, (raw_period, raw_value) in enumerate(raw_points):
        try:
            value = parse_value(raw_value)
        except ValueError as error:
            shown = f"the value ({describe_raw(raw_value)}) is not a finite number."
            raise PointError(index, str(error), shown=shown) from None
        try:
            moment = now if raw_period is None else parse_period(raw_period, zone, unit=unit)
        except ValueError as error:
            shown = (
                f"the period ({describe_raw(raw_period)}) is not a date or an ISO 8601 "
                "time (2026, 2026-09, 2026-W36, 2026-09-01T08:00+02:00), or a Unix "
                "timestamp where the metric says so, between 1900 and 9999."
            )
            raise PointError(index, str(error), shown=shown) from None
        start = period_start(moment, metric.granularity, zone)
        if start > current:
            raise PointError(index, f"period {start:%Y-%m-%d %H:%M} UTC is in the future.")
        if start in points and not keep_last:
            raise PointError(
                index,
                f"a second value for the period starting {start:%Y-%m-%d %H:%M} UTC "
                f"(the metric's granularity is one {metric.granularity}).",
            )
        points[start] = Point(start, value)
    return sorted(points.values(), key=lambda point: point.period_start)


# --- Schedule -------------------------------------------------------------------------


def schedule_validate(
    *, interval: timedelta | None, cron: str, zone_name: str, pulled: bool
) -> None:
    errors: dict[str, str] = {}
    # The IANA names, as the review schedule takes them: ZoneInfo also loads any file
    # under the host's zoneinfo folder ("posixrules", "right/UTC" with leap seconds,
    # "localtime"), which another host may lack or hold otherwise.
    if not is_iana_zone(zone_name):
        errors["timezone"] = f"Unknown time zone {zone_name!r}; use an IANA name like Europe/Paris."
    if not pulled:
        if interval or cron:
            errors["schedule_interval"] = "A push metric has no schedule: values are sent to it."
    elif interval and cron:
        errors["schedule_cron"] = "Give an interval or a cron expression, not both."
    elif not interval and not cron:
        errors["schedule_interval"] = "A pulled metric needs an interval or a cron expression."
    elif interval and interval < timedelta(minutes=1):
        errors["schedule_interval"] = "The shortest interval is one minute."
    elif interval and interval > LONGEST_SCHEDULE:
        errors["schedule_interval"] = "The longest interval is 366 days."
    elif cron and len(cron.split()) != 5:
        errors["schedule_cron"] = (
            "A cron expression has five fields: minute hour day-of-month month weekday."
        )
    elif cron:
        try:
            CronSim(cron, timezone.now())
        except CronSimError as error:
            errors["schedule_cron"] = f"Not a valid cron expression: {error}"
    if errors:
        raise ValidationError(errors)


def next_pull_after(metric: Metric, moment: datetime) -> datetime | None:
    """The first scheduled pull strictly after `moment` (None for push metrics)."""
    if metric.schedule_interval:
        step = metric.schedule_interval.total_seconds()
        # Aligned to the epoch, so "every hour" pulls on the hour, whoever claims it.
        slots = math.floor((moment - EPOCH).total_seconds() / step) + 1
        return EPOCH + timedelta(seconds=slots * step)
    if metric.schedule_cron:
        return next(CronSim(metric.schedule_cron, moment.astimezone(metric_zone(metric))))
    return None


def metrics_claim_due(
    *, now: datetime | None = None, limit: int = 5000, among: QuerySet[Metric] | None = None
) -> list[int]:
    """Claim the metrics that are due (of `among`, default all), one conditional UPDATE
    each; the ids claimed.

    Two beats (or a beat and a slow one) cannot both claim a metric: the UPDATE only
    matches while the metric is unclaimed and still due at the time that was read.
    """
    now = now or timezone.now()
    due = (
        (Metric.objects.all() if among is None else among)
        .filter(is_active=True, claimed_at__isnull=True, next_pull_at__lte=now)
        .exclude(source__kind=SourceKind.PUSH)
        .order_by("next_pull_at")
        .only("id", "next_pull_at", "schedule_interval", "schedule_cron", "timezone")[:limit]
    )
    claimed = []
    for metric in due:
        changed = Metric.objects.filter(
            pk=metric.pk, claimed_at__isnull=True, next_pull_at=metric.next_pull_at
        ).update(claimed_at=now, next_pull_at=next_pull_after(metric, now))
        if changed:
            claimed.append(metric.pk)
    return claimed


def metric_claim(*, metric: Metric, now: datetime | None = None) -> bool:
    """Claim one metric for a pull now; False when a pull is already queued or running."""
    if metric.source.kind == SourceKind.PUSH:
        raise ValidationError("A push metric is not pulled: send values to it instead.")
    now = now or timezone.now()
    return bool(Metric.objects.filter(pk=metric.pk, claimed_at__isnull=True).update(claimed_at=now))


def metric_pull_now(*, metric: Metric, user: Any = None) -> bool:
    """Queue a pull of one metric, asked for by `user`, after the current transaction
    commits; False when a pull is already queued or running.

    The schedule moves on with it: the next scheduled pull is the first slot after now,
    not the (perhaps overdue) one this pull makes pointless.
    """
    from outcomes import tasks

    if metric.source.kind == SourceKind.PUSH:
        raise ValidationError("A push metric is not pulled: send values to it instead.")
    now = timezone.now()
    claimed = Metric.objects.filter(pk=metric.pk, claimed_at__isnull=True).update(
        claimed_at=now, next_pull_at=next_pull_after(metric, now)
    )
    if not claimed:
        return False
    user_id = user.pk if getattr(user, "is_authenticated", False) else None
    transaction.on_commit(lambda: tasks.pull_metric.delay(metric.pk, PullTrigger.MANUAL, user_id))
    return True


def metrics_sweep_stuck(*, now: datetime | None = None) -> list[int]:
    """Re-claim metrics whose pull never finished; the ids to queue again.

    Their running PullRuns are closed as abandoned, so the history says what happened.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PULL_STUCK_AFTER)
    PullRun.objects.filter(status=PullStatus.RUNNING, started_at__lt=cutoff).update(
        status=PullStatus.ABANDONED,
        finished_at=now,
        error="The worker stopped before this pull finished; the pull was queued again.",
    )
    requeued = []
    for metric_id, claimed_at in Metric.objects.filter(claimed_at__lt=cutoff).values_list(
        "id", "claimed_at"
    ):
        if Metric.objects.filter(pk=metric_id, claimed_at=claimed_at).update(claimed_at=now):
            requeued.append(metric_id)
    return requeued


# --- Pulling --------------------------------------------------------------------------


def fetch_request(
    metric: Metric, credentials: dict[str, Any], now: datetime, *, window: bool = True
) -> FetchRequest:
    """What a connector gets. `since` is the newest stored period (it may still be
    filling) or, on a first pull, the lookback; connectors that ignore the window
    (`uses_window = False`) are spared the query."""
    latest = None
    step = GRANULARITY_SECONDS[Granularity(metric.granularity)]
    if window:
        latest = metric.observations.aggregate(latest=Max("period_start"))["latest"]
        if (
            metric.last_success_at is not None
            and connectors.get(metric.source.kind).samples_periods
        ):
            # Samples that were skipped (NaN) store nothing: without this the window
            # would start again at the newest stored period on every pull, however
            # far the source has moved on. The last success, one step back, is as far
            # as the source has been read.
            read_up_to = metric.last_success_at - timedelta(seconds=step)
            latest = max(latest, read_up_to) if latest else read_up_to
    lookback = min(FIRST_PULL_LOOKBACK, timedelta(seconds=step * 1000))
    return FetchRequest(
        config=metric.source.config,
        credentials=credentials,
        query=metric.query,
        options=metric.options,
        since=latest or now - lookback,
        until=now,
        step_seconds=step,
        timeout=float(settings.METRICS_FETCH_TIMEOUT),
        max_bytes=settings.METRICS_MAX_RESPONSE_BYTES,
        extra={"max_points": settings.METRICS_MAX_POINTS},
    )


def metric_pull(
    *,
    metric_id: int,
    trigger: str,
    attempt: int = 1,
    final_attempt: bool = True,
    user_id: int | None = None,
) -> PullRun | None:
    """Pull one claimed metric: a PullRun row whatever happens, observations on success.

    Returns None when there is nothing to do (the metric is gone, or no longer claimed
    because this message was delivered twice and the first delivery finished). Raises
    TransientPullError, after recording the failed attempt, when a retry may help and
    this is not the final attempt; the claim is then kept for the retry.
    """
    metric = (
        Metric.objects.select_related("source")
        .annotate(has_measures=Exists(Measure.objects.filter(metric=OuterRef("pk"))))
        .filter(pk=metric_id)
        .first()
    )
    if metric is None or metric.claimed_at is None:
        return None
    now = timezone.now()
    run = PullRun.objects.create(
        metric=metric, trigger=trigger, attempt=attempt, started_at=now, user_id=user_id
    )
    started = time.monotonic()
    credentials: dict[str, Any] = {}
    try:
        try:
            credentials = credentials_decrypt(metric.source.credentials_encrypted)
        except CredentialsUnreadable as error:
            raise PullError(str(error)) from None
        connector = connectors.get(metric.source.kind)
        request = fetch_request(metric, credentials, now, window=connector.uses_window)
        raw_points = connector.fetch(request)
        echoable = credentials.get("headers")  # what an HTTP endpoint can send back
        if echoable and holds_secret(_raw_texts(raw_points), [echoable]):
            # An endpoint that echoes the request: a credential made of digits is a
            # valid number, which would be stored and charted for every reader. (A SQL
            # password is not readable by a query: not checked, so no false alarms.)
            raise PullError(
                "A value or period the source answered holds one of the source's "
                "credentials (does the address echo the request?); nothing was stored. "
                "Point the query at the metric's value."
            )
        skipped = 0
        if connector.samples_periods:
            points, skipped = series_points_validate(raw_points, metric=metric, now=now)
        else:
            points = points_validate(raw_points, metric=metric, now=now)
    except PullError as error:
        retry = isinstance(error, TransientPullError) and not final_attempt
        # Credentials never reach a PullRun, the metric's last error or a log line, in
        # any part or common encoding; `full` (for editors) is kept only when it says more.
        message = redact(str(error), [credentials])
        full = redact(error.full, [credentials])
        if retry:
            message += " It will be tried again."
            full += " It will be tried again."
        _pull_failed(metric, run, message, full if full != message else "", started, not retry)
        if retry:
            raise
        return run
    except BaseException:
        # A bug or a time limit, not the source's fault: close the run, then let the
        # worker log the traceback.
        _pull_failed(metric, run, "Unexpected error (see the worker log).", "", started, True)
        raise
    with transaction.atomic():
        written = observations_write(
            metric=metric,
            points=points,
            run=run,
            pulled_at=now,
            metric_fields={"claimed_at": None, **_success_health(now)},
        )
        _run_finish(
            run, PullStatus.SUCCEEDED, started, values_written=written, samples_skipped=skipped
        )
        if metric.has_measures:
            _queue_evaluation(metric.pk)
    return run


def _raw_texts(raw_points: Sequence[RawPoint]) -> Iterator[str]:
    """The text of each raw period and value that would be stored as a number (a value,
    or a Unix time): other text is refused by validation, whose messages are redacted."""
    for point in raw_points:
        for raw in point:
            if isinstance(raw, bool):
                continue
            if isinstance(raw, int | float | Decimal):
                yield str(raw)
            elif isinstance(raw, str) and _DECIMAL_NUMBER.fullmatch(raw.strip()):
                yield raw.strip()


def _run_finish(run: PullRun, status: str, started: float, **fields: Any) -> None:
    run.status = status
    run.finished_at = timezone.now()
    run.duration_ms = round((time.monotonic() - started) * 1000)
    for name, value in fields.items():
        setattr(run, name, value)
    run.save(
        update_fields=["status", "finished_at", "duration_ms", *fields],
    )


def _pull_failed(
    metric: Metric, run: PullRun, message: str, full: str, started: float, release_claim: bool
) -> None:
    """Record a failed attempt: `message` for every reader, `full` ("" when it says no
    more) for the source's editors. A NUL a source sent shows as ``\\x00``: PostgreSQL
    text cannot hold it, and failing to record a failure would hide it."""
    message, full = message.replace("\x00", "\\x00"), full.replace("\x00", "\\x00")
    with transaction.atomic():
        _run_finish(run, PullStatus.FAILED, started, error=message, error_detail=full)
        health: dict[str, Any] = {
            "last_failure_at": run.finished_at,
            "last_error": message,
            "last_error_detail": full,
        }
        if release_claim:
            # A pull fails once, however many attempts it took: retries are not failures.
            health["claimed_at"] = None
            health["consecutive_failures"] = F("consecutive_failures") + 1
        Metric.objects.filter(pk=metric.pk).update(**health)


def _success_health(now: datetime) -> dict[str, Any]:
    """The metric's health fields after values were stored at `now`."""
    return {
        "last_success_at": now,
        "consecutive_failures": 0,
        "last_error": "",
        "last_error_detail": "",
    }


def _queue_evaluation(metric_id: int) -> None:
    """After commit, queue an evaluation of the measures the metric feeds, with the time
    of the change (read after the commit), so that the worker skips it when a later
    evaluation already read the change (coalescing: evaluation.measures_evaluate).

    Which measures is read after the commit too, outside the write transaction: on the
    embedded SQLite every write transaction holds the one write lock, so what can run
    after it does (bench/push_profile.py)."""
    from outcomes import tasks

    def queue() -> None:
        changed_at = timezone.now()
        measure_ids = list(Measure.objects.filter(metric_id=metric_id).values_list("id", flat=True))
        if measure_ids:
            tasks.evaluate_measures.delay(measure_ids, changed_at.isoformat())

    transaction.on_commit(queue)


def observations_write(
    *,
    metric: Metric,
    points: Sequence[Point],
    run: PullRun | None,
    pulled_at: datetime,
    metric_fields: dict[str, Any] | None = None,
) -> int:
    """Upsert one row per (metric, period): a period pulled again gets the newer value.

    `metric_fields` are other Metric fields to set (its health after a pull or push),
    written in the same UPDATE as the recent values."""
    Observation.objects.bulk_create(
        [
            Observation(
                metric=metric,
                period_start=point.period_start,
                value=point.value,
                pulled_at=pulled_at,
                pull_run=run,
            )
            for point in points
        ],
        update_conflicts=True,
        unique_fields=["metric", "period_start"],
        update_fields=["value", "pulled_at", "pull_run"],
        batch_size=1000,
    )
    metric_recent_values_refresh(metric_id=metric.pk, **(metric_fields or {}))
    return len(points)


def metric_recent_values_refresh(*, metric_id: int, **metric_fields: Any) -> None:
    """Rewrite ``Metric.recent_values`` (the newest ``RECENT_VALUES`` values, oldest
    first) from the observations, stamp ``observations_changed_at`` (the key of the
    evaluation's cached fit), and write any other `metric_fields`: two queries, run
    with every write."""
    newest = (
        Observation.objects.filter(metric_id=metric_id)
        .order_by("-period_start")
        .values_list("value", flat=True)[:RECENT_VALUES]
    )
    Metric.objects.filter(pk=metric_id).update(
        recent_values=list(newest)[::-1], observations_changed_at=timezone.now(), **metric_fields
    )


# --- Pushing: the API, CSV uploads and check-ins --------------------------------------


def observations_push(
    *,
    metric: Metric,
    raw_points: Sequence[RawPoint],
    trigger: str = PullTrigger.PUSH,
    user: Any = None,
    describe: Any = None,
) -> PullRun:
    """Store values sent to a push metric, all or nothing, recorded as a PullRun.

    `describe(index)` names a point in error messages ("line 4", "observations[2]").
    The values are checked before the write transaction begins, which then holds only
    the four writes (run, values, the metric's recent values and health): on the
    embedded SQLite, concurrent pushes wait for one another's transaction.
    """
    if metric.source.kind != SourceKind.PUSH:
        raise ValidationError(
            f"This metric is pulled from its source ({metric.source.get_kind_display()}); "
            "values can only be sent to a metric of a push source."
        )
    limit = settings.METRICS_MAX_POINTS
    if len(raw_points) > limit:
        raise ValidationError(
            f"{len(raw_points):,} values at once; at most {limit:,} are taken "
            "(METRICS_MAX_POINTS): send them in parts."
        )
    now = timezone.now()
    try:
        points = points_validate(raw_points, metric=metric, now=now)
    except PointError as error:
        where = describe(error.index) if describe else f"Value {error.index + 1}"
        detail = error.detail[:1].upper() + error.detail[1:]
        raise ValidationError(f"{where}: {error.detail}" if where else detail) from None
    except PullError as error:
        raise ValidationError(str(error)) from None
    with transaction.atomic():
        run = PullRun.objects.create(
            metric=metric,
            trigger=trigger,
            status=PullStatus.SUCCEEDED,
            started_at=now,
            finished_at=now,
            duration_ms=0,
            values_written=len(points),
            user=user if getattr(user, "is_authenticated", False) else None,
        )
        observations_write(
            metric=metric, points=points, run=run, pulled_at=now, metric_fields=_success_health(now)
        )
        _queue_evaluation(metric.pk)
    return run


CSV_EMPTY_MESSAGE = "The file is empty; it needs a header line 'period,value'."


def csv_points(text: str) -> tuple[list[RawPoint], list[int]]:
    """Raw points from CSV text with a `period,value` header, and each point's line.
    ValidationError for text that is blank, a header without `period` and `value` (or
    naming one twice) or a line that does not fit it."""
    if not text or text.isspace():
        # Spaces and line breaks alone were read as a header naming neither column.
        raise ValidationError(CSV_EMPTY_MESSAGE)
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        return _csv_points(rows)
    except csv.Error as error:
        raise ValidationError(f"Line {rows.line_num}: not readable as CSV ({error}).") from None


def _csv_points(rows: Any) -> tuple[list[RawPoint], list[int]]:
    header = next(rows, None)
    if header is None:
        raise ValidationError(CSV_EMPTY_MESSAGE)
    names = [name.strip().lower() for name in header]
    if "period" not in names or "value" not in names:
        raise ValidationError(
            f"Line 1: the header must name the columns 'period' and 'value', got {', '.join(header)!r}."
        )
    for name in ("period", "value"):
        if names.count(name) > 1:
            # Of two `period` columns one would be taken without a word.
            raise ValidationError(f"Line 1: the header names the column {name!r} twice.")
    period_at, value_at = names.index("period"), names.index("value")
    points: list[RawPoint] = []
    lines: list[int] = []
    for row in rows:
        line = rows.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise ValidationError(f"Line {line}: {len(row)} columns, the header has {len(names)}.")
        points.append((row[period_at], row[value_at]))
        lines.append(line)
    if not points:
        raise ValidationError("The file has a header but no values.")
    return points, lines
