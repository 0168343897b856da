"""The platform steps the CLI and the dashboard share: create, publish, sync, pay.

Each step writes what it did to the database before it goes on (a commit after every platform call
that changes something), so a crash or a Ctrl-C in the middle loses nothing and a re-run carries on
from where it stopped: a submission already decided is not decided again, a bonus already paid is
skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hype import effort
from hype.models import Assignment, BonusPayment, Participant, PlatformStudy, PlatformSubmission, Study, utcnow
from hype.monitoring import WorkerRow, worker_rows
from hype.platforms import PlatformError, mturk
from hype.platforms.codes import check_session_code, normalise
from hype.platforms.prolific import ProlificClient, ProlificError
from hype.platforms.review import Decision, Facts, decide
from hype.sessions import ACTIVE_STAGES
from hype.studies import study_settings

PROLIFIC_DONE = ("AWAITING REVIEW",)  # submitted, waiting for the researcher's decision
PROLIFIC_WORKING = ("ACTIVE", "RESERVED")
BONUS_REASON = "Bonus for correct answers in the real-or-fake image task. Thank you!"
MTURK_TOKEN_LIFETIME = dt.timedelta(hours=23)  # MTurk remembers a UniqueRequestToken for 24 hours


@dataclass
class StepReport:
    """What a step did, line by line, for the terminal and the dashboard's flash message."""

    lines: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, line: str | None = None) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
        if line:
            self.lines.append(line)

    def summary(self) -> str:
        return ", ".join(f"{n} {key}" for key, n in self.counts.items()) or "nothing to do"


# -- shared ---------------------------------------------------------------------------------------------


def listing(session: Session, study: Study, platform: str) -> PlatformStudy | None:
    return session.scalar(
        select(PlatformStudy).where(PlatformStudy.study_id == study.id, PlatformStudy.platform == platform).order_by(PlatformStudy.id.desc())
    )


def _require_listing(session: Session, study: Study, platform: str) -> PlatformStudy:
    found = listing(session, study, platform)
    if found is None:
        raise PlatformError(f"study {study.id} has no {platform} listing yet; run `hype {platform} create {study.id}` first")
    return found


def default_places(study: Study) -> int:
    return study_settings(study).evaluators_per_model * max(1, len(study.models))


def pay_for(study: Study) -> effort.PayEstimate:
    return effort.expected_pay(study_settings(study))


def _check_publishable(study: Study) -> None:
    if study.status != "published":
        raise PlatformError(f"publish study {study.id} in hype first (`hype publish {study.id}`): its worker link is not live yet")


def open_slots(session: Session, study: Study) -> int:
    """Workers still to recruit, from the recruitment accounting (excluded workers reopen their slots)."""
    from hype.recruitment import model_slots

    return sum(s.open_slots for s in model_slots(session, study))


def _token(study: Study, *parts: Any) -> str:
    """A request token derived from hype's own ids: the same operation always carries the same token."""
    digest = hashlib.sha256(":".join([study.slug, *map(str, parts)]).encode()).hexdigest()
    return f"hype-{digest[:40]}"


@dataclass(frozen=True)
class _Worker:
    assignment: Assignment | None
    row: WorkerRow | None


def _workers(session: Session, study: Study, platform: str) -> tuple[dict[str, _Worker], dict[int, WorkerRow]]:
    rows = {r.assignment_id: r for r in worker_rows(session, study)}
    by_worker: dict[str, _Worker] = {}
    for a in session.scalars(select(Assignment).join(Participant).where(Assignment.study_id == study.id, Participant.platform == platform)):
        by_worker[a.participant.worker_id] = _Worker(a, rows.get(a.id))
    return by_worker, rows


def _facts(worker: _Worker | None, code_ok: bool, problem: str) -> Facts:
    if worker is None or worker.assignment is None:
        return Facts(stage=None, code_ok=code_ok, code_problem=problem)
    exclusions = tuple((e.rule, e.reason) for e in (worker.row.active_exclusions if worker.row else []))
    return Facts(stage=worker.assignment.stage, code_ok=code_ok, code_problem=problem, exclusions=exclusions)


def _record(session: Session, study: Study, platform: str, external_id: str, worker_id: str, status: str,
            code: str | None, assignment: Assignment | None) -> PlatformSubmission:
    record = session.scalar(select(PlatformSubmission).where(PlatformSubmission.platform == platform, PlatformSubmission.external_id == external_id))
    if record is None:
        record = PlatformSubmission(study_id=study.id, platform=platform, external_id=external_id, worker_id=worker_id)
        session.add(record)
    record.platform_status = status
    record.code = (code or None) and code[:200]
    record.assignment_id = assignment.id if assignment is not None else None
    return record


