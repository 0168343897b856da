"""Import per-participant HYPE-infinity summaries (one row per participant, e.g. the Stein et al. 2023
files) as the per-evaluator counts hype.scoring takes.

Why counts and not rates: the pooled score and the bootstrap need each participant's number of errors
and trials. A rate is turned back into a count with the number of trials of its class, and a rate that
does not give a whole number of errors is an error in the file (or in the stated trial numbers), not
something to round away silently.

Recognised columns (others are ignored):
- participant: `id` (or `participant`, `evaluator`); model: `model`
- per class, either a count or a rate: `fake_errors` / `f_err_rt` (fakes judged real) and
  `real_errors` / `r_err_rt` (reals judged fake)
- trials per class: `n_fake`, `n_real`; when absent, the `n_fake` / `n_real` arguments (Stein: 100 each)
- checked when present: `err_rt` (overall error rate), `num_correct`
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from typing import Iterable, Sequence

from hype.scoring import InfinityCounts

__all__ = ["SummaryError", "read_summaries", "parse_summaries", "SUMMARY_COLUMNS"]

ID_COLUMNS = ("id", "participant", "evaluator")
SUMMARY_COLUMNS = {
    "fake": ("fake_errors", "f_err_rt"),
    "real": ("real_errors", "r_err_rt"),
}
INTEGRAL_TOLERANCE = 1e-6  # in errors; float rates like 0.08999999999999997 * 100 pass, 0.085 * 100 does not


class SummaryError(ValueError):
    """A summary file that cannot be scored, with where: file, line (1 = header) and column."""

    def __init__(self, source: str, line: int | None, column: str | None, message: str) -> None:
        self.source, self.line, self.column, self.message = source, line, column, message
        where = source
        if line is not None:
            where += f", line {line}" + (f" (data row {line - 1})" if line > 1 else " (header)")
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class _Columns:
    evaluator: str
    model: str
    fake: str
    real: str
    n_fake: str | None
    n_real: str | None
    err_rt: str | None
    num_correct: str | None


def _find_columns(header: Sequence[str], source: str) -> _Columns:
    names = [h.strip() for h in header]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SummaryError(source, 1, dup, "column appears twice")

    def first(options: Iterable[str], what: str) -> str:
        for option in options:
            if option in names:
                return option
        raise SummaryError(source, 1, None, f"missing column: {what} (one of {', '.join(options)})")

    return _Columns(
        evaluator=first(ID_COLUMNS, "participant id"),
        model=first(("model",), "model"),
        fake=first(SUMMARY_COLUMNS["fake"], "fakes error count or rate"),
        real=first(SUMMARY_COLUMNS["real"], "reals error count or rate"),
        n_fake="n_fake" if "n_fake" in names else None,
        n_real="n_real" if "n_real" in names else None,
        err_rt="err_rt" if "err_rt" in names else None,
        num_correct="num_correct" if "num_correct" in names else None,
    )


def _number(row: dict[str, str], column: str, source: str, line: int) -> float:
    raw = row.get(column)
    if raw is None or raw.strip() == "":
        raise SummaryError(source, line, column, "missing value")
    try:
        value = float(raw)
    except ValueError:
        raise SummaryError(source, line, column, f"not a number: {raw.strip()!r}") from None
    if not math.isfinite(value):
        raise SummaryError(source, line, column, f"not a finite number: {raw.strip()!r}")
    return value


def _whole(value: float, column: str, source: str, line: int, what: str) -> int:
    nearest = round(value)
    if abs(value - nearest) > INTEGRAL_TOLERANCE:
        raise SummaryError(source, line, column, f"{what} {value!r} is not a whole number")
    return int(nearest)


def _trials(row: dict[str, str], column: str | None, default: int, source: str, line: int) -> int:
    if column is None:
        return default
    n = _whole(_number(row, column, source, line), column, source, line, "trial count")
    if n <= 0:
        raise SummaryError(source, line, column, f"trial count must be > 0, not {n}")
    return n


def _errors(row: dict[str, str], column: str, n: int, source: str, line: int) -> int:
    value = _number(row, column, source, line)
    if column.endswith("_rt"):  # a rate
        if not 0.0 <= value <= 1.0:
            raise SummaryError(source, line, column, f"rate {value!r} is outside [0, 1]")
        return _whole(value * n, column, source, line, f"rate x {n} trials =")
    errors = _whole(value, column, source, line, "error count")
    if not 0 <= errors <= n:
        raise SummaryError(source, line, column, f"error count {errors} is outside [0, {n}]")
    return errors


def parse_summaries(
    text: str | Iterable[str],
    *,
    source: str = "<summaries>",
    n_fake: int = 100,
    n_real: int = 100,
) -> InfinityCounts:
    """Rows of a per-participant summary CSV -> InfinityCounts. `n_fake` / `n_real` are the trials per
    class when the file has no such columns (Stein et al.: 100 fakes + 100 reals per participant)."""
    for name, n in (("n_fake", n_fake), ("n_real", n_real)):
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"{name} must be a positive integer, not {n!r}")
    lines = io.StringIO(text) if isinstance(text, str) else text
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise SummaryError(source, None, None, "empty file") from None
    cols = _find_columns(header, source)
    names = [h.strip() for h in header]

    evaluators, models, fake_err, nf_list, real_err, nr_list = [], [], [], [], [], []
    seen: dict[tuple[str, str], int] = {}
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(names):
            raise SummaryError(source, line, None, f"{len(fields)} fields, the header has {len(names)}")
        row = dict(zip(names, fields))
        evaluator, model = row[cols.evaluator].strip(), row[cols.model].strip()
        if not evaluator:
            raise SummaryError(source, line, cols.evaluator, "missing value")
        if not model:
            raise SummaryError(source, line, cols.model, "missing value")
        key = (model, evaluator)
        if key in seen:
            raise SummaryError(source, line, cols.evaluator,
                               f"participant {evaluator!r} is listed twice for model {model!r} (also line {seen[key]})")
        seen[key] = line

        nf = _trials(row, cols.n_fake, n_fake, source, line)
        nr = _trials(row, cols.n_real, n_real, source, line)
        fe = _errors(row, cols.fake, nf, source, line)
        re_ = _errors(row, cols.real, nr, source, line)
        _check_consistency(row, cols, fe, nf, re_, nr, source, line)

        evaluators.append(evaluator)
        models.append(model)
        fake_err.append(fe)
        nf_list.append(nf)
        real_err.append(re_)
        nr_list.append(nr)
    if not evaluators:
        raise SummaryError(source, None, None, "no participant rows")
    return InfinityCounts.from_counts(evaluators, models, fake_err, nf_list, real_err, nr_list)


def _check_consistency(row: dict[str, str], cols: _Columns, fe: int, nf: int, re_: int, nr: int,
                       source: str, line: int) -> None:
    """Redundant columns must agree with the per-class ones: a mismatch means the file, or the stated
    trial numbers, are not what the importer assumes."""
    if cols.err_rt is not None:
        value = _number(row, cols.err_rt, source, line)
        expected = (fe + re_) / (nf + nr)
        if abs(value - expected) > INTEGRAL_TOLERANCE:
            raise SummaryError(source, line, cols.err_rt,
                               f"{value!r} disagrees with the per-class errors ({fe + re_} / {nf + nr} = {expected!r})")
    if cols.num_correct is not None:
        value = _number(row, cols.num_correct, source, line)
        expected_correct = nf + nr - fe - re_
        if abs(value - expected_correct) > INTEGRAL_TOLERANCE:
            raise SummaryError(source, line, cols.num_correct,
                               f"{value!r} disagrees with the per-class errors ({expected_correct} correct)")


def read_summaries(path: str | os.PathLike[str], *, n_fake: int = 100, n_real: int = 100) -> InfinityCounts:
    """A summary CSV file -> InfinityCounts; errors name the file, line and column."""
    source = os.fspath(path)
    with open(source, newline="", encoding="utf-8-sig") as handle:
        return parse_summaries(handle, source=source, n_fake=n_fake, n_real=n_real)
