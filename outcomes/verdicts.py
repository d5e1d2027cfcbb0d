"""Verdict arithmetic: progress, status, forecast and roll-up as pure functions.

Nothing here touches the database: plain dataclasses go in and come out, so the rules
can be table-tested and property-tested, and an evaluation service can call them in
bulk. DESIGN.md §5.

Rules
=====

Progress (``progress``), a fraction in [0, 1]:

* ``increase``/``decrease``: (value − baseline) / (target − baseline), clamped. Above
  the target counts as 1, worse than the baseline as 0.
* ``at_least``/``at_most`` are thresholds to hold. A value that satisfies the threshold
  has progress 1. Otherwise, when the baseline does not satisfy it yet (the threshold is
  still to be reached), progress is the same fraction as for ``increase``/``decrease``;
  when the baseline already satisfies it (the threshold is to be kept), a breach has
  progress 0: there is no distance to travel, only a line to stay on the right side of.

Expected progress (``expected_progress``), on day *d*:

* 0 up to the baseline date, 1 from the target date, linear in days in between.
* A threshold whose baseline already satisfies it is expected to hold from the baseline
  date on (1 from then). A threshold still to be reached follows the linear trajectory,
  like ``increase``/``decrease``: expecting it to hold on day one would make every such
  measure off track the day it is set.

Status (``evaluate``) at moment *t* (aware; its day is ``t.date()`` in t's own zone),
from the latest observation whose period starts at or before *t*. Observations are
(period_start, value) pairs sorted by period; those after *t* are ignored, so past
verdicts can be recomputed, and values that are not finite are skipped. The verdict
uses a window, the last ``max_points`` usable observations up to *t* (the latest gives
the progress, all of them the forecast), and names it by position (``used_indexes``)
so a caller can store pointers to the observation rows.

1. No observation → ``no_data``.
2. ``increase``/``decrease``: progress 1 → ``achieved`` (even before the target date);
   else after the target date (the day after it on) → ``missed``; else the band below.
3. Thresholds: holding on or after the target date → ``achieved``; holding before it →
   ``on_track`` (it has to hold until then); not holding after the target date →
   ``missed``; else the band below.
4. Band: gap = expected progress − progress. gap ≤ ``on_track_within`` → ``on_track``;
   gap ≤ ``at_risk_within`` → ``at_risk``; else ``off_track`` (a 1e-9 slack absorbs
   float noise at the edges). Before the baseline date nothing is expected yet (gap ≤ 0),
   so a measure is ``on_track`` unless it is already ``achieved``.
5. Staleness: when the newest observation's period started more than
   ``expected_frequency`` before *t* (exactly equal is still fresh; measured from the
   period's start, so the frequency should allow for the period's length), the status is
   ``stale``; progress and the status the numbers give (``judged_status``) are still
   reported. Exception: after the target date, a verdict built on an observation whose
   period starts on or after the target date is final and never stale.

The status never depends on the forecast.

Forecast (``forecast``): Theil–Sen over the last ``FORECAST_MAX_POINTS`` observations
(time in days): slope = median of pairwise slopes, intercept = median of
value − slope × time. Scale of the noise σ = 1.4826 × MAD of the residuals (robust);
slope uncertainty from Sen's rank-based confidence interval for the slope (Kendall's
variance), turned into a standard error. Prediction at the target date:
sd² = σ²(1 + 1/n) + (x − median x)² × se(slope)²; the interval is the central 80 %
of a normal with that sd, and the probability of reaching the target is the normal
probability of being on the target's side (direction-aware; with sd 0 it is 0 or 1).
Fewer than 3 observations, or all in one period: no numbers, a reason instead.

Roll-up (``roll_up``): each verdict's status has a score (``STATUS_SCORE``: achieved 1,
on_track 0.75, at_risk 0.5, off_track 0.25, missed 0). A node's score is the weighted
mean of its children's scores and its own non-guardrail measures' scores; ``no_data``
and ``stale`` parts are left out. When every weight is 0 the parts count equally. A
guardrail never adds to the mean; one that is ``at_risk`` caps the node's score at 0.5,
one that is ``off_track`` or ``missed`` at 0.25 (a breached guardrail says "look", not
"this bet is over"). Only when nothing else is scored do guardrails form the mean, so
a node measured by guardrails alone still gets a status. The node's status is the band
of its score (``status_for_score``): 1 → achieved, ≥ 0.625 → on_track, ≥ 0.375 →
at_risk, > 0 → off_track, 0 → missed; so a node of identical children equals the child.
Nothing scored: ``stale`` if a part is stale, else ``no_data``.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import combinations, pairwise
from operator import itemgetter

INCREASE = "increase"
DECREASE = "decrease"
AT_LEAST = "at_least"
AT_MOST = "at_most"
DIRECTIONS = (INCREASE, DECREASE, AT_LEAST, AT_MOST)
THRESHOLDS = (AT_LEAST, AT_MOST)

ACHIEVED = "achieved"
ON_TRACK = "on_track"
AT_RISK = "at_risk"
OFF_TRACK = "off_track"
MISSED = "missed"
NO_DATA = "no_data"
STALE = "stale"
STATUSES = (ACHIEVED, ON_TRACK, AT_RISK, OFF_TRACK, MISSED, STALE, NO_DATA)

# Higher is better. Only statuses the numbers give are ranked: no_data and stale say
# nothing about the value.
STATUS_RANK = {MISSED: 0, OFF_TRACK: 1, AT_RISK: 2, ON_TRACK: 3, ACHIEVED: 4}
STATUS_SCORE = {status: rank / 4 for status, rank in STATUS_RANK.items()}
GUARDRAIL_CAP = {AT_RISK: STATUS_SCORE[AT_RISK], OFF_TRACK: STATUS_SCORE[OFF_TRACK]}
GUARDRAIL_CAP[MISSED] = GUARDRAIL_CAP[OFF_TRACK]

FORECAST_MIN_POINTS = 3
# The last 30 observations give 435 pairwise slopes: the trend follows recent
# behaviour, and 10,000 measures forecast in about a second.
FORECAST_MAX_POINTS = 12  # 66 slope pairs: robust enough, and 10,000 measures stay fast
FORECAST_LEVEL = 0.8

# Float noise allowed at band edges, so "exactly at the tolerance" is on the inner side.
_SLACK = 1e-9
_MAD_TO_SD = 1.4826
_NORMAL = statistics.NormalDist()
_Z = _NORMAL.inv_cdf(0.5 + FORECAST_LEVEL / 2)  # the interval's half-width in sds

ObservationPoint = tuple[datetime, float]


@dataclass(frozen=True, slots=True)
class MeasureSpec:
    direction: str
    baseline_value: float
    baseline_date: date
    target_value: float
    target_date: date
    is_guardrail: bool = False
    weight: float = 1.0
    # The newest observation's period may start at most this long before t.
    expected_frequency: timedelta | None = None

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"Unknown direction {self.direction!r}; use one of {DIRECTIONS}.")
        if not (math.isfinite(self.baseline_value) and math.isfinite(self.target_value)):
            raise ValueError("Baseline and target values must be finite numbers.")
        if self.target_date <= self.baseline_date:
            raise ValueError("The target date must be after the baseline date.")
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError("The weight must be a finite number ≥ 0.")
        if self.direction == INCREASE and self.target_value <= self.baseline_value:
            raise ValueError("An 'increase' measure needs a target above its baseline.")
        if self.direction == DECREASE and self.target_value >= self.baseline_value:
            raise ValueError("A 'decrease' measure needs a target below its baseline.")
        if self.expected_frequency is not None and self.expected_frequency <= timedelta(0):
            raise ValueError("The expected frequency must be positive.")

    @property
    def holds_from_baseline(self) -> bool:
        """A threshold the baseline already satisfies: to be kept, not reached."""
        return self.direction in THRESHOLDS and self.holds(self.baseline_value)

    def holds(self, value: float) -> bool:
        """Whether value is at or beyond the target, in the measure's direction."""
        if self.direction in (INCREASE, AT_LEAST):
            return value >= self.target_value
        return value <= self.target_value


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far actual progress may trail expected progress, per tree.

    Both are fractions of the baseline→target distance: gap = expected − actual
    progress; gap ≤ on_track_within is on track, ≤ at_risk_within at risk, else off track.
    """

    on_track_within: float = 0.05
    at_risk_within: float = 0.15

    def __post_init__(self) -> None:
        if not (0 <= self.on_track_within <= self.at_risk_within < math.inf):
            raise ValueError("Tolerances need 0 ≤ on_track_within ≤ at_risk_within.")


DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True, slots=True)
class Forecast:
    """The trend's value at a date, or the reason there is none (then no numbers)."""

    at: date
    observation_count: int
    value: float | None = None
    low: float | None = None
    high: float | None = None
    level: float = FORECAST_LEVEL
    probability: float | None = None
    slope_per_day: float | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str
    # The status the numbers give; differs from status only when that is stale.
    judged_status: str | None
    at: datetime
    progress: float | None
    expected_progress: float
    gap: float | None
    latest_value: float | None
    latest_period: datetime | None
    first_period: datetime | None
    # Positions in the caller's observation sequence this verdict used (the forecast's
    # window, which ends with the latest observation), ascending.
    used_indexes: tuple[int, ...]
    forecast: Forecast

    @property
    def observation_count(self) -> int:
        return len(self.used_indexes)


