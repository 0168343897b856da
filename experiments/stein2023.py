"""Score the Stein et al. (NeurIPS 2023) human realism judgments with hype's HYPE-infinity pipeline:
leaderboard with bootstrap CIs, fakes / reals error, ANOVA + Tukey HSD letter groups, ranking
stability, one plot per file; writes experiments/stein2023.md.

Their task is HYPE-infinity with 100 fakes + 100 reals per participant (see the data's SOURCE.md).

    python experiments/stein2023.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hype import scoring as sc  # noqa: E402
from hype import sdt  # noqa: E402
from hype.coverage import coverage_note  # noqa: E402
from hype.summaries import read_summaries  # noqa: E402

DATA = Path("/work/shared/data/stein2023-human-realism")
HERE = Path(__file__).parent
FILES = {"cifar10": "CIFAR-10", "imagenet256": "ImageNet 256x256"}
SEED = 2023
N_RESAMPLES = 10_000


def check_against_file(path: Path, counts: sc.InfinityCounts) -> float:
    """Largest gap between hype's rates and the participants' own mean rates, over models and columns."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    worst = 0.0
    for model in counts.models():
        mine = [r for r in rows if r["model"] == model]
        rates = sc.infinity_rates(counts.select(model))
        for column, value in (("err_rt", rates.overall), ("f_err_rt", rates.fakes), ("r_err_rt", rates.reals)):
            worst = max(worst, abs(np.mean([float(r[column]) for r in mine]) - value))
    return worst


