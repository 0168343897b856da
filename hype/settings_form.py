"""The study-settings form, generated from hype.protocol so that every setting a study file can set is
also a form field, with the same validation (StudySettings.from_dict). Pure: no Flask, no DB.

A field is named after its settings path with dots as underscores ("time.step_up_ms" ->
"time_step_up_ms"); the form only adds a label, a unit and a sentence of help. A setting added to
hype.protocol appears in the form without any change here (with a label made from its name).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from hype.protocol import SettingsError, StudySettings

# Chosen when a study is created and fixed afterwards (mode decides the pools' use, seed the draws).
CREATE_ONLY = ("mode", "seed")
# Settings that take one of a few names rather than a number: path -> (value, what the form shows).
CHOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "time.adaptive_rule": (("threshold", "the threshold only"), ("parameters", "threshold, slope, lapse")),
}
# What may still change once a worker has started: the target and the pay. Anything else would mean
# that evaluators of one study ran different protocols.
# How workers are recruited may change too: it decides who is taken next, not what anyone sees.
EDITABLE_WHILE_RUNNING = (
    "evaluators_per_model",
    "pay.base_usd",
    "pay.bonus_per_correct_usd",
    "recruitment.idle_timeout_minutes",
    "recruitment.close_when_complete",
    "stopping.target_halfwidth",
    "stopping.until_models_separate",
    "stopping.min_evaluators",
    # Whom scoring leaves out, not what anyone sees (and every score names the threshold it used).
    "catch.min_accuracy",
)

# Task sections that one mode only uses: the other mode's section is neither shown (the new-study form
# hides it once a mode is chosen, the settings page never shows it) nor read from a submitted form.
MODE_SECTIONS: dict[str, str] = {"infinity": "hype-infinity", "time": "hype-time"}

SECTIONS: dict[str, str] = {
    "": "Study",
    "qualification": "Qualification",
    "infinity": "HYPE-∞ task",
    "time": "HYPE-time task",
    "pay": "Pay",
    "statistics": "Statistics",
    "catch": "Catch trials",
    "recruitment": "Recruitment",
    "stopping": "Stop at a target certainty",
}

# path -> (label, unit, help)
LABELS: dict[str, tuple[str, str, str]] = {
    "evaluators_per_model": ("Evaluators per model (target)", "", "The paper's CIs settled at about 30."),
    "qualification.enabled": ("Qualification before the task", "", "Switch off only for pilots."),
    "qualification.n_real": ("Real images", "", ""),
    "qualification.n_fake": ("Fake images", "", "Drawn equally from every model."),
    "qualification.pass_real": ("Pass mark on real images", "share", "0.65 = 65% right needed."),
    "qualification.pass_fake": ("Pass mark on fake images", "share", ""),
    "infinity.n_real": ("Real images", "", ""),
    "infinity.n_fake": ("Fake images", "", ""),
    "time.n_blocks": ("Blocks (staircases)", "", "A pause is offered between blocks."),
    "time.trials_per_block": ("Trials per block", "", "Even: half real, half fake."),
    "time.start_ms": ("Start exposure", "ms", ""),
    "time.min_ms": ("Shortest exposure", "ms", ""),
    "time.max_ms": ("Longest exposure", "ms", ""),
    "time.step_down_ms": ("Step after a right answer", "ms", "Shorter exposure."),
    "time.step_up_ms": ("Step after a wrong answer", "ms", "Longer exposure; 10 / 30 settles at 75% right."),
    "time.countdown_steps": ("Countdown numbers", "", ""),
    "time.countdown_ms": ("Countdown per number", "ms", ""),
    "time.n_masks": ("Masks after the image", "", ""),
    "time.mask_ms": ("Mask duration", "ms", ""),
    "time.interleave_blocks": ("Interleave the blocks", "", "Off: one block after the other, as in the paper."),
    "time.adaptive": ("Adaptive exposures (QUEST+)", "", "Off: the paper's staircase. On: fewer trials for the same certainty."),
    "time.adaptive_rule": ("QUEST+ chooses each exposure to learn", "",
                           "Threshold only (psi-marginal, the default) measured closer to each evaluator's true threshold "
                           "than Watson's rule, which also learns slope and lapse (experiments/adaptive_time.md)."),
    "pay.base_usd": ("Base pay", "USD", "For the qualification."),
    "pay.bonus_per_correct_usd": ("Bonus per right answer", "USD", ""),
    "statistics.n_resamples": ("Bootstrap resamples", "", ""),
    "statistics.confidence_level": ("Confidence level", "share", "0.95 = 95% intervals."),
    "statistics.exclude_flagged_trials": ("Leave flagged trials out of scores", "", "Exposure off by over a frame, or focus lost."),
    "statistics.score_on_measured_exposure": ("Score on the measured exposure", "", "Off: on the requested one, as the paper did."),
    "catch.n_fake": ("Degraded fakes per worker", "", "Obviously degraded copies of the model's fakes, never scored. 0 and 0: none."),
    "catch.n_real": ("Clean reals per worker", "", "HYPE-∞: keep the task's ratio of reals to fakes."),
    "catch.min_accuracy": ("Least share right on catch trials", "share",
                           "0.8 = workers below 80% right on them are left out of scores; 0 = keep everyone."),
    "recruitment.idle_timeout_minutes": ("Abandon a session idle for", "min",
                                         "It then holds no slot and cannot be resumed."),
    "recruitment.close_when_complete": ("Close the study when complete", "",
                                        "Once every model has its valid evaluators."),
    "stopping.target_halfwidth": ("Target CI half-width per model", "points or ms",
                                  "Percentage points of error rate (HYPE-∞) or ms (HYPE-time); 0 = collect the "
                                  "evaluators per model. A model stops once its interval is this narrow."),
    "stopping.until_models_separate": ("Stop a model once it separates", "",
                                       "Once its interval is clear of every other model's."),
    "stopping.min_evaluators": ("Fewest evaluators before stopping", "",
                                "At least 10: stopped intervals keep 93–97% coverage (experiments/stopping.md)."),
}


@dataclass(frozen=True)
class FormField:
    path: str  # "time.step_up_ms"
    kind: type  # bool, int or float
    default: Any
    label: str
    unit: str
    help: str
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) where the setting is one of a few names

    @property
    def is_bool(self) -> bool:
        return self.kind is bool

    @property
    def name(self) -> str:
        return self.path.replace(".", "_")

    @property
    def section(self) -> str:
        return self.path.rsplit(".", 1)[0] if "." in self.path else ""

    @property
    def step(self) -> str:
        if self.kind is int:
            return "1"
        return "0.01" if self.unit in ("share", "USD") else "any"


def _leaves(cls: type, prefix: str = "") -> Iterator[tuple[str, Any]]:
    instance = cls()
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _leaves(type(value), f"{path}.")
        else:
            yield path, value


def form_fields() -> list[FormField]:
    """Every StudySettings leaf but mode and seed, in the protocol's own order."""
    out = []
    for path, default in _leaves(StudySettings):
        if path in CREATE_ONLY:
            continue
        label, unit, help_text = LABELS.get(path, (path.rsplit(".", 1)[-1].replace("_", " ").capitalize(), "", ""))
        out.append(FormField(path, type(default), display_number(default), label, unit, help_text,
                             CHOICES.get(path, ())))
    return out


