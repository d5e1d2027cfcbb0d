"""Verdict arithmetic: progress, expected progress, status, forecast, roll-up.

Pure functions, no database. Dates count in days from BASE (the baseline date); the
default measure goes from 0 to 100 over 100 days, so day d expects progress d/100 and
value v is progress v/100.
"""

from __future__ import annotations

import math
import random
import statistics
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from outcomes.verdicts import (
    ACHIEVED,
    AT_LEAST,
    AT_MOST,
    AT_RISK,
    DECREASE,
    DIRECTIONS,
    INCREASE,
    MISSED,
    NO_DATA,
    OFF_TRACK,
    ON_TRACK,
    STALE,
    STATUS_RANK,
    STATUS_SCORE,
    STATUSES,
    MeasureSpec,
    NodeScore,
    Tolerance,
    Verdict,
    evaluate,
    expected_progress,
    forecast,
    progress,
    realised_value,
    roll_up,
    status_for_score,
)

BASE = date(2026, 1, 1)
TARGET = BASE + timedelta(days=100)
MIDNIGHT = datetime(2026, 1, 1, tzinfo=UTC)

# No example database in the working tree; no deadlines (no timing assertions).
PROPERTY = settings(max_examples=150, deadline=None, database=None)


def spec(**changes) -> MeasureSpec:
    fields = {
        "direction": INCREASE,
        "baseline_value": 0.0,
        "baseline_date": BASE,
        "target_value": 100.0,
        "target_date": TARGET,
    }
    return MeasureSpec(**(fields | changes))


def at(day: float, **delta) -> datetime:
    """The moment `day` days (and delta) after the baseline date's midnight, UTC."""
    return MIDNIGHT + timedelta(days=day, **delta)


def series(*points: tuple[float, float]) -> list[tuple[datetime, float]]:
    return [(at(day), value) for day, value in points]


def line(slope: float, intercept: float, days, noise=lambda day: 0.0):
    return [(at(day), intercept + slope * day + noise(day)) for day in days]


# Progress ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "value", "expected"),
    [
        pytest.param({}, 50, 0.5, id="increase-halfway"),
        pytest.param({}, 100, 1.0, id="increase-at-target"),
        pytest.param({}, 150, 1.0, id="increase-over-achieved-clamped"),
        pytest.param({}, -10, 0.0, id="increase-worse-than-baseline-clamped"),
        pytest.param(
            {"direction": DECREASE, "baseline_value": 100, "target_value": 50},
            75,
            0.5,
            id="decrease-halfway",
        ),  # fmt: skip
        pytest.param(
            {"direction": DECREASE, "baseline_value": 100, "target_value": 50},
            40,
            1.0,
            id="decrease-over-achieved",
        ),  # fmt: skip
        pytest.param(
            {"direction": DECREASE, "baseline_value": 100, "target_value": 50},
            120,
            0.0,
            id="decrease-worse",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_LEAST, "baseline_value": 90, "target_value": 99},
            94.5,
            0.5,
            id="at_least-to-reach-halfway",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_LEAST, "baseline_value": 90, "target_value": 99},
            99,
            1.0,
            id="at_least-to-reach-holding",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_LEAST, "baseline_value": 90, "target_value": 99},
            80,
            0.0,
            id="at_least-to-reach-worse",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_LEAST, "baseline_value": 99.5, "target_value": 99},
            99.2,
            1.0,
            id="at_least-to-keep-holding",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_LEAST, "baseline_value": 99.5, "target_value": 99},
            98.99,
            0.0,
            id="at_least-to-keep-breached",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_LEAST, "baseline_value": 99, "target_value": 99},
            99,
            1.0,
            id="at_least-baseline-on-threshold",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_MOST, "baseline_value": 5, "target_value": 2},
            3.5,
            0.5,
            id="at_most-to-reach-halfway",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_MOST, "baseline_value": 5, "target_value": 2},
            1,
            1.0,
            id="at_most-to-reach-holding",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_MOST, "baseline_value": 1, "target_value": 2},
            2,
            1.0,
            id="at_most-to-keep-on-line",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_MOST, "baseline_value": 1, "target_value": 2},
            2.1,
            0.0,
            id="at_most-to-keep-breached",
        ),  # fmt: skip
    ],
)
def test_progress(changes, value, expected):
    assert progress(spec(**changes), value) == pytest.approx(expected)


