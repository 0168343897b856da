"""Coverage of hype's bootstrap interval methods at 10, 30 and 60 evaluators, both modes, on simulated
studies with a known truth; the measurement that picks hype's default interval (hype.coverage).

For each mode, method and study size it prints the share of simulated studies whose 95% interval
covered the truth, how often the truth lay above / below the interval, and the mean half-width.
Truth: HYPE-infinity, the population's expected error rate (quadrature); HYPE-time, the modal
estimator's own target, E over evaluators of the mean block mode (20,000 simulated evaluators).

    python experiments/ci_coverage.py                  # 4000 studies per cell (HYPE-time 2000), ~10 min
    python experiments/ci_coverage.py --studies 500    # quick look
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hype import simulate as sm
from hype.coverage import interval_coverage
from hype.protocol import InfinitySettings, TimeSettings
from hype.scoring import METHODS

SIZES = (10, 30, 60)
CHUNK_STUDIES = 500  # HYPE-time studies simulated at once (memory: ~60 MB per 100 studies of 60)


def _simulate(mode: str, n_studies: int, rng: np.random.Generator):
    pop = sm.Population()
    if mode == "hype-infinity":
        data, _ = sm._simulate_infinity_model("m", pop, n_studies * max(SIZES), InfinitySettings(), rng, "e")
        return data
    data, _, _ = sm._simulate_time_model("m", pop, n_studies * max(SIZES), TimeSettings(), rng, "e")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, help="simulated studies per cell [4000; HYPE-time 2000]")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    pop = sm.Population()
    print(f"population: {pop}")
    truths = {"hype-infinity": sm.true_infinity_rates(pop).overall,
              "hype-time": sm.true_time_score(pop, n_evaluators=20_000)}
    print("| mode | evaluators | method | coverage % | truth above % | truth below % | |above-below| | half-width |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for mode in ("hype-infinity", "hype-time"):
        total = args.studies or (4000 if mode == "hype-infinity" else 2000)
        rng = np.random.default_rng(args.seed)
        tally = {(n, m): np.zeros(4) for n in SIZES for m in METHODS}
        start = time.perf_counter()
        done = 0
        while done < total:
            k = min(CHUNK_STUDIES, total - done)
            data = _simulate(mode, k, rng)
            for n in SIZES:
                # study s uses evaluators s*60 .. s*60+n-1: nested draws, as hype plan does
                keep = (np.arange(data.n_evaluators) % max(SIZES)) < n
                part = data.subset(keep)
                for m in METHODS:
                    c = interval_coverage(part, truths[mode], n, m, n_resamples=args.resamples,
                                          rng=np.random.default_rng([args.seed, done, n]))
                    tally[(n, m)] += np.array([c.covered, c.truth_above, c.truth_below, c.mean_halfwidth]) * c.n_studies
            done += k
        scale = 100.0 if mode == "hype-infinity" else 1.0
        unit = "points" if mode == "hype-infinity" else "ms"
        for n in SIZES:
            for m in METHODS:
                cov, above, below, hw = tally[(n, m)] / total
                print(f"| {mode} | {n} | {m} | {100 * cov:.1f} | {100 * above:.1f} | {100 * below:.1f} |"
                      f" {100 * abs(above - below):.1f} | {scale * hw:.2f} {unit} |", flush=True)
        print(f"<!-- {mode}: {total} studies per cell, truth {truths[mode]:.5g}, "
              f"MC SE of a coverage near 95%: {100 * np.sqrt(0.95 * 0.05 / total):.2f} points, "
              f"{time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
