"""Cheats on HYPE-time that need no pixels (issue 14): counting the feedback, and seeing an image again.

HYPE-time measures the exposure at which a worker stops telling real from fake, so anything that
lets a worker know a label without the image, or see the image for longer than the staircase set,
biases the score. Both attacks drive the worker JSON API as a browser would.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from scipy import stats
from sqlalchemy import select

from hype.models import Judgment, Trial
from hype.simulate import counting_guess
from hype.study_scoring import score_study

from hostile_helpers import Browser, truth

pytestmark = [pytest.mark.db]

COUNTING_SETTINGS = {"qualification": {"enabled": False}, "time": {"n_blocks": 3, "trials_per_block": 20}}
COUNTING_SESSIONS = 10  # x 60 trials: exactly 50/50 blocks gave the counting bot 61%, p ~ 1e-8 here


def test_a_bot_counting_the_feedback_guesses_at_chance(make_study, app):
    """The bot never fetches an image: it counts the feedback in each block and answers the kind it
    believes has more left. Its guesses depend only on past labels, so under independent coin-flip
    labels each is right with probability 1/2 and the binomial test is exact."""
    study = make_study("hype-time", settings=COUNTING_SETTINGS, models=("alpha",), n_real=50, n_fake=50)
    coin = random.Random(3)
    hits = total = 0
    for _ in range(COUNTING_SESSIONS):
        browser = Browser(app, study.slug)
        state = browser.start()
        seen: dict[int, Counter] = {}
        trial = browser.trial()["trial"]
        while trial is not None:
            count = seen.setdefault(trial["block"], Counter())
            guess_fake = counting_guess(20, count[True], count[False], coin.random() < 0.5)
            response = browser.answer(trial, "fake" if guess_fake else "real")
            assert response.status_code == 201, response.get_data(as_text=True)
            body = response.get_json()
            right = body["feedback"]["correct"]
            hits += right
            total += 1
            count[guess_fake == right] += 1  # what the feedback says the label was
            trial = body["next"]["trial"]
        state = browser.state()
        assert state["stage"] == "completed", state
    p = stats.binomtest(hits, total, 0.5, alternative="greater").pvalue
    assert total == COUNTING_SESSIONS * 60
    print(f"\ncounting bot on 20-trial blocks: {hits}/{total} = {hits / total:.3f} right, p = {p:.2g}")
    assert p > 0.001, f"the counting bot got {hits}/{total} = {hits / total:.3f} right (p = {p:.2g})"


def _judgment(session, image_token: str) -> Judgment:
    session.rollback()
    return session.scalar(select(Judgment).join(Trial).where(Trial.image_token == image_token))


def test_an_image_is_served_to_its_own_session_for_one_presentation(make_study, app, session):
    """Re-view attempts: the image URL without the session, from another session, ahead of its trial
    and again after a reload, and after the answer. A faithful runner (one fetch per image, the
    next one preloaded) is never flagged; every re-view is flagged and left out of the score."""
    study = make_study("hype-time", settings={"qualification": {"enabled": False}, "time": {"n_blocks": 2, "trials_per_block": 6}})
    worker, other = Browser(app, study.slug), Browser(app, study.slug)
    state = worker.start()
    other.start()
    state = worker.trial()
    first, ahead = state["trial"], state["preload"][0]
    image_token = first["id"]
    anonymous = app.test_client()
    # 1. No credential: the old unbound URL and the image under another session's token answer 404.
    assert anonymous.get(f"/api/img/{image_token}").status_code == 404
    assert anonymous.get(f"{other.api}/img/{image_token}").status_code == 404
    assert anonymous.get(first["image_url"]).status_code == 200  # the session token in the URL is the credential
    # 2. The runner preloads the next image once; fetching it again ahead of its trial is a second presentation.
    assert worker.client.get(ahead).status_code == 200
    assert worker.client.get(ahead).status_code == 200
    # 3. A reload shows the current trial again: served (the worker can go on), counted.
    reloaded = worker.trial()["trial"]
    assert reloaded["id"] == image_token and reloaded["exposure_ms"] == first["exposure_ms"]
    assert worker.client.get(reloaded["image_url"]).status_code == 200
    answered = worker.answer(first, "fake" if truth(session, image_token) else "real")
    assert answered.status_code == 201
    assert "shown-again" in (_judgment(session, image_token).flag_reasons or "")
    # 4. After its answer a timed trial's image is not served at all.
    assert worker.client.get(first["image_url"]).status_code == 404
    second = answered.get_json()["next"]["trial"]
    assert second["image_url"] == ahead
    assert worker.answer(second, "fake" if truth(session, second["id"]) else "real").status_code == 201
    assert "shown-again" in (_judgment(session, second["id"]).flag_reasons or "")
    # 5. The rest as the runner does it: each image fetched once (preloaded during the trial before).
    state = worker.trial()
    assert worker.client.get(state["trial"]["image_url"]).status_code == 200
    while state["trial"] is not None:
        trial = state["trial"]
        for url in state["preload"]:
            assert worker.client.get(url).status_code == 200
        response = worker.answer(trial, "fake" if truth(session, trial["id"]) else "real")
        assert response.status_code == 201
        assert not _judgment(session, trial["id"]).flagged, _judgment(session, trial["id"]).flag_reasons
        state = response.get_json()["next"]
    assert worker.state()["stage"] == "completed"
    session.rollback()
    presentations = dict(session.execute(select(Trial.image_token, Trial.presentations).join(Judgment)
                                         .where(Judgment.assignment_id == _judgment(session, image_token).assignment_id)).all())
    assert presentations.pop(image_token) == 2 and presentations.pop(second["id"]) == 2  # first fetch + reload; twice ahead
    assert set(presentations.values()) == {1}
    # Scoring leaves the two re-viewed trials out.
    counts = score_study(session, study, n_resamples=100).counts
    assert sum(c.flagged_trials for c in counts.values()) == 2
    assert sum(c.scored_trials for c in counts.values()) == 10
