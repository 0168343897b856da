"""HYPE scores, bootstrap confidence intervals, separability tests and leaderboards.

Pure numpy/scipy so the same code scores a live study, a CSV of summaries and a simulation. Evaluators,
not trials, are the unit of resampling: the paper bootstraps evaluators, and trials within one evaluator
are not independent (one person's criterion and attention shift all their answers together).

Conventions
- HYPE-infinity: score = pooled error rate, (fakes judged real + reals judged fake) / all trials, over
  all included evaluators of a model. 0.5 = chance; higher = more realistic.
- HYPE-time: per block the modal exposure presented (ties: mean of the tied modes); per evaluator the
  mean of their block scores; per model the mean over evaluators. Higher = more realistic.
- Excluded trials (flagged for timing or focus) and excluded evaluators (failed qualification) are left
  out when the inputs are built / scored, and counted, so a report can say how much was dropped.
"""

from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Literal, Mapping, Sequence

import numpy as np
from scipy import stats
from scipy.special import ndtr, ndtri

from hype.protocol import StatisticsSettings

__all__ = [
    "ScoringError",
    "ConfidenceInterval",
    "InfinityCounts",
    "TimeBlocks",
    "ErrorRates",
    "BootstrapResult",
    "PairwiseComparison",
    "METHODS",
    "Separability",
    "RankingStability",
    "LeaderboardRow",
    "Leaderboard",
    "block_mode",
    "modes_from_counts",
    "infinity_rates",
    "time_score",
    "evaluator_scores",
    "bootstrap_infinity",
    "bootstrap_time",
    "bootstrap_score",
    "bootstrap_mean",
    "korn_graubard_interval",
    "DEFAULT_METHODS",
    "MODEL_BASED_METHODS",
    "default_method",
    "separability",
    "compact_letters",
    "ranking_stability",
    "leaderboard",
]

Method = Literal["percentile", "BCa", "expanded", "studentized", "betabinomial-t", "kg-t"]
METHODS: tuple[str, ...] = ("percentile", "BCa", "expanded", "studentized", "betabinomial-t", "kg-t")
# The interval every score shown to a person uses, per kind of score, chosen by measured coverage
# (hype.coverage, experiments/ci_coverage.py): 93-97% at 10, 30 and 60 evaluators, the truth above the
# interval about as often as below it (within 1 point). HYPE-infinity's is kg-t, the studentized bootstrap
# with its bound toward 1/2 no nearer than Korn & Graubard's: the plain studentized one misses 3.4 / 2.0
# at 10 evaluators (truth above / below; 3.5 / 1.8 on 40,000 studies), because ten evaluators rarely show
# how far their population's error rates lean; kg-t never covers less than it on either side, so it keeps
# its coverage when some evaluators answer at random. The beta-binomial bootstrap-t is a little more
# balanced than the studentized one on the simulated (beta-like) populations but loses coverage with
# random answerers (92.5% at 30 evaluators with 10% of them, against 94.0%), so it is offered, not the
# default. HYPE-time's scores and d' / c (plain means) keep the studentized bootstrap, which meets the
# target for them. The bootstrap primitives keep the paper's percentile as their default.
DEFAULT_METHODS: dict[str, str] = {"hype-infinity": "kg-t", "hype-time": "studentized",
                                   "mean": "studentized"}
# Methods that only exist for HYPE-infinity error counts, and what stands in for them on a plain mean
# of per-evaluator values (d' and c beside a HYPE-infinity score).
_COUNT_METHODS: dict[str, str] = {"betabinomial-t": "studentized", "kg-t": "studentized"}
# Methods that draw evaluators from a fitted model instead of resampling the ones observed: their
# coverage rests on the model's shape, so they are offered but never picked as a default.
MODEL_BASED_METHODS: frozenset[str] = frozenset({"betabinomial-t"})


def default_method(mode: str) -> str:
    """The default interval for a score of `mode` ("hype-infinity", "hype-time" or "mean")."""
    return DEFAULT_METHODS[mode]

_DEFAULTS = StatisticsSettings()
# Below this many evaluators a bootstrap over evaluators says nothing: with one, every resample is that
# evaluator and the interval has no width ("0.0% - 0.0%"), which reads as certainty; with a handful,
# the interval is far narrower than the population's spread. Pages show no CI below it.
MIN_EVALUATORS_FOR_CI = 5
DEFAULT_CHUNK_ELEMENTS = 4_000_000  # bounds one chunk's index matrix (~32 MB of int64)

ConfidenceInterval = namedtuple("ConfidenceInterval", ["low", "high"])


class ScoringError(ValueError):
    """Inputs that cannot be scored (mismatched lengths, no evaluators, unknown method...)."""


# --------------------------------------------------------------------------------------------------
# Inputs


def _ids(values: Any, name: str, n: int | None = None) -> np.ndarray:
    """Ids as strings so grouping, sorting and JSON output never depend on the caller's id type."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ScoringError(f"{name} must be one-dimensional")
    if n is not None and arr.shape[0] != n:
        raise ScoringError(f"{name} has {arr.shape[0]} entries, expected {n}")
    return arr.astype(str)


def _array(values: Any, name: str, n: int, dtype: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ScoringError(f"{name} must be one-dimensional with {n} entries")
    if dtype is bool:
        return arr.astype(bool)
    if dtype is np.int64:
        if arr.size and not np.all(np.isfinite(arr.astype(float))):
            raise ScoringError(f"{name} must be finite")
        if arr.size and np.any(arr.astype(float) != np.round(arr.astype(float))):
            raise ScoringError(f"{name} must be whole numbers")
        out = arr.astype(np.int64)
        if np.any(out < 0):
            raise ScoringError(f"{name} must be >= 0")
        return out
    return arr.astype(dtype)


def _group(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index of each element's group and the first element of every group, groups ordered by
    the keys lexicographically (so outputs are sorted by model, then evaluator, then block)."""
    n = keys[0].shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    codes = []
    for key in keys:
        _, inverse = np.unique(key, return_inverse=True)
        codes.append(inverse.ravel())
    order = np.lexsort(codes[::-1])
    sorted_codes = np.stack([c[order] for c in codes])
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = np.any(sorted_codes[:, 1:] != sorted_codes[:, :-1], axis=0)
    group_sorted = np.cumsum(new_group) - 1
    group = np.empty(n, dtype=np.int64)
    group[order] = group_sorted
    first = order[new_group]
    return group, first


def _excluded_evaluator_mask(model: np.ndarray, evaluator: np.ndarray, excluded: Iterable[Any]) -> np.ndarray:
    """Excluded evaluators may be named by id, or by (model, id) when ids repeat across models."""
    plain, pairs = set(), set()
    for item in excluded:
        if isinstance(item, tuple) and len(item) == 2:
            pairs.add((str(item[0]), str(item[1])))
        else:
            plain.add(str(item))
    mask = np.isin(evaluator, list(plain)) if plain else np.zeros(evaluator.shape, bool)
    if pairs:
        mask |= np.array([(m, e) in pairs for m, e in zip(model, evaluator)], dtype=bool)
    return mask


_INF_FIELDS = (
    "evaluator", "model", "fake_errors", "n_fake", "real_errors", "n_real", "excluded_trials", "evaluator_excluded",
)


