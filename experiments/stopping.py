"""Stopping collection at a target certainty (hype/stopping.py): coverage of the stopped estimates and
the evaluators it takes, on simulated studies with a known truth, both modes.

For each mode and target half-width it simulates STUDIES sequences of up to CAP evaluators of one model
(hype's default population; HYPE-time with the paper's staircase and modal score, and again with QUEST+
and the posterior-threshold score, `time.adaptive`), lets the rule look
after every evaluator, and prints: the coverage of the interval reported for the stopped model (truth
above / below), the mean and 10-90% range of evaluators used, and the fixed study size that reaches
the same target on average and in 90% of studies. The rule (minimum 10 evaluators, 96% deciding
interval) is set against the naive one (95%, deciding from 3 evaluators), which is what stopping
early costs without the guards. A second table runs "until models separate" on three models.
Writes experiments/stopping.md and experiments/stopping.png.

QUEST+ evaluators cost ~30 ms each to simulate (hype.adaptive.run_many, all of them in lockstep), so
their studies are drawn, without replacement within a study, from a pool of QUEST_POOL simulated
evaluators per population, built once and cached in experiments/stopping_quest_pool.npz (rebuilt when
the populations, the settings or the pool size change). Their truth is the pool's mean score: the
estimand of a study drawn from the pool, as E[score] over the population is for fresh evaluators.

    python experiments/stopping.py            # ~12 min on 2 busy cores (+ ~13 min to build the QUEST+ pool once)
    python experiments/stopping.py --quick    # fewer studies, for a look
    python experiments/stopping.py --only-quest   # re-run the QUEST+ rows alone (a new pool or QUEST+ rule;
                                                  # ~1 min + the pool); the other rows are kept from stopping.md
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hype import scoring  # noqa: E402
from hype.adaptive import QuestConfig  # noqa: E402
from hype.scoring import bootstrap_mean  # noqa: E402
from hype import simulate as sm  # noqa: E402
from hype import stopping as st  # noqa: E402
from hype.protocol import InfinitySettings, TimeSettings  # noqa: E402

HERE = Path(__file__).parent
CAP = 60
QUEST = "hype-time QUEST+"  # HYPE-time with time.adaptive: QUEST+ exposures, posterior-threshold score
QUEST_POOL = 4000  # simulated QUEST+ evaluators per population (the separation models: half as many each)
POOL_FILE = HERE / "stopping_quest_pool.npz"
TARGETS = {"hype-infinity": (0.05, 0.04, 0.03, 0.025, 0.02), "hype-time": (80.0, 60.0, 50.0, 40.0, 35.0)}
SCALE = {"hype-infinity": (100.0, "points"), "hype-time": (1.0, "ms")}
BOUNDS = {"hype-infinity": (0.0, 1.0), "hype-time": None}
RULES = {"hype rule (min 10, 96% deciding)": dict(min_evaluators=10),
         "naive (min 3, 95%)": dict(min_evaluators=3, naive=True)}
# QUEST+'s posterior thresholds are skewed to the right: the rule decides with, and reports, Cox's
# log-normal interval (hype.stopping.log_interval); the staircase's t-interval rule is shown beside it.
QUEST_RULES = {"hype rule (log-normal interval, min 10, 97% deciding)": dict(min_evaluators=10, scale="log"),
               "t-interval rule (min 10, 96%), as for the staircase": dict(min_evaluators=10, boot=False),
               "naive (min 3, 95%)": dict(min_evaluators=3, naive=True)}
LABELS = ("hype-infinity", "hype-time", QUEST)  # the row groups: HYPE-time twice, staircase + mode and QUEST+
MODE_OF = {"hype-infinity": "hype-infinity", "hype-time": "hype-time", QUEST: "hype-time"}
SEPARATION = {  # three models a few points / tens of ms apart
    "hype-infinity": {"A": sm.Population(fake_accuracy=0.80, real_accuracy=0.85),
                      "B": sm.Population(fake_accuracy=0.85, real_accuracy=0.90),
                      "C": sm.Population(fake_accuracy=0.90, real_accuracy=0.93)},
    "hype-time": {"A": sm.Population(threshold_ms=250), "B": sm.Population(threshold_ms=300),
                  "C": sm.Population(threshold_ms=400)},
}


def evaluator_scores(mode: str, pop: sm.Population, n: int, rng: np.random.Generator) -> np.ndarray:
    """n simulated evaluators' scores (error rate, or mean block mode in ms)."""
    if mode == "hype-infinity":
        data, _ = sm._simulate_infinity_model("m", pop, n, InfinitySettings(), rng, "e")
    else:
        data, _, _ = sm._simulate_time_model("m", pop, n, TimeSettings(), rng, "e")
    return scoring.evaluator_scores(data)


