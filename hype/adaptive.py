"""QUEST+ for HYPE-time: a Bayesian adaptive choice of each exposure, beside the paper's staircase.

Why: the weighted staircase spends its first dozens of trials walking from 500 ms towards the
threshold, and the block mode it is scored by leans towards the start when the psychometric function
is shallow. QUEST+ (Watson 2017, J. Vision 17(3):10) keeps a posterior over the evaluator's
psychometric function and shows, at every trial, the exposure whose answer is expected to shrink
that posterior most (minimum expected entropy). The score is then the posterior's threshold.

Which entropy (`QuestConfig.target`): by default that of the threshold's marginal posterior, slope
and lapse summed out (the psi-marginal method, Prins 2013, J. Vision 13(7):3), not of the joint
posterior over all three (QUEST+ as Watson wrote it). The score is the threshold; spending trials to
learn the slope and the lapse for their own sake cost precision where it counts: on the simulated
populations of experiments/adaptive_time.py the joint rule's per-evaluator error against each
evaluator's own 75% threshold (RMSE, 3 x 150 trials) was 19.2 ms (steep functions), 26.4 (shallow)
and 37.1 (10% lapses), the marginal rule's 12.6, 20.9 and 29.0 (the paper's staircase, its trials
scored by the posterior: 14.0, 21.9, 30.2). Blocks stored before this choice existed replay with the
joint rule they were run with.

Model of one evaluator (the same family as hype.simulate's observers):

    p(correct | t) = 1/2 + (1/2 - lapse) * (1 - exp(-(t / s) ** slope))

with s set so that p(correct | threshold) = 75%, the level the paper's staircase tracks. The
parameter grid is threshold (geometric, from the shortest to the longest exposure) x slope x
lapse; "lapse" here is everything that keeps an evaluator below 100% at unlimited time (real lapses
and fakes they never spot). Prior: uniform over the grid (log-uniform in threshold).

Speed: the joint rule's expected entropy of every candidate exposure is two matrix products with
tables built once per configuration (the expected posterior entropy for exposure k is
H(post) - post . sum_r L_kr log L_kr + sum_r p_kr log p_kr, with p_kr = post . L_kr); the threshold
rule's needs the joint probability of each answer and threshold (a small matrix product per threshold)
and its entropy. Either costs well under a millisecond per answer on the server (experiments/adaptive_time.py
measures it) and thousands of simulated evaluators can run in lockstep; in lockstep the threshold rule
costs 2-4x the joint rule per simulated trial (the forecast's cost, hype.stopping_state). The
`questplus` package implements QUEST+ on xarray; far slower per answer than the answer path's 2 ms
budget allows (experiments/adaptive_time.md measures it beside hype's).

State is the answer history of a block (exposure index, correct), so a stored block can be replayed
exactly and an answer recorded twice cannot move it twice. Pure: numpy only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence, Union

import numpy as np

from hype import staircase
from hype.protocol import ADAPTIVE_RULES, TimeSettings

__all__ = [
    "PROCEDURES",
    "QuestConfig",
    "QuestTables",
    "tables",
    "log_posterior",
    "choose",
    "next_exposure",
    "posterior_threshold",
    "threshold_from_trials",
    "run_many",
    "block_config",
    "BlockConfig",
    "block_config_from_text",
    "block_start",
    "block_exposure",
    "block_advance",
]

PROCEDURES: tuple[str, ...] = ("staircase", "quest+")
TARGET = 0.75
DEFAULT_SLOPES: tuple[float, ...] = (1.0, 1.5, 2.5, 4.0)
DEFAULT_LAPSES: tuple[float, ...] = (0.02, 0.08, 0.16)
DEFAULT_N_THRESHOLDS = 60
# 60 exposures over 100-1000 ms are 15 ms apart: finer than a 60 Hz display (16.7 ms) can show anyway.
DEFAULT_N_LEVELS = 60
# What each exposure is chosen to learn about (see the module docstring): "threshold" (psi-marginal,
# the default) or "parameters" (Watson's QUEST+, the joint posterior; also what a stored block without
# the key was run with). A study setting (`time.adaptive_rule`), so the names and the default live there.
TARGETS: tuple[str, ...] = ADAPTIVE_RULES
DEFAULT_TARGET: str = TimeSettings().adaptive_rule


@dataclass(frozen=True)
class QuestConfig:
    """Everything a QUEST+ block needs; stored with each block so a run can be replayed."""

    levels_ms: tuple[float, ...]  # exposures the server may show
    thresholds_ms: tuple[float, ...]
    slopes: tuple[float, ...] = DEFAULT_SLOPES
    lapses: tuple[float, ...] = DEFAULT_LAPSES
    n_trials: int = 150
    target: str = DEFAULT_TARGET
    procedure: str = field(default="quest+", init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("levels_ms", "thresholds_ms", "slopes", "lapses"):
            value = tuple(float(v) for v in getattr(self, name))
            if not value or not all(math.isfinite(v) and v > 0 for v in value):
                raise ValueError(f"{name} must be positive numbers")
            set_(self, name, value)
        if any(lapse >= 0.25 for lapse in self.lapses):
            raise ValueError("a lapse of 25% or more never reaches 75% correct")
        if self.n_trials < 1:
            raise ValueError("n_trials must be >= 1")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {self.target!r}")

    @classmethod
    def from_time_settings(cls, t: Any, *, n_levels: int = DEFAULT_N_LEVELS,
                           n_thresholds: int = DEFAULT_N_THRESHOLDS) -> "QuestConfig":
        """`n_levels` exposures evenly spaced over min_ms..max_ms."""
        levels = np.round(np.linspace(t.min_ms, t.max_ms, max(n_levels, 2)), 6)
        thresholds = np.geomspace(t.min_ms, t.max_ms, n_thresholds)
        return cls(tuple(levels), tuple(np.round(thresholds, 6)), n_trials=t.trials_per_block,
                   target=t.adaptive_rule)

    def to_dict(self) -> dict[str, Any]:
        return {"procedure": self.procedure, "levels_ms": list(self.levels_ms),
                "thresholds_ms": list(self.thresholds_ms), "slopes": list(self.slopes),
                "lapses": list(self.lapses), "n_trials": self.n_trials, "target": self.target}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QuestConfig":
        data = dict(data)
        if data.pop("procedure", "quest+") != "quest+":
            raise ValueError("not a QUEST+ configuration")
        data.setdefault("target", "parameters")  # stored before the choice existed: replay as it ran
        return cls(**data)


@dataclass(frozen=True, eq=False)
class QuestTables:
    """Per configuration: p(correct) for every (exposure, parameter) and the entropy terms."""

    levels: np.ndarray  # (K,)
    threshold_of: np.ndarray  # (P,) threshold of each parameter point
    log_like: np.ndarray  # (2, K, P): [wrong, correct]
    like: np.ndarray  # (2, K, P)
    neg_h: np.ndarray  # (P, K): sum_r L log L, for the expected-entropy product
    like_by_threshold: np.ndarray  # (2, K, thresholds, slopes x lapses): `like`, threshold first
    # (thresholds, K, slopes x lapses): p(correct), threshold outermost, so the threshold rule's joint
    # probabilities are one small matrix product per threshold (_choose_for_threshold)
    correct_by_threshold: np.ndarray


def p_correct(t_ms: Any, threshold: Any, slope: Any, lapse: Any) -> np.ndarray:
    """The model above, broadcasting over its arguments."""
    span = 0.5 - np.asarray(lapse, dtype=float)
    need = (TARGET - 0.5) / span  # share of the rise reached at threshold
    scale = np.asarray(threshold, dtype=float) / (-np.log1p(-need)) ** (1 / np.asarray(slope, dtype=float))
    rise = -np.expm1(-(np.asarray(t_ms, dtype=float) / scale) ** slope)
    return 0.5 + span * rise


@lru_cache(maxsize=32)
def _tables_cached(levels: tuple, thresholds: tuple, slopes: tuple, lapses: tuple) -> QuestTables:
    th, sl, la = np.meshgrid(np.array(thresholds), np.array(slopes), np.array(lapses), indexing="ij")
    th, sl, la = th.ravel(), sl.ravel(), la.ravel()
    x = np.array(levels)[:, None]
    pc = np.clip(p_correct(x, th[None, :], sl[None, :], la[None, :]), 1e-12, 1 - 1e-12)
    like = np.stack([1 - pc, pc])
    log_like = np.log(like)
    neg_h = (like * log_like).sum(axis=0).T.copy()
    for arr in (like, log_like, neg_h):
        arr.setflags(write=False)
    by_threshold = like.reshape(2, len(levels), len(thresholds), -1)
    correct_by_threshold = np.ascontiguousarray(by_threshold[1].transpose(1, 0, 2))
    correct_by_threshold.setflags(write=False)
    return QuestTables(np.array(levels), th, log_like, like, neg_h, by_threshold, correct_by_threshold)


def tables(cfg: QuestConfig) -> QuestTables:
    return _tables_cached(cfg.levels_ms, cfg.thresholds_ms, cfg.slopes, cfg.lapses)


def log_posterior(cfg: QuestConfig, history: Sequence[Sequence[int]]) -> np.ndarray:
    """Unnormalised log posterior over the grid after `history` [(exposure index, correct 0/1), ...]."""
    tab = tables(cfg)
    if len(history) == 0:
        return np.zeros(tab.threshold_of.shape[0])
    h = np.asarray(history, dtype=np.int64).reshape(-1, 2)
    return tab.log_like[h[:, 1], h[:, 0]].sum(axis=0)


def _normalise(log_post: np.ndarray) -> np.ndarray:
    w = np.exp(log_post - log_post.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


def choose(tab: QuestTables, post: np.ndarray, target: str = "parameters") -> np.ndarray:
    """Index of the exposure with the least expected posterior entropy, for one posterior (P,) or a
    stack (N, P): of the joint posterior ("parameters") or of the threshold's marginal ("threshold").
    Ties go to the shortest exposure (argmin's first)."""
    if target == "threshold":
        return _choose_for_threshold(tab, post)
    p_kr = np.stack([post @ tab.like[0].T, post @ tab.like[1].T])  # (2, [N,] K)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p_kr > 0, p_kr * np.log(p_kr), 0.0).sum(axis=0)
    expected_h = -(post @ tab.neg_h) + plogp  # H(post) left out: the same for every exposure
    return _first_least(expected_h)


def _choose_for_threshold(tab: QuestTables, post: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Expected entropy of the threshold's marginal posterior after each exposure: with m_krj the joint
    probability of answer r and threshold j (slope and lapse summed out), sum_r [-sum_j m log m + p_r log p_r]
    where p_r = sum_j m_krj. For a correct answer m is one (K x slopes*lapses) @ (slopes*lapses) product
    per threshold j; a wrong one's is the threshold's marginal less that. The server runs this on every
    QUEST+ answer, where the table it reads is mostly out of cache: this form reads a sixth of the
    einsum's over both answers and took 180 us an answer instead of 240 cold (100 warm: 55), with the
    same choices on 3,200 simulated posteriors (tests/unit/test_adaptive.py compares it with the
    einsum on 1,280 and on sparse ones). Stacks go in chunks, so the (N, thresholds, K) arrays stay small."""
    n_th, n_k, n_q = tab.correct_by_threshold.shape
    single = post.ndim == 1
    stack = post.reshape(-1, n_th, n_q, 1)
    out = np.empty(stack.shape[0], dtype=np.int64)
    for a in range(0, stack.shape[0], chunk):
        part = stack[a:a + chunk]
        right = np.matmul(tab.correct_by_threshold, part)[..., 0]  # (n, thresholds, K)
        wrong = part.sum(axis=2) - right  # the threshold's marginal (n, thresholds, 1), less the correct part
        h = (_x_log_x(right.sum(axis=1)) + _x_log_x(wrong.sum(axis=1))
             - _x_log_x(right).sum(axis=1) - _x_log_x(wrong).sum(axis=1))
        out[a:a + chunk] = _first_least(h)
    return out[0] if single else out


# Expected entropies this close count as a tie. A threshold known exactly (a point mass) leaves every
# exposure at an expected entropy of 0, which the arithmetic returns as +-1e-17 of rounding; a tie
# within it must still go to the shortest exposure, as choose() promises.
_TIE = 1e-12


def _first_least(h: np.ndarray) -> np.ndarray:
    """Along the last axis, the first index within _TIE of the least value."""
    return np.argmax(h <= h.min(axis=-1, keepdims=True) + _TIE, axis=-1)


_TINY = np.finfo(float).tiny


def _x_log_x(x: np.ndarray) -> np.ndarray:
    """x log x, 0 at x = 0 (a posterior that underflowed): log is taken at max(x, tiny), so 0 gives
    0 * log(tiny) = 0 without the masks and warnings of a where()."""
    return x * np.log(np.maximum(x, _TINY))


def next_exposure(cfg: QuestConfig, history: Sequence[Sequence[int]]) -> tuple[int, float]:
    """(index, ms) of the exposure QUEST+ shows after `history`."""
    tab = tables(cfg)
    k = int(choose(tab, _normalise(log_posterior(cfg, history)), cfg.target))
    return k, float(tab.levels[k])


def posterior_threshold(cfg: QuestConfig, log_post: np.ndarray) -> np.ndarray:
    """Posterior mean of the 75% threshold (ms), for one log posterior or a stack."""
    return _normalise(log_post) @ tables(cfg).threshold_of


def threshold_from_trials(cfg: QuestConfig, exposure_ms: Sequence[float], correct: Sequence[bool]) -> float:
    """An evaluator's posterior threshold from all their task trials (every block: one observer), the
    adaptive HYPE-time score. Exact at any exposure, so it also scores a staircase's trials."""
    x = np.asarray(exposure_ms, dtype=float)
    if x.size == 0:
        return math.nan
    tab = tables(cfg)
    th, sl, la = np.meshgrid(np.array(cfg.thresholds_ms), np.array(cfg.slopes), np.array(cfg.lapses), indexing="ij")
    pc = np.clip(p_correct(x[:, None], th.ravel()[None, :], sl.ravel()[None, :], la.ravel()[None, :]), 1e-12, 1 - 1e-12)
    c = np.asarray(correct, dtype=bool)[:, None]
    log_post = np.where(c, np.log(pc), np.log1p(-pc)).sum(axis=0)
    return float(_normalise(log_post) @ tab.threshold_of)


def run_many(cfg: QuestConfig, respond: Any, n: int, n_trials: int, rng: np.random.Generator,
             record_at: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """n independent QUEST+ blocks in lockstep. `respond(k, levels_ms, u)` -> correct (bool array (n,))
    given the trial number, the exposures chosen and uniform draws u. Returns exposures (n, T),
    correct (n, T) and, for each t in `record_at`, the log posterior after t trials (n, P)."""
    tab = tables(cfg)
    log_post = np.zeros((n, tab.threshold_of.shape[0]))
    exposure = np.empty((n, n_trials))
    correct = np.empty((n, n_trials), dtype=bool)
    snapshots: dict[int, np.ndarray] = {}
    for t in range(n_trials):
        if t in record_at:
            snapshots[t] = log_post.copy()
        k = choose(tab, _normalise(log_post), cfg.target)
        x = tab.levels[k]
        c = respond(t, x, rng.random(n))
        exposure[:, t], correct[:, t] = x, c
        log_post += tab.log_like[c.astype(np.int64), k]
    if n_trials in record_at:
        snapshots[n_trials] = log_post.copy()
    return exposure, correct, snapshots


# --------------------------------------------------------------------------------------------------
# One block's exposure procedure, as the server stores it (config + state JSON per block). The classic
# staircase goes through hype.staircase untouched, so its PsychoPy replay is what it was.


def block_config(time_settings: Any) -> dict[str, Any]:
    """The stored config of one HYPE-time block: QUEST+ when the study is adaptive, else the staircase's."""
    if getattr(time_settings, "adaptive", False):
        return QuestConfig.from_time_settings(time_settings).to_dict()
    return staircase.StaircaseConfig.from_time_settings(time_settings).to_dict()


# A block's procedure and its settings, parsed and checked.
BlockConfig = Union[QuestConfig, staircase.StaircaseConfig]


def is_quest(config: dict[str, Any] | BlockConfig) -> bool:
    if isinstance(config, dict):
        return config.get("procedure") == "quest+"
    return isinstance(config, QuestConfig)


def _parsed(config: dict[str, Any] | BlockConfig) -> BlockConfig:
    if isinstance(config, (QuestConfig, staircase.StaircaseConfig)):
        return config
    return QuestConfig.from_dict(config) if is_quest(config) else staircase.StaircaseConfig.from_dict(config)


@lru_cache(maxsize=256)
def block_config_from_text(text: str) -> BlockConfig:
    """A block's stored config (its JSON text), parsed and checked once per process. Every block of a
    study stores the same text, and checking QUEST+'s 120 grid values cost 17 us an answer; the text is
    the key, so a config changed by anyone is a new key and a parse can never be stale."""
    return _parsed(json.loads(text))


def block_start(config: dict[str, Any] | BlockConfig) -> dict[str, Any]:
    cfg = _parsed(config)
    if isinstance(cfg, QuestConfig):
        k, ms = next_exposure(cfg, [])
        return {"history": [], "index": k, "intensity": ms}
    return staircase.start(cfg).to_dict()


def block_exposure(config: dict[str, Any] | BlockConfig, state: dict[str, Any]) -> float:
    """The exposure the block shows next (ms)."""
    if is_quest(config):
        return float(state["intensity"])
    return float(staircase.StaircaseState.from_dict(state).intensity)


# The log posterior after each block's latest answer, per process, with the history it sums: the next
# answer adds one row of log likelihoods instead of summing the whole history again. An entry is used
# only when its history equals the block's stored one, so it can never be stale (another process, a
# retried answer, a block replayed from scratch simply miss and recompute). It is found by the tables,
# the history's length and its last steps (cheap to build, unlike a key of the whole history: 100
# tuples cost 30 us an answer); two blocks that share those take turns missing. The previous entry is
# dropped as the next is made, so a block in progress holds one. An entry keeps a copy of the history's
# list, whose steps it shares with the states (a state is replaced, never edited in place; the server's
# come fresh from JSON): 2,048 entries of 720 floats and up to 150 steps are 12 MB + 28 MB at most.
_posteriors: dict[tuple[Any, ...], tuple[list[Any], np.ndarray]] = {}
_POSTERIORS_KEPT = 2048
_KEY_STEPS = 6


def _posterior_key(tab: QuestTables, history: list[Any]) -> tuple[Any, ...]:
    return (tab, len(history), *(tuple(h) for h in history[-_KEY_STEPS:]))


def block_advance(config: dict[str, Any] | BlockConfig, state: dict[str, Any], correct: bool) -> dict[str, Any]:
    """The state after one answer at the current exposure. QUEST+'s posterior is the stored history's
    (plus this answer), so the state is the history and nothing else can drift; the posterior kept from
    the block's previous answer (_posteriors) only spares summing the history again, bit for bit the same."""
    cfg = _parsed(config)
    if isinstance(cfg, QuestConfig):
        before = state["history"]
        if len(before) >= cfg.n_trials:
            return state
        step = [int(state["index"]), int(bool(correct))]
        history = [*before, step]  # a new list; the steps before it are shared with `state`, never changed
        tab = tables(cfg)
        kept = _posteriors.pop(_posterior_key(tab, before), None)
        if kept is not None and kept[0] == before:
            log_post = kept[1] + tab.log_like[step[1], step[0]]
        else:
            log_post = log_posterior(cfg, history)
        if len(_posteriors) >= _POSTERIORS_KEPT:
            _posteriors.clear()
        _posteriors[_posterior_key(tab, history)] = (history.copy(), log_post)  # a copy: the caller owns `history`
        k = int(choose(tab, _normalise(log_post), cfg.target))
        return {"history": history, "index": k, "intensity": float(tab.levels[k])}
    st = staircase.StaircaseState.from_dict(state)
    if staircase.is_finished(cfg, st):
        return state
    return staircase.update(cfg, st, correct).to_dict()
