"""Researcher account commands."""

from __future__ import annotations

import click

from hype.cli.base import Context, fail, pass_ctx


@click.command("create-researcher")
@click.argument("email")
@click.password_option(help="Password (prompted if omitted).")
@pass_ctx
def create_researcher_cmd(ctx: Context, email: str, password: str) -> None:
    """Create a researcher account for the dashboard."""
    from hype.accounts import AccountError, create_researcher

    with ctx.session() as session:
        try:
            create_researcher(session, email, password)
        except AccountError as exc:
            fail(str(exc))
    click.echo(f"researcher {email} created")


commands = [create_researcher_cmd]
