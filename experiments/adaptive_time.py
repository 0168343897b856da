"""Adaptive HYPE-time (QUEST+, hype/adaptive.py) against the paper's staircase, on simulated evaluators
with a known 75% threshold; and the per-answer server cost of QUEST+.

For each population (steep / shallow psychometric functions, lapses, a wide between-evaluator spread)
and method it prints: the bias of the per-evaluator score against each evaluator's own true 75%
threshold, and against that threshold clipped to the exposures shown (100-1000 ms: what any method
limited to them can measure); the per-evaluator error (RMSE); the mean 95% CI half-width of a
30-evaluator study (default interval, studentized bootstrap) and its coverage; the same at EQUAL HUMAN
TIME, i.e. the paper's 13,500 trials per model (30 evaluators x 3 x 150) spent as more evaluators with
fewer trials each; and the floor any per-evaluator score unbiased for each evaluator's threshold meets:
the half-width of an oracle that knew every evaluator's threshold exactly (the spread of true
thresholds alone). Writes experiments/adaptive_time.md and adaptive_time.png.

Methods: `staircase+mode` (the paper: weighted staircase, block mode) and `staircase+posterior` (the
same trials scored by the posterior threshold) at 3 blocks of 50, 100 and 150 trials; `quest+` (the
default: each exposure chosen for the threshold's marginal posterior) with 3 blocks of T trials for T
in TRIALS; `quest+ joint` (Watson's rule, the joint posterior of threshold, slope and lapse; the
default before) at JOINT_TRIALS. Studies: a pool of POOL simulated evaluators per population, every
method run on the same evaluators; STUDIES random sets from the pool per cell. Truth: the pool's mean
true threshold (the population a study drawn from the pool samples).

    python experiments/adaptive_time.py            # ~15 min on 2 busy cores
    python experiments/adaptive_time.py --quick    # fewer evaluators, for a look
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hype import adaptive as ad  # noqa: E402
from hype import scoring as sc  # noqa: E402
from hype import simulate as sm  # noqa: E402
from hype import staircase as stairs  # noqa: E402
from hype.protocol import TimeSettings  # noqa: E402

HERE = Path(__file__).parent
TRIALS = (25, 50, 75, 100, 150)  # QUEST+ trials per block
JOINT_TRIALS = (50, 150)  # QUEST+ with the joint-posterior rule (the default before), for comparison
STAIR_TRIALS = (50, 100, 150)  # staircase trials per block (the paper: 150)
N_BLOCKS = 3
STUDY_SIZE = 30
PAPER_TOTAL = STUDY_SIZE * N_BLOCKS * 150  # trials per model in the paper's design: 13,500
COVERAGE_OK = (0.93, 0.97)  # a design counts for "total trials needed" only with coverage in this range
PAPER = "staircase+mode (150/block)"
POPULATIONS = {
    "steep": sm.Population(threshold_ms=300, threshold_sd=0.25, slope=4.0, fake_accuracy=0.95, real_accuracy=0.95,
                           ability_sd=0.3, lapse=0.02),
    "shallow": sm.Population(threshold_ms=200, threshold_sd=0.25, slope=1.5, fake_accuracy=0.95, real_accuracy=0.95,
                             ability_sd=0.3, lapse=0.02),
    "lapse": sm.Population(threshold_ms=400, threshold_sd=0.3, slope=2.5, fake_accuracy=0.95, real_accuracy=0.95,
                           ability_sd=0.3, lapse=0.10),
    "spread": sm.Population(threshold_ms=350, threshold_sd=0.6, slope=2.5, fake_accuracy=0.95, real_accuracy=0.95,
                            ability_sd=0.3, lapse=0.02),
}


def _quest_scores(cfg: ad.QuestConfig, obs: sm.Observer, trials: tuple[int, ...],
                  rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Posterior threshold per evaluator after 3 blocks of T trials, for every T in `trials` (one run of
    max(trials): QUEST+ never looks ahead, so its first T trials are a T-trial run)."""
    n = len(obs)
    n_trials = max(trials)
    plan = sm.time_plan(N_BLOCKS, n_trials, rng, n_evaluators=n).reshape(n * N_BLOCKS, n_trials)
    per_block = obs[np.repeat(np.arange(n), N_BLOCKS)].column()

    def respond(t, x, u):
        return u < per_block.p_correct(plan[:, t][:, None], x[:, None])[:, 0]

    _, _, snaps = ad.run_many(cfg, respond, n * N_BLOCKS, n_trials, rng, record_at=trials)
    # an evaluator's posterior: the sum of their blocks' log likelihoods (one observer, one prior)
    return {t: ad.posterior_threshold(cfg, snaps[t].reshape(n, N_BLOCKS, -1).sum(axis=1)) for t in trials}


