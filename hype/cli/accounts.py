"""Researcher account commands."""

from __future__ import annotations

import click

from hype.cli.base import Context, fail, pass_ctx


def _new_password(given: str | None) -> str:
    """The --password given, or asked twice (after the e-mail was checked, so nobody types a
    password for an address that is then refused)."""
    from hype.accounts import AccountError, check_password

    password = given if given is not None else click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_password(password)
    except AccountError as exc:
        fail(str(exc))
    return password


@click.command("create-researcher")
@click.argument("email")
@click.option("--password", help="Password (asked twice if omitted).")
@pass_ctx
def create_researcher_cmd(ctx: Context, email: str, password: str | None) -> None:
    """Create a researcher account for the dashboard."""
    from hype.accounts import AccountError, check_new_email, create_researcher

    from sqlalchemy import func, select

    from hype.models import Study

    with ctx.session() as session:
        try:
            email = check_new_email(session, email)
            create_researcher(session, email, _new_password(password))
        except AccountError as exc:
            fail(str(exc))
        unowned = session.scalar(select(func.count()).select_from(Study).where(Study.owner_id.is_(None))) or 0
    click.echo(f"researcher {email} created")
    if unowned:
        click.echo(f"{unowned} stud{'y has' if unowned == 1 else 'ies have'} no owner and appear in no dashboard: "
                   f"`hype transfer STUDY {email}` gives one to this account (`hype list` shows them)")


@click.command("reset-password")
@click.argument("email")
@click.option("--password", help="New password (asked twice if omitted).")
@pass_ctx
def reset_password_cmd(ctx: Context, email: str, password: str | None) -> None:
    """Set a new password for a researcher and sign them out everywhere."""
    from hype.accounts import AccountError, researcher_by_email, normal_email, reset_password

    with ctx.session() as session:
        if researcher_by_email(session, email) is None:
            fail(f"there is no researcher {normal_email(email)}")
        try:
            reset_password(session, email, _new_password(password))
        except AccountError as exc:
            fail(str(exc))
    click.echo(f"password of {normal_email(email)} reset; its sessions are signed out")


commands = [create_researcher_cmd, reset_password_cmd]
