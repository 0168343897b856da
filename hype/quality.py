"""Worker quality control: per-worker statistics and the exclusion rules a researcher can apply. Pure.

Rules only propose exclusions; the researcher decides, every exclusion carries its reason, and every
one can be undone. Keeping the rules pure makes their thresholds testable without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Sequence

RULE_FAILED_QUALIFICATION = "failed-qualification"
RULE_TOO_MANY_FLAGGED = "too-many-flagged"
RULE_TOO_FAST = "too-fast"
RULE_FAILED_CATCH = "failed-catch"


@dataclass(frozen=True)
class TrialRecord:
    """One answered task trial, as quality rules see it."""

    is_fake: bool
    correct: bool
    reaction_ms: float | None
    flagged: bool
    is_catch: bool = False  # a catch trial: counts for catch accuracy, never for the model's figures


@dataclass(frozen=True)
class WorkerStats:
    n_answered: int
    real_accuracy: float | None
    fake_accuracy: float | None
    median_reaction_ms: float | None
    n_flagged: int
    n_correct: int
    failed_qualification: bool
    catch_correct: int = 0
    catch_total: int = 0

    @property
    def flagged_share(self) -> float:
        return self.n_flagged / self.n_answered if self.n_answered else 0.0

    @property
    def catch_accuracy(self) -> float | None:
        return self.catch_correct / self.catch_total if self.catch_total else None


def catch_accuracy(correct: Sequence[bool]) -> float | None:
    """Share right on a worker's answered catch trials; None when they answered none."""
    return sum(map(bool, correct)) / len(correct) if len(correct) else None


def fails_catch(accuracy: float | None, min_accuracy: float | None) -> bool:
    """The catch rule, in one place for the dashboard's rules and for scoring: right on fewer catch
    trials than ``min_accuracy`` (None or 0: rule off; no catch answers: nothing to judge)."""
    return bool(min_accuracy) and accuracy is not None and accuracy < min_accuracy - 1e-9


def worker_stats(trials: Sequence[TrialRecord], failed_qualification: bool = False) -> WorkerStats:
    """Reals and fakes right count scored trials only; answers, reaction times, flags and right answers
    (the bonus) count catch trials too, since the worker judged them like any other."""
    scored = [t for t in trials if not t.is_catch]
    catch = [t for t in trials if t.is_catch]
    reals = [t for t in scored if not t.is_fake]
    fakes = [t for t in scored if t.is_fake]
    times = [t.reaction_ms for t in trials if t.reaction_ms is not None]
    return WorkerStats(
        n_answered=len(trials),
        real_accuracy=sum(t.correct for t in reals) / len(reals) if reals else None,
        fake_accuracy=sum(t.correct for t in fakes) / len(fakes) if fakes else None,
        median_reaction_ms=float(median(times)) if times else None,
        n_flagged=sum(t.flagged for t in trials),
        n_correct=sum(t.correct for t in trials),
        failed_qualification=failed_qualification,
        catch_correct=sum(t.correct for t in catch),
        catch_total=len(catch),
    )


@dataclass(frozen=True)
class ExclusionRules:
    """Thresholds; None switches a rule off. Defaults are conservative starting points, not the paper's."""

    failed_qualification: bool = True
    max_flagged_share: float | None = 0.2
    min_median_reaction_ms: float | None = 300.0
    min_catch_accuracy: float | None = None  # the study's catch.min_accuracy where it has catch trials

    def __post_init__(self) -> None:
        if self.min_catch_accuracy is not None and not 0.0 <= self.min_catch_accuracy <= 1.0:
            raise ValueError(f"min_catch_accuracy is a share in [0, 1], not {self.min_catch_accuracy}")
        if self.max_flagged_share is not None and not 0.0 <= self.max_flagged_share <= 1.0:
            raise ValueError(f"max_flagged_share is a share in [0, 1], not {self.max_flagged_share}")
        if self.min_median_reaction_ms is not None and self.min_median_reaction_ms < 0:
            raise ValueError(f"min_median_reaction_ms must be >= 0, not {self.min_median_reaction_ms}")


def violations(stats: WorkerStats, rules: ExclusionRules) -> list[tuple[str, str]]:
    """(rule, human-readable reason) for every rule this worker breaks."""
    out: list[tuple[str, str]] = []
    if rules.failed_qualification and stats.failed_qualification:
        out.append((RULE_FAILED_QUALIFICATION, "failed the qualification"))
    if rules.max_flagged_share is not None and stats.n_answered and stats.flagged_share > rules.max_flagged_share:
        out.append(
            (
                RULE_TOO_MANY_FLAGGED,
                f"{stats.n_flagged} of {stats.n_answered} trials flagged ({stats.flagged_share:.0%} > {rules.max_flagged_share:.0%})",
            )
        )
    if (
        rules.min_median_reaction_ms is not None
        and stats.median_reaction_ms is not None
        and stats.median_reaction_ms < rules.min_median_reaction_ms
    ):
        out.append(
            (
                RULE_TOO_FAST,
                f"median reaction time {stats.median_reaction_ms:.0f} ms < {rules.min_median_reaction_ms:.0f} ms",
            )
        )
    if fails_catch(stats.catch_accuracy, rules.min_catch_accuracy):
        out.append(
            (
                RULE_FAILED_CATCH,
                f"{stats.catch_correct} of {stats.catch_total} catch trials right "
                f"({stats.catch_accuracy:.0%} < {rules.min_catch_accuracy:.0%})",
            )
        )
    return out
