"""hype.scoring: hand-computed cases, the bootstrap against scipy, separability and leaderboards."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from scipy import stats

from hype import scoring as sc
from hype.scoring import InfinityCounts, ScoringError, TimeBlocks

# A small table of judgments, scored by hand:
#   evaluator a: fakes F F F R (1 fake judged real of 4), reals R F (1 real judged fake of 2)
#   evaluator b: fakes F R (1 of 2),                      reals R R R F (1 of 4)
#   one more trial of b is flagged (excluded) and would otherwise be an error.
TRIALS = [
    # evaluator, is_fake, judged_fake, excluded
    ("a", True, True, False), ("a", True, True, False), ("a", True, True, False), ("a", True, False, False),
    ("a", False, False, False), ("a", False, True, False),
    ("b", True, True, False), ("b", True, False, False),
    ("b", False, False, False), ("b", False, False, False), ("b", False, False, False), ("b", False, True, False),
    ("b", True, False, True),
]


def _trial_columns(rows=TRIALS):
    ev, fake, judged, excl = zip(*rows)
    return list(ev), list(fake), list(judged), list(excl)


def test_hand_computed_error_rates():
    ev, fake, judged, excl = _trial_columns()
    counts = InfinityCounts.from_trials(ev, "M", fake, judged, excl)
    assert counts.fake_errors.tolist() == [1, 1] and counts.n_fake.tolist() == [4, 2]
    assert counts.real_errors.tolist() == [1, 1] and counts.n_real.tolist() == [2, 4]
    rates = sc.infinity_rates(counts)
    assert rates.overall == 4 / 12
    assert rates.fakes == 2 / 6
    assert rates.reals == 2 / 6
    assert counts.exclusions() == (1, 0)


def test_flagged_trials_can_be_kept():
    ev, fake, judged, excl = _trial_columns()
    counts = InfinityCounts.from_trials(ev, "M", fake, judged, excl, exclude_flagged=False)
    assert sc.infinity_rates(counts).overall == 5 / 13
    assert counts.exclusions() == (0, 0)


def test_trials_and_counts_give_the_same_arrays():
    ev, fake, judged, excl = _trial_columns()
    from_trials = InfinityCounts.from_trials(ev, "M", fake, judged, excl)
    from_counts = InfinityCounts.from_counts(["b", "a"], "M", [1, 1], [2, 4], [1, 1], [4, 2], excluded_trials=[1, 0])
    for name in sc._INF_FIELDS:
        a, b = getattr(from_trials, name), getattr(from_counts, name)
        order = np.argsort(from_counts.evaluator)
        assert b[order].tolist() == a.tolist(), name


def test_score_is_pooled_not_mean_of_rates():
    # a: 5 errors of 10 trials (50%), b: 0 of 90 -> pooled 5/100, mean of per-evaluator rates 25%
    counts = InfinityCounts.from_counts(["a", "b"], "M", [5, 0], [5, 45], [0, 0], [5, 45])
    assert sc.infinity_rates(counts).overall == pytest.approx(5 / 100)
    assert np.mean(sc.evaluator_scores(counts)) == pytest.approx(0.25)


def test_excluded_evaluators_are_left_out_and_counted():
    ev, fake, judged, excl = _trial_columns()
    counts = InfinityCounts.from_trials(ev, "M", fake, judged, excl, excluded_evaluators=["b"])
    assert sc.infinity_rates(counts).overall == 2 / 6
    res = sc.bootstrap_infinity(counts, n_resamples=200, rng=0)
    assert res.n_evaluators == 1 and res.n_trials == 6
    assert res.n_excluded == 6 + 1  # b's six scored trials and its flagged one
    assert res.n_excluded_evaluators == 1


def test_duplicate_evaluator_rejected():
    with pytest.raises(ScoringError, match="more than once"):
        InfinityCounts.from_counts(["a", "a"], "M", [1, 1], 2, [0, 0], 2)


def test_errors_cannot_exceed_trials():
    with pytest.raises(ScoringError):
        InfinityCounts.from_counts(["a"], "M", [3], 2, [0], 2)


# --- HYPE-time -----------------------------------------------------------------------------------


def test_block_mode_and_ties():
    assert sc.block_mode([500, 490, 480, 490, 520, 490]) == 490
    assert sc.block_mode([300, 300, 400, 400, 500]) == 350  # tie -> mean of the tied modes
    assert sc.block_mode([100, 200, 600]) == 300  # all tied
    assert sc.block_mode([300.0, 300.0000000001, 310]) == 300  # float noise does not split a level
    # measured exposures only have modes once binned to the frame interval
    assert sc.block_mode([16.6, 16.8, 33.2, 33.5, 33.4], resolution_ms=50 / 3) == pytest.approx(100 / 3)


def test_time_blocks_per_block_evaluator_model():
    ev = ["a"] * 6 + ["b"] * 3
    blk = [1, 1, 1, 2, 2, 2, 1, 1, 1]
    x = [100, 100, 200, 300, 400, 400, 500, 600, 700]
    t = TimeBlocks.from_trials(ev, "M", blk, x)
    assert t.block_score.tolist() == [100, 400, 600]
    assert t.evaluator_score.tolist() == [250, 600]
    assert sc.time_score(t) == 425


def test_time_excluded_trials_leave_the_mode():
    ev = ["a"] * 5 + ["b"] * 2
    blk = [1] * 5 + [1] * 2
    x = [300, 300, 400, 400, 400, 500, 500]
    flagged = [False, False, True, True, False, True, True]  # b's only block is fully flagged
    t = TimeBlocks.from_trials(ev, "M", blk, x, flagged)
    assert t.block_score.tolist() == [300]
    res = sc.bootstrap_time(t, n_resamples=100, rng=0)
    assert res.estimate == 300
    assert (res.n_evaluators, res.n_trials, res.n_excluded, res.n_excluded_evaluators) == (1, 3, 4, 1)


def test_time_from_block_scores_matches_from_trials():
    rng = np.random.default_rng(1)
    x = rng.choice([300, 310, 320, 330], size=(4, 3, 20))
    ev = np.repeat([f"e{i}" for i in range(4)], 60)
    blk = np.tile(np.repeat([0, 1, 2], 20), 4)
    t = TimeBlocks.from_trials(ev, "M", blk, x.ravel())
    modes = [sc.block_mode(x[i, b]) for i in range(4) for b in range(3)]
    t2 = TimeBlocks.from_block_scores(np.repeat([f"e{i}" for i in range(4)], 3), "M", modes)
    assert np.allclose(t.evaluator_score, t2.evaluator_score)
    with pytest.raises(ScoringError, match="per-trial"):
        sc.bootstrap_time(t2, n_resamples=10, two_level=True)


# --- bootstrap -----------------------------------------------------------------------------------


def _random_counts(n: int, trials: int, seed: int) -> InfinityCounts:
    rng = np.random.default_rng(seed)
    half = trials // 2
    p_fake = rng.beta(3, 7, n)
    p_real = rng.beta(2, 10, n)
    return InfinityCounts.from_counts([f"e{i}" for i in range(n)], "M", rng.binomial(half, p_fake), half,
                                      rng.binomial(half, p_real), half)


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_bootstrap_matches_scipy_within_monte_carlo_error(method):
    counts = _random_counts(30, 100, seed=3)
    ours = sc.bootstrap_infinity(counts, method=method, rng=11)

    def ratio(errors, trials, axis=-1):
        return errors.sum(axis=axis) / trials.sum(axis=axis)

    ref = stats.bootstrap((counts.errors.astype(float), counts.n_trials.astype(float)), ratio, paired=True,
                          vectorized=True, n_resamples=10_000, method=method, rng=np.random.default_rng(12))
    se = ref.standard_error
    # Monte-Carlo SE of a 2.5% quantile from 10,000 resamples is ~0.027 SE; two independent runs differ
    # by ~0.04 SE. 0.2 SE is five of those, and still far tighter than any real discrepancy.
    assert ours.standard_error == pytest.approx(se, rel=0.05)
    assert abs(ours.confidence_interval.low - ref.confidence_interval.low) < 0.2 * se
    assert abs(ours.confidence_interval.high - ref.confidence_interval.high) < 0.2 * se
    assert ours.estimate == ratio(counts.errors, counts.n_trials)


def test_time_bootstrap_matches_scipy_mean():
    rng = np.random.default_rng(5)
    scores = rng.lognormal(np.log(300), 0.4, 30)
    t = TimeBlocks.from_block_scores([f"e{i}" for i in range(30)], "M", scores)
    ours = sc.bootstrap_time(t, rng=1)
    ref = stats.bootstrap((scores,), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(2))
    se = ref.standard_error
    assert abs(ours.confidence_interval.low - ref.confidence_interval.low) < 0.2 * se
    assert abs(ours.confidence_interval.high - ref.confidence_interval.high) < 0.2 * se


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_interval_formula_equals_scipy_on_the_same_distribution(method):
    """Given scipy's own bootstrap distribution, our interval code reproduces scipy's CI to float
    precision: percentile quantiles, BCa bias correction and jackknife acceleration alike."""
    counts = _random_counts(25, 100, seed=8)
    e, n = counts.errors.astype(float), counts.n_trials.astype(float)
    ref = stats.bootstrap((e, n), lambda a, b, axis=-1: a.sum(axis) / b.sum(axis), paired=True, vectorized=True,
                          n_resamples=2000, method=method, rng=np.random.default_rng(4))
    jack = sc._jackknife_ratio(e, n)
    ci = sc._interval(ref.bootstrap_distribution, e.sum() / n.sum(), jack, 0.95, method, 25)
    assert ci.low == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    assert ci.high == pytest.approx(ref.confidence_interval.high, rel=1e-12)


def test_expanded_percentile_is_wider_by_the_small_sample_factor():
    counts = _random_counts(30, 100, seed=9)
    plain = sc.bootstrap_infinity(counts, rng=1)
    wide = sc.bootstrap_infinity(counts, rng=1, method="expanded")
    assert np.array_equal(plain.bootstrap_distribution, wide.bootstrap_distribution)
    ratio = wide.halfwidth / plain.halfwidth
    expected = math.sqrt(30 / 29) * stats.t.ppf(0.975, 29) / stats.norm.ppf(0.975)  # ~1.06
    assert ratio == pytest.approx(expected, rel=0.05)


def test_bootstrap_is_seeded_and_shaped_like_scipy():
    counts = _random_counts(20, 100, seed=1)
    a = sc.bootstrap_infinity(counts, n_resamples=500, rng=7)
    b = sc.bootstrap_infinity(counts, n_resamples=500, rng=np.random.default_rng(7))
    assert np.array_equal(a.bootstrap_distribution, b.bootstrap_distribution)
    assert a.bootstrap_distribution.shape == (500,)
    assert a.confidence_interval.low <= a.estimate <= a.confidence_interval.high
    assert a.standard_error == pytest.approx(a.bootstrap_distribution.std(ddof=1))
    assert a.confidence_interval._fields == ("low", "high")
    json.dumps(a.to_dict())
    assert len(a.to_dict(include_distribution=True)["bootstrap_distribution"]) == 500


def test_bootstrap_chunks_bound_memory_without_changing_the_distribution_law():
    counts = _random_counts(30, 100, seed=2)
    small = sc.bootstrap_infinity(counts, rng=3, chunk_elements=1000)  # 33 resamples per chunk
    big = sc.bootstrap_infinity(counts, rng=4)
    assert small.standard_error == pytest.approx(big.standard_error, rel=0.05)


@pytest.mark.serial  # a wall-time bound
def test_bootstrap_is_vectorised():
    counts = _random_counts(120, 450, seed=2)
    start = time.perf_counter()
    sc.bootstrap_infinity(counts, rng=0)
    assert time.perf_counter() - start < 2.0  # a Python loop per resample takes far longer


def test_two_level_bootstrap():
    counts = _random_counts(30, 100, seed=6)
    one = sc.bootstrap_infinity(counts, rng=1)
    two = sc.bootstrap_infinity(counts, rng=1, two_level=True)
    assert two.estimate == one.estimate
    # resampling images inside evaluators adds their binomial noise a second time: wider, not narrower
    assert two.standard_error > one.standard_error
    assert abs(two.bootstrap_distribution.mean() - one.estimate) < 3 * two.standard_error / 100

    rng = np.random.default_rng(0)
    x = np.clip(np.round(rng.normal(350, 40, (10, 3, 40)), -1), 100, 1000)
    t = TimeBlocks.from_trials(np.repeat([f"e{i}" for i in range(10)], 120), "M",
                               np.tile(np.repeat([0, 1, 2], 40), 10), x.ravel())
    r = sc.bootstrap_time(t, n_resamples=500, rng=2, two_level=True)
    assert r.two_level and np.isfinite(r.bootstrap_distribution).all()
    assert r.confidence_interval.low < r.estimate < r.confidence_interval.high


def test_bootstrap_guards():
    counts = InfinityCounts.from_counts(["a", "b"], ["M", "N"], [1, 1], 2, [0, 0], 2)
    with pytest.raises(ScoringError, match="one model"):
        sc.bootstrap_infinity(counts)
    with pytest.raises(ScoringError, match="method"):
        sc.bootstrap_infinity(counts.select("M"), method="basic")
    empty = InfinityCounts.from_counts(["a"], "M", [1], 2, [0], 2, evaluator_excluded=[True])
    res = sc.bootstrap_infinity(empty, n_resamples=10)
    assert math.isnan(res.estimate) and res.n_excluded_evaluators == 1
    json.dumps(res.to_dict())


# --- separability, letters, ranking --------------------------------------------------------------


def test_two_models_t_test_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 0.1, 30), rng.normal(0.2, 0.15, 25)
    for welch in (False, True):
        sep = sc.separability({"A": a, "B": b}, welch=welch)
        ref = stats.ttest_ind(a, b, equal_var=not welch)
        assert sep.p_value == pytest.approx(ref.pvalue)
        assert sep.test == ("welch-t" if welch else "student-t")
        assert sep.pairwise[0].difference == pytest.approx(a.mean() - b.mean())


def test_anova_and_tukey_match_scipy():
    rng = np.random.default_rng(1)
    groups = {"A": rng.normal(0.40, 0.08, 30), "B": rng.normal(0.38, 0.08, 30), "C": rng.normal(0.20, 0.08, 30)}
    sep = sc.separability(groups)
    assert sep.test == "anova+tukey"
    assert sep.p_value == pytest.approx(stats.f_oneway(*groups.values()).pvalue)
    tukey = stats.tukey_hsd(*groups.values())
    pairs = {(p.model_a, p.model_b): p for p in sep.pairwise}
    assert pairs[("A", "C")].p_value == pytest.approx(tukey.pvalue[0, 2])
    assert pairs[("A", "C")].significant and not pairs[("A", "B")].significant
    assert sep.letters == {"A": "a", "B": "a", "C": "b"}
    json.dumps(sep.to_dict())


def test_compact_letters_hand_case():
    # a > b > c; only a-c differ: a and b share a letter, b and c share another
    letters = sc.compact_letters(["a", "b", "c"], [3, 2, 1], {("a", "c"): True})
    assert letters == {"a": "a", "b": "ab", "c": "b"}
    all_diff = sc.compact_letters(["x", "y", "z"], [1, 2, 3], {("x", "y"): True, ("x", "z"): True, ("y", "z"): True})
    assert all_diff == {"z": "a", "y": "b", "x": "c"}


def test_ranking_stability():
    rng = np.random.default_rng(0)
    dists = {"A": rng.normal(0.5, 0.01, 4000), "B": rng.normal(0.3, 0.01, 4000), "C": rng.normal(0.1, 0.01, 4000)}
    rs = sc.ranking_stability({"A": 0.5, "B": 0.3, "C": 0.1}, dists)
    assert rs.ranking == ("A", "B", "C") and rs.p_same_ranking == 1.0
    twins = {"A": rng.normal(0.3, 0.05, 4000), "B": rng.normal(0.3, 0.05, 4000)}
    rs = sc.ranking_stability({"A": 0.3001, "B": 0.3}, twins)
    assert rs.p_at_rank["A"] == pytest.approx(0.5, abs=0.05)
    assert sum(rs.rank_probabilities["A"]) == pytest.approx(1.0)


def test_leaderboard_infinity():
    rng = np.random.default_rng(2)
    parts = []
    for model, p in (("good", 0.35), ("mid", 0.2), ("bad", 0.05)):
        parts.append(InfinityCounts.from_counts([f"{model}{i}" for i in range(30)], model,
                                                rng.binomial(50, p, 30), 50, rng.binomial(50, 0.1, 30), 50))
    counts = InfinityCounts(**{f: np.concatenate([getattr(c, f) for c in parts]) for f in sc._INF_FIELDS})
    board = sc.leaderboard(counts, n_resamples=2000, seed=1)
    assert [r.model for r in board.rows] == ["good", "mid", "bad"]
    assert [r.rank for r in board] == [1, 2, 3]
    top = board.rows[0]
    assert top.ci_low < top.estimate < top.ci_high and top.n_evaluators == 30
    assert top.fakes_error == pytest.approx(sc.infinity_rates(counts.select("good")).fakes)
    assert board.separability.letters == {"good": "a", "mid": "b", "bad": "c"}
    assert board.ranking.p_same_ranking > 0.99
    text = json.dumps(board.to_dict())
    assert "NaN" not in text
    # a model's interval does not depend on which other models are on the board
    alone = sc.leaderboard(counts.subset(counts.model != "bad"), n_resamples=2000, seed=1)
    assert alone.results["good"].confidence_interval == board.results["good"].confidence_interval


def test_leaderboard_time_higher_is_better():
    rows = []
    for model, centre in (("slow", 450.0), ("fast", 250.0)):
        for i in range(20):
            for b in range(3):
                rows.append((f"{model}{i}", model, b, centre + 10 * ((i + b) % 5)))
    ev, model, blk, score = zip(*rows)
    t = TimeBlocks.from_block_scores(ev, model, score)
    board = sc.leaderboard(t, n_resamples=500)
    assert [r.model for r in board.rows] == ["slow", "fast"]
    assert board.rows[0].fakes_error is None
    assert board.separability.test == "student-t" and board.separability.p_value < 1e-6
    json.dumps(board.to_dict())


def test_concat_keeps_models_apart_and_histograms_aligned():
    a = InfinityCounts.from_counts(["x"], "A", [1], 2, [0], 2)
    b = InfinityCounts.from_counts(["x"], "B", [2], 2, [1], 2)
    both = InfinityCounts.concat([a, b])
    assert both.models() == ["A", "B"] and sc.infinity_rates(both.select("B")).overall == 3 / 4
    with pytest.raises(ScoringError, match="more than once"):
        InfinityCounts.concat([a, a])

    t1 = TimeBlocks.from_trials(["e"] * 3, "A", [0, 0, 0], [300, 300, 310])
    t2 = TimeBlocks.from_trials(["e"] * 3, "B", [0, 0, 0], [500, 490, 490])
    joined = TimeBlocks.concat([t1, t2])
    assert joined.levels.tolist() == [300, 310, 490, 500]
    assert np.allclose(sc.modes_from_counts(joined.block_counts, joined.levels), joined.block_score)
    assert sc.time_score(joined.select("B")) == 490


def test_studentized_interval_of_an_error_rate_stays_within_0_and_1():
    # Few evaluators near 0 errors with one outlier: the bootstrap-t interval's low end fell below 0
    # (the compare page showed "-0.7% – 36.5%"). Clipping to [0, 1] keeps the truth inside it.
    counts = InfinityCounts.from_counts([f"w{i}" for i in range(6)], "m", np.array([0, 0, 0, 1, 0, 30]), 50,
                                        np.array([0, 1, 0, 0, 0, 25]), 50)
    result = sc.bootstrap_infinity(counts, method="studentized", n_resamples=4000, rng=3)
    low, high = result.confidence_interval
    assert 0.0 <= low < result.estimate < high <= 1.0


# --- beta-binomial bootstrap-t (HYPE-infinity's default interval)


def test_betabinomial_fit_matches_a_hand_computation():
    # rates 1/10 and 3/10: m = 4/20 = 0.2; spread = sum n (r - m)^2 / (m (1 - m)) = 10 * 0.02 / 0.16 = 1.25;
    # Kleinman's denominator N - sum n^2 / N - (k - 1) = 20 - 10 - 1 = 9; rho = (1.25 - 1) / 9
    m, rho = sc._betabinomial_fit(np.array([1.0, 3.0]), np.array([10.0, 10.0]))
    assert m == pytest.approx(0.2) and rho == pytest.approx(0.25 / 9)
    # evaluators who differ less than coin flips would: plain binomial (rho clipped at 0)
    assert sc._betabinomial_fit(np.array([5.0, 5.0, 5.0]), np.array([10.0, 10.0, 10.0])) == (0.5, 0.0)


def test_inverse_cdf_table_gives_exactly_what_searchsorted_gives():
    rng = np.random.default_rng(0)
    for size in (1, 3, 100, 450):
        cdf = np.cumsum(rng.dirichlet(np.full(size + 1, 0.3)))[:-1]
        u = rng.random(50_000)
        u[: min(size, 5)] = cdf[: min(size, 5)]  # ties with a breakpoint
        assert np.array_equal(sc._inverse_cdf(cdf, u), np.searchsorted(cdf, u, side="right"))


def test_betabinomial_resamples_have_the_fitted_beta_binomials_moments():
    errors, trials = np.array([8.0, 14, 11, 25, 9, 13, 17, 10, 12, 21]), np.full(10, 100.0)
    m, rho = sc._betabinomial_fit(errors, trials)
    est, se = sc._resample_betabinomial(errors, trials, 40_000, np.random.default_rng(1), 4_000_000)
    # a mean of 10 beta-binomial rates: mean m, variance m (1 - m) (1 + 99 rho) / (100 * 10)
    sd = math.sqrt(m * (1 - m) * (1 + 99 * rho) / 1000)
    assert est.mean() == pytest.approx(m, abs=4 * sd / math.sqrt(40_000))
    assert est.std() == pytest.approx(sd, rel=0.03)
    assert stats.skew(est) > 0.05  # a low error rate: the drawn rates lean high, as real ones do
    assert np.all(se > 0)


def _split(ids, totals, model="m"):
    """Per-evaluator error totals of 100 trials (50 fakes, 50 reals) as counts."""
    totals = np.asarray(totals)
    return InfinityCounts.from_counts(ids, model, totals // 2, 50, totals - totals // 2, 50)


def test_betabinomial_t_interval_is_symmetric_for_symmetric_data_and_leans_with_skew():
    ids = [f"w{i}" for i in range(12)]
    # error rates spread symmetrically around 50%: a symmetric interval
    res = sc.bootstrap_infinity(_split(ids, [40, 60, 45, 55, 50, 50, 35, 65, 48, 52, 42, 58]),
                                method="betabinomial-t", n_resamples=20_000, rng=4)
    low, high = res.confidence_interval
    assert res.estimate == 0.5 and high - low > 0.05
    assert high - 0.5 == pytest.approx(0.5 - low, rel=0.03)
    # a low error rate: the interval reaches further above the estimate than below it; mirrored
    # (errors <-> correct answers), the mirrored interval
    totals = np.array([7, 11, 7, 16, 6, 11, 12, 5, 10, 17, 9, 11])
    low_rate = sc.bootstrap_infinity(_split(ids, totals), method="betabinomial-t", n_resamples=20_000, rng=4)
    high_rate = sc.bootstrap_infinity(_split(ids, 100 - totals), method="betabinomial-t", n_resamples=20_000, rng=4)
    lo, hi = low_rate.confidence_interval
    assert hi - low_rate.estimate > 1.1 * (low_rate.estimate - lo)
    assert high_rate.estimate == pytest.approx(1 - low_rate.estimate)
    assert high_rate.confidence_interval.low == pytest.approx(1 - hi, abs=0.002)
    assert high_rate.confidence_interval.high == pytest.approx(1 - lo, abs=0.002)


def test_betabinomial_t_of_binomial_evaluators_is_a_binomial_bootstrap_t_computed_by_hand():
    """Evaluators who differ less than coin flips would (rho = 0): each resample draws every evaluator's
    errors from Binomial(20, pooled rate); the same uniforms through scipy's binomial quantile function,
    studentized and inverted by hand, give the interval."""
    errors = np.array([2, 2, 1, 3, 2, 2, 2, 3, 1, 2])  # of 20 trials each: pooled rate 0.1
    counts = InfinityCounts.from_counts([f"w{i}" for i in range(10)], "m", errors, 20, np.zeros(10, int), 0)
    res = sc.bootstrap_infinity(counts, method="betabinomial-t", n_resamples=4000, rng=7)
    x = stats.binom.ppf(np.random.default_rng(7).random((4000, 10)), 20, 0.1)
    r = x.sum(axis=1) / 200
    se_star = np.sqrt(np.square(x - r[:, None] * 20).sum(axis=1)) / 200
    se_hat = math.sqrt(np.square(errors - 0.1 * 20).sum()) / 200
    t = (r - 0.1) / np.maximum(se_star, se_hat / math.sqrt(10))
    q_lo, q_hi = np.quantile(t, [0.025, 0.975])
    assert np.allclose(res.bootstrap_distribution, r)
    assert res.confidence_interval.low == pytest.approx(max(0.1 - q_hi * se_hat, 0.0))
    assert res.confidence_interval.high == pytest.approx(0.1 - q_lo * se_hat)


def test_betabinomial_t_is_for_error_counts_only_and_not_the_default():
    with pytest.raises(ScoringError, match="HYPE-infinity error counts"):
        sc.bootstrap_mean([0.1, 0.4, 0.3], method="betabinomial-t")
    t = TimeBlocks.from_block_scores(["a", "b", "c"], "m", [300.0, 350.0, 420.0])
    with pytest.raises(ScoringError, match="use studentized"):
        sc.bootstrap_time(t, method="betabinomial-t")
    counts = InfinityCounts.from_counts([f"w{i}" for i in range(8)], "m", [3, 6, 4, 9, 2, 5, 7, 3], 50,
                                        [4, 5, 3, 7, 4, 6, 5, 2], 50)
    board = sc.leaderboard(counts, n_resamples=500)
    assert board.method == sc.DEFAULT_METHODS["hype-infinity"] == "kg-t"
    assert "betabinomial-t" in sc.MODEL_BASED_METHODS and sc.leaderboard(counts, n_resamples=500,
                                                                        method="betabinomial-t").method == "betabinomial-t"
    assert board.rows[0].sdt.method == "studentized"  # d' and c are means: the studentized interval
    assert sc.leaderboard(t, n_resamples=500).method == sc.DEFAULT_METHODS["hype-time"] == "studentized"


def test_korn_graubard_interval_matches_a_hand_computation():
    """Errors 2, 5, 3, 10 of 20 trials: pooled 0.25; v = 4/3 * (9 + 0 + 4 + 25) / 80^2; effective trials
    0.1875 / v = 3600 / 152, times (z / t_3)^2; Clopper-Pearson at x = 0.25 of that. With no errors at all
    (v = 0) the effective trials are the trials themselves, and Clopper-Pearson's bound at x = 0 has a
    closed form, 1 - 0.025^(1 / n); all errors mirror it."""
    e, t = np.array([2.0, 5.0, 3.0, 10.0]), np.full(4, 20.0)
    n_df = 3600 / 152 * (stats.norm.ppf(0.975) / stats.t.ppf(0.975, 3)) ** 2
    ci = sc.korn_graubard_interval(e, t, 0.95)
    assert ci.low == pytest.approx(stats.beta.ppf(0.025, 0.25 * n_df, 0.75 * n_df + 1), rel=1e-9)
    assert ci.high == pytest.approx(stats.beta.ppf(0.975, 0.25 * n_df + 1, 0.75 * n_df), rel=1e-9)
    n_df = 150 * (stats.norm.ppf(0.975) / stats.t.ppf(0.975, 2)) ** 2
    assert sc.korn_graubard_interval(np.zeros(3), np.full(3, 50.0), 0.95) == (0.0, pytest.approx(1 - 0.025 ** (1 / n_df)))
    assert sc.korn_graubard_interval(np.full(3, 50.0), np.full(3, 50.0), 0.95) == (pytest.approx(0.025 ** (1 / n_df)), 1.0)
    assert all(math.isnan(b) for b in sc.korn_graubard_interval(np.array([3.0]), np.array([20.0]), 0.95))


def test_kg_t_moves_only_the_bound_toward_half_out_to_korn_graubards_and_mirrors():
    """A low error rate spread evenly (the sample shows no lean): the bootstrap-t's upper bound stays near
    where its lower one is, Korn-Graubard's reaches further, and kg-t takes it; its lower bound is the
    bootstrap-t's, from the same resamples. Errors and correct answers swapped, every bound mirrors."""
    ids = [f"w{i}" for i in range(10)]
    totals = np.array([8, 12, 9, 11, 10, 10, 7, 13, 9, 11])  # of 100: 10%
    stud = sc.bootstrap_infinity(_split(ids, totals), method="studentized", n_resamples=4000, rng=3)
    res = sc.bootstrap_infinity(_split(ids, totals), method="kg-t", n_resamples=4000, rng=3)
    kg = sc.korn_graubard_interval(totals.astype(float), np.full(10, 100.0), 0.95)
    assert np.array_equal(res.bootstrap_distribution, stud.bootstrap_distribution) and res.method == "kg-t"
    assert res.confidence_interval.low == stud.confidence_interval.low
    assert res.confidence_interval.high == kg.high > stud.confidence_interval.high + 0.005
    mirrored = sc.bootstrap_infinity(_split(ids, 100 - totals), method="kg-t", n_resamples=4000, rng=3)
    assert mirrored.confidence_interval.low == pytest.approx(1 - res.confidence_interval.high, abs=1e-12)
    assert mirrored.confidence_interval.high == pytest.approx(1 - res.confidence_interval.low, abs=1e-12)
    # at exactly one half both bounds are the further of the two
    half = np.array([40, 60, 45, 55, 30, 70, 48, 52, 42, 58])
    both = sc.bootstrap_infinity(_split(ids, half), method="kg-t", n_resamples=4000, rng=3).confidence_interval
    plain = sc.bootstrap_infinity(_split(ids, half), method="studentized", n_resamples=4000, rng=3).confidence_interval
    kg = sc.korn_graubard_interval(half.astype(float), np.full(10, 100.0), 0.95)
    assert both == (min(plain.low, kg.low), max(plain.high, kg.high))


