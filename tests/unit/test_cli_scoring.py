"""`hype score --from-csv` and `hype plan` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hype.cli import main

STEIN = Path(__file__).resolve().parents[3] / "shared" / "data" / "stein2023-human-realism" / "cifar10.csv"


def _csv(tmp_path: Path) -> Path:
    rows = ["id,model,f_err_rt,r_err_rt"]
    rows += [f"a{i},good,{0.40 + 0.01 * (i % 3):.2f},0.30" for i in range(12)]
    rows += [f"b{i},bad,{0.05 + 0.01 * (i % 3):.2f},0.10" for i in range(12)]
    path = tmp_path / "s.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_score_from_csv_prints_leaderboard_matching_hand_computed_means(tmp_path):
    result = CliRunner().invoke(main, ["score", "--from-csv", str(_csv(tmp_path)), "--resamples", "500", "--json"])
    assert result.exit_code == 0, result.output
    board = json.loads(result.output)
    rows = {r["model"]: r for r in board["rows"]}
    fakes_good = np.mean([0.40 + 0.01 * (i % 3) for i in range(12)])
    assert rows["good"]["rank"] == 1 and rows["bad"]["rank"] == 2
    assert rows["good"]["fakes_error"] == pytest.approx(fakes_good)
    assert rows["good"]["estimate"] == pytest.approx((fakes_good + 0.30) / 2)
    assert rows["good"]["ci_low"] <= rows["good"]["estimate"] <= rows["good"]["ci_high"]


def test_score_table_output_and_bad_file_error(tmp_path):
    ok = CliRunner().invoke(main, ["score", "--from-csv", str(_csv(tmp_path)), "--resamples", "500"])
    assert ok.exit_code == 0 and "good" in ok.output and "ranking stability" in ok.output
    # the interval method is named with the coverage measured for it, and d' / c stand beside the rate
    from hype.coverage import MEASURED, SIZES

    def named(method, name, output):
        figures = [f"{name} over evaluators, 95%: simulated coverage {MEASURED[(method, 'hype-infinity', n)][0]:.1f}%"
                   for n in SIZES]
        return any(f"CI: {f}" in output for f in figures)

    assert named("kg-t", "Korn-Graubard-bounded studentized bootstrap (kg-t)", ok.output)  # HYPE-infinity's default
    assert "d-prime" in ok.output
    pct = CliRunner().invoke(main, ["score", "--from-csv", str(_csv(tmp_path)), "--resamples", "500", "--method", "percentile"])
    assert named("percentile", "percentile bootstrap", pct.output)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,model,f_err_rt,r_err_rt\nx,m,1.5,0.2\n")
    res = CliRunner().invoke(main, ["score", "--from-csv", str(bad)])
    assert res.exit_code != 0 and "f_err_rt" in res.output


@pytest.mark.skipif(not STEIN.exists(), reason="shared Stein data not present")
def test_score_on_real_stein_file_runs():
    res = CliRunner().invoke(main, ["score", "--from-csv", str(STEIN), "--resamples", "300", "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output)["rows"]) == 13


def test_plan_prints_shrinking_halfwidths():
    res = CliRunner().invoke(main, ["plan", "--evaluators", "10,40", "--simulations", "30"])
    assert res.exit_code == 0, res.output
    # the assumptions come first: the population and the cost per evaluator
    assert "assumed population: median evaluator right on 85% of fakes" in res.output
    assert "pay $1.00 + $0.02 per right answer" in res.output
    lines = [l.split() for l in res.output.strip().splitlines() if l.split()[0].isdigit()]
    assert [int(l[0]) for l in lines] == [10, 40]
    assert float(lines[1][1]) < float(lines[0][1])


def test_score_on_a_database_never_initialised_says_to_run_init_db(tmp_path):
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "score", "1"])
    assert result.exit_code == 1
    assert "hype init-db" in result.output
    assert "SELECT" not in result.output and "sqlalche.me" not in result.output
