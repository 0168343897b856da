"""CI (tests/run_all.sh) runs pytest twice: everything not marked `serial` on two processes, then the
`serial` tests alone. If one of the two runs were lost or their selections drifted apart, tests would
silently stop running in CI (or timing tests would meet a neighbour's load), so the split is checked here."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pytest_runs() -> list[list[str]]:
    script = (ROOT / "tests" / "run_all.sh").read_text()
    runs = []
    for line in script.splitlines():
        if "run_pytest" not in line or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # environment for that run
            words.pop(0)
        if words[:1] == ["run_pytest"]:
            runs.append(words[1:])
    return runs


def _marker_expression(args: list[str]) -> str:
    assert args.count("-m") == 1, args
    return args[args.index("-m") + 1]


def test_ci_runs_the_serial_tests_alone_and_every_other_test_in_parallel():
    runs = _pytest_runs()
    assert sorted(_marker_expression(args) for args in runs) == ["not serial", "serial"], runs
    for args in runs:
        parallel = "-n" in args
        assert parallel == (_marker_expression(args) == "not serial"), args
        assert args[-1] == "$@", "both runs take the script's own arguments"


def test_the_serial_marker_is_declared_and_xdist_is_pinned_in_the_dev_extra():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    markers = data["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("serial:") for m in markers), markers
    assert any(re.fullmatch(r"pytest-xdist==[\d.]+", r) for r in data["project"]["optional-dependencies"]["dev"])
