"""A second, independently written synthetic portfolio for the verdict backtest (issue 11).

Run from the repository root::

    .venv/bin/python bench/verdict_portfolio_alt.py --seed 1 --measures 1000

Why: issue 11's figures are checked on a held-out portfolio described only by the issue's
text and by the scores of two forecast-free rules. ``bench/verdict_backtest.py`` has a
generator written by the forecaster's authors; this one was written without reading that
generator or the forecaster (only ``Case``, ``_outcome`` and the scoring functions of
``bench/verdict_backtest.py`` are reused, by import), to see whether the method
generalises to someone else's idea of "business measures".

Generator (``alt_cases``), one measure at a time:

- **Frequency and horizon.** Daily (60 %) with 90-365 days to the target date, or weekly
  (40 %) with 13-78 weeks. Half the measures also have history before the baseline
  (10-60 % of the horizon), which carries on a pre-existing trend for some.
- **Curve** ``level + lift * g(s)`` over the timeline fraction ``s`` (0 at the baseline,
  1 at the target date), ``g(0) = 0``. Shapes: ``linear`` (g = s); ``s_curve`` (a
  logistic centred at 0.25-0.75); ``plateau`` (saturating rise, time constant
  8-30 % of the horizon); ``step`` (a launch at 15-85 % with a short ramp);
  ``fade`` (a launch lift at 10-60 % decaying, time constant 10-40 %, to 0-60 % of its
  peak: the "novelty effect" that reaches the target early and falls back);
  ``random_walk`` (a drifting random walk whose spread over the horizon is comparable
  with the ambition).
- **Scale and direction.** Level ``10**U(0, 5)`` (rates, counts, revenue); 70 % of measures
  should increase, 30 % decrease (churn, cost, handling time).
- **Target.** Set at the baseline by a product owner from what is known then: the baseline
  is the observed value on the baseline date (or, with history, the mean of the last
  week/month, seasonality and noise included); the target is the baseline moved by an
  *ambition* ``a`` = lognormal(median ``ambition_median``, sigma ``ambition_sigma``) of
  the baseline, clipped to [2 %, 150 %] (60 % for decreases).
- **Delivery.** What actually happens is ``lift = a * level * r``: the delivery ratio ``r``
  is lognormal(median ``delivery_median``, sigma ``delivery_sigma``) for most initiatives
  and ``N(0, 0.25)`` (no effect) for a ``flop_share`` of them. Fades peak at
  ``fade_peak`` times that.
- **Noise.** AR(1) deviations (rho 0-0.6 daily, 0-0.4 weekly) with a coefficient of
  variation lognormal around ``noise_cv`` of the level (weekly: ``weekly_noise_factor``
  times less). Daily measures get a weekday pattern (70 %: a weekend dip or, for a third,
  a weekend peak, amplitude 5-35 %). Outliers on 35 % of measures (1-4 % of points:
  tracking outages at 0-30 % of the value, or bot/campaign spikes at 1.5-3x). Gaps on
  30 % of measures (1-3 missing blocks of 2-12 % of the horizon, 3 % of single points);
  the baseline point is never missing, the target-date point may be.
- **Outcome** as ``verdict_backtest._outcome``: the latest value on the target date holds
  the target. **Oracle**: P(outcome) by Monte Carlo given the noiseless curve (and weekday
  factor) at the last observed period on or before the target date, the AR state and the
  random walk's level at the checkpoint, the noise and outlier laws; not the draws to come.

Calibration (the free knobs, ``Knobs``): the published forecast-free scores of the
held-out portfolio are naive ("the latest value already meets the target") 0.62 at 50 %
and 0.73 at 75 %, the linear expected-state rule 0.61 and 0.69; a third of measures that
reach the target early later fall back; at-risk measures by the linear rule achieve
32-44 %. The knobs were tuned by hand over about 20 settings on seeds 101-104 (1,000
measures each) with ``--rules-only``, which prints the forecast-free figures only, so the
method's scores were not looked at while tuning (one smoke run of the first draft showed
them). From the first draft (noise 4 %, delivery median 1.0, flops 25 %, fade peak 1.4,
plateau time constant 5-25 %, linear-heavy mix: naive 0.72 / 0.78, linear
0.69 / 0.75 at 50 / 75 %, fall-back 0.29, achieved share 0.38) the defaults moved to:
daily noise CV 10 % (weekly 5 %), delivery median 1.3 (sigma 0.5), flops 15 %, fade peak
1.6, shape weights linear 0.1, s_curve 0.2, plateau 0.2, step 0.2, fade 0.25,
random_walk 0.15; ambition median 15 % (sigma 0.6) unchanged. On seeds 101-104 they give
naive 0.62-0.66 (mean 0.64) at 50 % and 0.69-0.73 (0.71) at 75 %, linear 0.62-0.65 (0.63)
and 0.68-0.71 (0.70), fall-back share at 50 % 0.26-0.36, linear-rule at-risk achieve rate
at 50 % 0.37-0.57, achieved share 0.49-0.53. On the report seeds 1-3: naive 0.63-0.65 and
0.70-0.74, linear 0.64-0.66 and 0.69-0.72, fall-back 0.29-0.32, at-risk 0.29-0.47. Seed to
seed the rules move by about +-0.02; settings within that of these (delivery 1.4, flops
20 %, more steps and S-curves, more plateaus) were not better. What moved the figures: the
achieved share (``delivery_median``, ``flop_share``: naive and linear together), noise
(both down, fall-back up) and the ``fade`` share and peak (fall-back up, naive at 50 %
down). The oracle is calibrated (seed 7, bins of 0.2: predicted 0.06 / 0.30 / 0.50 / 0.70 / 0.95,
achieved 0.07 / 0.30 / 0.57 / 0.67 / 0.97 at 50 %; Brier 0.11).

What it showed (session 15, the method as it stood, seeds 1-3, 1,000 measures each;
accuracy at 25 / 50 / 75 %): the method 0.56-0.59 / 0.66-0.67 / 0.76-0.78, the linear
rule 0.62-0.63 / 0.64-0.66 / 0.69-0.72, the naive rule 0.57-0.60 / 0.63-0.65 /
0.70-0.74, the oracle 0.81-0.84 / 0.82-0.84 / 0.82-0.85; Brier 0.23-0.24 / 0.21 /
0.15-0.17; 80 % coverage 0.80 / 0.82 / 0.83. So on a portfolio written apart from the
forecaster the method generalises as it does on ``verdict_backtest.py``'s (0.68 at 50 %,
Brier 0.21, coverage in range) but falls 1-6 points short of the linear rule at 25 %,
and the oracle shows there is more to find than it finds: steps still to come (0.57-0.63
at 50 %, Brier worse than a coin) and fades (0.60-0.63, below the naive rule) are where
it loses. Refitting ``verdicts.CALIBRATION`` on both portfolios, or moving the
forecaster's constants (``DAMPING_SPAN`` 3 → 6 or 12, ``PLAN_DOUBT`` 0.6 → 0.3 or 1,
``TREND_DOUBT`` 0.3 → 0.15 or 0.5, ``OPEN_ODDS`` 0.3 → 0, each with the calibration
refitted on seeds 21 + 101 and scored on 13 + 1) moved accuracy at 50 % by under one
point on either portfolio.

Output: one JSON object, per checkpoint (25/50/75 %) the scores of
``verdict_backtest.checkpoint`` (method, linear rule, naive rule, oracle), plus per-shape
and per-frequency accuracies, the linear rule's at-risk achieve rate, the shape mix and
the achieved share.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass, fields
from datetime import date, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.verdict_backtest import (  # noqa: E402
    CHECKPOINTS,
    Case,
    _accuracy,
    _moment,
    _outcome,
    _says,
    checkpoint,
)
from outcomes import verdicts  # noqa: E402

SHAPES = ("linear", "s_curve", "plateau", "step", "fade", "random_walk")
FIRST_BASELINE = date(2023, 1, 2)  # a Monday
ORACLE_DRAWS = 4000


@dataclass
class Knobs:
    """The generator's free parameters (see the module docstring for the calibration)."""

    noise_cv: float = 0.10  # median coefficient of variation of daily noise
    noise_sigma: float = 0.6  # lognormal spread of that CV across measures
    weekly_noise_factor: float = 0.5  # weekly values are aggregates: less noisy
    ambition_median: float = 0.15  # target = baseline * (1 +- ambition)
    ambition_sigma: float = 0.6
    delivery_median: float = 1.3  # lift / ambition for initiatives that work
    delivery_sigma: float = 0.5
    flop_share: float = 0.15  # initiatives with no effect at all
    fade_peak: float = 1.6  # a fading launch peaks at this times its delivery
    rw_spread: float = 0.8  # random walk: sd over the horizon / ambition
    daily_share: float = 0.6
    pre_history_share: float = 0.5
    outlier_share: float = 0.35
    gap_share: float = 0.3
    # Shape weights (normalised by ``mix``).
    mix_linear: float = 0.1
    mix_s_curve: float = 0.2
    mix_plateau: float = 0.2
    mix_step: float = 0.2
    mix_fade: float = 0.25
    mix_random_walk: float = 0.15

    def mix(self) -> np.ndarray:
        weights = np.array([getattr(self, f"mix_{s}") for s in SHAPES], dtype=float)
        return weights / weights.sum()


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def _shape_curve(rng: np.random.Generator, shape: str, s: np.ndarray) -> tuple[np.ndarray, dict]:
    """g(s) for s >= 0 with g(0) = 0 (g(1) = 1 except for fades: their peak is 1)."""
    t = np.clip(s, 0.0, None)
    if shape == "linear":
        return t.copy(), {}
    if shape == "s_curve":
        c, k = rng.uniform(0.25, 0.75), rng.uniform(6, 15)
        lo, hi = _logistic(-k * c), _logistic(k * (1 - c))
        return (_logistic(k * (t - c)) - lo) / (hi - lo), {"centre": c, "steepness": k}
    if shape == "plateau":
        tau = rng.uniform(0.08, 0.3)
        return (1 - np.exp(-t / tau)) / (1 - math.exp(-1 / tau)), {"tau": tau}
    if shape == "step":
        s0, width = rng.uniform(0.15, 0.85), rng.uniform(0.0, 0.05)
        g = np.clip((t - s0) / width, 0, 1) if width > 1e-3 else (t >= s0).astype(float)
        return g, {"launch": s0}
    if shape == "fade":
        s0, tau, keep = rng.uniform(0.1, 0.6), rng.uniform(0.1, 0.4), rng.uniform(0.0, 0.6)
        after = keep + (1 - keep) * np.exp(-(t - s0) / tau)
        return np.where(t >= s0, after, 0.0), {"launch": s0, "tau": tau, "keep": keep}
    # random_walk: the deterministic part is the drift; the walk is added by the caller
    return t.copy(), {}


