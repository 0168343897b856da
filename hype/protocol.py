"""The HYPE protocol settings, in one place.

Every default here is a fact from docs/protocol.md (the paper, or a decision recorded there); a study stores
its own copy so a later change of default never rewrites a finished study. Pure: no Flask, no DB.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["hype-infinity", "hype-time"]
MODES: tuple[str, ...] = ("hype-infinity", "hype-time")


class SettingsError(ValueError):
    """A study file or form asked for settings the protocol cannot run."""


@dataclass(frozen=True)
class QualificationSettings:
    enabled: bool = True
    n_real: int = 50
    n_fake: int = 50
    pass_real: float = 0.65  # share correct needed on the real images
    pass_fake: float = 0.65  # ... and on the fake images


@dataclass(frozen=True)
class InfinitySettings:
    n_real: int = 50
    n_fake: int = 50


ADAPTIVE_RULES: tuple[str, ...] = ("threshold", "parameters")


@dataclass(frozen=True)
class TimeSettings:
    n_blocks: int = 3
    trials_per_block: int = 150  # each real or fake by a fair coin flip (hype.design)
    start_ms: float = 500.0
    min_ms: float = 100.0
    max_ms: float = 1000.0
    step_down_ms: float = 10.0  # after a correct answer (harder: shorter exposure)
    step_up_ms: float = 30.0  # after a wrong answer
    countdown_steps: int = 3
    countdown_ms: float = 500.0
    n_masks: int = 4
    mask_ms: float = 30.0
    interleave_blocks: bool = False
    # QUEST+ (hype/adaptive.py) chooses each exposure instead of the weighted staircase, and the score is
    # the posterior 75% threshold instead of the block mode [decision: not in the paper].
    adaptive: bool = False
    # What QUEST+ chooses each exposure to learn about (one of ADAPTIVE_RULES): "threshold" (the
    # threshold's marginal posterior, the psi-marginal method; the default since it measured better) or
    # "parameters" (Watson's joint posterior over threshold, slope and lapse, the default before). A
    # setting, not a constant, because it decides which exposures workers see: a study keeps the rule
    # it was published with whatever the default becomes (migration `qrule`).
    adaptive_rule: str = "threshold"


@dataclass(frozen=True)
class PaySettings:
    base_usd: float = 1.00
    bonus_per_correct_usd: float = 0.02


@dataclass(frozen=True)
class StatisticsSettings:
    n_resamples: int = 10_000
    confidence_level: float = 0.95
    exclude_flagged_trials: bool = True
    score_on_measured_exposure: bool = False  # the paper scored the requested ms


@dataclass(frozen=True)
class CatchSettings:
    """Catch trials [decision: not in the paper]: obviously degraded fakes (made by hype from the model's
    own fakes, hype.images.degraded_catch_image) and clean reals, mixed into the task and never scored.
    A worker's share right on them shows whether they looked at all (docs/protocol.md, Catch trials)."""

    n_fake: int = 0  # degraded fakes per worker; 0 and n_real 0: no catch trials
    n_real: int = 0  # clean reals per worker
    # Evaluators right on fewer catch trials than this share are left out of scores (and proposed for
    # exclusion on the dashboard); 0 switches the rule off.
    min_accuracy: float = 0.8

    @property
    def enabled(self) -> bool:
        return self.n_fake + self.n_real > 0


# At most this share of a worker's task may be catch trials: they cost the researcher pay and time
# and measure nothing about the models.
MAX_CATCH_SHARE = 0.2


@dataclass(frozen=True)
class RecruitmentSettings:
    """How the platform fills each model's evaluator slots while a study runs; unlike the protocol
    settings these may change after publishing (they decide who is taken next, not what anyone sees)."""

    # A session with no answer (or other step) for this long, on the server's clock, is abandoned:
    # it stops holding a slot and cannot be resumed. [decision]
    idle_timeout_minutes: float = 30.0
    # Close the study by itself once every model has its valid evaluators.
    close_when_complete: bool = False