def quest_pools(pops: dict[str, sm.Population], sizes: dict[str, int], seed: int,
                path: Path = POOL_FILE) -> dict[str, np.ndarray]:
    """Posterior-threshold scores of simulated QUEST+ evaluators (hype.simulate.quest_scores, the
    study default 3 x 150 trials) per population, from the cache file when it was built for exactly
    these populations, settings and sizes, else built in chunks and cached."""
    settings = replace(TimeSettings(), adaptive=True)
    # the exposure rule is part of the key: a pool of another rule's scores is another pool
    rule = QuestConfig.from_time_settings(settings).target
    key = repr((sorted((k, repr(p), sizes[k]) for k, p in pops.items()), repr(settings), seed, rule))
    if path.exists():
        cached = np.load(path, allow_pickle=False)
        if str(cached["key"]) == key:
            return {k: cached[k] for k in pops}
    out = {}
    for i, (name, pop) in enumerate(sorted(pops.items())):
        rng = np.random.default_rng([seed, i])
        chunks, left, start = [], sizes[name], time.perf_counter()
        while left > 0:  # chunks: a few hundred evaluators in lockstep is where run_many is fastest per evaluator
            n = min(500, left)
            chunks.append(sm.quest_scores(pop, n, settings, rng))
            left -= n
            print(f"QUEST+ pool {name}: {sizes[name] - left}/{sizes[name]} ({time.perf_counter() - start:.0f} s)", flush=True)
        out[name] = np.concatenate(chunks)
    # the rule also on its own: tests/unit/test_stopping.py reads this pool and checks it is today's default rule's
    np.savez_compressed(path, key=np.array(key), rule=np.array(rule), **out)
    return out


def resampled(pool: np.ndarray, studies: int, rng: np.random.Generator) -> np.ndarray:
    """(studies, CAP) evaluator scores, each study CAP distinct evaluators of the pool in random order."""
    return np.stack([pool[rng.permutation(pool.size)[:CAP]] for _ in range(studies)])


def truth(mode: str, pop: sm.Population) -> float:
    return sm.true_infinity_rates(pop).overall if mode == "hype-infinity" else sm.true_time_score(pop)


def _rule(mode: str, target: float | None, min_evaluators: int, naive: bool = False, scale: str = "linear", **extra) -> st.Rule:
    rule = st.Rule(target_halfwidth=target, min_evaluators=min_evaluators, max_evaluators=CAP,
                   bounds=BOUNDS[mode], scale=scale, **extra)
    return rule


def _interval(x: np.ndarray, rule: st.Rule, naive: bool, reason: str | None) -> st.Interval:
    if naive:  # the nominal interval whatever happened
        return st.t_interval(x, rule.confidence_level, rule.bounds)
    return st.decide(x, rule).interval if reason != st.SEPARATED else rule.interval(x, rule.level)


BOOT_RESAMPLES = 1999


def bootstrap_misses(x: np.ndarray, mode: str, true: float, rng: np.random.Generator) -> tuple[bool, bool]:
    """(truth above, truth below) the studentized bootstrap 95% interval over these evaluators' scores:
    the interval the leaderboard, live score, `hype score` and the report show for every model, a
    stopped one included (per-evaluator error rates with equal trials: the same ratio the report uses)."""
    ci = bootstrap_mean(x, method="studentized", n_resamples=BOOT_RESAMPLES, rng=rng).confidence_interval
    low, high = ci.low, ci.high
    if BOUNDS[mode]:
        low, high = max(low, BOUNDS[mode][0]), min(high, BOUNDS[mode][1])
    return high < true, low > true


