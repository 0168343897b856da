"""Models of several studies side by side (e.g. training checkpoints each evaluated in its own study),
with the protocol differences that make such a comparison questionable. Pure: no Flask, no DB.

Scores from different studies are independent samples of evaluators, so each keeps its own CI; the
comparison never pools them. It refuses to put HYPE-∞ and HYPE-time on one axis (an error rate and
an exposure in ms are different quantities), and warns when any setting that shapes what evaluators
saw or how they were scored differs. Pay, targets, seeds and resample counts do not change what a
score means and are not compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from hype.protocol import StudySettings

# Settings that change what a score measures. Everything else (pay, evaluators_per_model, seed,
# n_resamples) only changes cost or precision.
MEASUREMENT_SETTINGS = ("qualification", "infinity", "time", "statistics.exclude_flagged_trials",
                        "statistics.score_on_measured_exposure", "statistics.confidence_level")


class ComparisonError(ValueError):
    """The studies cannot be compared at all."""


@dataclass(frozen=True)
class StudyResult:
    """One study's leaderboard, as the comparison needs it."""

    study: str  # a name a person recognises
    settings: StudySettings
    rows: tuple[tuple[str, float, float | None, float | None, int], ...]  # (model, estimate, ci_low, ci_high, n_evaluators)
    interval: str = ""  # how the CIs were made, e.g. "studentized bootstrap, 95%"


@dataclass(frozen=True)
class ComparisonRow:
    study: str
    model: str
    estimate: float
    ci_low: float | None
    ci_high: float | None
    n_evaluators: int

    @property
    def label(self) -> str:
        return f"{self.model} ({self.study})"

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "model": self.model, "estimate": self.estimate, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "n_evaluators": self.n_evaluators}


@dataclass(frozen=True)
class Comparison:
    mode: str
    rows: tuple[ComparisonRow, ...]
    differences: tuple[str, ...]  # one sentence per setting that differs
    unscored: tuple[str, ...]  # studies with nothing to score yet, and why

    @property
    def protocols_differ(self) -> bool:
        return bool(self.differences)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "rows": [r.to_dict() for r in self.rows], "differences": list(self.differences),
                "unscored": list(self.unscored)}


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _measured(path: str) -> bool:
    return any(path == p or path.startswith(p + ".") for p in MEASUREMENT_SETTINGS)


def protocol_differences(named: Sequence[tuple[str, StudySettings]]) -> list[str]:
    """For each measurement setting that is not the same in every study: which study has which value.
    HYPE-time settings are only compared between HYPE-time studies (HYPE-∞ never uses them), and
    HYPE-∞ ones between HYPE-∞ studies."""
    flat = [(name, _flatten(s.to_dict())) for name, s in named]
    mode = named[0][1].mode if named else ""
    unused = "time." if mode == "hype-infinity" else "infinity."
    out = []
    for path in sorted(set().union(*(f.keys() for _, f in flat)) if flat else []):
        if not _measured(path) or path.startswith(unused):
            continue
        values = [f.get(path) for _, f in flat]
        if len({repr(v) for v in values}) > 1:
            out.append(f"{path}: " + ", ".join(f"{_fmt(v)} in {name}" for (name, _), v in zip(flat, values)))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def require_one_mode(settings: Sequence[StudySettings]) -> list[str]:
    modes = sorted({s.mode for s in settings})
    if len(modes) > 1:
        raise ComparisonError("HYPE-∞ and HYPE-time studies cannot share one scale (an error rate and an exposure "
                              "in ms): compare studies of one mode")
    return modes


def compare(results: Sequence[StudyResult], unscored: Sequence[str] = ()) -> Comparison:
    """Every model of every study, in the studies' order, each with its own CI."""
    if not results and not unscored:
        raise ComparisonError("give at least one study")
    modes = require_one_mode([r.settings for r in results])
    rows = tuple(
        ComparisonRow(r.study, model, est, lo, hi, n)
        for r in results
        for model, est, lo, hi, n in r.rows
        if est is not None and math.isfinite(est)
    )
    differences = protocol_differences([(r.study, r.settings) for r in results])
    intervals = sorted({r.interval for r in results if r.interval})
    if len(intervals) > 1:
        differences.append("confidence intervals: " + ", ".join(f"{r.interval} in {r.study}" for r in results))
    return Comparison(mode=modes[0] if modes else "", rows=rows, differences=tuple(differences), unscored=tuple(unscored))
