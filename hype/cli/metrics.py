"""`hype metrics`: the automated metrics for every model of a study, on its own images."""

from __future__ import annotations

import click

from hype.cli.base import Context, fail, pass_ctx


@click.command("metrics")
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


commands = [metrics_cmd]