def precision_rows(mode: str, x: np.ndarray, true: float, label: str | None = None,
                   rules: dict[str, dict] | None = None) -> list[dict]:
    rows = []
    rules = rules or RULES
    n_grid = np.arange(2, CAP + 1)
    # fixed-N half-width of the nominal interval, per study and size: what a fixed design would get
    nominal = _rule(mode, None, 10, scale=next(iter(rules.values())).get("scale", "linear"))
    fixed_hw = np.array([[nominal.interval(x[s, :n], 0.95).halfwidth for n in n_grid]
                         for s in range(min(x.shape[0], 1000))])
    for target in TARGETS[mode]:
        mean_ok = n_grid[fixed_hw.mean(axis=0) <= target]
        p90_ok = n_grid[np.mean(fixed_hw <= target, axis=0) >= 0.9]
        for name, opts in rules.items():
            naive = opts.get("naive", False)
            rule = _rule(mode, target, opts["min_evaluators"], scale=opts.get("scale", "linear"))
            boot_it = not naive and opts.get("boot", True)
            if naive:
                rule = replace(rule, confidence_level=0.95)
                stops = _naive_stops(x, rule)
            else:
                stops = st.stopping_point(x, rule)
            hit = np.empty((x.shape[0], 2), bool)
            boot = np.zeros((x.shape[0], 2), bool)
            brng = np.random.default_rng(7)
            for s, n in enumerate(stops):
                reason = st.CAP if n >= CAP else st.TARGET
                iv = _interval(x[s, :n], rule, naive, reason)
                hit[s] = (iv.high < true, iv.low > true)
                if boot_it:
                    boot[s] = bootstrap_misses(x[s, :n], mode, true, brng)
            rows.append(dict(mode=mode, label=label or mode, target=target, rule=name, coverage=1 - hit.any(axis=1).mean(),
                             above=hit[:, 0].mean(), below=hit[:, 1].mean(), mean_n=stops.mean(),
                             boot_coverage=1 - boot.any(axis=1).mean() if boot_it else None,
                             boot_above=boot[:, 0].mean(), boot_below=boot[:, 1].mean(),
                             q10=np.quantile(stops, 0.1), q90=np.quantile(stops, 0.9),
                             at_cap=np.mean(stops >= CAP),
                             fixed_mean=int(mean_ok[0]) if mean_ok.size else None,
                             fixed_90=int(p90_ok[0]) if p90_ok.size else None, studies=x.shape[0]))
    return rows


def _naive_stops(x: np.ndarray, rule: st.Rule) -> np.ndarray:
    """The precision stop with the nominal level deciding: stopping_point with no correction."""
    shrink = st.ALPHA_SHRINK
    try:
        st.ALPHA_SHRINK = 1.0
        return st.stopping_point(x, rule)
    finally:
        st.ALPHA_SHRINK = shrink


def separation_rows(mode: str, studies: int, rng: np.random.Generator,
                    pools: dict[str, np.ndarray] | None = None) -> list[dict]:
    """`pools` (QUEST+): each model's studies are resampled from its pool, whose mean is its truth."""
    pops = SEPARATION[mode]
    if pools is None:
        seqs = {m: evaluator_scores(mode, p, studies * CAP, rng).reshape(studies, CAP) for m, p in pops.items()}
        truths = {m: truth(mode, p) for m, p in pops.items()}
    else:
        seqs = {m: resampled(pools[m], studies, rng) for m in pops}
        truths = {m: float(pools[m].mean()) for m in pops}
    rule = st.Rule(until_separate=True, min_evaluators=10, max_evaluators=CAP, bounds=BOUNDS[mode],
                   scale="linear" if pools is None else "log")
    tally = {m: {"hit": 0, "above": 0, "below": 0, "n": 0, "separated": 0, "b_above": 0, "b_below": 0} for m in pops}
    brng = np.random.default_rng(7)
    for s in range(studies):
        n = {m: 0 for m in pops}
        done: dict[str, st.Decision] = {}
        while len(done) < len(pops):
            for m in pops:  # one evaluator per open model per round, as recruitment fills evenly
                if m not in done:
                    n[m] += 1
            current = {m: seqs[m][s, :n[m]] for m in pops}
            for m, d in st.decide_models(current, rule).items():
                if m not in done and d.stop:
                    done[m] = d
        for m, d in done.items():
            iv = d.interval
            t = tally[m]
            t["above"] += iv.high < truths[m]
            t["below"] += iv.low > truths[m]
            t["n"] += n[m]
            t["separated"] += d.reason == st.SEPARATED
            above, below = bootstrap_misses(seqs[m][s, :n[m]], mode, truths[m], brng)
            t["b_above"] += above
            t["b_below"] += below
    rows = []
    for m, t in tally.items():
        rows.append(dict(mode=mode, label=QUEST if pools is not None else mode, model=m, truth=truths[m], coverage=1 - (t["above"] + t["below"]) / studies,
                         above=t["above"] / studies, below=t["below"] / studies, mean_n=t["n"] / studies,
                         separated=t["separated"] / studies, studies=studies,
                         boot_coverage=1 - (t["b_above"] + t["b_below"]) / studies,
                         boot_above=t["b_above"] / studies, boot_below=t["b_below"] / studies))
    return rows


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def _boot(r: dict) -> str:
    if r.get("boot_coverage") is None:
        return "—"
    return f"{_pct(r['boot_coverage'])} ({_pct(r['boot_above'])} / {_pct(r['boot_below'])})"


