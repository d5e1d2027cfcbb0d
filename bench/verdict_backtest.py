"""Backtest: do verdicts predict whether a measure reaches its target? (issue 11, DESIGN.md §5)

Run from the repository root::

    .venv/bin/python bench/verdict_backtest.py [--measures 1000] [--seed 11]

A portfolio of synthetic business measures (this module's own generator) plus windows of
real public series shipped with statsmodels (`statsmodels.datasets`: weekly CO2,
quarterly US macro data, monthly El Niño temperatures, yearly Nile flow and sunspots).
Each measure gets its target at the start, from what is known then; its outcome is known
at the end: the latest value on the target date holds the target or not.

At 25, 50 and 75 % of each timeline the verdict is taken by `outcomes.verdicts.evaluate`,
the pure function the evaluation service calls, on the observations up to that moment.
Per checkpoint it prints, in one JSON object on stdout:

* status accuracy and balanced accuracy: achieved / reached / on_track say "will
  achieve"; off_track / missed / at_risk say "will miss" (at risk is a warning);
  too_early (and any other status) counts as wrong;
* the same for the linear plan rule (the verdict's ``plan_status``, the rule OKR tools
  use) and for the naive rule "the latest value already holds the target";
* the Brier score of P(reach) (no probability counts as 0.5; a constant 0.5 scores
  0.25) and its calibration by deciles;
* the share of outcomes inside the 80 % interval (no interval counts as outside);
* the share of verdicts per status, how often at_risk measures achieve, and the
  evaluation time;
* the accuracy of an oracle on the synthetic measures (the ceiling; see below).

Targets at 50 %: accuracy ≥ 0.75 and ≥ 8 points above both rules (also at 75 %; never
below them at 25 %); Brier ≤ 0.18; 80 % coverage within 0.75–0.85.

``--fit-calibration 21 22`` refits the probit recalibration of P(reach)
(``verdicts.CALIBRATION``, on the regressors of ``verdicts.calibration_features``) the
way it was fitted and prints it: check other seeds (13 and on) with the default run,
not the seeds it was fitted on.

The generator is written from what business KPIs look like (launch steps that fade,
adoption S-curves, plateaus, noisy random walks; weekday patterns, outliers, gaps), not
from the forecaster: its shapes are not the forecaster's candidate curves.

Calibration of the generator (not of the method)
------------------------------------------------
Issue 11 publishes, for the held-out portfolio the figures will be checked on, only the
scores of rules that need no forecast: the naive rule ("the latest value already holds
the target") scores 0.62 at 50 % and 0.73 at 75 %; the linear plan rule 0.61 at 50 %
and 0.69 at 75 % (the old status, which was that rule); a third of the measures
already holding their target before its date fall back; at-risk measures (by the plan)
achieve 32–44 % of the time. The first generator (``UNCALIBRATED``) was much easier for
the naive rule (0.73 at 50 %, 0.84 at 75 %; linear 0.67 / 0.77; 16 % fall back):
outcomes sat far from their targets relative to the noise. ``CALIBRATED`` changes two
knobs of ``Mix`` and nothing else — noise sd 5–50 % of the planned change (was 2–25 %)
and realised/planned change log-normal with sd 0.25 (was 0.45) — chosen on a grid of
72 mixes (noise, ambition, stall share, event timing, random-walk spread) on 600
measures of seed 21, by the least total distance of the four rule scores to the
published ones, before any forecaster was run on it. On seeds 13/14 the synthetic part
then scores naive 0.66 / 0.65 at 50 % and 0.73 / 0.69 at 75 %, linear 0.62 / 0.62 and
0.69 / 0.68, fall back 0.30 / 0.35, at-risk achieve 0.36 / 0.39: all within 0.045 of
the published figures (``--uncalibrated`` runs the first mix).
What was not published (the achieved share, the shape mix, the noise) is not matched;
the real statsmodels series are unchanged.

What the calibration implies: with outcomes that close to their targets relative to
the noise, the final value is partly a coin flip. ``oracle_accuracy_synthetic`` scores
an oracle that knows each synthetic measure's noiseless curve to its end (future steps
and launches included; not the noise of the deciding value, nor a random walk's steps
still to come): on seeds 13/14 it reaches 0.79–0.80 at 50 % and 0.80 at 75 %. The
issue's "+8 points over the naive rule at 75 %" (0.73 + 0.08 = 0.81) is above that
ceiling on a portfolio matching the published figures; on the uncalibrated mix the
oracle reaches 0.90–0.93.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.stats import norm

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from outcomes import verdicts  # noqa: E402

CHECKPOINTS = (0.25, 0.5, 0.75)
ACHIEVE = {verdicts.ACHIEVED, verdicts.REACHED, verdicts.ON_TRACK}
MISS = {verdicts.OFF_TRACK, verdicts.MISSED, verdicts.AT_RISK}
SHAPES = ("linear", "s_curve", "plateau", "step", "fade", "random_walk")
START = date(2024, 1, 1)  # a Monday


@dataclass
class Case:
    source: str  # synthetic:<shape>:<frequency> or real:<series>
    spec: verdicts.MeasureSpec
    periods: list[datetime]
    values: list[float]
    achieved: bool
    final_value: float
    # Synthetic measures: P(achieved) at a timeline fraction for an oracle that knows
    # the generator's noiseless curve to the end (not the noise to come, nor a random
    # walk's steps to come): the ceiling any forecaster can reach on this portfolio.
    oracle: Callable[[float], float] | None = None


def _moment(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _outcome(spec: verdicts.MeasureSpec, periods, values) -> tuple[bool, float] | None:
    """Whether the latest value on the target date holds the target."""
    end = _moment(spec.target_date)
    final = [v for p, v in zip(periods, values, strict=True) if p <= end]
    if not final:
        return None
    return bool(spec.holds(final[-1])), float(final[-1])


# --- Synthetic portfolio ------------------------------------------------------------------


@dataclass(frozen=True)
class Mix:
    """The generator's knobs (see "Calibration" in the module docstring).

    noise: range of the noise sd, as a fraction of the planned change; ambition: mean
    and sd of log(realised change / planned change); stall: share of measures that
    barely move (realised change within ±30 % of the plan's, either way); events: the
    range, in timeline fractions, where steps fall (S-curve midpoints 0.25 later and
    0.05 earlier; launches that fade from its start to 0.5); walk: range of a random
    walk's spread over the timeline, as a fraction of the plan.
    """

    noise: tuple[float, float] = (0.02, 0.25)
    ambition: tuple[float, float] = (0.0, 0.45)
    stall: float = 0.12
    events: tuple[float, float] = (0.05, 0.8)
    walk: tuple[float, float] = (0.3, 0.8)


UNCALIBRATED = Mix()
# Matched to the held-out portfolio's published baseline scores (module docstring).
CALIBRATED = Mix(noise=(0.05, 0.5), ambition=(0.0, 0.25))


def _shape(rng: np.random.Generator, kind: str, u: np.ndarray, mix: Mix) -> np.ndarray:
    """Fraction of the realised change reached at u (0 = baseline date, 1 = target date)."""
    after = np.clip(u, 0, None)
    lo, hi = mix.events
    if kind == "linear":
        return after
    if kind == "s_curve":
        centre, steep = rng.uniform(lo + 0.25, hi - 0.05), rng.uniform(6, 16)

        def f(z):
            return 1 / (1 + np.exp(-steep * (z - centre)))

        return (f(after) - f(0)) / (f(1) - f(0))
    if kind == "plateau":
        knee = rng.uniform(0.2, 0.7)
        return np.minimum(after / knee, 1.0)
    if kind == "step":
        when = rng.uniform(lo, hi)
        return (u >= when).astype(float)
    if kind == "fade":
        when, decay, peak = rng.uniform(lo, 0.5), rng.uniform(0.05, 0.35), rng.uniform(0.3, 1)
        since = u - when
        return np.where(since >= 0, 1 + peak * np.exp(-np.clip(since, 0, None) / decay), 0.0)
    raise ValueError(kind)


def synthetic_case(rng: np.random.Generator, index: int, mix: Mix = CALIBRATED) -> Case | None:
    daily = rng.random() < 0.6
    step = 1 if daily else 7
    length = int(rng.integers(60, 366)) if daily else int(rng.integers(20, 79)) * 7
    pre = 0 if rng.random() < 0.4 else int(rng.uniform(0.1, 1.0) * length)
    kind = SHAPES[index % len(SHAPES)]
    level = float(np.exp(rng.normal(6, 1.5)))
    increase = rng.random() < 0.7
    planned = level * rng.uniform(0.1, 0.6) * (1 if increase else -1)
    # Reality against the plan: usually in the right direction, by more or less.
    realised = planned * float(np.exp(rng.normal(*mix.ambition)))
    if rng.random() < mix.stall:
        realised = planned * rng.uniform(-0.3, 0.3)
    days = np.arange(-pre, length + 1, step, dtype=float)
    u = days / length
    noise_sd = abs(planned) * rng.uniform(*mix.noise)
    if kind == "random_walk":
        walk = np.cumsum(
            rng.normal(
                0, abs(planned) * rng.uniform(*mix.walk) / math.sqrt(length / step), len(days)
            )
        )
        walk -= walk[pre // step]
        values = level + realised * np.clip(u, 0, None) * rng.uniform(0, 1) + walk
    else:
        values = level + realised * _shape(rng, kind, u, mix)
    noiseless = values.copy()
    values = values + rng.normal(0, noise_sd, len(days))
    if daily and rng.random() < 0.5:
        weekly = rng.normal(0, abs(planned) * rng.uniform(0.05, 0.3), 7)
        weekdays = (START.weekday() + days.astype(int)) % 7
        values = values + (weekly - weekly.mean())[weekdays]
        noiseless = noiseless + (weekly - weekly.mean())[weekdays]
    if rng.random() < 0.3:
        spikes = rng.random(len(days)) < 0.02
        values = values + spikes * rng.choice([-1, 1], len(days)) * abs(planned) * rng.uniform(
            0.3, 1.0
        )
    keep = np.ones(len(days), dtype=bool)
    if rng.random() < 0.3:
        keep &= rng.random(len(days)) > rng.uniform(0.05, 0.15)
    if rng.random() < 0.1:
        start = int(rng.integers(0, len(days)))
        keep[start : start + max(1, len(days) // 10)] = False
    keep[-1] = True  # the target date's value decides the outcome
    baseline_date = START + timedelta(days=pre)
    periods = [_moment(START + timedelta(days=int(d + pre))) for d in days[keep]]
    observed = [float(v) for v in values[keep]]
    spec = verdicts.MeasureSpec(
        direction=verdicts.INCREASE if increase else verdicts.DECREASE,
        baseline_value=level,
        baseline_date=baseline_date,
        target_value=float(level + planned),
        target_date=baseline_date + timedelta(days=length),
    )
    outcome = _outcome(spec, periods, observed)
    if outcome is None:
        return None
    sign = 1.0 if increase else -1.0

    def oracle(fraction: float) -> float:
        end, spread = float(noiseless[-1]), noise_sd**2
        if kind == "random_walk":  # the steps after the moment are still to come
            seen = pre // step + int(fraction * length / step)
            end -= float(walk[-1] - walk[seen])
            spread += (len(walk) - 1 - seen) * float(np.var(np.diff(walk)))
        return float(norm.cdf(sign * (end - spec.target_value) / math.sqrt(spread)))

    return Case(
        f"synthetic:{kind}:{'daily' if daily else 'weekly'}",
        spec,
        periods,
        observed,
        *outcome,
        oracle=oracle,
    )


# --- Real public series (statsmodels.datasets) ------------------------------------------------


def _real_series() -> list[tuple[str, int, np.ndarray]]:
    """(name, days per period, values) of the bundled series used here."""
    import statsmodels.datasets as datasets

    series = []
    co2 = datasets.co2.load_pandas().data["co2"].interpolate().to_numpy(dtype=float)
    series.append(("co2_weekly", 7, co2))
    macro = datasets.macrodata.load_pandas().data
    for column in ("realgdp", "realcons", "realinv", "cpi", "unemp", "m1", "realdpi", "infl"):
        series.append((f"macro_{column}_quarterly", 91, macro[column].to_numpy(dtype=float)))
    elnino = datasets.elnino.load_pandas().data.drop(columns="YEAR").to_numpy(dtype=float)
    series.append(("elnino_monthly", 30, elnino.reshape(-1)))
    series.append(("nile_yearly", 365, datasets.nile.load_pandas().data["volume"].to_numpy(float)))
    sun = datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(float)
    series.append(("sunspots_yearly", 365, sun))
    return series


def real_cases(rng: np.random.Generator, per_series: int) -> list[Case]:
    """Windows of each real series: as long a history before the baseline as the
    timeline; the target is the pre-baseline trend carried over the timeline, times an
    ambition between 0.5 and 1.5 (or ± one history sd when there is no trend)."""
    cases = []
    for name, days_per, values in _real_series():
        length = {7: 52, 91: 20, 30: 24, 365: 20}[days_per]
        for _ in range(per_series):
            if len(values) < 2 * length + 1:
                break
            start = int(rng.integers(0, len(values) - 2 * length))
            window = values[start : start + 2 * length + 1]
            history = window[: length + 1]
            baseline = float(history[-1])
            slope = float(np.polyfit(np.arange(length + 1), history, 1)[0])
            change = slope * length * rng.uniform(0.5, 1.5)
            spread = float(np.std(history)) or 1.0
            if abs(change) < 0.25 * spread:
                change = spread * rng.choice([-1, 1]) * rng.uniform(0.5, 1.5)
            baseline_date = START + timedelta(days=length * days_per)
            spec = verdicts.MeasureSpec(
                direction=verdicts.INCREASE if change > 0 else verdicts.DECREASE,
                baseline_value=baseline,
                baseline_date=baseline_date,
                target_value=float(baseline + change),
                target_date=baseline_date + timedelta(days=length * days_per),
            )
            periods = [_moment(START + timedelta(days=i * days_per)) for i in range(len(window))]
            observed = [float(v) for v in window]
            outcome = _outcome(spec, periods, observed)
            if outcome is not None:
                cases.append(Case(f"real:{name}", spec, periods, observed, *outcome))
    return cases


# --- Scoring ---------------------------------------------------------------------------------


def _balanced(pairs: list[tuple[bool | None, bool]]) -> float:
    """Mean recall of the two classes; an abstention (None) is wrong in either."""
    recalls = []
    for truth in (True, False):
        row = [said for said, real in pairs if real == truth]
        if row:
            recalls.append(sum(said is truth for said in row) / len(row))
    return sum(recalls) / len(recalls)


def _accuracy(pairs: list[tuple[bool | None, bool]]) -> float:
    return sum(said is real for said, real in pairs) / len(pairs)


def _says(status: str | None) -> bool | None:
    if status in ACHIEVE:
        return True
    if status in MISS:
        return False
    return None


def checkpoint(cases: list[Case], fraction: float, tolerance: verdicts.Tolerance) -> dict:
    status_pairs, plan_pairs, naive_pairs = [], [], []
    brier, covered = [], []
    deciles = [[0, 0.0, 0] for _ in range(10)]
    statuses: Counter[str] = Counter()
    at_risk = [0, 0]
    oracle_pairs = []
    elapsed = 0.0
    for case in cases:
        if case.oracle is not None:
            oracle_pairs.append((case.oracle(fraction) >= 0.5, case.achieved))
        spec = case.spec
        span = (spec.target_date - spec.baseline_date).days
        moment = _moment(spec.baseline_date) + timedelta(days=span * fraction, hours=12)
        observed = list(zip(case.periods, case.values, strict=True))
        started = time.perf_counter()
        verdict = verdicts.evaluate(spec, observed, moment, tolerance)
        elapsed += time.perf_counter() - started
        status = verdict.judged_status
        statuses[status or verdicts.NO_DATA] += 1
        status_pairs.append((_says(status), case.achieved))
        plan_pairs.append((_says(verdict.plan_status), case.achieved))
        latest = verdict.latest_value
        naive_pairs.append((latest is not None and spec.holds(latest), case.achieved))
        probability = verdict.forecast.probability
        p = 0.5 if probability is None else probability
        brier.append((p - case.achieved) ** 2)
        bucket = deciles[min(int(p * 10), 9)]
        bucket[0] += 1
        bucket[1] += p
        bucket[2] += case.achieved
        low, high = verdict.forecast.low, verdict.forecast.high
        covered.append(low is not None and low <= case.final_value <= high)
        if status == verdicts.AT_RISK:
            at_risk[0] += 1
            at_risk[1] += case.achieved
    return {
        "status_accuracy": round(_accuracy(status_pairs), 3),
        "status_balanced_accuracy": round(_balanced(status_pairs), 3),
        "linear_rule_accuracy": round(_accuracy(plan_pairs), 3),
        "linear_rule_balanced_accuracy": round(_balanced(plan_pairs), 3),
        "naive_rule_accuracy": round(_accuracy(naive_pairs), 3),
        "naive_rule_balanced_accuracy": round(_balanced(naive_pairs), 3),
        "oracle_accuracy_synthetic": (round(_accuracy(oracle_pairs), 3) if oracle_pairs else None),
        "brier": round(sum(brier) / len(brier), 4),
        "calibration_deciles": [
            {
                "p": f"{i / 10:.1f}-{(i + 1) / 10:.1f}",
                "n": n,
                "mean_p": round(total / n, 3),
                "achieved": round(hits / n, 3),
            }
            for i, (n, total, hits) in enumerate(deciles)
            if n
        ],
        "interval_80_coverage": round(sum(covered) / len(covered), 3),
        "statuses": {k: round(v / len(cases), 3) for k, v in sorted(statuses.items())},
        "at_risk_achieve_rate": round(at_risk[1] / at_risk[0], 3) if at_risk[0] else None,
        "evaluate_ms_per_verdict": round(elapsed * 1000 / len(cases), 3),
        "evaluate_ms_total": round(elapsed * 1000, 1),
    }


def fit_calibration(seeds: list[int], measures: int, real_per_series: int) -> dict:
    """Refit ``verdicts.CALIBRATION`` as it was fitted: at 25/50/75 % of every case of
    these seeds, the regressors ``verdicts.calibration_features`` gets (from the raw
    P(reach), whether the newest value holds the target and the share of the timeline
    ahead; recorded by wrapping ``verdicts.calibrated_probability``, which returns the
    raw P meanwhile, so nothing else in the verdict changes); a binomial
    GLM with probit link (statsmodels) of the outcome on them, the real series weighted
    so that they count as much as the synthetic portfolio. A verdict without a
    forecast records nothing (its P stays None)."""
    import statsmodels.api as sm

    saved = verdicts.calibrated_probability
    rows, outcomes, weights = [], [], []
    recorded: list[tuple[float, ...]] = []

    def record(raw, holding, ahead):
        recorded.append(verdicts.calibration_features(raw, holding, ahead))
        return raw

    verdicts.calibrated_probability = record
    try:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            cases = [c for i in range(measures) if (c := synthetic_case(rng, i)) is not None]
            real = real_cases(rng, real_per_series)
            weight = len(cases) / max(len(real), 1)
            for case in cases + real:
                spec = case.spec
                span = (spec.target_date - spec.baseline_date).days
                observed = list(zip(case.periods, case.values, strict=True))
                for fraction in CHECKPOINTS:
                    moment = _moment(spec.baseline_date) + timedelta(days=span * fraction, hours=12)
                    recorded.clear()
                    verdicts.evaluate(spec, observed, moment)
                    if recorded:
                        rows.append(recorded[-1])
                        outcomes.append(case.achieved)
                        weights.append(weight if case.source.startswith("real:") else 1.0)
    finally:
        verdicts.calibrated_probability = saved
    model = sm.GLM(
        np.asarray(outcomes, dtype=float),
        np.asarray(rows, dtype=float),
        family=sm.families.Binomial(sm.families.links.Probit()),
        var_weights=np.asarray(weights),
    ).fit()
    return {"calibration": [round(float(v), 3) for v in model.params], "verdicts": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measures", type=int, default=1000, help="synthetic measures")
    parser.add_argument("--real-per-series", type=int, default=12)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--fit-calibration",
        type=int,
        nargs="+",
        metavar="SEED",
        help="refit verdicts.CALIBRATION on these seeds (it was fitted on 21 22) and exit",
    )
    parser.add_argument(
        "--uncalibrated", action="store_true", help="the first, uncalibrated generator mix"
    )
    args = parser.parse_args()
    if args.fit_calibration:
        print(
            json.dumps(fit_calibration(args.fit_calibration, args.measures, args.real_per_series))
        )
        return

    rng = np.random.default_rng(args.seed)
    mix = UNCALIBRATED if args.uncalibrated else CALIBRATED
    cases = [c for i in range(args.measures) if (c := synthetic_case(rng, i, mix)) is not None]
    real = real_cases(rng, args.real_per_series)
    portfolio = cases + real
    tolerance = verdicts.DEFAULT_TOLERANCE
    result = {
        "benchmark": "verdict_backtest",
        "seed": args.seed,
        "measures": len(portfolio),
        "synthetic": len(cases),
        "real": len(real),
        "achieved_share": round(sum(c.achieved for c in portfolio) / len(portfolio), 3),
        "thresholds": {
            "on_track_probability": tolerance.on_track_probability,
            "at_risk_probability": tolerance.at_risk_probability,
        },
        "checkpoints": {
            f"{int(f * 100)}%": checkpoint(portfolio, f, tolerance) for f in CHECKPOINTS
        },
        "real_only": {
            f"{int(f * 100)}%": {
                k: v
                for k, v in checkpoint(real, f, tolerance).items()
                if k
                in (
                    "status_accuracy",
                    "linear_rule_accuracy",
                    "naive_rule_accuracy",
                    "brier",
                    "interval_80_coverage",
                )
            }
            for f in CHECKPOINTS
        },
    }
    at50 = result["checkpoints"]["50%"]
    at75 = result["checkpoints"]["75%"]
    at25 = result["checkpoints"]["25%"]

    def margin(cp: dict) -> float:
        return cp["status_accuracy"] - max(cp["linear_rule_accuracy"], cp["naive_rule_accuracy"])

    result["meets_targets"] = {
        "accuracy_50": at50["status_accuracy"] >= 0.75,
        "margin_50": margin(at50) >= 0.08,
        "margin_75": margin(at75) >= 0.08,
        "not_below_25": margin(at25) >= 0,
        "brier_50": at50["brier"] <= 0.18,
        "coverage_50": 0.75 <= at50["interval_80_coverage"] <= 0.85,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