def test_progress_of_huge_values_does_not_overflow():
    wide = spec(baseline_value=-1.7e308, target_value=1.7e308)
    assert progress(wide, 0.0) == pytest.approx(0.5)
    assert progress(wide, 1.7e308) == 1.0


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_progress_refuses_values_that_are_not_numbers(value):
    with pytest.raises(ValueError, match="finite"):
        progress(spec(), value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"target_value": -1}, "target above its baseline", id="increase-down"),
        pytest.param({"target_value": 0}, "target above its baseline", id="increase-flat"),
        pytest.param({"direction": DECREASE}, "target below its baseline", id="decrease-up"),
        pytest.param({"target_date": BASE}, "after the baseline date", id="no-time"),
        pytest.param({"direction": "up"}, "Unknown direction", id="direction"),
        pytest.param({"weight": -1}, "weight", id="negative-weight"),
        pytest.param({"baseline_value": math.nan}, "finite", id="nan-baseline"),
        pytest.param({"expected_frequency": timedelta(0)}, "frequency", id="zero-frequency"),
    ],
)
def test_measure_spec_refuses_contradictions(changes, message):
    with pytest.raises(ValueError, match=message):
        spec(**changes)


def test_tolerance_bands_must_nest():
    with pytest.raises(ValueError, match="on_track_within ≤ at_risk_within"):
        Tolerance(on_track_within=0.2, at_risk_within=0.1)


# Expected progress ---------------------------------------------------------------------

KEEP_AT_LEAST = {"direction": AT_LEAST, "baseline_value": 99.5, "target_value": 99}
REACH_AT_LEAST = {"direction": AT_LEAST, "baseline_value": 90, "target_value": 99}


@pytest.mark.parametrize(
    ("changes", "day", "expected"),
    [
        pytest.param({}, -30, 0.0, id="before-baseline"),
        pytest.param({}, 0, 0.0, id="on-baseline"),
        pytest.param({}, 25, 0.25, id="quarter-way"),
        pytest.param({}, 99, 0.99, id="day-before-target"),
        pytest.param({}, 100, 1.0, id="on-target"),
        pytest.param({}, 400, 1.0, id="after-target"),
        pytest.param(KEEP_AT_LEAST, -1, 0.0, id="threshold-to-keep-before-baseline"),
        pytest.param(KEEP_AT_LEAST, 0, 1.0, id="threshold-to-keep-from-baseline"),
        pytest.param(KEEP_AT_LEAST, 50, 1.0, id="threshold-to-keep-midway"),
        pytest.param(REACH_AT_LEAST, 50, 0.5, id="threshold-to-reach-linear"),
    ],
)
def test_expected_progress(changes, day, expected):
    assert expected_progress(spec(**changes), BASE + timedelta(days=day)) == pytest.approx(expected)


# Status --------------------------------------------------------------------------------

DECREASING = {"direction": DECREASE, "baseline_value": 100, "target_value": 50}
KEEP_AT_MOST = {"direction": AT_MOST, "baseline_value": 1, "target_value": 2}


