"""QUEST+ (hype/adaptive.py): choices against posterior updates worked out by hand on a tiny grid, the
server's block procedure (replayable, classic staircase untouched), and a small seeded simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hype import adaptive as ad
from hype import staircase as stairs
from hype.protocol import TimeSettings

LEVELS = (100.0, 250.0, 600.0, 1000.0)
THRESHOLDS = (120.0, 300.0, 800.0)
TINY = ad.QuestConfig(LEVELS, THRESHOLDS, slopes=(2.0,), lapses=(0.05,), n_trials=10)


def _p(t: float, threshold: float, slope: float = 2.0, lapse: float = 0.05) -> float:
    """The model, written out: p(T) = 0.75 fixes the Weibull scale."""
    need = 0.25 / (0.5 - lapse)
    scale = threshold / (-math.log(1 - need)) ** (1 / slope)
    return 0.5 + (0.5 - lapse) * (1 - math.exp(-((t / scale) ** slope)))


def _by_hand(history: list[tuple[int, int]]) -> tuple[list[float], int]:
    """Posterior over the two thresholds after `history`, then the expected entropy of each level."""
    post = [1.0] * len(THRESHOLDS)
    for k, c in history:
        post = [w * (_p(LEVELS[k], th) if c else 1 - _p(LEVELS[k], th)) for w, th in zip(post, THRESHOLDS)]
    total = sum(post)
    post = [w / total for w in post]
    expected = []
    for x in LEVELS:
        h = 0.0
        for c in (0, 1):
            joint = [w * (_p(x, th) if c else 1 - _p(x, th)) for w, th in zip(post, THRESHOLDS)]
            p_c = sum(joint)
            h += -sum(j * math.log(j / p_c) for j in joint if j > 0)  # p_c * H(posterior | c)
        expected.append(h)
    return post, int(np.argmin(expected))


def test_p_correct_is_75_percent_at_threshold():
    assert float(ad.p_correct(500.0, 500.0, 2.5, 0.08)) == pytest.approx(0.75)
    assert _p(150.0, 150.0) == pytest.approx(0.75)
    assert float(ad.p_correct(300.0, 150.0, 2.0, 0.05)) == pytest.approx(_p(300.0, 150.0))


HISTORIES = [[], [(1, 1)], [(1, 0)], [(1, 0), (2, 0)], [(1, 1), (0, 1)], [(1, 0), (2, 1), (2, 1)], [(2, 0), (3, 0)]]


def test_hand_computed_choices_differ_between_histories():
    """So the comparison below checks a decision, not a constant: after a wrong answer at 250 ms the
    most informative exposure is longer (600 ms); after a right one it stays at 250 ms."""
    assert {_by_hand(h)[1] for h in HISTORIES} == {1, 2}


@pytest.mark.parametrize("history", HISTORIES)
def test_choices_and_posterior_match_hand_computed_updates(history):
    post, choice = _by_hand(history)
    mine = np.exp(ad.log_posterior(TINY, history))
    assert list(mine / mine.sum()) == pytest.approx(post, rel=1e-9)
    assert ad.next_exposure(TINY, history) == (choice, LEVELS[choice])
    # the posterior threshold is the posterior mean over the grid
    expected_mean = sum(w * th for w, th in zip(post, THRESHOLDS))
    assert float(ad.posterior_threshold(TINY, ad.log_posterior(TINY, history))) == pytest.approx(expected_mean)


def test_threshold_from_trials_equals_the_posterior_of_the_history():
    history = [(1, 1), (2, 1), (0, 0), (1, 0), (1, 1)]
    direct = ad.posterior_threshold(TINY, ad.log_posterior(TINY, history))
    from_trials = ad.threshold_from_trials(TINY, [LEVELS[k] for k, _ in history], [bool(c) for _, c in history])
    assert from_trials == pytest.approx(float(direct))
    assert math.isnan(ad.threshold_from_trials(TINY, [], []))


def test_block_procedure_replays_and_stops():
    cfg = ad.QuestConfig(LEVELS, THRESHOLDS, slopes=(2.0,), lapses=(0.05,), n_trials=3).to_dict()
    assert ad.QuestConfig.from_dict(cfg).to_dict() == cfg
    state = ad.block_start(cfg)
    answers = [True, False, True, True]
    history = []
    for correct in answers[:3]:
        assert ad.block_exposure(cfg, state) == ad.next_exposure(ad.QuestConfig.from_dict(cfg), history)[1]
        history.append((state["index"], int(correct)))
        state = ad.block_advance(cfg, state, correct)
        assert [tuple(h) for h in state["history"]] == history
    assert ad.block_advance(cfg, state, answers[3]) == state  # a finished block does not move



def test_kept_posterior_is_the_history_recomputed_bit_for_bit():
    """block_advance adds each answer to the posterior it kept from the previous one (per process);
    the state and the posterior must be exactly what the whole history gives, and a process that kept
    nothing (another server, a restart) must answer the same."""
    cfg = ad.block_config(TimeSettings(adaptive=True, trials_per_block=60))
    quest = ad.QuestConfig.from_dict(cfg)
    answers = [bool(c) for c in np.random.default_rng(3).random(60) < 0.7]
    state, states = ad.block_start(cfg), []
    for correct in answers:
        state = ad.block_advance(cfg, state, correct)
        kept_history, kept = ad._posteriors[ad._posterior_key(ad.tables(quest), state["history"])]
        assert kept_history == state["history"]
        assert np.array_equal(kept, ad.log_posterior(quest, state["history"]))
        assert (state["index"], state["intensity"]) == ad.next_exposure(quest, state["history"])
        states.append(state)
    forgetful = ad.block_start(cfg)
    for correct, kept in zip(answers, states):
        ad._posteriors.clear()
        forgetful = ad.block_advance(cfg, forgetful, correct)
        assert forgetful == kept

def test_classic_staircase_path_is_unchanged():
    t = TimeSettings()
    cfg = ad.block_config(t)
    assert cfg == stairs.StaircaseConfig.from_time_settings(t).to_dict()
    state = ad.block_start(cfg)
    ref = stairs.start(stairs.StaircaseConfig.from_dict(cfg))
    for correct in (True, True, False, True, False, False, True):
        assert ad.block_exposure(cfg, state) == ref.intensity
        state = ad.block_advance(cfg, state, correct)
        ref = stairs.update(stairs.StaircaseConfig.from_dict(cfg), ref, correct)
    assert state == ref.to_dict()
    assert ad.block_config(TimeSettings(adaptive=True))["procedure"] == "quest+"


def test_quest_recovers_a_steep_threshold_with_fewer_trials_small_seeded():
    """Small version of experiments/adaptive_time.py: 150 simulated blocks of 60 trials with the
    model's own observers; the posterior threshold lands within one 10 ms step of the truth on average."""
    cfg = ad.QuestConfig.from_time_settings(TimeSettings())
    rng = np.random.default_rng(5)
    truth = 320.0
    _, _, snap = ad.run_many(cfg, lambda t, x, u: u < ad.p_correct(x, truth, 2.5, 0.08), 150, 60, rng, record_at=(60,))
    est = ad.posterior_threshold(cfg, snap[60])
    assert abs(est.mean() - truth) <= 10.0 + 3 * est.std() / np.sqrt(est.size)
    assert est.std() < 80.0


