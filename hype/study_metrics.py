"""Automated metrics for every model of a study against its real pool, stored with their encoder and weights.

The thin DB-aware shell over hype.metrics, in three steps so that no database transaction is open
while the network runs (on SQLite a write transaction held for minutes blocks every worker's
answer): `metric_inputs` reads the pools (one short read), `compute_metric_values` embeds each pool
once per encoder through the feature cache and scores it with no database at all, and
`store_metric_results` adds one MetricResult per model in the caller's (short) transaction. Either
every model's result is stored or none is. The encoder's name is in ``values["encoder"]``; results
stored before encoders existed are Inception's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hype.config import Config
from hype.images import store_path
from hype.models import Image, MetricResult, Study

DEFAULT_ENCODER = "inception"  # hype.metrics.encoders.DEFAULT_ENCODER, without importing torch here

#: on_progress(fraction in [0, 1], message for a person)
ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class MetricInputs:
    """What the computation needs from the database: the study's seed and its pools' file hashes."""

    study_id: int
    seed: int
    real: list[str]
    models: list[tuple[int, str, list[str]]]  # (model id, name, file hashes)

    @property
    def n_images(self) -> int:
        return len(self.real) + sum(len(h) for _, _, h in self.models)


@dataclass(frozen=True)
class ComputedMetrics:
    model_id: int
    values: dict[str, Any]
    weights_sha256: str
    weights_source: str
    device: str


def metric_inputs(session: Session, study: Study) -> MetricInputs:
    def hashes(*where) -> list[str]:
        rows = session.execute(
            select(Image.file_sha256).where(Image.study_id == study.id, *where).order_by(Image.file_sha256)
        )
        return [r.file_sha256 for r in rows]

    models = [(m.id, m.name, hashes(Image.pool == "fake", Image.model_id == m.id)) for m in study.models]
    if not models:
        raise ValueError(f"study {study.name!r} has no models to compute metrics for")
    real = hashes(Image.pool == "real")
    if not real:
        raise ValueError(f"study {study.name!r} has no real images to compare the models with")
    return MetricInputs(study.id, study.seed, real, models)


def compute_metric_values(
    config: Config,
    inputs: MetricInputs,
    *,
    device: str | None = None,
    batch_size: int = 64,
    weights: str | None = None,
    encoder: str = DEFAULT_ENCODER,
    n_boot: int | None = None,
    ci: bool = True,
    progress: bool = False,
    on_progress: ProgressCallback | None = None,
    metrics: tuple[str, ...] | None = None,
) -> list[ComputedMetrics]:
    """Features (through the cache) and the metrics (default: the encoder's set) per model; touches no database.

    ``weights``: a file (Inception) or snapshot directory (DINOv2, CLIP); None resolves it from the
    encoder's environment variable or ``<data dir>/weights/<encoder>``. Progress counts embedded
    images up to 90%, the metrics the rest (FID's two 2048-d eigendecompositions and the intervals
    take a while per model on a busy 2-core CPU)."""
    from hype.metrics import FeatureCache, compute_all_metrics, pool_features, pool_key_from_hashes
    from hype.metrics.bootstrap import DEFAULT_N_BOOT
    from hype.metrics.encoders import WEIGHTS_SUBDIR, load_encoder

    report = on_progress or (lambda fraction, message: None)
    report(0.0, f"loading the {encoder} network")
    extractor = load_encoder(encoder, weights, device, search_dirs=[config.data_dir / WEIGHTS_SUBDIR])
    cache = FeatureCache(config.feature_cache_dir)
    total = max(inputs.n_images, 1)
    done = 0

    def features(hashes: list[str], label: str):
        nonlocal done
        before = done
        report(0.9 * before / total, f"features of {label}")
        paths = [store_path(config.image_store, h) for h in hashes]

        def on_batch(n: int) -> None:
            report(0.9 * (before + n) / total, f"features of {label}: {n} / {len(hashes)} images")

        feats = pool_features(paths, pool_key_from_hashes(hashes), extractor, cache, batch_size=batch_size,
                              progress=progress, on_batch=on_batch)
        done = before + len(hashes)
        return feats

    real = features(inputs.real, "the real images")
    out = []
    for i, (model_id, name, hashes) in enumerate(inputs.models):
        fake = features(hashes, name)
        report(0.9 * done / total + 0.1 * i / len(inputs.models), f"metrics of {name}")
        values = compute_all_metrics(
            real, fake, seed=inputs.seed, device=device, errors="record", feature_info=extractor.info(),
            prd_enforce_balance=False, ci=ci, n_boot=n_boot or DEFAULT_N_BOOT, metrics=tuple(metrics) if metrics else None,
        )
        out.append(ComputedMetrics(model_id, values, extractor.weights_sha256, extractor.weights_source[:500],
                                   str(extractor.device)))
    report(1.0, "metrics computed")
    return out


def store_metric_results(session: Session, study_id: int, computed: list[ComputedMetrics]) -> list[MetricResult]:
    results = [
        MetricResult(study_id=study_id, model_id=c.model_id, values=c.values, weights_sha256=c.weights_sha256,
                     weights_source=c.weights_source, device=c.device)
        for c in computed
    ]
    session.add_all(results)
    session.flush()
    return results


def compute_study_metrics(
    session: Session,
    config: Config,
    study: Study,
    *,
    device: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
    weights: str | None = None,
    encoder: str = DEFAULT_ENCODER,
    n_boot: int | None = None,
    ci: bool = True,
) -> list[MetricResult]:
    """All three steps on one session (tests, scripts); the caller commits. The platform itself runs
    them as a background job (hype.jobs), which closes its read before computing."""
    inputs = metric_inputs(session, study)
    computed = compute_metric_values(config, inputs, device=device, batch_size=batch_size, weights=weights,
                                     encoder=encoder, n_boot=n_boot, ci=ci, progress=progress)
    return store_metric_results(session, study.id, computed)


def result_encoder(result: MetricResult) -> str:
    return (result.values or {}).get("encoder") or DEFAULT_ENCODER


def latest_metrics_by_encoder(session: Session, study: Study) -> dict[str, dict[int, MetricResult]]:
    """The newest stored result per encoder and model, encoders in the order first computed."""
    out: dict[str, dict[int, MetricResult]] = {}
    for r in session.scalars(select(MetricResult).where(MetricResult.study_id == study.id).order_by(MetricResult.id)):
        out.setdefault(result_encoder(r), {})[r.model_id] = r
    return out


def latest_metrics(session: Session, study: Study, encoder: str = DEFAULT_ENCODER) -> dict[int, MetricResult]:
    """The newest stored result per model on one encoder (Inception by default)."""
    return latest_metrics_by_encoder(session, study).get(encoder, {})
