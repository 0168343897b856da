"""How long a session takes and what it pays per hour: the one place for these estimates.

The consent page, the new-study form, the study page and the Prolific/MTurk listings all quote time
and pay from here, so a worker is never told one figure and the platform another. Pure: no Flask,
no DB.

The per-trial seconds are planning figures, not measurements: an untimed judgment (qualification,
HYPE-∞) takes about 3 s; a HYPE-time trial about 4.5 s (1.5 s countdown, the exposure and masks,
the answer, the feedback). With the paper's defaults that is about 10 minutes for HYPE-∞ and about
39 minutes for HYPE-time. Once workers have finished, their measured median session time replaces
the estimate (`measured_rate`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable

from hype.protocol import StudySettings

SECONDS_PER_UNTIMED_TRIAL = 3.0
SECONDS_PER_TIMED_TRIAL = 4.5
# Prolific's minimum reward per hour for a study (its researcher help, 2024: £6.00 / $8.00 an hour).
# A setting (HYPE_MIN_HOURLY_USD) overrides it; Prolific recommends paying more.
DEFAULT_MIN_HOURLY_USD = 8.00
# The bonus a worker can count on: correct answers at chance (half of the task). A floor, since
# everyone answering at all gets about this many right.
FLOOR_SHARE_CORRECT = 0.5


@dataclass(frozen=True)
class PayEstimate:
    """Time and pay of one session, and what they make per hour."""

    minutes: float  # expected session length
    base_usd: float  # paid to everyone who finishes (qualification failures included)
    bonus_per_correct_usd: float
    task_trials: int
    floor_bonus_usd: float  # bonus at chance level
    max_bonus_usd: float  # bonus if every task answer is right
    source: str  # "estimate" (from trial counts) or "measured" (median of finished sessions)
    n_sessions: int = 0  # sessions the measured figure rests on

    @property
    def rounded_minutes(self) -> int:
        """Whole minutes, rounded up: what the consent page and the platforms state."""
        return max(1, math.ceil(self.minutes - 1e-9))

    @property
    def base_hourly_usd(self) -> float:
        """Base pay per stated hour: what Prolific checks against its minimum (bonuses do not count;
        Prolific divides by the whole minutes the study states, so this does too)."""
        return self.base_usd * 60.0 / self.rounded_minutes

    @property
    def floor_hourly_usd(self) -> float:
        """Base plus the chance-level bonus, per hour: what nearly every worker earns at least."""
        return (self.base_usd + self.floor_bonus_usd) * 60.0 / self.rounded_minutes

    @property
    def max_hourly_usd(self) -> float:
        return (self.base_usd + self.max_bonus_usd) * 60.0 / self.rounded_minutes

    def below_minimum(self, min_hourly_usd: float) -> bool:
        return self.base_hourly_usd < min_hourly_usd - 1e-9

    def warning(self, min_hourly_usd: float) -> str | None:
        """A sentence for the researcher when base pay falls below the minimum hourly rate."""
        if not self.below_minimum(min_hourly_usd):
            return None
        needed = min_hourly_usd * self.rounded_minutes / 60.0
        return (
            f"Base pay ${self.base_usd:.2f} for about {self.rounded_minutes} minutes is ${self.base_hourly_usd:.2f} an hour, "
            f"below the minimum of ${min_hourly_usd:.2f} an hour; raise the base pay to at least ${math.ceil(needed * 100) / 100:.2f}."
        )


def trial_counts(settings: StudySettings) -> tuple[int, int]:
    """(untimed, timed) trials one session runs: qualification and HYPE-∞ trials are untimed."""
    q_real, q_fake = settings.qualification_counts()
    task = settings.task_trials_shown()  # catch trials included: the worker judges them too
    if settings.mode == "hype-time":
        return q_real + q_fake, task
    return q_real + q_fake + task, 0


def estimated_minutes(settings: StudySettings) -> float:
    untimed, timed = trial_counts(settings)
    return (untimed * SECONDS_PER_UNTIMED_TRIAL + timed * SECONDS_PER_TIMED_TRIAL) / 60.0


def _estimate(settings: StudySettings, minutes: float, source: str, n_sessions: int = 0) -> PayEstimate:
    task = settings.task_trials_shown()  # catch answers earn the bonus like any: workers cannot tell them
    rate = settings.pay.bonus_per_correct_usd
    return PayEstimate(
        minutes=minutes,
        base_usd=settings.pay.base_usd,
        bonus_per_correct_usd=rate,
        task_trials=task,
        floor_bonus_usd=round(rate * math.floor(task * FLOOR_SHARE_CORRECT), 2),
        max_bonus_usd=round(rate * task, 2),
        source=source,
        n_sessions=n_sessions,
    )


def expected_pay(settings: StudySettings) -> PayEstimate:
    """Time and pay from the protocol's trial counts, before anyone has worked."""
    return _estimate(settings, estimated_minutes(settings), "estimate")


def measured_pay(settings: StudySettings, session_seconds: Iterable[float]) -> PayEstimate | None:
    """Time and pay from the median measured length of finished sessions (None until there are any)."""
    values = [s for s in session_seconds if s is not None and s > 0]
    if not values:
        return None
    return _estimate(settings, statistics.median(values) / 60.0, "measured", len(values))


MIN_MEASURED_SESSIONS = 5  # fewer finished sessions than this say little about the typical worker


def stated_pay(settings: StudySettings, session_seconds: Iterable[float]) -> PayEstimate:
    """What workers are told and the dashboard shows: the measured median once enough workers have
    finished, the estimate from trial counts before that."""
    measured = measured_pay(settings, session_seconds)
    if measured is not None and measured.n_sessions >= MIN_MEASURED_SESSIONS:
        return measured
    return expected_pay(settings)


def bonus_usd(n_correct: int, bonus_per_correct_usd: float) -> float:
    """The bonus one worker is owed, rounded to the cent (the unit both platforms pay in)."""
    return round(n_correct * bonus_per_correct_usd + 1e-9, 2)


def cents(usd: float) -> int:
    return int(round(usd * 100))
