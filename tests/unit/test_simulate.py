"""hype.simulate: the observer model, the staircase runs, and the estimators checked against a known truth
(threshold recovery, CI coverage, separability)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hype.coverage import interval_coverage
from hype import scoring as sc
from hype import simulate as sm
from hype.protocol import InfinitySettings, TimeSettings
from hype.staircase import StaircaseConfig

CFG = StaircaseConfig.hype_default()


# --- observer --------------------------------------------------------------------------------------


def test_psychometric_function_limits_and_threshold():
    obs = sm.Observer(fake_accuracy=0.9, real_accuracy=0.96, scale_ms=300.0, slope=3.0, lapse=0.02)
    assert obs.p_correct(True, 1e-9) == pytest.approx(0.5)
    assert obs.p_correct(True, None) == pytest.approx(0.98 * 0.9 + 0.01)
    assert obs.p_correct(False, np.inf) == pytest.approx(0.98 * 0.96 + 0.01)
    t75 = obs.threshold_ms()
    mean_p = (obs.p_correct(True, t75) + obs.p_correct(False, t75)) / 2
    assert mean_p == pytest.approx(0.75)
    never = sm.Observer(fake_accuracy=0.6, real_accuracy=0.7)
    assert np.isinf(never.threshold_ms())


def test_respond_follows_p_correct():
    obs = sm.Observer(fake_accuracy=0.7, real_accuracy=0.9, scale_ms=200.0, slope=2.0)
    rng = np.random.default_rng(0)
    said_fake = [obs.respond(True, 400.0, rng) for _ in range(4000)]
    assert np.mean(said_fake) == pytest.approx(obs.p_correct(True, 400.0), abs=0.025)
    said_fake_on_reals = [obs.respond(False, None, rng) for _ in range(4000)]
    assert np.mean(said_fake_on_reals) == pytest.approx(1 - 0.9, abs=0.015)


def test_population_draws_hit_their_thresholds():
    pop = sm.Population(threshold_ms=350, threshold_sd=0.3)
    obs = pop.draw(4000, np.random.default_rng(1))
    t75 = obs.threshold_ms()
    assert np.median(t75) == pytest.approx(350, rel=0.03)
    assert len(obs) == 4000 and isinstance(obs[3], sm.Observer)


def test_plans_are_half_fake_and_shuffled():
    rng = np.random.default_rng(0)
    plan = sm.time_plan(3, 150, rng, n_evaluators=4)
    assert plan.shape == (4, 3, 150) and (plan.sum(axis=-1) == 75).all()
    assert not np.array_equal(plan[0, 0], plan[0, 1])
    inf = sm.infinity_plan(50, 50, rng)
    assert inf.sum() == 50 and inf.shape == (100,)


# --- staircase runs --------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [
    CFG,
    StaircaseConfig.psychopy(500.0, step_sizes=[80, 40, 20, 10], n_down=3, n_up=1, step_type="lin",
                             min_val=100.0, max_val=1000.0, n_trials=60),
], ids=["hype-default", "psychopy-3down-shrinking-steps"])
def test_vectorised_runner_equals_trial_by_trial_staircase(cfg):
    """run_time_many tabulates hype.staircase's transitions; it must present exactly what the plain
    trial-by-trial loop through hype.staircase presents, for the same random draws."""
    pop = sm.Population(threshold_ms=300, threshold_sd=0.5)
    rng = np.random.default_rng(5)
    obs = pop.draw(6, rng)
    plans = sm.time_plan(2, 60, rng, n_evaluators=6)
    many = sm.run_time_many(obs, plans, cfg, np.random.default_rng(9), chunk_evaluators=4)
    shared = np.random.default_rng(9)
    for i in range(6):
        one = sm.run_time(obs[i], plans[i], cfg, shared)
        assert np.array_equal(one.exposure_ms, many.exposure_ms[i])
        assert np.array_equal(one.judged_fake, many.judged_fake[i])


def test_simulate_study_shapes_and_truth():
    pops = {"A": sm.Population(), "B": sm.Population(fake_accuracy=0.7)}
    study = sm.simulate_study(pops, 12, "hype-infinity", seed=3)
    assert study.data.models() == ["A", "B"] and study.data.n_evaluators == 24
    assert (study.data.n_fake == 50).all() and (study.data.n_real == 50).all()
    assert study.true_scores["B"] > study.true_scores["A"]
    tstudy = sm.simulate_study({"A": sm.Population()}, 5, "hype-time", seed=3, truth=False)
    assert tstudy.data.n_blocks.tolist() == [3] * 5 and (tstudy.data.n_trials == 450).all()
    assert tstudy.true_thresholds["A"] == pytest.approx(sm.true_threshold(sm.Population()))


def test_true_infinity_rates_match_a_large_simulation():
    pop = sm.Population(fake_accuracy=0.7, real_accuracy=0.85, ability_sd=0.6, criterion_sd=0.4)
    counts, _ = sm._simulate_infinity_model("m", pop, 40_000, InfinitySettings(), np.random.default_rng(0), "e")
    truth = sm.true_infinity_rates(pop)
    est = sc.infinity_rates(counts)
    assert est.overall == pytest.approx(truth.overall, abs=0.002)
    assert est.fakes == pytest.approx(truth.fakes, abs=0.003)
    assert est.reals == pytest.approx(truth.reals, abs=0.003)


# --- the estimators against the truth --------------------------------------------------------------


def test_hype_time_recovers_the_population_threshold():
    """(a) The staircase + block-mode estimator recovers the population's mean 75% threshold to within
    one step (10 ms), for a psychometric function as steep as masked-recognition data usually give
    (Weibull slope 4) and thresholds around the middle of the range. 6,000 evaluators: the MC error
    of the estimate is ~1.5 ms."""
    pop = sm.Population(threshold_ms=400, threshold_sd=0.25, slope=4.0, fake_accuracy=0.95, real_accuracy=0.95,
                        ability_sd=0.3)
    blocks, obs, _ = sm._simulate_time_model("m", pop, 6000, TimeSettings(), np.random.default_rng(11), "e")
    assert np.isfinite(obs.threshold_ms()).all()
    assert abs(sc.time_score(blocks) - sm.true_threshold(pop)) <= 10.0


def test_hype_time_mode_is_pulled_towards_the_start_for_shallow_functions():
    """Known limitation, kept visible: with a shallow psychometric function the 150-trial staircase
    spends much of a block on its way from 500 ms, so the block mode is biased towards 500 ms by more
    than a step (up for low thresholds, down for high ones). Not a bug in the code; a property of the
    paper's estimator."""
    rng = np.random.default_rng(2)
    for threshold, sign in ((200, +1), (800, -1)):
        pop = sm.Population(threshold_ms=threshold, threshold_sd=0.0, slope=1.5, fake_accuracy=0.95,
                            real_accuracy=0.95, ability_sd=0.0, criterion_sd=0.0)
        blocks, _, _ = sm._simulate_time_model("m", pop, 2000, TimeSettings(), rng, "e")
        assert sign * (sc.time_score(blocks) - threshold) > 10.0