def table(board: sc.Leaderboard) -> list[str]:
    ranking = board.ranking
    lines = [
        "| # | model | HYPE-inf (%) | 95% CI | SD | fakes err | reals err | d' | 95% CI | c | 95% CI | n | Tukey group | P(rank) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in board.rows:
        d = r.sdt
        lines.append(
            f"| {r.rank} | {r.model} | {100 * r.estimate:.1f} | {100 * r.ci_low:.1f}-{100 * r.ci_high:.1f} | "
            f"{100 * r.standard_error:.1f} | {100 * r.fakes_error:.1f} | {100 * r.reals_error:.1f} | "
            f"{d.d_prime:.2f} | {d.d_prime_ci.low:.2f}-{d.d_prime_ci.high:.2f} | {d.criterion:+.2f} | "
            f"{d.criterion_ci.low:+.2f} to {d.criterion_ci.high:+.2f} | "
            f"{r.n_evaluators} | {r.letters} | {ranking.p_at_rank[r.model]:.2f} |"
        )
    return lines


def criterion_check(path: Path, counts: sc.InfinityCounts, board: sc.Leaderboard) -> list[str]:
    """How much participants differ in their readiness to answer "real", and whether d' reorders the
    models the error rate ranks; the file's own `r_ans_rt` (share of "real" answers) checks the counts."""
    with open(path, newline="") as handle:
        rows = {r["id"]: r for r in csv.DictReader(handle)}
    per = sdt.evaluator_sdt(counts)
    c = counts.included()
    said_real = (c.fake_errors + (c.n_real - c.real_errors)) / c.n_trials
    gap = max(abs(float(rows[e]["r_ans_rt"]) - s) for e, s in zip(c.evaluator, said_real))
    q = np.quantile(said_real, [0.05, 0.5, 0.95])
    cq = np.quantile(per.criterion, [0.05, 0.95])
    by_error = [r.model for r in board.rows]
    by_d = [r.model for r in sorted(board.rows, key=lambda r: r.sdt.d_prime)]
    moved = [m for i, m in enumerate(by_d) if by_error[i] != m]
    rho = np.corrcoef(per.criterion, per.d_prime)[0, 1]
    biased = [r.model for r in board.rows if r.sdt.criterion_ci.low > 0 or r.sdt.criterion_ci.high < 0]
    return [
        f"- Share of \"real\" answers per participant: median {100 * q[1]:.0f}%, 5-95% of participants "
        f"{100 * q[0]:.0f}-{100 * q[2]:.0f}% (half the images were real); criterion c per participant "
        f"{cq[0]:+.2f} to {cq[1]:+.2f} (5-95%), SD {per.criterion.std(ddof=1):.2f}. hype's share equals the "
        f"file's `r_ans_rt` to {gap:.1e}.",
        f"- Correlation of c with d' across participants: {rho:+.2f}. Models whose mean c excludes 0: "
        f"{', '.join(biased) or 'none'}.",
        "- Ranking by d' (most realistic = lowest first) "
        + ("equals the error-rate ranking." if not moved else
           f"differs from the error-rate ranking at: {', '.join(moved)} (d' order: {', '.join(by_d)})."),
    ]


def plot(board: sc.Leaderboard, title: str, out: Path) -> None:
    rows = board.rows[::-1]  # best at the top
    y = np.arange(len(rows))
    est = np.array([100 * r.estimate for r in rows])
    lo = est - np.array([100 * r.ci_low for r in rows])
    hi = np.array([100 * r.ci_high for r in rows]) - est
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(rows) + 1.2), dpi=90)
    ax.errorbar(est, y, xerr=[lo, hi], fmt="o", color="k", ms=4, capsize=2, label="HYPE-inf, 95% CI")
    ax.plot([100 * r.fakes_error for r in rows], y, "v", color="tab:red", ms=4, alpha=0.8, label="fakes error")
    ax.plot([100 * r.reals_error for r in rows], y, "s", color="tab:blue", ms=3, alpha=0.8, label="reals error")
    ax.axvline(50, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, [f"{r.model}  ({r.letters})" for r in rows], fontsize=8)
    ax.set_xlabel("error rate (%)   50% = chance")
    ax.set_title(f"{title}: HYPE-inf on Stein et al. 2023 judgments", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    md = [
        "# Stein et al. (2023) human realism judgments, scored by hype",
        "",
        "Generated by `python experiments/stein2023.py`. Data: `layer6ai-labs/dgm-eval` (MIT), one row per",
        "participant, 100 fakes + 100 reals each (HYPE-infinity with 200 images). HYPE-inf = pooled error",
        "rate (higher = more realistic, 50% = chance). CI: " + coverage_note(sc.DEFAULT_METHODS["hype-infinity"], "hype-infinity", 30) + ";",
        f"{N_RESAMPLES:,} resamples, seed {SEED}; SD = bootstrap SD. d' and c: signal detection per participant",
        "(fakes = signal, log-linear correction), mean over participants with the same bootstrap; lower d' = harder",
        "to detect = more realistic; c > 0 = leaning to answer \"real\". Tukey group: models sharing a letter are not",
        "separated (Tukey HSD, alpha 0.05, on per-participant error rates). P(rank): share of bootstrap",
        "resamples (models resampled independently) in which the model holds its rank.",
        "",
    ]
    for stem, title in FILES.items():
        path = DATA / f"{stem}.csv"
        counts = read_summaries(path)
        board = sc.leaderboard(counts, n_resamples=N_RESAMPLES, seed=SEED)
        gap = check_against_file(path, counts)
        sep, ranking = board.separability, board.ranking
        n_groups = len({ch for r in board.rows for ch in r.letters})
        lines = [
            f"## {title} (`{stem}.csv`): {len(board.rows)} models, {counts.n_evaluators} participants",
            "",
            *table(board),
            "",
            f"- One-way ANOVA on per-participant error: F = {sep.statistic:.1f}, p = {sep.p_value:.2g}; "
            f"{sum(p.significant for p in sep.pairwise)} of {len(sep.pairwise)} pairs separated by Tukey HSD; "
            f"{n_groups} letter groups.",
            f"- Ranking stability: the full point-estimate ranking recurs in {100 * ranking.p_same_ranking:.1f}% "
            "of bootstrap resamples.",
            f"- Check: hype's HYPE-inf / fakes / reals error equal the means of `err_rt` / `f_err_rt` / "
            f"`r_err_rt` per model to {gap:.1e}.",
            *criterion_check(path, counts, board),
            f"- Plot: `experiments/stein2023_{stem}.png`.",
            "",
        ]
        md.extend(lines)
        print("\n".join(lines))
        plot(board, title, HERE / f"stein2023_{stem}.png")
    (HERE / "stein2023.md").write_text("\n".join(md).rstrip() + "\n")
    print(f"wrote {HERE / 'stein2023.md'}")


if __name__ == "__main__":
    main()
