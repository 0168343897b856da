"""Database commands."""

from __future__ import annotations

import click

from hype.cli.base import Context, pass_ctx


@click.command("init-db")
@pass_ctx
def init_db(ctx: Context) -> None:
    """Create or upgrade the schema (alembic upgrade head)."""
    from hype.migrate import upgrade

    ctx.config.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(ctx.engine)
    click.echo(f"database ready: {ctx.engine.url.render_as_string(hide_password=True)}")


commands = [init_db]
