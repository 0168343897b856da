"""What each kind of job does. Each reads what it needs in a short read, computes with no database
transaction open, then stores its results and its end in one short transaction: a job killed
halfway leaves nothing, and can be started again."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

from hype.jobs.records import JobError
from hype.jobs.runner import JobContext
from hype.models import Study


def _study(session, ctx: JobContext) -> Study:
    study = session.get(Study, ctx.study_id)
    if study is None:
        raise JobError("the study was deleted")
    return study


METRICS_ENV = "HYPE_METRICS"


def default_metrics() -> list[str] | None:
    """HYPE_METRICS (e.g. "kid,prd,prdc"): the metrics a job computes when not told; unset = all. FID's
    2048-d eigendecompositions are the slow part on a small CPU server."""
    from hype.metrics.runner import ALL_METRICS

    names = [n.strip().lower() for n in os.environ.get(METRICS_ENV, "").split(",") if n.strip()]
    unknown = sorted(set(names) - set(ALL_METRICS))
    if unknown:
        raise JobError(f"{METRICS_ENV} names unknown metrics {unknown}; choose from {', '.join(ALL_METRICS)}")
    return names or None


def metrics_job(ctx: JobContext) -> None:
    """FD, KID, PRD, P/R, D/C (CMMD on CLIP) per model (params: encoder, weights, device, batch_size, n_boot,
    metrics: a subset)."""
    from hype.study_metrics import compute_metric_values, metric_inputs, store_metric_results

    with ctx.read() as session:
        inputs = metric_inputs(session, _study(session, ctx))
    p = ctx.params
    computed = compute_metric_values(ctx.config, inputs, device=p.get("device"), batch_size=int(p.get("batch_size", 64)),
                                     weights=p.get("weights"), encoder=p.get("encoder") or "inception",
                                     n_boot=p.get("n_boot"), on_progress=ctx.progress,
                                     progress=bool(p.get("show_progress")),
                                     metrics=p.get("metrics") or default_metrics())
    with ctx.write() as session:
        results = store_metric_results(session, inputs.study_id, computed)
        ctx.finish(session, {"metric_result_ids": [r.id for r in results], "models": len(results),
                             "encoder": p.get("encoder") or "inception",
                             "weights_sha256": computed[0].weights_sha256, "device": computed[0].device},
                   f"metrics stored for {len(results)} model(s)")


def reports_dir(ctx_config) -> Path:
    return ctx_config.data_dir / "reports"


def report_job(ctx: JobContext) -> None:
    """The HTML report, rendered to a file in the data dir (the dashboard serves it). The render reads
    one snapshot; the file appears whole (written aside, then renamed) or not at all."""
    from hype.report import build_report

    with ctx.read() as session:
        study = _study(session, ctx)
        ctx.progress(0.1, "scoring and rendering")
        html = build_report(session, ctx.config, study, n_resamples=ctx.params.get("n_resamples"))
        slug = study.slug
    out_dir = reports_dir(ctx.config)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"hype-report-{slug}-job{ctx.job_id}.html"
    tmp = out_dir / f".{name}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out_dir / name)
    with ctx.write() as session:
        ctx.finish(session, {"file": name, "bytes": len(html.encode("utf-8"))}, "report rendered")


def import_job(ctx: JobContext) -> None:
    """A zip or server folder into a pool (params: source, pool, model_name, resize, remove_source).
    Images are validated and re-encoded before one short transaction adds them all, or none."""
    from hype.studies import import_images

    p = ctx.params
    source = Path(p["source"])
    try:
        with ctx.write() as session:
            study = _study(session, ctx)
            ctx.progress(0.05, "validating and re-encoding images")
            resize = tuple(p["resize"]) if p.get("resize") else None
            summary = import_images(session, ctx.config, study, source, pool=p["pool"], model_name=p.get("model_name"),
                                    resize=resize)
            target = "the real pool" if p["pool"] == "real" else p.get("model_name")
            ctx.finish(session, {"added": summary.added, "width": summary.width, "height": summary.height},
                       f"added {summary.added} images ({summary.width}×{summary.height}) to {target}")
    finally:
        if p.get("remove_source"):
            if source.is_dir():
                shutil.rmtree(source, ignore_errors=True)
            else:
                source.unlink(missing_ok=True)


def forecast_job(ctx: JobContext) -> None:
    """The Certainty card's forecast of evaluators and cost still needed, for the models whose cached one
    is stale (hype.stopping_state): a QUEST+ study's simulation takes seconds, too long for a page."""
    from hype.stopping_state import compute_forecast_job

    ctx.progress(0.05, "simulating the rest of each model's collection")
    compute_forecast_job(ctx.read, ctx.write, ctx.study_id,
                         finish=lambda session, result: ctx.finish(session, result,
                                                                   f"forecast stored for {result['stored']} model(s)"))


KINDS: dict[str, Callable[[JobContext], None]] = {"metrics": metrics_job, "report": report_job, "import": import_job,
                                                  "forecast": forecast_job}
