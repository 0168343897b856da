"""How often a confidence interval method covers the truth, measured on simulated studies.

The default interval of hype is chosen by this measurement (experiments/ci_coverage.py), and the figure
behind the choice is what a report prints next to every interval. Pure: numpy + hype.scoring only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hype import scoring
from hype.scoring import InfinityCounts, TimeBlocks

__all__ = ["Coverage", "interval_coverage", "MEASURED", "SIZES", "coverage_note"]

# (method, mode, evaluators) -> (coverage %, truth above the interval %, truth below %) of nominal 95%
# intervals, from experiments/ci_coverage.py (default simulated population; 10,000 simulated studies per
# cell for studentized, betabinomial-t and kg-t, 4,000 for the others; full table in experiments/ci_coverage.md).
MEASURED: dict[tuple[str, str, int], tuple[float, float, float]] = {
    ("percentile", "hype-infinity", 10): (88.4, 7.8, 3.7),
    ("BCa", "hype-infinity", 10): (88.8, 7.0, 4.3),
    ("expanded", "hype-infinity", 10): (94.0, 4.5, 1.6),
    ("studentized", "hype-infinity", 10): (94.6, 3.4, 2.0),
    ("betabinomial-t", "hype-infinity", 10): (94.8, 3.2, 2.0),
    ("kg-t", "hype-infinity", 10): (95.9, 2.1, 2.0),
    ("percentile", "hype-infinity", 30): (93.1, 4.5, 2.4),
    ("BCa", "hype-infinity", 30): (93.1, 3.9, 3.0),
    ("expanded", "hype-infinity", 30): (94.6, 3.5, 1.8),
    ("studentized", "hype-infinity", 30): (94.9, 2.9, 2.2),
    ("betabinomial-t", "hype-infinity", 30): (95.0, 2.8, 2.2),
    ("kg-t", "hype-infinity", 30): (95.3, 2.5, 2.2),
    ("percentile", "hype-infinity", 60): (94.5, 3.1, 2.4),
    ("BCa", "hype-infinity", 60): (94.3, 2.7, 3.0),
    ("expanded", "hype-infinity", 60): (95.1, 2.8, 2.1),
    ("studentized", "hype-infinity", 60): (95.2, 2.5, 2.3),
    ("betabinomial-t", "hype-infinity", 60): (95.2, 2.7, 2.2),
    ("kg-t", "hype-infinity", 60): (95.3, 2.4, 2.3),
    ("percentile", "hype-time", 10): (90.5, 5.9, 3.7),
    ("BCa", "hype-time", 10): (90.1, 5.9, 4.0),
    ("expanded", "hype-time", 10): (94.5, 3.6, 1.9),
    ("studentized", "hype-time", 10): (95.4, 2.7, 1.9),
    ("percentile", "hype-time", 30): (93.7, 3.5, 2.8),
    ("BCa", "hype-time", 30): (93.6, 3.2, 3.2),
    ("expanded", "hype-time", 30): (95.2, 2.7, 2.0),
    ("studentized", "hype-time", 30): (95.0, 2.6, 2.4),
    ("percentile", "hype-time", 60): (94.6, 3.2, 2.2),
    ("BCa", "hype-time", 60): (94.4, 3.0, 2.5),
    ("expanded", "hype-time", 60): (95.2, 2.8, 2.1),
    ("studentized", "hype-time", 60): (95.0, 2.6, 2.4),
}
SIZES: tuple[int, ...] = (10, 30, 60)
_NAMES = {"percentile": "percentile bootstrap", "BCa": "BCa bootstrap", "expanded": "expanded percentile bootstrap",
          "studentized": "studentized bootstrap (bootstrap-t)",
          "betabinomial-t": "beta-binomial bootstrap-t",
          "kg-t": "Korn-Graubard-bounded studentized bootstrap (kg-t)"}


@dataclass(frozen=True)
class Coverage:
    """Shares of simulated studies whose interval covered the truth, or missed it on either side."""

    n_studies: int
    covered: float
    truth_above: float  # the interval lay wholly below the truth
    truth_below: float
    mean_halfwidth: float

    @property
    def standard_error(self) -> float:
        """Binomial Monte-Carlo SE of `covered`."""
        return float(np.sqrt(self.covered * (1 - self.covered) / max(self.n_studies, 1)))

    def to_dict(self) -> dict[str, Any]:
        return {"n_studies": self.n_studies, "covered": self.covered, "truth_above": self.truth_above,
                "truth_below": self.truth_below, "mean_halfwidth": self.mean_halfwidth,
                "standard_error": self.standard_error}


def interval_coverage(data: InfinityCounts | TimeBlocks | np.ndarray, truth: float, n_per_study: int, method: str, *,
                      n_studies: int | None = None, n_resamples: int = 2000,
                      rng: np.random.Generator | int | None = 0) -> Coverage:
    """`data` holds consecutive simulated studies of `n_per_study` evaluators of one model (study s is
    rows s*n .. (s+1)*n - 1); each is bootstrapped with `method`, by the code that scores a real study,
    and its interval checked against `truth`, the value the estimator targets. HYPE-time data may be
    given as one score per evaluator (what its bootstrap resamples), which slices far faster."""
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if isinstance(data, TimeBlocks):
        data = data.evaluator_score
    size = data.n_evaluators if isinstance(data, InfinityCounts) else data.shape[0]
    available = size // n_per_study
    n = available if n_studies is None else min(n_studies, available)
    if n < 1:
        raise ValueError("not enough simulated evaluators for one study")
    low = np.empty(n)
    high = np.empty(n)
    for s in range(n):
        rows = slice(s * n_per_study, (s + 1) * n_per_study)
        if isinstance(data, InfinityCounts):
            res = scoring.bootstrap_infinity(data.subset(rows), n_resamples=n_resamples, method=method, rng=gen)
        else:
            res = scoring.bootstrap_mean(data[rows], n_resamples=n_resamples, method=method, rng=gen)
        low[s], high[s] = res.confidence_interval
    above = float(np.mean(high < truth))
    below = float(np.mean(low > truth))
    return Coverage(n, 1 - above - below, above, below, float(np.mean((high - low) / 2)))


def coverage_note(method: str, mode: str, n_evaluators: int | None = None, confidence_level: float = 0.95) -> str:
    """One sentence naming an interval method and the coverage measured for it, for reports and the
    CLI: the figure at the measured study size nearest to `n_evaluators` (30 when unknown)."""
    name = _NAMES.get(method, method)
    if abs(confidence_level - 0.95) > 1e-9:
        return f"{name} over evaluators, {100 * confidence_level:g}% (coverage measured for 95% intervals only)"
    n = min(SIZES, key=lambda s: abs(s - (n_evaluators or 30)))
    figure = MEASURED.get((method, mode, n))
    if figure is None:
        return f"{name} over evaluators, 95% (coverage not measured)"
    cov, above, below = figure
    span = [MEASURED[(method, mode, s)][0] for s in SIZES if (method, mode, s) in MEASURED]
    return (f"{name} over evaluators, 95%: simulated coverage {cov:.1f}% at {n} evaluators (truth above "
            f"{above:.1f}%, below {below:.1f}%; {min(span):.1f}-{max(span):.1f}% at {SIZES[0]}-{SIZES[-1]} evaluators, "
            "experiments/ci_coverage.md)")
