"""hype/planning.py: populations fitted to a study's scores, cost per evaluator, evaluators for a target."""

import numpy as np
import pytest

from hype import planning
from hype import simulate as sm
from hype.protocol import StudySettings


def test_fit_population_needs_enough_evaluators_and_recovers_the_median():
    assert planning.fit_population("hype-time", [300.0] * 4) is None
    rng = np.random.default_rng(0)
    thresholds = 250.0 * np.exp(0.3 * rng.standard_normal(400))
    pop = planning.fit_population("hype-time", thresholds)
    assert pop.threshold_ms == pytest.approx(250.0, rel=0.05) and pop.threshold_sd == pytest.approx(0.3, rel=0.1)
    inf = planning.fit_population("hype-infinity", [0.1, 0.2, 0.15, 0.12, 0.18, 0.14])
    assert inf.fake_accuracy == pytest.approx(1 - 0.145) and inf.ability_sd > 0
    assert "median 75% threshold 250 ms" in planning.describe_population("hype-time", pop.__class__(threshold_ms=250))


def test_cost_per_evaluator_follows_the_pay_settings():
    s = StudySettings.from_dict({"mode": "hype-time", "pay": {"base_usd": 1.0, "bonus_per_correct_usd": 0.02}})
    trials, cost = planning.cost_per_evaluator(s, sm.Population())
    assert trials == 450 and cost == pytest.approx(1.0 + 0.02 * 0.75 * 450)
    s = StudySettings.from_dict({"mode": "hype-infinity"})
    pop = sm.Population(fake_accuracy=0.8, real_accuracy=0.8, ability_sd=0, criterion_sd=0, lapse=0)
    assert planning.cost_per_evaluator(s, pop)[1] == pytest.approx(1.0 + 0.02 * 0.8 * 100)


def test_evaluators_for_halfwidth_interpolates_like_one_over_root_n():
    rows = [sm.PlanRow(10, 0.04, 0, 0, 0, 1), sm.PlanRow(40, 0.02, 0, 0, 0, 1)]
    assert planning.evaluators_for_halfwidth(rows, 0.05) == 10
    assert planning.evaluators_for_halfwidth(rows, 0.02) == 40
    assert planning.evaluators_for_halfwidth(rows, 0.025) == 26  # (0.02 * sqrt(40) / 0.025)^2 = 25.6
    assert planning.evaluators_for_halfwidth(rows, 0.01) is None


def test_the_plan_of_a_quest_study_simulates_quest_plus_and_its_posterior_score():
    """Was: `hype plan` simulated the paper's staircase and block mode even for a QUEST+ study. With
    2 blocks of 10 trials the staircase cannot leave 400-800 ms, so every evaluator's block mode is
    about the same and its forecast half-width is a few ms; QUEST+'s posterior thresholds spread with
    the evaluators' own thresholds. The adaptive forecast must match studies drawn from an independent
    QUEST+ simulation, and not the staircase's."""
    from hype.protocol import TimeSettings
    from hype.scoring import TimeBlocks, bootstrap_score

    pop = sm.Population(threshold_ms=200, threshold_sd=0.3)
    plan = dict(n_trials=10, n_blocks=2, population=pop, n_sim=30, n_resamples=300)
    quest = sm.plan_ci_halfwidth("hype-time", [10], adaptive=True, quest_pool=200, **plan)[0].mean_halfwidth
    stairs = sm.plan_ci_halfwidth("hype-time", [10], **plan)[0].mean_halfwidth
    rng = np.random.default_rng(5)
    scores = sm.quest_scores(pop, 1000, TimeSettings(n_blocks=2, trials_per_block=10, adaptive=True), rng)
    widths = []
    for _ in range(60):
        pick = rng.choice(scores.size, 10, replace=False)
        data = TimeBlocks.from_block_scores([str(i) for i in pick], "m", scores[pick])
        widths.append(bootstrap_score(data, n_resamples=300, rng=rng).halfwidth)
    assert quest == pytest.approx(np.mean(widths), rel=0.25)
    assert stairs < quest / 3


def test_the_dashboard_forecast_of_a_quest_study_simulates_quest_plus():
    """The stopping forecast (dashboard Certainty card, `hype plan STUDY` with a target) draws its
    simulated evaluators from the study's own procedure: with 2 blocks of 10 trials the staircase's
    block modes barely spread (it cannot leave 400-800 ms), QUEST+'s posterior thresholds do."""
    from hype.stopping_state import _simulated_scores

    def spread(adaptive: bool) -> float:
        s = StudySettings.from_dict({"mode": "hype-time", "time": {"n_blocks": 2, "trials_per_block": 10,
                                                                   "adaptive": adaptive}})
        pop = sm.Population(threshold_ms=200, threshold_sd=0.3)
        return float(np.std(_simulated_scores(s, pop, 200, np.random.default_rng(2))))

    assert spread(True) > 3 * spread(False)
