"""Adaptive HYPE-time (QUEST+, hype/adaptive.py) against the paper's staircase, on simulated evaluators
with a known 75% threshold; and the per-answer server cost of QUEST+.

For each population (steep / shallow psychometric functions, lapses, a wide between-evaluator spread)
and method it prints: the bias of the per-evaluator score against the population's mean 75% threshold;
the mean 95% CI half-width of a 30-evaluator study (default interval, studentized bootstrap) at the
paper's 3 x 150 trials; the trials per evaluator QUEST+ needs for the staircase's half-width; and the
coverage of the true threshold. Writes experiments/adaptive_time.md and adaptive_time.png.

Methods: `staircase+mode` (the paper: weighted staircase, block mode), `staircase+posterior` (the same
trials scored by the QUEST+ posterior), `quest+` with 3 blocks of T trials for T in TRIALS.
Studies: a pool of POOL simulated evaluators per population; STUDIES random sets of 30 from it.

    python experiments/adaptive_time.py            # ~10 min on 2 busy cores
    python experiments/adaptive_time.py --quick    # fewer evaluators, for a look
"""

from __future__ import annotations

import argparse
import time
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
N_BLOCKS = 3
STUDY_SIZE = 30
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


def _truth(pop: sm.Population, rng: np.random.Generator) -> float:
    """Mean 75% threshold of the population (observers that never reach 75% excluded: rare here)."""
    t = pop.draw(200_000, rng).threshold_ms()
    return float(np.mean(t[np.isfinite(t)]))


