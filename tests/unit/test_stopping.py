"""hype/stopping.py (issue 15 part 2): the stopping rule's intervals and decisions, on hand-computed and
simulated studies; its coverage after stopping; the study setting and its validation; the forecast."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from hype import scoring, stopping
from hype import simulate as sm
from hype.protocol import InfinitySettings, SettingsError, StudySettings
from hype.settings_form import EDITABLE_WHILE_RUNNING, form_fields, settings_from_form


def test_t_interval_is_the_students_t_interval_at_the_corrected_level():
    x = [0.1, 0.2, 0.15, 0.3, 0.05, 0.12, 0.22, 0.18, 0.09, 0.14]
    iv = stopping.t_interval(x, stopping.corrected_level(0.95))
    half = stats.t.ppf(0.98, 9) * np.std(x, ddof=1) / math.sqrt(10)  # 96%: alpha 0.05 x 0.8 = 0.04
    assert iv.level == pytest.approx(0.96)
    assert iv.estimate == pytest.approx(np.mean(x)) and iv.halfwidth == pytest.approx(half)
    assert stopping.t_interval([0.1], 0.95) is None
    # identical scores: a floored SD, never an interval of width zero; an error rate stays in [0, 1]
    flat = stopping.t_interval([0.0] * 10, 0.96, (0.0, 1.0))
    assert flat.low == 0.0 and 0 < flat.high < 0.2


def test_decide_waits_for_the_minimum_then_stops_at_the_target_or_the_cap():
    steady = [0.0, 0.25] * 10  # SD 0.128..0.132; 96% half-width ~0.100 at 10
    rule = stopping.Rule(target_halfwidth=0.11, min_evaluators=10, max_evaluators=30, bounds=(0.0, 1.0))
    assert not stopping.decide(steady[:9], rule).stop  # narrow enough at 9, but below the minimum
    at_ten = stopping.decide(steady[:10], rule)
    assert at_ten.stop and at_ten.reason == stopping.TARGET and at_ten.interval.halfwidth <= 0.11
    assert at_ten.interval.level == pytest.approx(0.96)
    tight = stopping.Rule(target_halfwidth=0.05, min_evaluators=10, max_evaluators=20, bounds=(0.0, 1.0))
    assert not stopping.decide(steady[:19], tight).stop
    capped = stopping.decide(steady[:20], tight)
    assert capped.stop and capped.reason == stopping.CAP and capped.interval.level == pytest.approx(0.95)
    # without a target or separation nothing stops before the cap
    assert not stopping.decide(steady[:19], stopping.Rule(max_evaluators=20)).stop


def test_until_separate_stops_a_model_whose_interval_is_clear_of_every_other():
    rng = np.random.default_rng(0)
    apart = {"low": 0.10 + 0.02 * rng.standard_normal(12), "mid": 0.25 + 0.02 * rng.standard_normal(12),
             "high": 0.40 + 0.02 * rng.standard_normal(12)}
    rule = stopping.Rule(until_separate=True, min_evaluators=10, max_evaluators=60)
    d = stopping.decide_models(apart, rule)
    assert all(d[m].stop and d[m].reason == stopping.SEPARATED for m in apart)
    assert d["low"].interval.level == pytest.approx(rule.separation_level) == pytest.approx(0.97)
    # a fourth model whose wide interval overlaps them all: nobody is clear of every other model
    d = stopping.decide_models({**apart, "wide": 0.25 + 0.3 * np.tile([1.0, -1.0], 6)}, rule)
    assert not any(x.stop for x in d.values())
    # below the minimum nobody stops, however far apart
    assert not any(x.stop for x in stopping.decide_models({m: v[:9] for m, v in apart.items()}, rule).values())


def test_vectorised_stopping_point_matches_decide_on_simulated_studies():
    """The simulation and the forecast use stopping_point; the server uses decide: the same rule."""
    rng = np.random.default_rng(3)
    data, _ = sm._simulate_infinity_model("m", sm.Population(), 40 * 50, InfinitySettings(), rng, "e")
    x = scoring.evaluator_scores(data).reshape(40, 50)
    rule = stopping.Rule(target_halfwidth=0.03, min_evaluators=10, max_evaluators=50, bounds=(0.0, 1.0))
    stops = stopping.stopping_point(x, rule)
    for s in range(40):
        first = next(n for n in range(2, 51) if stopping.decide(x[s, :n], rule).stop)
        assert stops[s] == first
    assert 10 <= stops.min() and stops.max() <= 50 and len(set(stops.tolist())) > 3


def test_stopped_estimates_keep_their_coverage_where_naive_stopping_loses_it():
    """A small run of experiments/stopping.py's measurement (HYPE-infinity, 1,500 studies): the rule's
    stopped intervals cover the truth 93-97% of the time; deciding at 95% from 3 evaluators does not."""
    rng = np.random.default_rng(11)
    pop = sm.Population()
    data, _ = sm._simulate_infinity_model("m", pop, 1500 * 40, InfinitySettings(), rng, "e")
    x = scoring.evaluator_scores(data).reshape(1500, 40)
    truth = sm.true_infinity_rates(pop).overall

    def coverage(rule: stopping.Rule, level: float | None = None) -> float:
        stops = stopping.stopping_point(x, rule)
        ivs = [stopping.t_interval(x[s, :n], level or rule.level, rule.bounds) for s, n in enumerate(stops)]
        return float(np.mean([iv.low <= truth <= iv.high for iv in ivs]))

    rule = stopping.Rule(target_halfwidth=0.03, min_evaluators=10, max_evaluators=40, bounds=(0.0, 1.0))
    assert 0.93 <= coverage(rule) <= 0.97
    naive = stopping.Rule(target_halfwidth=0.03, min_evaluators=3, max_evaluators=40, bounds=(0.0, 1.0))
    old = stopping.ALPHA_SHRINK
    try:
        stopping.ALPHA_SHRINK = 1.0
        assert coverage(naive, 0.95) < 0.925
    finally:
        stopping.ALPHA_SHRINK = old


def test_quest_scores_get_the_log_normal_interval_computed_by_hand_and_the_vectorised_rule_agrees():
    """QUEST+'s posterior thresholds are skewed to the right; a QUEST+ study's rule decides with, and
    reports, Cox's interval for a log-normal mean (experiments/stopping.md: the t-interval rule's stopped
    estimates miss the truth from below far more often than 2.5%)."""
    from hype.stopping_state import rule_for

    x = np.array([210.0, 260.0, 300.0, 340.0, 420.0, 520.0, 610.0, 280.0, 330.0, 900.0])
    y = np.log(x)
    m, v, n = y.mean(), y.var(ddof=1), x.size
    half = stats.t.ppf(0.98, n - 1) * np.sqrt(v / n + v**2 / (2 * (n - 1)))
    iv = stopping.log_interval(x, 0.96)
    assert (iv.low, iv.high) == pytest.approx((np.exp(m + v / 2 - half), np.exp(m + v / 2 + half)))
    assert iv.estimate == pytest.approx(x.mean()) and iv.level == 0.96
    t = stopping.t_interval(x, 0.96)
    assert iv.high > t.high and iv.low > t.low  # shifted towards the long tail
    assert stopping.log_interval([300.0] * 5, 0.96) == stopping.t_interval([300.0] * 5, 0.96)  # no spread: t's floor

    quest = StudySettings.from_dict({"mode": "hype-time", "time": {"adaptive": True}, "evaluators_per_model": 50,
                                     "stopping": {"target_halfwidth": 60.0}})
    rule = rule_for(quest)
    assert rule.scale == "log" and rule_for(StudySettings.from_dict({"mode": "hype-time"})).scale == "linear"
    rng = np.random.default_rng(4)
    seqs = np.exp(rng.normal(np.log(300), 0.45, size=(30, 50)))
    stops = stopping.stopping_point(seqs, rule)
    for s_ in range(30):
        assert stops[s_] == next(k for k in range(2, 51) if stopping.decide(seqs[s_, :k], rule).stop)
    assert len(set(stops.tolist())) > 3
    shown, name = stopping.stopped_interval(seqs[0, :stops[0]], stopping.TARGET, rule, "hype-time")
    low, high = stopping.STOPPED_COVERAGE[(stopping.QUEST_KIND, stopping.TARGET)]
    assert shown == stopping.decide(seqs[0, :stops[0]], rule).interval
    assert name.startswith("log-normal (Cox) interval at 97%") and f"{low:g}–{high:g}%" in name
    assert 93.0 <= low <= high <= 97.0


def test_quest_stopped_estimates_keep_their_coverage_with_the_log_normal_rule_where_the_t_rule_loses_it():
    """A small run of experiments/stopping.py's QUEST+ measurement, on its cached pool of simulated QUEST+
    evaluators (posterior thresholds, 3 x 150 trials, hype's default population; truth = the pool's
    mean): 1,500 studies resampled from the pool, target 60 ms. The staircase's t-interval rule stops
    on samples that lack the slow evaluators and misses the truth from below; the log-normal rule
    a QUEST+ study runs keeps 93-97%. The pool must have been simulated with today's QUEST+ (its default
    exposure rule and HYPE-time settings): a pool of another rule's scores measures another procedure."""
    from pathlib import Path

    from hype.adaptive import QuestConfig
    from hype.protocol import TimeSettings
    from hype.stopping_state import rule_for

    cached = np.load(Path(__file__).resolve().parents[2] / "experiments" / "stopping_quest_pool.npz", allow_pickle=False)
    settings = replace(TimeSettings(), adaptive=True)
    rebuild = "rebuild it: python experiments/stopping.py --only-quest"
    assert "rule" in cached.files, f"the QUEST+ pool does not say which exposure rule simulated it; {rebuild}"
    assert str(cached["rule"]) == QuestConfig.from_time_settings(settings).target, \
        f"the QUEST+ pool was simulated with the {cached['rule']} rule, not today's default; {rebuild}"
    assert repr(settings) in str(cached["key"]), f"the QUEST+ pool was simulated with other HYPE-time settings; {rebuild}"
    pool = cached["default"]
    truth = float(pool.mean())
    rng = np.random.default_rng(15)
    x = np.stack([pool[rng.permutation(pool.size)[:60]] for _ in range(1500)])

    def coverage(rule: stopping.Rule) -> tuple[float, float]:
        stops = stopping.stopping_point(x, rule)
        ivs = [stopping.decide(x[s, :n], rule).interval for s, n in enumerate(stops)]
        return float(np.mean([iv.low <= truth <= iv.high for iv in ivs])), float(np.mean([iv.high < truth for iv in ivs]))

    quest = rule_for(StudySettings.from_dict({"mode": "hype-time", "time": {"adaptive": True}, "evaluators_per_model": 60,
                                              "stopping": {"target_halfwidth": 60.0}}))
    covered, above = coverage(quest)
    assert 0.93 <= covered <= 0.97 and above < 0.05
    covered, above = coverage(replace(quest, scale="linear"))
    assert covered < 0.93 and above > 0.065


