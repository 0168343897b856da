"""The worker JSON API and pages through Flask's test client, on SQLite and (when configured) PostgreSQL.

Covers issue #3: idempotent and ordered answers, ownership of trials, resume and repeat participation,
MTurk preview and identity checks, body validation, the browser check, complete HYPE-infinity and
HYPE-time sessions checked against the database, qualification pass/fail, the server-side staircase,
feedback rules, timing flags, model balancing, study status and image access.
"""

from __future__ import annotations

import itertools
from collections import Counter
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from hype.models import Assignment, Judgment, Participant, StaircaseRecord, Trial
from hype.studies import close_study

from apihelpers import FRAME_60HZ, assignment_of, count_judgments, faithful_timing, new_key, run_phase

pytestmark = pytest.mark.db

SANDBOX = "https://workersandbox.mturk.com"


def mturk(worker_id: str, assignment_id: str | None = None, submit_to: str = SANDBOX) -> dict[str, str]:
    return {
        "assignmentId": assignment_id or f"ASG{worker_id}",
        "hitId": "HIT0001",
        "workerId": worker_id,
        "turkSubmitTo": submit_to,
    }


def prolific(pid: str) -> dict[str, str]:
    return {"PROLIFIC_PID": pid, "STUDY_ID": "STUDY01", "SESSION_ID": f"SES{pid}"}


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def assert_json_error(response, status: int, code: str | None = None, mentions: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "message"}, body
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["error"] == code, body
    if mentions is not None:
        assert mentions in body["message"], body
    return body


def trials_of(session, token: str) -> list[Trial]:
    session.rollback()
    assignment = assignment_of(session, token)
    return list(session.scalars(select(Trial).where(Trial.assignment_id == assignment.id).order_by(Trial.position)))


def pass_qualification(w, oracle) -> list:
    answered = run_phase(w, lambda t: oracle(t["id"], True), "qualification")
    assert w.state()["stage"] == "task"
    return answered


# -- entry, resume, repeat participation -------------------------------------------------------------


def test_entry_creates_a_session_at_the_instructions(make_study, worker, db_read):
    study = make_study()
    w = worker(study)
    response = w.enter()
    assert response.status_code == 201
    body = response.get_json()
    assert body["created"] is True
    assert body["stage"] == "instructions"
    assert body["url"] == f"/w/{body['token']}"
    assert len(body["token"]) >= 40  # token_urlsafe(32): 256 bits
    assert body["progress"] == {"done": 0, "total": 10}
    participant = db_read(lambda s: s.scalar(select(Participant)))
    assert participant.platform == "plain" and participant.worker_id.startswith("anon-")


def test_consent_is_required(make_study, worker, db_read):
    study = make_study()
    w = worker(study)
    assert_json_error(w.enter(consent=False), 400, "consent-required", "consent")
    assert db_read(lambda s: s.scalar(select(func.count()).select_from(Participant))) == 0


def test_plain_link_resumes_with_the_same_cookie(make_study, worker, app):
    study = make_study()
    w = worker(study)
    first = w.enter().get_json()
    # reload of the study link: the page sends the browser to its session
    page = w.client.get(f"/s/{study.slug}")
    assert page.status_code == 303
    assert page.headers["Location"].endswith(f"/w/{first['token']}")
    # the consent button pressed again (second tab): the same session, not a new one
    again = w.enter()
    assert again.status_code == 200
    assert again.get_json()["token"] == first["token"] and again.get_json()["created"] is False
    # another browser is another participant
    other = worker(study)
    assert other.enter().status_code == 201
    assert other.token != first["token"]


@pytest.mark.parametrize("params", [mturk("WORKERA1"), prolific("PID00001")], ids=["mturk", "prolific"])
def test_platform_ids_resume_from_any_browser(make_study, worker, params):
    study = make_study()
    first = worker(study, params)
    assert first.enter().status_code == 201
    # a different browser (no cookie) with the same platform ids
    second = worker(study, params)
    response = second.enter()
    assert response.status_code == 200
    assert second.token == first.token and response.get_json()["created"] is False
    page = worker(study).client.get(f"/s/{study.slug}?{urlencode(params)}")
    assert page.status_code == 303
    assert page.headers["Location"].endswith(f"/w/{first.token}")


def test_reload_mid_task_resumes_at_the_same_trial(make_study, worker, oracle):
    study = make_study()
    w = worker(study)
    w.start()
    for _ in range(2):
        trial = w.trial()["trial"]
        assert w.answer(trial["id"], oracle(trial["id"])).status_code == 201
    before = w.trial()
    page = w.client.get(f"/w/{w.token}")
    assert page.status_code == 200 and b'data-page="trials"' in page.data
    after = w.trial()
    assert after["trial"]["id"] == before["trial"]["id"]
    assert after["progress"] == {"done": 2, "total": 8}


def test_a_finished_worker_cannot_start_again(make_study, worker, oracle, db_read):
    study = make_study()
    # plain link, failed the qualification (every answer wrong)
    w = worker(study)
    w.start()
    run_phase(w, lambda t: oracle(t["id"], False), "qualification")
    assert w.state()["stage"] == "failed"
    assert_json_error(w.enter(), 409, "already-participated")
    page = w.client.get(f"/s/{study.slug}")
    assert page.status_code == 409
    assert b"already taken part" in page.data
    assert b'id="consent"' not in page.data
    # MTurk, completed, comes back through a new HIT assignment: still the same worker
    m = worker(study, mturk("WORKERB2"))
    m.start()
    pass_qualification(m, oracle)
    run_phase(m, lambda t: oracle(t["id"]), "task")
    assert m.state()["stage"] == "completed"
    again = worker(study, mturk("WORKERB2", assignment_id="ANOTHERASSIGNMENT"))
    assert_json_error(again.enter(), 409, "already-participated")
    page = again.client.get(f"/s/{study.slug}?{urlencode(again.params)}")
    assert page.status_code == 409
    assert db_read(lambda s: s.scalar(select(func.count()).select_from(Assignment))) == 2


