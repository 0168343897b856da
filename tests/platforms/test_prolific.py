"""Prolific: the real client against a local stand-in of the documented endpoints (no network)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hype.models import BonusPayment, PlatformStudy, PlatformSubmission
from hype.monitoring import exclude
from hype.platforms import service
from hype.platforms.prolific import TOKEN_ENV, ProlificClient, ProlificError

pytestmark = pytest.mark.db
LINK = "https://hype.example.org/s/{slug}"


def _create(session, study, client):
    return service.prolific_create(session, study, client, link=LINK.format(slug=study.slug))


def test_create_sends_a_draft_with_link_codes_places_time_and_reward(session, study, prolific_client, prolific_api):
    record, created = _create(session, study, prolific_client)
    assert created and record.external_id == "study0000" and record.places == 4  # 2 evaluators x 2 models
    (call,) = prolific_api.calls_to("POST", "/studies/")
    body = call.body
    assert body["external_study_url"] == (f"https://hype.example.org/s/{study.slug}"
                                          "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}")
    assert body["prolific_id_option"] == "url_parameters"
    assert [(c["code"], c["code_type"], c["actions"]) for c in body["completion_codes"]] == [
        (study.completion_code, "COMPLETED", [{"action": "MANUALLY_REVIEW"}]),
        (study.qualification_fail_code, "OTHER", [{"action": "MANUALLY_REVIEW"}]),
    ]
    # 8 qualification + 10 task images, untimed, 3 s each = 54 s -> 1 minute; $1.00 base = 100 cents
    assert (body["total_available_places"], body["estimated_completion_time"], body["reward"]) == (4, 1, 100)
    again, created_again = _create(session, study, prolific_client)
    assert not created_again and again.id == record.id
    assert len(prolific_api.calls_to("POST", "/studies/")) == 1, "a second create must not make a second Prolific study"

    service.prolific_publish(session, study, prolific_client)
    assert prolific_api.studies["study0000"]["status"] == "ACTIVE"
    assert session.scalar(select(PlatformStudy)).status == "ACTIVE"


def test_a_missing_token_is_explained(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ProlificError, match=TOKEN_ENV):
        ProlificClient.from_env()


def test_a_study_not_yet_published_in_hype_is_refused(make_study, session, prolific_client, prolific_api):
    draft = make_study(publish=False)
    with pytest.raises(service.PlatformError, match="publish study"):
        _create(session, draft, prolific_client)
    assert prolific_api.calls == []


def test_sync_pages_backs_off_and_decides_each_submission_once(session, study, crowd, prolific_client, prolific_api, sleeps):
    a = crowd("PA", "prolific")
    b = crowd("PB", "prolific")
    crowd("PC", "prolific", accuracy=0.0, qualify=False)  # fails the qualification: base pay only
    e = crowd("PE", "prolific")
    exclude(session, study, b, "answered with one key only")
    session.commit()
    _create(session, study, prolific_client)
    prolific_api.add_submission("PA", study_code=study.completion_code)
    prolific_api.add_submission("PB", study_code=study.completion_code)
    prolific_api.add_submission("PC", study_code=study.qualification_fail_code)
    prolific_api.add_submission("PD", study_code=study.completion_code)  # no hype session: a shared code
    prolific_api.add_submission("PE", study_code="FORGED12345")  # a code hype never issued
    prolific_api.add_submission("PF", study_code=None)  # NOCODE, never started here
    prolific_api.add_submission("PG", status="ACTIVE")  # still working
    prolific_api.fail_next("GET", "/api/v1/submissions/", 429, headers={"Retry-After": "3"})
    prolific_api.fail_next("POST", "/api/v1/submissions/sub0000/transition/", 503)

    report = service.prolific_sync(session, study, prolific_client)

    pages = prolific_api.calls_to("GET", "/submissions/")
    assert [c.query.get("page", ["1"])[0] for c in pages] == ["1", "1", "2", "3", "4"]  # 429 retried, then 7 rows / 2 per page
    assert sleeps == [3.0, 0.5], "Retry-After honoured for 429; exponential back-off for the 503"
    status = {s["participant_id"]: s["status"] for s in prolific_api.submissions}
    assert status == {"PA": "APPROVED", "PB": "AWAITING REVIEW", "PC": "APPROVED", "PD": "AWAITING REVIEW",
                      "PE": "AWAITING REVIEW", "PF": "AWAITING REVIEW", "PG": "ACTIVE"}
    returned = {s["participant_id"]: s["return_requested"] for s in prolific_api.submissions if "return_requested" in s}
    assert set(returned) == {"PB", "PF"}
    assert "answered with one key only" in returned["PB"][0]
    decisions = {r.worker_id: (r.decision, r.note) for r in session.scalars(select(PlatformSubmission))}
    assert decisions["PD"][0] == "flagged" and "no hype session" in decisions["PD"][1]
    assert decisions["PE"][0] == "flagged" and "not issued by hype" in decisions["PE"][1]
    assert decisions["PG"][0] is None
    # 2 valid of 4 wanted (PB excluded, PC failed the qualification), PG on the way: one more place
    assert report.counts == {"approved": 2, "asked to return": 2, "flagged": 2, "not awaiting review": 1, "places added": 1}

    before = len(prolific_api.calls)
    again = service.prolific_sync(session, study, prolific_client)
    posts = [c for c in prolific_api.calls[before:] if c.method == "POST"]
    # Flagged ones stay open for the researcher and are checked again; nothing is approved or returned twice
    assert posts == [] and again.counts.get("approved", 0) == 0 and again.counts.get("asked to return", 0) == 0
    assert {a, e} <= {r.assignment_id for r in session.scalars(select(PlatformSubmission))}


def test_pay_pays_each_bonus_once_across_re_runs(session, study, crowd, prolific_client, prolific_api, sleeps):
    crowd("PA", "prolific", accuracy=1.0)  # 10 of 10 task answers right: $0.20
    crowd("PB", "prolific", accuracy=1.0)
    crowd("PC", "prolific", accuracy=0.0, qualify=False)  # no task answers: no bonus
    _create(session, study, prolific_client)
    for pid, code in (("PA", study.completion_code), ("PB", study.completion_code), ("PC", study.qualification_fail_code)):
        prolific_api.add_submission(pid, study_code=code)
    service.prolific_sync(session, study, prolific_client)
    prolific_api.fail_next("POST", "/api/v1/submissions/bonus-payments/", 429, headers={"Retry-After": "1"})

    report = service.prolific_pay(session, study, prolific_client)
    (setup, *_retried) = prolific_api.calls_to("POST", "/bonus-payments/")
    assert setup.body == {"study_id": "study0000", "csv_bonuses": "PA,0.20\nPB,0.20\n"}
    assert sleeps == [1.0]
    assert sorted(prolific_api.paid) == [("PA", "0.20"), ("PB", "0.20")]
    assert report.counts == {"paid": 2}

    again = service.prolific_pay(session, study, prolific_client)
    assert sorted(prolific_api.paid) == [("PA", "0.20"), ("PB", "0.20")], "a re-run must not pay again"
    assert len(prolific_api.calls_to("POST", "/pay/")) == 1 and again.counts == {"already paid": 2}
    assert {(p.worker_id, p.amount_cents, p.status) for p in session.scalars(select(BonusPayment))} == {("PA", 20, "paid"), ("PB", 20, "paid")}


def test_a_pay_call_without_an_answer_is_never_repeated_blindly(session, study, crowd, prolific_client, prolific_api):
    crowd("PA", "prolific")
    _create(session, study, prolific_client)
    prolific_api.add_submission("PA", study_code=study.completion_code)
    service.prolific_sync(session, study, prolific_client)
    prolific_api.pay_then_fail = 1  # Prolific pays, the answer is lost

    with pytest.raises(ProlificError):
        service.prolific_pay(session, study, prolific_client)
    assert len(prolific_api.calls_to("POST", "/pay/")) == 1, "a 5xx on pay is not retried: it may have paid"
    report = service.prolific_pay(session, study, prolific_client)
    assert report.counts == {"unconfirmed": 1} and "check on Prolific" in report.lines[0]
    assert len(prolific_api.calls_to("POST", "/pay/")) == 1 and prolific_api.paid == [("PA", "0.20")]

    assert service.resolve_unconfirmed(session, study, "prolific", paid=True) == 1
    assert service.prolific_pay(session, study, prolific_client).counts == {"already paid": 1}
    assert prolific_api.paid == [("PA", "0.20")]


def test_excluded_workers_reopen_places_on_prolific_once(session, study, crowd, prolific_client, prolific_api):
    ids = [crowd(f"P{k}", "prolific") for k in range(4)]  # 2 models x 2 evaluators: the study is full
    exclude(session, study, ids[3], "spoke to us")
    session.commit()
    _create(session, study, prolific_client)
    for k in range(4):
        prolific_api.add_submission(f"P{k}", study_code=study.completion_code)
    report = service.prolific_sync(session, study, prolific_client)
    (patch,) = prolific_api.calls_to("PATCH", "/studies/study0000/")
    assert patch.body == {"total_available_places": 5} and report.counts["places added"] == 1
    service.prolific_sync(session, study, prolific_client)
    assert len(prolific_api.calls_to("PATCH", "/studies/")) == 1, "the reopened place is on offer: nothing more to add"
    prolific_api.add_submission("NEWCOMER", status="ACTIVE")  # took the new place, not in hype yet
    service.prolific_sync(session, study, prolific_client)
    assert len(prolific_api.calls_to("PATCH", "/studies/")) == 1