@pytest.mark.parametrize(
    ("changes", "points", "day", "status", "done"),
    [
        pytest.param({}, [(50, 50)], 50.5, ON_TRACK, 0.5, id="increase-on-plan"),
        pytest.param({}, [(50, 45)], 50.5, ON_TRACK, 0.45, id="gap-exactly-on-track-within"),
        pytest.param({}, [(50, 44.9)], 50.5, AT_RISK, 0.449, id="gap-just-above-on-track-within"),
        pytest.param({}, [(50, 35)], 50.5, AT_RISK, 0.35, id="gap-exactly-at-risk-within"),
        pytest.param({}, [(50, 34.9)], 50.5, OFF_TRACK, 0.349, id="gap-just-above-at-risk-within"),
        pytest.param({}, [(50, -20)], 50.5, OFF_TRACK, 0.0, id="worse-than-baseline"),
        pytest.param({}, [(50, 130)], 50.5, ACHIEVED, 1.0, id="achieved-early-over-target"),
        pytest.param({}, [(-10, 5)], -5, ON_TRACK, 0.05, id="before-baseline-counts-from-baseline"),
        pytest.param({}, [(-10, -5)], -5, ON_TRACK, 0.0, id="before-baseline-below-baseline"),
        pytest.param({}, [(-10, 120)], -5, ACHIEVED, 1.0, id="before-baseline-already-achieved"),
        pytest.param({}, [(99, 95)], 100.5, ON_TRACK, 0.95, id="on-target-date-not-yet-missed"),
        pytest.param({}, [(99, 99)], 101, MISSED, 0.99, id="after-target-short"),
        pytest.param({}, [(99, 100)], 101, ACHIEVED, 1.0, id="after-target-reached"),
        pytest.param({}, [(99, 90), (120, 100)], 125, ACHIEVED, 1.0, id="achieved-late"),
        pytest.param({}, [(10, 10), (60, 100)], 20, AT_RISK, 0.1, id="later-observations-ignored"),
        pytest.param(DECREASING, [(50, 75)], 50.5, ON_TRACK, 0.5, id="decrease-on-plan"),
        pytest.param(DECREASING, [(50, 80)], 50.5, AT_RISK, 0.4, id="decrease-behind"),
        pytest.param(DECREASING, [(50, 45)], 50.5, ACHIEVED, 1.0, id="decrease-achieved"),
        pytest.param(DECREASING, [(99, 60)], 101, MISSED, 0.8, id="decrease-missed"),
        pytest.param(
            KEEP_AT_LEAST, [(50, 99.2)], 50.5, ON_TRACK, 1.0, id="threshold-holding-before-target"
        ),  # fmt: skip
        pytest.param(
            KEEP_AT_LEAST,
            [(100, 99.2)],
            100.5,
            ACHIEVED,
            1.0,
            id="threshold-holding-on-target-date",
        ),  # fmt: skip
        pytest.param(
            KEEP_AT_LEAST, [(50, 98.8)], 50.5, OFF_TRACK, 0.0, id="threshold-breached-before-target"
        ),  # fmt: skip
        pytest.param(
            KEEP_AT_LEAST, [(100, 98.8)], 101, MISSED, 0.0, id="threshold-breached-after-target"
        ),  # fmt: skip
        pytest.param(
            REACH_AT_LEAST, [(50, 94.5)], 50.5, ON_TRACK, 0.5, id="threshold-to-reach-on-plan"
        ),  # fmt: skip
        pytest.param(
            REACH_AT_LEAST, [(50, 99)], 50.5, ON_TRACK, 1.0, id="threshold-reached-early-holds-on"
        ),  # fmt: skip
        pytest.param(
            REACH_AT_LEAST, [(50, 92)], 50.5, OFF_TRACK, 2 / 9, id="threshold-to-reach-behind"
        ),  # fmt: skip
        pytest.param(KEEP_AT_MOST, [(30, 2.5)], 30.5, OFF_TRACK, 0.0, id="at_most-breached"),
        pytest.param(KEEP_AT_MOST, [(30, 1.5)], 30.5, ON_TRACK, 1.0, id="at_most-holding"),
    ],
)
def test_status(changes, points, day, status, done):
    verdict = evaluate(spec(**changes), series(*points), at(day))
    assert (verdict.status, verdict.judged_status) == (status, status)
    assert verdict.progress == pytest.approx(done)
    assert verdict.gap == pytest.approx(verdict.expected_progress - done)