# -- MTurk specifics ----------------------------------------------------------------------------------


def test_mturk_preview_page_shows_the_notice_and_a_disabled_button(make_study, app):
    study = make_study()
    page = app.test_client().get(
        f"/s/{study.slug}?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=HIT0001&turkSubmitTo={SANDBOX}"
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="preview"' in html and "accept the HIT" in html
    assert "<button type=\"button\" disabled>" in html
    assert 'id="consent"' not in html


def test_mturk_preview_with_a_worker_id_is_refused_by_the_api(make_study, worker, db_read):
    study = make_study()
    w = worker(study, mturk("WORKERC3", assignment_id="ASSIGNMENT_ID_NOT_AVAILABLE"))
    assert_json_error(w.enter(), 403, "mturk-preview")
    assert db_read(lambda s: s.scalar(select(func.count()).select_from(Participant))) == 0


def test_mturk_preview_without_a_worker_id_is_refused_by_the_api_as_a_preview(make_study, worker):
    study = make_study()
    w = worker(study, {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "HIT0001", "turkSubmitTo": SANDBOX})
    assert_json_error(w.enter(), 403, "mturk-preview")


@pytest.mark.parametrize(
    "submit_to",
    ["https://evil.example", "http://www.mturk.com", "https://www.mturk.com.evil.example", "javascript:alert(1)", ""],
)
def test_a_bad_turk_submit_to_is_refused(make_study, worker, submit_to, db_read):
    study = make_study()
    w = worker(study, mturk("WORKERD4", submit_to=submit_to))
    assert_json_error(w.enter(), 400, "bad-identity", "turkSubmitTo")
    page = w.client.get(f"/s/{study.slug}?{urlencode(w.params)}")
    assert page.status_code == 400
    assert db_read(lambda s: s.scalar(select(func.count()).select_from(Participant))) == 0


def test_mturk_resume_under_a_new_assignment_submits_the_new_assignment(make_study, worker, oracle):
    study = make_study()
    first = worker(study, mturk("WORKERR9", assignment_id="ASSIGNMENTONE"))
    first.start()
    # the worker returns the HIT, accepts it again: MTurk hands out a new assignmentId
    again = worker(study, mturk("WORKERR9", assignment_id="ASSIGNMENTTWO"))
    response = again.enter()
    assert response.status_code == 200 and again.token == first.token
    pass_qualification(again, oracle)
    run_phase(again, lambda t: oracle(t["id"]), "task")
    html = again.client.get(f"/w/{again.token}").get_data(as_text=True)
    assert 'value="ASSIGNMENTTWO"' in html


def test_mturk_done_page_posts_to_the_given_sandbox(make_study, worker, oracle, db_read):
    study = make_study()
    w = worker(study, mturk("WORKERE5", submit_to=SANDBOX + "/"))
    w.start()
    pass_qualification(w, oracle)
    run_phase(w, lambda t: oracle(t["id"]), "task")
    html = w.client.get(f"/w/{w.token}").get_data(as_text=True)
    assert f'action="{SANDBOX}/mturk/externalSubmit"' in html
    assert 'value="ASGWORKERE5"' in html
    code = db_read(lambda s: assignment_of(s, w.token)).completion_code
    assert f'name="completionCode" value="{code}"' in html and code != study.completion_code


# -- body validation -----------------------------------------------------------------------------------


def test_entry_body_validation(make_study, app):
    study = make_study()
    client = app.test_client()
    url = f"/api/s/{study.slug}/sessions"
    assert_json_error(client.post(url, data="{not json", content_type="application/json"), 400, "malformed-json")
    assert_json_error(client.post(url, json=[1, 2]), 400, "malformed-json")
    assert_json_error(client.post(url, data='{"consent": true}', content_type="text/plain"), 415, "unsupported-media-type")
    assert_json_error(client.post(url, data={"consent": "true"}), 415, "unsupported-media-type")
    assert_json_error(client.post(url), 415)
    assert_json_error(client.post(url, json={"consent": True, "params": ["workerId"]}), 400, "bad-field", "params")
    assert_json_error(client.post(url, json={"consent": True, "params": {"workerId": 7}}), 400, "bad-field", "params")
    assert_json_error(client.post(url, json={"consent": "yes"}), 400, "consent-required", "consent")


def _answer_cases():
    ok = {"response": "real", "idempotency_key": "abcdefgh12"}
    yield "missing response", {"idempotency_key": "abcdefgh12"}, "missing-field", "response"
    yield "response not a string", ok | {"response": 1}, "bad-field", "response"
    yield "response not real/fake", ok | {"response": "maybe"}, "bad-field", "response"
    yield "missing trial", ok, "missing-field", "trial"
    yield "trial not a string", ok | {"trial": 12}, "bad-field", "trial"
    yield "missing key", {"response": "real"}, "missing-field", "idempotency_key"
    yield "key too short", ok | {"idempotency_key": "short"}, "bad-request", "idempotency_key"
    yield "key bad characters", ok | {"idempotency_key": "abc def ghi"}, "bad-request", "idempotency_key"
    yield "measured not a number", ok | {"measured_ms": "fast"}, "bad-field", "measured_ms"
    yield "measured negative", ok | {"measured_ms": -1}, "bad-field", "measured_ms"
    yield "measured a bool", ok | {"measured_ms": True}, "bad-field", "measured_ms"
    yield "refresh a bool", ok | {"refresh_interval_ms": False}, "bad-field", "refresh_interval_ms"
    yield "reaction a string", ok | {"reaction_ms": "1s"}, "bad-field", "reaction_ms"
    yield "focus not a bool", ok | {"focus_lost": "yes"}, "bad-field", "focus_lost"
    yield "masks not a list", ok | {"mask_measured_ms": "33"}, "bad-field", "mask_measured_ms"
    yield "mask not a number", ok | {"mask_measured_ms": [33.3, "x"]}, "bad-field", "mask_measured_ms"
    yield "too many masks", ok | {"mask_measured_ms": [33.3] * 17}, "bad-field", "mask_measured_ms"
    yield "timestamps not an object", ok | {"client_timestamps": [1, 2]}, "bad-field", "client_timestamps"
    yield "timestamp not a number", ok | {"client_timestamps": {"image_on": "now"}}, "bad-field", "image_on"


@pytest.mark.parametrize(("body", "code", "field"), [c[1:] for c in _answer_cases()], ids=[c[0] for c in _answer_cases()])
def test_answer_body_validation_names_the_field(make_study, worker, db_read, body, code, field):
    study = make_study()
    w = worker(study)
    w.start()
    trial = w.trial()["trial"]
    if field != "trial":
        body = {"trial": trial["id"]} | body
    response = w.client.post(w.api + "/answers", json=body)
    assert_json_error(response, 400, code, field)
    assert db_read(lambda s: count_judgments(s)) == 0
    assert w.trial()["trial"]["id"] == trial["id"]


def test_answer_body_must_be_json(make_study, worker, db_read):
    study = make_study()
    w = worker(study)
    w.start()
    trial = w.trial()["trial"]
    assert_json_error(w.client.post(w.api + "/answers", data=f"trial={trial['id']}&response=real"), 415)
    assert_json_error(w.client.post(w.api + "/answers", data="{", content_type="application/json"), 400, "malformed-json")
    assert_json_error(
        w.client.post(w.api + "/answers", data='{"measured_ms": NaN}', content_type="application/json"), 400
    )
    assert db_read(lambda s: count_judgments(s)) == 0


def test_a_huge_integer_is_a_400_naming_the_field(make_study, worker, app):
    # a JSON integer beyond float range once made math.isfinite() raise OverflowError: a 500
    app.config["PROPAGATE_EXCEPTIONS"] = False  # see the status a browser would get
    study = make_study()
    w = worker(study)
    w.start()
    trial = w.trial()["trial"]
    raw = '{"trial": "%s", "response": "real", "idempotency_key": "abcdefgh12", "measured_ms": %s}' % (trial["id"], "9" * 400)
    assert_json_error(w.client.post(w.api + "/answers", data=raw, content_type="application/json"), 400, "bad-field", "measured_ms")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"window_width": 1280, "window_height": 900}, "missing-field", "refresh_interval_ms"),
        ({"refresh_interval_ms": 16.7, "window_height": 900}, "missing-field", "window_width"),
        ({"refresh_interval_ms": 16.7, "window_width": 1280, "window_height": "tall"}, "bad-field", "window_height"),
        ({"refresh_interval_ms": "60Hz", "window_width": 1280, "window_height": 900}, "bad-field", "refresh_interval_ms"),
        ({"refresh_interval_ms": 16.7, "window_width": -5, "window_height": 900}, "bad-field", "window_width"),
    ],
)
def test_check_body_validation_names_the_field(make_study, worker, body, code, field):
    study = make_study()
    w = worker(study)
    w.enter()
    w.instructions()
    assert_json_error(w.client.post(w.api + "/check", json=body), 400, code, field)
    assert w.state()["stage"] == "check"


