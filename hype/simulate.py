"""Simulated observers and studies, so the statistics can be checked against a known truth.

The observer model (one evaluator):

    F(t)            = 1 - exp(-(t / scale_ms) ** slope)          Weibull in exposure time t (ms)
    p(correct | c, t) = (1 - lapse) * [guess + (accuracy_c - guess) * F(t)] + lapse * guess

where c is the class (fake / real) and accuracy_c the evaluator's accuracy on that class with unlimited
time (the model's realism, as this evaluator sees it). HYPE-infinity uses t = infinity (F = 1). A lapse
is a trial answered at random; guess = 0.5 is chance in a two-choice task.

A population of evaluators (`Population`) draws, per evaluator: class accuracies on the logit scale
(a shared ability shift and an opposite-signed criterion shift, so evaluators differ both in skill and
in their tendency to call images fake) and a 75% threshold (log-normal around the population median).
The Weibull scale is then set so that the evaluator's mean p(correct) over a half-fake / half-real
block is 75% exactly at their threshold, which is what the weighted up-down staircase tracks.

Two "true" values per population, because the estimators target different things:
- HYPE-infinity: the expected pooled error rate, E over evaluators of their expected error rate; an
  integral over the population, computed by Gauss-Hermite quadrature.
- HYPE-time: the paper's estimator averages, over evaluators, the mean of their blocks' MODAL exposure.
  Its target is therefore E over evaluators of E[block mode | evaluator], not the mean 75% threshold:
  a block's mode is a noisy, skewed, floor- and ceiling-clipped summary of a staircase that started at
  500 ms. That target has no closed form and is computed by simulating many evaluators
  (`true_time_score`). How close it comes to the population's mean 75% threshold is the estimator's
  bias, which tests/unit/test_simulate.py checks is within one step (10 ms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping, Sequence

import numpy as np

from hype import scoring
from hype.protocol import InfinitySettings, TimeSettings
from hype.scoring import InfinityCounts, TimeBlocks

__all__ = [
    "Observer",
    "Population",
    "TimeRun",
    "SimulatedStudy",
    "PlanRow",
    "infinity_plan",
    "time_plan",
    "run_infinity",
    "run_infinity_many",
    "run_time",
    "run_time_many",
    "simulate_study",
    "true_infinity_rates",
    "true_threshold",
    "true_time_score",
    "plan_ci_halfwidth",
]


def _staircase():
    """Imported late so the HYPE-infinity half of this module works without the staircase module."""
    from hype import staircase

    return staircase


# --------------------------------------------------------------------------------------------------
# Observers


@dataclass(frozen=True)
class Observer:
    """One evaluator (scalar fields) or many (array fields of equal length), one formula for both.

    `respond` is the interface a load-test client or a web-driving bot can call trial by trial.
    """

    fake_accuracy: Any = 0.8  # p(correct) on fakes with unlimited time, before lapses
    real_accuracy: Any = 0.8
    scale_ms: Any = 250.0  # Weibull scale of the time course
    slope: Any = 2.0
    lapse: Any = 0.0
    guess: Any = 0.5

    def __len__(self) -> int:
        return int(np.size(self.fake_accuracy))

    def __getitem__(self, i: Any) -> "Observer":
        return Observer(**{f.name: _pick(getattr(self, f.name), i) for f in fields(self)})

    def p_correct(self, is_fake: Any, exposure_ms: Any = None) -> Any:
        """Fields broadcast against the inputs as given: pass (N,) inputs for N observers, or expand
        with `column()` for (N, trials) inputs. exposure None / inf = no time limit."""
        is_fake = np.asarray(is_fake, dtype=bool)
        accuracy = np.where(is_fake, self.fake_accuracy, self.real_accuracy)
        if exposure_ms is None:
            f = 1.0
        else:
            t = np.asarray(exposure_ms, dtype=float)
            with np.errstate(over="ignore"):
                f = np.where(np.isinf(t), 1.0, -np.expm1(-((np.maximum(t, 0.0) / self.scale_ms) ** self.slope)))
        p = (1 - self.lapse) * (self.guess + (accuracy - self.guess) * f) + self.lapse * self.guess
        return p

    def respond(self, is_fake: bool, exposure_ms: float | None, rng: np.random.Generator) -> bool:
        """One trial: judged_fake. A correct answer names the true class, a wrong one the other."""
        correct = bool(rng.random() < float(self.p_correct(is_fake, exposure_ms)))
        return bool(is_fake) == correct

    def column(self) -> "Observer":
        """Array fields as (N, 1) columns, to broadcast against (N, trials) inputs."""
        return Observer(**{f.name: _as_column(getattr(self, f.name)) for f in fields(self)})

    def asymptote(self) -> Any:
        """Mean p(correct) over a half-fake / half-real block at unlimited time."""
        acc = (np.asarray(self.fake_accuracy) + np.asarray(self.real_accuracy)) / 2
        return (1 - self.lapse) * acc + self.lapse * self.guess

    def threshold_ms(self, target: float = 0.75) -> Any:
        """Exposure at which mean p(correct) over the two classes equals `target` (inf if never)."""
        acc = (np.asarray(self.fake_accuracy) + np.asarray(self.real_accuracy)) / 2
        span = (1 - np.asarray(self.lapse)) * (acc - self.guess)
        with np.errstate(divide="ignore", invalid="ignore"):
            need = (target - np.asarray(self.guess)) / span
            t = self.scale_ms * (-np.log1p(-need)) ** (1 / np.asarray(self.slope, dtype=float))
        return np.where((need > 0) & (need < 1), t, np.inf)


def _pick(value: Any, i: Any) -> Any:
    arr = np.asarray(value)
    return arr[i] if arr.ndim else value


def _as_column(value: Any) -> Any:
    arr = np.asarray(value, dtype=float)
    return arr[:, None] if arr.ndim == 1 else arr


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _expit(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


@dataclass(frozen=True)
class Population:
    """Evaluators of one model: the model's realism (accuracies, threshold) and how people differ."""

    fake_accuracy: float = 0.85  # median evaluator, unlimited time (1 - fakes error, before lapses)
    real_accuracy: float = 0.9
    ability_sd: float = 0.4  # between-evaluator SD of a shared logit shift (skill)
    criterion_sd: float = 0.3  # ... of an opposite-signed logit shift (tendency to say "fake")
    threshold_ms: float = 300.0  # median evaluator's 75% threshold (mean over fakes and reals)
    threshold_sd: float = 0.4  # between-evaluator SD of log threshold
    slope: float = 2.0  # Weibull slope of the time course
    lapse: float = 0.02
    guess: float = 0.5

    def __post_init__(self) -> None:
        for name in ("fake_accuracy", "real_accuracy"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1)")
        if self.ability_sd < 0 or self.criterion_sd < 0 or self.threshold_sd < 0:
            raise ValueError("spreads must be >= 0")
        if self.threshold_ms <= 0 or self.slope <= 0 or not 0 <= self.lapse < 1:
            raise ValueError("threshold_ms and slope must be > 0, lapse in [0, 1)")

    def accuracies(self, z_ability: Any, z_criterion: Any) -> tuple[Any, Any]:
        fake = _expit(_logit(self.fake_accuracy) + self.ability_sd * z_ability + self.criterion_sd * z_criterion)
        real = _expit(_logit(self.real_accuracy) + self.ability_sd * z_ability - self.criterion_sd * z_criterion)
        return fake, real

    def draw(self, n: int, rng: np.random.Generator) -> Observer:
        """n evaluators. An evaluator whose unlimited-time accuracy never reaches 75% gets the scale
        of the median threshold; their staircase simply climbs to the ceiling, as a real one would."""
        z = rng.standard_normal((3, n))
        fake, real = self.accuracies(z[0], z[1])
        t75 = self.threshold_ms * np.exp(self.threshold_sd * z[2])
        base = Observer(fake, real, np.ones(n), np.full(n, self.slope), np.full(n, self.lapse), np.full(n, self.guess))
        unit = base.threshold_ms()  # threshold at scale 1 ms
        scale = np.where(np.isfinite(unit), t75 / unit, self.threshold_ms)
        return replace(base, scale_ms=scale)


