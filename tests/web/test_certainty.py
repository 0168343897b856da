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
    study = make_study(settings=SETTINGS)
    study.owner_id = alice.id
    session.commit()
    rng = np.random.default_rng(4)
    for k in range(12):  # six evaluators per model, alternating: a model has a fitted population
        play(session, study, f"w{k}", accuracy=0.85, rng=rng)
    session.commit()

    url = f"/studies/{study.id}"
    page = client.get(url).get_data(as_text=True)
    card = page[page.index('id="certainty-card"'):]
    card = card[:card.index("</section>")]
    assert "Target: a confidence interval of ±4 points per model" in card
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
