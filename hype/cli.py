"""`hype` command line: a thin shell over the study services, scoring, metrics and the web app."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click
from sqlalchemy.orm import Session

from hype.config import Config, load_config
from hype.db import make_engine, make_session_factory


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
        factory = make_session_factory(self.engine)
        with factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


pass_ctx = click.make_pass_decorator(Context)


def fail(message: str) -> None:
    raise click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="HYPE_DATA_DIR", help="Where images, caches and the SQLite DB live.")
@click.option("--database-url", envvar="HYPE_DATABASE_URL", help="SQLAlchemy URL (default: SQLite in the data dir).")
@click.version_option(package_name="hype")
@click.pass_context
def main(ctx: click.Context, data_dir: str | None, database_url: str | None) -> None:
    """HYPE: human perceptual evaluation of generative image models."""
    ctx.obj = Context(data_dir, database_url)


@main.command("init-db")
@pass_ctx
def init_db(ctx: Context) -> None:
    """Create or upgrade the schema (alembic upgrade head)."""
    from hype.migrate import upgrade

    ctx.config.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(ctx.engine)
    click.echo(f"database ready: {ctx.engine.url.render_as_string(hide_password=True)}")


@main.command("create-study")
@click.argument("study_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Study name (when no study file is given).")
@click.option("--mode", type=click.Choice(["hype-infinity", "hype-time"]), help="Protocol.")
@click.option("--seed", type=int, help="Seed for all draws (random if omitted; stored either way).")
@click.option("--owner", help="Researcher e-mail that owns the study.")
@pass_ctx
def create_study_cmd(ctx: Context, study_file: Path | None, name: str | None, mode: str | None, seed: int | None, owner: str | None) -> None:
    """Create a study, from a YAML/JSON study file (which may also name image folders) or from options."""
    from hype import studies

    definition = studies.load_study_file(study_file) if study_file else {}
    name = name or definition.get("name")
    mode = mode or definition.get("mode")
    if not name or not mode:
        fail("give a study file, or --name and --mode")
    with ctx.session() as session:
        owner_id = _owner_id(session, owner)
        try:
            study = studies.create_study(
                session,
                name=name,
                mode=mode,
                seed=seed if seed is not None else definition.get("seed"),
                settings=definition.get("settings"),
                owner_id=owner_id,
                prolific_completion_url=definition.get("prolific_completion_url"),
            )
            resize = definition.get("resize")
            if definition.get("real"):
                _report(studies.import_images(session, ctx.config, study, Path(definition["real"]), pool="real", resize=resize, progress=True))
            for m in definition.get("models", []):
                studies.add_model(session, study, m["name"], m.get("description"))
                if m.get("images"):
                    _report(studies.import_images(session, ctx.config, study, Path(m["images"]), pool="fake", model_name=m["name"], resize=resize, progress=True))
        except ValueError as exc:
            fail(str(exc))
        click.echo(f"created study {study.id} {study.name!r} ({study.mode}, seed {study.seed}, slug {study.slug})")


def _owner_id(session: Session, email: str | None) -> int | None:
    if not email:
        return None
    from sqlalchemy import select

    from hype.models import Researcher

    rid = session.scalar(select(Researcher.id).where(Researcher.email == email.lower()))
    if rid is None:
        fail(f"no researcher {email!r}; create one with `hype create-researcher`")
    return rid


def _report(summary) -> None:
    where = f"model {summary.model!r}" if summary.model else "the real pool"
    click.echo(f"  imported {summary.added} images into {where} ({summary.width}x{summary.height})")


@main.command("import-images")
@click.argument("study")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--real", "pool", flag_value="real", help="Add to the real pool.")
@click.option("--model", "model_name", help="Add to this model's (fake) pool, creating the model if new.")
@click.option("--resize", help="Resize every image to WxH (e.g. 256x256).")
@pass_ctx
def import_images_cmd(ctx: Context, study: str, source: Path, pool: str | None, model_name: str | None, resize: str | None) -> None:
    """Import a folder or .zip of images, all-or-nothing."""
    from hype import studies

    if bool(pool) == bool(model_name):
        fail("say where the images go: --real, or --model NAME")
    size = _parse_size(resize) if resize else None
    with ctx.session() as session:
        try:
            s = studies.find_study(session, study)
            summary = studies.import_images(
                session, ctx.config, s, source, pool="real" if pool else "fake", model_name=model_name, resize=size, progress=True
            )
        except ValueError as exc:
            fail(str(exc))
        _report(summary)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
        return w, h
    except ValueError:
        fail(f"--resize is WIDTHxHEIGHT, e.g. 256x256, not {text!r}")
        raise


@main.command("publish")
@click.argument("study")
@pass_ctx
def publish_cmd(ctx: Context, study: str) -> None:
    """Check the pools and open the study to workers."""
    from hype import studies

    with ctx.session() as session:
        try:
            s = studies.find_study(session, study)
            studies.publish_study(session, ctx.config, s)
        except ValueError as exc:
            fail(str(exc))
        click.echo(f"published {s.name!r}: worker link /s/{s.slug}")


@main.command("close")
@click.argument("study")
@pass_ctx
def close_cmd(ctx: Context, study: str) -> None:
    """Stop new starts; running sessions may finish."""
    from hype import studies

    with ctx.session() as session:
        try:
            s = studies.find_study(session, study)
            studies.close_study(s)
        except ValueError as exc:
            fail(str(exc))
        click.echo(f"closed {s.name!r}")


@main.command("list")
@pass_ctx
def list_cmd(ctx: Context) -> None:
    """Studies with their pools."""
    from sqlalchemy import func, select

    from hype.models import Image, Study

    with ctx.session() as session:
        for s in session.scalars(select(Study).order_by(Study.id)):
            counts = dict(
                session.execute(
                    select(Image.pool, func.count()).where(Image.study_id == s.id).group_by(Image.pool)
                ).all()
            )
            click.echo(
                f"{s.id:>4}  {s.name:<30} {s.mode:<14} {s.status:<10} real={counts.get('real', 0)} "
                f"fake={counts.get('fake', 0)} models={len(s.models)}  /s/{s.slug}"
            )


@main.command("create-researcher")
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


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--production", is_flag=True, help="Serve with gunicorn (several worker processes).")
@click.option("--workers", default=4, show_default=True, type=int, help="gunicorn worker processes.")
@pass_ctx
def serve_cmd(ctx: Context, host: str, port: int, production: bool, workers: int) -> None:
    """Serve the platform (Flask's server for one machine, gunicorn with --production)."""
    from hype.serving import serve

    serve(ctx.config, host=host, port=port, production=production, workers=workers)


@main.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Build the demo studies and exit.")
@click.option("--images-per-pool", default=200, show_default=True, type=int)
@pass_ctx
def demo_cmd(ctx: Context, host: str, port: int, no_serve: bool, images_per_pool: int) -> None:
    """Build demo studies from bundled photographs (no network), print the links, serve."""
    from hype.demo import build_demo
    from hype.migrate import upgrade

    ctx.config.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(ctx.engine)
    with ctx.session() as session:
        info = build_demo(session, ctx.config, images_per_pool=images_per_pool, progress=True)
    base = f"http://{host}:{port}"
    click.echo("")
    click.echo(f"data dir:            {ctx.config.data_dir}")
    for line in info.describe(base):
        click.echo(line)
    if not no_serve:
        from hype.serving import serve

        serve(ctx.config, host=host, port=port, production=False, workers=1)


@main.command("score")
@click.option("--from-csv", "csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Per-participant summaries (id, model, error rates or counts), e.g. results run elsewhere.")
@click.option("--n-fake", default=100, show_default=True, help="Fake images per participant when the CSV has no n_fake column.")
@click.option("--n-real", default=100, show_default=True, help="Real images per participant when the CSV has no n_real column.")
@click.option("--resamples", default=10_000, show_default=True, help="Bootstrap resamples over evaluators.")
@click.option("--method", type=click.Choice(["percentile", "BCa", "expanded"]), default="percentile", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the leaderboard and tests as JSON.")
def score_cmd(csv_path: Path, n_fake: int, n_real: int, resamples: int, method: str, seed: int, as_json: bool) -> None:
    """HYPE-infinity leaderboard with bootstrap CIs, separability tests and ranking stability."""
    import json

    from hype.scoring import leaderboard
    from hype.summaries import SummaryError, read_summaries

    try:
        counts = read_summaries(csv_path, n_fake=n_fake, n_real=n_real)
        board = leaderboard(counts, n_resamples=resamples, method=method, seed=seed)
    except (SummaryError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(board.to_dict(), indent=2))
        return
    click.echo(f"{'#':>2}  {'model':<24} {'HYPE-inf %':>10}  {'95% CI':<13} {'fakes err':>9} {'reals err':>9} {'n':>4}  group")
    for r in board.rows:
        click.echo(
            f"{r.rank:>2}  {r.model:<24} {100 * r.estimate:>10.1f}  {100 * r.ci_low:5.1f}-{100 * r.ci_high:<7.1f}"
            f" {100 * r.fakes_error:>9.1f} {100 * r.reals_error:>9.1f} {r.n_evaluators:>4}  {r.letters}"
        )
    sep = board.separability.to_dict()
    click.echo(f"test: {sep.get('test')}  p = {sep.get('p_value')}")
    click.echo(f"ranking stability: the point ranking recurs in {100 * board.ranking.p_same_ranking:.1f}% of resamples")


@main.command("plan")
@click.option("--mode", type=click.Choice(["hype-infinity", "hype-time"]), default="hype-infinity", show_default=True)
@click.option("--evaluators", default="10,20,30,60,120", show_default=True, help="Comma-separated evaluator counts.")
@click.option("--trials", type=int, help="Trials per evaluator (HYPE-infinity) or per block (HYPE-time).")
@click.option("--simulations", default=200, show_default=True, help="Simulated studies per size.")
@click.option("--seed", default=0, show_default=True)
def plan_cmd(mode: str, evaluators: str, trials: int | None, simulations: int, seed: int) -> None:
    """Expected 95% CI half-width per number of evaluators, by simulation, to buy only what is needed."""
    from hype.simulate import plan_ci_halfwidth

    try:
        sizes = [int(v) for v in evaluators.split(",") if v.strip()]
    except ValueError:
        fail(f"--evaluators is a comma-separated list of integers, not {evaluators!r}")
    rows = plan_ci_halfwidth(mode, sizes, trials, n_sim=simulations, seed=seed)
    unit, scale = ("points", 100.0) if mode == "hype-infinity" else ("ms", 1.0)
    click.echo(f"{'evaluators':>10}  {'CI half-width (' + unit + ')':>24}  {'10%-90% of studies':>20}")
    for r in rows:
        click.echo(f"{r.n_evaluators:>10}  {scale * r.mean_halfwidth:>24.2f}  {scale * r.q10_halfwidth:>9.2f}-{scale * r.q90_halfwidth:<9.2f}")


@main.command("metrics")
@click.argument("study")
@click.option("--device", type=click.Choice(["cuda", "cpu"]), help="Default: CUDA when present, else CPU.")
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="Inception weights file (else HYPE_INCEPTION_WEIGHTS, else the packaged file).")
@pass_ctx
def metrics_cmd(ctx: Context, study: str, device: str | None, batch_size: int, weights: str | None) -> None:
    """FID, KID, PRD, precision/recall, density/coverage for every model, on the study's own images."""
    from hype import studies
    from hype.study_metrics import compute_study_metrics

    with ctx.session() as session:
        try:
            s = studies.find_study(session, study)
            results = compute_study_metrics(session, ctx.config, s, device=device, batch_size=batch_size, weights=weights)
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            fail(str(exc))
        click.echo(f"weights: {results[0].weights_source} (sha256 {results[0].weights_sha256[:12]}...), device {results[0].device}")
        click.echo(f"{'model':<20} {'FID':>8} {'KID':>8} {'F_8':>6} {'F_1/8':>6} {'prec':>6} {'recall':>6} {'dens':>6} {'cover':>6}")
        names = {m.id: m.name for m in s.models}
        for r in results:
            v, prd = r.values, r.values.get("prd") or {}
            def f(x, spec=".3f"):
                return "-" if x is None else format(x, spec)
            click.echo(
                f"{names[r.model_id]:<20} {f(v.get('fid'), '.2f'):>8} {f(v.get('kid_mean'), '.4f'):>8} {f(prd.get('f_8')):>6} "
                f"{f(prd.get('f_1_8')):>6} {f(v.get('precision')):>6} {f(v.get('recall')):>6} {f(v.get('density')):>6} {f(v.get('coverage')):>6}"
            )


def run() -> None:  # pragma: no cover
    main(prog_name="hype")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