def _weekday_factors(rng: np.random.Generator) -> np.ndarray:
    """Multiplicative factor per weekday (Monday = 0), mean 1."""
    amplitude = rng.uniform(0.05, 0.35)
    sign = -1.0 if rng.random() < 2 / 3 else 1.0  # weekend dip (B2B) or peak (consumer)
    factors = np.ones(7)
    factors[5:] += sign * amplitude
    factors[:5] += rng.normal(0, amplitude / 6, 5)
    return factors / factors.mean()


def _outlier_multiplier(rng: np.random.Generator, size) -> np.ndarray:
    outage = rng.random(size) < 0.5
    return np.where(outage, rng.uniform(0.0, 0.3, size), rng.uniform(1.5, 3.0, size))


def alt_case(rng: np.random.Generator, index: int, knobs: Knobs) -> Case | None:
    """One synthetic measure with its outcome and oracle; None when it has no outcome."""
    shape = SHAPES[rng.choice(len(SHAPES), p=knobs.mix())]
    daily = rng.random() < knobs.daily_share
    step_days = 1 if daily else 7
    n = (
        int(rng.choice([90, 120, 180, 270, 365]))
        if daily
        else int(rng.choice([13, 26, 39, 52, 78]))
    )
    pre = int(rng.uniform(0.1, 0.6) * n) if rng.random() < knobs.pre_history_share else 0
    if daily and pre:
        pre = max(pre, 14)
    baseline_date = FIRST_BASELINE + timedelta(days=int(rng.integers(0, 900)))
    if not daily:
        baseline_date -= timedelta(days=baseline_date.weekday())
    idx = np.arange(-pre, n + 1)
    s = idx / n
    days = [baseline_date + timedelta(days=int(i) * step_days) for i in idx]

    increase = rng.random() < 0.7
    sign = 1.0 if increase else -1.0
    level = 10 ** rng.uniform(0, 5)
    ambition = float(
        np.clip(
            rng.lognormal(math.log(knobs.ambition_median), knobs.ambition_sigma),
            0.02,
            1.5 if increase else 0.6,
        )
    )
    if rng.random() < knobs.flop_share:
        ratio = rng.normal(0.0, 0.25)
    else:
        ratio = rng.lognormal(math.log(knobs.delivery_median), knobs.delivery_sigma)
    if shape == "fade":
        ratio *= knobs.fade_peak
    lift = sign * ambition * level * ratio
    if not increase:
        lift = max(lift, -0.9 * level)  # a decreasing measure stays positive

    g, _ = _shape_curve(rng, shape, s)
    # Before the baseline: flat, or (for some) the same trend already under way.
    pre_slope = rng.uniform(0.2, 1.0) if (shape == "linear" and rng.random() < 0.5) else 0.0
    pre_slope += rng.normal(0, 0.1)
    g = np.where(s < 0, pre_slope * s, g)
    mu = level + lift * g

    walk = np.zeros(len(idx))
    rw_sd = 0.0
    if shape == "random_walk":
        rw_sd = knobs.rw_spread * rng.lognormal(0, 0.4) * ambition * level / math.sqrt(n)
        steps = rng.normal(0, rw_sd, len(idx))
        walk = np.cumsum(steps)
        walk -= walk[pre]  # the walk is at the level on the baseline date
    latent = mu + walk

    cv = rng.lognormal(math.log(knobs.noise_cv), knobs.noise_sigma)
    if not daily:
        cv *= knobs.weekly_noise_factor
    cv = float(np.clip(cv, 0.003, 0.4))
    sigma = cv * level
    rho = rng.uniform(0, 0.6) if daily else rng.uniform(0, 0.4)
    noise = np.empty(len(idx))
    noise[0] = rng.normal(0, sigma)
    innovations = rng.normal(0, sigma * math.sqrt(1 - rho**2), len(idx))
    for i in range(1, len(idx)):
        noise[i] = rho * noise[i - 1] + innovations[i]

    season = np.ones(len(idx))
    if daily and rng.random() < 0.7:
        factors = _weekday_factors(rng)
        season = np.array([factors[d.weekday()] for d in days])

    p_out = rng.uniform(0.01, 0.04) if rng.random() < knobs.outlier_share else 0.0
    baseline_window = range(max(0, pre - (7 if daily else 4) + 1), pre + 1) if pre else [0]
    outlier = np.ones(len(idx))
    hit = rng.random(len(idx)) < p_out
    hit[list(baseline_window)] = False
    outlier[hit] = _outlier_multiplier(rng, int(hit.sum()))

    values = np.maximum((latent + noise) * season * outlier, 0.0)

    present = np.ones(len(idx), dtype=bool)
    if rng.random() < knobs.gap_share:
        for _ in range(int(rng.integers(1, 4))):
            length = max(1, int(rng.uniform(0.02, 0.12) * n))
            start = int(rng.integers(1, n + 1))
            present[pre + start : pre + start + length] = False
        present[rng.random(len(idx)) < 0.03] = False
        present[list(baseline_window)] = True

    baseline = float(np.mean(values[list(baseline_window)]))
    if baseline <= 0:
        return None
    target = baseline * (1 + sign * ambition)
    spec = verdicts.MeasureSpec(
        direction=verdicts.INCREASE if increase else verdicts.DECREASE,
        baseline_value=baseline,
        baseline_date=baseline_date,
        target_value=float(target),
        target_date=baseline_date + timedelta(days=n * step_days),
    )
    keep = np.flatnonzero(present)
    periods = [_moment(days[i]) for i in keep]
    observed = [float(values[i]) for i in keep]
    outcome = _outcome(spec, periods, observed)
    if outcome is None:
        return None
    final_i = int(keep[keep <= pre + n][-1])

    oracle_rng_seed = int(rng.integers(0, 2**31))

    def oracle(fraction: float) -> float:
        """P(outcome) knowing the curve, the AR state and the walk at the checkpoint."""
        span = (spec.target_date - spec.baseline_date).days
        moment = span * fraction + 0.5  # days after the baseline, as checkpoint() uses
        k = pre + int(math.floor(moment / step_days))  # the last period started by then
        if k >= final_i:
            return float(outcome[0])
        draws = np.random.default_rng(oracle_rng_seed + int(fraction * 1000))
        h = final_i - k
        mean = mu[final_i] + walk[k] + rho**h * noise[k]
        var = sigma**2 * (1 - rho ** (2 * h)) + rw_sd**2 * h
        final = mean + math.sqrt(var) * draws.standard_normal(ORACLE_DRAWS)
        spike = draws.random(ORACLE_DRAWS) < p_out
        mult = np.where(spike, _outlier_multiplier(draws, ORACLE_DRAWS), 1.0)
        final = np.maximum(final * season[final_i] * mult, 0.0)
        holds = final >= target if increase else final <= target
        return float(holds.mean())

    return Case(
        f"synthetic-alt:{shape}:{'daily' if daily else 'weekly'}",
        spec,
        periods,
        observed,
        *outcome,
        oracle=oracle,
    )