# --------------------------------------------------------------------------------------------------
# Trial plans and runs


def infinity_plan(n_fake: int, n_real: int, rng: np.random.Generator, n_evaluators: int | None = None) -> np.ndarray:
    """Shuffled is_fake flags: (n_fake + n_real,) or (n_evaluators, n_fake + n_real)."""
    base = np.r_[np.ones(n_fake, bool), np.zeros(n_real, bool)]
    if n_evaluators is None:
        return rng.permutation(base)
    return rng.permuted(np.broadcast_to(base, (n_evaluators, base.size)), axis=-1)


def time_plan(n_blocks: int, trials_per_block: int, rng: np.random.Generator,
              n_evaluators: int | None = None) -> np.ndarray:
    """Shuffled is_fake flags per block, half fake: (n_blocks, T) or (n_evaluators, n_blocks, T)."""
    half = trials_per_block // 2
    base = np.r_[np.ones(half, bool), np.zeros(trials_per_block - half, bool)]
    shape = (n_blocks, trials_per_block) if n_evaluators is None else (n_evaluators, n_blocks, trials_per_block)
    return rng.permuted(np.broadcast_to(base, shape), axis=-1)


def run_infinity(observer: Observer, is_fake: Sequence[bool], rng: np.random.Generator) -> np.ndarray:
    """One evaluator through a HYPE-infinity task: judged_fake per trial."""
    plan = np.asarray(is_fake, dtype=bool)
    correct = rng.random(plan.shape) < observer.p_correct(plan, None)
    return plan == correct