def test_unknown_session_token_is_404(make_study, app):
    make_study()
    client = app.test_client()
    fake_token = "x" * 43
    assert_json_error(client.get(f"/api/w/{fake_token}/trial"), 404, "unknown-session")
    assert_json_error(
        client.post(f"/api/w/{fake_token}/answers", json={"trial": "t", "response": "real", "idempotency_key": "abcdefgh"}),
        404,
        "unknown-session",
    )
    assert client.get(f"/w/{fake_token}").status_code == 404


# -- browser check -----------------------------------------------------------------------------------


def test_browser_check(make_study, worker, db_read):
    study = make_study()  # 32x32 images: the window needs 72 x 192
    w = worker(study)
    w.enter()
    assert_json_error(w.check(), 409, "wrong-stage")  # instructions first
    assert w.instructions().get_json()["stage"] == "check"
    assert_json_error(w.check(window_width=71), 422, "window-too-small", "72x192")
    assert_json_error(w.check(window_height=191), 422, "window-too-small")
    assert w.state()["stage"] == "check"
    assert_json_error(w.check(refresh_interval_ms=100.0), 422, "display-unsupported")  # 10 Hz
    assert_json_error(w.check(refresh_interval_ms=1.0), 422, "display-unsupported")  # 1000 Hz
    assert w.state()["stage"] == "check"
    assert w.client.get(f"/w/{w.token}").data.count(b'data-page="check"') == 1
    ok = w.check(window_width=72, window_height=192, refresh_interval_ms=FRAME_60HZ)
    assert ok.status_code == 200 and ok.get_json()["stage"] == "qualification"
    stored = db_read(lambda s: assignment_of(s, w.token))
    assert (stored.window_width, stored.window_height) == (72, 192)
    assert stored.refresh_interval_ms == pytest.approx(FRAME_60HZ)
    # a retried check changes nothing
    assert w.check(window_width=10).get_json()["stage"] == "qualification"