def _decided(record: PlatformSubmission, decision: Decision) -> None:
    record.decision = {"approve": "approved", "return": "returned", "reject": "rejected", "flag": "flagged"}[decision.action]
    record.note = decision.reason[:500]


# -- Prolific ----------------------------------------------------------------------------------------------


def prolific_study_url(link: str) -> str:
    """hype's worker link with Prolific's placeholders, which Prolific fills in per participant."""
    separator = "&" if "?" in link else "?"
    return f"{link}{separator}PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}&STUDY_ID={{{{%STUDY_ID%}}}}&SESSION_ID={{{{%SESSION_ID%}}}}"


def prolific_study_body(study: Study, link: str, places: int) -> dict[str, Any]:
    """The draft study Prolific gets: hype's link with Prolific's id placeholders, the two study codes
    (manual review, so hype's sync decides), the places, the time and reward from hype.effort."""
    pay = pay_for(study)
    return {
        "name": f"Real or fake? Judge photographs ({study.name})"[:120],
        "internal_name": f"hype {study.id} {study.slug}",
        "description": (
            f"You will see photographs, some real and some made by a computer program, and decide for each whether it is "
            f"real or fake. It takes about {pay.rounded_minutes} minutes. Base pay ${pay.base_usd:.2f}, plus a bonus of "
            f"${pay.bonus_per_correct_usd:.2f} per correct answer in the task. A desktop or laptop is needed."
        ),
        "external_study_url": prolific_study_url(link),
        "prolific_id_option": "url_parameters",
        "completion_codes": [
            {"code": study.completion_code, "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]},
            {"code": study.qualification_fail_code, "code_type": "OTHER", "actions": [{"action": "MANUALLY_REVIEW"}]},
        ],
        "total_available_places": places,
        "estimated_completion_time": pay.rounded_minutes,
        "reward": effort.cents(pay.base_usd),
        "device_compatibility": ["desktop"],
    }


def prolific_create(session: Session, study: Study, client: ProlificClient, *, link: str, places: int | None = None) -> tuple[PlatformStudy, bool]:
    """A draft study on Prolific (returns the existing one, created=False, when there is one)."""
    existing = listing(session, study, "prolific")
    if existing is not None:
        return existing, False
    _check_publishable(study)
    places = places or default_places(study)
    body = prolific_study_body(study, link, places)
    created = client.create_study(body)
    record = PlatformStudy(study_id=study.id, platform="prolific", external_id=str(created["id"]), sandbox=False, places=places,
                           reward_cents=body["reward"], minutes=body["estimated_completion_time"], status=str(created.get("status", "UNPUBLISHED")))
    session.add(record)
    session.commit()
    return record, True


def prolific_publish(session: Session, study: Study, client: ProlificClient) -> PlatformStudy:
    record = _require_listing(session, study, "prolific")
    _check_publishable(study)
    answer = client.publish(record.external_id) or {}
    record.status = str(answer.get("status", "ACTIVE"))
    record.published_at = record.published_at or utcnow()
    session.commit()
    return record


def _prolific_code_check(study: Study, worker: _Worker | None, code: str | None) -> tuple[bool, str]:
    """Prolific sends each worker back with one of the study's two registered codes; the session's
    own code is their receipt. A submission whose code hype never registered, or whose code does not
    match how that worker's session ended, is flagged."""
    if code is None:
        return True, ""  # Prolific did not report a code; the participant id itself is Prolific-verified
    submitted = normalise(code)
    if submitted not in (study.completion_code, study.qualification_fail_code):
        return False, f"code {submitted[:40] or '(none)'} was not issued by hype for this study"
    if worker is None or worker.assignment is None:
        return False, f"code {submitted} was submitted, but no hype session exists for this participant (shared code)"
    expected = study.completion_code if worker.assignment.stage == "completed" else study.qualification_fail_code
    if worker.assignment.stage in ("completed", "failed") and submitted != expected:
        return False, f"code {submitted} does not match how this participant's session ended ({worker.assignment.stage})"
    return True, ""


def prolific_sync(session: Session, study: Study, client: ProlificClient) -> StepReport:
    """Read every submission, then approve or ask to return those awaiting review (once each)."""
    record = _require_listing(session, study, "prolific")
    workers, _ = _workers(session, study, "prolific")
    report = StepReport()
    submissions = list(client.submissions(record.external_id))  # every page first: decide on one snapshot
    # Working on Prolific but not (yet) in hype: holding a place hype's accounting does not see.
    arriving = sum(1 for sub in submissions if sub.get("status") in PROLIFIC_WORKING
                   and str(sub.get("participant_id") or "") not in workers)
    for sub in submissions:
        pid = str(sub.get("participant_id") or sub.get("participant") or "")
        status = str(sub.get("status", ""))
        code = sub.get("study_code")
        worker = workers.get(pid)
        saved = _record(session, study, "prolific", str(sub["id"]), pid, status, code, worker.assignment if worker else None)
        if status not in PROLIFIC_DONE:
            report.add("not awaiting review")
            continue
        if saved.decision in ("approved", "returned"):
            report.add("already decided")
            continue
        code_ok, problem = _prolific_code_check(study, worker, code)
        decision = decide(_facts(worker, code_ok, problem), platform="prolific")
        if decision.action == "approve":
            client.approve(saved.external_id)
        elif decision.action == "return":
            client.request_return(saved.external_id, [decision.reason[:200]])
        _decided(saved, decision)
        session.commit()
        label = {"approve": "approved", "return": "asked to return", "flag": "flagged"}[decision.action]
        report.add(label, f"{pid}: {label} ({decision.reason})")
    session.commit()
    _prolific_top_up(session, study, client, record, report, arriving)
    return report


def _prolific_top_up(session: Session, study: Study, client: ProlificClient, record: PlatformStudy, report: StepReport,
                     arriving: int) -> None:
    """Offer as many places as hype still needs: returned submissions free theirs on Prolific by
    itself, but approved or unreturned ones of excluded workers do not. Participants who took a
    place and have not reached hype yet count as on their way (a later sync adds their place if they
    drop out), so no more places are bought than needed."""
    if study.status != "published":
        return
    listed = client.get_study(record.external_id)
    total = int(listed.get("total_available_places") or record.places)
    remaining = max(0, total - int(listed.get("places_taken") or 0))
    extra = open_slots(session, study) - remaining - arriving
    if extra <= 0:
        return
    client.set_places(record.external_id, total + extra)
    record.places = total + extra
    session.commit()
    report.add("places added", f"added {extra} place(s) for slots reopened by exclusions: {record.places} in all")


# -- MTurk ---------------------------------------------------------------------------------------------------


def mturk_create(session: Session, study: Study, client, *, link: str, places: int | None = None, production: bool = False,
                 requirements: mturk.WorkerRequirements | None = None) -> tuple[PlatformStudy, bool]:
    existing = session.scalar(select(PlatformStudy).where(PlatformStudy.study_id == study.id, PlatformStudy.platform == "mturk",
                                                          PlatformStudy.sandbox == (not production)))
    if existing is not None:
        return existing, False
    _check_publishable(study)
    if not link.startswith("https://"):
        raise PlatformError(f"MTurk shows the task in a frame and needs an https:// link, not {link}; set HYPE_PUBLIC_URL")
    places = places or default_places(study)
    pay = pay_for(study)
    hit = mturk.create_hit(
        client,
        title="Real or fake? Judge photographs",
        description=(f"Decide for each photograph whether it is real or made by a computer. About {pay.rounded_minutes} minutes; "
                     f"bonus ${pay.bonus_per_correct_usd:.2f} per correct answer. Desktop or laptop only."),
        url=link,
        places=places,
        reward_cents=effort.cents(pay.base_usd),
        minutes=pay.rounded_minutes,
        requirements=requirements or mturk.WorkerRequirements(),
        token=_token(study, "create-hit", "production" if production else "sandbox"),
        annotation=f"hype study {study.id} {study.slug}",
    )
    record = PlatformStudy(study_id=study.id, platform="mturk", external_id=str(hit["HITId"]), sandbox=not production, places=places,
                           reward_cents=effort.cents(pay.base_usd), minutes=pay.rounded_minutes, status=str(hit.get("HITStatus", "Assignable")),
                           published_at=utcnow())
    session.add(record)
    session.commit()
    return record, True


def mturk_listing(session: Session, study: Study, production: bool) -> PlatformStudy:
    found = session.scalar(select(PlatformStudy).where(PlatformStudy.study_id == study.id, PlatformStudy.platform == "mturk",
                                                       PlatformStudy.sandbox == (not production)))
    if found is None:
        where = "production" if production else "sandbox"
        flag = " --production" if production else ""
        raise PlatformError(f"study {study.id} has no MTurk {where} HIT yet; run `hype mturk create {study.id}{flag}` first")
    return found


def mturk_sync(session: Session, study: Study, client, *, production: bool = False, reject_excluded: bool = False) -> StepReport:
    record = mturk_listing(session, study, production)
    workers, _ = _workers(session, study, "mturk")
    report = StepReport()
    for item in list(mturk.assignments(client, record.external_id)):  # every page first: decide on one snapshot
        worker_id = str(item["WorkerId"])
        status = str(item.get("AssignmentStatus", ""))
        code = mturk.submitted_code(item.get("Answer"))
        worker = workers.get(worker_id)
        saved = _record(session, study, "mturk", str(item["AssignmentId"]), worker_id, status, code, worker.assignment if worker else None)
        if status != "Submitted":
            report.add(f"already {status.lower()}")
            continue
        check = check_session_code(session, study, "mturk", worker_id, code)
        decision = decide(_facts(worker, check.ok, check.reason), platform="mturk", reject_excluded=reject_excluded)
        if decision.action == "approve":
            mturk.approve(client, saved.external_id, "Thank you for your work.")
        elif decision.action == "reject":
            mturk.reject(client, saved.external_id, f"Not accepted: {decision.reason}")
        _decided(saved, decision)
        session.commit()
        label = {"approve": "approved", "reject": "rejected", "flag": "flagged"}[decision.action]
        report.add(label, f"{worker_id} ({saved.external_id}): {label} ({decision.reason})")
    session.commit()
    _mturk_top_up(session, study, client, record, report)
    return report


def _mturk_top_up(session: Session, study: Study, client, record: PlatformStudy, report: StepReport) -> None:
    """CreateAdditionalAssignmentsForHIT when hype needs more workers than the HIT still offers
    (excluded workers reopen their slots). Accepted assignments beyond the MTurk workers hype sees
    working count as on their way, so no extra place is bought for them (a later sync adds it if they
    drop out). The token names the new total, so a retry adds nothing."""
    if study.status != "published":
        return
    hit = client.get_hit(HITId=record.external_id)["HIT"]
    working_here = session.scalar(select(func.count()).select_from(Assignment).join(Participant).where(
        Assignment.study_id == study.id, Participant.platform == "mturk", Assignment.stage.in_(ACTIVE_STAGES))) or 0
    arriving = max(0, int(hit.get("NumberOfAssignmentsPending") or 0) - working_here)
    extra = open_slots(session, study) - int(hit.get("NumberOfAssignmentsAvailable") or 0) - arriving
    if extra <= 0:
        return
    total = int(hit.get("MaxAssignments") or record.places) + extra
    try:
        mturk.add_places(client, record.external_id, extra, _token(study, "add-places", record.external_id, total))
    except Exception as exc:  # botocore's ClientError: e.g. a HIT made with under 10 assignments cannot reach 10
        if not (type(exc).__module__ or "").startswith("botocore"):
            raise
        report.add("places not added", f"could not add {extra} assignment(s) to HIT {record.external_id}: {exc}")
        return
    record.places = total
    session.commit()
    report.add("places added", f"added {extra} assignment(s) for slots reopened by exclusions: {total} in all")


# -- bonuses -------------------------------------------------------------------------------------------------


def owed_bonuses(session: Session, study: Study, platform: str) -> list[tuple[PlatformSubmission, WorkerRow, int]]:
    """Approved submissions of finished, non-excluded workers with a bonus above zero."""
    rate = study_settings(study).pay.bonus_per_correct_usd
    rows = {r.assignment_id: r for r in worker_rows(session, study)}
    owed = []
    for sub in session.scalars(select(PlatformSubmission).where(
            PlatformSubmission.study_id == study.id, PlatformSubmission.platform == platform,
            PlatformSubmission.decision == "approved", PlatformSubmission.assignment_id.is_not(None)).order_by(PlatformSubmission.id)):
        row = rows.get(sub.assignment_id)
        if row is None or row.stage != "completed" or row.active_exclusions:
            continue
        amount = effort.cents(effort.bonus_usd(row.stats.n_correct, rate))
        if amount > 0:
            owed.append((sub, row, amount))
    return owed


def _ledger(session: Session, study: Study, platform: str) -> dict[int, BonusPayment]:
    return {b.assignment_id: b for b in session.scalars(select(BonusPayment).where(BonusPayment.study_id == study.id, BonusPayment.platform == platform))}


def _enter_bonuses(session: Session, study: Study, platform: str, report: StepReport) -> list[BonusPayment]:
    """Write a ledger row for every bonus owed and not yet entered; return the rows still to pay."""
    ledger = _ledger(session, study, platform)
    for sub, row, amount in owed_bonuses(session, study, platform):
        if sub.assignment_id in ledger:
            continue
        payment = BonusPayment(study_id=study.id, assignment_id=sub.assignment_id, platform=platform, worker_id=sub.worker_id,
                               submission_id=sub.external_id, amount_cents=amount, request_token=_token(study, "bonus", sub.assignment_id),
                               status="pending")
        session.add(payment)
        ledger[sub.assignment_id] = payment
    session.commit()
    for payment in ledger.values():
        if payment.status == "paid":
            report.add("already paid")
    return [p for p in ledger.values() if p.status != "paid"]


def prolific_pay(session: Session, study: Study, client: ProlificClient) -> StepReport:
    """Bulk-pay every bonus owed, once. Rows left 'sending' by an unanswered pay call are not paid
    again (Prolific may have paid them); the report says to check them on Prolific."""
    record = _require_listing(session, study, "prolific")
    report = StepReport()
    todo = _enter_bonuses(session, study, "prolific", report)
    unsure = [p for p in todo if p.status == "sending"]
    for p in unsure:
        report.add("unconfirmed", f"{p.worker_id}: ${p.amount_cents / 100:.2f} may have been paid (batch {p.batch_id}); "
                                   "check on Prolific, then `hype prolific pay --confirm-paid` or `--retry-unconfirmed`")
    pending = [p for p in todo if p.status in ("pending", "failed")]
    if not pending:
        return report
    setup = client.set_up_bonuses(record.external_id, [(p.worker_id, p.amount_cents) for p in pending])
    batch = str(setup["id"])
    for p in pending:
        p.status, p.batch_id, p.error = "sending", batch, None
    session.commit()
    try:
        client.pay_bonuses(batch)
    except ProlificError as exc:
        for p in pending:
            if exc.ambiguous:
                p.error = str(exc)[:500]
            else:  # refused: nothing was paid, so a re-run may try again
                p.status, p.error = "failed", str(exc)[:500]
        session.commit()
        raise
    now = utcnow()
    for p in pending:
        p.status, p.paid_at = "paid", now
        report.add("paid", f"{p.worker_id}: ${p.amount_cents / 100:.2f}")
    session.commit()
    return report


def resolve_unconfirmed(session: Session, study: Study, platform: str, *, paid: bool) -> int:
    """After checking on the platform: mark bonuses left 'sending' as paid, or release them to be paid again."""
    rows = list(session.scalars(select(BonusPayment).where(BonusPayment.study_id == study.id, BonusPayment.platform == platform,
                                                          BonusPayment.status == "sending")))
    for p in rows:
        if paid:
            p.status, p.paid_at = "paid", utcnow()
        else:
            p.status, p.batch_id = "pending", None
    session.commit()
    return len(rows)


def mturk_pay(session: Session, study: Study, client, *, production: bool = False, now: Callable[[], dt.datetime] = utcnow) -> StepReport:
    """SendBonus per worker with a token fixed per bonus: a retry within MTurk's 24-hour memory
    cannot pay twice. A bonus whose call went unanswered longer ago than that is left for a person."""
    mturk_listing(session, study, production)
    report = StepReport()
    for p in _enter_bonuses(session, study, "mturk", report):
        if p.status == "sending" and now() - _aware(p.created_at) > MTURK_TOKEN_LIFETIME:
            report.add("unconfirmed", f"{p.worker_id}: ${p.amount_cents / 100:.2f} unconfirmed for over 23 hours; check on MTurk")
            continue
        p.status = "sending"
        session.commit()
        try:
            mturk.send_bonus(client, worker_id=p.worker_id, assignment_id=p.submission_id, cents=p.amount_cents, reason=BONUS_REASON,
                             token=p.request_token)
        except Exception as exc:  # botocore's ClientError and connection errors alike
            if mturk.is_duplicate_token(exc):
                p.status, p.paid_at = "paid", utcnow()
                session.commit()
                report.add("paid", f"{p.worker_id} ({p.submission_id}): ${p.amount_cents / 100:.2f} (paid by an earlier run)")
                continue
            p.error = str(exc)[:500]
            session.commit()
            report.add("failed", f"{p.worker_id} ({p.submission_id}): not confirmed: {str(exc)[:200]}; re-run to retry safely")
            continue
        p.status, p.paid_at = "paid", utcnow()
        session.commit()
        report.add("paid", f"{p.worker_id} ({p.submission_id}): ${p.amount_cents / 100:.2f}")
    return report


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def bonus_rows(session: Session, study: Study, platform: str) -> Iterable[tuple[str, str, int]]:
    """(worker id, platform submission id, cents) owed, for the platform's own bonus sheet."""
    for sub, _row, amount in owed_bonuses(session, study, platform):
        yield sub.worker_id, sub.external_id, amount
