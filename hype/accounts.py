"""Researcher accounts: creation, password checks and resets (hashes by werkzeug, scrypt)."""

from __future__ import annotations

import functools
import re
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from hype.models import Researcher

MIN_PASSWORD_LENGTH = 8
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class AccountError(ValueError):
    pass


def normal_email(email: str) -> str:
    return (email or "").strip().lower()


def check_new_email(session: Session, email: str) -> str:
    """The normalised address, if a new account may use it (checked before any password is asked)."""
    email = normal_email(email)
    if not _EMAIL.match(email):
        raise AccountError(f"{email!r} is not an e-mail address")
    if researcher_by_email(session, email) is not None:
        raise AccountError(f"a researcher {email} already exists")
    return email


def check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")


def researcher_by_email(session: Session, email: str) -> Researcher | None:
    return session.scalar(select(Researcher).where(Researcher.email == normal_email(email)))


def create_researcher(session: Session, email: str, password: str) -> Researcher:
    email = check_new_email(session, email)
    check_password(password)
    researcher = Researcher(email=email, password_hash=generate_password_hash(password))
    session.add(researcher)
    session.flush()
    return researcher


def reset_password(session: Session, email: str, password: str) -> Researcher:
    """Set a new password and sign the account out everywhere (its old cookies stop working)."""
    researcher = researcher_by_email(session, email)
    if researcher is None:
        raise AccountError(f"there is no researcher {normal_email(email)}")
    check_password(password)
    researcher.password_hash = generate_password_hash(password)
    end_sessions(researcher)
    session.flush()
    return researcher


def end_sessions(researcher: Researcher) -> None:
    """Every signed-in cookie of this researcher stops working (hype.web.auth compares epochs)."""
    researcher.session_epoch = (researcher.session_epoch or 0) + 1


@functools.cache
def _unknown_account_hash() -> str:
    """A hash made the way real ones are, checked when no account matches, so that an unknown
    address costs the same scrypt work as a known one and sign-in times do not tell which
    addresses have accounts. Made once per process (`hype serve` makes it before serving)."""
    return generate_password_hash(secrets.token_urlsafe(16))


def warm_up() -> None:
    _unknown_account_hash()


def authenticate(session: Session, email: str, password: str) -> Researcher | None:
    researcher = researcher_by_email(session, email)
    stored = researcher.password_hash if researcher is not None else _unknown_account_hash()
    if not check_password_hash(stored, password or "") or researcher is None:
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
