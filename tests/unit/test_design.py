from collections import Counter

import pytest

from hype.design import PoolTooSmallError, plan_session, required_pool_sizes
from hype.protocol import StudySettings

REAL = list(range(1000, 1200))
FAKES = {1: list(range(2000, 2100)), 2: list(range(3000, 3100)), 3: list(range(4000, 4100))}


def test_infinity_plan_is_half_real_half_fake_with_qualification_first():
    s = StudySettings()
    plan = plan_session(s, REAL, FAKES, model_id=2, draw_key=7)
    qual = [t for t in plan if t.phase == "qualification"]
    task = [t for t in plan if t.phase == "task"]
    assert plan[: len(qual)] == qual
    assert Counter(t.is_fake for t in qual) == {True: 50, False: 50}
    assert Counter(t.is_fake for t in task) == {True: 50, False: 50}
    assert all(t.image_id in FAKES[2] for t in task if t.is_fake)
    # qualification fakes come equally from all models (50 over 3: 16 or 17 each)
    per_model = Counter(next(m for m, ids in FAKES.items() if t.image_id in ids) for t in qual if t.is_fake)
    assert sorted(per_model.values()) in ([16, 17, 17], [17, 16, 17], [16, 17, 17])
    assert set(per_model) == {1, 2, 3}
    # no image is shown twice to one participant
    assert len({t.image_id for t in plan}) == len(plan)


def test_plan_is_reproducible_from_seed_and_draw_key_and_differs_otherwise():
    s = StudySettings(seed=11)
    a = plan_session(s, REAL, FAKES, 1, 5)
    assert a == plan_session(s, list(reversed(REAL)), FAKES, 1, 5)
    assert a != plan_session(s, REAL, FAKES, 1, 6)
    assert a != plan_session(StudySettings(seed=12), REAL, FAKES, 1, 5)


def test_time_blocks_are_disjoint_with_coin_flip_labels():
    s = StudySettings.from_dict({"mode": "hype-time", "time": {"trials_per_block": 20}, "qualification": {"enabled": False}})
    plan = plan_session(s, REAL, FAKES, 3, 1)
    assert len(plan) == 60
    for b in range(3):
        blk = [t for t in plan if t.block == b]
        assert len(blk) == 20 and 0 < sum(t.is_fake for t in blk) < 20  # fair coin flips (tests/unit/test_counting_bot.py)
    assert [t.block for t in plan] == sorted(t.block for t in plan)  # blocks one after another
    assert len({t.image_id for t in plan}) == 60


def test_interleaved_blocks_keep_each_blocks_count():
    s = StudySettings.from_dict(
        {"mode": "hype-time", "time": {"trials_per_block": 20, "interleave_blocks": True}, "qualification": {"enabled": False}}
    )
    plan = plan_session(s, REAL, FAKES, 3, 1)
    assert Counter(t.block for t in plan) == {0: 20, 1: 20, 2: 20}
    assert [t.block for t in plan] != sorted(t.block for t in plan)


def test_too_small_pools_give_a_clear_error():
    s = StudySettings()
    assert required_pool_sizes(s, 3) == (100, 67)
    with pytest.raises(PoolTooSmallError, match="real pool has 50 images; each participant needs 100"):
        plan_session(s, REAL[:50], FAKES, 1, 1)
    with pytest.raises(PoolTooSmallError, match="model 2 has 60 images"):
        plan_session(s, REAL, {**FAKES, 2: FAKES[2][:60]}, 1, 1)