def alt_cases(rng: np.random.Generator, n: int, knobs: Knobs | None = None) -> list[Case]:
    """``n`` synthetic measures (fewer if one has no outcome; practically never).

    ``rng``: numpy Generator; the same seed gives the same portfolio. Each ``Case.source``
    is ``synthetic-alt:<shape>:<daily|weekly>``; see the module docstring for the law.
    """
    knobs = knobs or Knobs()
    return [c for i in range(n) if (c := alt_case(rng, i, knobs)) is not None]


def _fall_back_share(cases: list[Case], fraction: float) -> float | None:
    """Among measures whose latest value holds the target at the checkpoint, the share
    that misses at the end ("a third of those later fall back")."""
    holding = []
    for case in cases:
        spec = case.spec
        span = (spec.target_date - spec.baseline_date).days
        moment = _moment(spec.baseline_date) + timedelta(days=span * fraction, hours=12)
        seen = [v for p, v in zip(case.periods, case.values, strict=True) if p <= moment]
        if seen and spec.holds(seen[-1]):
            holding.append(case.achieved)
    return round(1 - sum(holding) / len(holding), 3) if holding else None


def run(cases: list[Case], tolerance: verdicts.Tolerance) -> dict:
    """Score the portfolio at 25/50/75 % with ``verdict_backtest.checkpoint``; record each
    verdict (by wrapping ``verdicts.evaluate``) for per-shape and linear-rule figures."""
    recorded: list = []
    original = verdicts.evaluate

    def recording(*args, **kwargs):
        verdict = original(*args, **kwargs)
        recorded.append(verdict)
        return verdict

    checkpoints, by_shape, by_frequency, plan_risk = {}, {}, {}, {}
    verdicts.evaluate = recording
    try:
        for fraction in CHECKPOINTS:
            recorded.clear()
            key = f"{int(fraction * 100)}%"
            checkpoints[key] = checkpoint(cases, fraction, tolerance)
            checkpoints[key]["fall_back_share"] = _fall_back_share(cases, fraction)
            rows = list(zip(cases, recorded, strict=True))
            by_shape[key] = _breakdown(rows, fraction, lambda c: c.source.split(":")[1])
            by_frequency[key] = _breakdown(rows, fraction, lambda c: c.source.split(":")[2])
            plan_counts: dict[str, list[int]] = {}
            for case, verdict in rows:
                cell = plan_counts.setdefault(str(verdict.plan_status), [0, 0])
                cell[0] += 1
                cell[1] += case.achieved
            plan_risk[key] = {
                status: {"n": n, "achieve_rate": round(hits / n, 3)}
                for status, (n, hits) in sorted(plan_counts.items())
            }
    finally:
        verdicts.evaluate = original
    return {
        "checkpoints": checkpoints,
        "by_shape": by_shape,
        "by_frequency": by_frequency,
        "linear_rule_status_achieve_rate": plan_risk,
    }


