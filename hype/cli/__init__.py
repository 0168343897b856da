"""`hype` command line: thin shells over the study services, scoring, metrics and the web app.

One module per command group; each exposes `commands`, and this package assembles them into the
`hype` group, so no command module imports another (or this one)."""

from __future__ import annotations

import sys

import click

from hype.cli import accounts, compare, database, exports, jobs, metrics, platforms, proxy, report, scoring, serve, studies
from hype.cli.base import Context
from hype.cli.scoring import SCORING_METHODS

__all__ = ["main", "SCORING_METHODS"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="HYPE_DATA_DIR", help="Where images, caches and the SQLite DB live.")
@click.option("--database-url", envvar="HYPE_DATABASE_URL", help="SQLAlchemy URL (default: SQLite in the data dir).")
@click.version_option(package_name="hype")
@click.pass_context
def main(ctx: click.Context, data_dir: str | None, database_url: str | None) -> None:
    """HYPE: human perceptual evaluation of generative image models."""
    ctx.obj = Context(data_dir, database_url)


for _module in (database, studies, accounts, serve, proxy, scoring, compare, metrics, jobs, report, exports, platforms):
    for _command in _module.commands:
        main.add_command(_command)


def run() -> None:  # pragma: no cover
    main(prog_name="hype")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