# -- answers: idempotency, order, ownership ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hype-infinity", "hype-time"])
def test_retried_answer_is_recorded_once_with_the_same_feedback(make_study, worker, oracle, db_read, mode):
    study = make_study(mode)
    w = worker(study)
    w.start()
    if mode == "hype-time":
        pass_qualification(w, oracle)
    trial = w.trial()["trial"]
    key = new_key()
    wrong = oracle(trial["id"], False)
    first = w.answer(trial["id"], wrong, key, timing=faithful_timing(trial))
    assert first.status_code == 201
    first_body = first.get_json()
    assert first_body["replayed"] is False and first_body["recorded"] is True
    retry = w.answer(trial["id"], wrong, key, timing=faithful_timing(trial))
    assert retry.status_code == 200
    retry_body = retry.get_json()
    assert retry_body["replayed"] is True
    assert retry_body["feedback"] == first_body["feedback"]
    assert retry_body["progress"] == first_body["progress"]
    # the replay (ORM path) returns the very payload the answer (Core-row path) did: the same next trial,
    # served at the same exposure, with the same masks and preload
    assert retry_body["next"] == first_body["next"]
    if mode == "hype-time":
        assert first_body["feedback"] == {"correct": False}
    else:
        assert first_body["feedback"] is None
    # the retry may even claim another response: the first one stands
    other = "fake" if wrong == "real" else "real"
    assert w.answer(trial["id"], other, key).status_code == 200

    def check(s):
        trial_row = s.scalar(select(Trial).where(Trial.image_token == trial["id"]))
        return count_judgments(s), count_judgments(s, trial_id=trial_row.id), trial_row.judgment.judged_fake

    total, for_trial, judged_fake = db_read(check)
    assert (total, for_trial) == ((9 if mode == "hype-time" else 1), 1)
    assert judged_fake == (wrong == "fake")
    # a different key for the answered trial is a conflict, not a second record
    assert_json_error(w.answer(trial["id"], wrong), 409, "already-answered")
    # the same key for another trial is refused
    nxt = w.trial()["trial"]
    assert nxt["id"] != trial["id"]
    assert_json_error(w.answer(nxt["id"], "real", key), 409, "key-reused")
    # a late retry (after the next answer was recorded) is still a replay
    assert w.answer(nxt["id"], "real", timing=faithful_timing(nxt)).status_code == 201
    late = w.answer(trial["id"], wrong, key)
    assert late.status_code == 200 and late.get_json()["replayed"] is True
    assert db_read(lambda s: count_judgments(s)) == (10 if mode == "hype-time" else 2)


def test_out_of_order_answer_is_409(make_study, worker, db_read):
    study = make_study()
    w = worker(study)
    w.start()
    state = w.trial()
    ahead = token_of(state["preload"][0])
    assert ahead != state["trial"]["id"]
    body = assert_json_error(w.answer(ahead, "real"), 409, "out-of-order")
    assert "order" in body["message"]
    assert db_read(lambda s: count_judgments(s)) == 0
    assert w.trial()["trial"]["id"] == state["trial"]["id"]


def test_answers_before_the_trials_start_are_409(make_study, worker, db_read):
    study = make_study()
    w = worker(study)
    w.enter()
    first = db_read(lambda s: trials_of(s, w.token))[0].image_token
    assert_json_error(w.answer(first, "real"), 409, "wrong-stage")
    w.instructions()
    assert_json_error(w.answer(first, "real"), 409, "wrong-stage")
    assert db_read(lambda s: count_judgments(s)) == 0


def test_another_participants_trial_is_403_and_an_unknown_one_404(make_study, worker, db_read):
    study = make_study()
    a, b = worker(study), worker(study)
    a.start()
    b.start()
    theirs = b.trial()["trial"]["id"]
    assert_json_error(a.answer(theirs, "real"), 403, "foreign-trial")
    assert_json_error(a.answer("A" * 22, "real"), 404, "unknown-trial")
    assert db_read(lambda s: count_judgments(s)) == 0
    # b's own answer still works
    assert b.answer(theirs, "real").status_code == 201


# -- complete sessions -----------------------------------------------------------------------------------


