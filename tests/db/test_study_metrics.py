"""Metrics on a demo-style study: computed from the stored pools, stored with their weights, and
ranking the degraded models in the order of their degradation strength."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

pytest.importorskip("torch")

from hype import studies  # noqa: E402
from hype.demo import _as_files, degrade, random_crops  # noqa: E402
from hype.models import MetricResult  # noqa: E402

STRENGTHS = {"light": 0.15, "medium": 0.55, "heavy": 1.0}


@pytest.mark.slow
def test_metrics_rank_demo_degradations_and_are_stored(session, config, db_backend):
    if db_backend != "sqlite":
        pytest.skip("metrics read pools through the same ORM on every backend; embedding twice costs minutes on CPU")
    import numpy as np

    from hype.study_metrics import compute_study_metrics, latest_metrics

    rng = np.random.default_rng(7)
    study = studies.create_study(session, name="m", mode="hype-infinity", seed=7)
    studies.import_images(session, config, study, _as_files("real", random_crops(40, rng)), pool="real")
    for name, s in STRENGTHS.items():
        arrays = [degrade(c, s, rng) for c in random_crops(40, rng)]
        studies.import_images(session, config, study, _as_files(name, arrays), pool="fake", model_name=name)
    results = compute_study_metrics(session, config, study, device="cpu", progress=False)
    session.commit()
    by_name = {m.name: latest_metrics(session, study)[m.id] for m in study.models}
    fid = [by_name[n].values["fid"] for n in STRENGTHS]
    f8 = [by_name[n].values["prd"]["f_8"] for n in STRENGTHS]
    assert fid == sorted(fid), fid
    assert f8 == sorted(f8, reverse=True), f8
    assert all(r.weights_sha256 and len(r.weights_sha256) == 64 and r.device == "cpu" for r in results)
    assert len(session.scalars(select(MetricResult)).all()) == 3
    # a second run is served from the feature cache (no new cache files)
    cached = sorted(p.name for p in config.feature_cache_dir.rglob("*.npy"))
    assert len(cached) == 4
    compute_study_metrics(session, config, study, device="cpu", progress=False)
    assert sorted(p.name for p in config.feature_cache_dir.rglob("*.npy")) == cached
