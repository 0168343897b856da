"""What the Certainty card's forecast costs (hype.stopping_state.forecast), per kind of study, and so
whether a page may compute it while it answers (`forecast_in_request`) or a background job must.

For each kind it forecasts a model with 12 evaluators (scores from hype's default population) at a
target half-width and a cap of 60, with the study's default trials, and prints the best and median
of a few runs, and the ratio to the staircase study's forecast timed in the same process.

    python experiments/forecast_cost.py
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import numpy as np

from hype import simulate as sm
from hype.protocol import StudySettings
from hype.stopping_state import FORECAST_POOL, forecast, forecast_in_request

KINDS = {
    "HYPE-∞": {"mode": "hype-infinity", "stopping": {"target_halfwidth": 3.0}},
    "HYPE-time, staircase + mode": {"mode": "hype-time", "stopping": {"target_halfwidth": 50.0}},
    "HYPE-time, QUEST+ + posterior": {"mode": "hype-time", "time": {"adaptive": True}, "stopping": {"target_halfwidth": 50.0}},
}


def timed(settings: StudySettings, scores: np.ndarray, repeats: int) -> list[float]:
    out = []
    for r in range(repeats):
        start = time.perf_counter()
        forecast(settings, scores, seed=r)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    rows = {}
    for name, spec in KINDS.items():
        settings = StudySettings.from_dict({"evaluators_per_model": 60, **spec})
        rng = np.random.default_rng(3)
        scores = sm.quest_scores(sm.Population(), 12, settings.time, rng) if settings.time.adaptive and settings.mode == "hype-time" \
            else _scores(settings, rng)
        forecast(settings, scores)  # warm: tables, imports
        rows[name] = (timed(settings, scores, 3 if settings.time.adaptive else 7), forecast_in_request(settings))
    base = statistics.median(rows["HYPE-time, staircase + mode"][0])
    print(f"forecast of one model: {FORECAST_POOL} simulated evaluators, 400 continuations; 12 evaluators so far, cap 60")
    print("| study | best s | median s | vs staircase | computed |")
    print("|---|---:|---:|---:|---|")
    for name, (times, inline) in rows.items():
        med = statistics.median(times)
        print(f"| {name} | {min(times):.3f} | {med:.3f} | {med / base:.1f}x | {'in the request' if inline else 'background job'} |")


def _scores(settings: StudySettings, rng: np.random.Generator) -> np.ndarray:
    from hype import scoring

    if settings.mode == "hype-infinity":
        data, _ = sm._simulate_infinity_model("m", sm.Population(), 12, settings.infinity, rng, "e")
    else:
        data, _, _ = sm._simulate_time_model("m", sm.Population(), 12, replace(settings.time), rng, "e")
    return np.asarray(scoring.evaluator_scores(data), dtype=float)


if __name__ == "__main__":
    main()
