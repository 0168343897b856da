"""d' and c against hand-computed cases (stdlib NormalDist, not the module's scipy), the log-linear
correction at rates 0 and 1, and the per-model bootstrap."""

from statistics import NormalDist

import numpy as np
import pytest

from hype import scoring as sc
from hype import sdt

z = NormalDist().inv_cdf


def test_d_prime_and_c_hand_computed():
    # 40 of 50 fakes called fake, 10 of 50 reals called fake: H = 40.5/51, F = 10.5/51
    d, c = sdt.d_prime(40, 50, 10, 50)
    assert float(d) == pytest.approx(z(40.5 / 51) - z(10.5 / 51), abs=1e-12)
    assert float(c) == pytest.approx(-(z(40.5 / 51) + z(10.5 / 51)) / 2, abs=1e-12)
    assert float(d) == pytest.approx(1.6410, abs=1e-3)  # 2 * 0.8205
    assert float(c) == pytest.approx(0.0, abs=1e-12)  # symmetric rates: no bias


def test_rates_of_zero_and_one_get_the_log_linear_correction():
    # perfect evaluator: every fake called fake, no real called fake -> finite d'
    d, c = sdt.d_prime(50, 50, 0, 50)
    assert float(d) == pytest.approx(2 * z(50.5 / 51), abs=1e-12)
    assert np.isfinite(d) and float(c) == pytest.approx(0.0, abs=1e-12)
    # always answers "real": H = 0.5/51, F = 0.5/51 -> d' 0, strongly positive c (leans to "real")
    d, c = sdt.d_prime(0, 50, 0, 50)
    assert float(d) == pytest.approx(0.0, abs=1e-12)
    assert float(c) == pytest.approx(-z(0.5 / 51), abs=1e-12) and float(c) > 2
    assert sdt.corrected_rate(0, 10) == pytest.approx(0.5 / 11)
    with pytest.raises(sc.ScoringError):
        sdt.corrected_rate(11, 10)


def test_criterion_sign_follows_the_tendency_to_answer_real():
    # same sensitivity-ish, one evaluator says "real" more often (fewer fakes caught, fewer reals flagged)
    _, c_real = sdt.d_prime(30, 50, 5, 50)
    _, c_fake = sdt.d_prime(45, 50, 20, 50)
    assert c_real > 0 > c_fake


def test_evaluator_and_model_sdt_from_counts():
    counts = sc.InfinityCounts.from_counts(
        ["a", "b", "c", "x"], ["m", "m", "m", "m"],
        fake_errors=[10, 0, 25, 5], n_fake=50, real_errors=[10, 0, 25, 5], n_real=50,
        evaluator_excluded=[False, False, False, True],
    )
    per = sdt.evaluator_sdt(counts)
    assert list(per.evaluator) == ["a", "b", "c"]  # the excluded evaluator is left out
    expected = [z(40.5 / 51) - z(10.5 / 51), 2 * z(50.5 / 51), 0.0]
    assert per.d_prime == pytest.approx(expected, abs=1e-12)
    m = sdt.model_sdt(counts, n_resamples=2000, rng=0)
    assert m.d_prime == pytest.approx(np.mean(expected), abs=1e-12)
    assert m.d_prime_ci.low <= m.d_prime <= m.d_prime_ci.high
    assert m.n_evaluators == 3
    again = sdt.model_sdt(counts, n_resamples=2000, rng=0)
    assert again.d_prime_ci == m.d_prime_ci


def test_leaderboard_carries_d_prime_beside_the_error_rate():
    from hype import simulate as sm

    study = sm.simulate_study({"good": sm.Population(fake_accuracy=0.6), "poor": sm.Population(fake_accuracy=0.95)},
                              20, "hype-infinity", seed=3)
    board = sc.leaderboard(study.data, n_resamples=500, seed=1)
    by_model = {r.model: r for r in board.rows}
    # more realistic fakes (higher error rate) are harder to detect: lower d'
    assert by_model["good"].sdt.d_prime < by_model["poor"].sdt.d_prime
    assert board.rows[0].to_dict()["sdt"]["d_prime_ci"]["low"] is not None
    tim = sm.simulate_study({"m": sm.Population()}, 5, "hype-time", seed=3, truth=False)
    assert sc.leaderboard(tim.data, n_resamples=100).rows[0].sdt is None
