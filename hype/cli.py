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

# hype.scoring.METHODS, spelled out so `hype --help` need not import scipy (a test keeps them equal).
SCORING_METHODS = ("percentile", "BCa", "expanded")


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
@click.option("--threads", default=2, show_default=True, type=int, help="Threads per gunicorn worker.")
@pass_ctx
def serve_cmd(ctx: Context, host: str, port: int, production: bool, workers: int, threads: int) -> None:
    """Serve the platform (Flask's server for one machine, gunicorn with --production)."""
    from hype.serving import serve

    serve(ctx.config, host=host, port=port, production=production, workers=workers, threads=threads)


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
@click.argument("study", required=False)
@click.option("--from-csv", "csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Score per-participant summaries (id, model, error rates or counts) instead of a stored study.")
@click.option("--n-fake", type=int, help="(--from-csv) Fake images per participant when the CSV has no n_fake column [default: 100].")
@click.option("--n-real", type=int, help="(--from-csv) Real images per participant when the CSV has no n_real column [default: 100].")
@click.option("--resamples", type=int, help="Bootstrap resamples over evaluators [default: the study's setting; 10000 for --from-csv].")
@click.option("--method", type=click.Choice(SCORING_METHODS, case_sensitive=False), help="Bootstrap interval [default: percentile].")
@click.option("--seed", type=int, help="Bootstrap seed [default: the study seed; 0 for --from-csv].")
@click.option("--measured/--requested", default=None,
              help="(STUDY, HYPE-time) Score the measured on-screen exposures / the requested ones [default: the study's setting].")
@click.option("--include-incomplete", is_flag=True, help="(STUDY) Also score evaluators who have not completed their task.")
@click.option("--no-store", is_flag=True, help="(STUDY) Do not store this run as a score record.")
@click.option("--json", "as_json", is_flag=True, help="Print the leaderboard and tests as JSON.")
@pass_ctx
def score_cmd(ctx: Context, study: str | None, csv_path: Path | None, n_fake: int | None, n_real: int | None,
              resamples: int | None, method: str | None, seed: int | None, measured: bool | None,
              include_incomplete: bool, no_store: bool, as_json: bool) -> None:
    """HYPE leaderboard with bootstrap CIs, separability tests and ranking stability.

    `hype score STUDY` scores a stored study (id, slug or name) from its task judgments and stores the
    result; `hype score --from-csv FILE` scores per-participant summaries run elsewhere."""
    if (study is None) == (csv_path is None):
        fail("give exactly one of STUDY (a stored study's id, slug or name) or --from-csv FILE")
    if csv_path is not None:
        study_only = [name for name, used in (("--measured/--requested", measured is not None),
                                               ("--include-incomplete", include_incomplete), ("--no-store", no_store)) if used]
        if study_only:
            fail(f"{', '.join(study_only)} appl{'ies' if len(study_only) == 1 else 'y'} to a stored STUDY, not to --from-csv")
        _score_csv(csv_path, n_fake, n_real, resamples, method, seed, as_json)
        return
    if n_fake is not None or n_real is not None:
        fail("--n-fake/--n-real describe a --from-csv file; a stored study knows its own trials")
    _score_stored(ctx, study, resamples=resamples, method=method, seed=seed, measured=measured,
                  include_incomplete=include_incomplete, store=not no_store, as_json=as_json)


def _score_csv(csv_path: Path, n_fake: int | None, n_real: int | None, resamples: int | None, method: str | None,
               seed: int | None, as_json: bool) -> None:
    import json

    from hype.scoring import leaderboard
    from hype.summaries import SummaryError, read_summaries

    try:
        counts = read_summaries(csv_path, n_fake=100 if n_fake is None else n_fake, n_real=100 if n_real is None else n_real)
        board = leaderboard(counts, n_resamples=10_000 if resamples is None else resamples,
                            method=method or "percentile", seed=0 if seed is None else seed)
    except (SummaryError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(board.to_dict(), indent=2))
        return
    _echo_leaderboard(board)


def _score_stored(ctx: Context, ref: str, *, resamples: int | None, method: str | None, seed: int | None,
                  measured: bool | None, include_incomplete: bool, store: bool, as_json: bool) -> None:
    import json

    from hype import studies
    from hype.study_scoring import score_study, store_score

    with ctx.session() as session:
        try:
            s = studies.find_study(session, ref)
            score = score_study(session, s, method=method, n_resamples=resamples, seed=seed,
                                include_incomplete=include_incomplete, on_measured=measured)
        except ValueError as exc:  # StudyError, ScoringError, SettingsError
            fail(str(exc))
        record_id = store_score(session, s, score).id if store else None
    if as_json:
        click.echo(json.dumps({"score_record_id": record_id, **score.to_dict()}, indent=2))
        return
    _echo_study_score(score)
    click.echo(f"stored as score record {record_id}" if store else "not stored (--no-store)")


def _num(value: float | None, scale: float = 1.0, spec: str = ".1f") -> str:
    import math

    return "-" if value is None or not math.isfinite(value) else format(scale * value, spec)