def test_simulated_evaluators_in_lockstep_choose_and_score_as_the_server_does_one_by_one():
    """The simulations (coverage after stopping, plans, forecasts) run QUEST+ for many evaluators at once
    (run_many: one posterior row per block, updated together). Each block must show the exposures the
    server's own per-block code (next_exposure on its stored history) would show, and end with the
    same posterior threshold."""
    cfg = ad.QuestConfig.from_time_settings(TimeSettings(trials_per_block=25))
    rng = np.random.default_rng(21)
    truths = np.array([150.0, 260.0, 320.0, 480.0, 700.0, 950.0])
    exposure, correct, snap = ad.run_many(cfg, lambda t, x, u: u < ad.p_correct(x, truths, 2.0, 0.05),
                                          truths.size, 25, rng, record_at=(25,))
    lockstep = ad.posterior_threshold(cfg, snap[25])
    levels = list(cfg.levels_ms)
    assert len({tuple(row) for row in exposure}) == truths.size  # the blocks really went their own ways
    for i in range(truths.size):
        history: list[list[int]] = []
        for t in range(25):
            k, ms = ad.next_exposure(cfg, history)
            assert ms == exposure[i, t]
            history.append([k, int(correct[i, t])])
        assert history == [[levels.index(x), int(c)] for x, c in zip(exposure[i], correct[i])]
        one = ad.posterior_threshold(cfg, ad.log_posterior(cfg, history))
        assert one == pytest.approx(lockstep[i], rel=1e-12)
        assert ad.threshold_from_trials(cfg, exposure[i], correct[i]) == pytest.approx(one, rel=1e-9)


# Two slopes and two lapses: the joint posterior and the threshold's marginal differ, so can the rules.
SLOPES, LAPSES = (1.2, 5.0), (0.02, 0.2)
NUISANCE = ad.QuestConfig(LEVELS, THRESHOLDS, slopes=SLOPES, lapses=LAPSES, n_trials=10)


