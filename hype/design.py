"""Per-participant trial plans, drawn reproducibly from the pools and the study seed. Pure.

docs/protocol.md: qualification and HYPE-∞ tasks are exactly half real / half fake; qualification fakes
come equally from all models and are disjoint from the images the participant sees later; HYPE-time
blocks use disjoint images.

HYPE-time gives correct/incorrect feedback after every answer, so in an exactly 50/50 block a worker
who counts knows how many reals and fakes are left, and the last trials of each block give their
labels away (a counting bot scores 61% on 20-trial blocks, 55% on 150-trial blocks without looking
at an image). HYPE-time labels are therefore fair coin flips, independent of each other: a block is
about half real (150 trials: 75 +- 6 reals), and no history of feedback predicts the next label.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from hype.protocol import StudySettings


class PoolTooSmallError(ValueError):
    """A pool cannot supply the draw the study settings ask for."""


@dataclass(frozen=True)
class PlannedTrial:
    phase: str  # "qualification" | "task"
    block: int  # 0 for qualification and HYPE-infinity; 0..n_blocks-1 for HYPE-time
    image_id: int
    is_fake: bool
    # A catch trial (docs/protocol.md, Catch trials): shown like any task trial, never scored, and in
    # HYPE-time shown at the longest exposure without moving the staircase.
    is_catch: bool = False


# A HYPE-time session draws its coin-flip labels again (whole sequence) in the rare case one kind
# exceeds its cap, so pools need only the cap, not every trial, of each kind. The cap sits
# COIN_CAP_SD standard deviations above half: a redraw happens in about 6 of 100,000 sessions, and
# only a sequence near the cap carries any information about the labels still to come.
COIN_CAP_SD = 4.0


def coin_cap(n_trials: int) -> int:
    """The most images of one kind a session of ``n_trials`` coin-flip labels may use."""
    return min(n_trials, n_trials // 2 + math.ceil(COIN_CAP_SD * math.sqrt(n_trials) / 2))


def task_draw_counts(settings: StudySettings) -> tuple[int, int]:
    """(real, fake) images the task may draw at most: exact for HYPE-∞, the coin cap for HYPE-time."""
    if settings.mode == "hype-infinity":
        return settings.task_counts()
    cap = coin_cap(settings.time.n_blocks * settings.time.trials_per_block)
    return cap, cap


def required_pool_sizes(settings: StudySettings, n_models: int) -> tuple[int, int]:
    """(real images, images per model) one participant consumes; pools must be at least this large."""
    q_real, q_fake = settings.qualification_counts()
    t_real, t_fake = task_draw_counts(settings)
    per_model_qual = -(-q_fake // max(n_models, 1))  # ceil: the worst-off model's share
    return q_real + t_real + settings.catch.n_real, per_model_qual + t_fake


def check_pools(settings: StudySettings, real_ids: Sequence[int], fake_ids: Mapping[int, Sequence[int]]) -> None:
    if not fake_ids:
        raise PoolTooSmallError("the study has no model (fake pool) yet")
    need_real, need_fake = required_pool_sizes(settings, len(fake_ids))
    if len(real_ids) < need_real:
        raise PoolTooSmallError(
            f"the real pool has {len(real_ids)} images; each participant needs {need_real} distinct real images"
        )
    for model_id, ids in fake_ids.items():
        if len(ids) < need_fake:
            raise PoolTooSmallError(
                f"model {model_id} has {len(ids)} images; each participant needs {need_fake} distinct images from it"
            )
        if len(ids) < settings.catch.n_fake:
            raise PoolTooSmallError(
                f"model {model_id} has {len(ids)} images; its {settings.catch.n_fake} catch trials per participant are "
                "degraded copies of distinct ones"
            )


def plan_session(
    settings: StudySettings,
    real_ids: Sequence[int],
    fake_ids: Mapping[int, Sequence[int]],
    model_id: int,
    draw_key: int,
    catch_ids: Mapping[int, Sequence[int]] | None = None,
) -> list[PlannedTrial]:
    """The full ordered plan (qualification, then task) for one participant assigned to `model_id`.

    The same (seed, draw_key) always gives the same plan, so any session can be re-derived and audited.
    Pools are sorted first so the plan does not depend on the order the database returned them.
    `catch_ids`: each model's degraded catch images, needed when the settings ask for catch trials;
    catch trials are drawn after everything else, so a study without them plans exactly as before.
    """
    check_pools(settings, real_ids, fake_ids)
    rng = np.random.default_rng([settings.seed & 0xFFFFFFFF, draw_key & 0xFFFFFFFF, model_id & 0xFFFFFFFF])
    real_left = list(rng.permutation(sorted(real_ids)))
    fake_left = {m: list(rng.permutation(sorted(ids))) for m, ids in sorted(fake_ids.items())}

    plan: list[PlannedTrial] = []
    q_real, q_fake = settings.qualification_counts()
    if q_real + q_fake:
        reals = [real_left.pop() for _ in range(q_real)]
        fakes = [fake_left[m].pop() for m in _round_robin(sorted(fake_left), q_fake, rng)]
        plan += _shuffled_block("qualification", 0, reals, fakes, rng)

    if settings.mode == "hype-infinity":
        reals = [real_left.pop() for _ in range(settings.infinity.n_real)]
        fakes = [fake_left[model_id].pop() for _ in range(settings.infinity.n_fake)]
        task = _shuffled_block("task", 0, reals, fakes, rng)
        plan += _with_catch_trials([task], settings, real_left, catch_ids, model_id, rng)[0]
    else:
        n_blocks, per_block = settings.time.n_blocks, settings.time.trials_per_block
        labels = coin_flip_labels(n_blocks * per_block, rng)
        blocks = []
        for b in range(n_blocks):
            block_labels = labels[b * per_block : (b + 1) * per_block]
            blocks.append([
                PlannedTrial("task", b, int(fake_left[model_id].pop() if fake else real_left.pop()), bool(fake))
                for fake in block_labels
            ])
        blocks = _with_catch_trials(blocks, settings, real_left, catch_ids, model_id, rng)
        plan += _interleave(blocks, rng) if settings.time.interleave_blocks else [t for blk in blocks for t in blk]
    return plan


def _with_catch_trials(blocks: list[list[PlannedTrial]], settings: StudySettings, real_left: list,
                       catch_ids: Mapping[int, Sequence[int]] | None, model_id: int,
                       rng: np.random.Generator) -> list[list[PlannedTrial]]:
    """The blocks with the catch trials inserted at random positions, spread evenly over the blocks.

    Catch reals come from the real pool after every other draw (so never an image the worker sees
    elsewhere); catch fakes from the model's degraded catch images. No draw at all without catch trials.
    """
    n_real, n_fake = settings.catch_counts()
    if n_real + n_fake == 0:
        return blocks
    pool = sorted((catch_ids or {}).get(model_id, ()))
    if len(pool) < n_fake:
        raise PoolTooSmallError(f"model {model_id} has {len(pool)} catch images; each participant needs {n_fake}")
    fakes = [int(i) for i in rng.permutation(pool)[:n_fake]]
    catch = [(int(real_left.pop()), False) for _ in range(n_real)] + [(i, True) for i in fakes]
    catch = [catch[k] for k in rng.permutation(len(catch))]
    out = [list(b) for b in blocks]
    for k, (image_id, fake) in enumerate(catch):
        b = k % len(out)
        out[b].insert(int(rng.integers(0, len(out[b]) + 1)), PlannedTrial("task", b, image_id, fake, is_catch=True))
    return out


def coin_flip_labels(n: int, rng: np.random.Generator) -> list[bool]:
    """n independent fair coin flips (True = fake), drawn again while one kind exceeds coin_cap(n)."""
    cap = coin_cap(n)
    while True:
        labels = rng.random(n) < 0.5
        n_fake = int(labels.sum())
        if n_fake <= cap and n - n_fake <= cap:
            return [bool(x) for x in labels]


def _round_robin(models: list[int], n: int, rng: np.random.Generator) -> list[int]:
    """n picks spread equally over models; the remainder goes to a random subset."""
    base, extra = divmod(n, len(models))
    lucky = set(rng.choice(len(models), size=extra, replace=False).tolist()) if extra else set()
    return [m for i, m in enumerate(models) for _ in range(base + (1 if i in lucky else 0))]


def _shuffled_block(phase: str, block: int, reals: list, fakes: list, rng: np.random.Generator) -> list[PlannedTrial]:
    trials = [PlannedTrial(phase, block, int(i), False) for i in reals]
    trials += [PlannedTrial(phase, block, int(i), True) for i in fakes]
    order = rng.permutation(len(trials))
    return [trials[k] for k in order]


def _interleave(blocks: list[list[PlannedTrial]], rng: np.random.Generator) -> list[PlannedTrial]:
    """Random interleaving that keeps each block's own order (each block is its own staircase)."""
    owners = np.concatenate([np.full(len(b), i) for i, b in enumerate(blocks)])
    rng.shuffle(owners)
    cursors = [0] * len(blocks)
    out = []
    for owner in owners:
        out.append(blocks[owner][cursors[owner]])
        cursors[owner] += 1
    return out
