"""Signal detection for HYPE-infinity: sensitivity d' and criterion c, per evaluator and per model.

The error rate mixes two things: how well a person tells fakes from reals (sensitivity) and how ready
they are to answer "real" at all (criterion). Two evaluators with the same error rate can differ in
both; Stein et al.'s participants answered "real" between ~30% and ~70% of the time. d' is free of the
criterion, so it ranks models by how detectable their fakes are, whatever the crowd's mood.

Conventions (Macmillan & Creelman, "Detection theory"): the signal is a FAKE image.
- hit rate H = fakes judged fake / fakes; false-alarm rate F = reals judged fake / reals;
- d' = z(H) - z(F); c = -(z(H) + z(F)) / 2. c > 0: the evaluator leans to "real" (conservative
  about calling anything fake); c < 0: leans to "fake". d' = 0: fakes cannot be told from reals.
  A MORE realistic model has a LOWER d'.
- Rates of 0 or 1 have infinite z. The log-linear correction (Hautus 1995) adds 0.5 to every count
  of hits and false alarms and 1 to every class size, for every evaluator alike (it biases d' less
  than replacing only the extreme rates by 1/(2N)).
- Per model: the mean over evaluators of their d' (and c), with a bootstrap CI over evaluators, as
  the HYPE scores are; pooled counts would mix evaluators with different criteria and understate d'.
Pure: numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri

from hype import scoring
from hype.scoring import ConfidenceInterval, InfinityCounts

__all__ = ["SDT", "ModelSDT", "corrected_rate", "d_prime", "evaluator_sdt", "model_sdt"]


@dataclass(frozen=True, eq=False)
class SDT:
    """Per-evaluator hit and false-alarm rates (corrected), d' and c; arrays in the input's row order."""

    evaluator: np.ndarray
    model: np.ndarray
    hit_rate: np.ndarray
    false_alarm_rate: np.ndarray
    d_prime: np.ndarray
    criterion: np.ndarray


@dataclass(frozen=True)
class ModelSDT:
    """One model's mean d' and c over its included evaluators, each with a bootstrap CI."""

    d_prime: float
    d_prime_ci: ConfidenceInterval
    criterion: float
    criterion_ci: ConfidenceInterval
    n_evaluators: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        f = scoring._json_float
        return {
            "d_prime": f(self.d_prime),
            "d_prime_ci": {"low": f(self.d_prime_ci.low), "high": f(self.d_prime_ci.high)},
            "criterion": f(self.criterion),
            "criterion_ci": {"low": f(self.criterion_ci.low), "high": f(self.criterion_ci.high)},
            "n_evaluators": self.n_evaluators,
            "method": self.method,
        }


def corrected_rate(count: Any, n: Any) -> np.ndarray:
    """Log-linear corrected rate (count + 0.5) / (n + 1): finite z for every count, 0 and n included."""
    count = np.asarray(count, dtype=float)
    n = np.asarray(n, dtype=float)
    if np.any(count < 0) or np.any(count > n):
        raise scoring.ScoringError("a count must lie between 0 and its number of trials")
    return (count + 0.5) / (n + 1.0)


def d_prime(hits: Any, n_signal: Any, false_alarms: Any, n_noise: Any) -> tuple[np.ndarray, np.ndarray]:
    """(d', c) from counts of hits among signal trials and false alarms among noise trials."""
    zh = ndtri(corrected_rate(hits, n_signal))
    zf = ndtri(corrected_rate(false_alarms, n_noise))
    return zh - zf, -(zh + zf) / 2


def evaluator_sdt(counts: InfinityCounts) -> SDT:
    """d' and c of every included evaluator (fakes are the signal)."""
    c = counts.included()
    hits = c.n_fake - c.fake_errors  # fakes judged fake
    dp, crit = d_prime(hits, c.n_fake, c.real_errors, c.n_real)
    return SDT(c.evaluator, c.model, corrected_rate(hits, c.n_fake), corrected_rate(c.real_errors, c.n_real),
               dp, crit)


def model_sdt(counts: InfinityCounts, *, method: str = scoring.DEFAULT_METHODS["mean"], n_resamples: int = 10_000,
              confidence_level: float = 0.95, rng: np.random.Generator | int | None = None) -> ModelSDT:
    """Mean d' and c of one model's evaluators, with bootstrap CIs over evaluators (the same draws of
    evaluators for both, so the two intervals describe one set of resamples)."""
    if len(set(counts.model.tolist())) > 1:
        raise scoring.ScoringError("model_sdt scores one model at a time (use .select(model))")
    s = evaluator_sdt(counts)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    state = gen.bit_generator.state
    dp = scoring.bootstrap_mean(s.d_prime, method=method, n_resamples=n_resamples,
                                confidence_level=confidence_level, rng=gen)
    gen.bit_generator.state = state
    crit = scoring.bootstrap_mean(s.criterion, method=method, n_resamples=n_resamples,
                                  confidence_level=confidence_level, rng=gen)
    return ModelSDT(dp.estimate, dp.confidence_interval, crit.estimate, crit.confidence_interval,
                    int(s.d_prime.size), method)
