"""How well a bot that counts HYPE-time's feedback guesses labels, under the old and the current rule.

Old rule (before issue 14): every block exactly half real, half fake, shuffled. Current rule
(hype.design.plan_session): each label an independent fair coin flip. The bot never sees an image;
it guesses the kind with more left in a block it believes is exactly half fake.

    PYTHONPATH=. python experiments/counting_bot.py
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

from hype.design import plan_session
from hype.protocol import StudySettings
from hype.simulate import counting_guess



def accuracy(blocks: list[list[bool]], block_size: int, coin: random.Random) -> float:
    hits = total = 0
    for labels in blocks:
        seen = Counter()
        for fake in labels:
            hits += counting_guess(block_size, seen[True], seen[False], coin.random() < 0.5) == fake
            total += 1
            seen[fake] += 1
    return hits / total


def main(n_trials: int = 60_000) -> None:
    for block_size in (20, 150):
        n_blocks = n_trials // block_size
        rng = np.random.default_rng(0)
        old = [list(rng.permutation([True] * (block_size // 2) + [False] * (block_size // 2))) for _ in range(n_blocks)]
        settings = StudySettings.from_dict(
            {"mode": "hype-time", "time": {"trials_per_block": block_size}, "qualification": {"enabled": False}}
        )
        pools = (list(range(1, 501)), {1: list(range(1001, 1501))})
        new = []
        for key in range(n_blocks // 3):
            plan = plan_session(settings, *pools, 1, key)
            new += [[t.is_fake for t in plan if t.block == b] for b in range(3)]
        a_old = accuracy(old, block_size, random.Random(1))
        a_new = accuracy(new, block_size, random.Random(1))
        print(f"{block_size:3d}-trial blocks, {n_trials} trials: exact 50/50 {a_old:.3f}, coin flips {a_new:.3f} "
              f"(chance 0.500; excess over chance {a_old - 0.5:+.3f} -> {a_new - 0.5:+.3f})")


if __name__ == "__main__":
    main()