def applies(section: str, mode: str | None) -> bool:
    """Whether a study of ``mode`` uses the settings of ``section`` (None: any mode, both task sections)."""
    return mode is None or MODE_SECTIONS.get(section, mode) == mode


def sections(fields: list[FormField] | None = None, mode: str | None = None) -> list[tuple[str, str, list[FormField]]]:
    """(section key, title, fields), sections in SECTIONS order, unknown ones after; with ``mode``, only
    the sections that mode uses."""
    fields = [f for f in (form_fields() if fields is None else fields) if applies(f.section, mode)]
    keys = list(SECTIONS) + sorted({f.section for f in fields} - set(SECTIONS))
    return [(k, SECTIONS.get(k, k.capitalize()), [f for f in fields if f.section == k]) for k in keys if any(f.section == k for f in fields)]


def current_values(settings: StudySettings) -> dict[str, Any]:
    """Form field name -> the value these settings hold (for an edit form), as a person would type it:
    a whole-valued float shows as "30", not "30.0" (the form reads both back the same)."""
    data = settings.to_dict()
    out = {}
    for f in form_fields():
        node: Any = data
        for part in f.path.split("."):
            node = node[part]
        out[f.name] = display_number(node)
    return out


def display_number(value: Any) -> Any:
    """A float with no fractional part as an int; anything else unchanged."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def settings_from_form(form: Mapping[str, str], only: tuple[str, ...] | None = None,
                       mode: str | None = None) -> dict[str, Any]:
    """Nested settings from the flat form. An empty number keeps the default (or the study's value);
    a checkbox is off when absent. ``only`` restricts to those paths and ``mode`` to the sections that
    mode uses (the others are not read: a HYPE-∞ study keeps the HYPE-time defaults whatever a form
    without JavaScript, which shows both task sections, sent for them)."""
    settings: dict[str, Any] = {}
    for f in form_fields():
        if (only is not None and f.path not in only) or not applies(f.section, mode):
            continue
        if f.kind is bool:
            value: Any = form.get(f.name) in ("on", "true", "1")
        elif f.choices:
            value = (form.get(f.name) or "").strip()
            if not value:
                continue
            names = [v for v, _ in f.choices]
            if value not in names:
                raise SettingsError(f"{f.label} ({f.path}) must be one of {', '.join(names)}, not {value!r}")
        else:
            raw = (form.get(f.name) or "").strip()
            if not raw:
                continue
            value = _number(raw, f)
        node = settings
        *parents, leaf = f.path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return settings


def _number(raw: str, f: FormField) -> int | float:
    what = f"{f.label} ({f.path})"
    try:
        if f.kind is int:
            return int(raw)
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{what} must be {'a whole number' if f.kind is int else 'a number'}, not {raw!r}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{what} must be a finite number, not {raw!r}")
    return value


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` laid over it, nested dicts merged (neither argument is modified)."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def changed_paths(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """Settings paths whose value differs between two settings dicts."""
    out = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_paths(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out
