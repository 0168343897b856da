"""MTurk: every call hype makes goes through a real boto3 `mturk` client under botocore's Stubber,
which checks operation names, parameter names and types against MTurk's published API model."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.stub import ANY, Stubber
from sqlalchemy import select

from hype.models import Assignment, BonusPayment, PlatformSubmission
from hype.monitoring import exclude
from hype.platforms import mturk, service

pytestmark = pytest.mark.db
LINK = "https://hype.example.org/s/{slug}"
ANSWER = ('<?xml version="1.0" encoding="ASCII"?><QuestionFormAnswers xmlns="http://mechanicalturk.amazonaws.com/'
          'AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"><Answer><QuestionIdentifier>assignmentId'
          '</QuestionIdentifier><FreeText>{asg}</FreeText></Answer><Answer><QuestionIdentifier>completionCode'
          '</QuestionIdentifier><FreeText>{code}</FreeText></Answer></QuestionFormAnswers>')


@pytest.fixture
def client():
    c = mturk.make_client(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    with Stubber(c) as stub:
        c.stub = stub
        yield c
        stub.assert_no_pending_responses()


def test_the_sandbox_is_the_default_and_production_is_explicit():
    kw = dict(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    assert mturk.make_client(**kw).meta.endpoint_url == mturk.SANDBOX_ENDPOINT
    assert mturk.make_client(production=True, **kw).meta.endpoint_url == mturk.PRODUCTION_ENDPOINT


def _hit(client, session, study):
    client.stub.add_response("create_hit", {"HIT": {"HITId": "HIT0001", "HITStatus": "Assignable"}}, {
        "MaxAssignments": 4,
        "AutoApprovalDelayInSeconds": 259200,
        "LifetimeInSeconds": 604800,
        "AssignmentDurationInSeconds": 3600,
        "Reward": "1.00",
        "Title": "Real or fake? Judge photographs",
        "Keywords": ANY,
        "Description": ANY,
        "Question": mturk.external_question(LINK.format(slug=study.slug)),
        "QualificationRequirements": [
            {"QualificationTypeId": "000000000000000000L0", "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [98], "ActionsGuarded": "Accept"},
            {"QualificationTypeId": "00000000000000000040", "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [1000], "ActionsGuarded": "Accept"},
            {"QualificationTypeId": "00000000000000000071", "Comparator": "In", "LocaleValues": [{"Country": "US"}], "ActionsGuarded": "Accept"},
        ],
        "RequesterAnnotation": f"hype study {study.id} {study.slug}",
        "UniqueRequestToken": ANY,
    })
    return service.mturk_create(session, study, client, link=LINK.format(slug=study.slug))


def test_create_hit_with_external_question_and_requirements(client, session, study):
    record, created = _hit(client, session, study)
    assert created and (record.external_id, record.sandbox, record.places) == ("HIT0001", True, 4)
    again, created_again = service.mturk_create(session, study, client, link=LINK.format(slug=study.slug))
    assert not created_again and again.id == record.id  # no second create_hit (the Stubber would refuse it)
    with pytest.raises(service.PlatformError, match="https"):
        service.mturk_create(session, study, client, link="http://plain.example.org/s/x", production=True)


def _hit_state(client, max_assignments=4, available=4, pending=0):
    client.stub.add_response("get_hit", {"HIT": {"HITId": "HIT0001", "MaxAssignments": max_assignments,
                                                 "NumberOfAssignmentsAvailable": available, "NumberOfAssignmentsPending": pending}},
                             {"HITId": "HIT0001"})


def _assignment(worker: str, code: str, status: str = "Submitted") -> dict:
    return {"AssignmentId": f"ASG{worker}", "WorkerId": worker, "HITId": "HIT0001", "AssignmentStatus": status,
            "Answer": ANSWER.format(asg=f"ASG{worker}", code=code)}


def _code(session, assignment_id: int) -> str:
    return session.get(Assignment, assignment_id).completion_code


def test_sync_checks_each_workers_own_code_and_decides_once(client, session, study, crowd):
    w1 = crowd("W1", "mturk")
    crowd("W2", "mturk")
    w4 = crowd("W4", "mturk")
    exclude(session, study, w4, "answered in under 200 ms")
    session.commit()
    _hit(client, session, study)
    page1 = [_assignment("W1", _code(session, w1)), _assignment("W2", _code(session, w1))]  # W2 pastes W1's code
    page2 = [_assignment("W3", "AAAABBBBCCCCDDDD"), _assignment("W4", _code(session, w4)), _assignment("W5", "X", "Approved")]
    statuses = ["Submitted", "Approved", "Rejected"]
    client.stub.add_response("list_assignments_for_hit", {"Assignments": page1, "NextToken": "page2", "NumResults": 2},
                             {"HITId": "HIT0001", "MaxResults": 100, "AssignmentStatuses": statuses})
    client.stub.add_response("list_assignments_for_hit", {"Assignments": page2, "NumResults": 3},
                             {"HITId": "HIT0001", "MaxResults": 100, "AssignmentStatuses": statuses, "NextToken": "page2"})
    client.stub.add_response("approve_assignment", {}, {"AssignmentId": "ASGW1", "RequesterFeedback": "Thank you for your work."})
    _hit_state(client)

    report = service.mturk_sync(session, study, client)

    decisions = {r.worker_id: (r.decision, r.note) for r in session.scalars(select(PlatformSubmission))}
    assert decisions["W1"] == ("approved", "finished")
    assert decisions["W2"][0] == "flagged" and "another worker" in decisions["W2"][1]
    assert decisions["W3"][0] == "flagged" and "not issued by any hype session" in decisions["W3"][1]
    assert decisions["W4"][0] == "flagged" and "under 200 ms" in decisions["W4"][1]  # no rejection without the setting
    assert decisions["W5"][0] is None
    assert report.counts == {"approved": 1, "flagged": 3, "already approved": 1}

    # with rejections switched on, the excluded worker is rejected with the reason; W1 is not approved again
    client.stub.add_response("list_assignments_for_hit", {"Assignments": [_assignment("W1", _code(session, w1), "Approved"),
                                                                          _assignment("W4", _code(session, w4))], "NumResults": 2},
                             {"HITId": "HIT0001", "MaxResults": 100, "AssignmentStatuses": statuses})
    client.stub.add_response("reject_assignment", {}, {"AssignmentId": "ASGW4", "RequesterFeedback": "Not accepted: excluded: answered in under 200 ms"})
    _hit_state(client)
    service.mturk_sync(session, study, client, reject_excluded=True)
    assert session.scalar(select(PlatformSubmission).where(PlatformSubmission.worker_id == "W4")).decision == "rejected"


def _approved_worker(client, session, study, crowd, worker="W1"):
    aid = crowd(worker, "mturk")
    _hit(client, session, study)
    client.stub.add_response("list_assignments_for_hit", {"Assignments": [_assignment(worker, _code(session, aid))], "NumResults": 1}, None)
    client.stub.add_response("approve_assignment", {}, None)
    _hit_state(client)
    service.mturk_sync(session, study, client)
    return aid


def test_bonus_goes_to_the_mturk_assignment_with_one_token_and_never_twice(client, session, study, crowd):
    _approved_worker(client, session, study, crowd)
    client.stub.add_client_error("send_bonus", service_error_code="ServiceFault", service_message="Internal error", http_status_code=500)
    first = service.mturk_pay(session, study, client)
    assert first.counts == {"failed": 1}
    (payment,) = session.scalars(select(BonusPayment))
    assert payment.status == "sending" and payment.request_token.startswith("hype-")
    # the retry carries the very same token, so MTurk itself refuses a second payment
    client.stub.add_response("send_bonus", {}, {"WorkerId": "W1", "BonusAmount": "0.20", "AssignmentId": "ASGW1",
                                                "Reason": service.BONUS_REASON, "UniqueRequestToken": payment.request_token})
    assert service.mturk_pay(session, study, client).counts == {"paid": 1}
    assert service.mturk_pay(session, study, client).counts == {"already paid": 1}  # no call: the Stubber would refuse one


def test_a_bonus_mturk_already_took_is_recorded_as_paid(client, session, study, crowd):
    _approved_worker(client, session, study, crowd)
    client.stub.add_client_error("send_bonus", service_error_code="RequestError", http_status_code=400,
                                 service_message='The idempotency token "hype-x" has already been processed. (1626172412406)')
    report = service.mturk_pay(session, study, client)
    assert report.counts == {"paid": 1} and "earlier run" in report.lines[0]
    assert session.scalar(select(BonusPayment)).status == "paid"


def test_an_old_unconfirmed_bonus_is_left_for_a_person(client, session, study, crowd):
    _approved_worker(client, session, study, crowd)
    client.stub.add_client_error("send_bonus", service_error_code="ServiceFault", http_status_code=500)
    service.mturk_pay(session, study, client)
    later = lambda: dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=30)  # MTurk forgot the token by now
    report = service.mturk_pay(session, study, client, now=later)
    assert report.counts == {"unconfirmed": 1}  # and no send_bonus call


def test_submitted_code_reads_the_done_pages_field():
    assert mturk.submitted_code(ANSWER.format(asg="A1", code="CODE123")) == "CODE123"
    assert mturk.submitted_code(None) is None and mturk.submitted_code("<not xml") is None


def test_excluded_workers_reopen_places_on_the_hit_once(client, session, study, crowd):
    ids = [crowd(f"W{k}", "mturk") for k in range(4)]  # 2 models x 2 evaluators: the study is full
    exclude(session, study, ids[3], "answered in under 200 ms")
    session.commit()
    _hit(client, session, study)
    client.stub.add_response("list_assignments_for_hit", {"Assignments": [_assignment(f"W{k}", _code(session, ids[k])) for k in range(4)]}, None)
    for _ in range(3):
        client.stub.add_response("approve_assignment", {}, None)
    _hit_state(client, available=0)
    client.stub.add_response("create_additional_assignments_for_hit", {},
                             {"HITId": "HIT0001", "NumberOfAdditionalAssignments": 1, "UniqueRequestToken": ANY})
    report = service.mturk_sync(session, study, client)
    assert report.counts["places added"] == 1 and "5 in all" in report.lines[-1]

    # the next sync sees the new place on offer and adds nothing (the Stubber refuses any further call)
    client.stub.add_response("list_assignments_for_hit", {"Assignments": [_assignment("W3", _code(session, ids[3]))]}, None)
    _hit_state(client, max_assignments=5, available=1)
    assert "places added" not in service.mturk_sync(session, study, client).counts
    # a worker who accepted the HIT but has not reached hype yet is on their way: no extra place for them
    client.stub.add_response("list_assignments_for_hit", {"Assignments": []}, None)
    _hit_state(client, max_assignments=5, available=0, pending=1)
    assert "places added" not in service.mturk_sync(session, study, client).counts