@dataclass(frozen=True, eq=False)
class InfinityCounts:
    """Per-evaluator HYPE-infinity counts: the one input every HYPE-infinity statistic is computed from.

    Both per-trial judgments and per-participant summaries map onto these arrays, so a live study and
    an imported CSV are scored by the same code. Rows with `evaluator_excluded` set stay in the object
    (so they can be counted) but are left out of every score by default.
    """

    evaluator: np.ndarray
    model: np.ndarray
    fake_errors: np.ndarray  # fakes judged real
    n_fake: np.ndarray
    real_errors: np.ndarray  # reals judged fake
    n_real: np.ndarray
    excluded_trials: np.ndarray  # flagged trials already left out of the counts above
    evaluator_excluded: np.ndarray

    def __post_init__(self) -> None:
        n = self.evaluator.shape[0]
        for name in _INF_FIELDS[1:]:
            if getattr(self, name).shape != (n,):
                raise ScoringError(f"{name} must have one entry per evaluator ({n})")
        if np.any(self.fake_errors > self.n_fake) or np.any(self.real_errors > self.n_real):
            raise ScoringError("errors cannot exceed the number of trials of that class")

    @classmethod
    def from_counts(
        cls,
        evaluator: Sequence[Any],
        model: Sequence[Any] | str,
        fake_errors: Sequence[int],
        n_fake: Sequence[int] | int,
        real_errors: Sequence[int],
        n_real: Sequence[int] | int,
        *,
        excluded_trials: Sequence[int] | None = None,
        evaluator_excluded: Sequence[bool] | None = None,
    ) -> "InfinityCounts":
        ev = _ids(evaluator, "evaluator")
        n = ev.shape[0]
        mod = _ids(np.full(n, model) if isinstance(model, str) else model, "model", n)
        as_int = lambda v, name: _array(np.broadcast_to(v, (n,)), name, n, np.int64)  # noqa: E731
        counts = cls(
            evaluator=ev,
            model=mod,
            fake_errors=as_int(fake_errors, "fake_errors"),
            n_fake=as_int(n_fake, "n_fake"),
            real_errors=as_int(real_errors, "real_errors"),
            n_real=as_int(n_real, "n_real"),
            excluded_trials=as_int(0 if excluded_trials is None else excluded_trials, "excluded_trials"),
            evaluator_excluded=_array(
                np.broadcast_to(False if evaluator_excluded is None else evaluator_excluded, (n,)),
                "evaluator_excluded", n, bool,
            ),
        )
        _check_unique(counts.model, counts.evaluator)
        return counts

    @classmethod
    def from_trials(
        cls,
        evaluator: Sequence[Any],
        model: Sequence[Any] | str,
        is_fake: Sequence[bool],
        judged_fake: Sequence[bool],
        excluded: Sequence[bool] | None = None,
        *,
        excluded_evaluators: Iterable[Any] = (),
        exclude_flagged: bool = True,
    ) -> "InfinityCounts":
        """One row per trial -> one row per (model, evaluator). `excluded` flags trials (timing, focus);
        with `exclude_flagged` they are dropped from the counts and counted in `excluded_trials`."""
        ev = _ids(evaluator, "evaluator")
        n = ev.shape[0]
        mod = _ids(np.full(n, model) if isinstance(model, str) else model, "model", n)
        fake = _array(is_fake, "is_fake", n, bool)
        said_fake = _array(judged_fake, "judged_fake", n, bool)
        flagged = _array(np.zeros(n, bool) if excluded is None else excluded, "excluded", n, bool)
        drop = flagged if exclude_flagged else np.zeros(n, bool)
        keep = ~drop
        group, first = _group(mod, ev)
        g = first.shape[0]
        count = lambda w: np.bincount(group, weights=w.astype(float), minlength=g).astype(np.int64)  # noqa: E731
        return cls(
            evaluator=ev[first],
            model=mod[first],
            fake_errors=count(keep & fake & ~said_fake),
            n_fake=count(keep & fake),
            real_errors=count(keep & ~fake & said_fake),
            n_real=count(keep & ~fake),
            excluded_trials=count(drop),
            evaluator_excluded=_excluded_evaluator_mask(mod[first], ev[first], excluded_evaluators),
        )

    # --- views
    @property
    def n_evaluators(self) -> int:
        return int(self.evaluator.shape[0])

    @property
    def errors(self) -> np.ndarray:
        return self.fake_errors + self.real_errors

    @property
    def n_trials(self) -> np.ndarray:
        return self.n_fake + self.n_real

    def models(self) -> list[str]:
        return sorted(set(self.model.tolist()))

    def subset(self, mask: np.ndarray) -> "InfinityCounts":
        return InfinityCounts(**{f: getattr(self, f)[mask] for f in _INF_FIELDS})

    @classmethod
    def concat(cls, parts: Sequence["InfinityCounts"]) -> "InfinityCounts":
        """Several models' (or sessions') counts as one input, e.g. for a leaderboard."""
        if not parts:
            raise ScoringError("nothing to concatenate")
        out = cls(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in _INF_FIELDS})
        _check_unique(out.model, out.evaluator)
        return out

    def select(self, model: str) -> "InfinityCounts":
        return self.subset(self.model == str(model))

    def included(self) -> "InfinityCounts":
        """Evaluators that count: not excluded and with at least one trial left."""
        return self.subset(~self.evaluator_excluded & (self.n_trials > 0))

    def exclusions(self) -> tuple[int, int]:
        """(excluded trials, excluded evaluators): flagged trials of evaluators who count, plus every
        trial of evaluators who do not."""
        dropped = self.evaluator_excluded | (self.n_trials == 0)
        trials = int(self.excluded_trials.sum() + self.n_trials[dropped].sum())
        return trials, int(dropped.sum())


def _check_unique(model: np.ndarray, evaluator: np.ndarray) -> None:
    if model.size == 0:
        return
    group, first = _group(model, evaluator)
    if first.shape[0] != model.shape[0]:
        dup = np.flatnonzero(np.bincount(group) > 1)[0]
        i = first[dup]
        raise ScoringError(f"evaluator {evaluator[i]!r} appears more than once for model {model[i]!r}")


def _quantise(exposure: np.ndarray, resolution_ms: float | None) -> np.ndarray:
    """Modes need repeated values: requested exposures repeat exactly, measured ones only once binned.
    Without a resolution, values are rounded to 1e-6 ms so float noise cannot split a level."""
    if resolution_ms is None:
        return np.round(exposure, 6)
    if resolution_ms <= 0:
        raise ScoringError("resolution_ms must be > 0")
    return np.round(np.round(exposure / resolution_ms) * resolution_ms, 6)