def _by_hand_marginal(history: list[tuple[int, int]]) -> tuple[list[float], int, int]:
    """Posterior over (threshold, slope, lapse) after `history`; then, per level, the expected entropy
    of the threshold's marginal (psi-marginal) and of the joint posterior (QUEST+); the two argmins."""
    grid = [(th, s, la) for th in THRESHOLDS for s in SLOPES for la in LAPSES]  # the config's order
    post = [1.0] * len(grid)
    for k, c in history:
        post = [w * (_p(LEVELS[k], *g) if c else 1 - _p(LEVELS[k], *g)) for w, g in zip(post, grid)]
    post = [w / sum(post) for w in post]
    marginal, joint = [], []
    for x in LEVELS:
        h_marg = h_joint = 0.0
        for c in (0, 1):
            cell = [w * (_p(x, *g) if c else 1 - _p(x, *g)) for w, g in zip(post, grid)]
            p_c = sum(cell)
            by_th = [sum(v for v, g in zip(cell, grid) if g[0] == t) for t in THRESHOLDS]
            h_marg += -sum(v * math.log(v / p_c) for v in by_th if v > 0)
            h_joint += -sum(v * math.log(v / p_c) for v in cell if v > 0)
        marginal.append(h_marg)
        joint.append(h_joint)
    return post, int(np.argmin(marginal)), int(np.argmin(joint))


NUISANCE_HISTORIES = [[], [(1, 1)], [(1, 0)], [(0, 0)], [(3, 1)], [(1, 1), (0, 1)], [(2, 1), (1, 0)], [(1, 1), (1, 1), (0, 0)],
                      [(2, 0), (3, 1)], [(1, 0), (2, 1), (2, 1), (1, 1)], [(3, 0), (3, 1), (2, 0)]]


def test_the_two_rules_choose_differently_on_a_grid_with_slopes_and_lapses():
    """So the comparisons below check the threshold rule's own decisions, not the joint rule's: at the
    start the joint rule shows 600 ms (long exposures tell lapses apart), the threshold rule 250 ms."""
    assert _by_hand_marginal([])[1:] == (1, 2)
    assert sum(_by_hand_marginal(h)[1] != _by_hand_marginal(h)[2] for h in NUISANCE_HISTORIES) >= 4


@pytest.mark.parametrize("history", NUISANCE_HISTORIES)
def test_threshold_rule_chooses_what_the_marginal_entropy_computed_by_hand_says(history):
    post, marginal_choice, joint_choice = _by_hand_marginal(history)
    mine = np.exp(ad.log_posterior(NUISANCE, history))
    assert list(mine / mine.sum()) == pytest.approx(post, rel=1e-9)
    assert NUISANCE.target == "threshold"  # the default
    assert ad.next_exposure(NUISANCE, history) == (marginal_choice, LEVELS[marginal_choice])
    joint = ad.QuestConfig(LEVELS, THRESHOLDS, slopes=SLOPES, lapses=LAPSES, n_trials=10, target="parameters")
    assert ad.next_exposure(joint, history) == (joint_choice, LEVELS[joint_choice])
    # a stack of posteriors (the lockstep simulator) chooses row by row as one posterior does
    stack = ad._normalise(np.stack([ad.log_posterior(NUISANCE, history), ad.log_posterior(NUISANCE, [])]))
    assert list(ad.choose(ad.tables(NUISANCE), stack, "threshold")) == [marginal_choice, 1]


def test_a_block_stored_before_the_threshold_rule_replays_with_the_joint_rule():
    """A block config saved without `target` was chosen by the joint (QUEST+) rule: it must stay so,
    while new blocks store the threshold rule."""
    new = ad.block_config(TimeSettings(adaptive=True))
    assert new["target"] == "threshold" and ad.QuestConfig.from_dict(new).target == "threshold"
    old = {k: v for k, v in NUISANCE.to_dict().items() if k != "target"}
    assert ad.QuestConfig.from_dict(old).target == "parameters"
    state = ad.block_start(old)
    assert state["index"] == _by_hand_marginal([])[2] == 2
    for k, c in [(1, 1), (0, 1)]:
        state = ad.block_advance(old, {**state, "index": k, "intensity": LEVELS[k]}, bool(c))
    assert state["index"] == _by_hand_marginal([(1, 1), (0, 1)])[2]
    with pytest.raises(ValueError, match="target"):
        ad.QuestConfig(LEVELS, THRESHOLDS, target="slope")


def _simulated_posteriors(cfg: ad.QuestConfig, seed: int = 1) -> np.ndarray:
    """Posteriors QUEST+ meets: blocks of four kinds of observer, after 0 to 150 answers."""
    rng, posts = np.random.default_rng(seed), []
    for th, sl, la in ((300.0, 2.0, 0.05), (150.0, 1.0, 0.1), (600.0, 4.0, 0.02), (120.0, 1.5, 0.16)):
        _, _, snaps = ad.run_many(cfg, lambda t, x, u: u < ad.p_correct(x, th, sl, la), 40, 150, rng,
                                  record_at=(0, 1, 3, 10, 30, 60, 100, 150))
        posts += [ad._normalise(s) for k in snaps for s in snaps[k]]
    return np.array(posts)


