"""HYPE-time's feedback must not give the remaining labels away (issue 14.1).

The counting bot (hype.simulate.counting_guess) keeps count of the feedback and guesses
the kind with more left in the block. Its guesses depend only on past labels, so if every label is an
independent fair coin flip each guess is right with probability 1/2, whatever the history: the number
right is exactly Binomial(n, 1/2), and a one-sided binomial test is the right test here.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from scipy import stats

from hype.design import plan_session
from hype.protocol import StudySettings
from hype.simulate import counting_guess


REAL = list(range(1, 401))
FAKES = {1: list(range(1001, 1401))}


def counting_bot_hits(trials_per_block: int, n_sessions: int) -> tuple[int, int]:
    settings = StudySettings.from_dict(
        {"mode": "hype-time", "seed": 5, "time": {"trials_per_block": trials_per_block}, "qualification": {"enabled": False}}
    )
    coin = random.Random(0)
    hits = total = 0
    for key in range(n_sessions):
        seen: dict[int, Counter] = {}
        for trial in plan_session(settings, REAL, FAKES, 1, key):
            count = seen.setdefault(trial.block, Counter())
            guess = counting_guess(trials_per_block, count[True], count[False], coin.random() < 0.5)
            hits += guess == trial.is_fake
            total += 1
            count[trial.is_fake] += 1  # the feedback after the answer
    return hits, total


@pytest.mark.parametrize("trials_per_block,n_sessions", [(20, 300), (150, 40)])
def test_a_counting_bot_guesses_hype_time_labels_at_chance(trials_per_block, n_sessions):
    hits, total = counting_bot_hits(trials_per_block, n_sessions)
    p = stats.binomtest(hits, total, 0.5, alternative="greater").pvalue
    # Exactly 50/50 blocks gave this bot 61% (20-trial blocks) and 55% (150-trial blocks).
    assert p > 0.001, f"counting bot: {hits}/{total} = {hits / total:.3f} right, p = {p:.2g}"


def test_hype_time_blocks_are_about_half_fake_and_pools_cover_the_cap():
    from hype.design import coin_cap, required_pool_sizes

    settings = StudySettings.from_dict({"mode": "hype-time", "qualification": {"enabled": False}})
    cap = coin_cap(450)
    assert 225 < cap < 300
    assert required_pool_sizes(settings, 1) == (cap, cap)
    shares = []
    for key in range(20):
        plan = plan_session(settings, list(range(1, cap + 1)), {1: list(range(1001, 1001 + cap))}, 1, key)
        assert len(plan) == 450 and len({t.image_id for t in plan}) == 450
        for b in range(3):
            shares.append(sum(t.is_fake for t in plan if t.block == b) / 150)
    assert 0.45 < sum(shares) / len(shares) < 0.55
    assert len(set(shares)) > 3  # not a fixed composition
