"""Verdict arithmetic: progress, expected progress, status, forecast, roll-up.

Pure functions, no database. Dates count in days from BASE (the baseline date); the
default measure goes from 0 to 100 over 100 days, so day d expects progress d/100 and
value v is progress v/100.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from statistics import NormalDist

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from outcomes.verdicts import (
    ACHIEVED,
    AT_LEAST,
    AT_MOST,
    AT_RISK,
    CALIBRATION,
    DECREASE,
    DIRECTIONS,
    EVIDENCE_POINTS,
    HINGE,
    INCREASE,
    LEVEL,
    LINEAR,
    LOGISTIC,
    MISSED,
    NO_DATA,
    OFF_TRACK,
    ON_TRACK,
    REACHED,
    STALE,
    STATUS_RANK,
    STATUS_SCORE,
    STATUSES,
    TOO_EARLY,
    Fit,
    MeasureSpec,
    NodeScore,
    Tolerance,
    Verdict,
    _number,
    akaike_weights,
    calibrated_probability,
    calibration_features,
    evaluate,
    expected_progress,
    fit_history,
    forecast,
    judge,
    plan_status,
    progress,
    realised_value,
    roll_up,
    status_for_score,
    toss_up,
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
    ("changes", "value", "day", "probability", "status"),
    [
        pytest.param({}, 50, 50, 0.55, ON_TRACK, id="p-exactly-on-track"),
        pytest.param({}, 50, 50, 0.95, ON_TRACK, id="p-high"),
        # A toss-up (0.45 ≤ P < 0.55) goes by the plan: on plan here, behind it below.
        pytest.param({}, 50, 50, 0.5499, ON_TRACK, id="p-just-below-on-track-on-plan"),
        pytest.param({}, 40, 50, 0.5499, AT_RISK, id="p-just-below-on-track-behind"),
        pytest.param({}, 50, 50, 0.4499, AT_RISK, id="p-below-the-toss-up"),
        pytest.param({}, 50, 50, 0.4, AT_RISK, id="p-exactly-at-risk"),
        pytest.param({}, 50, 50, 0.3999, OFF_TRACK, id="p-just-below-at-risk"),
        pytest.param({}, 90, 50, 0.1, OFF_TRACK, id="ahead-of-plan-but-forecast-falls-short"),
        pytest.param({}, 10, 50, 0.9, ON_TRACK, id="behind-plan-but-forecast-reaches"),
        pytest.param({}, 50, 50, None, TOO_EARLY, id="no-forecast-too-early"),
        pytest.param({}, 130, 50, None, REACHED, id="reached-early-no-forecast"),
        pytest.param({}, 130, 50, 0.8, REACHED, id="reached-early-must-hold"),
        pytest.param({}, 130, 50, 0.4, REACHED, id="reached-at-risk-edge-still-reached"),
        pytest.param({}, 130, 50, 0.2, OFF_TRACK, id="reached-but-forecast-falls-back"),
        pytest.param({}, 100, 100, 0.0, ACHIEVED, id="on-target-date-holding-final"),
        pytest.param({}, 95, 100, 0.9, ON_TRACK, id="on-target-date-not-yet-missed"),
        pytest.param({}, 99, 101, 0.9, MISSED, id="after-target-short"),
        pytest.param({}, 100, 101, None, ACHIEVED, id="after-target-reached"),
        pytest.param(DECREASING, 75, 50, 0.7, ON_TRACK, id="decrease-forecast-reaches"),
        pytest.param(DECREASING, 45, 50, 0.7, REACHED, id="decrease-reached"),
        pytest.param(DECREASING, 60, 101, 0.9, MISSED, id="decrease-missed"),
        pytest.param(KEEP_AT_LEAST, 99.2, 50, 0.9, REACHED, id="threshold-holding-before-target"),
        pytest.param(KEEP_AT_LEAST, 99.2, 100, 0.9, ACHIEVED, id="threshold-holding-on-date"),
        pytest.param(KEEP_AT_LEAST, 98.8, 50, 0.1, OFF_TRACK, id="threshold-breached"),
        pytest.param(KEEP_AT_LEAST, 98.8, 101, 0.9, MISSED, id="threshold-breached-after"),
        pytest.param(KEEP_AT_MOST, 2.5, 30, 0.5, AT_RISK, id="at_most-breached-may-recover"),
        pytest.param(KEEP_AT_MOST, 1.5, 30, 0.9, REACHED, id="at_most-holding"),
    ],
)
def test_status(changes, value, day, probability, status):
    assert judge(spec(**changes), value, BASE + timedelta(days=day), Tolerance(), probability) == (
        status
    )


@pytest.mark.parametrize(
    ("changes", "value", "day", "status"),
    [
        pytest.param({}, 50, 50, ON_TRACK, id="on-plan"),
        pytest.param({}, 45, 50, ON_TRACK, id="gap-exactly-on-track-within"),
        pytest.param({}, 44.9, 50, AT_RISK, id="gap-just-above"),
        pytest.param({}, 34.9, 50, OFF_TRACK, id="gap-above-at-risk-within"),
        pytest.param({}, 130, 50, ACHIEVED, id="already-there"),
        pytest.param({}, 99, 101, MISSED, id="after-target"),
        pytest.param(KEEP_AT_LEAST, 99.2, 50, ON_TRACK, id="threshold-holding"),
    ],
)
def test_plan_status_is_the_linear_rule(changes, value, day, status):
    assert plan_status(spec(**changes), value, BASE + timedelta(days=day), Tolerance()) == status


def test_the_policy_decides_the_probability_bands():
    strict = Tolerance(on_track_probability=0.9, at_risk_probability=0.7)
    day = BASE + timedelta(days=50)
    assert judge(spec(), 50, day, Tolerance(), 0.8) == ON_TRACK
    # 0.8 is no toss-up: on plan or not, the strict policy's band decides.
    assert judge(spec(), 50, day, strict, 0.8) == AT_RISK
    assert judge(spec(), 50, day, strict, 0.6) == OFF_TRACK


@pytest.mark.parametrize(
    ("value", "probability", "tolerance", "status"),
    [
        # Default cuts 0.55 / 0.4: 0.45 ≤ P < 0.55 is a toss-up the plan decides.
        pytest.param(50, 0.5, Tolerance(), ON_TRACK, id="toss-up-on-plan"),
        pytest.param(40, 0.5, Tolerance(), AT_RISK, id="toss-up-behind-plan"),
        pytest.param(50, 0.45, Tolerance(), ON_TRACK, id="toss-up-lower-edge"),
        pytest.param(50, 0.449, Tolerance(), AT_RISK, id="below-the-toss-up"),
        pytest.param(50, 0.3, Tolerance(), OFF_TRACK, id="off-track-on-plan-anyway"),
        pytest.param(40, 0.55, Tolerance(), ON_TRACK, id="on-track-behind-plan-anyway"),
        # The band never reaches past a tree's own cuts.
        pytest.param(40, 0.5, Tolerance(on_track_probability=0.5), ON_TRACK, id="cut-at-one-half"),
        pytest.param(
            50,
            0.46,
            Tolerance(on_track_probability=0.7, at_risk_probability=0.47),
            OFF_TRACK,
            id="at-risk-cut-above-the-band",
        ),
    ],
)
def test_a_toss_up_goes_by_the_plan(value, probability, tolerance, status):
    day = BASE + timedelta(days=50)  # the plan expects 50 by now
    assert judge(spec(), value, day, tolerance, probability) == status
    assert toss_up(probability, tolerance) == (
        max(0.45, tolerance.at_risk_probability)
        <= probability
        < min(0.55, tolerance.on_track_probability)
    )


def test_probability_bands_must_nest():
    with pytest.raises(ValueError, match="at_risk_probability ≤ on_track_probability"):
        Tolerance(on_track_probability=0.3, at_risk_probability=0.5)


STEADY = line(1.0, 0.0, range(0, 50), lambda day: 1.5 if day % 2 else -1.5)  # 0 → 49


def test_evaluate_uses_the_forecast_and_says_why():
    verdict = evaluate(spec(), STEADY, at(50), unit="orders")
    # On the straight plan is at best a coin flip for "at or above 100 on the date";
    # business trends slow down (the damped trend), so the forecast falls short of the
    # target and P(reach) is below the on-track cut: at risk, not on track.
    assert 0.3 < verdict.forecast.probability < 0.5
    assert verdict.status == AT_RISK
    assert verdict.forecast.model == LINEAR
    assert verdict.forecast.unit == "orders"
    assert verdict.plan_status == ON_TRACK
    assert verdict.reason.startswith("Rising about 7.03 orders a week; ")
    assert verdict.reason.endswith(
        f"(forecast 92.2 orders, 80 % range {verdict.forecast.low:.1f} to "
        f"{verdict.forecast.high:.0f} orders)."
    )
    assert f"{verdict.forecast.probability:.0%}".replace("%", " %") in verdict.reason
    assert "chance of reaching 100 orders by 11 Apr 2026" in verdict.reason


def test_a_plateau_below_target_is_off_track_though_ahead_of_plan():
    observed = [(at(d), min(d, 20) * 4.0 + (0.5 if d % 2 else -0.5)) for d in range(45)]
    verdict = evaluate(spec(), observed, at(45))  # at 80: ahead of the 45 planned
    assert verdict.plan_status == ON_TRACK
    assert verdict.status == OFF_TRACK
    assert verdict.forecast.model == HINGE
    assert verdict.forecast.value == pytest.approx(80, abs=2)
    assert verdict.reason.startswith("Flat at about 80.1 since 20 Jan 2026; ")


def test_reached_early_must_hold_and_says_so():
    observed = [(at(d), 100.0 + (d % 3)) for d in range(30)]
    verdict = evaluate(spec(), observed, at(30))
    assert verdict.status == REACHED
    assert verdict.reason.startswith("Reached 100 (")
    assert "must hold until 11 Apr 2026" in verdict.reason


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (30.5, "30.5"),
        (0.0007, "0.0007"),
        (12.345, "12.3"),
        (1234.5, "1,234"),
        (-0.0, "0"),  # was "-0"
        (-0.00001, "-0.00001"),
        (99.96, "100"),  # was "100.0"
        (999.6, "1,000"),  # was "1000"
        (1e-7, "0.0000001"),  # was "1e-07"
        (3.456e-6, "0.00000346"),  # was "3.46e-06"
        (1e-300, "1e-300"),  # beyond any unit's decimals
    ],
)
def test_figures_in_reasons_read_as_people_write_them(value, words):
    assert _number(value) == words


def test_a_reached_reason_keeps_a_unit_with_brackets():
    """The odds were cut from the sentence at the first " (", which a unit may hold:
    "…: 70 % chance of holding 100 k." for the unit "k (thousands)"."""
    observed = [(at(d), 100.0 + (d % 3)) for d in range(30)]
    verdict = evaluate(spec(), observed, at(30), unit="k (thousands)")
    assert verdict.status == REACHED
    assert verdict.reason.startswith("Reached 100 k (thousands) (")
    assert verdict.reason.endswith("chance of holding 100 k (thousands) by 11 Apr 2026.")


def test_too_early_below_the_minimum_data():
    verdict = evaluate(spec(), series((1, 10), (2, 12), (3, 15), (4, 16)), at(5))
    assert verdict.status == TOO_EARLY
    assert verdict.forecast.probability is None
    assert verdict.reason == "Too early to tell: too few observations (4; 5 needed); latest 16."
    fifth = evaluate(spec(), series((1, 10), (2, 12), (3, 15), (4, 16), (5, 18)), at(6))
    assert fifth.status != TOO_EARLY
    assert fifth.forecast.probability is not None


def test_verdict_points_at_the_observations_it_used():
    observed = series((1, 1), (2, 2), (3, math.nan), (4, 4), (90, 90))
    verdict = evaluate(spec(), observed, at(10))
    assert verdict.status == TOO_EARLY
    assert verdict.plan_status == AT_RISK  # 0.04 against 0.1 expected
    assert verdict.latest_value == 4
    assert verdict.latest_period == at(4)
    assert verdict.first_period == at(1)
    assert verdict.used_indexes == (0, 1, 3)  # not the NaN, not the future
    assert verdict.observation_count == 3
    assert verdict.expected_progress == pytest.approx(0.1)
    assert verdict.at == at(10)


def test_evidence_is_the_newest_observations_the_forecast_reads_the_window():
    observed = [(at(day), float(day)) for day in range(100)]
    verdict = evaluate(spec(), observed, at(99), max_points=30)
    assert verdict.used_indexes == tuple(range(100 - EVIDENCE_POINTS, 100))
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
    assert verdict.forecast.reason == "too few observations (0; 5 needed)"
    assert verdict.reason == "No observations yet."


WEEKLY = {"expected_frequency": timedelta(days=7)}


@pytest.mark.parametrize(
    ("changes", "points", "moment", "status", "judged"),
    [
        pytest.param(
            WEEKLY, [(43, 45)], at(50), TOO_EARLY, TOO_EARLY, id="exactly-expected-frequency-fresh"
        ),  # fmt: skip
        pytest.param(
            WEEKLY, [(43, 45)], at(50, seconds=1), STALE, TOO_EARLY, id="just-past-stale"
        ),  # fmt: skip
        pytest.param(
            {}, [(3, 30)], at(50), TOO_EARLY, TOO_EARLY, id="no-frequency-never-stale"
        ),  # fmt: skip
        pytest.param(
            WEEKLY, [(20, 100)], at(50), STALE, REACHED, id="reached-but-stale"
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
    if status == STALE:
        assert verdict.reason.startswith("No new value since ")


def test_evaluate_refuses_a_naive_moment():
    with pytest.raises(ValueError, match="aware"):
        evaluate(spec(), series((1, 1)), datetime(2026, 3, 1))  # noqa: DTZ001


def test_evaluate_refuses_unsorted_observations():
    with pytest.raises(ValueError, match="sorted"):
        evaluate(spec(), series((5, 1), (2, 1)), at(10))


# Forecast ------------------------------------------------------------------------------

MEASURED = spec(baseline_value=10, target_value=210)  # 10 → 210 in 100 days: slope 2


def noisy(sd: float, seed: int = 7):
    rng = random.Random(seed)
    return lambda _day: rng.gauss(0, sd)


@pytest.mark.parametrize(
    ("name", "values", "model", "at_day", "expected"),
    [
        pytest.param(
            "noisy line", lambda d: 10 + 2 * d, LINEAR, 60, 130, id="noisy-line"
        ),  # fmt: skip
        pytest.param(
            "plateau", lambda d: 10 + 2 * min(d, 25), HINGE, 100, 60, id="plateau"
        ),  # fmt: skip
        pytest.param(
            "logistic",
            lambda d: 10 + 150 / (1 + math.exp(-(d - 20) / 4)),
            LOGISTIC,
            100,
            160,
            id="logistic",
        ),  # fmt: skip
        pytest.param("level", lambda d: 50.0, LEVEL, 100, 50, id="level"),  # fmt: skip
    ],
)
def test_forecasts_recover_known_shapes(name, values, model, at_day, expected):
    jitter = noisy(1.0)
    observed = [(at(d), values(d) + jitter(d)) for d in range(50)]
    fit = fit_history([p for p, _ in observed], [v for _, v in observed])
    assert isinstance(fit, Fit)
    if model == LEVEL:  # noise may read as a slope; it must stay a small one
        assert fit.model in (LEVEL, LINEAR)
        assert abs(fit.slope(fit.last_x)) < 0.05
    else:
        assert fit.model == model, name
    value, _ = fit.predict(BASE + timedelta(days=at_day))
    # A straight line beyond the data is damped (business trends slow down).
    tolerance = 12 if model == LINEAR else 3
    assert value == pytest.approx(expected, abs=tolerance)
    assert value <= expected + 1 if model == LINEAR else True


@pytest.mark.parametrize(
    ("aicc", "weights"),
    [
        pytest.param({LEVEL: 10.0}, {LEVEL: 1.0}, id="alone"),
        pytest.param({LEVEL: 10.0, LINEAR: 10.0}, {LEVEL: 0.5, LINEAR: 0.5}, id="tie"),
        # exp(−ln 9 / 2) = 1/3: weights 3/4 and 1/4.
        pytest.param(
            {LEVEL: 3.0, LINEAR: 3.0 + 2 * math.log(3)}, {LEVEL: 0.75, LINEAR: 0.25}, id="third"
        ),
        # Δ = 10 weighs exp(−5) ≈ 0.7 % < 1 %: dropped; so is an infinite AICc.
        pytest.param({LEVEL: 0.0, LINEAR: 10.0, HINGE: math.inf}, {LEVEL: 1.0}, id="negligible"),
    ],
)
def test_akaike_weights(aicc, weights):
    assert akaike_weights(aicc) == pytest.approx(weights)


def test_akaike_weights_need_a_finite_aicc():
    with pytest.raises(ValueError, match="finite AICc"):
        akaike_weights({LEVEL: math.inf})


def test_the_forecast_is_the_akaike_weighted_mean_of_the_shapes():
    fit = fit_history([p for p, _ in STEADY], [v for _, v in STEADY])
    assert fit.model == LINEAR
    weights = {model: weight for weight, model, _, _ in fit.mixture}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert max(weights, key=weights.get) == LINEAR
    x = fit.last_x + 30
    alone = [replace(fit, mixture=((1.0, m, p, d),)).trend(x) for _, m, p, d in fit.mixture]
    assert fit.trend(x) == pytest.approx(
        sum(w * v for (w, *_), v in zip(fit.mixture, alone, strict=True))
    )


def test_a_damped_line_keeps_most_of_its_slope_near_the_data():
    observed = line(2, 10, range(50), noisy(0.5))
    fit = fit_history([p for p, _ in observed], [v for _, v in observed])
    near, _ = fit.predict(BASE + timedelta(days=55))
    assert near == pytest.approx(120, abs=2)
    assert fit.slope(fit.last_x) == pytest.approx(2, abs=0.05)


def test_weekly_seasonality_is_removed_from_daily_data_and_put_back():
    # Weekends 30 lower on a line rising 1 a day: twelve points would read the weekday
    # pattern as the trend; a seasonal fit recovers the slope and the pattern.
    base = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    jitter = noisy(0.5, seed=3)
    observed = [
        (base + timedelta(days=d), 100 + d - (30 if (d % 7) >= 5 else 0) + jitter(d))
        for d in range(42)
    ]
    fit = fit_history([p for p, _ in observed], [v for _, v in observed])
    assert fit.weekday is not None
    assert fit.weekday[5] - fit.weekday[2] == pytest.approx(-30, abs=2)
    assert fit.slope(fit.last_x) == pytest.approx(1, abs=0.1)
    saturday, _ = fit.predict(date(2026, 2, 21))  # day 47
    wednesday, _ = fit.predict(date(2026, 2, 18))  # day 44
    assert wednesday - saturday == pytest.approx(27, abs=3)  # 30 lower, 3 days later


def test_outliers_do_not_move_the_shape():
    observed = line(2, 10, range(30), noisy(0.5))
    observed[12] = (observed[12][0], 1000.0)
    observed[20] = (observed[20][0], -500.0)
    fit = fit_history([p for p, _ in observed], [v for _, v in observed])
    assert fit.model == LINEAR
    assert fit.slope(fit.last_x) == pytest.approx(2, abs=0.1)


def test_interval_coverage_on_simulated_data():
    """Noisy lines and random walks with drift: the 80 % interval holds 70–90 %."""
    rng = random.Random(20260101)
    hits = trials = 0
    for trial in range(160):
        walk = trial % 2 == 1
        slope, level, values = rng.uniform(0.5, 2), 100.0, []
        for _day in range(120):
            level += slope + (rng.gauss(0, 2) if walk else 0)
            values.append(level + (0 if walk else rng.gauss(0, 4)))
        history = [(at(day), value) for day, value in enumerate(values[:60])]
        fit = fit_history([p for p, _ in history], [v for _, v in history])
        for day in (80, 100, 119):
            value, sd = fit.predict(BASE + timedelta(days=day))
            hits += abs(values[day] - value) <= 1.2816 * sd
            trials += 1
    assert 0.7 <= hits / trials <= 0.9


@pytest.mark.parametrize(
    ("changes", "slope", "intercept", "reaches"),
    [
        pytest.param({}, 3.0, 10, True, id="increase-overshoots"),
        pytest.param({}, 1.0, 10, False, id="increase-falls-short"),
        pytest.param(
            {"direction": DECREASE, "baseline_value": 300, "target_value": 100},
            -3.0,
            300,
            True,
            id="decrease-undershoots",
        ),  # fmt: skip
        pytest.param(
            {"direction": DECREASE, "baseline_value": 300, "target_value": 100},
            -1.0,
            300,
            False,
            id="decrease-falls-short",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_LEAST, "baseline_value": 10, "target_value": 210},
            3.0,
            10,
            True,
            id="at_least-reaches",
        ),  # fmt: skip
        pytest.param(
            {"direction": AT_MOST, "baseline_value": 300, "target_value": 100},
            -1.0,
            300,
            False,
            id="at_most-stays-above",
        ),  # fmt: skip
    ],
)
def test_probability_of_reaching_the_target(changes, slope, intercept, reaches):
    measure = spec(**({"baseline_value": 10, "target_value": 210} | changes))
    result = forecast(measure, line(slope, intercept, range(50), noisy(1.0)), at=TARGET)
    assert result.low < result.value < result.high
    assert result.model == LINEAR
    if reaches:
        assert result.probability > 0.7
    else:
        assert result.probability < 0.3


@PROPERTY
@given(st.floats(-50, 50), st.floats(0.1, 10), st.integers(5, 60))
def test_probability_is_a_probability_and_rises_with_the_level(offset, noise, days):
    observed = line(1.0, offset, range(days), noisy(noise))
    higher = [(p, v + 20) for p, v in observed]
    low = forecast(MEASURED, observed, at=TARGET)
    high = forecast(MEASURED, higher, at=TARGET)
    assert 0 <= low.probability <= 1
    assert low.low <= low.value <= low.high
    assert high.probability >= low.probability - 1e-9


C0, C1, C2, C3 = CALIBRATION


@pytest.mark.parametrize(
    ("raw", "holding", "ahead", "expected"),
    [
        # Φ(c₀ + c₁z + c₂h + c₃z·a) with z = Φ⁻¹(raw); Φ⁻¹(0.5) = 0.
        pytest.param(0.5, False, 0.0, NormalDist().cdf(C0), id="even-odds"),
        pytest.param(0.5, True, 1.0, NormalDist().cdf(C0 + C2), id="even-odds-holding"),
        pytest.param(NormalDist().cdf(1.0), False, 0.0, NormalDist().cdf(C0 + C1), id="at-date"),
        pytest.param(
            NormalDist().cdf(1.0), False, 0.5, NormalDist().cdf(C0 + C1 + C3 / 2), id="midway"
        ),
        pytest.param(
            NormalDist().cdf(-1.0), True, 1.0, NormalDist().cdf(C0 - C1 + C2 - C3), id="early"
        ),
        # Certainty is clipped: a recalibrated probability is never exactly 0 or 1.
        pytest.param(0.0, False, 0.0, NormalDist().cdf(C0 - C1 * 3.719), id="zero"),
        pytest.param(1.0, True, 0.0, NormalDist().cdf(C0 + C1 * 3.719 + C2), id="one"),
    ],
)
def test_probability_recalibration(raw, holding, ahead, expected):
    assert calibrated_probability(raw, holding, ahead) == pytest.approx(expected, abs=1e-3)


def test_calibration_features_are_in_the_order_of_the_coefficients():
    features = calibration_features(NormalDist().cdf(2.0), True, 0.25)
    assert features == pytest.approx((1.0, 2.0, 1.0, 0.5))
    assert len(features) == len(CALIBRATION)


def test_early_on_the_raw_probability_is_trusted_less():
    assert calibrated_probability(0.9, False, 1.0) < calibrated_probability(0.9, False, 0.0)
    assert calibrated_probability(0.1, False, 1.0) > calibrated_probability(0.1, False, 0.0)


@PROPERTY
@given(st.floats(0, 1), st.floats(0, 1), st.booleans(), st.floats(0, 1))
def test_recalibration_keeps_the_order_and_holding_raises_it(a, b, holding, ahead):
    low, high = sorted((a, b))
    p_low = calibrated_probability(low, holding, ahead)
    assert 0 < p_low <= calibrated_probability(high, holding, ahead) < 1
    assert calibrated_probability(low, True, ahead) > calibrated_probability(low, False, ahead)


@pytest.mark.parametrize(
    ("observed", "reason"),
    [
        pytest.param([], "too few observations (0; 5 needed)", id="none"),
        pytest.param(line(2, 10, range(4)), "too few observations (4; 5 needed)", id="four"),
        pytest.param(
            [(at(3), 1.0), (at(3), 2.0), (at(3), 3.0)],
            "all observations are in one period",
            id="one-period",
        ),  # fmt: skip
        pytest.param(
            series((1, 12), (2, 14), (3, 15), (4, 16), (5, math.nan)),
            "too few observations (4; 5 needed)",
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
            [], [measure(ACHIEVED, 3), measure(OFF_TRACK, 1)], REACHED, 0.8125, id="by-weight"
        ),  # fmt: skip
        pytest.param(
            [], [measure(ON_TRACK, 3), measure(OFF_TRACK, 1)], ON_TRACK, 0.625, id="by-weight-2"
        ),  # fmt: skip
        pytest.param(
            [],
            [measure(ACHIEVED, 1.7e308), measure(MISSED, 1.7e308), measure(MISSED, 1e-300)],
            AT_RISK,
            0.5,
            id="huge-weights-do-not-overflow",
        ),  # fmt: skip
        pytest.param(
            [], [measure(REACHED), measure(ON_TRACK)], REACHED, 0.8125, id="reached-counts"
        ),  # fmt: skip
        pytest.param(
            [], [measure(TOO_EARLY), measure(AT_RISK)], AT_RISK, 0.5, id="too-early-left-out"
        ),  # fmt: skip
        pytest.param(
            [node(NO_DATA)], [measure(TOO_EARLY)], TOO_EARLY, None, id="only-too-early"
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
        REACHED,
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
    measure=specs(),
    values=st.tuples(finite, finite),
    probabilities=st.tuples(st.none() | st.floats(0, 1), st.floats(0, 1)),
    day=st.dates(min_value=date(1999, 1, 1), max_value=date(2111, 1, 1)),
)
def test_a_better_value_and_forecast_never_give_a_worse_status(measure, values, probabilities, day):
    low, high = sorted(values)
    if measure.direction in (DECREASE, AT_MOST):
        low, high = high, low  # "better" is lower
    p_low, p_high = probabilities
    if p_low is not None:
        p_low, p_high = sorted((p_low, p_high))
    worse = judge(measure, low, day, Tolerance(), p_low)
    better = judge(measure, high, day, Tolerance(), p_high if p_low is not None else None)
    if TOO_EARLY in (worse, better):
        assert p_low is None
        return
    assert STATUS_RANK[better] >= STATUS_RANK[worse]


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


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ([110.0, 40.0, 30.0, 20.0, 10.0, 5.0], MISSED),
        ([90.0, 95.0, 100.0, 101.0, 102.0, 104.0], ACHIEVED),
    ],
)
def test_a_target_date_in_the_past_is_observed_not_forecast(values, status):
    """Values observed after the target date: the measure page showed a forecast of that
    past date ("Forecast at target date 10.96 days, 0 % chance of reaching the target")
    and the chart drew its band backwards in time."""
    observed = [(at(101 + day), value) for day, value in enumerate(values)]
    verdict = evaluate(spec(), observed, at(120))
    assert verdict.status == status
    assert verdict.forecast.probability is None
    assert (verdict.forecast.value, verdict.forecast.low, verdict.forecast.high) == (None,) * 3
    assert (
        verdict.forecast.reason == "the target date has passed: its value is observed, not forecast"
    )
    assert "chance" not in verdict.reason


def test_data_that_ends_before_the_target_date_is_still_forecast_there():
    verdict = evaluate(spec(), line(1.0, 0.0, range(0, 60)), at(120))
    assert verdict.forecast.value is not None