def _coverage(data, truth: float, n_studies: int, n_per_study: int, method: str, seed: int) -> float:
    return interval_coverage(data, truth, n_per_study, method, n_studies=n_studies, rng=seed).covered


N_STUDIES = 2000  # binomial SE of a coverage near 95%: 0.5 points
N_PER_STUDY = 30


def _check_coverage(data, truth, mode):
    """The expanded percentile interval must cover 93-97%. The paper's plain percentile interval is
    known to be too narrow for 30 evaluators (plug-in SD and a normal quantile: about 93.6% in theory
    for a symmetric mean, lower for skewed HYPE-time scores, ~93% measured), so it gets a band two
    points wider at the bottom; a real defect (wrong resampling unit, wrong quantiles) shows far below."""
    expanded = _coverage(data, truth, N_STUDIES, N_PER_STUDY, "expanded", seed=1)
    percentile = _coverage(data, truth, N_STUDIES, N_PER_STUDY, "percentile", seed=1)
    assert 0.93 <= expanded <= 0.97, expanded
    assert 0.91 <= percentile <= 0.97, percentile
    assert expanded >= percentile
    # hype's default interval for the mode: 93-97%, and its misses balanced (1.5 points allows for the
    # Monte-Carlo SE of the difference of two miss rates, ~0.5 points at 2,000 studies; the full run's
    # figures are in experiments/ci_coverage.md)
    default = interval_coverage(data, truth, N_PER_STUDY, sc.default_method(mode), n_studies=N_STUDIES, rng=1)
    assert 0.93 <= default.covered <= 0.97, default
    assert abs(default.truth_above - default.truth_below) <= 0.015, default


