"""Time hype's evaluator bootstrap against scipy.stats.bootstrap on the same data, same run.

Both resample evaluators (paired per-evaluator errors and trials) 10,000 times and compute the pooled
error rate; scipy is given a vectorised statistic, its fastest mode, so the ratio is a fair one. The
two-level bootstraps (hype only) and a HYPE-time row are timed for information.

    python experiments/bootstrap_bench.py
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from scipy import stats

from hype import scoring as sc
from hype import simulate as sm

N_RESAMPLES = 10_000
REPEATS = 3


def make_counts(n_evaluators: int, n_trials: int, seed: int = 0) -> sc.InfinityCounts:
    rng = np.random.default_rng(seed)
    half = n_trials // 2
    return sc.InfinityCounts.from_counts(
        [f"e{i}" for i in range(n_evaluators)], "M",
        rng.binomial(half, rng.beta(3, 7, n_evaluators)), half,
        rng.binomial(n_trials - half, rng.beta(2, 10, n_evaluators)), n_trials - half,
    )


def best_time(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def pooled(errors: np.ndarray, trials: np.ndarray, axis: int = -1) -> np.ndarray:
    return errors.sum(axis=axis) / trials.sum(axis=axis)


def bench(n_evaluators: int, n_trials: int) -> list[str]:
    counts = make_counts(n_evaluators, n_trials)
    e, n = counts.errors.astype(float), counts.n_trials.astype(float)
    lines = []
    for method in ("percentile", "BCa"):
        ours = best_time(lambda: sc.bootstrap_infinity(counts, n_resamples=N_RESAMPLES, method=method, rng=1))
        theirs = best_time(lambda: stats.bootstrap((e, n), pooled, paired=True, vectorized=True,
                                                   n_resamples=N_RESAMPLES, method=method,
                                                   rng=np.random.default_rng(1)))
        a = sc.bootstrap_infinity(counts, n_resamples=N_RESAMPLES, method=method, rng=1).confidence_interval
        b = stats.bootstrap((e, n), pooled, paired=True, vectorized=True, n_resamples=N_RESAMPLES, method=method,
                            rng=np.random.default_rng(1)).confidence_interval
        lines.append(f"| {n_evaluators} x {n_trials} | {method} | {ours * 1e3:.1f} | {theirs * 1e3:.1f} | "
                     f"{theirs / ours:.1f}x | {a.low:.4f}-{a.high:.4f} | {b.low:.4f}-{b.high:.4f} |")
    two = best_time(lambda: sc.bootstrap_infinity(counts, n_resamples=N_RESAMPLES, two_level=True, rng=1))
    lines.append(f"| {n_evaluators} x {n_trials} | two-level (hype only) | {two * 1e3:.1f} | - | - | - | - |")
    return lines


def bench_time(n_evaluators: int) -> list[str]:
    """HYPE-time, 3 blocks x 150 trials per evaluator: the one-level bootstrap against scipy's mean,
    and the two-level one (which redraws every block's trials: a multinomial per block per resample)."""
    blocks = sm.simulate_study({"M": sm.Population()}, n_evaluators, "hype-time", seed=0, truth=False).data
    scores = blocks.evaluator_score
    ours = best_time(lambda: sc.bootstrap_time(blocks, n_resamples=N_RESAMPLES, rng=1))
    theirs = best_time(lambda: stats.bootstrap((scores,), np.mean, vectorized=True, n_resamples=N_RESAMPLES,
                                               method="percentile", rng=np.random.default_rng(1)))
    two = best_time(lambda: sc.bootstrap_time(blocks, n_resamples=N_RESAMPLES, two_level=True, rng=1))
    return [
        f"| {n_evaluators} x 3 x 150 (time) | percentile | {ours * 1e3:.1f} | {theirs * 1e3:.1f} | "
        f"{theirs / ours:.1f}x | - | - |",
        f"| {n_evaluators} x 3 x 150 (time) | two-level (hype only) | {two * 1e3:.1f} | - | - | - | - |",
    ]


def main() -> None:
    print(f"{N_RESAMPLES} resamples of evaluators, best of {REPEATS}; numpy {np.__version__}, "
          f"scipy {__import__('scipy').__version__}")
    print("| evaluators x trials | method | hype ms | scipy ms | scipy / hype | hype CI | scipy CI |")
    print("|---|---|---|---|---|---|---|")
    for n_evaluators, n_trials in ((30, 100), (120, 450)):
        for line in bench(n_evaluators, n_trials):
            print(line)
    for line in bench_time(30):
        print(line)


if __name__ == "__main__":
    main()