def _echo_leaderboard(board) -> None:
    """The leaderboard table, the separability test and ranking stability (both input kinds)."""
    infinity = board.mode == "hype-infinity"
    scale = 100.0 if infinity else 1.0
    ci = f"{100 * board.confidence_level:g}% CI"
    if infinity:
        click.echo(f"{'#':>2}  {'model':<24} {'HYPE-inf %':>10}  {ci:<13} {'fakes err':>9} {'reals err':>9} {'n':>4}  group")
    else:
        click.echo(f"{'#':>2}  {'model':<24} {'HYPE-time ms':>12}  {ci:<13} {'n':>4}  group")
    for r in board.rows:
        interval = f"{_num(r.ci_low, scale)}-{_num(r.ci_high, scale)}"
        line = f"{r.rank:>2}  {r.model:<24} "
        if infinity:
            line += (f"{_num(r.estimate, scale):>10}  {interval:<13} {_num(r.fakes_error, scale):>9}"
                     f" {_num(r.reals_error, scale):>9}")
        else:
            line += f"{_num(r.estimate, scale):>12}  {interval:<13}"
        click.echo(f"{line} {r.n_evaluators:>4}  {r.letters}")
    _echo_separability(board.separability, "points" if infinity else "ms", scale)
    _echo_ranking(board.ranking)


def _echo_separability(sep, unit: str, scale: float) -> None:
    if sep is None:
        click.echo("separability: not tested (needs two models with at least two scored evaluators each)")
        return
    name = {"student-t": "unpaired t-test", "welch-t": "Welch t-test", "anova+tukey": "one-way ANOVA"}.get(sep.test, sep.test)
    stat = "F" if sep.test == "anova+tukey" else "t"
    verdict = "models differ" if sep.p_value < sep.alpha else "no significant difference"
    click.echo(f"separability ({name}): {stat} = {_num(sep.statistic, spec='.3f')}, p = {_num(sep.p_value, spec='.4g')}"
               f" -> {verdict} at alpha {sep.alpha:g}")
    if sep.test == "anova+tukey":
        click.echo("  Tukey HSD:")
    level = f"{100 * (1 - sep.alpha):g}% CI"
    indent = "    " if sep.test == "anova+tukey" else "  "
    for p in sep.pairwise:
        click.echo(f"{indent}{p.model_a} - {p.model_b}: {_num(p.difference, scale)} {unit} ({level} {_num(p.ci_low, scale)}"
                   f" to {_num(p.ci_high, scale)}), p = {_num(p.p_value, spec='.4g')}{' *' if p.significant else ''}")
    groups = ", ".join(f"{m} {letters}" for m, letters in sep.letters.items())
    click.echo(f"  groups (models sharing a letter are not separable): {groups}")


def _echo_ranking(ranking) -> None:
    if ranking is None:
        click.echo("ranking stability: needs at least two scored models")
        return
    held = ", ".join(f"{m} {100 * ranking.p_at_rank[m]:.1f}%" for m in ranking.ranking)
    click.echo(f"ranking stability: the point ranking recurs in {100 * ranking.p_same_ranking:.1f}% of resamples;"
               f" each model holds its rank in: {held}")


def _echo_study_score(score) -> None:
    s, t = score.settings, score.totals
    exposure = f", {s.exposure} exposure" if s.exposure else ""
    click.echo(f"study {score.study_name!r} ({s.mode}): {s.method} bootstrap, {s.n_resamples} resamples, seed {s.seed}{exposure}"
               f"{', incomplete evaluators included' if s.include_incomplete else ''}")
    _echo_leaderboard(score.leaderboard)
    if score.unscored_models:
        click.echo(f"not scored (no evaluators yet): {', '.join(score.unscored_models)}")
    click.echo(f"evaluators: {t.scored_evaluators} scored; left out: {t.excluded_evaluators} excluded,"
               f" {t.failed_qualification} failed qualification, {t.incomplete_evaluators} incomplete,"
               f" {t.no_trials_left} with no trial left")
    flagged = "flagged" if s.exclude_flagged_trials else "flagged (kept: exclude_flagged_trials is off)"
    missing = f", {t.missing_exposure_trials} without {s.exposure} exposure" if s.exposure else ""
    click.echo(f"trials: {t.scored_trials} scored; left out: {t.flagged_trials} {flagged}{missing},"
               f" {t.trials_of_left_out_evaluators} of left-out evaluators")
    _echo_metrics(score)


def _echo_metrics(score) -> None:
    if not score.metrics:
        return
    click.echo("automated metrics (newest run per model, same images):")
    click.echo(f"  {'model':<24} {'FID':>8} {'KID':>8} {'F_8':>6} {'F_1/8':>6} {'prec':>6} {'recall':>6} {'dens':>6} {'cover':>6}")
    order = [r.model for r in score.leaderboard.rows] + [m for m in sorted(score.metrics) if m not in {r.model for r in score.leaderboard.rows}]
    for model in order:
        v = score.metrics.get(model)
        if v is None:
            continue
        click.echo(
            f"  {model:<24} {_num(v.get('fid'), spec='.2f'):>8} {_num(v.get('kid_mean'), spec='.4f'):>8}"
            f" {_num(v.get('f_8'), spec='.3f'):>6} {_num(v.get('f_1_8'), spec='.3f'):>6} {_num(v.get('precision'), spec='.3f'):>6}"
            f" {_num(v.get('recall'), spec='.3f'):>6} {_num(v.get('density'), spec='.3f'):>6} {_num(v.get('coverage'), spec='.3f'):>6}"
        )


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


from hype import cli_report  # noqa: E402,F401  (registers report)


from hype import cli_exports  # noqa: E402,F401  (registers export / import-results)
