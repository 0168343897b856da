"""`hype compare STUDY STUDY…`: the models of several studies side by side, each with its own CI, and a
warning for every protocol setting that differs between them."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import click

from hype.cli.base import Context, fail, pass_ctx


@click.command("compare")
@click.argument("studies", nargs=-1, required=True)
@click.option("--resamples", type=int, help="Bootstrap resamples over evaluators [default: each study's setting].")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write a forest plot (PNG) here.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@pass_ctx
def compare_cmd(ctx: Context, studies: tuple[str, ...], resamples: int | None, plot_path: Path | None, as_json: bool) -> None:
    """Models of several studies (ids, slugs or names) side by side, e.g. training checkpoints each
    evaluated in its own study. Each score keeps its own CI; a warning names every setting that differs."""
    import json

    from hype import studies as study_service
    from hype.comparison import ComparisonError
    from hype.study_comparison import compare_studies

    if len(studies) < 2:
        fail("give at least two studies to compare")
    with ctx.session() as session:
        try:
            found = [study_service.find_study(session, ref) for ref in studies]
            if len({s.id for s in found}) < len(found):
                fail("a study is named twice")
            comparison = compare_studies(session, found, n_resamples=resamples)
        except (ValueError, ComparisonError) as exc:  # StudyError, ScoringError, ComparisonError
            fail(str(exc))
    if plot_path is not None:
        _write_plot(comparison, plot_path)
    if as_json:
        click.echo(json.dumps(comparison.to_dict(), indent=2))
        return
    infinity = comparison.mode == "hype-infinity"
    scale, unit = (100.0, "%") if infinity else (1.0, " ms")
    name = "HYPE-∞ error" if infinity else "HYPE-time"
    width = max([len(r.study) for r in comparison.rows] + [5])
    mwidth = max([len(r.model) for r in comparison.rows] + [5])
    click.echo(f"{'study':<{width}}  {'model':<{mwidth}}  {name:>13}  {'95% CI':>17}  evaluators")
    for r in comparison.rows:
        ci = "(too few for a CI)" if r.ci_low is None else f"{_num(r.ci_low, scale)}–{_num(r.ci_high, scale)}{unit}"
        click.echo(f"{r.study:<{width}}  {r.model:<{mwidth}}  {_num(r.estimate, scale) + unit:>13}  {ci:>17}  {r.n_evaluators:>10}")
    for line in comparison.unscored:
        click.echo(f"not scored: {line}")
    if comparison.differences:
        click.echo("\nWARNING: the studies' protocols differ, so their scores may not be comparable:")
        for line in comparison.differences:
            click.echo(f"  - {line}")
    else:
        click.echo("\nThe studies ran the same protocol.")
    if plot_path is not None:
        click.echo(f"forest plot written to {plot_path}")


def _num(value: float | None, scale: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{scale * value:.1f}"


def _write_plot(comparison, path: Path) -> None:
    from hype.comparison_plot import comparison_forest_plot

    uri = comparison_forest_plot(comparison)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(uri.split(",", 1)[1]))


commands = [compare_cmd]