def _breakdown(rows, fraction: float, group) -> dict:
    groups: dict[str, list] = {}
    for case, verdict in rows:
        groups.setdefault(group(case), []).append((case, verdict))
    out = {}
    for name, members in sorted(groups.items()):
        status = [(_says(v.judged_status), c.achieved) for c, v in members]
        plan = [(_says(v.plan_status), c.achieved) for c, v in members]
        naive = [
            (v.latest_value is not None and c.spec.holds(v.latest_value), c.achieved)
            for c, v in members
        ]
        oracle = [(c.oracle(fraction) >= 0.5, c.achieved) for c, v in members]
        probs = [
            0.5 if v.forecast.probability is None else v.forecast.probability for _, v in members
        ]
        out[name] = {
            "n": len(members),
            "achieved_share": round(sum(c.achieved for c, _ in members) / len(members), 3),
            "status_accuracy": round(_accuracy(status), 3),
            "linear_rule_accuracy": round(_accuracy(plan), 3),
            "naive_rule_accuracy": round(_accuracy(naive), 3),
            "oracle_accuracy": round(_accuracy(oracle), 3),
            "brier": round(
                sum((p - c.achieved) ** 2 for p, (c, _) in zip(probs, members, strict=True))
                / len(members),
                4,
            ),
        }
    return out


