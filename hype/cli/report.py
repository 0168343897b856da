"""`hype report STUDY -o report.html`: the study report as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from hype.cli.base import Context, fail, pass_ctx


@click.command("report")
@click.argument("study")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="HTML file to write.")
@click.option("--resamples", type=int, help="Bootstrap resamples over evaluators [default: the study's setting].")
@pass_ctx
def report_cmd(ctx: Context, study: str, output: Path, resamples: int | None) -> None:
    """Self-contained HTML report: settings, leaderboard with CIs, tests, distributions, staircases,
    automated metrics and their correlation with the human ranking, exclusions, sample images."""
    from hype import studies
    from hype.report import write_report

    if resamples is not None and resamples < 1:
        fail("--resamples must be >= 1")
    with ctx.session() as session:
        try:
            s = studies.find_study(session, study)
            path = write_report(session, ctx.config, s, output, n_resamples=resamples)
        except ValueError as exc:  # StudyError, SettingsError
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot write {output}: {exc}")
    click.echo(f"report written: {path} ({path.stat().st_size / 1024:.0f} KiB)")


commands = [report_cmd]