def test_ci_coverage_hype_infinity():
    """(b) HYPE-infinity: 2,000 simulated studies of 30 evaluators x 100 images; truth by quadrature."""
    pop = sm.Population()
    data, _ = sm._simulate_infinity_model("m", pop, N_STUDIES * N_PER_STUDY, InfinitySettings(),
                                          np.random.default_rng(2024), "e")
    _check_coverage(data, sm.true_infinity_rates(pop).overall, "hype-infinity")


def test_ci_coverage_hype_time():
    """(b) HYPE-time: 2,000 studies of 30 evaluators x 3 blocks x 150 trials. The truth is the
    estimator's target, E over evaluators of the mean block mode (from 20,000 further simulated
    evaluators, MC error ~0.7 ms), not the mean 75% threshold (see the module docstring)."""
    pop = sm.Population()
    data, _, _ = sm._simulate_time_model("m", pop, N_STUDIES * N_PER_STUDY, TimeSettings(),
                                         np.random.default_rng(2025), "e")
    _check_coverage(data, sm.true_time_score(pop, n_evaluators=20_000), "hype-time")


def test_default_interval_is_the_one_the_measurement_picks():
    """The recorded coverage table (experiments/ci_coverage.py) must support each mode's default: 93-97%
    in every measured cell, misses within 1 point of each other (the issue's "symmetric misses") at 10,
    30 and 60 evaluators, and the most balanced misses (worst |above - below|) of the methods that
    resample the evaluators themselves and cover 93-97%. The model-based beta-binomial bootstrap-t is
    left out of that comparison: it covers less when some evaluators answer at random
    (experiments/ci_random_answerers.py). HYPE-infinity's default is kg-t (the studentized bootstrap with
    its bound toward 1/2 no nearer than Korn & Graubard's), HYPE-time's the studentized bootstrap."""
    from hype.coverage import MEASURED, SIZES

    def worst(method, mode):
        cells = [MEASURED[(method, mode, n)] for n in SIZES if (method, mode, n) in MEASURED]
        if len(cells) < len(SIZES):
            return False, math.inf
        return all(93 <= c[0] <= 97 for c in cells), max(abs(c[1] - c[2]) for c in cells)

    for mode in ("hype-infinity", "hype-time"):
        default = sc.default_method(mode)
        ok, imbalance = worst(default, mode)
        assert ok and imbalance <= 1.0, (mode, default, imbalance)
        others = [worst(m, mode)[1] for m in sc.METHODS
                  if m != default and m not in sc.MODEL_BASED_METHODS and worst(m, mode)[0]]
        assert all(imbalance <= o for o in others), (mode, default)


def test_clearly_different_models_are_separated_at_30_evaluators():
    """(c) Fakes error ~35% vs ~12% (HYPE-infinity) and thresholds 250 vs 450 ms (HYPE-time)."""
    inf = sm.simulate_study({"real-ish": sm.Population(fake_accuracy=0.65), "poor": sm.Population()}, 30,
                            "hype-infinity", seed=4)
    sep = sc.separability({m: sc.evaluator_scores(inf.data.select(m)) for m in inf.data.models()})
    assert sep.p_value < 0.05

    tim = sm.simulate_study({"real-ish": sm.Population(threshold_ms=450), "poor": sm.Population(threshold_ms=250)},
                            30, "hype-time", seed=4, truth=False)
    board = sc.leaderboard(tim.data, n_resamples=1000)
    assert board.separability.p_value < 0.05
    assert [r.model for r in board.rows] == ["real-ish", "poor"]


def test_plan_ci_halfwidth_shrinks_like_one_over_root_n():
    rows = sm.plan_ci_halfwidth("hype-infinity", [10, 40], n_trials=100, n_sim=40, n_resamples=500, seed=0)
    assert [r.n_evaluators for r in rows] == [10, 40]
    assert rows[0].mean_halfwidth / rows[1].mean_halfwidth == pytest.approx(2.0, rel=0.2)
    trows = sm.plan_ci_halfwidth("hype-time", [10, 20], n_sim=10, n_resamples=300, seed=0)
    assert trows[0].mean_halfwidth > trows[1].mean_halfwidth > 0
    assert set(rows[0].to_dict()) >= {"n_evaluators", "mean_halfwidth"}
