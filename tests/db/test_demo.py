"""The demo builds real, published studies whose pools are large enough and whose link works."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select

from hype.demo import DEMO_MODELS, INFINITY_NAME, TIME_NAME, build_demo, degrade, random_crops
from hype.design import required_pool_sizes
from hype.models import Image
from hype.studies import study_settings


def test_demo_studies_have_full_pools_and_serve_the_start_page(session, config, app):
    info = build_demo(session, config, images_per_pool=110)
    session.commit()
    assert [s.name for s in info.studies] == [INFINITY_NAME, TIME_NAME]
    for study in info.studies:
        assert study.status == "published"
        assert [m.name for m in study.models] == list(DEMO_MODELS)
        need_real, need_fake = required_pool_sizes(study_settings(study), len(study.models))
        n_real = session.scalar(select(func.count()).where(Image.study_id == study.id, Image.pool == "real"))
        assert n_real == 110 >= need_real
        for m in study.models:
            assert session.scalar(select(func.count()).where(Image.model_id == m.id)) == 110 >= need_fake
        page = app.test_client().get(f"/s/{study.slug}")
        assert page.status_code == 200 and b"Real or fake?" in page.data
    # idempotent: a second run reuses the studies
    again = build_demo(session, config, images_per_pool=110)
    assert [s.id for s in again.studies] == [s.id for s in info.studies]


def test_degradation_strength_is_monotone_in_pixel_error():
    rng = np.random.default_rng(0)
    crops = random_crops(8, rng)
    errors = []
    for strength in DEMO_MODELS.values():
        errs = [np.abs(degrade(c, strength, np.random.default_rng(1)).astype(float) - c).mean() for c in crops]
        errors.append(np.mean(errs))
    assert errors == sorted(errors) and errors[0] < errors[-1]


def test_unknown_or_draft_study_link_is_404(client, session):
    from hype.studies import create_study

    draft = create_study(session, name="d", mode="hype-infinity")
    session.commit()
    assert client.get("/s/nope").status_code == 404
    assert client.get(f"/s/{draft.slug}").status_code == 404


def test_demo_with_too_few_images_says_how_to_fix_it_instead_of_a_traceback(tmp_path):
    from click.testing import CliRunner

    from hype.cli import main

    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "demo", "--no-serve", "--images-per-pool", "20"])
    assert result.exit_code != 0
    assert "demo not built" in result.output and "--images-per-pool" in result.output, result.output
    assert result.exc_info is None or result.exc_info[0] is SystemExit
