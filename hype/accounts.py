"""Researcher accounts: creation and password checks (hashes by werkzeug, scrypt)."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from hype.models import Researcher

MIN_PASSWORD_LENGTH = 8
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class AccountError(ValueError):
    pass


def create_researcher(session: Session, email: str, password: str) -> Researcher:
    email = (email or "").strip().lower()
    if not _EMAIL.match(email):
        raise AccountError(f"{email!r} is not an e-mail address")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(Researcher).where(Researcher.email == email)) is not None:
        raise AccountError(f"a researcher {email} already exists")
    researcher = Researcher(email=email, password_hash=generate_password_hash(password))
    session.add(researcher)
    session.flush()
    return researcher


def authenticate(session: Session, email: str, password: str) -> Researcher | None:
    researcher = session.scalar(select(Researcher).where(Researcher.email == (email or "").strip().lower()))
    if researcher is None or not check_password_hash(researcher.password_hash, password or ""):
        return None
    return researcher


def find_researcher(session: Session, email: str) -> Researcher:
    researcher = session.scalar(select(Researcher).where(Researcher.email == (email or "").strip().lower()))
    if researcher is None:
        raise AccountError(f"no researcher {email!r}; create one with `hype create-researcher EMAIL`")
    return researcher


def resolve_owner(session: Session, email: str | None) -> Researcher | None:
    """Who owns a study made outside the dashboard: the researcher named, or else the only one there
    is. None when there is none yet (`hype transfer` gives the study to one later); an error when
    there are several, since guessing would hide the study from the one who made it."""
    if email:
        return find_researcher(session, email)
    n = session.scalar(select(func.count()).select_from(Researcher)) or 0
    if n == 1:
        return session.scalar(select(Researcher))
    if n > 1:
        raise AccountError(f"there are {n} researchers: say which one owns the study with --owner EMAIL")
    return None