def test_tolerances_come_from_the_tree():
    observed = series((50, 40))  # gap 0.1
    assert evaluate(spec(), observed, at(50.5)).status == AT_RISK
    loose = Tolerance(on_track_within=0.1, at_risk_within=0.3)
    assert evaluate(spec(), observed, at(50.5), loose).status == ON_TRACK
    strict = Tolerance(on_track_within=0.0, at_risk_within=0.05)
    assert evaluate(spec(), observed, at(50.5), strict).status == OFF_TRACK


def test_verdict_points_at_the_observations_it_used():
    observed = series((1, 1), (2, 2), (3, math.nan), (4, 4), (90, 90))
    verdict = evaluate(spec(), observed, at(10))
    assert verdict.status == AT_RISK  # 0.04 against 0.1 expected
    assert verdict.latest_value == 4
    assert verdict.latest_period == at(4)
    assert verdict.first_period == at(1)
    assert verdict.used_indexes == (0, 1, 3)  # not the NaN, not the future
    assert verdict.observation_count == 3
    assert verdict.expected_progress == pytest.approx(0.1)
    assert verdict.at == at(10)


def test_used_observations_are_the_last_window():
    observed = [(at(day), float(day)) for day in range(100)]
    verdict = evaluate(spec(), observed, at(99), max_points=30)
    assert verdict.used_indexes == tuple(range(70, 100))
    assert verdict.first_period == at(70)
    assert verdict.forecast.observation_count == 30


@pytest.mark.parametrize(
    "points",
    [pytest.param([], id="none"), pytest.param([(60, 50)], id="only-after-t")],
)
def test_no_data(points):
    verdict = evaluate(spec(), series(*points), at(50))
    assert verdict.status == NO_DATA
    assert verdict.judged_status is None
    assert (verdict.progress, verdict.gap, verdict.latest_value) == (None, None, None)
    assert verdict.used_indexes == ()
    assert verdict.expected_progress == pytest.approx(0.5)
    assert verdict.forecast.reason == "too few observations (0; 3 needed)"


def test_a_single_observation_gives_a_status_but_no_forecast():
    verdict = evaluate(spec(), series((40, 50)), at(41))
    assert verdict.status == ON_TRACK
    assert verdict.forecast.reason == "too few observations (1; 3 needed)"
    assert verdict.forecast.value is None
    assert verdict.forecast.probability is None


WEEKLY = {"expected_frequency": timedelta(days=7)}


@pytest.mark.parametrize(
    ("changes", "points", "moment", "status", "judged"),
    [
        pytest.param(
            WEEKLY, [(43, 45)], at(50), ON_TRACK, ON_TRACK, id="exactly-expected-frequency-fresh"
        ),  # fmt: skip
        pytest.param(
            WEEKLY, [(43, 45)], at(50, seconds=1), STALE, ON_TRACK, id="just-past-stale"
        ),  # fmt: skip
        pytest.param(
            {}, [(3, 30)], at(50), OFF_TRACK, OFF_TRACK, id="no-frequency-never-stale"
        ),  # fmt: skip
        pytest.param(
            WEEKLY, [(20, 100)], at(50), STALE, ACHIEVED, id="achieved-but-stale"
        ),  # fmt: skip
        pytest.param(
            WEEKLY, [(100, 100)], at(300), ACHIEVED, ACHIEVED, id="final-after-target-not-stale"
        ),  # fmt: skip
        pytest.param(
            WEEKLY, [(100, 80)], at(300), MISSED, MISSED, id="final-missed-not-stale"
        ),  # fmt: skip
        pytest.param(
            WEEKLY, [(90, 100)], at(300), STALE, ACHIEVED, id="data-ends-before-target-stale"
        ),  # fmt: skip
    ],
)
def test_stale(changes, points, moment, status, judged):
    verdict = evaluate(spec(**changes), series(*points), moment)
    assert (verdict.status, verdict.judged_status) == (status, judged)
    assert verdict.progress == pytest.approx(points[-1][1] / 100)


