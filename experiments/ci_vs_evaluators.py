"""Expected 95% CI half-width against the number of evaluators, for both modes, by simulation
(hype.simulate.plan_ci_halfwidth with the default simulated population), and the plot.

The paper reports that its CIs "converged" at about 30 evaluators; this shows what that means: the
half-width keeps shrinking like 1/sqrt(N), so 30 is a cost/precision trade-off, not a plateau.

    python experiments/ci_vs_evaluators.py
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hype import simulate as sm  # noqa: E402

SIZES = list(range(10, 121, 10))
OUT = Path(__file__).with_name("ci_vs_evaluators.png")


def main() -> None:
    pop = sm.Population()
    print(f"population: {pop}")
    results = {}
    for mode, n_sim, unit, scale in (("hype-infinity", 200, "% error", 100.0), ("hype-time", 100, "ms", 1.0)):
        start = time.perf_counter()
        rows = sm.plan_ci_halfwidth(mode, SIZES, population=pop, n_sim=n_sim, n_resamples=2000, seed=1)
        results[mode] = (rows, unit, scale)
        print(f"\n{mode}: expected 95% CI half-width ({unit}), {n_sim} simulated studies per size, "
              f"{time.perf_counter() - start:.1f} s")
        print("| evaluators | mean | 10% | 90% |")
        print("|---|---|---|---|")
        for r in rows:
            print(f"| {r.n_evaluators} | {r.mean_halfwidth * scale:.2f} | {r.q10_halfwidth * scale:.2f} | "
                  f"{r.q90_halfwidth * scale:.2f} |")

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=90)
    for ax, (mode, (rows, unit, scale)) in zip(axes, results.items()):
        n = [r.n_evaluators for r in rows]
        mean = [r.mean_halfwidth * scale for r in rows]
        ax.fill_between(n, [r.q10_halfwidth * scale for r in rows], [r.q90_halfwidth * scale for r in rows],
                        alpha=0.25, label="10-90% of studies")
        ax.plot(n, mean, "o-", ms=3, label="mean")
        ref = mean[2] * (30 / n[2]) ** 0.5  # 1/sqrt(N) through the 30-evaluator point
        ax.plot(n, [ref * (30 / k) ** 0.5 for k in n], "k:", lw=1, label="1/sqrt(N)")
        ax.axvline(30, color="grey", lw=0.8)
        ax.set_title(mode, fontsize=10)
        ax.set_xlabel("evaluators per model")
        ax.set_ylabel(f"95% CI half-width ({unit})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT)
    print(f"\nsaved {OUT} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
