"""What the stopping rule's look costs the worker whose session completes (hype.stopping_state), before
and after each completed session's score is cached (hype.models.EvaluatorScore), in one process.

Builds a HYPE-time study of the paper's size (3 blocks of 150 trials) on a temporary SQLite database,
plays EVALUATORS workers through the real session service, then times the look a completion makes:
- before: no cached score, so the look reads and scores every answer of the model (what main did);
- after: every score cached but the completing session's, so it reads that session's answers and one
  row per session.
Each is timed REPEATS times inside a transaction that is rolled back; prints medians and the ratio.

    python experiments/stopping_look_cost.py              # ~2 min on a busy core
    python experiments/stopping_look_cost.py --evaluators 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pool_factory import make_pool_images  # noqa: E402
from session_player import play  # noqa: E402

from hype import stopping_state  # noqa: E402
from hype.config import load_config  # noqa: E402
from hype.db import make_engine, make_session_factory  # noqa: E402
from hype.migrate import upgrade  # noqa: E402
from hype.models import Assignment, EvaluatorScore, Judgment, Study  # noqa: E402
from hype.studies import create_study, import_images, publish_study  # noqa: E402

POOL = 280  # distinct images per pool: a participant of the paper's design sees 268 reals
SETTINGS = {"qualification": {"enabled": False}, "evaluators_per_model": 60,
            "stopping": {"target_halfwidth": 1.0, "min_evaluators": 10}}  # a target never reached: looks go on


def timed_look(factory, study_id: int, last_id: int, cached: bool) -> float:
    with factory() as s:
        study = s.get(Study, study_id)
        if cached:
            s.execute(delete(EvaluatorScore).where(EvaluatorScore.assignment_id == last_id))
        else:
            s.execute(delete(EvaluatorScore).where(EvaluatorScore.study_id == study_id))
        s.flush()
        start = time.perf_counter()
        stopping_state.look(s, study, [study.models[0].id])
        elapsed = time.perf_counter() - start
        s.rollback()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluators", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(data_dir=Path(tmp) / "data", database_url=f"sqlite:///{tmp}/bench.db",
                             secret_key="bench", testing=True)
        engine = make_engine(config.database_url)
        upgrade(engine)
        factory = make_session_factory(engine)
        rng = np.random.default_rng(1)
        with factory() as s:
            study = create_study(s, name="look cost", mode="hype-time", seed=3, settings=SETTINGS)
            import_images(s, config, study, make_pool_images(POOL, rng, 16, smooth=False), pool="real")
            import_images(s, config, study, make_pool_images(POOL, rng, 16, smooth=True), pool="fake", model_name="m")
            publish_study(s, config, study)
            s.commit()
            start = time.perf_counter()
            for k in range(args.evaluators):
                play(s, study, f"w{k:03d}", accuracy=0.8, rng=rng)
            print(f"{args.evaluators} evaluators played in {time.perf_counter() - start:.0f} s", flush=True)
            study_id = study.id
            last_id = s.scalar(select(Assignment.id).order_by(Assignment.id.desc()).limit(1))
            answers = s.scalar(select(func.count()).select_from(Judgment))
        before, after = [], []
        for _ in range(args.repeats):  # interleaved, so load on the machine hits both alike
            before.append(timed_look(factory, study_id, last_id, cached=False))
            after.append(timed_look(factory, study_id, last_id, cached=True))
        b, a = statistics.median(before), statistics.median(after)
        print(f"answers stored: {answers} ({answers // args.evaluators} per evaluator)")
        print(f"look on completion, before (reads every answer of the model): {1000 * b:.1f} ms (median of {args.repeats})")
        print(f"look on completion, after (cached scores, reads its own {answers // args.evaluators} answers): "
              f"{1000 * a:.1f} ms")
        print(f"ratio before / after: {b / a:.1f}x")
        engine.dispose()


if __name__ == "__main__":
    main()