def test_evaluate_refuses_a_naive_moment():
    with pytest.raises(ValueError, match="aware"):
        evaluate(spec(), series((1, 1)), datetime(2026, 3, 1))  # noqa: DTZ001


def test_evaluate_refuses_unsorted_observations():
    with pytest.raises(ValueError, match="sorted"):
        evaluate(spec(), series((5, 1), (2, 1)), at(10))


# Forecast ------------------------------------------------------------------------------

MEASURED = spec(baseline_value=10, target_value=210)  # 10 → 210 in 100 days: slope 2


def test_a_perfect_line_predicts_the_target_date_value_exactly():
    result = forecast(MEASURED, line(2, 10, range(10)), at=TARGET)
    assert result.reason is None
    assert result.value == pytest.approx(210)
    assert result.slope_per_day == pytest.approx(2)
    assert result.high - result.low == pytest.approx(0, abs=1e-9)
    assert result.probability == 1.0
    assert result.observation_count == 10
    assert result.level == 0.8


def wobble(day: float) -> float:
    return 0.05 if day % 2 else -0.05


@pytest.mark.parametrize(
    ("changes", "slope", "intercept", "reaches"),
    [
        pytest.param({}, 2.2, 10, True, id="increase-overshoots"),
        pytest.param({}, 1.4, 10, False, id="increase-falls-short"),
        pytest.param(
            {"direction": DECREASE, "baseline_value": 300, "target_value": 100},
            -2.5,
            300,
            True,
            id="decrease-undershoots",
        ),  # fmt: skip
        pytest.param(
            {"direction": DECREASE, "baseline_value": 300, "target_value": 100},
            -1.5,
            300,
            False,
            id="decrease-falls-short",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_LEAST, "baseline_value": 10, "target_value": 210},
            2.2,
            10,
            True,
            id="at_least-reaches",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_MOST, "baseline_value": 300, "target_value": 100},
            -1.5,
            300,
            False,
            id="at_most-stays-above",
        ),  # fmt: skip
    ],
)
def test_probability_of_reaching_the_target(changes, slope, intercept, reaches):
    measure = spec(**({"baseline_value": 10, "target_value": 210} | changes))
    result = forecast(measure, line(slope, intercept, range(20), wobble), at=TARGET)
    truth = intercept + slope * 100
    assert result.low < truth < result.high
    assert result.value == pytest.approx(truth, abs=1)
    assert result.high - result.low < 0.1 * abs(truth - measure.target_value)
    if reaches:
        assert result.probability > 0.99
    else:
        assert result.probability < 0.01


def test_a_wild_outlier_does_not_move_the_trend():
    observed = line(2, 10, range(11))
    observed[5] = (observed[5][0], 1000.0)
    result = forecast(MEASURED, observed, at=TARGET)
    assert result.value == pytest.approx(210)
    assert result.probability == 1.0
    # Least squares is dragged away by the same point.
    days = [(period - MIDNIGHT).days for period, _ in observed]
    fit = statistics.linear_regression(days, [value for _, value in observed])
    assert abs(fit.intercept + fit.slope * 100 - 210) > 50


def test_the_interval_covers_about_eighty_percent():
    rng = random.Random(20260101)
    hits = 0
    trials = 400
    for _ in range(trials):
        observed = line(0.5, 5, range(20), lambda _day: rng.gauss(0, 1))
        result = forecast(MEASURED, observed, at=BASE + timedelta(days=40))
        hits += result.low <= 25 + rng.gauss(0, 1) <= result.high
    assert 0.72 <= hits / trials <= 0.88


