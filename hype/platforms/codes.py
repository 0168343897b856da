"""Per-session completion codes: issued when a session ends, checked when a platform is synced.

A code is 80 random bits written in base32 (16 letters and digits, easy to copy), unique in the
database, so it cannot be guessed and one worker's code says nothing about another's. Sync accepts
a code only from the worker whose session issued it: a code no session issued is forged, a code from
someone else's session is shared; both are flagged and never paid.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hype.models import Assignment, Participant, Study

CODE_BYTES = 10


def new_session_code() -> str:
    return base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii")


def normalise(code: str | None) -> str:
    """What a worker pastes may carry spaces or lower case; the code itself never does."""
    return "".join((code or "").split()).upper()


@dataclass(frozen=True)
class CodeCheck:
    ok: bool
    assignment: Assignment | None
    reason: str  # for the researcher; empty when ok


def check_session_code(session: Session, study: Study, platform: str, worker_id: str, code: str | None) -> CodeCheck:
    """Was ``code`` issued by this worker's own session in this study?"""
    own = session.scalar(
        select(Assignment).join(Participant).where(
            Participant.study_id == study.id, Participant.platform == platform, Participant.worker_id == worker_id
        )
    )
    submitted = normalise(code)
    if not submitted:
        return CodeCheck(False, own, "no completion code was submitted")
    issuer = session.scalar(select(Assignment).where(Assignment.study_id == study.id, Assignment.completion_code == submitted))
    if issuer is None:
        return CodeCheck(False, own, f"code {submitted[:40]} was not issued by any hype session of this study")
    if own is None or issuer.id != own.id:
        return CodeCheck(False, own, f"code {submitted} belongs to another worker's session (shared code)")
    return CodeCheck(True, own, "")
