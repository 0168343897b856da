"""`hype prolific ...` and `hype mturk ...` end to end: the real commands, the Prolific stand-in over
HTTP, and a real boto3 client under the Stubber. What they print is what the README shows."""

from __future__ import annotations

import pytest
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from hype.cli import main
from hype.models import Assignment
from hype.platforms import mturk

from prolific_standin import TOKEN

pytestmark = pytest.mark.db


def _run(config, *args, env=None):
    result = CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args],
                                env={"HYPE_PUBLIC_URL": "https://hype.example.org", **(env or {})}, catch_exceptions=False)
    return result


def test_prolific_commands_from_published_study_to_paid_bonuses(config, session, study, crowd, prolific_api):
    crowd("PA", "prolific")
    env = {"HYPE_PROLIFIC_TOKEN": TOKEN, "HYPE_PROLIFIC_API_URL": prolific_api.url}
    out = _run(config, "prolific", "create", str(study.id), env=env)
    assert out.exit_code == 0, out.output
    assert f"study {study.id} created Prolific draft study study0000: 4 places" in out.output
    assert "about 1 minute; base $1.00 ($60.00/hour)" in out.output
    assert _run(config, "prolific", "publish", str(study.id), env=env).output.startswith("published Prolific study study0000 (ACTIVE)")
    prolific_api.add_submission("PA", study_code=study.completion_code)
    out = _run(config, "prolific", "sync", str(study.id), env=env)
    assert "PA: approved (finished)" in out.output and out.output.rstrip().endswith("1 approved")
    out = _run(config, "prolific", "pay", str(study.id), env=env)
    assert "PA: $0.20" in out.output and out.output.rstrip().endswith("1 paid")
    assert _run(config, "prolific", "pay", str(study.id), env=env).output.rstrip().endswith("1 already paid")
    assert prolific_api.paid == [("PA", "0.20")]
    missing = _run(config, "prolific", "sync", str(study.id), env={"HYPE_PROLIFIC_TOKEN": ""})
    assert missing.exit_code == 1 and "set HYPE_PROLIFIC_TOKEN" in missing.output and "Traceback" not in missing.output


def test_mturk_commands_use_the_sandbox_unless_told(config, session, study, crowd, monkeypatch):
    aid = crowd("W1", "mturk")
    code = session.get(Assignment, aid).completion_code
    client = mturk.make_client(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    made = []
    monkeypatch.setattr(mturk, "make_client", lambda production=False: made.append(production) or client)
    answer = ('<QuestionFormAnswers xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/'
              f'QuestionFormAnswers.xsd"><Answer><QuestionIdentifier>completionCode</QuestionIdentifier><FreeText>{code}</FreeText>'
              '</Answer></QuestionFormAnswers>')
    with Stubber(client) as stub:
        stub.add_response("create_hit", {"HIT": {"HITId": "HITSANDBOX1"}}, None)
        stub.add_response("list_assignments_for_hit", {"Assignments": [{"AssignmentId": "ASGW1", "WorkerId": "W1", "HITId": "HITSANDBOX1",
                                                                        "AssignmentStatus": "Submitted", "Answer": answer}]}, None)
        stub.add_response("approve_assignment", {}, {"AssignmentId": "ASGW1", "RequesterFeedback": ANY})
        stub.add_response("get_hit", {"HIT": {"HITId": "HITSANDBOX1", "MaxAssignments": 4, "NumberOfAssignmentsAvailable": 3}}, None)
        stub.add_response("send_bonus", {}, {"WorkerId": "W1", "AssignmentId": "ASGW1", "BonusAmount": "0.20", "Reason": ANY,
                                             "UniqueRequestToken": ANY})
        out = _run(config, "mturk", "create", str(study.id))
        assert out.exit_code == 0, out.output
        assert f"study {study.id} created MTurk HIT HITSANDBOX1 (sandbox): 4 assignments" in out.output
        assert "MTurk sandbox (add --production for the real marketplace)" in out.output
        assert "W1 (ASGW1): approved (finished)" in _run(config, "mturk", "sync", str(study.id)).output
        assert "W1 (ASGW1): $0.20" in _run(config, "mturk", "pay", str(study.id)).output
        stub.assert_no_pending_responses()
    assert made == [False, False, False]
    refused = _run(config, "mturk", "sync", str(study.id), "--production")
    assert refused.exit_code == 1 and "no MTurk production HIT" in refused.output