def test_the_forecast_follows_the_recent_trend():
    flat_then_rising = [(at(day), 0.0 if day < 70 else 2.0 * (day - 70)) for day in range(100)]
    result = forecast(MEASURED, flat_then_rising, at=TARGET, max_points=30)
    assert result.slope_per_day == pytest.approx(2)
    assert result.observation_count == 30


@pytest.mark.parametrize(
    ("observed", "reason"),
    [
        pytest.param([], "too few observations (0; 3 needed)", id="none"),
        pytest.param(line(2, 10, range(2)), "too few observations (2; 3 needed)", id="two"),
        pytest.param(
            [(at(3), 1.0), (at(3), 2.0), (at(3), 3.0)],
            "all observations are in one period",
            id="one-period",
        ),  # fmt: skip
        pytest.param(
            series((1, 12), (2, 14), (4, math.nan)),
            "too few observations (2; 3 needed)",
            id="nan-skipped",
        ),  # fmt: skip
    ],
)
def test_forecast_says_why_it_has_no_numbers(observed, reason):
    result = forecast(MEASURED, observed, at=TARGET)
    assert result.reason == reason
    assert (result.value, result.low, result.high, result.probability) == (None,) * 4


# Roll-up -------------------------------------------------------------------------------


def verdict(status: str) -> Verdict:
    judged = None if status == NO_DATA else status
    return Verdict(
        status=status,
        judged_status=judged,
        at=at(50),
        progress=None,
        expected_progress=0.5,
        gap=None,
        latest_value=None,
        latest_period=None,
        first_period=None,
        used_indexes=(),
        forecast=forecast(MEASURED, [], at=TARGET),
    )


def measure(status: str, weight: float = 1.0, guardrail: bool = False):
    return verdict(status), spec(weight=weight, is_guardrail=guardrail)


def node(status: str, weight: float = 1.0) -> NodeScore:
    return NodeScore(status=status, score=STATUS_SCORE.get(status), weight=weight)


