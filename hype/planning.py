"""How many evaluators a study needs, and what they cost, stated with the assumptions behind it.

`hype plan` simulates studies from a psychometric population (hype.simulate) and bootstraps each.
Without a study the population is hype's default; with a study that already has evaluators it is fitted
to the study's own per-evaluator scores, per model, so the forecast describes this crowd and these
models. Cost per evaluator follows the study's pay: the base pay plus the bonus per right answer at the
accuracy the population implies. Pure: numpy and hype's pure modules only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from hype import simulate as sm
from hype.protocol import StudySettings

__all__ = ["Assumptions", "fit_population", "describe_population", "cost_per_evaluator", "evaluators_for_halfwidth"]

MIN_EVALUATORS_TO_FIT = 5


@dataclass(frozen=True)
class Assumptions:
    population: sm.Population
    source: str  # "hype's default population" or "fitted to N evaluators of model M"
    trials_per_evaluator: int
    cost_per_evaluator_usd: float


def fit_population(mode: str, scores: Sequence[float], default: sm.Population | None = None) -> sm.Population | None:
    """A population matching the study's per-evaluator scores, or None below MIN_EVALUATORS_TO_FIT.

    HYPE-infinity: the median evaluator's accuracy from the median error rate (fakes and reals alike),
    and the between-evaluator logit spread from the scores' spread (binomial noise of 100 trials is part
    of what is observed, so the fitted spread is an upper bound: plans err on the side of more evaluators).
    HYPE-time: the median 75% threshold and the SD of log thresholds from the evaluator scores."""
    base = default or sm.Population()
    x = np.asarray([s for s in scores if s is not None and math.isfinite(s)], dtype=float)
    if x.size < MIN_EVALUATORS_TO_FIT:
        return None
    if mode == "hype-infinity":
        err = np.clip(x, 0.01, 0.49)
        acc = float(1 - np.median(err))
        logits = np.log((1 - err) / err)
        sd = float(np.std(logits, ddof=1))
        return replace(base, fake_accuracy=acc, real_accuracy=acc, ability_sd=sd, criterion_sd=0.0, lapse=0.0)
    positive = x[x > 0]
    if positive.size < MIN_EVALUATORS_TO_FIT:
        return None
    logs = np.log(positive)
    return replace(base, threshold_ms=float(np.exp(np.median(logs))), threshold_sd=float(np.std(logs, ddof=1)))


def describe_population(mode: str, pop: sm.Population) -> str:
    """The assumed psychometric population in words, for the CLI and the dashboard."""
    if mode == "hype-infinity":
        return (f"median evaluator right on {100 * pop.fake_accuracy:.0f}% of fakes and {100 * pop.real_accuracy:.0f}% of "
                f"reals; between evaluators a logit SD of {pop.ability_sd:.2f} in skill and {pop.criterion_sd:.2f} in the "
                f"tendency to answer 'fake'; lapses {100 * pop.lapse:.0f}%")
    return (f"median 75% threshold {pop.threshold_ms:.0f} ms, log-SD {pop.threshold_sd:.2f} between evaluators; "
            f"Weibull slope {pop.slope:g}; accuracy with unlimited time {100 * pop.fake_accuracy:.0f}% on fakes, "
            f"{100 * pop.real_accuracy:.0f}% on reals; lapses {100 * pop.lapse:.0f}%")


def cost_per_evaluator(settings: StudySettings, pop: sm.Population) -> tuple[int, float]:
    """(task trials, expected pay in USD) of one evaluator: base pay plus the bonus per right answer.
    HYPE-time's staircase holds evaluators near 75% right; HYPE-infinity's accuracy is the population's."""
    real, fake = settings.task_counts()
    trials = real + fake
    if settings.mode == "hype-time":
        accuracy = 0.75
    else:
        accuracy = float(1 - sm.true_infinity_rates(pop, max(fake, 1), max(real, 1)).overall)
    return trials, settings.pay.base_usd + settings.pay.bonus_per_correct_usd * accuracy * trials


def evaluators_for_halfwidth(rows: Sequence[Any], target: float) -> int | None:
    """Fewest evaluators whose expected half-width reaches `target`, from plan rows (interpolated as
    1/sqrt(n) between the simulated sizes; None if even the largest size falls short)."""
    ordered = sorted(rows, key=lambda r: r.n_evaluators)
    for prev, row in zip([None, *ordered[:-1]], ordered):
        if row.mean_halfwidth <= target:
            if prev is None:
                return row.n_evaluators
            # half-width ~ c / sqrt(n): solve between the two simulated sizes
            c = row.mean_halfwidth * math.sqrt(row.n_evaluators)
            return max(prev.n_evaluators + 1, min(row.n_evaluators, math.ceil((c / target) ** 2)))
    return None