def _staircase_scores(cfg_q: ad.QuestConfig, obs: sm.Observer, trials_per_block: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The paper's staircase with `trials_per_block`: block-mode scores and the same trials' posterior."""
    n = len(obs)
    ts = replace(TimeSettings(), trials_per_block=trials_per_block)
    plan = sm.time_plan(N_BLOCKS, ts.trials_per_block, rng, n_evaluators=n)
    run = sm.run_time_many(obs, plan, stairs.StaircaseConfig.from_time_settings(ts), rng)
    blocks = sm._blocks_from_exposures("m", np.arange(n).astype(str), run.exposure_ms, run.levels)
    mode = blocks.evaluator_score
    posterior = np.array([ad.threshold_from_trials(cfg_q, run.exposure_ms[i].ravel(), run.correct[i].ravel())
                          for i in range(n)])
    return mode, posterior


def _studies(scores: np.ndarray, truth: float, size: int, n_studies: int,
             rng: np.random.Generator) -> tuple[float, float]:
    """(mean CI half-width, coverage) of random `size`-evaluator studies drawn from the pool."""
    widths, hits = [], 0
    for _ in range(n_studies):
        pick = scores[rng.choice(scores.size, size, replace=False)]
        res = sc.bootstrap_mean(pick, method=sc.DEFAULT_METHODS["hype-time"], n_resamples=1000, rng=rng)
        widths.append(res.halfwidth)
        hits += res.confidence_interval.low <= truth <= res.confidence_interval.high
    return float(np.mean(widths)), hits / n_studies


def _trials_for(target: float, trials: list[int], widths: list[float]) -> float | None:
    """Trials per evaluator at which a half-width curve reaches `target` (linear between grid points)."""
    for i, (t, w) in enumerate(zip(trials, widths)):
        if w <= target:
            if i == 0:
                return float(t)
            t0, w0 = trials[i - 1], widths[i - 1]
            return t0 + (w0 - target) / (w0 - w) * (t - t0)
    return None


def answer_cost(repeats: int = 150) -> list[str]:
    """ms per answer on the server's path (state from the stored history, next exposure chosen) at 60
    exposure levels, against the staircase's update in the same process; `questplus` if installed."""
    ts = TimeSettings(adaptive=True)
    cfg = ad.block_config(ts)
    rng = np.random.default_rng(0)
    state = ad.block_start(cfg)
    ad.block_advance(cfg, state, True)  # tables built once per process, as on a server
    start = time.perf_counter()
    for _ in range(repeats):
        state = ad.block_advance(cfg, state, bool(rng.random() < 0.75))
    quest_ms = (time.perf_counter() - start) / repeats * 1e3
    scfg = ad.block_config(TimeSettings())
    sstate = ad.block_start(scfg)
    start = time.perf_counter()
    for _ in range(repeats):
        sstate = ad.block_advance(scfg, sstate, bool(rng.random() < 0.75))
    stair_ms = (time.perf_counter() - start) / repeats * 1e3
    q = ad.QuestConfig.from_dict(cfg)
    lines = [f"- QUEST+ per answer (60 levels x {len(q.thresholds_ms) * len(q.slopes) * len(q.lapses)} parameter points,"
             f" posterior from the stored history of up to {q.n_trials} answers, next exposure chosen):"
             f" {quest_ms:.2f} ms; staircase update {stair_ms:.3f} ms; added cost {quest_ms - stair_ms:.2f} ms"
             f" (budget 2 ms).",
             f"- Table build once per process (first answer after a restart): see `ad.tables`; not on every answer."]
    try:
        import questplus as qp

        start = time.perf_counter()
        q2 = qp.QuestPlus(stim_domain={"intensity": np.array(q.levels_ms)},
                          param_domain={"threshold": np.array(q.thresholds_ms), "slope": np.array(q.slopes),
                                        "lower_asymptote": 0.5, "lapse_rate": np.array(q.lapses)},
                          outcome_domain={"response": ["Correct", "Incorrect"]}, func="weibull",
                          stim_scale="linear")
        for i in range(20):
            q2.update(stim=q2.next_stim, outcome={"response": "Correct" if i % 4 else "Incorrect"})
        qp_ms = (time.perf_counter() - start) / 20 * 1e3
        lines.append(f"- The `questplus` package (xarray), same grid, one live object (no replay): {qp_ms:.1f} ms per "
                     f"answer, {qp_ms / quest_ms:.0f}x hype's.")
    except ImportError:
        lines.append("- `questplus` not installed: not compared.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=1800, help="simulated evaluators per population")
    parser.add_argument("--studies", type=int, default=1000, help="random studies per cell")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    pool, n_studies = (360, 100) if args.quick else (args.pool, args.studies)
    ts = TimeSettings()
    cfg = ad.QuestConfig.from_time_settings(ts)
    joint = replace(cfg, target="parameters")
    lo, hi = ts.min_ms, ts.max_ms
    table = ["| population | method | trials / evaluator | bias (ms) | bias vs measurable (ms) | RMSE (ms) |"
             " half-width, 30 evaluators (ms) | coverage | evaluators at 13,500 trials | half-width there (ms) | coverage |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    summary = ["| population | truth (ms) | oracle half-width | paper (staircase+mode, 450 trials) | QUEST+ at 450 trials:"
               " ratio | QUEST+ trials / evaluator for the paper's half-width | equal human time (13,500 trials):"
               " QUEST+ | staircase+mode | staircase+posterior | total trials for the paper's half-width: QUEST+ |"
               " staircase+posterior | saving |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    bias_rows = ["| population | thresholds outside 100-1000 ms | truth | measurable truth (clipped) | ceiling's share |"
                 " staircase+mode bias (vs measurable) | QUEST+ bias (vs measurable) | RMSE: mode | staircase+posterior |"
                 " QUEST+ | QUEST+ joint (before) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    curves = {}
    for name, pop in POPULATIONS.items():
        start = time.perf_counter()
        rng = np.random.default_rng(sum(map(ord, name)))
        obs = pop.draw(pool, rng)
        true = obs.threshold_ms()
        ok = np.isfinite(true)  # an evaluator who never reaches 75% correct has no threshold (none here)
        truth = float(true[ok].mean())
        clipped = np.clip(true, lo, hi)
        rows: dict[str, tuple[int, np.ndarray]] = {"oracle (true thresholds)": (0, true)}
        for t in STAIR_TRIALS:
            mode, post = _staircase_scores(cfg, obs, t, rng)
            rows[f"staircase+mode ({t}/block)"] = (N_BLOCKS * t, mode)
            rows[f"staircase+posterior ({t}/block)"] = (N_BLOCKS * t, post)
        quest = _quest_scores(cfg, obs, TRIALS, rng)
        rows.update({f"quest+ ({t}/block)": (N_BLOCKS * t, quest[t]) for t in TRIALS})
        old = _quest_scores(joint, obs, JOINT_TRIALS, rng)
        rows.update({f"quest+ joint ({t}/block)": (N_BLOCKS * t, old[t]) for t in JOINT_TRIALS})
        print(f"{name}: simulated in {time.perf_counter() - start:.0f} s", flush=True)
        stats = {}
        for method, (trials, scores) in rows.items():
            s = scores[ok]
            hw, cov = _studies(s, truth, STUDY_SIZE, n_studies, np.random.default_rng(7))
            n_eq = PAPER_TOTAL // trials if trials else STUDY_SIZE
            hw_eq, cov_eq = (hw, cov) if n_eq == STUDY_SIZE else _studies(s, truth, n_eq, n_studies, np.random.default_rng(8))
            bias = float(np.mean(s - true[ok]))
            bias_m = float(np.mean(s - clipped[ok]))
            rmse = float(np.sqrt(np.mean((s - true[ok]) ** 2)))
            stats[method] = dict(trials=trials, bias=bias, bias_m=bias_m, rmse=rmse, hw=hw, cov=cov, n_eq=n_eq,
                                 hw_eq=hw_eq, cov_eq=cov_eq)
            trial_text = trials if trials else "—"
            eq_text = (f"{n_eq} | {hw_eq:.1f} | {100 * cov_eq:.1f}%") if trials else "— | — | —"
            table.append(f"| {name} | {method} | {trial_text} | {bias:+.1f} | {bias_m:+.1f} | {rmse:.1f} | {hw:.1f} |"
                         f" {100 * cov:.1f}% | {eq_text} |")
        paper = stats[PAPER]
        target = paper["hw"]
        q_trials = [N_BLOCKS * t for t in TRIALS]
        q_hw = [stats[f"quest+ ({t}/block)"]["hw"] for t in TRIALS]
        need = _trials_for(target, q_trials, q_hw)
        need_text = f"{need:.0f} ({100 * (1 - need / 450):.0f}% fewer)" if need else f"> {max(q_trials)}"

        def best(prefix: str, trials_list) -> tuple[dict, str]:
            """The design (trials per block) with the narrowest equal-time interval among those whose
            coverage is in COVERAGE_OK; total trials that design needs for the paper's half-width
            (the half-width goes as 1 / sqrt(evaluators) at a fixed design)."""
            cands = [stats[f"{prefix} ({t}/block)"] for t in trials_list]
            good = [c for c in cands if COVERAGE_OK[0] <= c["cov_eq"] <= COVERAGE_OK[1]]
            if not good:
                return {}, "none covers 93-97%"
            c = min(good, key=lambda c: c["hw_eq"])
            return c, f"{c['hw_eq']:.1f} ({c['n_eq']} x {c['trials']}; {100 * c['cov_eq']:.1f}%)"

        def total(prefix: str, trials_list) -> float | None:
            good = [stats[f"{prefix} ({t}/block)"] for t in trials_list]
            good = [c for c in good if COVERAGE_OK[0] <= c["cov_eq"] <= COVERAGE_OK[1]]
            return min((PAPER_TOTAL * (c["hw_eq"] / target) ** 2 for c in good), default=None)

        _, q_best = best("quest+", TRIALS)
        _, m_best = best("staircase+mode", STAIR_TRIALS)
        _, p_best = best("staircase+posterior", STAIR_TRIALS)
        q_total, p_total = total("quest+", TRIALS), total("staircase+posterior", STAIR_TRIALS)
        saving = f"{100 * (1 - q_total / PAPER_TOTAL):.0f}%" if q_total else "—"
        fmt = lambda v: f"{v:,.0f}" if v else "—"  # noqa: E731
        summary.append(
            f"| {name} | {truth:.0f} | {stats['oracle (true thresholds)']['hw']:.1f} | {target:.1f}"
            f" ({100 * paper['cov']:.1f}%) | {q_hw[-1] / target:.2f} | {need_text} | {q_best} | {m_best} | {p_best} |"
            f" {fmt(q_total)} | {fmt(p_total)} | {saving} |")
        q450, j450 = stats["quest+ (150/block)"], stats["quest+ joint (150/block)"]
        outside = float(np.mean((true[ok] < lo) | (true[ok] > hi)))
        ceiling = float(clipped[ok].mean() - truth)
        bias_rows.append(
            f"| {name} | {100 * outside:.1f}% | {truth:.0f} | {clipped[ok].mean():.0f} | {ceiling:+.1f} |"
            f" {paper['bias']:+.1f} ({paper['bias_m']:+.1f}) | {q450['bias']:+.1f} ({q450['bias_m']:+.1f}) |"
            f" {paper['rmse']:.1f} | {stats['staircase+posterior (150/block)']['rmse']:.1f} | {q450['rmse']:.1f} |"
            f" {j450['rmse']:.1f} |")
        curves[name] = stats
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    cost = answer_cost()
    text = [
        "# Adaptive HYPE-time (QUEST+) against the paper's staircase",
        "",
        f"Generated by `python experiments/adaptive_time.py`{' --quick' if args.quick else ''}. {pool} simulated evaluators "
        f"per population, every method run on the same ones; {n_studies} random studies per cell drawn from them; 95% CIs "
        "by the default interval (studentized bootstrap, 1,000 resamples). Truth: the pool's mean true 75% threshold. "
        "QUEST+ is the default rule (each exposure chosen for the threshold's marginal posterior); `quest+ joint` is "
        "Watson's rule over threshold, slope and lapse, the default before.",
        "",
        "## Summary",
        "",
        "Half-widths in ms (coverage of the truth in brackets). *Oracle*: studies of 30 evaluators scored by their exact "
        "true thresholds, the floor for any per-evaluator score that is unbiased for each evaluator. *Equal human time*: "
        f"the paper's {PAPER_TOTAL:,} trials per model as more evaluators with fewer trials each (evaluators x trials; the "
        "narrowest design whose coverage is 93-97%). *Total trials for the paper's half-width*: that design's total "
        "scaled by (its half-width / the paper's)^2, the half-width going as 1/sqrt(evaluators) at a fixed design.",
        "",
        *summary,
        "",
        "## Bias, the exposure ceiling, and per-evaluator error",
        "",
        "Bias: mean over evaluators of (score - their own true 75% threshold); in brackets against the threshold "
        f"clipped to the exposures shown ({lo:.0f}-{hi:.0f} ms), what a method limited to them can measure. Ceiling's "
        "share: the clipped mean minus the true mean. RMSE: per evaluator, against their own true threshold, 450 trials.",
        "",
        *bias_rows,
        "",
        "## Every method",
        "",
        *table,
        "",
        "## Server cost per answer",
        "",
        *cost,
        "",
        "Plot: `experiments/adaptive_time.png`.",
    ]
    (HERE / "adaptive_time.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    _plot(curves)


def _plot(curves: dict[str, dict]) -> None:
    fig, axes = plt.subplots(3, len(curves), figsize=(12, 8.5), dpi=90, sharex=True)
    for j, (name, stats) in enumerate(curves.items()):
        oracle, paper = stats["oracle (true thresholds)"]["hw"], stats[PAPER]
        for row, key, title in ((0, "hw", "30 evaluators"), (1, "hw_eq", f"{PAPER_TOTAL:,} trials per model")):
            ax = axes[row, j]
            for prefix, trials, color in (("quest+", TRIALS, "C0"), ("staircase+mode", STAIR_TRIALS, "C3"),
                                          ("staircase+posterior", STAIR_TRIALS, "C2"), ("quest+ joint", JOINT_TRIALS, "C7")):
                pts = [stats[f"{prefix} ({t}/block)"] for t in trials]
                cov = "cov" if row == 0 else "cov_eq"
                ax.plot([p["trials"] for p in pts], [p[key] for p in pts], "-", color=color, lw=1, label=prefix)
                for p in pts:  # filled: coverage 93-97%; hollow: outside
                    good = COVERAGE_OK[0] <= p[cov] <= COVERAGE_OK[1]
                    ax.plot(p["trials"], p[key], "o", color=color, ms=4, mfc=color if good else "none")
            ax.axhline(paper["hw"], color="C3", ls=":", lw=1)
            if row == 0:
                ax.axhline(oracle, color="k", ls="--", lw=0.8)
            ax.set_title(f"{name}: half-width, {title}", fontsize=8)
            if j == 0:
                ax.set_ylabel("95% CI half-width (ms)", fontsize=8)
            ax.tick_params(labelsize=7)
        ax = axes[2, j]
        for prefix, trials, color in (("quest+", TRIALS, "C0"), ("staircase+mode", STAIR_TRIALS, "C3"),
                                      ("staircase+posterior", STAIR_TRIALS, "C2"), ("quest+ joint", JOINT_TRIALS, "C7")):
            pts = [stats[f"{prefix} ({t}/block)"] for t in trials]
            ax.plot([p["trials"] for p in pts], [p["bias_m"] for p in pts], "o-", color=color, ms=3, lw=1, label=prefix)
        ax.axhspan(-10, 10, color="grey", alpha=0.15)
        ax.set_title(f"{name}: bias vs measurable threshold", fontsize=8)
        ax.set_xlabel("trials per evaluator", fontsize=8)
        if j == 0:
            ax.set_ylabel("bias (ms)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle("dotted: the paper (staircase+mode, 30 x 450 trials); dashed: oracle (true thresholds, 30 evaluators);"
                 " hollow: coverage outside 93-97%; grey: within one 10 ms step", fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "adaptive_time.png")


if __name__ == "__main__":
    main()
