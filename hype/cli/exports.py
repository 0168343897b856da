"""`hype export` and `hype import-results`: a study's results out to csv / json / parquet, and back in
as a new study that scores the same."""

from __future__ import annotations

from pathlib import Path

import click

from hype.cli.base import Context, fail, owner_id, pass_ctx


@click.command("export")
@click.argument("study")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]), default="csv", show_default=True,
              help="csv: a folder of CSV files + study.json; json: one document; parquet: a folder (needs pyarrow).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Folder (csv, parquet), .json file (json), or .zip of any format [default: ./hype-export-<id>[.json]].")
@click.option("--raw-ids", is_flag=True,
              help="Also export raw worker ids, platform ids and user agents (personal data). Default: pseudonyms only.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@pass_ctx
def export_cmd(ctx: Context, study: str, fmt: str, output: Path | None, raw_ids: bool, force: bool) -> None:
    """Participants (pseudonymised), trials with their judgments and every timing field, images,
    exclusions, staircases and the study definition: enough to recompute every reported number."""
    from hype import exports, studies

    with ctx.session() as session:
        try:
            s = studies.find_study(session, study)
            bundle = exports.export_tables(session, s, raw_ids=raw_ids)
            if output is None:
                output = Path(f"{bundle.base_name()}.json" if fmt == "json" else bundle.base_name())
            written = exports.write_export(bundle, output, fmt, overwrite=force)
        except ValueError as exc:  # StudyError, ExportError
            fail(str(exc))
    c = bundle.definition["counts"]
    click.echo(f"exported study {s.id} {s.name!r} ({s.mode}, {fmt}): {c['evaluators']} evaluators, {c['trials']} trials "
               f"({c['judgments']} answered, {c['flagged_judgments']} flagged), {c['exclusions_in_force']} exclusions in force"
               f" + {c['exclusions_revoked']} revoked, {c['staircases']} staircases")
    for path in written:
        click.echo(f"  wrote {path}")
    if raw_ids:
        click.echo("warning: this export holds raw worker ids (personal data); share the pseudonymous export instead")
    else:
        click.echo("worker ids are pseudonymised (per-study salted HMAC); --raw-ids includes the raw ones")


@click.command("import-results")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", help="Name of the new study [default: the exported name + ' (imported)'].")
@click.option("--owner", help="E-mail of the researcher whose dashboard shows the study [default: the only researcher].")
@pass_ctx
def import_results_cmd(ctx: Context, path: Path, name: str | None, owner: str | None) -> None:
    """Create a new, closed study from an export (folder, .json or .zip) that scores exactly as the original."""
    from hype import exports

    with ctx.session() as session:
        owner_ref = owner_id(session, owner)
        try:
            s = exports.import_results(session, path, name=name)
            s.owner_id = owner_ref
        except ValueError as exc:  # ExportError, StudyError
            fail(str(exc))
        study_id, study_name, slug, mode = s.id, s.name, s.slug, s.mode
    click.echo(f"imported {path} as study {study_id} {study_name!r} ({mode}, closed, slug {slug})")
    click.echo(f"score it with: hype score {study_id}")


commands = [export_cmd, import_results_cmd]