def test_full_hype_infinity_session_records_each_judgment_once(make_study, worker, oracle, truth, db_read):
    study = make_study()
    w = worker(study, prolific("PID00002"))
    w.start()
    sent: dict[str, str] = {}
    responses = itertools.cycle(["fake", "real", "real", "fake", "fake"])  # label-blind answers
    n = 0
    while True:
        state = w.trial()
        trial = state["trial"]
        if trial is None:
            break
        assert trial["timed"] is False and trial["exposure_ms"] is None and trial["masks"] == []
        assert trial["feedback"] is False and trial["countdown"] is None
        response = oracle(trial["id"]) if trial["phase"] == "qualification" else next(responses)
        key = new_key()
        first = w.answer(trial["id"], response, key, timing=faithful_timing(trial))
        assert first.status_code == 201 and first.get_json()["feedback"] is None
        if n % 3 == 0:  # a flaky network: every third answer is sent twice
            assert w.answer(trial["id"], response, key).get_json()["replayed"] is True
        sent[trial["id"]] = response
        n += 1
    assert n == 18
    final = w.state()
    assert final["stage"] == "completed"
    assert final["progress"] == {"done": 10, "total": 10}

    def read(s):
        assignment = assignment_of(s, w.token)
        rows = s.execute(
            select(Trial.image_token, Trial.is_fake, Trial.phase, Judgment.judged_fake, Judgment.correct, Judgment.flagged)
            .join(Judgment, Judgment.trial_id == Trial.id)
            .where(Trial.assignment_id == assignment.id)
        ).all()
        per_trial = s.execute(
            select(Judgment.trial_id, func.count()).where(Judgment.assignment_id == assignment.id).group_by(Judgment.trial_id)
        ).all()
        n_trials = s.scalar(select(func.count()).where(Trial.assignment_id == assignment.id))
        return assignment, rows, per_trial, n_trials

    assignment, rows, per_trial, n_trials = db_read(read)
    assert n_trials == 18 and len(rows) == 18
    assert all(count == 1 for _, count in per_trial) and len(per_trial) == 18
    for token, is_fake, phase, judged_fake, correct, flagged in rows:
        assert judged_fake == (sent[token] == "fake")
        assert correct == (judged_fake == is_fake)
        assert is_fake == truth(token)
        assert flagged is False
    task = [r for r in rows if r.phase == "task"]
    assert sum(r.is_fake for r in task) == 5  # half real, half fake
    assert assignment.completion_code not in (None, study.completion_code)
    assert assignment.qualification_passed is True
    # nothing more to answer; the done page shows the session's own code and returns to Prolific
    # with the study's registered completed code
    assert_json_error(w.answer(rows[0].image_token, "real"), 409, "already-answered")
    page = w.client.get(f"/w/{w.token}").get_data(as_text=True)
    assert assignment.completion_code in page and f"cc={study.completion_code}" in page


def test_qualification_pass_at_the_threshold_moves_to_the_task(make_study, worker, truth, db_read):
    study = make_study()  # 4 real + 4 fake, 65% on each: 3 of 4 needed
    w = worker(study)
    w.start()
    wrong_left = {False: 1, True: 1}  # one wrong real, one wrong fake: 3/4 and 3/4

    def respond(trial):
        fake = truth(trial["id"])
        if wrong_left[fake]:
            wrong_left[fake] -= 1
            return "real" if fake else "fake"
        return "fake" if fake else "real"

    answered = run_phase(w, respond, "qualification")
    assert len(answered) == 8
    assert all(body["stage"] == "qualification" for _, body in answered[:-1])
    assert answered[-1][1]["stage"] == "task"
    state = w.trial()
    assert state["stage"] == "task" and state["trial"]["phase"] == "task"
    assert state["progress"] == {"done": 0, "total": 10}
    a = db_read(lambda s: assignment_of(s, w.token))
    assert (a.qualification_real_correct, a.qualification_fake_correct, a.qualification_passed) == (3, 3, True)
    assert a.completion_code is None


def test_qualification_fail_ends_with_the_fail_code(make_study, worker, truth, db_read):
    study = make_study()
    w = worker(study, mturk("WORKERF6"))
    w.start()
    wrong_left = {True: 2}  # 4/4 real right, only 2/4 fake right: 50% < 65%

    def respond(trial):
        fake = truth(trial["id"])
        if fake and wrong_left[True]:
            wrong_left[True] -= 1
            return "real"
        return "fake" if fake else "real"

    answered = run_phase(w, respond, "qualification")
    assert answered[-1][1]["stage"] == "failed"
    state = w.trial()
    assert state["stage"] == "failed" and state["trial"] is None and state["preload"] == []
    a = db_read(lambda s: assignment_of(s, w.token))
    assert (a.qualification_real_correct, a.qualification_fake_correct, a.qualification_passed) == (4, 2, False)
    assert a.completion_code not in (None, study.qualification_fail_code, study.completion_code)
    assert a.completed_at is not None
    # no task trial can be answered
    task_token = db_read(lambda s: s.scalar(select(Trial.image_token).where(Trial.assignment_id == a.id, Trial.phase == "task")))
    assert_json_error(w.answer(task_token, "real"), 409, "wrong-stage")
    html = w.client.get(f"/w/{w.token}").get_data(as_text=True)
    assert a.completion_code in html and study.completion_code not in html


def test_without_qualification_the_check_leads_to_the_task(make_study, worker):
    study = make_study("hype-time", settings={"qualification": {"enabled": False}, "time": {"n_blocks": 1, "trials_per_block": 4}})
    w = worker(study)
    assert w.start()["stage"] == "task"
    trial = w.trial()["trial"]
    assert trial["phase"] == "task" and trial["timed"] is True and trial["exposure_ms"] == 500.0


# -- HYPE-time --------------------------------------------------------------------------------------------