def modes_from_counts(counts: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Mode per row of a histogram (last axis over `levels`); ties -> mean of the tied levels."""
    counts = np.asarray(counts)
    top = counts.max(axis=-1, keepdims=True)
    tied = (counts == top) & (top > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (tied * levels).sum(axis=-1) / tied.sum(axis=-1)


def block_mode(exposures_ms: Sequence[float], resolution_ms: float | None = None) -> float:
    """The HYPE-time score of one block: the exposure presented most often (ties: mean of the modes)."""
    x = _quantise(np.asarray(exposures_ms, dtype=float), resolution_ms)
    if x.size == 0:
        raise ScoringError("a block needs at least one trial")
    levels, counts = np.unique(x, return_counts=True)
    return float(modes_from_counts(counts, levels))


@dataclass(frozen=True, eq=False)
class TimeBlocks:
    """HYPE-time blocks grouped by evaluator: block scores, and (when built from trials) each block's
    histogram of exposures, which the two-level bootstrap resamples."""

    evaluator: np.ndarray  # per evaluator row
    model: np.ndarray
    n_trials: np.ndarray  # trials that count
    excluded_trials: np.ndarray
    evaluator_excluded: np.ndarray
    block_evaluator: np.ndarray  # per block: row index into the evaluator arrays
    block_score: np.ndarray
    block_counts: np.ndarray | None = None  # (n_blocks, n_levels) exposure histogram
    levels: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.evaluator.shape[0]
        for name in ("model", "n_trials", "excluded_trials", "evaluator_excluded"):
            if getattr(self, name).shape != (n,):
                raise ScoringError(f"{name} must have one entry per evaluator ({n})")
        if self.block_score.shape != self.block_evaluator.shape:
            raise ScoringError("block_score and block_evaluator must have the same length")
        if self.block_evaluator.size and (self.block_evaluator.min() < 0 or self.block_evaluator.max() >= n):
            raise ScoringError("block_evaluator must index evaluator rows")

    @classmethod
    def from_trials(
        cls,
        evaluator: Sequence[Any],
        model: Sequence[Any] | str,
        block: Sequence[Any],
        exposure_ms: Sequence[float],
        excluded: Sequence[bool] | None = None,
        *,
        excluded_evaluators: Iterable[Any] = (),
        exclude_flagged: bool = True,
        resolution_ms: float | None = None,
    ) -> "TimeBlocks":
        """One row per trial. Pass the requested exposures (the paper's score) or the measured ones
        (then set `resolution_ms`, e.g. the frame interval, so the mode is over binned values)."""
        ev = _ids(evaluator, "evaluator")
        n = ev.shape[0]
        mod = _ids(np.full(n, model) if isinstance(model, str) else model, "model", n)
        blk = _ids(block, "block", n)
        x = _array(exposure_ms, "exposure_ms", n, float)
        if not np.all(np.isfinite(x)):
            raise ScoringError("exposure_ms must be finite")
        flagged = _array(np.zeros(n, bool) if excluded is None else excluded, "excluded", n, bool)
        drop = flagged if exclude_flagged else np.zeros(n, bool)

        ev_group, ev_first = _group(mod, ev)
        n_ev = ev_first.shape[0]
        keep = ~drop
        # Blocks are formed from kept trials only: a block whose trials were all flagged disappears.
        b_group, b_first = _group(mod[keep], ev[keep], blk[keep])
        xq = _quantise(x[keep], resolution_ms)
        levels, level_idx = np.unique(xq, return_inverse=True)
        n_blocks = b_first.shape[0]
        hist = np.zeros((n_blocks, levels.shape[0]), dtype=np.int32)
        np.add.at(hist, (b_group, level_idx.ravel()), 1)
        block_ev = ev_group[np.flatnonzero(keep)[b_first]]
        return cls(
            evaluator=ev[ev_first],
            model=mod[ev_first],
            n_trials=np.bincount(ev_group, weights=keep.astype(float), minlength=n_ev).astype(np.int64),
            excluded_trials=np.bincount(ev_group, weights=drop.astype(float), minlength=n_ev).astype(np.int64),
            evaluator_excluded=_excluded_evaluator_mask(mod[ev_first], ev[ev_first], excluded_evaluators),
            block_evaluator=block_ev.astype(np.int64),
            block_score=modes_from_counts(hist, levels),
            block_counts=hist,
            levels=levels,
        )

    @classmethod
    def from_block_scores(
        cls,
        evaluator: Sequence[Any],
        model: Sequence[Any] | str,
        block_score: Sequence[float],
        *,
        n_trials: Sequence[int] | int = 0,
        excluded_evaluators: Iterable[Any] = (),
    ) -> "TimeBlocks":
        """One row per block with its score already computed (e.g. an export); no two-level bootstrap."""
        ev = _ids(evaluator, "evaluator")
        n = ev.shape[0]
        mod = _ids(np.full(n, model) if isinstance(model, str) else model, "model", n)
        scores = _array(block_score, "block_score", n, float)
        trials = _array(np.broadcast_to(n_trials, (n,)), "n_trials", n, np.int64)
        group, first = _group(mod, ev)
        g = first.shape[0]
        return cls(
            evaluator=ev[first],
            model=mod[first],
            n_trials=np.bincount(group, weights=trials.astype(float), minlength=g).astype(np.int64),
            excluded_trials=np.zeros(g, np.int64),
            evaluator_excluded=_excluded_evaluator_mask(mod[first], ev[first], excluded_evaluators),
            block_evaluator=group,
            block_score=scores,
        )

    @property
    def n_evaluators(self) -> int:
        return int(self.evaluator.shape[0])

    @property
    def n_blocks(self) -> np.ndarray:
        return np.bincount(self.block_evaluator, minlength=self.n_evaluators)

    @property
    def evaluator_score(self) -> np.ndarray:
        """Mean of each evaluator's block scores (NaN for an evaluator with no block left)."""
        sums = np.bincount(self.block_evaluator, weights=self.block_score, minlength=self.n_evaluators)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / self.n_blocks

    def models(self) -> list[str]:
        return sorted(set(self.model.tolist()))

    def subset(self, mask: np.ndarray) -> "TimeBlocks":
        rows = np.flatnonzero(mask)
        new_index = np.full(self.n_evaluators, -1, dtype=np.int64)
        new_index[rows] = np.arange(rows.shape[0])
        keep_blocks = new_index[self.block_evaluator] >= 0
        return TimeBlocks(
            evaluator=self.evaluator[rows],
            model=self.model[rows],
            n_trials=self.n_trials[rows],
            excluded_trials=self.excluded_trials[rows],
            evaluator_excluded=self.evaluator_excluded[rows],
            block_evaluator=new_index[self.block_evaluator[keep_blocks]],
            block_score=self.block_score[keep_blocks],
            block_counts=None if self.block_counts is None else self.block_counts[keep_blocks],
            levels=self.levels,
        )

    @classmethod
    def concat(cls, parts: Sequence["TimeBlocks"]) -> "TimeBlocks":
        """Several models' blocks as one input; exposure histograms are re-aligned on the union of
        levels (and dropped if any part has none, since the two-level bootstrap then cannot run)."""
        if not parts:
            raise ScoringError("nothing to concatenate")
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        offsets = np.cumsum([0] + [p.n_evaluators for p in parts[:-1]])
        block_ev = np.concatenate([p.block_evaluator + off for p, off in zip(parts, offsets)])
        counts = levels = None
        if all(p.block_counts is not None and p.levels is not None for p in parts):
            levels = np.unique(np.concatenate([p.levels for p in parts]))
            counts = np.zeros((block_ev.shape[0], levels.shape[0]), dtype=np.int32)
            row = 0
            for p in parts:
                cols = np.searchsorted(levels, p.levels)
                counts[row:row + p.block_counts.shape[0]][:, cols] = p.block_counts
                row += p.block_counts.shape[0]
        out = cls(evaluator=cat("evaluator"), model=cat("model"), n_trials=cat("n_trials"),
                  excluded_trials=cat("excluded_trials"), evaluator_excluded=cat("evaluator_excluded"),
                  block_evaluator=block_ev, block_score=cat("block_score"), block_counts=counts, levels=levels)
        _check_unique(out.model, out.evaluator)
        return out

    def select(self, model: str) -> "TimeBlocks":
        return self.subset(self.model == str(model))

    def included(self) -> "TimeBlocks":
        return self.subset(~self.evaluator_excluded & (self.n_blocks > 0))

    def exclusions(self) -> tuple[int, int]:
        dropped = self.evaluator_excluded | (self.n_blocks == 0)
        trials = int(self.excluded_trials.sum() + self.n_trials[dropped].sum())
        return trials, int(dropped.sum())


# --------------------------------------------------------------------------------------------------
# Point estimates


@dataclass(frozen=True)
class ErrorRates:
    overall: float
    fakes: float  # share of fakes judged real
    reals: float  # share of reals judged fake

    def to_dict(self) -> dict[str, float]:
        return {"overall": self.overall, "fakes": self.fakes, "reals": self.reals}


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


def infinity_rates(counts: InfinityCounts) -> ErrorRates:
    """Pooled over evaluators x images, as the paper defines the score (not a mean of per-evaluator
    rates; the two agree when every evaluator saw the same number of images)."""
    c = counts.included()
    return ErrorRates(
        overall=_ratio(c.errors.sum(), c.n_trials.sum()),
        fakes=_ratio(c.fake_errors.sum(), c.n_fake.sum()),
        reals=_ratio(c.real_errors.sum(), c.n_real.sum()),
    )


def time_score(blocks: TimeBlocks) -> float:
    s = blocks.included().evaluator_score
    return float(s.mean()) if s.size else math.nan


def evaluator_scores(data: InfinityCounts | TimeBlocks) -> np.ndarray:
    """One score per included evaluator: the units the t-test / ANOVA compare."""
    if isinstance(data, InfinityCounts):
        c = data.included()
        return c.errors / c.n_trials
    return data.included().evaluator_score


# --------------------------------------------------------------------------------------------------
# Bootstrap


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Shaped like `scipy.stats.bootstrap`'s result, plus what a report needs to say about the data."""

    estimate: float
    confidence_interval: ConfidenceInterval
    standard_error: float  # SD of the bootstrap distribution (ddof=1, as scipy)
    bootstrap_distribution: np.ndarray
    n_evaluators: int
    n_trials: int
    n_excluded: int  # excluded trials (flagged, or belonging to excluded evaluators)
    n_excluded_evaluators: int
    method: str
    two_level: bool
    confidence_level: float
    n_resamples: int

    @property
    def halfwidth(self) -> float:
        return (self.confidence_interval.high - self.confidence_interval.low) / 2

    def to_dict(self, include_distribution: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "estimate": _json_float(self.estimate),
            "confidence_interval": {
                "low": _json_float(self.confidence_interval.low),
                "high": _json_float(self.confidence_interval.high),
            },
            "standard_error": _json_float(self.standard_error),
            "n_evaluators": self.n_evaluators,
            "n_trials": self.n_trials,
            "n_excluded": self.n_excluded,
            "n_excluded_evaluators": self.n_excluded_evaluators,
            "method": self.method,
            "two_level": self.two_level,
            "confidence_level": self.confidence_level,
            "n_resamples": self.n_resamples,
        }
        if include_distribution:
            out["bootstrap_distribution"] = [float(v) for v in self.bootstrap_distribution]
        return out


def _json_float(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _chunks(n_resamples: int, row_elements: int, chunk_elements: int) -> Iterable[tuple[int, int]]:
    step = max(1, chunk_elements // max(1, row_elements))
    for start in range(0, n_resamples, step):
        yield start, min(n_resamples, start + step)


def _resample_ratio(num: np.ndarray, den: np.ndarray | None, n_resamples: int, rng: np.random.Generator,
                    chunk_elements: int) -> np.ndarray:
    """sum(num)/sum(den) (or mean(num) when den is None) over evaluators drawn with replacement: one integer index matrix per chunk,
    no Python loop per resample. Index draws (not multinomial weights) use the same scheme as
    scipy.stats.bootstrap, so the two are directly comparable."""
    n = num.shape[0]
    out = np.empty(n_resamples)
    for a, b in _chunks(n_resamples, n, chunk_elements):
        idx = rng.integers(0, n, size=(b - a, n))
        out[a:b] = num[idx].mean(axis=1) if den is None else num[idx].sum(axis=1) / den[idx].sum(axis=1)
    return out


def _resample_studentized(num: np.ndarray, den: np.ndarray, n_resamples: int, rng: np.random.Generator,
                          chunk_elements: int) -> tuple[np.ndarray, np.ndarray]:
    """Ratio estimates sum(num)/sum(den) over resampled evaluators and each resample's own standard
    error (delta method: sqrt(sum((num - r den)^2)) / sum(den); the plain SE of a mean when den is all
    ones)."""
    n = num.shape[0]
    est = np.empty(n_resamples)
    se = np.empty(n_resamples)
    for a, b in _chunks(n_resamples, 3 * n, chunk_elements):
        idx = rng.integers(0, n, size=(b - a, n))
        x, d = num[idx], den[idx]
        total = d.sum(axis=1)
        r = x.sum(axis=1) / total
        est[a:b] = r
        se[a:b] = np.sqrt(np.square(x - r[:, None] * d).sum(axis=1)) / total
    return est, se


def _ratio_se(num: np.ndarray, den: np.ndarray) -> float:
    total = den.sum()
    r = num.sum() / total
    return float(np.sqrt(np.square(num - r * den).sum()) / total)


def _betabinomial_fit(errors: np.ndarray, trials: np.ndarray) -> tuple[float, float]:
    """Mean error rate and intra-evaluator correlation rho of a beta-binomial fitted by moments
    (Kleinman 1973, weighting evaluators by their trials): rho = 0 is plain binomial (evaluators who
    differ no more than coin flips), larger rho a wider spread of evaluators. Clipped to [0, 0.999]."""
    total = trials.sum()
    m = errors.sum() / total
    k = trials.shape[0]
    if k < 2 or m <= 0 or m >= 1:
        return float(m), 0.0
    spread = np.sum(trials * np.square(errors / trials - m)) / (m * (1 - m))
    denom = total - np.sum(np.square(trials)) / total - (k - 1)
    rho = (spread - (k - 1)) / denom if denom > 0 else 0.0
    return float(m), float(min(max(rho, 0.0), 0.999))


_CDF_GRID = 1 << 14


def _inverse_cdf(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Number of entries of the increasing `cdf` that are <= u, for each u in [0, 1): exactly what
    np.searchsorted(cdf, u, "right") returns, several times faster for millions of random u (a table
    gives the count at the left edge of u's grid cell; the few breakpoints inside the cell are then
    stepped over one comparison at a time)."""
    edges = np.arange(_CDF_GRID) / _CDF_GRID
    start = np.searchsorted(cdf, edges, side="right")
    x = start[(u * _CDF_GRID).astype(np.int64)]
    top = cdf.shape[0]
    padded = np.append(cdf, np.inf)
    while True:
        step = padded[x] <= u
        if not step.any():
            return x
        x = x + step
        x = np.minimum(x, top)


def _resample_betabinomial(errors: np.ndarray, trials: np.ndarray, n_resamples: int, rng: np.random.Generator,
                           chunk_elements: int) -> tuple[np.ndarray, np.ndarray]:
    """Parametric bootstrap of a HYPE-infinity score: every evaluator's error count is drawn afresh from
    the beta-binomial fitted to the sample (same trials per evaluator as observed), and each resample's
    pooled rate and delta-method SE are returned as `_resample_studentized` returns them.

    Why not resample the evaluators themselves: error rates are right-skewed, and 10 evaluators rarely
    show that skew (the sample skewness at 10 averaged half the population's in simulation), so the
    bootstrap-t built from them under-corrects and the truth lay above the interval 3.3% of the time
    against 2.0% below. A beta-binomial's skew follows from its mean and spread, which 10 evaluators do
    estimate. Draws by inverse CDF (one uniform per evaluator and resample; scipy's beta-binomial pmf)."""
    from scipy.stats import betabinom, binom

    m, rho = _betabinomial_fit(errors, trials)
    n = errors.shape[0]
    sizes, slot = np.unique(trials.astype(np.int64), return_inverse=True)
    cdfs = []
    for size in sizes:
        support = np.arange(size + 1)
        if rho > 0:
            scale = 1 / rho - 1
            pmf = betabinom.pmf(support, size, m * scale, (1 - m) * scale)
        else:
            pmf = binom.pmf(support, size, m)
        cdf = np.cumsum(pmf)
        cdfs.append(cdf[:-1] / cdf[-1])  # k = number of these below u; u < 1 never passes the last
    est = np.empty(n_resamples)
    se = np.empty(n_resamples)
    den = trials.astype(float)
    total = den.sum()
    for a, b in _chunks(n_resamples, 3 * n, chunk_elements):
        u = rng.random((b - a, n))
        if len(cdfs) == 1:  # every evaluator had the same number of trials (the usual case)
            x = _inverse_cdf(cdfs[0], u).astype(float)
        else:
            x = np.empty_like(u)
            for j, cdf in enumerate(cdfs):
                cols = slot == j
                x[:, cols] = _inverse_cdf(cdf, u[:, cols])
        r = x.sum(axis=1) / total
        est[a:b] = r
        se[a:b] = np.sqrt(np.square(x - r[:, None] * den).sum(axis=1)) / total
    return est, se


def _resample_infinity_two_level(c: InfinityCounts, n_resamples: int, rng: np.random.Generator,
                                 chunk_elements: int) -> np.ndarray:
    """Evaluators with replacement, then each drawn evaluator's fakes and reals with replacement
    (stratified by class, so every resampled task keeps its real/fake split): the error count of a
    class resample is Binomial(n_class, that evaluator's error rate in the class)."""
    n = c.n_evaluators
    p_fake = np.divide(c.fake_errors, c.n_fake, out=np.zeros(n), where=c.n_fake > 0)
    p_real = np.divide(c.real_errors, c.n_real, out=np.zeros(n), where=c.n_real > 0)
    trials = c.n_trials.astype(float)
    out = np.empty(n_resamples)
    for a, b in _chunks(n_resamples, 3 * n, chunk_elements):
        idx = rng.integers(0, n, size=(b - a, n))
        errors = rng.binomial(c.n_fake[idx], p_fake[idx]) + rng.binomial(c.n_real[idx], p_real[idx])
        out[a:b] = errors.sum(axis=1) / trials[idx].sum(axis=1)
    return out


def _resample_time_two_level(t: TimeBlocks, n_resamples: int, rng: np.random.Generator,
                             chunk_elements: int) -> np.ndarray:
    """Evaluators with replacement, then the trials of each of their blocks with replacement (a
    multinomial draw from the block's exposure histogram) and the block modes recomputed. This treats
    a block's trials as exchangeable, which a staircase's are not; it widens the CI by the mode's
    sampling noise and is offered as a sensitivity check, not as the paper's interval."""
    if t.block_counts is None or t.levels is None:
        raise ScoringError("the two-level bootstrap needs per-trial exposures (TimeBlocks.from_trials)")
    n = t.n_evaluators
    n_blocks = t.n_blocks
    width = int(n_blocks.max())
    # (evaluator, slot) -> block index, -1 where an evaluator has fewer blocks
    order = np.argsort(t.block_evaluator, kind="stable")
    slot = np.arange(order.shape[0]) - np.repeat(np.cumsum(n_blocks) - n_blocks, n_blocks)
    table = np.full((n, width), -1, dtype=np.int64)
    table[t.block_evaluator[order], slot] = order
    totals = t.block_counts.sum(axis=1)
    pvals = t.block_counts / totals[:, None]
    k = t.levels.shape[0]
    out = np.empty(n_resamples)
    for a, b in _chunks(n_resamples, n * width * k, chunk_elements):
        idx = rng.integers(0, n, size=(b - a, n))
        blocks = table[idx]  # (chunk, n, width)
        valid = blocks >= 0
        chosen = blocks[valid]
        draws = rng.multinomial(totals[chosen], pvals[chosen])
        modes = np.full(blocks.shape, np.nan)
        modes[valid] = modes_from_counts(draws, t.levels)
        out[a:b] = np.nanmean(modes, axis=2).mean(axis=1)
    return out


def _jackknife_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return (num.sum() - num) / (den.sum() - den)


def _expanded_levels(alpha: float, n: int) -> tuple[float, float]:
    """Hesterberg's (2015) expanded percentile interval: the percentile interval of a mean is too
    narrow by about sqrt((n-1)/n) * z / t_{n-1} (it uses the plug-in SD and a normal quantile), so at
    30 evaluators a nominal 95% interval covers about 93.6%. Widening the quantile levels to
    Phi(-sqrt(n/(n-1)) * t_{n-1, 1-alpha}) undoes both factors."""
    if n < 2:
        return alpha, 1 - alpha
    z = math.sqrt(n / (n - 1)) * stats.t.ppf(1 - alpha, n - 1)
    return float(ndtr(-z)), float(ndtr(z))


def _studentized_interval(estimate: float, se_hat: float, distribution: np.ndarray, se_star: np.ndarray,
                          confidence_level: float, n_evaluators: int,
                          bounds: tuple[float, float] | None = None) -> ConfidenceInterval:
    """Bootstrap-t (Efron & Tibshirani ch. 12): the quantiles of t* = (r* - r) / se* replace the normal
    ones. It corrects what the percentile interval gets wrong for error rates: a skewed sampling
    distribution whose spread grows with its level (a sample that happens to miss the high-error
    evaluators has both a low estimate and a small SD), which made the percentile interval miss above
    twice as often as below.

    A resample drawn from evaluators who happen to share one score (counts are discrete: seven of ten
    evaluators with 9 errors in 100 is a real sample) has SE 0 and an infinite t, which once made a
    10-evaluator interval reach 9534%. Its SE is therefore floored at se_hat / sqrt(n): no resample of
    n evaluators is credibly more than sqrt(n) times as certain as the sample itself.
    """
    alpha = (1 - confidence_level) / 2
    if se_hat <= 0:
        return ConfidenceInterval(float(estimate), float(estimate))
    t = (distribution - estimate) / np.maximum(se_star, se_hat / math.sqrt(max(n_evaluators, 1)))
    q_lo, q_hi = np.quantile(t, [alpha, 1 - alpha])
    low, high = float(estimate - q_hi * se_hat), float(estimate - q_lo * se_hat)
    if bounds is not None:
        # Unlike percentile ones, a bootstrap-t interval can leave the parameter's range (an error rate
        # of -0.7% was shown on the compare page). Clipping to the range never drops the truth, so the
        # measured coverage stands.
        low, high = min(max(low, bounds[0]), bounds[1]), min(max(high, bounds[0]), bounds[1])
    return ConfidenceInterval(low, high)


def korn_graubard_interval(num: np.ndarray, den: np.ndarray, confidence_level: float) -> ConfidenceInterval:
    """Korn & Graubard's (1998) interval for a proportion from a cluster sample (survey statistics' standard
    one; R survey's svyciprop(method="beta")): Clopper-Pearson at the effective number of trials,
    p(1-p) / v with v the evaluators' with-replacement variance n/(n-1) * sum((e_i - p t_i)^2) / N^2, shrunk
    by (z / t_{n-1})^2 for the few evaluators that estimate v. Its lean is a binomial's at that size,
    whatever the sample shows; with no spread among evaluators (v = 0, e.g. no errors at all) the effective
    number is the trials themselves. NaN with fewer than two evaluators (no spread can be estimated)."""
    k = num.shape[0]
    if k < 2:
        return ConfidenceInterval(math.nan, math.nan)
    total = float(den.sum())
    p = float(num.sum()) / total
    v = k / (k - 1) * float(np.square(num - p * den).sum()) / total**2
    n_eff = total if v <= 0 else min(total, p * (1 - p) / v)  # a design effect below 1 is not credited
    alpha = (1 - confidence_level) / 2
    n_eff *= (ndtri(1 - alpha) / stats.t.ppf(1 - alpha, k - 1)) ** 2
    x = p * n_eff
    low = 0.0 if x <= 0 else float(stats.beta.ppf(alpha, x, n_eff - x + 1))
    high = 1.0 if x >= n_eff else float(stats.beta.ppf(1 - alpha, x + 1, n_eff - x))
    return ConfidenceInterval(low, high)


def _kg_t_interval(studentized: ConfidenceInterval, num: np.ndarray, den: np.ndarray,
                   confidence_level: float) -> ConfidenceInterval:
    """The studentized bootstrap interval, its bound toward 1/2 moved out to Korn & Graubard's where that
    one reaches further. An error rate's sampling distribution leans toward 1/2 (rates pile up against
    0 or 1), and the tail that leans is the one a small sample under-shows: ten evaluators rarely include
    the few who err most, so the bootstrap-t, which learns the lean from the sample, puts the upper
    bound too low (HYPE-infinity at 10 evaluators: truth above 3.5%, below 1.8%). Korn & Graubard's
    bound leans as a binomial of the effective size does, whatever the sample shows. Taking the further
    of the two on that side only never covers less than the bootstrap-t, on either side: the interval
    keeps the bootstrap-t's coverage where a population is not binomial-like (random answerers, whose
    cluster at 50% the sample does show). At exactly 1/2 both bounds are widened."""
    kg = korn_graubard_interval(num, den, confidence_level)
    if math.isnan(kg.low):
        return studentized
    p = float(num.sum() / den.sum())
    low = studentized.low if p < 0.5 else min(studentized.low, kg.low)
    high = studentized.high if p > 0.5 else max(studentized.high, kg.high)
    return ConfidenceInterval(low, high)


def _interval(distribution: np.ndarray, estimate: float, jackknife: np.ndarray, confidence_level: float,
              method: str, n_evaluators: int) -> ConfidenceInterval:
    """Percentile or BCa interval, computed exactly as scipy.stats.bootstrap does (Efron & Tibshirani
    14.3 / 15.4; z0 from the 'mean' percentile of the estimate, linear-interpolated quantiles), or the
    expanded percentile interval (small-sample correction, see `_expanded_levels`). The studentized
    interval needs each resample's SE and is made by `_studentized_interval`."""
    alpha = (1 - confidence_level) / 2
    if method == "percentile":
        lo, hi = alpha, 1 - alpha
    elif method == "expanded":
        lo, hi = _expanded_levels(alpha, n_evaluators)
    elif method == "BCa":
        below = (np.count_nonzero(distribution < estimate) + np.count_nonzero(distribution <= estimate))
        z0 = ndtri(below / (2 * distribution.shape[0]))
        d = jackknife.mean() - jackknife
        denom = 6 * np.sum(d**2) ** 1.5
        accel = np.sum(d**3) / denom if denom > 0 else 0.0
        z_lo, z_hi = ndtri(alpha), ndtri(1 - alpha)
        lo = ndtr(z0 + (z0 + z_lo) / (1 - accel * (z0 + z_lo)))
        hi = ndtr(z0 + (z0 + z_hi) / (1 - accel * (z0 + z_hi)))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return ConfidenceInterval(math.nan, math.nan)
    else:
        raise ScoringError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    q = np.quantile(distribution, [lo, hi])
    return ConfidenceInterval(float(q[0]), float(q[1]))


def _check_options(n_resamples: int, confidence_level: float, method: str) -> None:
    if n_resamples < 1:
        raise ScoringError("n_resamples must be >= 1")
    if not 0 < confidence_level < 1:
        raise ScoringError("confidence_level must be in (0, 1)")
    if method not in METHODS:
        raise ScoringError(f"method must be one of {', '.join(METHODS)}, not {method!r}")


def _check_not_counts_only(method: str) -> None:
    if method in _COUNT_METHODS:
        raise ScoringError(f"the {method} interval is for HYPE-infinity error counts; "
                           f"use {_COUNT_METHODS[method]} for other scores")


def _empty_result(n_excl: int, n_excl_ev: int, method: str, two_level: bool, confidence_level: float,
                  n_resamples: int) -> BootstrapResult:
    nan = math.nan
    return BootstrapResult(nan, ConfidenceInterval(nan, nan), nan, np.zeros(0), 0, 0, n_excl, n_excl_ev,
                           method, two_level, confidence_level, n_resamples)


def _resample_and_interval(num: np.ndarray, den: np.ndarray, estimate: float, two_level: bool, method: str,
                           confidence_level: float, n_resamples: int, gen: np.random.Generator,
                           chunk_elements: int, two_level_draw: Any,
                           bounds: tuple[float, float] | None = None) -> tuple[np.ndarray, ConfidenceInterval]:
    """One model's bootstrap distribution and interval; `num`/`den` per evaluator (den all ones for a
    mean), so both modes share the interval logic. `bounds` is the parameter's range (an error rate's
    [0, 1]), which only the studentized interval can leave."""
    n = num.shape[0]
    if method in ("studentized", "betabinomial-t", "kg-t"):
        if two_level:
            raise ScoringError(f"the {method} interval has no two-level form")
        if method == "betabinomial-t":
            dist, se_star = _resample_betabinomial(num, den, n_resamples, gen, chunk_elements)
        else:
            dist, se_star = _resample_studentized(num, den, n_resamples, gen, chunk_elements)
        interval = _studentized_interval(estimate, _ratio_se(num, den), dist, se_star, confidence_level, n, bounds)
        if method == "kg-t":
            interval = _kg_t_interval(interval, num, den, confidence_level)
        return dist, interval
    if two_level:
        dist = two_level_draw()
    elif np.all(den == 1):
        dist = _resample_ratio(num, None, n_resamples, gen, chunk_elements)
    else:
        dist = _resample_ratio(num, den, n_resamples, gen, chunk_elements)
    jack = _jackknife_ratio(num, den) if method == "BCa" and n > 1 else np.zeros(1)
    return dist, _interval(dist, estimate, jack, confidence_level, method, n)


def bootstrap_infinity(
    counts: InfinityCounts,
    *,
    n_resamples: int = _DEFAULTS.n_resamples,
    confidence_level: float = _DEFAULTS.confidence_level,
    method: Method = "percentile",
    two_level: bool = False,
    rng: np.random.Generator | int | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> BootstrapResult:
    """Bootstrap CI of one model's pooled HYPE-infinity error rate, resampling evaluators (or, for
    `betabinomial-t`, drawing them from a beta-binomial fitted to the evaluators' counts; `kg-t` is the
    studentized interval with its bound toward 1/2 no nearer than Korn & Graubard's)."""
    _check_options(n_resamples, confidence_level, method)
    if len(set(counts.model.tolist())) > 1:
        raise ScoringError("bootstrap one model at a time (use .select(model) or leaderboard())")
    n_excl, n_excl_ev = counts.exclusions()
    c = counts.included()
    if c.n_evaluators == 0:
        return _empty_result(n_excl, n_excl_ev, method, two_level, confidence_level, n_resamples)
    gen = _rng(rng)
    num, den = c.errors.astype(float), c.n_trials.astype(float)
    estimate = num.sum() / den.sum()
    dist, interval = _resample_and_interval(num, den, estimate, two_level, method, confidence_level, n_resamples,
                                            gen, chunk_elements,
                                            lambda: _resample_infinity_two_level(c, n_resamples, gen, chunk_elements),
                                            bounds=(0.0, 1.0))
    return BootstrapResult(
        estimate=float(estimate),
        confidence_interval=interval,
        standard_error=float(dist.std(ddof=1)) if n_resamples > 1 else math.nan,
        bootstrap_distribution=dist,
        n_evaluators=c.n_evaluators,
        n_trials=int(den.sum()),
        n_excluded=n_excl,
        n_excluded_evaluators=n_excl_ev,
        method=method,
        two_level=two_level,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
    )


def bootstrap_time(
    blocks: TimeBlocks,
    *,
    n_resamples: int = _DEFAULTS.n_resamples,
    confidence_level: float = _DEFAULTS.confidence_level,
    method: Method = "percentile",
    two_level: bool = False,
    rng: np.random.Generator | int | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> BootstrapResult:
    """Bootstrap CI of one model's HYPE-time score (mean of evaluator scores), resampling evaluators."""
    _check_options(n_resamples, confidence_level, method)
    _check_not_counts_only(method)
    if len(set(blocks.model.tolist())) > 1:
        raise ScoringError("bootstrap one model at a time (use .select(model) or leaderboard())")
    n_excl, n_excl_ev = blocks.exclusions()
    t = blocks.included()
    if t.n_evaluators == 0:
        return _empty_result(n_excl, n_excl_ev, method, two_level, confidence_level, n_resamples)
    gen = _rng(rng)
    scores = t.evaluator_score
    ones = np.ones_like(scores)
    estimate = scores.mean()
    dist, interval = _resample_and_interval(scores, ones, estimate, two_level, method, confidence_level, n_resamples,
                                            gen, chunk_elements,
                                            lambda: _resample_time_two_level(t, n_resamples, gen, chunk_elements))
    return BootstrapResult(
        estimate=float(estimate),
        confidence_interval=interval,
        standard_error=float(dist.std(ddof=1)) if n_resamples > 1 else math.nan,
        bootstrap_distribution=dist,
        n_evaluators=t.n_evaluators,
        n_trials=int(t.n_trials.sum()),
        n_excluded=n_excl,
        n_excluded_evaluators=n_excl_ev,
        method=method,
        two_level=two_level,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
    )


def bootstrap_mean(
    values: Sequence[float],
    *,
    n_resamples: int = _DEFAULTS.n_resamples,
    confidence_level: float = _DEFAULTS.confidence_level,
    method: Method = "percentile",
    rng: np.random.Generator | int | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> BootstrapResult:
    """Bootstrap CI of the mean of one value per evaluator (d', c...), resampling evaluators exactly
    as the HYPE scores do."""
    _check_options(n_resamples, confidence_level, method)
    _check_not_counts_only(method)
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return _empty_result(0, 0, method, False, confidence_level, n_resamples)
    estimate = float(x.mean())
    dist, interval = _resample_and_interval(x, np.ones_like(x), estimate, False, method, confidence_level,
                                            n_resamples, _rng(rng), chunk_elements, None)
    return BootstrapResult(estimate, interval, float(dist.std(ddof=1)) if n_resamples > 1 else math.nan, dist,
                           int(x.size), 0, 0, 0, method, False, confidence_level, n_resamples)


def bootstrap_score(data: InfinityCounts | TimeBlocks, **options: Any) -> BootstrapResult:
    """Dispatch on the input type, so callers need not know the mode."""
    if isinstance(data, InfinityCounts):
        return bootstrap_infinity(data, **options)
    if isinstance(data, TimeBlocks):
        return bootstrap_time(data, **options)
    raise ScoringError(f"cannot score a {type(data).__name__}")


# --------------------------------------------------------------------------------------------------
# Separability and ranking


@dataclass(frozen=True)
class PairwiseComparison:
    model_a: str
    model_b: str
    difference: float  # mean(a) - mean(b) of per-evaluator scores
    p_value: float
    ci_low: float
    ci_high: float
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "difference": _json_float(self.difference),
            "p_value": _json_float(self.p_value),
            "ci_low": _json_float(self.ci_low),
            "ci_high": _json_float(self.ci_high),
            "significant": self.significant,
        }


@dataclass(frozen=True)
class Separability:
    """The paper's tests on per-evaluator scores: t-test for two models, ANOVA + Tukey HSD for more."""

    test: str  # "student-t", "welch-t" or "anova+tukey"
    statistic: float
    p_value: float
    pairwise: tuple[PairwiseComparison, ...]
    letters: dict[str, str]  # compact letter display; models sharing a letter are not separated
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "statistic": _json_float(self.statistic),
            "p_value": _json_float(self.p_value),
            "alpha": self.alpha,
            "letters": dict(self.letters),
            "pairwise": [p.to_dict() for p in self.pairwise],
        }


def compact_letters(
    models: Sequence[str], means: Sequence[float], significant: Mapping[tuple[str, str], bool]
) -> dict[str, str]:
    """Compact letter display by insert-and-absorb (Piepho 2004): every maximal set of models with no
    significant difference among them gets a letter; 'a' goes to the set holding the best model."""
    order = [m for _, m in sorted(zip(means, models), key=lambda t: (-t[0], t[1]))]
    groups: list[set[str]] = [set(order)]
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            if not (significant.get((a, b)) or significant.get((b, a))):
                continue
            next_groups: list[set[str]] = []
            for g in groups:
                if a in g and b in g:
                    next_groups.extend([g - {a}, g - {b}])
                else:
                    next_groups.append(g)
            groups = [g for g in next_groups if g and not any(g < h for h in next_groups)]
            unique: list[set[str]] = []
            for g in groups:
                if g not in unique:
                    unique.append(g)
            groups = unique
    rank = {m: i for i, m in enumerate(order)}
    groups.sort(key=lambda g: sorted(rank[m] for m in g))
    letters = {m: "" for m in order}
    for i, g in enumerate(groups):
        for m in g:
            letters[m] += _letter(i)
    return letters


def _letter(i: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    return alphabet[i] if i < 26 else alphabet[i // 26 - 1] + alphabet[i % 26]


def separability(scores: Mapping[str, Sequence[float]], *, welch: bool = False, alpha: float = 0.05) -> Separability:
    """`scores`: model -> per-evaluator scores (`evaluator_scores`). Two models: unpaired t-test
    (Student, as the paper; Welch with `welch=True`). More: one-way ANOVA, Tukey HSD for the pairs."""
    models = sorted(scores)
    samples = [np.asarray(scores[m], dtype=float) for m in models]
    if len(models) < 2:
        raise ScoringError("separability needs at least two models")
    if any(s.size < 2 for s in samples):
        raise ScoringError("every model needs at least two evaluators for a test")
    means = [float(s.mean()) for s in samples]
    if len(models) == 2:
        res = stats.ttest_ind(samples[0], samples[1], equal_var=not welch)
        ci = res.confidence_interval(1 - alpha)
        p = float(res.pvalue)
        pair = PairwiseComparison(models[0], models[1], means[0] - means[1], p,
                                  float(ci.low), float(ci.high), p < alpha)
        sig = {(models[0], models[1]): pair.significant}
        return Separability("welch-t" if welch else "student-t", float(res.statistic), p, (pair,),
                            compact_letters(models, means, sig), alpha)
    anova = stats.f_oneway(*samples)
    tukey = stats.tukey_hsd(*samples)
    ci = tukey.confidence_interval(1 - alpha)
    pairs, sig = [], {}
    for i in range(len(models)):
        for j in range(i + 1, len(models)):
            p = float(tukey.pvalue[i, j])
            pair = PairwiseComparison(models[i], models[j], float(tukey.statistic[i, j]), p,
                                      float(ci.low[i, j]), float(ci.high[i, j]), p < alpha)
            pairs.append(pair)
            sig[(models[i], models[j])] = pair.significant
    return Separability("anova+tukey", float(anova.statistic), float(anova.pvalue), tuple(pairs),
                        compact_letters(models, means, sig), alpha)


@dataclass(frozen=True)
class RankingStability:
    """How often independent bootstrap resamples of each model reproduce the point-estimate ranking."""

    ranking: tuple[str, ...]  # point-estimate ranking, most realistic first
    p_same_ranking: float  # share of resamples with exactly this full ranking
    p_at_rank: dict[str, float]  # per model: share of resamples in which it holds its point rank
    rank_probabilities: dict[str, list[float]]  # per model: share at rank 1..M

    def to_dict(self) -> dict[str, Any]:
        return {
            "ranking": list(self.ranking),
            "p_same_ranking": self.p_same_ranking,
            "p_at_rank": dict(self.p_at_rank),
            "rank_probabilities": {k: list(v) for k, v in self.rank_probabilities.items()},
        }


def ranking_stability(estimates: Mapping[str, float], distributions: Mapping[str, np.ndarray]) -> RankingStability:
    """`distributions`: per model, its own bootstrap distribution (models resampled independently, as
    evaluators are between-subjects), all of the same length. Higher = better for both modes."""
    models = sorted(estimates, key=lambda m: (-estimates[m], m))
    dist = np.stack([np.asarray(distributions[m], dtype=float) for m in models], axis=1)  # (B, M)
    # rank of each model within each resample; ties go to the model ranked higher by the point estimate
    order = np.argsort(-dist, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(len(models))[None, :], axis=1)
    point = np.arange(len(models))
    same = np.all(ranks == point[None, :], axis=1).mean()
    probs = {m: [float(np.mean(ranks[:, i] == r)) for r in range(len(models))] for i, m in enumerate(models)}
    return RankingStability(
        ranking=tuple(models),
        p_same_ranking=float(same),
        p_at_rank={m: float(np.mean(ranks[:, i] == i)) for i, m in enumerate(models)},
        rank_probabilities=probs,
    )


# --------------------------------------------------------------------------------------------------
# Leaderboard


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    model: str
    estimate: float
    ci_low: float
    ci_high: float
    standard_error: float
    fakes_error: float | None  # HYPE-infinity only
    reals_error: float | None
    n_evaluators: int
    n_trials: int
    n_excluded: int
    n_excluded_evaluators: int
    letters: str = ""
    sdt: Any = None  # HYPE-infinity: hype.sdt.ModelSDT (mean d' and c over evaluators, with CIs)
    interval_method: str | None = None  # set when the interval is not the board's method (a stopped model)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "model": self.model,
            "estimate": _json_float(self.estimate),
            "ci_low": _json_float(self.ci_low),
            "ci_high": _json_float(self.ci_high),
            "interval_method": self.interval_method,
            "standard_error": _json_float(self.standard_error),
            "fakes_error": None if self.fakes_error is None else _json_float(self.fakes_error),
            "reals_error": None if self.reals_error is None else _json_float(self.reals_error),
            "n_evaluators": self.n_evaluators,
            "n_trials": self.n_trials,
            "n_excluded": self.n_excluded,
            "n_excluded_evaluators": self.n_excluded_evaluators,
            "letters": self.letters,
            "sdt": None if self.sdt is None else self.sdt.to_dict(),
        }


@dataclass(frozen=True, eq=False)
class Leaderboard:
    mode: str  # "hype-infinity" or "hype-time"
    rows: tuple[LeaderboardRow, ...]  # most realistic first
    separability: Separability | None
    ranking: RankingStability | None
    results: dict[str, BootstrapResult] = field(repr=False)
    method: str = "percentile"
    two_level: bool = False
    confidence_level: float = 0.95
    n_resamples: int = 10_000
    seed: int | None = None
    evaluator_scores: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # per model, as tested

    def __iter__(self) -> Iterator[LeaderboardRow]:  # a leaderboard reads as its list of rows
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "method": self.method,
            "two_level": self.two_level,
            "confidence_level": self.confidence_level,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "rows": [r.to_dict() for r in self.rows],
            "separability": None if self.separability is None else self.separability.to_dict(),
            "ranking_stability": None if self.ranking is None else self.ranking.to_dict(),
        }


def leaderboard(
    data: InfinityCounts | TimeBlocks,
    *,
    n_resamples: int = _DEFAULTS.n_resamples,
    confidence_level: float = _DEFAULTS.confidence_level,
    method: Method | None = None,
    two_level: bool = False,
    welch: bool = False,
    alpha: float = 0.05,
    seed: int | None = 0,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> Leaderboard:
    """Every model of `data` scored with its own bootstrap (`method` None: the mode's default interval,
    DEFAULT_METHODS), ranked most realistic first, with the
    separability tests and ranking stability. Per-model generators are spawned from `seed` in model-
    name order, so adding a model never changes another model's interval."""
    models = data.models()
    if not models:
        raise ScoringError("no models to rank")
    mode = "hype-infinity" if isinstance(data, InfinityCounts) else "hype-time"
    method = method or default_method(mode)
    from hype.sdt import model_sdt  # hype.sdt builds on this module

    results: dict[str, BootstrapResult] = {}
    rates: dict[str, ErrorRates | None] = {}
    detection: dict[str, Any] = {}
    per_evaluator: dict[str, np.ndarray] = {}
    for model in models:
        part = data.select(model)
        gen = np.random.default_rng(None if seed is None else [seed, _stable_hash(model)])
        results[model] = bootstrap_score(part, n_resamples=n_resamples, confidence_level=confidence_level,
                                         method=method, two_level=two_level, rng=gen, chunk_elements=chunk_elements)
        rates[model] = infinity_rates(part) if mode == "hype-infinity" else None
        if mode == "hype-infinity" and results[model].n_evaluators > 0:
            detection[model] = model_sdt(part, method="percentile" if two_level else _COUNT_METHODS.get(method, method),
                                         n_resamples=n_resamples, confidence_level=confidence_level,
                                         rng=np.random.default_rng(None if seed is None else [seed, _stable_hash(model), 1]))
        per_evaluator[model] = evaluator_scores(part)

    scored = [m for m in models if results[m].n_evaluators > 0]
    sep = None
    testable = {m: per_evaluator[m] for m in scored if per_evaluator[m].size >= 2}
    if len(testable) >= 2:
        sep = separability(testable, welch=welch, alpha=alpha)
    ranking = None
    if len(scored) >= 2:
        ranking = ranking_stability({m: results[m].estimate for m in scored},
                                    {m: results[m].bootstrap_distribution for m in scored})
    ordered = sorted(models, key=lambda m: (-_sort_key(results[m].estimate), m))
    rows = []
    for i, m in enumerate(ordered, start=1):
        r, er = results[m], rates[m]
        rows.append(LeaderboardRow(
            rank=i, model=m, estimate=r.estimate,
            ci_low=r.confidence_interval.low, ci_high=r.confidence_interval.high,
            standard_error=r.standard_error,
            fakes_error=None if er is None else er.fakes,
            reals_error=None if er is None else er.reals,
            n_evaluators=r.n_evaluators, n_trials=r.n_trials,
            n_excluded=r.n_excluded, n_excluded_evaluators=r.n_excluded_evaluators,
            letters="" if sep is None else sep.letters.get(m, ""),
            sdt=detection.get(m),
        ))
    return Leaderboard(mode=mode, rows=tuple(rows), separability=sep, ranking=ranking, results=results,
                       method=method, two_level=two_level, confidence_level=confidence_level,
                       n_resamples=n_resamples, seed=seed, evaluator_scores=per_evaluator)


def _sort_key(v: float) -> float:
    return -math.inf if not math.isfinite(v) else v


def _stable_hash(text: str) -> int:
    """Python's hash() is salted per process; a seed must not be."""
    h = 2166136261
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h
