"""MTurk through boto3's `mturk` client: the HIT, its assignments, approvals and bonuses.

The sandbox is the default; production needs `production=True` (the CLI's --production), so a
test run can never spend money by accident. Every call that creates something carries a
UniqueRequestToken derived from hype's own ids, so a retry after a lost answer cannot create a
second HIT, a second batch of places or a second bonus (MTurk refuses a token it has seen).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Iterator
from xml.sax.saxutils import escape

from hype.platforms import PlatformError

SANDBOX_ENDPOINT = "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
PRODUCTION_ENDPOINT = "https://mturk-requester.us-east-1.amazonaws.com"
REGION = "us-east-1"
EXTERNAL_QUESTION_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
# Amazon's system qualification types (MTurk docs, "QualificationRequirement").
APPROVAL_RATE_QUALIFICATION = "000000000000000000L0"
NUMBER_APPROVED_QUALIFICATION = "00000000000000000040"
LOCALE_QUALIFICATION = "00000000000000000071"
COMPLETION_FIELD = "completionCode"  # the done page's form field, read back from the Answer XML


class MTurkError(PlatformError):
    pass


def make_client(*, production: bool = False, **kwargs: Any):
    """A boto3 `mturk` client on the sandbox unless production is asked for explicitly.
    Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "mturk",
        region_name=REGION,
        endpoint_url=PRODUCTION_ENDPOINT if production else SANDBOX_ENDPOINT,
        config=Config(retries={"mode": "standard", "max_attempts": 6}),
        **kwargs,
    )


def external_question(url: str, frame_height: int = 0) -> str:
    return (
        f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_NS}">\n'
        f"  <ExternalURL>{escape(url)}</ExternalURL>\n"
        f"  <FrameHeight>{int(frame_height)}</FrameHeight>\n"
        "</ExternalQuestion>"
    )


@dataclass(frozen=True)
class WorkerRequirements:
    """Who may accept the HIT: the usual quality bar for perception studies."""

    min_approval_rate: int = 98
    min_approved_hits: int = 1000
    locales: tuple[str, ...] = ("US",)

    def to_mturk(self) -> list[dict[str, Any]]:
        reqs: list[dict[str, Any]] = [
            {"QualificationTypeId": APPROVAL_RATE_QUALIFICATION, "Comparator": "GreaterThanOrEqualTo",
             "IntegerValues": [self.min_approval_rate], "ActionsGuarded": "Accept"},
            {"QualificationTypeId": NUMBER_APPROVED_QUALIFICATION, "Comparator": "GreaterThanOrEqualTo",
             "IntegerValues": [self.min_approved_hits], "ActionsGuarded": "Accept"},
        ]
        if self.locales:
            reqs.append({"QualificationTypeId": LOCALE_QUALIFICATION, "Comparator": "In",
                         "LocaleValues": [{"Country": c} for c in self.locales], "ActionsGuarded": "Accept"})
        return reqs


def usd(cents: int) -> str:
    """MTurk's money format: a string of dollars with two decimals."""
    return f"{cents // 100}.{cents % 100:02d}"


def create_hit(client, *, title: str, description: str, url: str, places: int, reward_cents: int, minutes: int,
               requirements: WorkerRequirements, token: str, annotation: str) -> dict[str, Any]:
    response = client.create_hit(
        MaxAssignments=places,
        AutoApprovalDelayInSeconds=3 * 24 * 3600,  # time for `hype mturk sync` to review before MTurk approves
        LifetimeInSeconds=7 * 24 * 3600,
        AssignmentDurationInSeconds=max(3600, minutes * 60 * 3),
        Reward=usd(reward_cents),
        Title=title[:128],
        Keywords="image, perception, judgment, real or fake, research",
        Description=description[:2000],
        Question=external_question(url),
        QualificationRequirements=requirements.to_mturk(),
        RequesterAnnotation=annotation[:255],
        UniqueRequestToken=token[:64],
    )
    return response["HIT"]


def assignments(client, hit_id: str) -> Iterator[dict[str, Any]]:
    """Every submitted, approved or rejected assignment of the HIT, page by page."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"HITId": hit_id, "MaxResults": 100, "AssignmentStatuses": ["Submitted", "Approved", "Rejected"]}
        if token:
            kwargs["NextToken"] = token
        page = client.list_assignments_for_hit(**kwargs)
        yield from page.get("Assignments", [])
        token = page.get("NextToken")
        if not token:
            return


def submitted_code(answer_xml: str | None) -> str | None:
    """The completion code the done page posted, from MTurk's QuestionFormAnswers XML."""
    if not answer_xml:
        return None
    try:
        root = ET.fromstring(answer_xml)
    except ET.ParseError:
        return None
    for answer in root.iter():
        if not answer.tag.endswith("Answer") or answer.tag.endswith("QuestionFormAnswers"):
            continue
        name = value = None
        for child in answer:
            if child.tag.endswith("QuestionIdentifier"):
                name = (child.text or "").strip()
            elif child.tag.endswith("FreeText"):
                value = (child.text or "").strip()
        if name == COMPLETION_FIELD:
            return value
    return None


def approve(client, assignment_id: str, feedback: str) -> None:
    client.approve_assignment(AssignmentId=assignment_id, RequesterFeedback=feedback[:1024])


def reject(client, assignment_id: str, feedback: str) -> None:
    client.reject_assignment(AssignmentId=assignment_id, RequesterFeedback=feedback[:1024])


def send_bonus(client, *, worker_id: str, assignment_id: str, cents: int, reason: str, token: str) -> None:
    client.send_bonus(WorkerId=worker_id, BonusAmount=usd(cents), AssignmentId=assignment_id, Reason=reason[:1024],
                      UniqueRequestToken=token[:64])


def add_places(client, hit_id: str, n: int, token: str) -> None:
    client.create_additional_assignments_for_hit(HITId=hit_id, NumberOfAdditionalAssignments=n, UniqueRequestToken=token[:64])


def is_duplicate_token(exc: Exception) -> bool:
    """MTurk answers a reused UniqueRequestToken with an error: the earlier call went through."""
    text = str(exc)
    return "token" in text.lower() and ("already" in text.lower() or "duplicate" in text.lower())
