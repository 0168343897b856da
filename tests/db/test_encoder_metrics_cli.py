"""`hype metrics STUDY --encoder dinov2-vitl14 --weights DIR` (and CLIP) end to end on the demo study,
with tiny local models, and the report showing FD_DINOv2, CMMD and every metric's interval."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

pytest.importorskip("transformers")

from hype.cli import main  # noqa: E402
from hype.demo import INFINITY_NAME, build_demo  # noqa: E402
from hype.models import MetricResult  # noqa: E402
from tiny_models import save_tiny_clip, save_tiny_dinov2  # noqa: E402


@pytest.mark.slow
def test_metrics_on_dinov2_and_clip_end_to_end(session, config, db_backend, tmp_path):
    if db_backend != "sqlite":
        pytest.skip("the same ORM path on every backend; embedding twice costs CI time")
    build_demo(session, config, images_per_pool=110)
    session.commit()
    dino, clip = save_tiny_dinov2(tmp_path / "dino"), save_tiny_clip(tmp_path / "clip")
    base = ["--data-dir", str(config.data_dir), "--database-url", config.database_url]
    runner = CliRunner()
    out = runner.invoke(main, [*base, "metrics", INFINITY_NAME, "--encoder", "dinov2-vitl14", "--weights", str(dino),
                               "--device", "cpu", "--n-boot", "50"])
    assert out.exit_code == 0, out.output
    assert "encoder dinov2-vitl14" in out.output and "FD_DINOv2 [95% CI]" in out.output
    assert re.search(r"severe\s+\d+\.\d+ \[\d+\.\d+, \d+\.\d+\]", out.output), out.output
    out = runner.invoke(main, [*base, "metrics", INFINITY_NAME, "--encoder", "clip-vitl14", "--weights", str(clip),
                               "--device", "cpu", "--n-boot", "50"])
    assert out.exit_code == 0, out.output
    assert "CMMD [95% CI]" in out.output
    rows = session.query(MetricResult).all()
    assert {r.values["encoder"] for r in rows} == {"dinov2-vitl14", "clip-vitl14"}
    assert all(r.values["ci"]["fid"]["low"] <= r.values["ci"]["fid"]["high"] for r in rows)
    assert all(r.values["cmmd"] is not None for r in rows if r.values["encoder"] == "clip-vitl14")
    # a wrong weights directory is a message for a person, not a traceback
    out = runner.invoke(main, [*base, "metrics", INFINITY_NAME, "--encoder", "clip-vitl14", "--weights", str(dino)])
    assert out.exit_code == 1 and "holds a dinov2 model, not clip-vitl14" in out.output and "Traceback" not in out.output

    report = tmp_path / "report.html"
    out = runner.invoke(main, [*base, "report", INFINITY_NAME, "-o", str(report)])
    assert out.exit_code == 0, out.output
    html = report.read_text()
    metrics = html[html.index('<section id="metrics">'):html.index('<section id="correlation">')]
    assert "<h3>Encoder dinov2-vitl14</h3>" in metrics and "<h3>Encoder clip-vitl14</h3>" in metrics
    assert ">FD_DINOv2<" in metrics and ">CMMD<" in metrics
    # an interval under every number of every model: 8 metrics on DINOv2, 9 with CMMD on CLIP, 4 models
    assert len(re.findall(r'<span class="small muted ci">\[[-\d.]+, [-\d.]+\]</span>', metrics)) == 4 * 8 + 4 * 9