def test_hype_time_exposures_follow_the_staircase_per_block(make_study, worker, oracle, db_read):
    study = make_study("hype-time")  # 2 blocks x 6 trials, start 500, -10 correct, +30 wrong
    w = worker(study)
    w.start()
    qualification = pass_qualification(w, oracle)
    assert all(t["exposure_ms"] is None and t["timed"] is False for t, _ in qualification)
    pattern = {0: [True, True, False, True, False, False], 1: [False, False, True, True, True, False]}
    expected = {0: [500, 490, 480, 510, 500, 530], 1: [500, 530, 560, 550, 540, 530]}
    seen: dict[int, list[float]] = {0: [], 1: []}
    while True:
        trial = w.trial()["trial"]
        if trial is None:
            break
        block = trial["block"]
        assert trial["timed"] is True and trial["feedback"] is True
        assert trial["countdown"] == {"steps": 3, "ms": 500.0}
        assert trial["mask_ms"] == 30.0 and len(trial["masks"]) == 4
        correct = pattern[block][len(seen[block])]
        seen[block].append(trial["exposure_ms"])
        response = w.answer(trial["id"], oracle(trial["id"], correct), timing=faithful_timing(trial))
        assert response.status_code == 201
        assert response.get_json()["feedback"] == {"correct": correct}
    assert seen == expected
    assert w.state()["stage"] == "completed"

    def read(s):
        a = assignment_of(s, w.token)
        rows = s.execute(
            select(Trial.block, Trial.position, Trial.requested_ms, Judgment.requested_ms, Judgment.correct)
            .join(Judgment, Judgment.trial_id == Trial.id)
            .where(Trial.assignment_id == a.id, Trial.phase == "task")
            .order_by(Trial.position)
        ).all()
        states = {r.block: r.state for r in s.scalars(select(StaircaseRecord).where(StaircaseRecord.assignment_id == a.id))}
        return rows, states

    rows, states = db_read(read)
    for block in (0, 1):
        mine = [r for r in rows if r.block == block]
        assert [r[2] for r in mine] == expected[block]  # the trial's served exposure
        assert [r[3] for r in mine] == expected[block]  # stored with the judgment
        assert [r.correct for r in mine] == pattern[block]
    assert set(states) == {0, 1}


@pytest.mark.parametrize(
    ("start_ms", "answers", "expected"),
    [
        (110.0, [True, True, False], [110, 100, 100, 130]),  # -10 clamps at the 100 ms floor
        (980.0, [False, False, True], [980, 1000, 1000, 990]),  # +30 clamps at the 1000 ms ceiling
    ],
)
def test_staircase_exposures_stay_within_100_and_1000_ms(make_study, worker, oracle, start_ms, answers, expected):
    study = make_study(
        "hype-time",
        settings={"qualification": {"enabled": False}, "time": {"n_blocks": 1, "trials_per_block": 4, "start_ms": start_ms}},
    )
    w = worker(study)
    w.start()
    seen = []
    for correct in answers + [True]:
        trial = w.trial()["trial"]
        seen.append(trial["exposure_ms"])
        response = w.answer(trial["id"], oracle(trial["id"], correct), timing=faithful_timing(trial))
        assert response.get_json()["feedback"] == {"correct": correct}
    assert seen == expected
    assert w.state()["stage"] == "completed"


def test_served_exposure_is_fixed_and_the_client_cannot_choose_it(make_study, worker, oracle, db_read):
    study = make_study("hype-time")
    w = worker(study)
    w.start()
    pass_qualification(w, oracle)
    first = w.trial()
    again = w.trial()
    assert again["trial"] == first["trial"]
    assert first["trial"]["exposure_ms"] == 500.0
    # answering a timed trial that was never served is refused
    unserved = token_of(first["preload"][0])
    assert_json_error(w.answer(unserved, "real"), 409)
    trial = first["trial"]
    timing = faithful_timing(trial)
    response = w.answer(trial["id"], oracle(trial["id"], False), timing=timing, exposure_ms=1000, requested_ms=1000)
    assert response.status_code == 201
    nxt = w.trial()["trial"]
    assert nxt["id"] == unserved and nxt["exposure_ms"] == 530.0  # +30 after a wrong answer
    assert w.trial()["trial"]["exposure_ms"] == 530.0
    stored = db_read(lambda s: s.scalar(select(Judgment.requested_ms).join(Trial).where(Trial.image_token == trial["id"])))
    assert stored == 500.0


def test_answering_an_unserved_timed_trial_says_so(make_study, worker, oracle, db_read):
    # Without a qualification the check leads straight into the task, whose first trial nobody has served.
    study = make_study("hype-time", settings={"qualification": {"enabled": False}, "time": {"n_blocks": 1, "trials_per_block": 6}})
    w = worker(study)
    assert w.start()["stage"] == "task"
    first = db_read(lambda s: s.scalar(
        select(Trial.image_token).join(Assignment).where(Assignment.token == w.token).order_by(Trial.position).limit(1)))
    assert_json_error(w.answer(first, oracle(first)), 409, "not-served")
    trial = w.trial()["trial"]
    assert trial["id"] == first
    assert w.answer(first, oracle(first), timing=faithful_timing(trial)).status_code == 201


def test_an_answer_carries_the_next_trial_already_served(make_study, worker, oracle):
    """`next` in an answer's reply is exactly what GET /trial gives afterwards: same trial, same
    exposure (fixed when the answer served it), same preload; and at a stage's end, the next stage's."""
    study = make_study("hype-time")
    w = worker(study)
    w.start()
    state = w.trial()
    stages = []
    for k in itertools.count():
        trial = state["trial"]
        if trial is None:
            break
        # right on the qualification, then right twice and wrong once, so the staircases move both ways
        right = trial["phase"] == "qualification" or k % 3 != 0
        key = new_key()
        reply = w.answer(trial["id"], oracle(trial["id"], right), key, timing=faithful_timing(trial))
        assert reply.status_code == 201, reply.get_data(as_text=True)
        body = reply.get_json()
        assert body["next"] == w.trial(), "next differs from GET /trial"
        if k == 3:  # a replay (lost reply, retried) carries the state as it is now, the same next trial
            replay = w.answer(trial["id"], oracle(trial["id"], right), key, timing=faithful_timing(trial))
            assert replay.status_code == 200 and replay.get_json()["replayed"] is True
            assert replay.get_json()["next"] == body["next"]
        assert {key: body[key] for key in ("stage", "progress", "url")} == {key: body["next"][key] for key in ("stage", "progress", "url")}
        stages.append(body["stage"])
        state = body["next"]
    assert stages[-1] == "completed" and {"qualification", "task"} <= set(stages)


