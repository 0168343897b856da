"""hype.summaries: the Stein et al. (2023) files score to their own published means; bad rows name
the file, line and column."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from hype import scoring as sc
from hype.summaries import SummaryError, parse_summaries, read_summaries

STEIN = Path("/work/shared/data/stein2023-human-realism")
STEIN_FILES = ["cifar10.csv", "imagenet256.csv"]
HEADER = "id,model,num_correct,err_rt,f_err_rt,r_err_rt,r_ans_rt\n"
GOOD = "p0,M,171.0,0.145,0.09,0.2,0.445\n"


def _stein(name: str) -> Path:
    path = STEIN / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@pytest.mark.parametrize("name", STEIN_FILES)
def test_stein_scores_equal_the_participant_means(name):
    path = _stein(name)
    counts = read_summaries(path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert counts.n_evaluators == len(rows)
    assert (counts.n_fake == 100).all() and (counts.n_real == 100).all()
    models = sorted({r["model"] for r in rows})
    assert counts.models() == models
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        rates = sc.infinity_rates(counts.select(model))
        assert rates.overall == pytest.approx(np.mean([float(r["err_rt"]) for r in mine]), abs=1e-12)
        assert rates.fakes == pytest.approx(np.mean([float(r["f_err_rt"]) for r in mine]), abs=1e-12)
        assert rates.reals == pytest.approx(np.mean([float(r["r_err_rt"]) for r in mine]), abs=1e-12)


def test_counts_columns_and_per_row_trial_numbers():
    text = "participant,model,fake_errors,n_fake,real_errors,n_real\nx,A,3,50,5,50\ny,A,10,40,0,60\n"
    counts = parse_summaries(text)
    assert counts.fake_errors.tolist() == [3, 10] and counts.n_fake.tolist() == [50, 40]
    assert sc.infinity_rates(counts).overall == pytest.approx(18 / 200)


def test_trial_numbers_are_a_parameter():
    counts = parse_summaries("id,model,f_err_rt,r_err_rt\np,A,0.1,0.2\n", n_fake=50, n_real=50)
    assert (counts.fake_errors[0], counts.real_errors[0]) == (5, 10)
    with pytest.raises(SummaryError, match="not a whole number"):
        parse_summaries("id,model,f_err_rt,r_err_rt\np,A,0.11,0.2\n", n_fake=50, n_real=50)


BAD_ROWS = [
    # (second data row, column named in the error, words in the message)
    ("p1,M,171.0,0.145,1.09,0.2,0.445\n", "f_err_rt", "outside [0, 1]"),
    ("p1,M,171.0,0.145,0.09,abc,0.445\n", "r_err_rt", "not a number"),
    ("p1,M,171.0,0.145,0.09,,0.445\n", "r_err_rt", "missing value"),
    ("p1,M,171.0,0.145,nan,0.2,0.445\n", "f_err_rt", "not a finite number"),
    ("p0,M,171.0,0.145,0.09,0.2,0.445\n", "id", "listed twice"),
    ("p1,M,171.0,0.1475,0.095,0.2,0.445\n", "f_err_rt", "not a whole number"),
    ("p1,M,171.0,0.2,0.09,0.2,0.445\n", "err_rt", "disagrees"),
    ("p1,M,170.0,0.145,0.09,0.2,0.445\n", "num_correct", "disagrees"),
    (",M,171.0,0.145,0.09,0.2,0.445\n", "id", "missing value"),
]


@pytest.mark.parametrize("row,column,words", BAD_ROWS, ids=[b[2] for b in BAD_ROWS])
def test_bad_rows_name_file_line_and_column(tmp_path, row, column, words):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + GOOD + row)
    with pytest.raises(SummaryError) as info:
        read_summaries(path)
    err = info.value
    assert (err.source, err.line, err.column) == (str(path), 3, column)
    message = str(err)
    assert str(path) in message and "line 3" in message and "data row 2" in message and repr(column) in message
    assert words in message


def test_same_participant_for_another_model_is_fine():
    counts = parse_summaries(HEADER + GOOD + GOOD.replace(",M,", ",N,"))
    assert counts.models() == ["M", "N"]


def test_missing_columns_and_ragged_rows(tmp_path):
    path = tmp_path / "no_fakes.csv"
    path.write_text("id,model,err_rt,r_err_rt\np,M,0.1,0.1\n")
    with pytest.raises(SummaryError, match=r"no_fakes.csv, line 1 \(header\): missing column: fakes error"):
        read_summaries(path)
    with pytest.raises(SummaryError, match=r"line 3 \(data row 2\): 3 fields, the header has 7"):
        parse_summaries(HEADER + GOOD + "p1,M,171.0\n")
    with pytest.raises(SummaryError, match="no participant rows"):
        parse_summaries(HEADER)
    with pytest.raises(SummaryError, match="empty file"):
        parse_summaries("")
    with pytest.raises(SummaryError, match="trial count must be > 0"):
        parse_summaries("id,model,fake_errors,n_fake,real_errors\np,M,0,0,0\n")
    with pytest.raises(SummaryError, match="error count 7 is outside"):
        parse_summaries("id,model,fake_errors,n_fake,real_errors\np,M,7,5,0\n")
