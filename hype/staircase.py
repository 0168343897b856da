"""Adaptive up-down staircases for HYPE-time, as pure functions over immutable state.

Why functional: the web server answers one trial per request and stores the staircase in the database
after every answer, so the state must be a plain value that round-trips through JSON and can be
replayed; nothing here may hold a live object between requests.

The rules are PsychoPy's ``StairHandler`` (transformed n-down / m-up rules after Levitt 1971, step sizes
that change at reversals, the 1-up/1-down "initial rule", the stop rule), so a study configured like a
PsychoPy staircase presents the same intensities for the same answers, float for float. On top of
that, the step going up may differ from the step going down (weighted up-down, Kaernbach 1991), which
is how the HYPE default (-10 ms after a correct answer, +30 ms after a wrong one) targets 75% correct
with a 1-up/1-down rule. A correct answer makes the task harder: the intensity (ms) goes down.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:  # only for the type hint; any object with these attributes will do
    from hype.protocol import TimeSettings

STEP_TYPES: tuple[str, ...] = ("lin", "log", "db")
DIRECTIONS: tuple[str, ...] = ("start", "up", "down")


def _steps(value: float | Iterable[float], name: str) -> tuple[float, ...]:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, (str, bytes)) or value is None:
        raise ValueError(f"{name} must be a number or a list of numbers, not {value!r}")
    else:
        try:
            items = list(value)  # type: ignore[arg-type]
        except TypeError:
            raise ValueError(f"{name} must be a number or a list of numbers, not {value!r}") from None
    if not items:
        raise ValueError(f"{name} must not be empty")
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Real) or not math.isfinite(item):
            raise ValueError(f"{name} must be finite numbers, got {item!r}")
        if item <= 0:
            raise ValueError(f"{name} must be > 0 (the rule sets the direction, not the sign), got {item!r}")
        out.append(float(item))
    return tuple(out)


def _count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _bound(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"{name} must be a number or None, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class StaircaseConfig:
    """How a staircase moves and when it stops; stored with the study so a run can be replayed.

    ``step_sizes`` are the steps going down (and up, unless ``up_step_sizes`` is given); entry k is used
    after the k-th reversal, the last entry beyond the list. ``n_trials`` and ``n_reversals`` are
    minimums that must both be met before the staircase is finished (PsychoPy's stop rule).
    """

    start_val: float
    step_sizes: tuple[float, ...]
    up_step_sizes: tuple[float, ...] | None = None
    step_type: str = "lin"
    n_down: int = 1
    n_up: int = 1
    min_val: float | None = None
    max_val: float | None = None
    n_trials: int = 0
    n_reversals: int = 0
    apply_initial_rule: bool = False

    def __post_init__(self) -> None:
        # Normalise here so every constructor (and from_dict) gets the same checks and the same floats.
        set_ = object.__setattr__
        step_type = self.step_type.lower() if isinstance(self.step_type, str) else self.step_type
        if step_type not in STEP_TYPES:
            raise ValueError(f"step_type must be one of {', '.join(STEP_TYPES)}, not {self.step_type!r}")
        set_(self, "step_type", step_type)
        set_(self, "step_sizes", _steps(self.step_sizes, "step_sizes"))
        if self.up_step_sizes is not None:
            up = _steps(self.up_step_sizes, "up_step_sizes")
            if len(up) != len(self.step_sizes):
                raise ValueError(
                    f"up_step_sizes needs one entry per step size ({len(self.step_sizes)}), got {len(up)}"
                )
            set_(self, "up_step_sizes", up)
        set_(self, "n_down", _count(self.n_down, "n_down", 1))
        set_(self, "n_up", _count(self.n_up, "n_up", 1))
        set_(self, "n_trials", _count(self.n_trials, "n_trials", 0))
        set_(self, "n_reversals", _count(self.n_reversals, "n_reversals", 0))
        if self.n_trials == 0 and self.n_reversals == 0:
            raise ValueError("a staircase needs a stop rule: n_trials > 0 or n_reversals > 0")
        if not isinstance(self.apply_initial_rule, bool):
            raise ValueError(f"apply_initial_rule must be true or false, not {self.apply_initial_rule!r}")
        min_val, max_val = _bound(self.min_val, "min_val"), _bound(self.max_val, "max_val")
        if min_val is not None and max_val is not None and min_val > max_val:
            raise ValueError(f"min_val ({min_val}) must not be greater than max_val ({max_val})")
        set_(self, "min_val", min_val)
        set_(self, "max_val", max_val)
        start = self.start_val
        if isinstance(start, bool) or not isinstance(start, numbers.Real) or not math.isfinite(start):
            raise ValueError(f"start_val must be a finite number, not {start!r}")
        if (min_val is not None and start < min_val) or (max_val is not None and start > max_val):
            raise ValueError(f"start_val ({start}) must lie within [min_val, max_val] = [{min_val}, {max_val}]")
        if step_type != "lin" and start <= 0:
            raise ValueError(f"start_val must be > 0 for {step_type} steps (they multiply), got {start}")
        set_(self, "start_val", float(start))

    # -- constructors ---------------------------------------------------------------------------------

    @classmethod
    def psychopy(
        cls,
        start_val: float,
        step_sizes: float | Sequence[float] = 4,
        n_up: int = 1,
        n_down: int = 3,
        step_type: str = "db",
        min_val: float | None = None,
        max_val: float | None = None,
        n_reversals: int | None = None,
        n_trials: int = 0,
        apply_initial_rule: bool = True,
    ) -> "StaircaseConfig":
        """The arguments and defaults of PsychoPy's ``StairHandler``, so a PsychoPy design ports 1:1.

        Like PsychoPy, the required reversals are raised to the number of step sizes, otherwise the
        staircase could stop before it has used its smallest step.
        """
        steps = _steps(step_sizes, "step_sizes")
        if n_reversals is None:
            n_reversals = len(steps)
        else:
            n_reversals = max(_count(n_reversals, "n_reversals", 0), len(steps))
        return cls(
            start_val=start_val,
            step_sizes=steps,
            step_type=step_type,
            n_down=n_down,
            n_up=n_up,
            min_val=min_val,
            max_val=max_val,
            n_trials=n_trials,
            n_reversals=n_reversals,
            apply_initial_rule=apply_initial_rule,
        )

    @classmethod
    def weighted(
        cls,
        start_val: float,
        down_step: float | Sequence[float],
        up_step: float | Sequence[float] | None = None,
        *,
        up_ratio: float | None = None,
        step_type: str = "lin",
        n_down: int = 1,
        n_up: int = 1,
        min_val: float | None = None,
        max_val: float | None = None,
        n_trials: int = 0,
        n_reversals: int = 0,
        apply_initial_rule: bool = False,
    ) -> "StaircaseConfig":
        """Weighted up-down (Kaernbach 1991): the up step is given outright or as a multiple of the down
        step, because the ratio is what sets the target: p(correct) = up / (up + down)."""
        down = _steps(down_step, "down_step")
        if (up_step is None) == (up_ratio is None):
            raise ValueError("give exactly one of up_step and up_ratio")
        if up_step is not None:
            up = _steps(up_step, "up_step")
        else:
            if isinstance(up_ratio, bool) or not isinstance(up_ratio, numbers.Real) or not up_ratio > 0:
                raise ValueError(f"up_ratio must be a number > 0, not {up_ratio!r}")
            up = tuple(step * up_ratio for step in down)
        return cls(
            start_val=start_val,
            step_sizes=down,
            up_step_sizes=up,
            step_type=step_type,
            n_down=n_down,
            n_up=n_up,
            min_val=min_val,
            max_val=max_val,
            n_trials=n_trials,
            n_reversals=n_reversals,
            apply_initial_rule=apply_initial_rule,
        )

    @classmethod
    def from_time_settings(cls, time_settings: "TimeSettings") -> "StaircaseConfig":
        """One HYPE-time block: a weighted 1-up/1-down staircase in ms that stops after the block's
        trials; reversals are not a stop rule because HYPE fixes the block length."""
        t = time_settings
        return cls.weighted(
            start_val=t.start_ms,
            down_step=t.step_down_ms,
            up_step=t.step_up_ms,
            min_val=t.min_ms,
            max_val=t.max_ms,
            n_trials=t.trials_per_block,
        )

    @classmethod
    def hype_default(cls) -> "StaircaseConfig":
        """The protocol's defaults (docs/protocol.md §HYPE-time), taken from hype.protocol so the numbers
        live in one place."""
        from hype.protocol import TimeSettings

        return cls.from_time_settings(TimeSettings())

    # -- storage --------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["step_sizes"] = list(self.step_sizes)
        data["up_step_sizes"] = None if self.up_step_sizes is None else list(self.up_step_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StaircaseConfig":
        """Unknown keys are an error so a typo in a stored study never silently runs a default."""
        if not isinstance(data, dict):
            raise ValueError(f"a staircase config must be a mapping, not {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown staircase setting(s): {', '.join(unknown)}")
        missing = sorted(n for n in ("start_val", "step_sizes") if n not in data)
        if missing:
            raise ValueError(f"staircase config lacks {', '.join(missing)}")
        return cls(**data)

    # -- derived --------------------------------------------------------------------------------------

    def down_step(self, n_reversals: int) -> float:
        return self.step_sizes[min(n_reversals, len(self.step_sizes) - 1)]

    def up_step(self, n_reversals: int) -> float:
        steps = self.step_sizes if self.up_step_sizes is None else self.up_step_sizes
        return steps[min(n_reversals, len(steps) - 1)]


_PLAIN_NUMBERS = frozenset((int, float))
_BOOL = frozenset((bool,))
_INT = frozenset((int,))


@dataclass(frozen=True)
class StaircaseState:
    """Everything needed to continue a staircase. ``intensity`` is what the next trial presents;
    ``run`` counts consecutive correct (> 0) or wrong (< 0) answers since the last move, which is what
    the n-down / m-up rule looks at."""

    intensity: float
    intensities: tuple[float, ...] = ()
    responses: tuple[bool, ...] = ()
    reversal_intensities: tuple[float, ...] = ()
    reversal_trials: tuple[int, ...] = ()
    direction: str = "start"
    run: int = 0

    @property
    def n_trials(self) -> int:
        return len(self.responses)

    @property
    def n_reversals(self) -> int:
        return len(self.reversal_intensities)

    def to_dict(self) -> dict[str, Any]:
        return {
            "intensity": self.intensity,
            "intensities": list(self.intensities),
            "responses": list(self.responses),
            "reversal_intensities": list(self.reversal_intensities),
            "reversal_trials": list(self.reversal_trials),
            "direction": self.direction,
            "run": self.run,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StaircaseState":
        """Checks the stored record for internal consistency, because a corrupted row would otherwise
        steer a live evaluator's exposure times without anyone noticing."""
        if not isinstance(data, dict):
            raise ValueError(f"a staircase state must be a mapping, not {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        if set(data) != set(names):
            extra, lacking = sorted(set(data) - set(names)), sorted(set(names) - set(data))
            raise ValueError(f"staircase state keys differ: unknown {extra}, missing {lacking}")

        # Read on every HYPE-time answer, over the block's whole history: the usual stored lists (JSON's
        # own int, float and bool) pass on one set of their types; anything else gets the full check.
        def numbers(key: str) -> tuple[float, ...]:
            values = data[key]
            if not isinstance(values, list) or not (set(map(type, values)) <= _PLAIN_NUMBERS or not any(
                isinstance(v, bool) or not isinstance(v, (int, float)) for v in values
            )):
                raise ValueError(f"staircase state {key} must be a list of numbers")
            return tuple(map(float, values))

        responses = data["responses"]
        if not isinstance(responses, list) or not set(map(type, responses)) <= _BOOL:  # bool has no subclasses
            raise ValueError("staircase state responses must be a list of true/false")
        trials = data["reversal_trials"]
        if not isinstance(trials, list) or not (set(map(type, trials)) <= _INT or not any(
                isinstance(t, bool) or not isinstance(t, int) for t in trials)):
            raise ValueError("staircase state reversal_trials must be a list of integers")
        intensity = data["intensity"]
        if isinstance(intensity, bool) or not isinstance(intensity, (int, float)):
            raise ValueError("staircase state intensity must be a number")
        run = data["run"]
        if isinstance(run, bool) or not isinstance(run, int):
            raise ValueError("staircase state run must be an integer")
        if data["direction"] not in DIRECTIONS:
            raise ValueError(f"staircase state direction must be one of {', '.join(DIRECTIONS)}")
        state = cls(
            intensity=float(intensity),
            intensities=numbers("intensities"),
            responses=tuple(responses),
            reversal_intensities=numbers("reversal_intensities"),
            reversal_trials=tuple(trials),
            direction=data["direction"],
            run=run,
        )
        if len(state.intensities) != len(state.responses):
            raise ValueError("staircase state has a different number of intensities and responses")
        if len(state.reversal_trials) != len(state.reversal_intensities):
            raise ValueError("staircase state has a different number of reversal trials and intensities")
        n_trials = state.n_trials
        if any(not 0 <= t < n_trials for t in state.reversal_trials) or list(state.reversal_trials) != sorted(
            set(state.reversal_trials)
        ):
            raise ValueError("staircase state reversal_trials must be increasing trial indices")
        return state


def start(cfg: StaircaseConfig) -> StaircaseState:
    return StaircaseState(intensity=cfg.start_val)


def is_finished(cfg: StaircaseConfig, state: StaircaseState) -> bool:
    """Both minimums must be met (PsychoPy's rule), so a staircase that has not yet settled keeps going
    past n_trials until it has reversed often enough."""
    return state.n_reversals >= cfg.n_reversals and state.n_trials >= cfg.n_trials


def update(cfg: StaircaseConfig, state: StaircaseState, correct: bool) -> StaircaseState:
    """Record the answer to the trial shown at ``state.intensity`` and return the state for the next trial.

    The move decided on this trial already uses the step size that belongs to the reversal count after
    this trial, as in PsychoPy: a reversal shrinks the very step it causes.
    """
    if isinstance(correct, (bool, np.bool_)):
        ok = bool(correct)
    elif isinstance(correct, numbers.Integral) and correct in (0, 1):  # PsychoPy's 1 / 0
        ok = bool(correct)
    else:
        raise ValueError(f"correct must be true/false (or 1/0), not {correct!r}")
    if is_finished(cfg, state):
        raise ValueError(f"the staircase is finished after {state.n_trials} trials; start a new one")

    run = max(state.run, 0) + 1 if ok else min(state.run, 0) - 1
    if cfg.apply_initial_rule and not state.reversal_intensities:
        move: str | None = "down" if ok else "up"  # 1-down/1-up until the first reversal
    elif run >= cfg.n_down:
        move = "down"
    elif run <= -cfg.n_up:
        move = "up"
    else:
        move = None

    reversal_intensities, reversal_trials = state.reversal_intensities, state.reversal_trials
    if move is not None and state.direction != "start" and move != state.direction:
        reversal_intensities += (state.intensity,)
        reversal_trials += (state.n_trials,)

    intensity, direction = state.intensity, state.direction
    if move is not None:
        n_rev = len(reversal_intensities)
        intensity = _move(cfg, intensity, move, cfg.down_step(n_rev) if move == "down" else cfg.up_step(n_rev))
        direction, run = move, 0

    return replace(
        state,
        intensity=intensity,
        intensities=state.intensities + (state.intensity,),
        responses=state.responses + (ok,),
        reversal_intensities=reversal_intensities,
        reversal_trials=reversal_trials,
        direction=direction,
        run=run,
    )


def replay(cfg: StaircaseConfig, responses: Iterable[bool]) -> StaircaseState:
    """Rebuild a state from the stored answers alone, e.g. to audit a stored state."""
    state = start(cfg)
    for correct in responses:
        state = update(cfg, state, correct)
    return state


def _move(cfg: StaircaseConfig, value: float, move: str, step: float) -> float:
    # Same float operations, in the same order, as PsychoPy, so sequences match to the last bit.
    if cfg.step_type == "lin":
        value = value - step if move == "down" else value + step
    else:
        factor = 10.0 ** (step / 20.0) if cfg.step_type == "db" else 10.0**step
        value = value / factor if move == "down" else value * factor
    if cfg.min_val is not None and value < cfg.min_val:
        value = cfg.min_val
    if cfg.max_val is not None and value > cfg.max_val:
        value = cfg.max_val
    return value


def target_probability(cfg: StaircaseConfig) -> float:
    """The p(correct) the staircase settles at, from its final steps.

    It settles where the expected move is zero: P(down move) * down = P(up move) * up, where a down
    move needs a run of n_down correct answers before a run of n_up wrong ones. Weighted 1/1 gives
    up / (up + down); equal steps with n-down/1-up give 0.5 ** (1 / n) (Levitt 1971). For dB and log
    steps the balance holds in log units, so the same formula applies to the step sizes as given.
    """
    down, up = cfg.step_sizes[-1], cfg.up_step(len(cfg.step_sizes))
    n, m = cfg.n_down, cfg.n_up
    share = up / (up + down)  # the P(down move) that balances the steps
    if m == 1:
        return share ** (1.0 / n)
    if n == 1:
        return 1.0 - (1.0 - share) ** (1.0 / m)

    def p_down(p: float) -> float:
        # Probability that a run of n successes comes before a run of m failures (fresh start).
        q = 1.0 - p
        a, b = p ** (n - 1), q ** (m - 1)
        return a * (1.0 - q**m) / (a + b - a * b)

    lo, hi = 0.0, 1.0
    for _ in range(200):  # p_down rises monotonically from 0 to 1; bisect to machine precision
        mid = (lo + hi) / 2.0
        if p_down(mid) < share:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return (lo + hi) / 2.0
