"""Automated metrics for every model of a study against its real pool, stored with their weights.

The thin DB-aware shell over hype.metrics: it reads the stored pools (the very files workers see),
embeds each pool once through the feature cache, and records one MetricResult per model.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hype.config import Config
from hype.images import store_path
from hype.models import Image, MetricResult, Study


def compute_study_metrics(
    session: Session,
    config: Config,
    study: Study,
    *,
    device: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
    weights: str | None = None,
) -> list[MetricResult]:
    from hype.metrics import FeatureCache, compute_all_metrics, load_inception, pool_features, pool_key_from_hashes

    extractor = load_inception(weights, device=device)
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
            real, fake, seed=study.seed, device=device, errors="record", feature_info=extractor.info(), prd_enforce_balance=False
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


def latest_metrics(session: Session, study: Study) -> dict[int, MetricResult]:
    """The newest stored result per model."""
    out: dict[int, MetricResult] = {}
    for r in session.scalars(select(MetricResult).where(MetricResult.study_id == study.id).order_by(MetricResult.id)):
        out[r.model_id] = r
    return out
