"""Serving commands: the platform itself, and the demo that builds studies and serves them."""

from __future__ import annotations

import click

from hype.cli.base import Context, fail, pass_ctx


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--production", is_flag=True, help="Serve with gunicorn (several worker processes).")
@click.option("--workers", default=4, show_default=True, type=int, help="gunicorn worker processes.")
@click.option("--threads", default=2, show_default=True, type=int, help="Threads per gunicorn worker (gthread only).")
@click.option("--worker-class", type=click.Choice(["sync", "gthread"]), default="gthread", hidden=True,
              help="gunicorn's worker model, for experiments/bench_serving.py's A/B (sync measured worse: hype.serving).")
@click.option("--behind-nginx", is_flag=True, envvar="HYPE_BEHIND_NGINX",
              help="Behind the nginx of `hype nginx-config`: nginx sends the images, client addresses from X-Forwarded-For.")
@click.option("--no-job-worker", is_flag=True, help="Without --production: do not run a job worker beside the server.")
@pass_ctx
def serve_cmd(ctx: Context, host: str, port: int, production: bool, workers: int, threads: int,
              worker_class: str | None, behind_nginx: bool, no_job_worker: bool) -> None:
    """Serve the platform (Flask's server for one machine, gunicorn with --production).

    Flask's server runs a job worker beside it; with --production, run `hype worker` yourself."""
    from hype.serving import serve

    config = ctx.config.with_overrides(behind_nginx=True) if behind_nginx else ctx.config
    if production:
        click.echo("background jobs (metrics, reports, QUEST+ forecasts) run in `hype worker`: start it beside the server")
    serve(config, host=host, port=port, production=production, workers=workers, threads=threads,
          job_worker=not no_job_worker, worker_class=worker_class)


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Build the demo studies and exit.")
@click.option("--images-per-pool", default=200, show_default=True, type=int)
@pass_ctx
def demo_cmd(ctx: Context, host: str, port: int, no_serve: bool, images_per_pool: int) -> None:
    """Build demo studies from bundled photographs (no network), print the links, serve."""
    from hype.demo import build_demo
    from hype.migrate import upgrade
    from hype.studies import StudyError

    ctx.config.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(ctx.engine)
    try:
        with ctx.session() as session:
            info = build_demo(session, ctx.config, images_per_pool=images_per_pool, progress=True)
    except StudyError as exc:  # e.g. too few images for the demo protocol: the studies are rolled back
        fail(f"demo not built: {exc} (try a larger --images-per-pool; the default is 200)")
    base = f"http://{host}:{port}"
    click.echo("")
    click.echo(f"data dir:            {ctx.config.data_dir}")
    for line in info.describe(base):
        click.echo(line)
    if not no_serve:
        from hype.serving import serve

        serve(ctx.config, host=host, port=port, production=False, workers=1)


commands = [serve_cmd, demo_cmd]