@dataclass(frozen=True, slots=True)
class NodeScore:
    status: str
    score: float | None  # 0–1; None when nothing below was scored
    weight: float = 1.0  # the node's weight within its parent

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Unknown status {self.status!r}.")
        if (self.score is None) != (self.status in (NO_DATA, STALE)):
            raise ValueError("A node has a score exactly when its status is not no_data/stale.")
        if self.score is not None and not 0 <= self.score <= 1:
            raise ValueError("A node's score is between 0 and 1.")
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError("The weight must be a finite number ≥ 0.")


def _clamp(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else x


def _fraction(value: float, start: float, end: float) -> float:
    """(value − start) / (end − start) for finite floats, without overflow to inf/inf."""
    span = end - start
    moved = value - start
    if math.isinf(span) or math.isinf(moved):
        span = end / 2 - start / 2
        moved = value / 2 - start / 2
    return moved / span


def progress(spec: MeasureSpec, value: float) -> float:
    """Direction-aware progress of value from baseline to target, in [0, 1]."""
    if not math.isfinite(value):
        raise ValueError("Progress needs a finite value.")
    if spec.direction in THRESHOLDS:
        if spec.holds(value):
            return 1.0
        if spec.holds_from_baseline:
            return 0.0
    return _clamp(_fraction(value, spec.baseline_value, spec.target_value))


def expected_progress(spec: MeasureSpec, day: date) -> float:
    """Progress planned for day: 0 to the baseline date, linear, 1 from the target date."""
    if day < spec.baseline_date:
        return 0.0
    if day >= spec.target_date or spec.holds_from_baseline:
        return 1.0
    return (day - spec.baseline_date).days / (spec.target_date - spec.baseline_date).days


def band(gap: float, tolerance: Tolerance = DEFAULT_TOLERANCE) -> str:
    """on_track, at_risk or off_track for a gap between expected and actual progress."""
    if gap <= tolerance.on_track_within + _SLACK:
        return ON_TRACK
    if gap <= tolerance.at_risk_within + _SLACK:
        return AT_RISK
    return OFF_TRACK


def judge(spec: MeasureSpec, value: float, day: date, tolerance: Tolerance) -> str:
    """The status a value gives on a day, staleness aside."""
    done = progress(spec, value)
    if spec.direction in THRESHOLDS:
        if spec.holds(value):
            return ACHIEVED if day >= spec.target_date else ON_TRACK
    elif done >= 1:
        return ACHIEVED
    if day > spec.target_date:
        return MISSED
    return band(expected_progress(spec, day) - done, tolerance)


def _window(
    observations: Sequence[ObservationPoint], until: datetime | None, max_points: int
) -> list[tuple[int, datetime, float]]:
    """(index, period, value) of the last max_points finite observations up to until.

    Only the window is read (bisect to until, then backwards), so long histories cost
    little; the window's order is checked.
    """
    if max_points < FORECAST_MIN_POINTS:
        raise ValueError(f"max_points must be at least {FORECAST_MIN_POINTS}.")
    end = len(observations)
    if until is not None:
        end = bisect_right(observations, until, key=itemgetter(0))
    window = []
    for index in range(end - 1, -1, -1):
        period, value = observations[index]
        if math.isfinite(value):
            window.append((index, period, value))
            if len(window) == max_points:
                break
    window.reverse()
    if any(later[1] < earlier[1] for earlier, later in pairwise(window)):
        raise ValueError("Observations must be sorted by period.")
    return window


def evaluate(
    spec: MeasureSpec,
    observations: Sequence[ObservationPoint],
    t: datetime,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    *,
    max_points: int = FORECAST_MAX_POINTS,
) -> Verdict:
    """The verdict on a measure at moment t (aware) from its observations (sorted)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("Evaluate at an aware datetime.")
    day = t.date()
    expected = expected_progress(spec, day)
    window = _window(observations, t, max_points)
    periods = [period for _, period, _ in window]
    values = [value for _, _, value in window]
    fitted = _forecast(spec, periods, values, spec.target_date)
    if not window:
        return Verdict(
            status=NO_DATA,
            judged_status=None,
            at=t,
            progress=None,
            expected_progress=expected,
            gap=None,
            latest_value=None,
            latest_period=None,
            first_period=None,
            used_indexes=(),
            forecast=fitted,
        )
    latest_period, latest_value = periods[-1], values[-1]
    done = progress(spec, latest_value)
    judged = judge(spec, latest_value, day, tolerance)
    final = day > spec.target_date and latest_period.date() >= spec.target_date
    stale = (
        spec.expected_frequency is not None
        and not final
        and t - latest_period > spec.expected_frequency
    )
    return Verdict(
        status=STALE if stale else judged,
        judged_status=judged,
        at=t,
        progress=done,
        expected_progress=expected,
        gap=expected - done,
        latest_value=latest_value,
        latest_period=latest_period,
        first_period=periods[0],
        used_indexes=tuple(index for index, _, _ in window),
        forecast=fitted,
    )


def forecast(
    spec: MeasureSpec,
    observations: Sequence[ObservationPoint],
    *,
    at: date,
    max_points: int = FORECAST_MAX_POINTS,
) -> Forecast:
    """The value at date at by a Theil–Sen trend of the last max_points observations."""
    window = _window(observations, None, max_points)
    return _forecast(spec, [p for _, p, _ in window], [v for _, _, v in window], at)


def _median_sorted(xs: list[float]) -> float:
    n = len(xs)
    middle = n // 2
    return xs[middle] if n % 2 else (xs[middle - 1] + xs[middle]) / 2


def _forecast(
    spec: MeasureSpec, periods: list[datetime], values: list[float], at: date
) -> Forecast:
    n = len(values)
    if n < FORECAST_MIN_POINTS:
        return Forecast(
            at=at,
            observation_count=n,
            reason=f"too few observations ({n}; {FORECAST_MIN_POINTS} needed)",
        )
    origin = periods[0]
    xs = [(period - origin).total_seconds() / 86400 for period in periods]
    slopes = [
        (y1 - y0) / (x1 - x0)
        for (x0, y0), (x1, y1) in combinations(zip(xs, values, strict=True), 2)
        if x1 != x0
    ]
    slopes.sort()
    if not slopes:
        return Forecast(at=at, observation_count=n, reason="all observations are in one period")
    slope = _median_sorted(slopes)
    residuals = sorted(y - slope * x for x, y in zip(xs, values, strict=True))
    intercept = _median_sorted(residuals)
    sigma = _MAD_TO_SD * statistics.median(abs(r - intercept) for r in residuals)

    # Sen (1968): the slope's confidence interval runs between the sorted pairwise
    # slopes at ranks (N ∓ C)/2, C = z·sqrt(var of Kendall's S); read back as a
    # standard error so it can widen the prediction with distance in time.
    z = _Z
    pairs = len(slopes)
    spread = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    lower = slopes[max(0, math.floor((pairs - spread) / 2) - 1)]
    upper = slopes[min(pairs - 1, math.ceil((pairs + spread) / 2))]
    slope_se = (upper - lower) / (2 * z)

    target_x = (
        datetime.combine(at, time.min, tzinfo=periods[-1].tzinfo) - origin
    ).total_seconds() / 86400
    value = intercept + slope * target_x
    centre = statistics.median(xs)
    sd = math.hypot(sigma * math.sqrt(1 + 1 / n), (target_x - centre) * slope_se)
    if not (math.isfinite(value) and math.isfinite(sd)):
        return Forecast(at=at, observation_count=n, reason="values too large to fit a trend")
    reaches = spec.direction in (INCREASE, AT_LEAST)
    if sd > 0:
        below = _NORMAL.cdf((spec.target_value - value) / sd)
        probability = 1 - below if reaches else below
    else:
        on_target = math.isclose(value, spec.target_value, rel_tol=1e-9, abs_tol=1e-9)
        probability = 1.0 if on_target or spec.holds(value) else 0.0
    return Forecast(
        at=at,
        observation_count=n,
        value=value,
        low=value - z * sd,
        high=value + z * sd,
        probability=probability,
        slope_per_day=slope,
    )


def status_for_score(score: float) -> str:
    """The status band of a roll-up score; each status's own score maps back to it."""
    if score >= 1 - _SLACK:
        return ACHIEVED
    if score >= 0.625:
        return ON_TRACK
    if score >= 0.375:
        return AT_RISK
    if score > _SLACK:
        return OFF_TRACK
    return MISSED


def _weighted_mean(parts: list[tuple[float, float]]) -> float:
    total = math.fsum(weight for weight, _ in parts)
    if total > 0:
        mean = math.fsum(weight * score for weight, score in parts) / total
    else:
        mean = math.fsum(score for _, score in parts) / len(parts)
    # A mean lies between its parts; clamping removes rounding, so equal parts give
    # exactly their score back.
    scores = [score for _, score in parts]
    return min(max(mean, min(scores)), max(scores))


def roll_up(
    children: Sequence[NodeScore],
    own_measures: Sequence[tuple[Verdict, MeasureSpec]],
    *,
    weight: float = 1.0,
) -> NodeScore:
    """A node's status and score from its children and its own measures, by weight."""
    parts: list[tuple[float, float]] = []
    guardrail_parts: list[tuple[float, float]] = []
    caps: list[float] = []
    saw_stale = False
    for child in children:
        if child.score is None:
            saw_stale = saw_stale or child.status == STALE
        else:
            parts.append((child.weight, child.score))
    for verdict, spec in own_measures:
        if verdict.status in (NO_DATA, STALE):
            saw_stale = saw_stale or verdict.status == STALE
            continue
        part = (spec.weight, STATUS_SCORE[verdict.status])
        if spec.is_guardrail:
            guardrail_parts.append(part)
            if verdict.status in GUARDRAIL_CAP:
                caps.append(GUARDRAIL_CAP[verdict.status])
        else:
            parts.append(part)
    parts = parts or guardrail_parts
    if not parts:
        return NodeScore(status=STALE if saw_stale else NO_DATA, score=None, weight=weight)
    score = min([_weighted_mean(parts), *caps])
    return NodeScore(status=status_for_score(score), score=score, weight=weight)


def realised_value(
    expected_value: float | Decimal | None, delivered_fraction: float | None
) -> float | Decimal | None:
    """Expected value × delivered fraction (clamped to [0, 1]); None when either is unknown."""
    if expected_value is None or delivered_fraction is None:
        return None
    if not math.isfinite(delivered_fraction):
        raise ValueError("The delivered fraction must be a finite number.")
    fraction = _clamp(delivered_fraction)
    if isinstance(expected_value, Decimal):
        return expected_value * Decimal(repr(fraction))
    return expected_value * fraction
