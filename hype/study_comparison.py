"""Stored studies side by side: each scored as `hype score` scores it, then hype.comparison lines
them up and names the protocol differences. Used by `hype compare` and the dashboard's compare page."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from sqlalchemy.orm import Session

from hype.comparison import Comparison, StudyResult, compare, require_one_mode
from hype.models import Study
from hype.scoring import MIN_EVALUATORS_FOR_CI, ScoringError
from hype.studies import study_settings
from hype.study_scoring import score_study


def study_labels(studies: Sequence[Study]) -> list[str]:
    """Study names, with the id added where two studies share a name."""
    counts = Counter(s.name for s in studies)
    return [f"{s.name} (#{s.id})" if counts[s.name] > 1 else s.name for s in studies]


def compare_studies(session: Session, studies: Sequence[Study], *, n_resamples: int | None = None) -> Comparison:
    """Every model of every study with its CI (none below MIN_EVALUATORS_FOR_CI evaluators), in the
    order given; studies with nothing to score yet are listed with the reason."""
    require_one_mode([study_settings(s) for s in studies])
    results, unscored = [], []
    for study, label in zip(studies, study_labels(studies)):
        try:
            score = score_study(session, study, n_resamples=n_resamples)
        except ScoringError as exc:
            unscored.append(f"{label}: {exc}")
            continue
        rows = tuple(
            (r.model, r.estimate,
             r.ci_low if r.n_evaluators >= MIN_EVALUATORS_FOR_CI else None,
             r.ci_high if r.n_evaluators >= MIN_EVALUATORS_FOR_CI else None,
             r.n_evaluators)
            for r in score.leaderboard.rows
        )
        used = score.settings
        interval = f"{used.method} bootstrap, {used.confidence_level:.0%}"
        results.append(StudyResult(label, study_settings(study), rows, interval))
    return compare(results, unscored)
