"""Coverage of HYPE-infinity intervals when some evaluators answer at random (error 50%): why the
model-based beta-binomial bootstrap-t, slightly more balanced on beta-like simulated populations
(experiments/ci_coverage.md), is not hype's default. Evaluators are the default population's (logit-normal
fake / real accuracies 0.85 / 0.90, ability SD 0.4, criterion SD 0.3, 50 + 50 trials, no lapses); a share of them is
replaced by random answerers. Each study is scored by the production bootstrap (hype.coverage).

    python experiments/ci_random_answerers.py 0.1 30 3000   # share, evaluators per study, studies
"""

import sys

import numpy as np
from scipy.special import expit, logit

from hype.coverage import interval_coverage
from hype.scoring import InfinityCounts


def counts(n: int, spam: float, rng: np.random.Generator) -> InfinityCounts:
    z = rng.standard_normal((2, n))
    fake_err = expit(logit(0.15) + 0.4 * z[0] + 0.3 * z[1])
    real_err = expit(logit(0.10) + 0.4 * z[0] - 0.3 * z[1])
    s = rng.random(n) < spam
    fake_err[s] = 0.5
    real_err[s] = 0.5
    fe, re = rng.binomial(50, fake_err), rng.binomial(50, real_err)
    ones = np.ones(n, int)
    return InfinityCounts(evaluator=np.arange(n).astype(str), model=np.full(n, "m"), fake_errors=fe, n_fake=50 * ones,
                          real_errors=re, n_real=50 * ones, excluded_trials=0 * ones, evaluator_excluded=np.zeros(n, bool))


def main() -> None:
    spam, n, S = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(3)
    big = counts(2_000_000, spam, np.random.default_rng(9))
    truth = float((big.fake_errors + big.real_errors).sum() / (big.n_fake + big.n_real).sum())
    data = counts(S * n, spam, rng)
    for m in ("studentized", "betabinomial-t", "kg-t"):
        c = interval_coverage(data, truth, n, m, n_resamples=1000, rng=1)
        print(f"random answerers {spam:.0%} n={n} {m:15s} cover {100*c.covered:.1f} above {100*c.truth_above:.2f} below {100*c.truth_below:.2f} hw {100*c.mean_halfwidth:.2f}", flush=True)


if __name__ == "__main__":
    main()