@pytest.mark.parametrize(
    ("children", "measures", "status", "score"),
    [
        pytest.param([], [measure(ON_TRACK)], ON_TRACK, 0.75, id="one-measure"),
        pytest.param(
            [], [measure(ACHIEVED, 3), measure(OFF_TRACK, 1)], ON_TRACK, 0.8125, id="by-weight"
        ),  # fmt: skip
        pytest.param(
            [], [measure(ACHIEVED), measure(MISSED)], AT_RISK, 0.5, id="achieved-and-missed"
        ),  # fmt: skip
        pytest.param(
            [],
            [measure(ACHIEVED, 0), measure(MISSED, 0)],
            AT_RISK,
            0.5,
            id="all-weights-zero-count-equally",
        ),  # fmt: skip
        pytest.param(
            [],
            [measure(ACHIEVED, 1), measure(MISSED, 0)],
            ACHIEVED,
            1.0,
            id="weight-zero-does-not-count",
        ),  # fmt: skip
        pytest.param(
            [],
            [measure(ACHIEVED), measure(OFF_TRACK, guardrail=True)],
            OFF_TRACK,
            0.25,
            id="guardrail-off-track-caps",
        ),  # fmt: skip
        pytest.param(
            [],
            [measure(ACHIEVED), measure(AT_RISK, guardrail=True)],
            AT_RISK,
            0.5,
            id="guardrail-at-risk-caps",
        ),  # fmt: skip
        pytest.param(
            [],
            [measure(ACHIEVED), measure(MISSED, guardrail=True)],
            OFF_TRACK,
            0.25,
            id="guardrail-missed-caps-at-off-track",
        ),  # fmt: skip
        pytest.param(
            [],
            [measure(MISSED), measure(OFF_TRACK, guardrail=True)],
            MISSED,
            0.0,
            id="guardrail-cap-never-raises",
        ),  # fmt: skip
        pytest.param(
            [],
            [measure(AT_RISK), measure(ACHIEVED, 10, guardrail=True)],
            AT_RISK,
            0.5,
            id="guardrail-achieved-does-not-raise",
        ),  # fmt: skip
        pytest.param(
            [],
            [measure(ACHIEVED), measure(ON_TRACK, guardrail=True)],
            ACHIEVED,
            1.0,
            id="guardrail-holding-no-cap",
        ),  # fmt: skip
        pytest.param(
            [],
            [measure(ACHIEVED), measure(STALE, guardrail=True)],
            ACHIEVED,
            1.0,
            id="guardrail-stale-no-cap",
        ),  # fmt: skip
        pytest.param(
            [], [measure(ON_TRACK, guardrail=True)], ON_TRACK, 0.75, id="guardrails-alone-score"
        ),  # fmt: skip
        pytest.param(
            [node(ACHIEVED)],
            [measure(OFF_TRACK, guardrail=True)],
            OFF_TRACK,
            0.25,
            id="guardrail-caps-children",
        ),  # fmt: skip
        pytest.param(
            [node(ACHIEVED, 2), node(AT_RISK, 2)],
            [measure(ON_TRACK)],
            ON_TRACK,
            0.75,
            id="children-and-measures",
        ),  # fmt: skip
        pytest.param(
            [node(NO_DATA), node(OFF_TRACK)], [], OFF_TRACK, 0.25, id="no-data-child-left-out"
        ),  # fmt: skip
        pytest.param(
            [], [measure(STALE), measure(AT_RISK)], AT_RISK, 0.5, id="stale-measure-left-out"
        ),  # fmt: skip
        pytest.param([node(NO_DATA)], [measure(NO_DATA)], NO_DATA, None, id="only-no-data"),
        pytest.param([node(NO_DATA), node(STALE)], [], STALE, None, id="only-no-data-or-stale"),
        pytest.param([], [measure(STALE, guardrail=True)], STALE, None, id="only-stale-guardrail"),
        pytest.param([], [], NO_DATA, None, id="empty"),
    ],
)
def test_roll_up(children, measures, status, score):
    result = roll_up(children, measures, weight=2.0)
    assert (result.status, result.weight) == (status, 2.0)
    assert result.score == (None if score is None else pytest.approx(score))


@pytest.mark.parametrize("status", list(STATUS_RANK))
def test_each_status_score_maps_back(status):
    assert status_for_score(STATUS_SCORE[status]) == status


def test_status_rank_orders_best_first():
    assert sorted(STATUS_RANK, key=STATUS_RANK.get, reverse=True) == [
        ACHIEVED,
        ON_TRACK,
        AT_RISK,
        OFF_TRACK,
        MISSED,
    ]


@pytest.mark.parametrize(
    ("status", "score"),
    [(ON_TRACK, None), (NO_DATA, 0.5), (ON_TRACK, 1.5), ("fine", 0.5)],
)
def test_node_score_refuses_inconsistent_fields(status, score):
    with pytest.raises(ValueError):
        NodeScore(status=status, score=score)


@pytest.mark.parametrize(
    ("expected", "fraction", "realised"),
    [
        pytest.param(1000.0, 0.5, 500.0, id="half"),
        pytest.param(1000.0, 1.4, 1000.0, id="capped-at-expected"),
        pytest.param(1000.0, -0.2, 0.0, id="never-negative"),
        pytest.param(Decimal("1000.00"), 0.25, Decimal("250"), id="decimal-stays-decimal"),
        pytest.param(None, 0.5, None, id="no-expected-value"),
        pytest.param(1000.0, None, None, id="no-data"),
    ],
)
def test_realised_value(expected, fraction, realised):
    result = realised_value(expected, fraction)
    assert result == realised
    assert type(result) is type(realised)


