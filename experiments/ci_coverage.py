"""Coverage of hype's bootstrap interval methods at 10, 30 and 60 evaluators, both modes, on simulated
studies with a known truth; the measurement that picks hype's default intervals (hype.scoring.DEFAULT_METHODS,
figures in hype.coverage.MEASURED).

For each mode, method and study size it prints the share of simulated studies whose 95% interval
covered the truth, how often the truth lay above / below the interval, the mean half-width and the
number of studies. Every interval is made by the code that scores a real study (hype.coverage.interval_coverage).
Truth: HYPE-infinity, the population's expected error rate (quadrature); HYPE-time, the modal estimator's
own target, E over evaluators of the mean block mode, estimated by the mean over every simulated
evaluator of the run (1.2 million at the default size; each study is 1/20,000 of it).

    python experiments/ci_coverage.py                        # ~10 min of CPU
    python experiments/ci_coverage.py --studies 500 --others 500   # quick look
    python experiments/ci_coverage.py --mode hype-infinity   # one mode (run the two side by side)
    python experiments/ci_coverage.py --mode hype-infinity --sizes 10 --methods studentized,betabinomial-t \
        --studies 40000 --seed 8                             # one cell to +-0.08 points
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hype import simulate as sm
from hype.coverage import interval_coverage
from hype.protocol import InfinitySettings, TimeSettings
from hype.scoring import METHODS, InfinityCounts

SIZES = (10, 30, 60)
CHUNK_EVALUATORS = 20_000  # simulated at once (HYPE-time: ~200 MB of trials)
COUNT_ONLY = {"betabinomial-t", "kg-t"}  # intervals that exist only for HYPE-infinity error counts
# The candidates for the default are measured on more studies (a miss share to +-0.16 points at 10,000)
# than the methods whose figures only show how far they are from it (+-0.25 at 4,000).
CANDIDATES = {"studentized", "betabinomial-t", "kg-t"}


def _pool(mode: str, n_evaluators: int, rng: np.random.Generator) -> InfinityCounts | np.ndarray:
    """Simulated evaluators of the default population: HYPE-infinity counts, or HYPE-time scores (one
    per evaluator: what its bootstrap resamples)."""
    pop = sm.Population()
    parts = []
    for a in range(0, n_evaluators, CHUNK_EVALUATORS):
        k = min(CHUNK_EVALUATORS, n_evaluators - a)
        if mode == "hype-infinity":
            parts.append(sm._simulate_infinity_model("m", pop, k, InfinitySettings(), rng, f"e{a}-")[0])
        else:
            parts.append(sm._simulate_time_model("m", pop, k, TimeSettings(), rng, "e")[0].evaluator_score)
    if mode == "hype-infinity":
        return InfinityCounts(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in InfinityCounts.__dataclass_fields__})
    return np.concatenate(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000,
                        help="simulated studies per cell of the candidates for the default [10000]")
    parser.add_argument("--others", type=int, default=4000, help="... of the other methods [4000]")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mode", choices=("hype-infinity", "hype-time"), help="one mode only [both]")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="evaluators per study [10,30,60]")
    parser.add_argument("--methods", default=",".join(METHODS), help="interval methods [all]")
    args = parser.parse_args()
    pop = sm.Population()
    print(f"population: {pop}")
    print("| mode | evaluators | method | coverage % | truth above % | truth below % | above - below | half-width | studies |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for mode in (args.mode,) if args.mode else ("hype-infinity", "hype-time"):
        start = time.perf_counter()
        # study s uses evaluators s*60 .. s*60+59, its first n for a study of n: nested draws, as hype plan does
        pool = _pool(mode, args.studies * max(SIZES), np.random.default_rng(args.seed))
        truth = sm.true_infinity_rates(pop).overall if mode == "hype-infinity" else float(pool.mean())
        scale, unit = (100.0, "points") if mode == "hype-infinity" else (1.0, "ms")
        for n in [int(v) for v in args.sizes.split(",")]:
            keep = (np.arange(args.studies * max(SIZES)) % max(SIZES)) < n
            part = pool.subset(keep) if isinstance(pool, InfinityCounts) else pool[keep]
            for m in args.methods.split(","):
                if mode == "hype-time" and m in COUNT_ONLY:
                    continue
                c = interval_coverage(part, truth, n, m, n_resamples=args.resamples,
                                      n_studies=args.studies if m in CANDIDATES else args.others,
                                      rng=np.random.default_rng([args.seed, n]))
                print(f"| {mode} | {n} | {m} | {100 * c.covered:.1f} | {100 * c.truth_above:.1f} | {100 * c.truth_below:.1f} |"
                      f" {100 * (c.truth_above - c.truth_below):+.1f} | {scale * c.mean_halfwidth:.2f} {unit} | {c.n_studies} |",
                      flush=True)
        se = lambda p, k: 100 * np.sqrt(p * (1 - p) / k)  # noqa: E731
        print(f"<!-- {mode}: truth {truth:.5g}; Monte-Carlo SE of a coverage near 95% / a miss share near 2.5%: "
              f"{se(0.95, args.studies):.2f} / {se(0.025, args.studies):.2f} points at {args.studies} studies, "
              f"{se(0.95, args.others):.2f} / {se(0.025, args.others):.2f} at {args.others}; "
              f"{time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
