"""Crowd platform commands: `hype prolific create|publish|sync|pay STUDY`, `hype mturk create|sync|pay
STUDY`, and `hype bonus-sheet STUDY`. Thin shells over hype.platforms.service."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import click

from hype.cli.base import Context, fail, pass_ctx


@contextmanager
def _platform_errors() -> Iterator[None]:
    """Platform and credential failures as one line for a person, never a traceback."""
    from hype.platforms import PlatformError
    from hype.studies import StudyError

    try:
        yield
    except (PlatformError, StudyError) as exc:
        fail(str(exc))
    except Exception as exc:  # botocore: NoCredentialsError, ClientError, EndpointConnectionError
        module = type(exc).__module__ or ""
        if module.startswith("botocore"):
            fail(f"MTurk: {exc}")
        raise


def _worker_link(ctx: Context, slug: str) -> str:
    config = ctx.config
    if not config.public_url:
        fail("set HYPE_PUBLIC_URL to the https:// address workers reach this server at (see README: Launching a study)")
    from hype.app import create_app
    from hype.web import external_url

    app = create_app(config)
    with app.test_request_context("/"):
        return external_url("worker.start", slug=slug)


def _pay_lines(ctx: Context, study) -> None:
    from hype.platforms.service import pay_for

    pay = pay_for(study)
    minutes = f"{pay.rounded_minutes} minute{'' if pay.rounded_minutes == 1 else 's'}"
    click.echo(f"  about {minutes}; base ${pay.base_usd:.2f} (${pay.base_hourly_usd:.2f}/hour), "
               f"bonus ${pay.bonus_per_correct_usd:.2f} per correct answer (up to ${pay.max_bonus_usd:.2f})")
    warning = pay.warning(ctx.config.min_hourly_usd)
    if warning:
        click.secho(f"  warning: {warning}", fg="yellow", err=True)


def _echo_report(report) -> None:
    for line in report.lines:
        click.echo(f"  {line}")
    click.echo(report.summary())


# -- Prolific -------------------------------------------------------------------------------------------


@click.group("prolific")
def prolific_group() -> None:
    """List a study on Prolific, review submissions, pay bonuses (token: HYPE_PROLIFIC_TOKEN)."""


@prolific_group.command("create")
@click.argument("study")
@click.option("--places", type=int, help="Participants wanted (default: evaluators per model × models).")
@pass_ctx
def prolific_create_cmd(ctx: Context, study: str, places: int | None) -> None:
    """Create a draft study on Prolific with hype's link, codes, places, time and reward."""
    from hype.platforms import service
    from hype.platforms.prolific import ProlificClient
    from hype.studies import find_study

    with _platform_errors(), ctx.session() as session:
        s = find_study(session, study)
        link = _worker_link(ctx, s.slug)
        record, created = service.prolific_create(session, s, ProlificClient.from_env(), link=link, places=places)
        verb = "created" if created else "already has"
        click.echo(f"study {s.id} {verb} Prolific draft study {record.external_id}: {record.places} places")
        _pay_lines(ctx, s)
        click.echo(f"  study URL: {service.prolific_study_url(link)}")
        click.echo(f"next: check the draft on app.prolific.com (filters, devices), then `hype prolific publish {s.id}`")


@prolific_group.command("publish")
@click.argument("study")
@pass_ctx
def prolific_publish_cmd(ctx: Context, study: str) -> None:
    """Publish the Prolific study: participants can take part from now on."""
    from hype.platforms import service
    from hype.platforms.prolific import ProlificClient
    from hype.studies import find_study

    with _platform_errors(), ctx.session() as session:
        s = find_study(session, study)
        record = service.prolific_publish(session, s, ProlificClient.from_env())
        click.echo(f"published Prolific study {record.external_id} ({record.status}); `hype prolific sync {s.id}` reviews submissions")


@prolific_group.command("sync")
@click.argument("study")
@pass_ctx
def prolific_sync_cmd(ctx: Context, study: str) -> None:
    """Match submissions to hype sessions; approve the finished, ask the rest to return (with the reason)."""
    from hype.platforms import service
    from hype.platforms.prolific import ProlificClient
    from hype.studies import find_study

    with _platform_errors(), ctx.session() as session:
        s = find_study(session, study)
        _echo_report(service.prolific_sync(session, s, ProlificClient.from_env()))


@prolific_group.command("pay")
@click.argument("study")
@click.option("--confirm-paid", is_flag=True, help="Bonuses left unconfirmed by an interrupted run were paid (checked on Prolific).")
@click.option("--retry-unconfirmed", is_flag=True, help="Bonuses left unconfirmed were NOT paid (checked on Prolific): pay them now.")
@pass_ctx
def prolific_pay_cmd(ctx: Context, study: str, confirm_paid: bool, retry_unconfirmed: bool) -> None:
    """Pay every approved worker's bonus in one bulk payment; a bonus already paid is skipped."""
    from hype.platforms import service
    from hype.platforms.prolific import ProlificClient
    from hype.studies import find_study

    if confirm_paid and retry_unconfirmed:
        fail("choose --confirm-paid or --retry-unconfirmed, not both")
    with _platform_errors(), ctx.session() as session:
        s = find_study(session, study)
        if confirm_paid or retry_unconfirmed:
            n = service.resolve_unconfirmed(session, s, "prolific", paid=confirm_paid)
            click.echo(f"{n} unconfirmed bonus(es) marked {'paid' if confirm_paid else 'to pay again'}")
        _echo_report(service.prolific_pay(session, s, ProlificClient.from_env()))


