"""Bonus sheets from hype's own records, in each platform's format, excluded workers left out.

- `hype`: one row per finished worker (every platform), with the platform's own assignment id;
- `mturk`: WorkerId, AssignmentId (MTurk's, which SendBonus needs), BonusAmount, Reason;
- `prolific`: `participant_id,amount` lines, what Prolific's bulk bonus box and API take.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy.orm import Session

from hype import effort
from hype.models import Study
from hype.monitoring import worker_rows
from hype.studies import study_settings

FORMATS = ("hype", "mturk", "prolific")
REASON = "Bonus for correct answers in the real-or-fake image task. Thank you!"


def _platform_assignment_id(platform: str, ids: dict) -> str:
    if platform == "mturk":
        return str(ids.get("assignmentId", ""))
    if platform == "prolific":
        return str(ids.get("SESSION_ID", ""))
    return ""


def bonus_sheet(session: Session, study: Study, fmt: str = "hype") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"bonus sheet format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    rate = study_settings(study).pay.bonus_per_correct_usd
    rows = []
    for row in sorted(worker_rows(session, study), key=lambda r: r.assignment_id):
        if row.stage not in ("completed", "failed") or row.active_exclusions:
            continue
        if fmt != "hype" and row.platform != fmt:
            continue
        rows.append((row, effort.bonus_usd(row.stats.n_correct, rate)))
    ids = _platform_ids(session, [r.assignment_id for r, _ in rows])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if fmt == "hype":
        writer.writerow(["platform", "worker_id", "platform_assignment_id", "stage", "correct_answers", "bonus_usd"])
        for row, amount in rows:
            writer.writerow([row.platform, row.worker_id, _platform_assignment_id(row.platform, ids[row.assignment_id]), row.stage,
                             row.stats.n_correct, f"{amount:.2f}"])
    elif fmt == "mturk":
        writer.writerow(["WorkerId", "AssignmentId", "BonusAmount", "Reason"])
        for row, amount in rows:
            if amount > 0:
                writer.writerow([row.worker_id, _platform_assignment_id("mturk", ids[row.assignment_id]), f"{amount:.2f}", REASON])
    else:
        for row, amount in rows:
            if amount > 0:
                writer.writerow([row.worker_id, f"{amount:.2f}"])
    return out.getvalue()


def _platform_ids(session: Session, assignment_ids: list[int]) -> dict[int, dict]:
    from sqlalchemy import select

    from hype.models import Assignment, Participant

    if not assignment_ids:
        return {}
    return {
        aid: dict(ids or {})
        for aid, ids in session.execute(
            select(Assignment.id, Participant.platform_ids).join(Participant, Participant.id == Assignment.participant_id)
            .where(Assignment.id.in_(assignment_ids))
        )
    }
