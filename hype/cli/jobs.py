"""`hype worker` runs background jobs; `hype jobs` lists a study's jobs and how they ended."""

from __future__ import annotations

import click

from hype.cli.base import Context, fail, pass_ctx


@click.command("worker")
@click.option("--workers", default=1, show_default=True, type=int, help="Jobs run at the same time.")
@click.option("--processes", is_flag=True, help="Run jobs in processes rather than threads.")
@click.option("--nice", "niceness", default=10, show_default=True, type=click.IntRange(0, 19),
              help="Lower this process's CPU priority, so a server on the same machine answers workers first.")
@pass_ctx
def worker_cmd(ctx: Context, workers: int, processes: bool, niceness: int) -> None:
    """Run queued jobs (metrics, reports, imports) until stopped with Ctrl-C or SIGTERM.

    The queue is SQLite in the data dir, or Redis when HYPE_REDIS_URL is set. `hype serve` (without
    --production) and `hype demo` run one job worker themselves."""
    import logging
    import os

    from hype.jobs.queue import make_consumer, queue_description

    if niceness:
        os.nice(niceness)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    click.echo(f"hype worker: queue {queue_description(ctx.config)}, {workers} at a time; Ctrl-C stops")
    make_consumer(ctx.config, workers=workers, worker_type="process" if processes else "thread").run()


@click.command("jobs")
@click.argument("study")
@click.option("--limit", default=20, show_default=True, type=int)
@pass_ctx
def jobs_cmd(ctx: Context, study: str, limit: int) -> None:
    """A study's newest jobs: state, progress and errors."""
    from hype import studies
    from hype.jobs import job_view, jobs_of_study

    with ctx.session() as session:
        try:
            s = studies.find_study(session, study)
        except (ValueError, studies.StudyError) as exc:
            fail(str(exc))
        rows = [job_view(j) for j in jobs_of_study(session, s.id, limit)]
    if not rows:
        click.echo("no jobs yet")
    for v in rows:
        line = f"#{v['id']:<5} {v['label']:<16} {v['state']:<12} {v['percent']:>3}%  {v['message']}"
        click.echo(line + (f"\n       error: {v['error']}" if v["error"] else ""))


commands = [worker_cmd, jobs_cmd]
