"""Whole worker sessions in headless Chromium: consent, instructions, browser check, qualification,
task and completion, for the plain, MTurk and Prolific entries, HYPE-∞ and (shortened) HYPE-time.

The qualification is answered correctly by looking each image's label up in the database: the page
shows the trial named by its last GET /api/w/<token>/trial, whose id is the opaque token that is also
the last path segment of the image URL the page fetched (checked for every trial). After each session
the database must hold every planned judgment exactly once, with the answers the worker gave.

The plain-link HYPE-time session is test_presentation_timing.py's (a whole session, 50 timed trials),
so it is not repeated here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from browser_harness import (
    MTURK_SANDBOX,
    Answered,
    always_correct,
    always_wrong,
    check_judgments,
    check_timed_trials,
    entry_query,
)

pytestmark = pytest.mark.browser

INFINITY = {"qualification": {"n_real": 4, "n_fake": 4}, "infinity": {"n_real": 10, "n_fake": 10}}
# Shortened HYPE-time: 2 blocks x 4, short exposures (from 200 ms) and a quick 3-2-1 (3 x 50 ms).
TIME = {
    "qualification": {"n_real": 4, "n_fake": 4},
    "time": {"n_blocks": 2, "trials_per_block": 4, "start_ms": 200, "countdown_ms": 50},
}
SESSIONS = [("hype-infinity", "plain"), ("hype-infinity", "mturk"), ("hype-infinity", "prolific"),
            ("hype-time", "mturk"), ("hype-time", "prolific")]


def _counts(settings: dict[str, Any]) -> tuple[int, int]:
    q = settings["qualification"]
    n_qual = q["n_real"] + q["n_fake"] if q["enabled"] else 0
    if settings["mode"] == "hype-time":
        return n_qual, settings["time"]["n_blocks"] * settings["time"]["trials_per_block"]
    return n_qual, settings["infinity"]["n_real"] + settings["infinity"]["n_fake"]


@pytest.mark.parametrize(("mode", "platform"), SESSIONS, ids=[f"{m}-{p}" for m, p in SESSIONS])
def test_whole_session_by_keyboard(make_study, new_worker, guard, db_records, mode: str, platform: str) -> None:
    kwargs: dict[str, Any] = {}
    custom_prolific = platform == "prolific" and mode == "hype-time"  # the other Prolific session: Prolific's default URL
    if custom_prolific:
        kwargs["prolific_completion_url"] = "https://app.prolific.com/submissions/complete?cc={code}&src=hype"
    study = make_study(mode, settings=TIME if mode == "hype-time" else INFINITY, **kwargs)
    settings = study.settings
    n_qual, n_task = _counts(settings)
    query = entry_query(platform)
    timed = mode == "hype-time"

    w = new_worker()
    w.open(study.slug, query)
    w.consent(by="key")
    w.instructions(by="key")
    answered = w.run_phase("qualification", n_qual, always_correct)
    w.wait_phase("task")
    assert "passed the qualification" in w.page.inner_text("#intro")
    answered += w.run_phase("task", n_task, always_correct, expect_feedback=timed)
    w.wait_done()
    token = w.token

    a, planned, judgments = check_judgments(
        db_records, token, answered, stage="completed", phases=("qualification", "task")
    )
    assert a.qualification_passed is True
    assert (a.qualification_real_correct, a.qualification_fake_correct) == (4, 4)
    assert a.participant.platform == platform
    if timed:
        check_timed_trials(settings, planned, judgments, answered)
        t = settings["time"]
        for block in range(t["n_blocks"]):  # every answer correct: -10 ms per trial from the start
            seq = [tr.requested_ms for tr in planned if tr.phase == "task" and tr.block == block]
            assert seq == [t["start_ms"] - t["step_down_ms"] * k for k in range(len(seq))]
    else:
        assert all(j.requested_ms is None and j.measured_ms > 0 and j.reaction_ms > 0 for j in judgments)

    code = a.completion_code  # the session's own code; Prolific gets the study's registered one
    if platform == "plain":
        assert w.page.inner_text("#completion-code").strip() == code
        assert not guard.requests
    elif platform == "prolific":
        assert w.page.inner_text("#completion-code").strip() == code
        w.page.wait_for_url("https://app.prolific.com/**", timeout=5_000)  # automatic, after 1.5 s
        (sent,) = guard.answered
        expected = f"https://app.prolific.com/submissions/complete?cc={study.completion_code}" + ("&src=hype" if custom_prolific else "")
        assert (sent.method, sent.url) == ("GET", expected)
    else:
        form = w.page.locator("#mturk-submit")
        assert form.get_attribute("action") == f"{MTURK_SANDBOX}/mturk/externalSubmit"
        assert form.get_attribute("method") == "post"
        assert not guard.requests  # nothing is sent until the worker submits
        w.page.focus("#mturk-submit button")
        w.page.keyboard.press("Enter")
        w.page.wait_for_url(f"{MTURK_SANDBOX}/**", timeout=5_000)
        (sent,) = guard.answered
        assert (sent.method, sent.url) == ("POST", f"{MTURK_SANDBOX}/mturk/externalSubmit")
        assert sent.form == {"assignmentId": query["assignmentId"], "completionCode": code}
    w.assert_clean()

    # Between-subjects: the same worker (for a plain link: the same browser) cannot start again.
    w.page.goto(f"{w.base_url}/s/{study.slug}" + (f"?{urlencode(query)}" if query else ""))
    assert "already taken part" in w.page.inner_text("#message").lower()
    assert db_records.assignment(token).stage == "completed"
    assert db_records.count_assignments(study.id) == 1


def test_mturk_preview_cannot_start(make_study, new_worker, db_records) -> None:
    study = make_study("hype-infinity", settings=INFINITY)
    w = new_worker()
    w.open(study.slug, entry_query("mturk", assignmentId="ASSIGNMENT_ID_NOT_AVAILABLE"))
    assert w.page.is_visible("#preview")
    assert w.page.query_selector("#consent") is None
    button = w.page.locator("main button")
    assert button.count() == 1 and button.is_disabled()
    button.click(force=True)  # a disabled button does nothing, whatever the worker tries
    w.page.keyboard.press("Enter")
    w.page.keyboard.press(" ")
    w.page.wait_for_timeout(300)
    assert urlsplit(w.page.url).path == f"/s/{study.slug}"
    assert db_records.count_assignments(study.id) == 0
    w.assert_clean()


def test_session_by_clicking(make_study, new_worker, db_records) -> None:
    """The buttons work as well as the keys (task answers alternate fake / real: both buttons used)."""
    study = make_study("hype-infinity", settings=INFINITY)
    w = new_worker()
    w.open(study.slug)
    w.consent(by="click")
    w.instructions(by="click")
    answered = w.run_phase("qualification", 8, always_correct, by="click")
    answered += w.run_phase("task", 20, lambda k, _trial, _fake: k % 2 == 0, by="click")
    w.wait_done()
    a, _, _ = check_judgments(db_records, w.token, answered, stage="completed", phases=("qualification", "task"))
    assert [x.judged_fake for x in answered[8:]] == [k % 2 == 0 for k in range(20)]
    assert w.page.inner_text("#completion-code").strip() == a.completion_code
    w.assert_clean()


def test_failed_qualification_ends_with_the_fail_code(make_study, new_worker, guard, db_records) -> None:
    study = make_study("hype-infinity", settings=INFINITY)
    assert study.qualification_fail_code != study.completion_code
    w = new_worker()
    w.open(study.slug, entry_query("prolific"))
    w.consent()
    w.instructions()
    answered = w.run_phase("qualification", 8, always_wrong)
    w.wait_done()
    assert "did not reach the score" in w.page.inner_text("main")
    a, _, _ = check_judgments(db_records, w.token, answered, stage="failed",
                              phases=("qualification",))
    assert w.page.inner_text("#completion-code").strip() == a.completion_code
    assert (a.qualification_passed, a.qualification_real_correct, a.qualification_fake_correct) == (False, 0, 0)
    assert len(db_records.trials(a, "task")) == 20  # planned, never shown
    w.page.wait_for_url("https://app.prolific.com/**", timeout=5_000)
    (sent,) = guard.answered
    assert parse_qs(urlsplit(sent.url).query) == {"cc": [study.qualification_fail_code]}
    w.assert_clean()


def test_reload_mid_task_resumes_at_the_same_trial(make_study, new_worker, db_records) -> None:
    """HYPE-time without qualification. Reload while an answer is expected: the same trial comes back
    with the same exposure and the progress count unchanged. Reload during the feedback, once the
    answer is stored: the next trial follows. In the end every trial is recorded exactly once."""
    settings = {"qualification": {"enabled": False},
                "time": {"n_blocks": 1, "trials_per_block": 6, "start_ms": 200, "countdown_ms": 50}}
    study = make_study("hype-time", settings=settings)
    w = new_worker()
    w.open(study.slug)
    w.consent()
    w.instructions()  # no qualification: straight from the browser check to the task
    answered = w.run_phase("task", 2, always_correct, expect_feedback=True)

    # 1. Reload while trial 3 waits for its answer.
    shown = w.wait_answer_expected()
    w.page.reload()
    w.wait_phase("task")
    w.page.wait_for_function("() => document.getElementById('progress-text').textContent === '2 / 6'")
    w.start_phase("task")
    again = w.wait_answer_expected()
    assert (again["id"], again["exposure_ms"]) == (shown["id"], shown["exposure_ms"])
    answered += w.run_phase("task", 4, always_correct, expect_feedback=True, start=False, first_index=2)

    # 2. Reload during the feedback of trial 5, once its answer is stored.
    trial = w.wait_answer_expected()
    is_fake = w.truth(trial["id"])
    with w.page.expect_response(lambda r: urlsplit(r.url).path.endswith("/answers") and r.request.method == "POST") as stored:
        w.answer(is_fake)
    assert stored.value.status == 201
    answered.append(Answered(trial, is_fake, is_fake))
    w.page.reload()
    w.wait_phase("task")
    w.page.wait_for_function("() => document.getElementById('progress-text').textContent === '5 / 6'")
    w.start_phase("task")
    answered += w.run_phase("task", 6, always_correct, expect_feedback=True, start=False, first_index=5)
    w.wait_done()

    _, planned, judgments = check_judgments(db_records, w.token, answered, stage="completed",
                                            phases=("task",))
    # The reloaded trial 3 was delivered twice: flagged shown-again, left out of the score. Trial 6 too,
    # if its preload (started during 5's feedback) reached the server before the reload.
    check_timed_trials(study.settings, planned, judgments, answered,
                       reshown=frozenset({planned[2].image_token}), maybe_reshown=frozenset({planned[5].image_token}))
    # Every answer correct and no reload moved the staircase: 200, 190, ... as without reloads.
    assert [t.requested_ms for t in planned] == [200.0 - 10 * k for k in range(6)]
    w.assert_clean()


# -- regressions for bugs these tests found (fixed) -------------------------------------------------------


def test_instructions_continue_reports_a_failed_request(make_study, new_worker) -> None:
    study = make_study("hype-infinity", settings=INFINITY)
    w = new_worker()
    w.open(study.slug)
    w.consent()
    w.page.route("**/api/w/*/instructions", lambda route: route.fulfill(
        status=409, content_type="application/json", body='{"code": "wrong-stage", "message": "Cannot continue right now."}'))
    w.page.click("#continue")
    # What a worker needs: the reason on screen and a button that works again.
    w.page.wait_for_function("() => !document.getElementById('continue').disabled", timeout=3_000)
    assert "Cannot continue right now." in w.page.inner_text("main")
    assert not w.page_errors


def test_consent_page_says_about_1_minute(make_study, new_worker) -> None:
    study = make_study("hype-infinity", settings={"qualification": {"n_real": 2, "n_fake": 2}, "infinity": {"n_real": 3, "n_fake": 3}})
    w = new_worker()
    w.open(study.slug)
    text = w.page.inner_text("main")
    assert "about 1 minute." in text, text


def test_adaptive_hype_time_session_follows_the_servers_posterior(make_study, new_worker, db_records) -> None:
    """A short QUEST+ session in the browser: every exposure the page was given (and stored with the
    judgment) is the one hype.adaptive chooses from that block's answers so far."""
    from hype import adaptive as ad
    from hype.protocol import TimeSettings

    time_settings = {"n_blocks": 2, "trials_per_block": 4, "countdown_ms": 50, "adaptive": True}
    study = make_study("hype-time", settings={"qualification": {"n_real": 4, "n_fake": 4}, "time": time_settings})
    w = new_worker()
    w.open(study.slug, {})
    w.consent(by="key")
    w.instructions(by="key")
    w.run_phase("qualification", 8, always_correct)
    w.wait_phase("task")

    def right_then_wrong(k: int, trial: dict[str, Any], is_fake: bool) -> bool:
        return is_fake if k % 3 != 2 else not is_fake  # every third answer wrong

    answered = w.run_phase("task", 8, right_then_wrong, expect_feedback=True)
    w.wait_done()
    cfg = ad.QuestConfig.from_time_settings(TimeSettings(**time_settings))
    history: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    for item in answered:
        block = item.trial["block"]
        k, expected = ad.next_exposure(cfg, history[block])
        assert item.trial["exposure_ms"] == expected
        history[block].append((k, int(item.is_fake == item.judged_fake)))
    assert db_records.assignment(w.token).stage == "completed"
    assert len({item.trial["exposure_ms"] for item in answered}) > 2  # the exposures moved with the answers
