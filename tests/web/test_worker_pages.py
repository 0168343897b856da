"""Worker pages before the task (issue 16): a full study says so on the consent page, the favicon is
served, and the wording matches the protocol's counts."""

from __future__ import annotations

import numpy as np

from test_researcher import play

FULL_SETTINGS = {"evaluators_per_model": 1, "qualification": {"n_real": 4, "n_fake": 4}, "infinity": {"n_real": 5, "n_fake": 5}}


def test_a_full_study_says_so_before_consent(client, make_study, session):
    study = make_study(models=("alpha",), settings=FULL_SETTINGS)
    page = client.get(f"/s/{study.slug}").get_data(as_text=True)
    assert 'id="consent"' in page and 'id="full"' not in page
    play(session, study, "anon-first", accuracy=1.0, rng=np.random.default_rng(0))
    fresh = client.application.test_client()  # another person, no cookie
    page = fresh.get(f"/s/{study.slug}").get_data(as_text=True)
    assert 'id="full"' in page and "all the participants it needs" in page
    assert 'id="consent"' not in page and "I agree" not in page
    preview = fresh.get(f"/s/{study.slug}?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H1").get_data(as_text=True)
    assert "please do not accept this HIT" in preview and "I agree" not in preview


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "icon" in response.mimetype


def test_consent_page_does_not_call_a_hundred_images_short(client, make_study):
    study = make_study(settings={"qualification": {"n_real": 50, "n_fake": 50}, "infinity": {"n_real": 5, "n_fake": 5}},
                       n_real=80, n_fake=60)
    page = client.get(f"/s/{study.slug}").get_data(as_text=True)
    assert "short qualification" not in page and "qualification (100 images)" in page
