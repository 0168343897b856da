"""Stop at a target certainty on the researcher's pages (issue 15 part 2): the setting in the new-study
and settings forms (validated as a study file is), changeable after workers started, and the dashboard's
Certainty card with each model's half-width and a cached forecast of evaluators and cost."""

from __future__ import annotations

import re

import numpy as np
import pytest
from markupsafe import escape
from sqlalchemy import select

from hype.accounts import create_researcher
from hype.models import ModelStopping, Study
from hype.protocol import SettingsError, StudySettings
from hype.studies import study_settings
from session_player import play

PASSWORD = "correct horse battery"
SETTINGS = {"qualification": {"enabled": False}, "infinity": {"n_real": 5, "n_fake": 5}, "evaluators_per_model": 40,
            "stopping": {"target_halfwidth": 4.0, "min_evaluators": 10}}


def csrf_token(client, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def alice(session, client):
    researcher = create_researcher(session, "alice@example.org", PASSWORD)
    session.commit()
    token = csrf_token(client, "/login")
    assert client.post("/login", data={"email": "alice@example.org", "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    return researcher


def alices_study_with_evaluators(session, make_study, alice, n: int, *, seed: int, accuracy: float,
                                 mode: str = "hype-infinity", settings: dict = SETTINGS):
    """A study of alice's on which n workers have completed (alternating between its two models); the rng
    goes back to the test so that later players continue the same draws."""
    study = make_study(mode, settings=settings)
    study.owner_id = alice.id
    session.commit()
    rng = np.random.default_rng(seed)
    for k in range(n):
        play(session, study, f"w{k}", accuracy=accuracy, rng=rng)
    session.commit()
    return study, rng


BAD = [("stopping_min_evaluators", "5", "stopping.min_evaluators must be >= 10"),
       ("stopping_target_halfwidth", "60", "half-width in percentage points between 0 (no target) and 50")]


def test_new_study_form_sets_a_target_certainty_and_refuses_a_bad_one(client, alice, session):
    token = csrf_token(client, "/studies/new")
    page = client.get("/studies/new").get_data(as_text=True)
    assert "Stop at a target certainty" in page and 'name="stopping_target_halfwidth"' in page
    response = client.post("/studies/new", data={"csrf_token": token, "name": "certain", "mode": "hype-time",
                                                  "stopping_target_halfwidth": "40", "stopping_min_evaluators": "12",
                                                  "stopping_until_models_separate": "on"})
    assert response.status_code == 302
    s = study_settings(session.scalar(select(Study).where(Study.name == "certain")))
    assert (s.stopping.target_halfwidth, s.stopping.min_evaluators, s.stopping.until_models_separate) == (40.0, 12, True)

    for field, value, message in BAD:  # the form's message is the study file's
        response = client.post("/studies/new", data={"csrf_token": token, "name": "bad", "mode": "hype-infinity", field: value})
        assert response.status_code == 400 and str(escape(message)) in response.get_data(as_text=True)
        assert session.scalar(select(Study).where(Study.name == "bad")) is None
        section, key = field.split("_", 1)
        with pytest.raises(SettingsError, match=re.escape(message)):
            StudySettings.from_dict({section: {key: int(value) if key == "min_evaluators" else float(value)}})


def test_dashboard_shows_each_models_half_width_and_a_cached_forecast(client, alice, make_study, session, monkeypatch):
    # six evaluators per model, alternating: a model has a fitted population
    study, _ = alices_study_with_evaluators(session, make_study, alice, 12, seed=4, accuracy=0.85)

    url = f"/studies/{study.id}"
    page = client.get(url).get_data(as_text=True)
    card = page[page.index('id="certainty-card"'):]
    card = card[:card.index("</section>")]
    assert "Target: a confidence interval of ±4 points per model" in card
    from hype.stopping import coverage_range  # the card quotes the measured coverage from its one place

    assert f"measures {coverage_range('hype-infinity')} coverage of stopped models" in card
    rows = re.findall(r"<tr><td>(alpha|beta)</td><td>6</td>\s*<td>±([\d.]+) points.*?</td>\s*<td>collecting</td>\s*"
                      r"<td>(\d+) <span.*?</td>\s*<td>\$([\d.]+)</td></tr>", card, re.S)
    assert [r[0] for r in rows] == ["alpha", "beta"], card
    for _, half, more, cost in rows:
        assert float(half) > 4.0 and int(more) > 0 and float(cost) > 0
    stored = session.scalars(select(ModelStopping).where(ModelStopping.study_id == study.id)).all()
    assert {(r.n_evaluators, r.forecast_n) for r in stored} == {(6, 6)}

    # a second view reads the cache: no simulation
    import hype.stopping_state as state

    def no_simulation(*args, **kwargs):
        raise AssertionError("the forecast was simulated again for unchanged data")

    monkeypatch.setattr(state, "forecast", no_simulation)
    again = client.get(url)
    assert again.status_code == 200 and "±" in again.get_data(as_text=True)
    monkeypatch.undo()

    # workers have started: the target still changes (like the evaluators per model and the pay)
    settings_url = f"/studies/{study.id}/settings"
    token = csrf_token(client, settings_url)
    assert not re.search(r'name="stopping_target_halfwidth"[^>]*disabled', client.get(settings_url).get_data(as_text=True))
    response = client.post(settings_url, data={"csrf_token": token, "stopping_target_halfwidth": "2.5",
                                               "stopping_min_evaluators": "15"})
    assert response.status_code == 302
    session.expire_all()
    s = study_settings(study)
    assert (s.stopping.target_halfwidth, s.stopping.min_evaluators) == (2.5, 15)
    assert "Target: a confidence interval of ±2.5 points per model" in client.get(url).get_data(as_text=True)


def test_live_json_carries_the_certainty_card_so_it_moves_without_a_reload(client, alice, make_study, session):
    study, rng = alices_study_with_evaluators(session, make_study, alice, 4, seed=5, accuracy=0.85)
    live = f"/studies/{study.id}/live.json"
    before = client.get(live).get_json()["certainty_html"]
    assert 'id="certainty-card"' in before and re.search(r"<tr><td>alpha</td><td>2</td>", before)
    for k in range(4, 8):  # two more evaluators per model complete while the dashboard is open
        play(session, study, f"w{k}", accuracy=0.85, rng=rng)
    session.commit()
    after = client.get(live).get_json()["certainty_html"]
    assert re.search(r"<tr><td>alpha</td><td>4</td>", after) and re.search(r"<tr><td>beta</td><td>4</td>", after)
    page = client.get(f"/studies/{study.id}").get_data(as_text=True)  # the same card as the page renders
    card = page[page.index('<section class="card" id="certainty-card">'):]
    assert card[:card.index("</section>")] in after


def test_a_completed_sessions_score_is_cached_so_a_look_reads_only_its_own_answers(make_study, session, monkeypatch):
    """Issue 15 part 2 follow-up: the look a completion makes used to read every answer of the model
    (13,500 for HYPE-time at 30 evaluators) on the worker's request; now each session's score is stored
    once and a look reads the answers of sessions not yet scored, i.e. the completing one."""
    import hype.study_scoring as scoring_module
    from hype.models import EvaluatorScore
    from hype.monitoring import exclude
    from hype.study_scoring import evaluator_scores_by_model, score_study

    study = make_study(settings=SETTINGS)
    rng = np.random.default_rng(6)
    ids = [play(session, study, f"w{k}", accuracy=0.8, rng=rng) for k in range(6)]
    cached = {r.assignment_id: r.score for r in session.scalars(select(EvaluatorScore))}
    assert set(cached) == set(ids) and all(v is not None for v in cached.values())

    reads: list = []
    original = scoring_module._answers

    def counting(*args, **kwargs):
        reads.append(kwargs.get("assignment_ids"))
        return original(*args, **kwargs)

    monkeypatch.setattr(scoring_module, "_answers", counting)
    new = play(session, study, "w6", accuracy=0.8, rng=rng)
    assert reads == [[new]]  # the completion's look read that session's answers, nobody else's
    monkeypatch.undo()

    board = score_study(session, study, n_resamples=10).leaderboard  # the cache scores as the leaderboard does
    looked = evaluator_scores_by_model(session, study)
    names = {m.id: m.name for m in study.models}
    for model_id, scores in looked.items():
        assert sorted(scores) == pytest.approx(sorted(board.evaluator_scores[names[model_id]]))
    exclude(session, study, ids[0], "careless")  # exclusions apply on reading
    session.commit()
    after = evaluator_scores_by_model(session, study)
    assert sum(s.size for s in after.values()) == sum(s.size for s in looked.values()) - 1


def test_two_looks_at_once_cannot_miss_each_others_evaluator(make_study, session, engine, db_backend):
    """Issue 15 part 2 follow-up: a look takes the study's row lock before reading scores, so a second
    look waits for the first transaction and then sees its evaluator (PostgreSQL READ COMMITTED; SQLite
    has one writer at a time anyway). Before, both read what was committed before either and each
    stored a state missing the other's evaluator until some later completion."""
    import threading

    from hype.db import make_session_factory
    from hype.models import Exclusion
    from hype.monitoring import exclude
    from hype.stopping_state import _serialise_looks, look

    if db_backend != "postgresql":
        pytest.skip("SQLite serialises writers itself")
    study = make_study(settings=SETTINGS)
    rng = np.random.default_rng(8)
    ids = [play(session, study, f"w{k}", accuracy=0.8, rng=rng) for k in range(4)]  # alpha: w0, w2
    exclusion = exclude(session, study, ids[0], "careless")
    session.commit()
    alpha = study.models[0].id
    factory = make_session_factory(engine)
    with factory() as first, factory() as second:
        mine = first.get(Study, study.id)
        _serialise_looks(first, mine)  # the first completion's look is under way...
        first.get(Exclusion, exclusion.id).revoked_at = exclusion.created_at  # ...and its evaluator counts
        first.flush()
        done = threading.Event()

        def second_look():
            look(second, second.get(Study, study.id), [alpha])
            second.commit()
            done.set()

        t = threading.Thread(target=second_look)
        t.start()
        assert not done.wait(0.5)  # the second look waits for the first transaction
        first.commit()
        t.join(10)
        assert done.is_set()
    session.expire_all()
    row = session.scalar(select(ModelStopping).where(ModelStopping.model_id == alpha))
    assert row.n_evaluators == 2  # it saw the evaluator the first transaction brought back


QUEST = {"qualification": {"enabled": False}, "evaluators_per_model": 40,
         "time": {"n_blocks": 2, "trials_per_block": 6, "adaptive": True},
         "stopping": {"target_halfwidth": 30.0, "min_evaluators": 10}}


def test_a_quest_studys_forecast_runs_as_a_background_job_not_in_the_request(client, alice, make_study, session, config,
                                                                               monkeypatch):
    """Was: the first dashboard view after new evaluators simulated QUEST+ on the request (~8 s at the
    study default size). Now the view starts one forecast job and says "being computed"; after the job
    the card shows the forecast; a view of the same state starts nothing; a new evaluator makes it stale."""
    import hype.stopping_state as state
    from hype.jobs import run_job
    from hype.models import Job

    study, rng = alices_study_with_evaluators(session, make_study, alice, 4, seed=9, accuracy=0.8, mode="hype-time",
                                              settings=QUEST)

    def no_simulation(*args, **kwargs):
        raise AssertionError("a QUEST+ forecast was simulated in the request")

    monkeypatch.setattr(state, "forecast", no_simulation)
    url, live = f"/studies/{study.id}", f"/studies/{study.id}/live.json"

    def card(html: str) -> str:
        part = html[html.index('id="certainty-card"'):]
        return part[:part.index("</section>")]

    def forecast_jobs() -> list:
        session.expire_all()
        return session.scalars(select(Job).where(Job.study_id == study.id, Job.kind == "forecast").order_by(Job.id)).all()

    first = client.get(url)
    assert first.status_code == 200
    assert card(first.get_data(as_text=True)).count("forecast being computed") == 2
    from hype.stopping import QUEST_KIND, coverage_range

    assert f"measures {coverage_range(QUEST_KIND)} coverage of stopped models" in card(first.get_data(as_text=True))
    jobs = forecast_jobs()
    assert [j.state for j in jobs] == ["queued"]
    assert client.get(f"/studies/{study.id}/jobs.json").get_json()["jobs"] == []  # not in the Background jobs list
    assert "forecast being computed" in client.get(live).get_json()["certainty_html"]  # polling: no second job
    assert len(forecast_jobs()) == 1

    monkeypatch.undo()
    assert run_job(config, jobs[0].id) == "done"
    after = card(client.get(url).get_data(as_text=True))
    assert "being computed" not in after
    rows = re.findall(r"<tr><td>(alpha|beta)</td><td>2</td>.*?<td>collecting</td>\s*<td>(\d+) <span.*?</td>\s*"
                      r"<td>\$([\d.]+)</td></tr>", after, re.S)
    assert [r[0] for r in rows] == ["alpha", "beta"], after
    assert all(int(more) > 0 and float(cost) > 0 for _, more, cost in rows)
    assert all(r.forecast_n == r.n_evaluators == 2 for r in session.scalars(select(ModelStopping)))
    monkeypatch.setattr(state, "forecast", no_simulation)
    assert "being computed" not in client.get(live).get_json()["certainty_html"]
    assert len(forecast_jobs()) == 1  # the same state: nothing started

    play(session, study, "w4", accuracy=0.8, rng=rng)  # a new evaluator of one model: its forecast is stale again
    session.commit()
    again = card(client.get(url).get_data(as_text=True))
    grown = re.findall(r"<tr><td>(alpha|beta)</td><td>3</td>.*?forecast being computed", again, re.S)
    kept = re.findall(r"<tr><td>(alpha|beta)</td><td>2</td>.*?<td>collecting</td>\s*<td>\d+ <span", again, re.S)
    assert len(grown) == 1 and len(kept) == 1 and set(grown + kept) == {"alpha", "beta"}, again  # the other: cached
    assert [j.state for j in forecast_jobs()] == ["done", "queued"]
