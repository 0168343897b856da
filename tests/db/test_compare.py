"""`hype compare STUDY STUDY…` and the dashboard's compare page on stored studies."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hype.cli import main
from test_report import fill

SETTINGS = {"qualification": {"n_real": 4, "n_fake": 4}, "infinity": {"n_real": 6, "n_fake": 6}}


def _cli(config, *args):
    return CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args])


def test_compare_two_checkpoints_warns_when_protocols_differ(session, config, make_study, tmp_path):
    early = make_study("hype-infinity", settings=SETTINGS, models=("ckpt",))
    early.name = "step 10k"
    late = make_study("hype-infinity", settings={**SETTINGS, "qualification": {"n_real": 4, "n_fake": 4, "pass_fake": 0.5}},
                      models=("ckpt",))
    late.name = "step 50k"
    session.commit()
    fill(session, early, 6, {"ckpt": 0.1})
    fill(session, late, 2, {"ckpt": 0.4})
    plot = tmp_path / "forest.png"
    result = _cli(config, "compare", "step 10k", "step 50k", "--resamples", "200", "--plot", str(plot))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("step 10k") and "ckpt" in line and "–" in line for line in lines), result.output
    assert any(line.startswith("step 50k") and "(too few for a CI)" in line for line in lines), result.output
    assert "WARNING: the studies' protocols differ" in result.output
    assert "qualification.pass_fake: 0.65 in step 10k, 0.5 in step 50k" in result.output
    assert plot.read_bytes().startswith(b"\x89PNG")

    data = json.loads(_cli(config, "compare", str(early.id), str(late.id), "--resamples", "200", "--json").output)
    assert [(r["study"], r["n_evaluators"]) for r in data["rows"]] == [("step 10k", 6), ("step 50k", 2)]
    assert data["rows"][0]["estimate"] < data["rows"][1]["estimate"]  # fooled less often early in training


def test_compare_refuses_mixed_modes_and_single_studies(session, config, make_study):
    a = make_study("hype-infinity", settings=SETTINGS)
    b = make_study("hype-time", n_real=80, n_fake=40)
    mixed = _cli(config, "compare", str(a.id), str(b.id))
    assert mixed.exit_code != 0 and "one mode" in mixed.output
    single = _cli(config, "compare", str(a.id))
    assert single.exit_code != 0 and "at least two studies" in single.output
    same = _cli(config, "compare", str(a.id), str(a.id))
    assert same.exit_code != 0 and "named twice" in same.output
