"""Automated metrics for every model of a study against its real pool, stored with their encoder and weights.

The thin DB-aware shell over hype.metrics: it reads the stored pools (the very files workers see),
embeds each pool once per encoder through the feature cache, and records one MetricResult per
model and encoder (the encoder's name is in ``values["encoder"]``; results stored before encoders
existed are Inception's).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hype.config import Config
from hype.images import store_path
from hype.models import Image, MetricResult, Study

DEFAULT_ENCODER = "inception"  # hype.metrics.encoders.DEFAULT_ENCODER, without importing torch here


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
    """``weights``: a file (Inception) or snapshot directory (DINOv2, CLIP); None resolves it from
    the encoder's environment variable or ``<data dir>/weights/<encoder>``."""
    from hype.metrics import FeatureCache, compute_all_metrics, pool_features, pool_key_from_hashes
    from hype.metrics.bootstrap import DEFAULT_N_BOOT
    from hype.metrics.encoders import WEIGHTS_SUBDIR, load_encoder

    extractor = load_encoder(encoder, weights, device, search_dirs=[config.data_dir / WEIGHTS_SUBDIR])
    cache = FeatureCache(config.feature_cache_dir)

    def features(where) -> object:
        rows = session.execute(select(Image.file_sha256).where(Image.study_id == study.id, *where).order_by(Image.file_sha256)).all()
        hashes = [r.file_sha256 for r in rows]
        paths = [store_path(config.image_store, h) for h in hashes]
        return pool_features(paths, pool_key_from_hashes(hashes), extractor, cache, batch_size=batch_size, progress=progress)

    real = features([Image.pool == "real"])
    results = []
    for model in study.models:
        fake = features([Image.pool == "fake", Image.model_id == model.id])
        values = compute_all_metrics(
            real, fake, seed=study.seed, device=device, errors="record", feature_info=extractor.info(),
            prd_enforce_balance=False, ci=ci, n_boot=n_boot or DEFAULT_N_BOOT,
        )
        result = MetricResult(
            study_id=study.id,
            model_id=model.id,
            values=values,
            weights_sha256=extractor.weights_sha256,
            weights_source=extractor.weights_source[:500],
            device=str(extractor.device),
        )
        session.add(result)
        results.append(result)
    session.flush()
    return results


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