# Properties ----------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def specs(draw, directions=DIRECTIONS) -> MeasureSpec:
    direction = draw(st.sampled_from(directions))
    first, second = draw(finite), draw(finite)
    if direction in (INCREASE, DECREASE):
        assume(first != second)
        low, high = sorted((first, second))
        first, second = (low, high) if direction == INCREASE else (high, low)
    start = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
    return MeasureSpec(
        direction=direction,
        baseline_value=first,
        baseline_date=start,
        target_value=second,
        target_date=start + timedelta(days=draw(st.integers(1, 3650))),
        expected_frequency=draw(st.none() | st.timedeltas(timedelta(hours=1), timedelta(days=90))),
    )


@PROPERTY
@given(specs(), finite)
def test_progress_is_always_between_zero_and_one(measure, value):
    assert 0.0 <= progress(measure, value) <= 1.0


@PROPERTY
@given(specs(), st.dates(), st.dates())
def test_expected_progress_is_monotone_in_time(measure, first, second):
    earlier, later = sorted((first, second))
    before, after = expected_progress(measure, earlier), expected_progress(measure, later)
    assert 0.0 <= before <= after <= 1.0


@PROPERTY
@given(
    measure=specs(directions=[INCREASE]),
    history=st.lists(st.tuples(st.integers(-400, 400), finite), max_size=12),
    last_day=st.integers(-400, 4000),
    values=st.tuples(finite, finite),
    hours_later=st.integers(0, 24 * 120),
)
def test_a_higher_value_never_gives_a_worse_status(measure, history, last_day, values, hours_later):
    earlier = sorted((day, value) for day, value in history if day < last_day)
    origin = datetime.combine(measure.baseline_date, datetime.min.time(), tzinfo=UTC)
    observed = [(origin + timedelta(days=day), value) for day, value in earlier]
    moment = origin + timedelta(days=last_day, hours=hours_later)
    period = origin + timedelta(days=last_day)
    low, high = sorted(values)
    worse = evaluate(measure, [*observed, (period, low)], moment)
    better = evaluate(measure, [*observed, (period, high)], moment)
    assert better.progress >= worse.progress
    assert STATUS_RANK[better.judged_status] >= STATUS_RANK[worse.judged_status]
    assert (better.status == STALE) == (worse.status == STALE)
    if worse.status != STALE:
        assert STATUS_RANK[better.status] >= STATUS_RANK[worse.status]


statuses = st.sampled_from(STATUSES)
weights = st.sampled_from([0.0, 0.5, 1.0, 3.0]) | st.floats(0, 1e6)


@st.composite
def node_scores(draw) -> NodeScore:
    """A node as roll_up makes it: from measures (some guardrails) and scored children."""
    children = draw(
        st.lists(
            st.builds(
                lambda score, weight: NodeScore(status_for_score(score), score, weight),
                st.floats(0, 1),
                weights,
            ),
            max_size=3,
        )
    )
    measures = draw(st.lists(st.tuples(statuses, weights, st.booleans()), max_size=5))
    own = [measure(status, weight, guardrail) for status, weight, guardrail in measures]
    return roll_up(children, own, weight=draw(weights))


@PROPERTY
@given(node_scores(), st.integers(1, 12))
def test_roll_up_of_identical_children_equals_the_child(child, count):
    parent = roll_up([child] * count, [])
    assert (parent.status, parent.score) == (child.status, child.score)


@PROPERTY
@given(
    st.lists(node_scores(), max_size=3),
    st.lists(st.tuples(statuses, weights), max_size=4),
    st.sampled_from(list(STATUS_RANK)),
    weights,
)
def test_a_guardrail_never_raises_a_node(children, measures, guardrail_status, weight):
    own = [measure(status, w) for status, w in measures]
    without = roll_up(children, own)
    assume(without.score is not None)
    with_guardrail = roll_up(children, [*own, measure(guardrail_status, weight, guardrail=True)])
    assert with_guardrail.score <= without.score
    assert STATUS_RANK[with_guardrail.status] <= STATUS_RANK[without.status]
