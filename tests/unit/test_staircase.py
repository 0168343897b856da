"""The staircase engine: PsychoPy's StairHandler rules, the HYPE weighted default, and its invariants.

Expected sequences below are derived by hand from the documented rules (trace in the comments), or
copied from PsychoPy's own test suite (psychopy/tests/test_data/test_StairHandlers.py), never computed
by the code under test.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hype.protocol import TimeSettings
from hype.staircase import (
    StaircaseConfig,
    StaircaseState,
    is_finished,
    replay,
    start,
    target_probability,
    update,
)


def run(cfg: StaircaseConfig, responses) -> StaircaseState:
    state = start(cfg)
    for r in responses:
        state = update(cfg, state, bool(r))
    return state


def db(value: float, step_db: float) -> float:
    return value * 10 ** (step_db / 20)


# --------------------------------------------------------------------------------------------------
# PsychoPy rules, by hand


def test_psychopy_db_1up_3down_with_shrinking_steps_and_initial_rule():
    cfg = StaircaseConfig.psychopy(start_val=100, step_sizes=[8, 4, 2], n_up=1, n_down=3, step_type="db", n_trials=12)
    assert cfg.n_reversals == 3  # None -> len(step_sizes)
    responses = [1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1]
    # t0 100    correct: initial rule (1-down), start->down, no reversal; -8 dB -> 100 @ -8 dB
    # t1 -8dB   correct: -8 dB -> -16 dB
    # t2 -16dB  wrong: down->up = reversal 1 (at -16 dB); step becomes 4 dB and the initial rule still
    #           moves this trial: +4 dB -> -12 dB
    # t3 -12dB  correct (run 1)   t4 -12dB correct (run 2)   no move: now 3-down
    # t5 -12dB  correct (run 3): down, up->down = reversal 2 (at -12 dB); step 2 dB -> -14 dB
    # t6 -14dB  correct (run 1)
    # t7 -14dB  wrong (run -1): up, reversal 3 (at -14 dB); step stays 2 dB (last) -> -12 dB
    # t8 -12dB  wrong: up, no reversal -> -10 dB
    # t9..t11 -10dB correct x3: down at t11, reversal 4 (at -10 dB) -> -12 dB
    # finished after t11: 4 reversals >= 3 and 12 trials >= 12
    expected = [100, db(100, -8), db(100, -16)] + [db(100, -12)] * 3 + [db(100, -14)] * 2
    expected += [db(100, -12)] + [db(100, -10)] * 3
    state = start(cfg)
    for i, r in enumerate(responses):
        assert not is_finished(cfg, state), i
        state = update(cfg, state, bool(r))
    assert state.intensities == pytest.approx(expected, rel=1e-12)
    assert state.intensity == pytest.approx(db(100, -12), rel=1e-12)
    assert state.reversal_trials == (2, 5, 7, 11)
    assert state.reversal_intensities == pytest.approx(
        [db(100, -16), db(100, -12), db(100, -14), db(100, -10)], rel=1e-12
    )
    assert is_finished(cfg, state)
    with pytest.raises(ValueError, match="finished"):
        update(cfg, state, True)


def test_psychopy_lin_1up_2down_without_initial_rule():
    cfg = StaircaseConfig.psychopy(
        start_val=20, step_sizes=[4, 2], n_up=1, n_down=2, step_type="lin", n_trials=10, apply_initial_rule=False
    )
    responses = [0, 0, 1, 1, 1, 0, 1, 1, 1, 1]
    # t0 20 wrong: 1-up fires, start->up (no reversal), +4 -> 24     t1 24 wrong: +4 -> 28
    # t2 28 correct (run 1)    t3 28 correct (run 2): down, reversal 1 at 28, step 2 -> 26
    # t4 26 correct (run 1)    t5 26 wrong: up, reversal 2 at 26 -> 28
    # t6 28 correct            t7 28 correct: down, reversal 3 at 28 -> 26
    # t8 26 correct            t9 26 correct: down, no reversal -> 24
    state = start(cfg)
    for r in responses[:-1]:
        state = update(cfg, state, bool(r))
    assert not is_finished(cfg, state)  # 3 reversals >= 2 but only 9 of 10 trials
    state = update(cfg, state, bool(responses[-1]))
    assert is_finished(cfg, state)
    assert state.intensities == (20, 24, 28, 28, 26, 26, 28, 28, 26, 26)
    assert state.intensity == 24
    assert state.reversal_trials == (3, 5, 7)
    assert state.reversal_intensities == (28, 26, 28)


@pytest.mark.parametrize(
    "initial_rule, intensities, final, reversal_intensities",
    [
        # on:  t0 20 c: 1-down -> 16; t1 16 c -> 12; t2 12 w: reversal 1 at 12, step 2, still 1-up -> 14;
        #      t3 14 c (run 1); t4 14 c (run 2): down, reversal 2 at 14 -> 12; t5 12 w: up, reversal 3 -> 14
        (True, (20, 16, 12, 14, 14, 12), 14, (12, 14, 12)),
        # off: t0 20 c (run 1); t1 20 c (run 2): down, start->down no reversal, step 4 -> 16;
        #      t2 16 w: up, reversal 1 at 16, step 2 -> 18; t3 18 c; t4 18 c: down, reversal 2 -> 16;
        #      t5 16 w: up, reversal 3 -> 18
        (False, (20, 20, 16, 18, 18, 16), 18, (16, 18, 16)),
    ],
)
def test_psychopy_initial_rule_on_and_off(initial_rule, intensities, final, reversal_intensities):
    cfg = StaircaseConfig.psychopy(
        start_val=20, step_sizes=[4, 2], n_down=2, step_type="lin", n_trials=100, apply_initial_rule=initial_rule
    )
    state = run(cfg, [1, 1, 0, 1, 1, 0])
    assert state.intensities == intensities
    assert state.intensity == final
    assert state.reversal_trials == (2, 4, 5)
    assert state.reversal_intensities == reversal_intensities


def test_psychopy_2up_1down():
    cfg = StaircaseConfig.psychopy(
        start_val=10, step_sizes=1, n_up=2, n_down=1, step_type="lin", n_trials=100, apply_initial_rule=False
    )
    # t0 10 w (run -1): no move;  t1 10 w (run -2): up, start->up no reversal -> 11
    # t2 11 w (run -1): no move;  t3 11 c (run 1): 1-down fires, reversal 1 at 11 -> 10
    # t4 10 w (run -1);           t5 10 w (run -2): up, reversal 2 at 10 -> 11
    state = run(cfg, [0, 0, 0, 1, 0, 0])
    assert state.intensities == (10, 10, 11, 11, 10, 10)
    assert state.intensity == 11
    assert state.reversal_trials == (3, 5)
    assert state.reversal_intensities == (11, 10)


def test_psychopy_log_steps_with_clamps():
    cfg = StaircaseConfig.psychopy(
        start_val=1.0, step_sizes=0.5, n_down=1, step_type="log", min_val=0.1, max_val=3.0, n_trials=100
    )
    # t0 1 c -> 10**-0.5;  t1 10**-0.5 c -> 10**-1 = 0.1;  t2 0.1 c -> 10**-1.5, clamped to 0.1
    # t3 0.1 w: reversal 1 at 0.1 -> 10**-0.5;  t4 w -> 1;  t5 1 w -> 10**0.5 = 3.16, clamped to 3
    # t6 3 w -> clamped 3;  t7 3 c: reversal 2 at 3 -> 3 * 10**-0.5
    state = run(cfg, [1, 1, 1, 0, 0, 0, 0, 1])
    s = 10**-0.5
    assert state.intensities == pytest.approx([1, s, 0.1, 0.1, s, 1, 3, 3], rel=1e-12)
    assert state.intensity == pytest.approx(3 * s, rel=1e-12)
    assert state.reversal_trials == (3, 7)
    assert state.reversal_intensities == pytest.approx([0.1, 3.0], rel=1e-12)


# PsychoPy's own published expectations (test_StairHandlers.py), responses 4 correct / 4 wrong cycles.
_CYCLE = ([1] * 4 + [0] * 4) * 3
_DB_EXPECTED = [
    0.8, 0.763994069, 0.729608671, 0.696770872, 0.665411017, 0.680910431, 0.696770872, 0.713000751,
    0.729608671, 0.729608671, 0.729608671, 0.713000751, 0.713000751, 0.72125691, 0.729608671,
    0.738057142, 0.746603441, 0.746603441, 0.746603441, 0.738057142,
]  # fmt: skip


@pytest.mark.parametrize(
    "step_type, step_sizes, n_down, n_reversals, responses, expected, reversal_trials",
    [
        ("lin", [0.1, 0.01, 0.001], 3, 4, _CYCLE[:20],
         [0.8, 0.7, 0.6, 0.5, 0.4, 0.41, 0.42, 0.43, 0.44, 0.44, 0.44,
          0.439, 0.439, 0.44, 0.441, 0.442, 0.443, 0.443, 0.443, 0.442], [4, 10, 12, 18]),
        ("lin", [0.1, 0.01, 0.001], 3, None, _CYCLE[:20],
         [0.8, 0.7, 0.6, 0.5, 0.4, 0.41, 0.42, 0.43, 0.44, 0.44, 0.44,
          0.439, 0.439, 0.44, 0.441, 0.442, 0.443, 0.443, 0.443, 0.442], [4, 10, 12, 18]),
        ("db", [0.4, 0.2, 0.2, 0.1], 3, 4, _CYCLE[:20], _DB_EXPECTED, [4, 10, 12, 18]),
        ("log", [0.4 / 20, 0.2 / 20, 0.2 / 20, 0.1 / 20], 3, 4, _CYCLE[:20], _DB_EXPECTED, [4, 10, 12, 18]),
        ("lin", 0.1, 1, 6, ([1, 1, 0] * 4)[:10],
         [0.8, 0.7, 0.6, 0.7, 0.6, 0.5, 0.6, 0.5, 0.4, 0.5], [2, 3, 5, 6, 8, 9]),
    ],
)  # fmt: skip
def test_matches_psychopy_published_vectors(step_type, step_sizes, n_down, n_reversals, responses, expected,
                                            reversal_trials):
    cfg = StaircaseConfig.psychopy(
        start_val=0.8, step_sizes=step_sizes, n_up=1, n_down=n_down, step_type=step_type, min_val=0, max_val=1,
        n_reversals=n_reversals, n_trials=len(responses),
    )  # fmt: skip
    state = run(cfg, responses)
    assert state.intensities == pytest.approx(expected, abs=1e-8)
    assert list(state.reversal_trials) == reversal_trials
    assert list(state.reversal_intensities) == [state.intensities[i] for i in reversal_trials]
    assert is_finished(cfg, state)


def test_psychopy_published_initial_rule_false():
    cfg = StaircaseConfig.psychopy(
        start_val=10, step_sizes=2, n_reversals=2, n_up=1, n_down=2, apply_initial_rule=False, step_type="lin"
    )
    assert run(cfg, [0, 1, 1, 0]).intensities == (10, 12, 12, 10)


def test_psychopy_n_reversals_raised_to_number_of_steps():
    steps = [5, 4, 3, 2, 1]
    assert StaircaseConfig.psychopy(1, step_sizes=steps).n_reversals == 5
    assert StaircaseConfig.psychopy(1, step_sizes=steps, n_reversals=4).n_reversals == 5
    assert StaircaseConfig.psychopy(1, step_sizes=steps, n_reversals=6).n_reversals == 6
    cfg = StaircaseConfig.psychopy(1)  # PsychoPy's defaults
    assert (cfg.step_sizes, cfg.step_type, cfg.n_up, cfg.n_down, cfg.apply_initial_rule) == ((4.0,), "db", 1, 3, True)


def test_unfinished_until_both_stop_rules_met():
    # 1-down/1-up lin, 1 reversal required, 3 trials required. All-correct: no reversal ever.
    cfg = StaircaseConfig.psychopy(10, step_sizes=1, n_down=1, step_type="lin", n_trials=3, n_reversals=1)
    state = run(cfg, [1] * 5)
    assert not is_finished(cfg, state)
    state = update(cfg, state, False)  # t5 at 5: reversal
    assert is_finished(cfg, state)


# --------------------------------------------------------------------------------------------------
# HYPE default


def test_hype_default_settings():
    cfg = StaircaseConfig.hype_default()
    assert cfg.start_val == 500 and cfg.min_val == 100 and cfg.max_val == 1000
    assert cfg.step_type == "lin" and cfg.n_down == 1 and cfg.n_up == 1
    assert cfg.down_step(0) == 10 and cfg.up_step(0) == 30
    assert cfg.n_trials == 150 and cfg.n_reversals == 0
    assert target_probability(cfg) == pytest.approx(0.75)


def test_hype_default_sequence():
    cfg = StaircaseConfig.hype_default()
    # 500 c -> 490 c -> 480 c -> 470 w -> 500 c -> 490 w -> 520 w -> 550 c -> 540
    state = run(cfg, [1, 1, 1, 0, 1, 0, 0, 1])
    assert state.intensities == (500, 490, 480, 470, 500, 490, 520, 550)
    assert state.intensity == 540
    # direction changes: t3 (down->up), t4 (up->down), t5 (down->up), t7 (up->down)
    assert state.reversal_trials == (3, 4, 5, 7)
    assert state.reversal_intensities == (470, 500, 490, 550)
    assert state.responses == (True, True, True, False, True, False, False, True)


def test_hype_default_clamps():
    cfg = StaircaseConfig.hype_default()
    # 40 moves of -10 take 500 to 100; further correct answers stay at 100; a wrong one goes to 130.
    state = run(cfg, [1] * 45 + [0])
    assert state.intensities == tuple(500 - 10 * k for k in range(40)) + (100,) * 6
    assert state.intensity == 130
    # +30 from 500: 980 after 16 moves, then 1010 clamped to 1000; a correct answer then gives 990.
    state = run(cfg, [0] * 20 + [1])
    assert state.intensities == tuple(500 + 30 * k for k in range(17)) + (1000,) * 4
    assert state.intensity == 990


def test_hype_block_ends_after_its_trials():
    cfg = StaircaseConfig.hype_default()
    rng = random.Random(7)
    state = start(cfg)
    for _ in range(150):
        assert not is_finished(cfg, state)
        state = update(cfg, state, rng.random() < 0.7)
    assert is_finished(cfg, state) and state.n_trials == 150
    with pytest.raises(ValueError, match="finished"):
        update(cfg, state, True)


def test_from_time_settings():
    ts = TimeSettings(start_ms=400, min_ms=50, max_ms=800, step_down_ms=5, step_up_ms=15, trials_per_block=20)
    cfg = StaircaseConfig.from_time_settings(ts)
    assert (cfg.start_val, cfg.min_val, cfg.max_val, cfg.n_trials) == (400, 50, 800, 20)
    assert run(cfg, [1, 0, 0]).intensities == (400, 395, 410)


def test_converges_to_75_percent_point():
    # 2AFC observer: p(correct | t) = 0.5 + 0.5 * logistic((t - 300) / 40), so p = 0.75 at 300 ms.
    cfg = dataclasses.replace(StaircaseConfig.hype_default(), n_trials=3000)
    rng = np.random.default_rng(2019)
    state = start(cfg)
    for _ in range(3000):
        p = 0.5 + 0.5 / (1 + math.exp(-(state.intensity - 300) / 40))
        state = update(cfg, state, bool(rng.random() < p))
    settled = np.asarray(state.intensities[300:])
    assert abs(settled.mean() - 300) < 20  # two down steps
    assert abs(np.median(settled) - 300) < 20


# --------------------------------------------------------------------------------------------------
# Target probabilities


@pytest.mark.parametrize(
    "cfg, expected",
    [
        (StaircaseConfig.psychopy(1, step_sizes=1, n_down=1, step_type="lin"), 0.5),
        (StaircaseConfig.psychopy(1, step_sizes=1, n_down=2, step_type="lin"), 0.7071),  # Levitt 1971
        (StaircaseConfig.psychopy(1, step_sizes=1, n_down=3, step_type="lin"), 0.7937),
        (StaircaseConfig.psychopy(1, step_sizes=1, n_down=1, n_up=2, step_type="lin"), 0.2929),
        (StaircaseConfig.psychopy(1, step_sizes=[8, 4, 2], n_down=3), 0.7937),  # steps don't matter if equal
        (StaircaseConfig.weighted(500, 10, 30, n_trials=1), 0.75),  # Kaernbach 1991
        (StaircaseConfig.weighted(500, 10, up_ratio=1 / 3, n_trials=1), 0.25),
        # weighted transformed, 2-down: p**2 = 30 / 40
        (StaircaseConfig.weighted(500, 10, 30, n_down=2, n_trials=1), 0.8660),
    ],
)
def test_target_probability(cfg, expected):
    assert target_probability(cfg) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("n_down, n_up, down, up", [(3, 2, 1.0, 1.0), (2, 3, 1.0, 2.0), (4, 2, 1.0, 0.5)])
def test_target_probability_general_balances_the_drift(n_down, n_up, down, up):
    # Independent check: simulate the run rule (n correct in a row -> down, m wrong in a row -> up) at
    # the target p; down-moves x down-step must balance up-moves x up-step.
    cfg = StaircaseConfig.weighted(1, down, up, n_down=n_down, n_up=n_up, n_trials=1)
    p = target_probability(cfg)
    rng = np.random.default_rng(1)
    hits = rng.random(400_000) < p
    run_, downs, ups = 0, 0, 0
    for h in hits.tolist():
        run_ = max(run_, 0) + 1 if h else min(run_, 0) - 1
        if run_ >= n_down:
            downs, run_ = downs + 1, 0
        elif run_ <= -n_up:
            ups, run_ = ups + 1, 0
    assert downs * down == pytest.approx(ups * up, rel=0.03)


# --------------------------------------------------------------------------------------------------
# Properties


@st.composite
def configs(draw, clamped: bool = True, initial_rule: bool | None = None) -> StaircaseConfig:
    step_type = draw(st.sampled_from(["lin", "log", "db"]))
    if step_type == "lin":
        steps = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0, 10.0, 30.0]), min_size=1, max_size=4))
        start_val = draw(st.sampled_from([0.0, 5.0, 100.0, 500.0]))
    else:
        steps = draw(st.lists(st.sampled_from([0.05, 0.1, 0.5, 1.0, 2.0, 6.0]), min_size=1, max_size=4))
        start_val = draw(st.sampled_from([0.01, 1.0, 500.0]))
    lo = hi = None
    if clamped:
        lo = start_val - draw(st.sampled_from([0.0, 1.0, 10.0])) * (1 if step_type == "lin" else start_val / 20)
        hi = start_val + draw(st.sampled_from([0.0, 1.0, 10.0, 100.0])) * (1 if step_type == "lin" else start_val)
    up_steps = draw(st.one_of(st.none(), st.lists(st.sampled_from([0.5, 1.0, 3.0]), min_size=len(steps),
                                                   max_size=len(steps))))  # fmt: skip
    return StaircaseConfig(
        start_val=start_val, step_sizes=steps, up_step_sizes=up_steps, step_type=step_type,
        n_down=draw(st.integers(1, 4)), n_up=draw(st.integers(1, 3)), min_val=lo, max_val=hi,
        n_trials=10_000, n_reversals=0,
        apply_initial_rule=draw(st.booleans()) if initial_rule is None else initial_rule,
    )  # fmt: skip


answers = st.lists(st.booleans(), max_size=80)


@given(configs(), answers)
def test_intensities_stay_within_clamps(cfg, responses):
    state = run(cfg, responses)
    for value in state.intensities + (state.intensity,):
        assert cfg.min_val <= value <= cfg.max_val


@given(configs(clamped=False), answers)
def test_reversals_are_the_direction_changes_of_the_moves(cfg, responses):
    state = run(cfg, responses)
    path = state.intensities + (state.intensity,)
    expected_trials, last = [], 0
    for t in range(len(responses)):
        move = (path[t + 1] > path[t]) - (path[t + 1] < path[t])  # +1 up, -1 down, 0 no move
        if move:
            if last and move != last:
                expected_trials.append(t)
            last = move
    assert list(state.reversal_trials) == expected_trials
    assert list(state.reversal_intensities) == [state.intensities[t] for t in expected_trials]


@given(configs(), st.integers(0, 60))
def test_all_correct_never_rises_and_all_wrong_never_falls(cfg, n):
    down = run(cfg, [True] * n)
    path = down.intensities + (down.intensity,)
    assert all(b <= a for a, b in zip(path, path[1:]))
    assert down.reversal_trials == ()
    up = run(cfg, [False] * n)
    path = up.intensities + (up.intensity,)
    assert all(b >= a for a, b in zip(path, path[1:]))
    assert up.reversal_trials == ()


@given(configs(), answers, answers)
def test_round_trip_mid_run_continues_identically(cfg, first, rest):
    mid = run(cfg, first)
    cfg2 = StaircaseConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    mid2 = StaircaseState.from_dict(json.loads(json.dumps(mid.to_dict())))
    assert cfg2 == cfg and mid2 == mid
    a, b = mid, mid2
    for r in rest:
        a, b = update(cfg, a, r), update(cfg2, b, r)
    assert a == b and a.to_dict() == b.to_dict()
    assert replay(cfg, first + rest) == a


@given(configs(), answers, st.booleans())
def test_update_never_mutates_its_input(cfg, responses, answer):
    state = run(cfg, responses)
    before = json.dumps(state.to_dict())
    new = update(cfg, state, answer)
    assert json.dumps(state.to_dict()) == before
    assert new is not state and new.n_trials == state.n_trials + 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.intensity = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(step_sizes=[-10]), "step_sizes must be > 0"),
        (dict(step_sizes=[4, 0]), "step_sizes must be > 0"),
        (dict(step_sizes=[]), "step_sizes must not be empty"),
        (dict(step_sizes=[float("nan")]), "finite"),
        (dict(up_step_sizes=[1, 2]), "one entry per step size"),
        (dict(up_step_sizes=[-30]), "up_step_sizes must be > 0"),
        (dict(min_val=600, max_val=400, start_val=500), "must not be greater than max_val"),
        (dict(n_down=0), "n_down must be >= 1"),
        (dict(n_up=0), "n_up must be >= 1"),
        (dict(n_down=1.5), "n_down must be an integer"),
        (dict(start_val=50), r"start_val \(50\) must lie within"),
        (dict(start_val=2000), "must lie within"),
        (dict(step_type="octave"), "step_type must be one of lin, log, db"),
        (dict(step_type="db", start_val=0, min_val=None), "must be > 0 for db steps"),
        (dict(n_trials=0, n_reversals=0), "needs a stop rule"),
        (dict(n_trials=-1), "n_trials must be >= 0"),
    ],
)
def test_bad_configs(kwargs, message):
    base = dict(start_val=500, step_sizes=[10], up_step_sizes=None, min_val=100, max_val=1000, n_trials=150)
    with pytest.raises(ValueError, match=message):
        StaircaseConfig(**{**base, **kwargs})


def test_bad_constructor_and_storage_input():
    with pytest.raises(ValueError, match="exactly one of up_step and up_ratio"):
        StaircaseConfig.weighted(500, 10, 30, up_ratio=3, n_trials=1)
    with pytest.raises(ValueError, match="step_sizes must be > 0"):
        StaircaseConfig.psychopy(1, step_sizes=[4, -2])
    with pytest.raises(ValueError, match="unknown staircase setting"):
        StaircaseConfig.from_dict({**StaircaseConfig.hype_default().to_dict(), "stepsize": 3})
    cfg = StaircaseConfig.hype_default()
    good = run(cfg, [1, 0]).to_dict()
    with pytest.raises(ValueError, match="different number of intensities"):
        StaircaseState.from_dict({**good, "intensities": [500.0]})
    with pytest.raises(ValueError, match="direction"):
        StaircaseState.from_dict({**good, "direction": "sideways"})
    with pytest.raises(ValueError, match="keys differ"):
        StaircaseState.from_dict({k: v for k, v in good.items() if k != "run"})
    with pytest.raises(ValueError, match="correct must be"):
        update(cfg, start(cfg), "yes")  # type: ignore[arg-type]


def test_stored_state_checks_every_element_type_whatever_the_fast_path():
    """from_dict runs on every HYPE-time answer, so its common case is one set of the lists' types; a
    value of any other type still gets the element-by-element check, and a wrong one is refused."""
    import numpy as np

    cfg = StaircaseConfig.hype_default()
    good = run(cfg, [1, 0, 0, 1, 1, 0]).to_dict()
    assert good["reversal_trials"] and good["responses"]
    for key, bad in (("intensities", [True] * len(good["intensities"])),
                     ("intensities", ["500"] + good["intensities"][1:]),
                     ("reversal_intensities", [None] * len(good["reversal_intensities"])),
                     ("responses", [1] * len(good["responses"])),
                     ("reversal_trials", [True] * len(good["reversal_trials"])),
                     ("reversal_trials", [float(t) for t in good["reversal_trials"]])):
        with pytest.raises(ValueError, match=f"staircase state {key} must be a list"):
            StaircaseState.from_dict({**good, key: bad})
    # numbers of other numeric types (a float subclass, an int subclass) are read as before
    mixed = {**good, "intensities": [np.float64(v) for v in good["intensities"]]}
    assert StaircaseState.from_dict(mixed) == StaircaseState.from_dict(good)


def test_accepts_psychopy_style_1_and_0_and_case_of_db():
    cfg = StaircaseConfig.psychopy(1, step_sizes=2, n_down=1, step_type="dB", n_trials=5)
    assert cfg.step_type == "db"
    assert update(cfg, start(cfg), 1) == update(cfg, start(cfg), True)
