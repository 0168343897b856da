"""Study lifecycle commands: create, import images, publish, close, reopen, recruitment, transfer, list."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.orm import Session

from hype.cli.base import Context, fail, owner_id, pass_ctx, user_errors


@click.command("create-study")
@click.argument("study_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Study name (when no study file is given).")
@click.option("--mode", type=click.Choice(["hype-infinity", "hype-time"]), help="Protocol.")
@click.option("--seed", type=int, help="Seed for all draws (random if omitted; stored either way).")
@click.option("--owner", help="E-mail of the researcher whose dashboard shows the study [default: the only researcher].")
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
        owner = owner_id(session, owner)
        try:
            study = studies.create_study(
                session,
                name=name,
                mode=mode,
                seed=seed if seed is not None else definition.get("seed"),
                settings=definition.get("settings"),
                owner_id=owner,
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
        click.echo(f"created study {study.id} {study.name!r} ({study.mode}, seed {study.seed}, slug {study.slug})"
                   + (f", owned by {study.owner.email}" if study.owner else ""))


def _report(summary) -> None:
    where = f"model {summary.model!r}" if summary.model else "the real pool"
    click.echo(f"  imported {summary.added} images into {where} ({summary.width}x{summary.height})")


@click.command("import-images")
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


@click.command("publish")
@click.argument("study")
@pass_ctx
def publish_cmd(ctx: Context, study: str) -> None:
    """Check the pools and open the study to workers."""
    from hype import studies

    with ctx.session() as session, user_errors():
        s = studies.find_study(session, study)
        studies.publish_study(session, ctx.config, s)
        click.echo(f"published {s.name!r}: worker link /s/{s.slug}")


@click.command("close")
@click.argument("study")
@pass_ctx
def close_cmd(ctx: Context, study: str) -> None:
    """Stop new starts; running sessions may finish."""
    from hype import studies

    with ctx.session() as session, user_errors():
        s = studies.find_study(session, study)
        studies.close_study(s)
        click.echo(f"closed {s.name!r}")


@click.command("reopen")
@click.argument("study")
@pass_ctx
def reopen_cmd(ctx: Context, study: str) -> None:
    """Take new workers again after closing (e.g. to replace excluded workers)."""
    from hype import recruitment, studies

    with ctx.session() as session, user_errors():
        s = studies.find_study(session, study)
        studies.reopen_study(session, s)
        click.echo(f"reopened {s.name!r}: worker link /s/{s.slug}")
        if recruitment.is_complete(recruitment.model_slots(session, s)):
            click.echo("every model already has its evaluators: raise the target with `hype recruitment STUDY --evaluators N`")


@click.command("recruitment")
@click.argument("study")
@click.option("--evaluators", "evaluators", type=int, help="Valid evaluators each model needs (may change after publishing).")
@click.option("--idle-minutes", type=float, help="Minutes without activity after which a session is abandoned.")
@click.option("--close-when-complete/--stay-open", default=None, help="Close the study by itself once every model is full.")
@click.option("--target-halfwidth", type=float, help="Stop a model once its CI half-width is this narrow (points for "
              "HYPE-infinity, ms for HYPE-time; 0 = no target); its slots go to the other models.")
@pass_ctx
def recruitment_cmd(ctx: Context, study: str, evaluators: int | None, idle_minutes: float | None, close_when_complete: bool | None,
                    target_halfwidth: float | None) -> None:
    """Show each model's valid / target, working, excluded and abandoned evaluators; options change the settings."""
    from hype import recruitment, studies

    with ctx.session() as session:
        try:
            s = studies.find_study(session, study)
            if (evaluators, idle_minutes, close_when_complete, target_halfwidth) != (None, None, None, None):
                recruitment.set_recruitment(session, s, evaluators_per_model=evaluators, idle_timeout_minutes=idle_minutes,
                                            close_when_complete=close_when_complete, target_halfwidth=target_halfwidth)
        except ValueError as exc:
            fail(str(exc))
        settings = studies.study_settings(s)
        slots = recruitment.model_slots(session, s)
        r = settings.recruitment
        click.echo(f"{s.name!r} ({s.status}): {settings.evaluators_per_model} valid evaluators per model; idle sessions "
                   f"abandoned after {r.idle_timeout_minutes:g} min; {'closes' if r.close_when_complete else 'stays open'} when complete")
        click.echo(f"  {'model':<24} {'valid/target':>12} {'working':>8} {'excluded':>9} {'abandoned':>10} {'failed':>7}")
        for m in slots:
            state = "target certainty reached" if m.stopped else "complete" if m.full else f"{m.missing} more needed"
            click.echo(f"  {m.model:<24} {f'{m.valid}/{m.target}':>12} {m.in_progress:>8} {m.excluded:>9} {m.abandoned:>10} {m.failed:>7}  {state}")
        if recruitment.is_complete(slots):
            click.echo("the study is complete: every model has its valid evaluators")


@click.command("transfer")
@click.argument("study")
@click.argument("email")
@pass_ctx
def transfer_cmd(ctx: Context, study: str, email: str) -> None:
    """Give a study to another researcher: it moves to their dashboard."""
    from hype import studies
    from hype.accounts import find_researcher

    with ctx.session() as session:
        try:
            s = studies.find_study(session, study)
            researcher = find_researcher(session, email)
            before = s.owner.email if s.owner else None
            studies.transfer_study(session, s, researcher.id)
        except ValueError as exc:
            fail(str(exc))
        click.echo(f"study {s.id} {s.name!r} now belongs to {researcher.email}" + (f" (was {before})" if before else ""))


@click.command("list")
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
                f"fake={counts.get('fake', 0)} models={len(s.models)}  /s/{s.slug}  owner={s.owner.email if s.owner else '-'}"
            )


commands = [create_study_cmd, import_images_cmd, publish_cmd, close_cmd, reopen_cmd, recruitment_cmd, transfer_cmd, list_cmd]