# -- the study setting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data, message", [
    ({"stopping": {"target_halfwidth": -1.0}}, "half-width in percentage points between 0"),
    ({"stopping": {"target_halfwidth": 50.0}}, "half-width in percentage points between 0"),
    ({"mode": "hype-time", "stopping": {"target_halfwidth": 2000.0}}, "half-width in ms between 0"),
    ({"stopping": {"min_evaluators": 5}}, "min_evaluators must be >= 10"),
    ({"evaluators_per_model": 8, "stopping": {"target_halfwidth": 3.0}}, "cannot exceed evaluators_per_model"),
    ({"stopping": {"until_models_separate": "yes"}}, "must be true or false"),
])
def test_stopping_settings_are_validated_in_one_place(data, message):
    with pytest.raises(SettingsError, match=message):
        StudySettings.from_dict(data)


def test_the_form_offers_the_stopping_settings_and_they_stay_editable_while_running():
    paths = {f.path for f in form_fields()}
    assert {"stopping.target_halfwidth", "stopping.until_models_separate", "stopping.min_evaluators"} <= paths
    assert {"stopping.target_halfwidth", "stopping.until_models_separate", "stopping.min_evaluators"} <= set(EDITABLE_WHILE_RUNNING)
    s = StudySettings.from_dict(settings_from_form({"stopping_target_halfwidth": "2.5", "stopping_min_evaluators": "12",
                                                    "stopping_until_models_separate": "on"}))
    assert (s.stopping.target_halfwidth, s.stopping.min_evaluators, s.stopping.until_models_separate) == (2.5, 12, True)
    assert s.target_halfwidth_score() == pytest.approx(0.025)
    assert StudySettings.from_dict({"mode": "hype-time", "stopping": {"target_halfwidth": 40}}).target_halfwidth_score() == 40
    assert StudySettings().target_halfwidth_score() is None