def boot_summary(rows: list[dict], sep: list[dict]) -> list[str]:
    """The range of the bootstrap's coverage after stopping, per mode: the figure hype.stopping quotes."""
    out = ["", "## The interval a reader sees for a stopped model", "",
           "Every model not stopped early shows hype's default interval: the studentized bootstrap 95% interval "
           "(for HYPE-∞ now kg-t, which contains the studentized interval, so it covers at least as often). "
           "The studentized interval's coverage on the "
           f"same stopped estimates ({BOOT_RESAMPLES} resamples; last column above) is below:", ""]
    for label in LABELS:
        vals = [r["boot_coverage"] for r in rows if r["label"] == label and r.get("boot_coverage") is not None]
        svals = [r["boot_coverage"] for r in sep if r["label"] == label]
        if not vals or not svals:
            continue
        out.append(f"- {label}: {_pct(min(vals))}–{_pct(max(vals))}% at a target half-width, "
                   f"{_pct(min(svals))}–{_pct(max(svals))}% until models separate.")
    out += ["", "It falls below 93% in a cell, so a model stopped early shows the rule's own interval instead "
            "(hype.stopping.stopped_interval, named with the coverage of the hype-rule rows above, per kind of "
            "score: `hype.stopping.STOPPED_COVERAGE`) in the report, the live score, `hype score` and exports."]
    return out


def kept_rows(path: Path) -> tuple[list[dict], list[dict], str]:
    """The rows of a previous stopping.md that are not QUEST+'s, and its run time: what --only-quest keeps.
    Each row keeps its table line verbatim (written back unchanged) and the figures plot() and
    boot_summary() read from it."""
    rows, sep, seconds = [], [], ""
    text = path.read_text()
    found = re.search(r"cap \d+ evaluators, (\d+ s)", text)
    if found:
        seconds = found.group(1)

    def pct(cell: str) -> float | None:
        return None if cell == "—" else float(cell.split()[0]) / 100

    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| hype-") or cells[0] == QUEST:
            continue
        label = cells[0]
        mode = MODE_OF[label]
        if len(cells) == 10:  # precision: mode, target, rule, coverage, above, below, mean (q10–q90), cap, fixed, bootstrap
            fixed_90 = cells[8].split(" / ")[1]
            rows.append(dict(mode=mode, label=label, target=float(cells[1].split()[0]) / SCALE[mode][0], rule=cells[2],
                             coverage=pct(cells[3]), mean_n=float(cells[6].split()[0]),
                             fixed_90=None if fixed_90.startswith(">") else int(fixed_90),
                             boot_coverage=pct(cells[9]), line=line))
        elif len(cells) == 9:  # separation: mode, model, truth, coverage, above, below, mean, separated, bootstrap
            sep.append(dict(mode=mode, label=label, model=cells[1], boot_coverage=pct(cells[8]), line=line))
    return rows, sep, seconds