# -- MTurk ------------------------------------------------------------------------------------------------

_production = click.option("--production", is_flag=True, help="Use the real MTurk marketplace (real money). Default: the sandbox.")


def _mturk_client(production: bool):
    from hype.platforms.mturk import make_client

    if production:
        click.secho("MTurk PRODUCTION: real workers, real money", fg="red", err=True)
    else:
        click.echo("MTurk sandbox (add --production for the real marketplace)", err=True)
    return make_client(production=production)


@click.group("mturk")
def mturk_group() -> None:
    """Post a HIT on MTurk, review assignments, pay bonuses (sandbox unless --production)."""


@mturk_group.command("create")
@click.argument("study")
@_production
@click.option("--places", type=int, help="Assignments wanted (default: evaluators per model × models).")
@click.option("--min-approval-rate", type=click.IntRange(0, 100), default=98, show_default=True)
@click.option("--min-approved", type=click.IntRange(0), default=1000, show_default=True, help="Approved HITs a worker needs.")
@click.option("--locale", "locales", multiple=True, default=("US",), show_default=True, help="Worker country (repeatable).")
@pass_ctx
def mturk_create_cmd(ctx: Context, study: str, production: bool, places: int | None, min_approval_rate: int, min_approved: int,
                     locales: tuple[str, ...]) -> None:
    """Create the HIT: an ExternalQuestion on hype's link, with worker qualification requirements."""
    from hype.platforms import service
    from hype.platforms.mturk import WorkerRequirements
    from hype.studies import find_study

    with _platform_errors(), ctx.session() as session:
        s = find_study(session, study)
        link = _worker_link(ctx, s.slug)
        requirements = WorkerRequirements(min_approval_rate, min_approved, tuple(locales))
        record, created = service.mturk_create(session, s, _mturk_client(production), link=link, places=places, production=production,
                                               requirements=requirements)
        verb = "created" if created else "already has"
        click.echo(f"study {s.id} {verb} MTurk HIT {record.external_id} ({'sandbox' if record.sandbox else 'production'}): {record.places} assignments")
        _pay_lines(ctx, s)
        site = "https://workersandbox.mturk.com" if record.sandbox else "https://worker.mturk.com"
        click.echo(f"  workers: {site}/projects?filters%5Bsearch_term%5D={record.external_id}")
        click.echo(f"next: `hype mturk sync {s.id}{' --production' if production else ''}` reviews submitted assignments")


@mturk_group.command("sync")
@click.argument("study")
@_production
@click.option("--reject-excluded", is_flag=True, help="Reject excluded workers' assignments (default: leave them for you to decide).")
@pass_ctx
def mturk_sync_cmd(ctx: Context, study: str, production: bool, reject_excluded: bool) -> None:
    """Match assignments to hype sessions by completion code; approve the finished, flag the rest."""
    from hype.platforms import service
    from hype.studies import find_study

    with _platform_errors(), ctx.session() as session:
        s = find_study(session, study)
        _echo_report(service.mturk_sync(session, s, _mturk_client(production), production=production, reject_excluded=reject_excluded))


@mturk_group.command("pay")
@click.argument("study")
@_production
@pass_ctx
def mturk_pay_cmd(ctx: Context, study: str, production: bool) -> None:
    """SendBonus to every approved worker, once each (a retry carries the same UniqueRequestToken)."""
    from hype.platforms import service
    from hype.studies import find_study

    with _platform_errors(), ctx.session() as session:
        s = find_study(session, study)
        _echo_report(service.mturk_pay(session, s, _mturk_client(production), production=production))


# -- bonus sheets --------------------------------------------------------------------------------------------


@click.command("bonus-sheet")
@click.argument("study")
@click.option("--format", "fmt", type=click.Choice(["hype", "mturk", "prolific"]), default="hype", show_default=True)
@click.option("-o", "--output", type=click.File("w"), default="-", help="File to write (default: standard output).")
@pass_ctx
def bonus_sheet_cmd(ctx: Context, study: str, fmt: str, output) -> None:
    """Bonuses owed, excluded workers left out, in hype's or a platform's own format."""
    from hype.platforms.sheets import bonus_sheet
    from hype.studies import find_study

    with _platform_errors(), ctx.session() as session:
        output.write(bonus_sheet(session, find_study(session, study), fmt))


commands = [prolific_group, mturk_group, bonus_sheet_cmd]