def test_kg_t_gives_no_errors_a_width_and_one_evaluator_none():
    """Three evaluators without an error: the bootstrap-t has no spread to work with (0% - 0%, which reads
    as certainty); kg-t's upper bound is Clopper-Pearson's at the trials. One evaluator: nothing to say
    about the spread between evaluators, so the bootstrap-t's (zero-width; pages show no CI below
    MIN_EVALUATORS_FOR_CI) stands."""
    zero = InfinityCounts.from_counts(["a", "b", "c"], "m", [0, 0, 0], 25, [0, 0, 0], 25)
    assert sc.bootstrap_infinity(zero, method="studentized", n_resamples=500, rng=1).confidence_interval == (0.0, 0.0)
    ci = sc.bootstrap_infinity(zero, method="kg-t", n_resamples=500, rng=1).confidence_interval
    assert ci.low == 0.0 and ci.high == pytest.approx(1 - 0.025 ** (1 / (150 * (1.959964 / stats.t.ppf(0.975, 2)) ** 2)))
    one = InfinityCounts.from_counts(["a"], "m", [4], 25, [2], 25)
    assert sc.bootstrap_infinity(one, method="kg-t", n_resamples=500, rng=1).confidence_interval == (0.12, 0.12)
    with pytest.raises(ScoringError, match="use studentized"):
        sc.bootstrap_mean([0.1, 0.4, 0.3], method="kg-t")
