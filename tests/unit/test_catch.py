"""Catch trials, the pure parts: settings and their validation, the plan, the degraded images and the
catch rule (docs/protocol.md, Catch trials)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hype.design import PoolTooSmallError, plan_session, required_pool_sizes
from hype.images import degraded_catch_image
from hype.protocol import SettingsError, StudySettings
from hype.quality import RULE_FAILED_CATCH, ExclusionRules, TrialRecord, violations, worker_stats
from hype.settings_form import EDITABLE_WHILE_RUNNING, form_fields, settings_from_form

REAL = list(range(1, 101))
FAKES = {7: list(range(1001, 1061)), 8: list(range(2001, 2061))}
CATCH = {7: list(range(5001, 5025)), 8: list(range(6001, 6025))}


def _settings(**data) -> StudySettings:
    base = {"qualification": {"n_real": 4, "n_fake": 4}}
    base.update(data)
    return StudySettings.from_dict(base)


def test_catch_settings_are_validated_in_one_place_and_reach_the_form():
    ok = _settings(catch={"n_fake": 5, "n_real": 5})
    assert ok.catch.enabled and ok.task_trials_shown() == 110
    with pytest.raises(SettingsError, match="ratio"):  # HYPE-∞ workers are told the task's 50 : 50
        _settings(catch={"n_fake": 5, "n_real": 0})
    with pytest.raises(SettingsError, match="at most 20%"):
        _settings(catch={"n_fake": 11, "n_real": 11})
    with pytest.raises(SettingsError, match="min_accuracy"):
        _settings(catch={"min_accuracy": 1.5})
    with pytest.raises(SettingsError, match=">= 0"):
        _settings(mode="hype-time", catch={"n_fake": -1})
    # HYPE-time labels are coin flips: any mix of catch reals and fakes
    assert _settings(mode="hype-time", catch={"n_fake": 4, "n_real": 1}).catch_counts() == (1, 4)
    names = {f.name for f in form_fields()}
    assert {"catch_n_fake", "catch_n_real", "catch_min_accuracy"} <= names
    form = {"catch_n_fake": "3", "catch_n_real": "3", "catch_min_accuracy": "0.9"}
    assert settings_from_form(form)["catch"] == {"n_fake": 3, "n_real": 3, "min_accuracy": 0.9}
    assert "catch.min_accuracy" in EDITABLE_WHILE_RUNNING and "catch.n_fake" not in EDITABLE_WHILE_RUNNING


def test_a_study_without_catch_trials_plans_exactly_as_before():
    s = _settings()
    assert plan_session(s, REAL, FAKES, 7, 42) == plan_session(s, REAL, FAKES, 7, 42, CATCH)
    assert not any(t.is_catch for t in plan_session(s, REAL, FAKES, 7, 42))


def test_hype_infinity_catch_trials_are_mixed_into_the_task_from_the_right_pools():
    s = _settings(catch={"n_fake": 3, "n_real": 3})
    plain = plan_session(_settings(), REAL, FAKES, 7, 42)
    plan = plan_session(s, REAL, FAKES, 7, 42, CATCH)
    task = [t for t in plan if t.phase == "task"]
    catch = [t for t in task if t.is_catch]
    assert len(task) == 106 and len(catch) == 6
    assert sorted(t.is_fake for t in catch) == [False] * 3 + [True] * 3
    assert all(t.image_id in CATCH[7] for t in catch if t.is_fake)  # the model's own degraded images
    assert all(t.image_id in REAL for t in catch if not t.is_fake)
    others = [t.image_id for t in plan if not t.is_catch]
    assert len(set(others) | {t.image_id for t in catch}) == len(others) + 6  # no image seen twice
    # the scored trials are exactly the plan without catch trials (same images, same order)
    assert [t for t in plan if not t.is_catch] == plain
    positions = [k for k, t in enumerate(task) if t.is_catch]
    assert positions != list(range(100, 106))  # mixed in, not appended


def test_hype_time_catch_trials_are_spread_over_the_blocks():
    s = _settings(mode="hype-time", time={"n_blocks": 3, "trials_per_block": 10}, catch={"n_fake": 4, "n_real": 2})
    plan = plan_session(s, REAL, FAKES, 8, 3, CATCH)
    catch = [t for t in plan if t.is_catch]
    assert len(catch) == 6 and Counter(t.block for t in catch) == {0: 2, 1: 2, 2: 2}
    assert all(t.phase == "task" for t in catch)
    assert all(t.image_id in CATCH[8] for t in catch if t.is_fake)
    assert [t for t in plan if not t.is_catch] == plan_session(_settings(mode="hype-time", time={"n_blocks": 3, "trials_per_block": 10}),
                                                               REAL, FAKES, 8, 3)
    with pytest.raises(PoolTooSmallError, match="catch images"):
        plan_session(s, REAL, FAKES, 8, 3, {8: [6001]})


def test_pools_must_hold_the_catch_reals_too():
    base = required_pool_sizes(_settings(), 2)
    with_catch = required_pool_sizes(_settings(catch={"n_fake": 5, "n_real": 5}), 2)
    assert with_catch == (base[0] + 5, base[1])


def test_degraded_catch_image_is_deterministic_and_obviously_degraded():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    image = np.stack([(xx * 4) % 256, (yy * 4) % 256, ((xx ^ yy) * 8) % 256], axis=-1).astype(np.uint8)
    a = degraded_catch_image(image, np.random.default_rng(5))
    b = degraded_catch_image(image, np.random.default_rng(5))
    assert a.shape == image.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, degraded_catch_image(image, rng))
    # heavy: far from the source on average, and blocky (8 x 8 blocks of 8 px: neighbours inside a
    # block differ by noise only, so horizontal detail of the source is gone)
    assert np.abs(a.astype(float) - image).mean() > 20
    blocks = a.reshape(8, 8, 8, 8, 3).astype(float)
    assert abs(blocks.mean(axis=(1, 3)) - image.reshape(8, 8, 8, 8, 3).mean(axis=(1, 3))).mean() < 15


def test_catch_accuracy_is_a_rule_and_stays_out_of_the_reals_and_fakes_figures():
    trials = [TrialRecord(True, True, 900.0, False), TrialRecord(False, False, 900.0, False),
              TrialRecord(True, False, 400.0, False, is_catch=True), TrialRecord(False, True, 400.0, False, is_catch=True),
              TrialRecord(True, True, 400.0, False, is_catch=True)]
    stats = worker_stats(trials)
    assert (stats.real_accuracy, stats.fake_accuracy) == (0.0, 1.0)
    assert (stats.catch_correct, stats.catch_total) == (2, 3) and stats.catch_accuracy == pytest.approx(2 / 3)
    assert stats.n_answered == 5 and stats.n_correct == 3  # the bonus pays catch answers like any
    rules = ExclusionRules(failed_qualification=False, max_flagged_share=None, min_median_reaction_ms=None,
                           min_catch_accuracy=0.8)
    assert [r for r, _ in violations(stats, rules)] == [RULE_FAILED_CATCH]
    assert "2 of 3 catch trials right" in violations(stats, rules)[0][1]
    assert violations(stats, ExclusionRules(min_catch_accuracy=0.6, min_median_reaction_ms=None)) == []
    assert violations(worker_stats(trials[:2]), rules) == []  # no catch answers: nothing to judge
    with pytest.raises(ValueError):
        ExclusionRules(min_catch_accuracy=80)