def write(rows: list[dict], sep: list[dict], seconds: float, studies: dict[str, int], sep_studies: dict[str, int],
          kept_seconds: str = "") -> str:
    took = f"{seconds:.0f} s" if not kept_seconds else (
        f"{kept_seconds}; the QUEST+ rows re-run alone, `--only-quest`, in {seconds:.0f} s")
    out = ["# Stopping at a target certainty: coverage of the stopped estimates", "",
           "Generated by `python experiments/stopping.py` (hype/stopping.py; "
           f"{studies['hype-infinity']} simulated studies per HYPE-∞ cell, {studies['hype-time']} per HYPE-time cell, "
           f"default population, cap {CAP} evaluators, {took}). HYPE-time runs twice: the paper's staircase "
           f"scored by the block mode (`hype-time`), and QUEST+ scored by the posterior threshold (`{QUEST}`, "
           f"setting `time.adaptive`; {studies[QUEST]} studies per cell, each {CAP} distinct evaluators drawn from a "
           f"pool of {QUEST_POOL} simulated QUEST+ evaluators, 3 × 150 trials; truth = the pool's mean score).", "",
           "The rule looks after every valid evaluator. **hype rule**: no decision before 10 evaluators; it "
           "stops a model once the 96% Student-t interval over per-evaluator scores (the nominal 95% with "
           "alpha × 0.8) has the target half-width, and reports that interval; a model that reaches the cap "
           "reports the nominal 95% interval. **naive**: 95% deciding from 3 evaluators. Coverage is of the "
           "interval reported when the model stopped; the goal is 93–97%. *Fixed N*: the fixed study size "
           "whose 95% half-width reaches the target on average / in 90% of studies (same simulated evaluators).",
           "", f"**QUEST+** (`{QUEST}` rows): the posterior thresholds are skewed to the right (evaluators' thresholds "
           "are log-normal), so a sample that lacks its few slow evaluators has both a low mean and a small SD; "
           "stopping on a narrow t-interval picks exactly those samples and the truth lies above the stopped "
           "interval far more often than 2.5% (the *t-interval rule* rows). A QUEST+ study's rule therefore "
           "decides on, and reports, Cox's interval for a log-normal mean (exp(ȳ + s²/2 ± t·√(s²/n + s⁴/(2(n−1)))) "
           "over log scores; `hype.stopping.log_interval`), at 97% (alpha × 0.6), also until models separate; "
           "at the cap the nominal 95% log-normal interval. *Fixed N* for QUEST+ uses the 95% log-normal interval.",
           "", "| mode | target half-width | rule | coverage % | truth above % | truth below % | mean evaluators "
           "(10–90%) | stopped at cap % | fixed N (mean / 90%) | studentized bootstrap 95%: coverage % (above / below) |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "line" in r:
            out.append(r["line"])
            continue
        scale, unit = SCALE[r["mode"]]
        fixed = f"{r['fixed_mean'] or f'>{CAP}'} / {r['fixed_90'] or f'>{CAP}'}"
        out.append(f"| {r['label']} | {scale * r['target']:g} {unit} | {r['rule']} | {_pct(r['coverage'])} | "
                   f"{_pct(r['above'])} | {_pct(r['below'])} | {r['mean_n']:.1f} ({r['q10']:.0f}–{r['q90']:.0f}) | "
                   f"{_pct(r['at_cap'])} | {fixed} | {_boot(r)} |")
    se = {m: 100 * np.sqrt(0.95 * 0.05 / n) for m, n in studies.items()}
    out += ["", f"Monte-Carlo SE of a coverage near 95%: {se['hype-infinity']:.2f} points (HYPE-∞), "
            f"{se['hype-time']:.2f} (HYPE-time); a little more for QUEST+, whose studies share evaluators of one pool.", "",
            "## Until models separate", "",
            f"{sep_studies['hype-infinity']} (HYPE-∞) and {sep_studies['hype-time']} (HYPE-time, each procedure) simulated studies of "
            "three models a few points (HYPE-∞) or 50–100 ms (HYPE-time) apart; each round every model "
            "still collecting gets one evaluator; a model stops once its 97% interval (alpha × 0.6) is clear "
            "of both others' 97% intervals (from 10 evaluators on), and reports that interval; or at the cap. "
            f"QUEST+ (`{QUEST}`): the 97% log-normal interval; the three models' studies are drawn from pools of "
            f"{QUEST_POOL // 2} simulated QUEST+ evaluators each (truth = each pool's mean).", "",
            "| mode | model | truth | coverage % | truth above % | truth below % | mean evaluators | stopped by separation % "
            "| studentized bootstrap 95%: coverage % (above / below) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sep:
        if "line" in r:
            out.append(r["line"])
            continue
        scale, unit = SCALE[r["mode"]]
        out.append(f"| {r['label']} | {r['model']} | {scale * r['truth']:.1f} {unit} | {_pct(r['coverage'])} | "
                   f"{_pct(r['above'])} | {_pct(r['below'])} | {r['mean_n']:.1f} | {_pct(r['separated'])} | {_boot(r)} |")
    out += boot_summary(rows, sep)
    out += ["", "![coverage and evaluators used](stopping.png)", ""]
    return "\n".join(out)


def plot(rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(14, 9.5))
    for col, label in enumerate(LABELS):
        mode = MODE_OF[label]
        scale, unit = SCALE[mode]
        for name in dict.fromkeys(r["rule"] for r in rows if r["label"] == label):
            rs = [r for r in rows if r["label"] == label and r["rule"] == name]
            x = [scale * r["target"] for r in rs]
            axes[0, col].plot(x, [100 * r["coverage"] for r in rs], "o-", label=name)
            axes[1, col].plot(x, [r["mean_n"] for r in rs], "o-", label=f"{name}: mean")
        rs = [r for r in rows if r["label"] == label and r["rule"].startswith("hype rule")]
        axes[1, col].plot([scale * r["target"] for r in rs], [r["fixed_90"] or CAP for r in rs], "k--",
                          label="fixed N reaching the target in 90% of studies")
        axes[0, col].axhspan(93, 97, color="green", alpha=0.1)
        axes[0, col].set(title=f"{label}: coverage of stopped estimates", xlabel=f"target half-width ({unit})",
                         ylabel="coverage %", ylim=(min(85, min(100 * r["coverage"] for r in rows) - 1), 100))
        axes[1, col].set(title=f"{label}: evaluators used", xlabel=f"target half-width ({unit})", ylabel="evaluators")
        for ax in axes[:, col]:  # below the panel: inside, three rules' labels cover the curves
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--only-quest", action="store_true",
                        help="re-run only the QUEST+ rows; keep the staircase and HYPE-∞ rows of stopping.md")
    args = parser.parse_args()
    if args.only_quest and args.quick:
        parser.error("--only-quest keeps the full run's rows of stopping.md: not with --quick")
    studies = {"hype-infinity": 500 if args.quick else 4000, "hype-time": 200 if args.quick else 1500,
               QUEST: 200 if args.quick else 1500}
    sep_studies = {"hype-infinity": 100 if args.quick else 3000, "hype-time": 60 if args.quick else 1000,
                   QUEST: 60 if args.quick else 1000}
    start = time.perf_counter()
    rows, sep, kept_seconds = kept_rows(HERE / "stopping.md") if args.only_quest else ([], [], "")
    for mode in () if args.only_quest else ("hype-infinity", "hype-time"):
        rng = np.random.default_rng([args.seed, len(mode)])
        pop = sm.Population()
        x = evaluator_scores(mode, pop, studies[mode] * CAP, rng).reshape(studies[mode], CAP)
        rows += precision_rows(mode, x, truth(mode, pop))
        print(f"{mode}: precision done, {time.perf_counter() - start:.0f} s", flush=True)
        sep += separation_rows(mode, sep_studies[mode], rng)
        print(f"{mode}: separation done, {time.perf_counter() - start:.0f} s", flush=True)
    size = QUEST_POOL // 10 if args.quick else QUEST_POOL
    pools = quest_pools({"default": sm.Population(), **SEPARATION["hype-time"]},
                        {"default": size, **{m: size // 2 for m in SEPARATION["hype-time"]}}, args.seed,
                        path=Path("/tmp/stopping_quest_pool_quick.npz") if args.quick else POOL_FILE)
    rng = np.random.default_rng([args.seed, 99])
    rows += precision_rows("hype-time", resampled(pools["default"], studies[QUEST], rng),
                           float(pools["default"].mean()), label=QUEST, rules=QUEST_RULES)
    print(f"{QUEST}: precision done, {time.perf_counter() - start:.0f} s", flush=True)
    sep += separation_rows("hype-time", sep_studies[QUEST], rng, pools=pools)
    print(f"{QUEST}: separation done, {time.perf_counter() - start:.0f} s", flush=True)
    text = write(rows, sep, time.perf_counter() - start, studies, sep_studies, kept_seconds)
    print(text)
    if not args.quick:
        (HERE / "stopping.md").write_text(text + "\n")
        plot(rows, HERE / "stopping.png")


if __name__ == "__main__":
    main()
