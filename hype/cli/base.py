"""What every command shares: the lazily built config / engine / session, and one way to fail."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import click
from sqlalchemy import exc as sa_exc, inspect
from sqlalchemy.orm import Session

from hype.config import Config, load_config
from hype.db import make_engine, make_session_factory, transaction


class Context:
    def __init__(self, data_dir: str | None, database_url: str | None):
        self._overrides = {k: v for k, v in {"data_dir": data_dir, "database_url": database_url}.items() if v}
        self._config: Config | None = None
        self._engine = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(**self._overrides)
        return self._config

    @property
    def engine(self):
        if self._engine is None:
            self._engine = make_engine(self.config.database_url)
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work per command: commit on success, roll back on any error.

        A database that was never initialised fails every query with the driver's text ("no such
        table: studies" on SQLite, "relation ... does not exist" on PostgreSQL); the person needs the
        one command that fixes it, not the SQL."""
        try:
            with transaction(make_session_factory(self.engine)) as session:
                yield session
        except (sa_exc.OperationalError, sa_exc.ProgrammingError):
            if not self._has_schema():
                shown = self.engine.url.render_as_string(hide_password=True)
                fail(f"the database {shown} has no hype tables yet: run `hype init-db` first")
            raise

    def _has_schema(self) -> bool:
        try:
            return inspect(self.engine).has_table("studies")
        except sa_exc.SQLAlchemyError:
            return False


pass_ctx = click.make_pass_decorator(Context)


def fail(message: str) -> None:
    """Stop the command with a message for a person (click prints it and exits 1)."""
    raise click.ClickException(message)


@contextmanager
def user_errors() -> Iterator[None]:
    """The study services raise ValueError (StudyError, SettingsError) with a message written for a
    person: a command shows it instead of a traceback."""
    try:
        yield
    except ValueError as exc:
        fail(str(exc))


def submit_job(ctx: Context, study: str, kind: str, params: dict) -> None:
    """Queue a job of ``kind`` for the study named or numbered ``study`` and say how to follow it; the
    one way `hype metrics --enqueue` and `hype report --enqueue` hand work to `hype worker`."""
    from hype import studies
    from hype.jobs import JobError, submit

    with ctx.session() as session, user_errors():
        study_id = studies.find_study(session, study).id
    try:
        job = submit(ctx.config, make_session_factory(ctx.engine), study_id, kind, params)
    except JobError as exc:
        fail(str(exc))
    click.echo(f"queued as job {job.id}; `hype worker` runs it, `hype jobs {study}` follows it")


def owner_id(session: Session, email: str | None) -> int | None:
    """The researcher who owns a study made by a command: --owner, or else the only researcher. With
    none yet the study is made without one, and the command says how to give it one later."""
    from hype.accounts import AccountError, resolve_owner

    try:
        researcher = resolve_owner(session, email)
    except AccountError as exc:
        fail(str(exc))
        raise
    if researcher is None:
        click.echo("note: no researcher account yet, so this study appears in no dashboard; after "
                   "`hype create-researcher EMAIL`, give it one with `hype transfer STUDY EMAIL`", err=True)
        return None
    return researcher.id