def _knobs_from(overrides: list[str]) -> Knobs:
    knobs = Knobs()
    names = {f.name for f in fields(Knobs)}
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in names:
            raise SystemExit(f"Unknown knob {name!r}; use one of {sorted(names)}.")
        setattr(knobs, name, float(value))
    return knobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measures", type=int, default=1000, help="synthetic measures")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--knob", action="append", default=[], metavar="NAME=VALUE", help="override a Knobs field"
    )
    parser.add_argument(
        "--rules-only",
        action="store_true",
        help="calibration: print only the forecast-free figures (naive, linear, oracle)",
    )
    args = parser.parse_args()
    knobs = _knobs_from(args.knob)
    cases = alt_cases(np.random.default_rng(args.seed), args.measures, knobs)
    tolerance = verdicts.DEFAULT_TOLERANCE
    scores = run(cases, tolerance)
    result = {
        "benchmark": "verdict_portfolio_alt",
        "seed": args.seed,
        "measures": len(cases),
        "achieved_share": round(sum(c.achieved for c in cases) / len(cases), 3),
        "shape_mix": dict(sorted(Counter(c.source.split(":")[1] for c in cases).items())),
        "frequency_mix": dict(sorted(Counter(c.source.split(":")[2] for c in cases).items())),
        "knobs": asdict(knobs),
        **scores,
    }
    if args.rules_only:
        # The knobs are tuned on these alone: the method's scores stay out of sight.
        keep = (
            "linear_rule_accuracy",
            "naive_rule_accuracy",
            "oracle_accuracy_synthetic",
            "fall_back_share",
        )
        result = {
            "seed": args.seed,
            "achieved_share": result["achieved_share"],
            "checkpoints": {k: {m: v[m] for m in keep} for k, v in result["checkpoints"].items()},
            "linear_at_risk": {
                k: v.get(verdicts.AT_RISK)
                for k, v in result["linear_rule_status_achieve_rate"].items()
            },
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