def test_feedback_only_in_the_hype_time_task(make_study, worker, oracle):
    for mode in ("hype-time", "hype-infinity"):
        study = make_study(mode)
        w = worker(study)
        w.start()
        for trial, body in pass_qualification(w, oracle):
            assert trial["feedback"] is False and body["feedback"] is None
        for trial, body in run_phase(w, lambda t: oracle(t["id"], ord(t["id"][0]) % 2 == 0), "task"):
            if mode == "hype-time":
                assert trial["feedback"] is True
                assert body["feedback"] == {"correct": ord(trial["id"][0]) % 2 == 0}
            else:
                assert trial["feedback"] is False and body["feedback"] is None
        assert w.state()["stage"] == "completed"


def test_timing_flags_are_stored(make_study, worker, oracle, db_read):
    study = make_study("hype-time")
    w = worker(study)
    w.start()
    pass_qualification(w, oracle)
    frame = FRAME_60HZ

    def variants(trial):
        good = faithful_timing(trial)
        yield good, None, False
        yield good | {"measured_ms": good["measured_ms"] + 2 * frame}, "exposure-off", False  # 2 frames long
        yield good, "focus-lost", True
        yield {k: v for k, v in good.items() if k != "measured_ms"}, "no-timing", False
        yield good | {"mask_measured_ms": good["mask_measured_ms"][:2]}, "mask-missing", False
        yield good | {"measured_ms": good["measured_ms"] - 17.5}, "exposure-off", False  # just over a frame short

    expected = {}
    for k in range(6):
        trial = w.trial()["trial"]
        timing, flag, focus = list(variants(trial))[k]
        response = w.answer(trial["id"], oracle(trial["id"]), timing=timing, focus_lost=focus)
        assert response.status_code == 201
        expected[trial["id"]] = (flag, timing.get("measured_ms"), trial["exposure_ms"])

    def read(s):
        return {
            r.image_token: r
            for r in s.execute(
                select(Trial.image_token, Judgment.flagged, Judgment.flag_reasons, Judgment.measured_ms,
                       Judgment.requested_ms, Judgment.refresh_interval_ms, Judgment.focus_lost, Judgment.mask_measured_ms)
                .join(Judgment, Judgment.trial_id == Trial.id)
                .where(Trial.image_token.in_(list(expected)))
            )
        }

    rows = db_read(read)
    for token, (flag, measured, exposure) in expected.items():
        row = rows[token]
        assert row.flagged is (flag is not None), (flag, row)
        assert row.flag_reasons == flag
        assert row.focus_lost is (flag == "focus-lost")
        assert row.requested_ms == exposure
        assert row.refresh_interval_ms == pytest.approx(frame)
        if measured is None:
            assert row.measured_ms is None
        else:
            assert row.measured_ms == pytest.approx(measured)


def test_untimed_trials_are_flagged_only_for_focus_loss(make_study, worker, oracle, db_read):
    study = make_study()
    w = worker(study)
    w.start()
    a = w.trial()["trial"]
    assert w.answer(a["id"], oracle(a["id"]), measured_ms=60_000.0, focus_lost=False).status_code == 201
    b = w.trial()["trial"]
    assert w.answer(b["id"], oracle(b["id"]), focus_lost=True).status_code == 201
    flags = db_read(
        lambda s: dict(s.execute(select(Trial.image_token, Judgment.flag_reasons).join(Judgment, Judgment.trial_id == Trial.id)).all())
    )
    assert flags == {a["id"]: None, b["id"]: "focus-lost"}


# -- study status, model balancing ----------------------------------------------------------------------


def test_sessions_alternate_between_models(make_study, worker, db_read):
    study = make_study()  # models alpha and beta
    counts: Counter = Counter()
    for k in range(7):
        w = worker(study, mturk(f"WORKERM{k}"))
        assert w.enter().status_code == 201
        model_id = db_read(lambda s: assignment_of(s, w.token).model_id)
        counts[model_id] += 1
        assert len(counts) == min(k + 1, 2)
        assert max(counts.values()) - min(counts.values()) <= 1, counts
    assert sorted(counts.values()) == [3, 4]


def test_a_draft_study_is_404(make_study, app):
    study = make_study(publish=False)
    client = app.test_client()
    assert client.get(f"/s/{study.slug}").status_code == 404
    assert_json_error(client.post(f"/api/s/{study.slug}/sessions", json={"consent": True, "params": {}}), 404, "unknown-study")
    assert_json_error(client.post("/api/s/no-such-study/sessions", json={"consent": True, "params": {}}), 404, "unknown-study")


def test_a_closed_study_takes_nobody_new_but_lets_a_running_session_finish(make_study, worker, oracle, session):
    study = make_study()
    running = worker(study, mturk("WORKERG7"))
    running.start()
    close_study(study)
    session.commit()
    newcomer = worker(study, mturk("WORKERH8"))
    assert_json_error(newcomer.enter(), 409, "study-closed")
    plain = worker(study)
    page = plain.client.get(f"/s/{study.slug}")
    assert page.status_code == 200
    assert b'id="closed"' in page.data and b'id="consent"' not in page.data
    assert_json_error(plain.enter(), 409, "study-closed")
    # the running worker comes back and finishes
    again = running.enter()
    assert again.status_code == 200 and again.get_json()["token"] == running.token
    assert running.client.get(f"/s/{study.slug}?{urlencode(running.params)}").status_code == 303
    pass_qualification(running, oracle)
    run_phase(running, lambda t: oracle(t["id"]), "task")
    assert running.state()["stage"] == "completed"