def test_the_threshold_rule_chooses_what_its_entropy_formula_says():
    """_choose_for_threshold computes the joint answer-and-threshold probabilities as a matrix product per
    threshold, and a wrong answer's as the marginal less the right one's: it must choose what the
    formula in its docstring, written out over both answers, chooses (one posterior or a stack)."""
    cfg = ad.QuestConfig.from_time_settings(TimeSettings(adaptive=True))
    tab = ad.tables(cfg)
    rng = np.random.default_rng(5)
    sparse = rng.random((200, len(cfg.thresholds_ms) * len(cfg.slopes) * len(cfg.lapses))) * (rng.random((200, 720)) < 0.05)
    posts = np.concatenate([_simulated_posteriors(cfg), sparse / sparse.sum(axis=1, keepdims=True)])  # and exact 0s
    m = np.einsum("njq,rkjq->nrkj", posts.reshape(len(posts), len(cfg.thresholds_ms), -1), tab.like_by_threshold)
    p_r = m.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(m > 0, m * np.log(m), 0.0).sum(axis=(1, 3)) + np.where(p_r > 0, p_r * np.log(p_r), 0.0).sum(axis=1)
    expected = np.argmin(h, axis=-1)
    assert len(set(expected.tolist())) > 10  # the posteriors ask for many different exposures
    assert np.array_equal(ad.choose(tab, posts, "threshold"), expected)
    assert [int(ad.choose(tab, p, "threshold")) for p in posts[::7]] == expected[::7].tolist()


@pytest.mark.parametrize("target", ad.TARGETS)
def test_a_threshold_known_exactly_leaves_a_tie_that_goes_to_the_shortest_exposure(target):
    """All mass on one threshold: every exposure's expected threshold entropy is 0, up to rounding
    that must not decide the tie (choose() promises the shortest exposure); the joint rule's own ties too."""
    cfg = ad.QuestConfig.from_time_settings(TimeSettings(adaptive=True))
    tab = ad.tables(cfg)
    per_threshold = len(cfg.slopes) * len(cfg.lapses)
    for j in (0, 17, 42, 59):
        post = np.zeros(len(cfg.thresholds_ms) * per_threshold)
        post[j * per_threshold:(j + 1) * per_threshold] = 1.0 / per_threshold
        if target == "threshold":
            assert int(ad.choose(tab, post, target)) == 0
        stacked = ad.choose(tab, np.stack([post, post]), target)
        assert stacked.tolist() == [int(ad.choose(tab, post, target))] * 2


def test_a_stored_config_text_is_parsed_once_and_a_changed_one_anew():
    import json

    text = json.dumps(ad.block_config(TimeSettings(adaptive=True, trials_per_block=60)))
    parsed = ad.block_config_from_text(text)
    assert parsed == ad.QuestConfig.from_dict(json.loads(text))
    assert ad.block_config_from_text(text) is parsed
    changed = json.dumps({**json.loads(text), "n_trials": 40})
    assert ad.block_config_from_text(changed).n_trials == 40
    staircase_text = json.dumps(ad.block_config(TimeSettings()))
    assert ad.block_config_from_text(staircase_text) == stairs.StaircaseConfig.from_dict(json.loads(staircase_text))
    with pytest.raises(ValueError):
        ad.block_config_from_text(json.dumps({**json.loads(text), "lapses": [0.5]}))


def test_a_kept_posterior_found_under_another_blocks_history_is_not_used():
    """The kept posteriors are found by the history's length and last steps; two blocks that share those
    must each get their own history's posterior, not the other's."""
    cfg = ad.QuestConfig.from_time_settings(TimeSettings(adaptive=True))
    tab, shared = ad.tables(cfg), [[30, 1], [31, 0], [30, 1], [29, 1], [30, 0]]
    quick = {"history": [[2, 1]] * 20 + shared, "index": 30, "intensity": float(tab.levels[30])}  # right at 130 ms
    slow = {"history": [[55, 0]] * 20 + shared, "index": 30, "intensity": float(tab.levels[30])}  # wrong at 930 ms
    ad._posteriors.clear()
    quick_next = ad.block_advance(cfg, quick, True)
    slow_next = ad.block_advance(cfg, slow, True)  # the same length and last steps: it takes quick's place
    assert ad._posterior_key(tab, quick_next["history"]) == ad._posterior_key(tab, slow_next["history"])
    assert quick_next["index"] != slow_next["index"]  # the two posteriors ask for different exposures
    got = ad.block_advance(cfg, quick_next, False)
    ad._posteriors.clear()
    assert got == ad.block_advance(cfg, quick_next, False)