# -- the forecast ---------------------------------------------------------------------------------------


def test_forecast_simulates_the_evaluators_still_needed_from_the_studys_own_scores():
    from hype.stopping_state import forecast

    settings = StudySettings.from_dict({"evaluators_per_model": 60, "stopping": {"target_halfwidth": 3.0}})
    rng = np.random.default_rng(2)
    scores = np.clip(0.15 + 0.06 * rng.standard_normal(12), 0, 1)  # SD 0.06: ~35 evaluators for +-3 points
    f = forecast(settings, scores, seed=1)
    assert "fitted to this model's 12 evaluators" in f.population
    # the fitted spread includes the binomial noise once more (hype.planning): a cautious forecast
    assert 10 <= f.more_median <= 48 and f.more_low < f.more_median <= f.more_high <= 48
    per_evaluator = settings.pay.base_usd + settings.pay.bonus_per_correct_usd * 100 * 0.85  # roughly
    assert f.cost_usd == pytest.approx(f.more_median * per_evaluator, rel=0.1)
    looser = forecast(StudySettings.from_dict({"evaluators_per_model": 60, "stopping": {"target_halfwidth": 5.0}}),
                      scores, seed=1)
    assert looser.more_median < f.more_median
    assert forecast(StudySettings(), scores) is None  # no target: nothing to forecast
    assert "default population" in forecast(settings, scores[:3], seed=1).population