# -- image access -----------------------------------------------------------------------------------------


def test_image_access_rules(make_study, worker, oracle, db_read):
    study = make_study("hype-time")
    w = worker(study)
    w.enter()
    tokens = [t.image_token for t in db_read(lambda s: trials_of(s, w.token))]
    assert len(tokens) == 8 + 12
    # before the trials start, no trial image is served
    assert_json_error(w.client.get(f"{w.api}/img/{tokens[0]}"), 404)
    # the instructions' examples are served, and only those two kinds
    for kind in ("real", "fake"):
        example = w.client.get(f"{w.api}/examples/{kind}")
        assert example.status_code == 200 and example.mimetype == "image/png"
    assert_json_error(w.client.get(f"{w.api}/examples/other"), 404)
    w.instructions()
    w.check()
    state = w.trial()
    assert state["trial"]["id"] == tokens[0]
    assert state["preload"] == [f"{w.api}/img/{tokens[1]}"]
    current = w.client.get(state["trial"]["image_url"])
    assert current.status_code == 200 and current.mimetype == "image/png"
    assert current.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert w.client.get(state["preload"][0]).status_code == 200  # the next one may be preloaded
    for ahead in tokens[2:]:
        assert_json_error(w.client.get(f"{w.api}/img/{ahead}"), 404)
    assert_json_error(w.client.get(w.api + "/img/" + "B" * 22), 404)
    # after an answer the window moves on by one
    assert w.answer(tokens[0], oracle(tokens[0])).status_code == 201
    assert w.client.get(f"{w.api}/img/{tokens[2]}").status_code == 200
    assert_json_error(w.client.get(f"{w.api}/img/{tokens[3]}"), 404)
    # masks: only the study's, by index
    pass_qualification(w, oracle)
    trial = w.trial()["trial"]
    for url in trial["masks"]:
        mask = w.client.get(url)
        assert mask.status_code == 200 and mask.mimetype == "image/png"
    assert_json_error(w.client.get(f"{w.api}/masks/999"), 404)
    run_phase(w, lambda t: oracle(t["id"]), "task")
    assert w.state()["stage"] == "completed"
    # after completion nothing of the session's trials is served
    for token in tokens:
        assert_json_error(w.client.get(f"{w.api}/img/{token}"), 404)


@pytest.mark.parametrize("rule", ["threshold", "parameters"])
def test_adaptive_hype_time_exposures_follow_the_servers_posterior(make_study, worker, oracle, db_read, rule):
    """QUEST+ study: every exposure served is the one hype.adaptive chooses from that block's answers
    so far, under the study's own exposure rule (a study published under the joint rule keeps it); a
    retried answer is recorded once and moves nothing; the score is the posterior threshold."""
    from hype import adaptive as ad
    from hype.protocol import TimeSettings
    from hype.study_scoring import score_study

    time_settings = {"n_blocks": 2, "trials_per_block": 6, "adaptive": True, "adaptive_rule": rule}
    study = make_study("hype-time", settings={"qualification": {"enabled": False}, "time": time_settings})
    cfg = ad.QuestConfig.from_time_settings(TimeSettings(**time_settings))
    w = worker(study)
    assert w.start()["stage"] == "task"
    pattern = {0: [True, False, False, True, True, False], 1: [True, True, True, True, False, True]}
    history: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    shown: dict[int, list[float]] = {0: [], 1: []}
    while True:
        trial = w.trial()["trial"]
        if trial is None:
            break
        block = trial["block"]
        k, expected_ms = ad.next_exposure(cfg, history[block])
        assert trial["exposure_ms"] == expected_ms
        correct = pattern[block][len(history[block])]
        key = new_key()
        first = w.answer(trial["id"], oracle(trial["id"], correct), timing=faithful_timing(trial), key=key)
        assert first.status_code == 201 and first.get_json()["feedback"] == {"correct": correct}
        again = w.answer(trial["id"], oracle(trial["id"], correct), timing=faithful_timing(trial), key=key)
        assert again.status_code in (200, 201)
        history[block].append((k, int(correct)))
        shown[block].append(trial["exposure_ms"])
    assert w.state()["stage"] == "completed"
    assert len(set(shown[0])) > 1  # the exposures moved with the answers

    def read(s):
        a = assignment_of(s, w.token)
        rows = s.scalars(select(StaircaseRecord).where(StaircaseRecord.assignment_id == a.id)).all()
        return {r.block: r.state["history"] for r in rows}, {r.config["target"] for r in rows}

    stored, rules = db_read(read)
    assert {b: [tuple(h) for h in v] for b, v in stored.items()} == history  # each answer counted once
    assert rules == {rule}  # every block stored with the rule it ran, so it replays with it

    def score(s):
        return score_study(s, study, n_resamples=100, include_incomplete=True)

    result = db_read(score)
    assert result.settings.time_score == "posterior"
    all_ms = [cfg.levels_ms[k] for b in (0, 1) for k, _ in history[b]]
    all_correct = [bool(c) for b in (0, 1) for _, c in history[b]]
    expected = ad.threshold_from_trials(cfg, all_ms, all_correct)
    row = next(r for r in result.leaderboard.rows if r.n_evaluators)
    assert row.estimate == pytest.approx(expected)
