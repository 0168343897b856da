"""`hype report STUDY -o report.html`: the study report as one self-contained HTML file.

`--enqueue` hands the rendering to `hype worker` instead (the report job the dashboard's button runs), for a
study so large that scoring it should not tie up the researcher's terminal; the file then appears in the
data dir's reports folder and on the dashboard."""

from __future__ import annotations

from pathlib import Path

import click

from hype.cli.base import Context, fail, pass_ctx, submit_job


@click.command("report")
@click.argument("study")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="HTML file to write.")
@click.option("--resamples", type=int, help="Bootstrap resamples over evaluators [default: the study's setting].")
@click.option("--enqueue", is_flag=True, help="Queue the report job for `hype worker` and return; the file appears "
              "under the data dir's reports/ and on the dashboard (-o is then not used).")
@pass_ctx
def report_cmd(ctx: Context, study: str, output: Path, resamples: int | None, enqueue: bool) -> None:
    """Self-contained HTML report: settings, leaderboard with CIs, tests, distributions, staircases,
    automated metrics and their correlation with the human ranking, exclusions, sample images."""
    from hype import studies
    from hype.report import write_report

    if resamples is not None and resamples < 1:
        fail("--resamples must be >= 1")
    if enqueue:
        submit_job(ctx, study, "report", {"n_resamples": resamples})
        return
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