def run_infinity_many(observers: Observer, is_fake: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N evaluators at once; is_fake (N, T) -> judged_fake (N, T)."""
    plan = np.asarray(is_fake, dtype=bool)
    correct = rng.random(plan.shape) < observers.column().p_correct(plan, None)
    return plan == correct


@dataclass(frozen=True, eq=False)
class TimeRun:
    """HYPE-time trials of one or more evaluators; arrays (blocks, T) or (N, blocks, T)."""

    is_fake: np.ndarray
    exposure_ms: np.ndarray  # the exposure presented (the staircase's requested value)
    judged_fake: np.ndarray
    levels: np.ndarray | None = None  # every exposure the staircases could present, when known

    @property
    def correct(self) -> np.ndarray:
        return self.is_fake == self.judged_fake


def run_time(observer: Observer, blocks: np.ndarray | Sequence[Sequence[bool]], cfg: Any,
             rng: np.random.Generator) -> TimeRun:
    """One evaluator through HYPE-time, trial by trial through hype.staircase: each block is a fresh
    staircase. The reference implementation that `run_time_many` is tested against."""
    st = _staircase()
    plan = np.asarray(blocks, dtype=bool)
    u = rng.random(plan.shape)
    exposure = np.empty(plan.shape)
    judged = np.empty(plan.shape, dtype=bool)
    for b in range(plan.shape[0]):
        state = st.start(cfg)
        for t in range(plan.shape[1]):
            exposure[b, t] = state.intensity
            correct = bool(u[b, t] < float(observer.p_correct(plan[b, t], state.intensity)))
            judged[b, t] = plan[b, t] == correct
            state = st.update(cfg, state, correct)
    return TimeRun(plan, exposure, judged)


class _StaircaseGraph:
    """hype.staircase's transitions, tabulated on the fly so thousands of staircases can advance in
    lockstep with numpy instead of one Python call per trial.

    A node is a staircase state reduced to what decides its future moves (intensity, direction, run
    length, reversal count); its representative is a real state, and each transition is computed by
    calling hype.staircase.update on it once. Lockstep matters: all staircases are at the same trial,
    so a node is first met (and expanded) no later than any staircase that uses it, and the trial-count
    stop rule cannot bite early.
    """

    def __init__(self, cfg: Any) -> None:
        self.st = _staircase()
        self.cfg = cfg
        first = self.st.start(cfg)
        self.reps = [first]
        self.index = {self._key(first): 0}
        self.intensity = np.array([first.intensity])
        self.next = np.full((1, 2), -1, dtype=np.int64)

    @staticmethod
    def _key(state: Any) -> tuple:
        return (state.intensity, state.direction, state.run, state.n_reversals)

    def _node(self, state: Any) -> int:
        key = self._key(state)
        node = self.index.get(key)
        if node is None:
            node = len(self.reps)
            self.index[key] = node
            self.reps.append(state)
            if node >= self.next.shape[0]:  # grow by doubling: nodes arrive one at a time
                self.next = np.vstack([self.next, np.full_like(self.next, -1)])
                self.intensity = np.concatenate([self.intensity, np.zeros_like(self.intensity)])
            self.intensity[node] = state.intensity
        return node

    def step(self, nodes: np.ndarray, correct: np.ndarray) -> np.ndarray:
        col = correct.astype(np.int64)
        nxt = self.next[nodes, col]
        missing = nxt < 0
        if missing.any():
            for code in np.unique(nodes[missing] * 2 + col[missing]):
                node, c = divmod(int(code), 2)
                state = self.st.update(self.cfg, self.reps[node], bool(c))
                self.next[node, c] = self._node(state)
            nxt = self.next[nodes, col]
        return nxt


def run_time_many(observers: Observer, plans: np.ndarray, cfg: Any, rng: np.random.Generator,
                  chunk_evaluators: int = 8192) -> TimeRun:
    """N evaluators through HYPE-time at once; plans (N, blocks, T). Same draws, in the same order,
    as calling `run_time` for each evaluator in turn with one generator, hence the same results."""
    plan = np.asarray(plans, dtype=bool)
    n, n_blocks, n_trials = plan.shape
    if cfg.n_reversals == 0 and n_trials > cfg.n_trials:
        raise ValueError(f"blocks of {n_trials} trials outrun a staircase that stops after {cfg.n_trials}")
    exposure = np.empty(plan.shape)
    judged = np.empty(plan.shape, dtype=bool)
    levels: list[np.ndarray] = []
    for a in range(0, n, chunk_evaluators):
        b = min(n, a + chunk_evaluators)
        graph = _StaircaseGraph(cfg)  # per chunk: the lockstep argument holds within one chunk only
        obs = observers[a:b].column()
        u = rng.random((b - a, n_blocks, n_trials))
        nodes = np.zeros((b - a, n_blocks), dtype=np.int64)
        for t in range(n_trials):
            x = graph.intensity[nodes]
            exposure[a:b, :, t] = x
            correct = u[:, :, t] < obs.p_correct(plan[a:b, :, t], x)
            judged[a:b, :, t] = plan[a:b, :, t] == correct
            nodes = graph.step(nodes.ravel(), correct.ravel()).reshape(nodes.shape)
        levels.append(graph.intensity[: len(graph.reps)])
    return TimeRun(plan, exposure, judged, np.unique(np.concatenate(levels)) if levels else None)


# --------------------------------------------------------------------------------------------------
# Truth


def _gauss_hermite_2d(n: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes and weights for E[f(Z1, Z2)], Z standard normal, independent."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    z1, z2 = np.meshgrid(x, x, indexing="ij")
    return z1.ravel(), z2.ravel(), np.outer(w, w).ravel()


def true_infinity_rates(population: Population, n_fake: int = 50, n_real: int = 50) -> scoring.ErrorRates:
    """What the pooled HYPE-infinity rates estimate: the population's expected error rates, with the
    per-class weights of the task (n_fake, n_real), integrated over evaluators by quadrature."""
    z1, z2, w = _gauss_hermite_2d()
    fake, real = population.accuracies(z1, z2)
    obs = Observer(fake, real, 1.0, 1.0, population.lapse, population.guess)
    fake_err = float(np.sum(w * (1 - obs.p_correct(True, None))))
    real_err = float(np.sum(w * (1 - obs.p_correct(False, None))))
    overall = (n_fake * fake_err + n_real * real_err) / (n_fake + n_real)
    return scoring.ErrorRates(overall=overall, fakes=fake_err, reals=real_err)


def true_threshold(population: Population) -> float:
    """The population's mean 75% threshold: the mean of a log-normal (median * exp(sd^2 / 2)).
    Exact only when every evaluator can reach 75% correct at all (see `Population.draw`)."""
    return population.threshold_ms * math.exp(population.threshold_sd**2 / 2)


def true_time_score(population: Population, time_settings: TimeSettings | None = None, *,
                    n_evaluators: int = 20_000, seed: int = 12345) -> float:
    """The HYPE-time estimator's target, E over evaluators of E[mean block mode], by simulation.
    Monte-Carlo SE is about (evaluator SD) / sqrt(n_evaluators): ~0.5 ms for the defaults."""
    ts = time_settings or TimeSettings()
    rng = np.random.default_rng(seed)
    blocks = _simulate_time_model("truth", population, n_evaluators, ts, rng, "e")[0]
    return scoring.time_score(blocks)


# --------------------------------------------------------------------------------------------------
# Studies


@dataclass(frozen=True, eq=False)
class SimulatedStudy:
    mode: str
    data: InfinityCounts | TimeBlocks  # what scoring takes
    true_scores: dict[str, float]  # the estimator's target per model (see the module docstring)
    true_thresholds: dict[str, float] = field(default_factory=dict)  # HYPE-time: mean 75% threshold
    true_rates: dict[str, scoring.ErrorRates] = field(default_factory=dict)  # HYPE-infinity
    observers: dict[str, Observer] = field(default_factory=dict, repr=False)


def _ids(model: str, n: int, prefix: str) -> np.ndarray:
    return np.array([f"{model}/{prefix}{i:05d}" for i in range(n)])


def _simulate_infinity_model(model: str, population: Population, n: int, settings: InfinitySettings,
                             rng: np.random.Generator, prefix: str) -> tuple[InfinityCounts, Observer]:
    observers = population.draw(n, rng)
    plan = infinity_plan(settings.n_fake, settings.n_real, rng, n_evaluators=n)
    judged = run_infinity_many(observers, plan, rng)
    counts = InfinityCounts.from_counts(
        _ids(model, n, prefix), model,
        fake_errors=(plan & ~judged).sum(axis=1), n_fake=settings.n_fake,
        real_errors=(~plan & judged).sum(axis=1), n_real=settings.n_real,
    )
    return counts, observers


def _blocks_from_exposures(model: str, evaluators: np.ndarray, exposure: np.ndarray,
                           levels: np.ndarray | None = None) -> TimeBlocks:
    """(N, blocks, T) requested exposures -> TimeBlocks, without a long-format detour (much faster than
    TimeBlocks.from_trials for simulated studies with millions of trials; same result). `levels`, when
    given, must contain every exposure value; it saves sorting millions of trials."""
    n, n_blocks, n_trials = exposure.shape
    x = np.round(exposure, 6)
    if levels is None:
        levels, level_idx = np.unique(x, return_inverse=True)
    else:
        levels = np.unique(np.round(levels, 6))
        level_idx = np.searchsorted(levels, x)
        if np.any(levels[np.minimum(level_idx, levels.size - 1)] != x):
            raise ValueError("levels do not cover every exposure")
    levels, level_idx = _used_levels(levels, level_idx.ravel())
    k = levels.shape[0]
    flat_block = np.repeat(np.arange(n * n_blocks), n_trials)
    hist = np.bincount(flat_block * k + level_idx, minlength=n * n_blocks * k).reshape(n * n_blocks, k)
    return TimeBlocks(
        evaluator=evaluators,
        model=np.full(n, model),
        n_trials=np.full(n, n_blocks * n_trials, dtype=np.int64),
        excluded_trials=np.zeros(n, np.int64),
        evaluator_excluded=np.zeros(n, bool),
        block_evaluator=np.repeat(np.arange(n), n_blocks),
        block_score=scoring.modes_from_counts(hist, levels),
        block_counts=hist.astype(np.int32),
        levels=levels,
    )


def _used_levels(levels: np.ndarray, level_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop levels no trial used, so histograms stay as narrow as the data."""
    used = np.bincount(level_idx, minlength=levels.size) > 0
    if used.all():
        return levels, level_idx
    remap = np.cumsum(used) - 1
    return levels[used], remap[level_idx]


def _simulate_time_model(model: str, population: Population, n: int, settings: TimeSettings,
                         rng: np.random.Generator, prefix: str) -> tuple[TimeBlocks, Observer, TimeRun]:
    cfg = _staircase().StaircaseConfig.from_time_settings(settings)
    observers = population.draw(n, rng)
    plan = time_plan(settings.n_blocks, settings.trials_per_block, rng, n_evaluators=n)
    run = run_time_many(observers, plan, cfg, rng)
    return _blocks_from_exposures(model, _ids(model, n, prefix), run.exposure_ms, run.levels), observers, run


def quest_scores(population: Population, n: int, settings: TimeSettings, rng: np.random.Generator) -> np.ndarray:
    """Adaptive HYPE-time (`time.adaptive`): n evaluators each run the study's blocks with QUEST+
    choosing every exposure (hype.adaptive, as the server does), and each is scored by the posterior 75%
    threshold from all their trials (the study's score), so a plan for a QUEST+ study forecasts QUEST+."""
    from hype import adaptive

    cfg = adaptive.QuestConfig.from_time_settings(settings)
    observers = population.draw(n, rng)
    n_blocks, n_trials = settings.n_blocks, settings.trials_per_block
    plan = time_plan(n_blocks, n_trials, rng, n_evaluators=n).reshape(n * n_blocks, n_trials)
    per_block = observers[np.repeat(np.arange(n), n_blocks)].column()

    def respond(t: int, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return u < per_block.p_correct(plan[:, t][:, None], x[:, None])[:, 0]

    _, _, snaps = adaptive.run_many(cfg, respond, n * n_blocks, n_trials, rng, record_at=(n_trials,))
    # one observer, one prior: an evaluator's posterior is the sum of their blocks' log likelihoods
    return adaptive.posterior_threshold(cfg, snaps[n_trials].reshape(n, n_blocks, -1).sum(axis=1))


def simulate_study(
    populations: Mapping[str, Population],
    n_evaluators: int = 30,
    mode: str = "hype-infinity",
    *,
    infinity: InfinitySettings | None = None,
    time: TimeSettings | None = None,
    seed: int | np.random.Generator | None = 0,
    truth: bool = True,
    truth_evaluators: int = 20_000,
) -> SimulatedStudy:
    """N evaluators per model, each its own draw from that model's population (between-subjects),
    returned as scoring's inputs plus the true values the estimators target. `truth=False` skips the
    HYPE-time truth simulation (the expensive part) when only the data are needed."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    parts, true_scores, thresholds, rates, observers = [], {}, {}, {}, {}
    for model in sorted(populations):
        pop = populations[model]
        if mode == "hype-infinity":
            inf = infinity or InfinitySettings()
            counts, obs = _simulate_infinity_model(model, pop, n_evaluators, inf, rng, "e")
            parts.append(counts)
            rates[model] = true_infinity_rates(pop, inf.n_fake, inf.n_real)
            true_scores[model] = rates[model].overall
        elif mode == "hype-time":
            ts = time or TimeSettings()
            blocks, obs, _ = _simulate_time_model(model, pop, n_evaluators, ts, rng, "e")
            parts.append(blocks)
            thresholds[model] = true_threshold(pop)
            if truth:
                true_scores[model] = true_time_score(pop, ts, n_evaluators=truth_evaluators)
        else:
            raise ValueError(f"mode must be hype-infinity or hype-time, not {mode!r}")
        observers[model] = obs
    data = InfinityCounts.concat(parts) if mode == "hype-infinity" else TimeBlocks.concat(parts)
    return SimulatedStudy(mode, data, true_scores, thresholds, rates, observers)


# --------------------------------------------------------------------------------------------------
# Planning


# Simulated QUEST+ evaluators an adaptive HYPE-time plan draws its studies from (see plan_ci_halfwidth).
QUEST_PLAN_POOL = 600


@dataclass(frozen=True)
class PlanRow:
    n_evaluators: int
    mean_halfwidth: float  # expected 95% CI half-width (units of the score: error rate or ms)
    sd_halfwidth: float
    q10_halfwidth: float
    q90_halfwidth: float
    n_sim: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def plan_ci_halfwidth(
    mode: str,
    n_evaluators_list: Sequence[int],
    n_trials: int | None = None,
    population: Population | None = None,
    n_sim: int = 200,
    *,
    n_blocks: int | None = None,
    n_resamples: int = 2_000,
    confidence_level: float = 0.95,
    seed: int = 0,
    adaptive: bool = False,
    quest_pool: int = QUEST_PLAN_POOL,
) -> list[PlanRow]:
    """Expected CI half-width per number of evaluators, by simulating `n_sim` studies per size and
    bootstrapping each. n_trials: HYPE-infinity trials per evaluator (half fake; default 100),
    HYPE-time trials per block (default 150, with n_blocks default 3). Studies of different sizes are
    nested draws from the same simulated evaluators (first k of each study), so the curve is smooth.
    2,000 resamples suffice here: the half-width, not a tail quantile to report, is being estimated.

    `adaptive` (HYPE-time): the study's procedure is QUEST+ with the posterior-threshold score, not the
    paper's staircase and block mode. QUEST+ costs about a thousand times more per simulated trial, so
    its studies are drawn without replacement from a pool of `quest_pool` simulated evaluators (at least
    the largest size) rather than each from fresh ones."""
    sizes = sorted(set(int(n) for n in n_evaluators_list))
    if not sizes or sizes[0] < 2:
        raise ValueError("n_evaluators_list needs sizes >= 2")
    pop = population or Population()
    rng = np.random.default_rng(seed)
    biggest = sizes[-1]
    if mode == "hype-infinity":
        total = n_trials or 100
        settings = InfinitySettings(n_fake=total // 2, n_real=total - total // 2)
        data, _ = _simulate_infinity_model("plan", pop, n_sim * biggest, settings, rng, "e")
    elif mode == "hype-time":
        defaults = TimeSettings()
        settings = replace(defaults, trials_per_block=n_trials or defaults.trials_per_block,
                           n_blocks=n_blocks or defaults.n_blocks, adaptive=adaptive)
        if adaptive:
            pool = max(quest_pool, biggest)
            scores = quest_scores(pop, pool, settings, rng)
            data = TimeBlocks.from_block_scores(_ids("plan", pool, "e"), "plan", scores)
            studies = [rng.permutation(pool)[:biggest] for _ in range(n_sim)]  # nested: first k of each
        else:
            data, _, _ = _simulate_time_model("plan", pop, n_sim * biggest, settings, rng, "e")
    else:
        raise ValueError(f"mode must be hype-infinity or hype-time, not {mode!r}")
    rows = []
    for n in sizes:
        widths = np.empty(n_sim)
        for s in range(n_sim):
            mask = np.zeros(data.n_evaluators, bool)
            if mode == "hype-time" and adaptive:
                mask[studies[s][:n]] = True
            else:
                mask[s * biggest: s * biggest + n] = True
            res = scoring.bootstrap_score(data.subset(mask), n_resamples=n_resamples,
                                          confidence_level=confidence_level, rng=rng)
            widths[s] = res.halfwidth
        rows.append(PlanRow(n, float(widths.mean()), float(widths.std(ddof=1)) if n_sim > 1 else 0.0,
                            float(np.quantile(widths, 0.1)), float(np.quantile(widths, 0.9)), n_sim))
    return rows


def counting_guess(block_size: int, fakes_seen: int, reals_seen: int, coin: bool) -> bool:
    """A cheating observer that never looks at the image: feedback after every answer tells it each
    past label, so it guesses the kind with more left in a block it believes is exactly half fake
    (``coin`` breaks ties). True = fake. Under coin-flip labels (hype.design) it is right half the
    time whatever it has counted; under exactly 50/50 blocks it was not."""
    fakes_left = block_size // 2 - fakes_seen
    reals_left = block_size // 2 - reals_seen
    if fakes_left == reals_left:
        return coin
    return fakes_left > reals_left