@dataclass(frozen=True)
class StoppingSettings:
    """Stop recruiting for a model once its interval is narrow enough, and give its slots to the
    models still collecting (hype.stopping; may change after publishing, like the target). The
    evaluators per model stay the cap. [decision: not in the paper]"""

    # Target 95% CI half-width per model: percentage points of error rate (HYPE-infinity) or ms
    # (HYPE-time); 0 = no target.
    target_halfwidth: float = 0.0
    # Stop a model once its interval is clear of every other model's.
    until_models_separate: bool = False
    # No model stops before this many valid evaluators (coverage is measured from 10 on).
    min_evaluators: int = 10


@dataclass(frozen=True)
class StudySettings:
    mode: Mode = "hype-infinity"
    seed: int = 0
    evaluators_per_model: int = 30
    qualification: QualificationSettings = field(default_factory=QualificationSettings)
    infinity: InfinitySettings = field(default_factory=InfinitySettings)
    time: TimeSettings = field(default_factory=TimeSettings)
    pay: PaySettings = field(default_factory=PaySettings)
    statistics: StatisticsSettings = field(default_factory=StatisticsSettings)
    catch: CatchSettings = field(default_factory=CatchSettings)
    recruitment: RecruitmentSettings = field(default_factory=RecruitmentSettings)
    stopping: StoppingSettings = field(default_factory=StoppingSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "StudySettings":
        """Build settings from a (possibly partial) nested dict; unknown keys are an error, not ignored,
        so a typo in a study file never silently runs the default protocol."""
        settings = _build(cls, data or {}, path="")
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.mode not in MODES:
            raise SettingsError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        q, inf, t = self.qualification, self.infinity, self.time
        for name, value in (
            ("qualification.n_real", q.n_real),
            ("qualification.n_fake", q.n_fake),
            ("infinity.n_real", inf.n_real),
            ("infinity.n_fake", inf.n_fake),
        ):
            if value < 0:
                raise SettingsError(f"{name} must be >= 0, not {value}")
        if inf.n_real + inf.n_fake < 2:
            raise SettingsError("infinity needs at least 2 trials")
        for name, value in (("qualification.pass_real", q.pass_real), ("qualification.pass_fake", q.pass_fake)):
            if not 0.0 <= value <= 1.0:
                raise SettingsError(f"{name} is a share in [0, 1], not {value}")
        if t.n_blocks < 1 or t.trials_per_block < 2 or t.trials_per_block % 2:
            raise SettingsError("time needs n_blocks >= 1 and an even trials_per_block >= 2 (half real, half fake)")
        if not 0 < t.min_ms <= t.start_ms <= t.max_ms:
            raise SettingsError("time needs 0 < min_ms <= start_ms <= max_ms")
        if t.step_down_ms <= 0 or t.step_up_ms <= 0:
            raise SettingsError("time step sizes must be > 0")
        if t.adaptive_rule not in ADAPTIVE_RULES:
            raise SettingsError(f"time.adaptive_rule must be one of {', '.join(ADAPTIVE_RULES)}, not {t.adaptive_rule!r}")
        if self.evaluators_per_model < 1:
            raise SettingsError("evaluators_per_model must be >= 1")
        if not 1.0 <= self.recruitment.idle_timeout_minutes <= 7 * 24 * 60:
            raise SettingsError("recruitment.idle_timeout_minutes must be between 1 and 10080 (a week)")
        self._validate_stopping()
        if not 0.5 < self.statistics.confidence_level < 1.0:
            raise SettingsError("statistics.confidence_level must be in (0.5, 1)")
        if self.statistics.n_resamples < 100:
            raise SettingsError("statistics.n_resamples must be >= 100")
        self._validate_catch()

    def _validate_catch(self) -> None:
        c = self.catch
        if c.n_fake < 0 or c.n_real < 0:
            raise SettingsError("catch.n_fake and catch.n_real must be >= 0")
        if not 0.0 <= c.min_accuracy <= 1.0:
            raise SettingsError(f"catch.min_accuracy is a share in [0, 1], not {c.min_accuracy}")
        real, fake = self.task_counts()
        most = int(MAX_CATCH_SHARE * (real + fake))
        if c.n_fake + c.n_real > most:
            raise SettingsError(f"catch trials may be at most {MAX_CATCH_SHARE:.0%} of the task's {real + fake} "
                                f"trials ({most}), not {c.n_fake + c.n_real}")
        if self.mode == "hype-infinity" and c.enabled and (inf := self.infinity).n_real * c.n_fake != inf.n_fake * c.n_real:
            # Workers are told the task's ratio of reals to fakes; catch trials must keep it.
            raise SettingsError(f"catch.n_real : catch.n_fake must keep the task's ratio of reals to fakes "
                                f"({inf.n_real} : {inf.n_fake}), which workers are told")

    def _validate_stopping(self) -> None:
        s = self.stopping
        unit, most = ("percentage points", 50.0) if self.mode == "hype-infinity" else ("ms", self.time.max_ms)
        if not 0.0 <= s.target_halfwidth < most:
            raise SettingsError(f"stopping.target_halfwidth is a half-width in {unit} between 0 (no target) and "
                                f"{most:g}, not {s.target_halfwidth:g}")
        if s.min_evaluators < 10:
            raise SettingsError("stopping.min_evaluators must be >= 10: the coverage of stopped estimates is "
                                f"measured from 10 evaluators on (experiments/stopping.md), not {s.min_evaluators}")
        if (s.target_halfwidth or s.until_models_separate) and s.min_evaluators > self.evaluators_per_model:
            raise SettingsError(f"stopping.min_evaluators ({s.min_evaluators}) cannot exceed evaluators_per_model "
                                f"({self.evaluators_per_model}), which is the most any model gets")

    def target_halfwidth_score(self) -> float | None:
        """The target half-width in the score's own units (error rate as a share, or ms); None when unset."""
        t = self.stopping.target_halfwidth
        if not t:
            return None
        return t / 100.0 if self.mode == "hype-infinity" else t

    # Derived counts, so pools can be checked against what a study will draw.
    def task_counts(self) -> tuple[int, int]:
        """(real, fake) images one evaluator sees in the task proper; for HYPE-time the expected
        counts (its labels are coin flips, see hype.design)."""
        if self.mode == "hype-infinity":
            return self.infinity.n_real, self.infinity.n_fake
        half = self.time.trials_per_block // 2
        return half * self.time.n_blocks, half * self.time.n_blocks

    def catch_counts(self) -> tuple[int, int]:
        """(clean real, degraded fake) catch trials each evaluator sees besides the task proper."""
        return self.catch.n_real, self.catch.n_fake

    def task_trials_shown(self) -> int:
        """Images a worker judges in the task, catch trials included: what the worker is told, since
        nothing may tell a catch trial apart."""
        real, fake = self.task_counts()
        return real + fake + self.catch.n_real + self.catch.n_fake

    def qualification_counts(self) -> tuple[int, int]:
        if not self.qualification.enabled:
            return 0, 0
        return self.qualification.n_real, self.qualification.n_fake


def _build(cls: type, data: dict[str, Any], path: str) -> Any:
    if not isinstance(data, dict):
        raise SettingsError(f"{path or 'settings'} must be a mapping, not {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f" in {path}" if path else ""
        raise SettingsError(f"unknown setting(s){where}: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        f = fields[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        full = f"{path}.{name}" if path else name
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, full)
        else:
            kwargs[name] = _coerce(value, default, full)
    return cls(**kwargs)


def _coerce(value: Any, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SettingsError(f"{name} must be true or false, not {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{name} must be an integer, not {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{name} must be a number, not {value!r}")
        return float(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise SettingsError(f"{name} must be a string, not {value!r}")
    return value