def _quest_scores(cfg: ad.QuestConfig, obs: sm.Observer, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Posterior threshold per evaluator after 3 blocks of T trials, for every T in TRIALS (one run of
    max(TRIALS): QUEST+ never looks ahead, so its first T trials are a T-trial run)."""
    n = len(obs)
    n_trials = max(TRIALS)
    plan = sm.time_plan(N_BLOCKS, n_trials, rng, n_evaluators=n).reshape(n * N_BLOCKS, n_trials)
    col = obs.column()
    rows = np.repeat(np.arange(n), N_BLOCKS)
    per_block = sm.Observer(**{f: np.asarray(getattr(col, f))[rows] for f in
                               ("fake_accuracy", "real_accuracy", "scale_ms", "slope", "lapse", "guess")})

    def respond(t, x, u):
        return u < per_block.p_correct(plan[:, t][:, None], x[:, None])[:, 0]

    _, _, snaps = ad.run_many(cfg, respond, n * N_BLOCKS, n_trials, rng, record_at=TRIALS)
    # an evaluator's posterior: the sum of their blocks' log likelihoods (one observer, one prior)
    return {t: ad.posterior_threshold(cfg, snaps[t].reshape(n, N_BLOCKS, -1).sum(axis=1)) for t in TRIALS}


def _staircase_scores(cfg_q: ad.QuestConfig, obs: sm.Observer, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = len(obs)
    ts = TimeSettings()
    plan = sm.time_plan(N_BLOCKS, ts.trials_per_block, rng, n_evaluators=n)
    run = sm.run_time_many(obs, plan, stairs.StaircaseConfig.from_time_settings(ts), rng)
    blocks = sm._blocks_from_exposures("m", np.arange(n).astype(str), run.exposure_ms, run.levels)
    mode = blocks.evaluator_score
    posterior = np.array([ad.threshold_from_trials(cfg_q, run.exposure_ms[i].ravel(), run.correct[i].ravel())
                          for i in range(n)])
    return mode, posterior


def _studies(scores: np.ndarray, truth: float, n_studies: int, rng: np.random.Generator) -> tuple[float, float]:
    """(mean CI half-width, coverage) of random 30-evaluator studies drawn from the pool."""
    widths, hits = [], 0
    for _ in range(n_studies):
        pick = scores[rng.choice(scores.size, STUDY_SIZE, replace=False)]
        res = sc.bootstrap_mean(pick, method=sc.DEFAULT_METHODS["hype-time"], n_resamples=1000, rng=rng)
        widths.append(res.halfwidth)
        hits += res.confidence_interval.low <= truth <= res.confidence_interval.high
    return float(np.mean(widths)), hits / n_studies


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
    parser.add_argument("--pool", type=int, default=900, help="simulated evaluators per population")
    parser.add_argument("--studies", type=int, default=1000, help="random 30-evaluator studies per cell")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    pool, n_studies = (150, 100) if args.quick else (args.pool, args.studies)
    cfg = ad.QuestConfig.from_time_settings(TimeSettings())
    header = ("| population | method | trials / evaluator | bias (ms) | CI half-width, 30 evaluators (ms) | coverage |")
    table = [header, "|---|---|---:|---:|---:|---:|"]
    summary = ["| population | truth (ms) | staircase+mode bias | quest+ bias (450 trials) | half-width ratio at 450 trials |"
               " QUEST+ trials for the staircase's half-width | saving |", "|---|---:|---:|---:|---:|---:|---:|"]
    curves = {}
    for name, pop in POPULATIONS.items():
        start = time.perf_counter()
        rng = np.random.default_rng(sum(map(ord, name)))
        truth = _truth(pop, rng)
        obs = pop.draw(pool, rng)
        mode, stair_post = _staircase_scores(cfg, obs, rng)
        quest = _quest_scores(cfg, obs, rng)
        rows = {"staircase+mode": (450, mode), "staircase+posterior": (450, stair_post)}
        rows.update({f"quest+ ({t}/block)": (N_BLOCKS * t, quest[t]) for t in TRIALS})
        stats = {}
        for method, (trials, scores) in rows.items():
            hw, cov = _studies(scores, truth, n_studies, np.random.default_rng(7))
            stats[method] = (trials, float(np.mean(scores) - truth), hw, cov)
            table.append(f"| {name} | {method} | {trials} | {stats[method][1]:+.1f} | {hw:.1f} | {100 * cov:.1f}% |")
        target = stats["staircase+mode"][2]
        q_hw = {t: stats[f"quest+ ({t}/block)"][2] for t in TRIALS}
        enough = [t for t in TRIALS if q_hw[t] <= target]
        if enough:
            # linear interpolation between the grid points around the staircase's half-width
            t_hi = min(enough)
            lower = [t for t in TRIALS if t < t_hi]
            if lower:
                t_lo = max(lower)
                frac = (q_hw[t_lo] - target) / (q_hw[t_lo] - q_hw[t_hi])
                need = N_BLOCKS * (t_lo + frac * (t_hi - t_lo))
            else:
                need = N_BLOCKS * t_hi
            need_text, saving = f"{need:.0f}", f"{100 * (1 - need / 450):.0f}%"
        else:
            need_text, saving = f"> {N_BLOCKS * max(TRIALS)}", "none"
        summary.append(f"| {name} | {truth:.0f} | {stats['staircase+mode'][1]:+.1f} | {stats['quest+ (150/block)'][1]:+.1f} |"
                       f" {q_hw[150] / target:.2f} | {need_text} | {saving} |")
        curves[name] = (target, [N_BLOCKS * t for t in TRIALS], [q_hw[t] for t in TRIALS],
                        stats["staircase+mode"][1], [stats[f"quest+ ({t}/block)"][1] for t in TRIALS])
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    cost = answer_cost()
    text = [
        "# Adaptive HYPE-time (QUEST+) against the paper's staircase",
        "",
        f"Generated by `python experiments/adaptive_time.py`{' --quick' if args.quick else ''}. {pool} simulated evaluators "
        f"per population; {n_studies} random studies of {STUDY_SIZE} evaluators each drawn from them; 95% CIs by the "
        "default interval (studentized bootstrap, 1,000 resamples). Truth: the population's mean 75% threshold. "
        "Bias: mean per-evaluator score minus the truth.",
        "",
        "## Summary",
        "",
        *summary,
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
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=90)
    for i, (name, (target, trials, hws, stair_bias, q_bias)) in enumerate(curves.items()):
        color = f"C{i}"
        axes[0].plot(trials, hws, "o-", color=color, ms=3, label=f"{name}: QUEST+")
        axes[0].axhline(target, color=color, ls=":", lw=1)
        axes[1].plot(trials, q_bias, "o-", color=color, ms=3, label=f"{name}: QUEST+")
        axes[1].plot([450], [stair_bias], "s", color=color, ms=6, mfc="none", label=f"{name}: staircase+mode")
    axes[0].set_xlabel("trials per evaluator")
    axes[0].set_ylabel("95% CI half-width, 30 evaluators (ms)")
    axes[0].set_title("dotted: the staircase's at 450 trials", fontsize=9)
    axes[0].legend(fontsize=6)
    axes[1].axhspan(-10, 10, color="grey", alpha=0.15)
    axes[1].set_xlabel("trials per evaluator")
    axes[1].set_ylabel("bias vs true 75% threshold (ms)")
    axes[1].set_title("grey: within one 10 ms step", fontsize=9)
    axes[1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(HERE / "adaptive_time.png")


if __name__ == "__main__":
    main()
