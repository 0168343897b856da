"""Creating studies and filling their pools: the one place the CLI, the dashboard and the demo call.

Import is all-or-nothing: every file is validated and re-encoded into a staging folder first; only
then are rows inserted and files moved into the content-addressed store, and any failure removes
exactly the files this import added.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hype.config import Config
from hype.design import check_pools
from hype.images import (
    ImageImportError,
    ImageLimits,
    PreparedImage,
    RawFile,
    encode_png,
    iter_source,
    load_pixels,
    degraded_catch_image,
    phase_scrambled_mask,
    pixel_hash,
    prepare,
    served_png,
    store_path,
    write_atomic,
)
from hype.models import GeneratorModel, Image, Participant, Study, utcnow
from hype.protocol import MODES, SettingsError, StudySettings

N_MASK_IMAGES = 24  # distinct masks per study; each trial draws its 4 from these
# Degraded catch images made per model (more if a worker needs more): a worker draws theirs from these.
N_CATCH_IMAGES = 24


class StudyError(ValueError):
    """A request about a study that cannot be carried out, with the reason."""


@dataclass(frozen=True)
class ImportSummary:
    pool: str
    model: str | None
    added: int
    width: int
    height: int


def new_code() -> str:
    """Completion codes: short enough to type, long enough not to guess (~60 bits)."""
    return secrets.token_hex(6).upper()


def new_slug() -> str:
    """Unguessable study handle; never starting with "-", which a command line would read as an option."""
    slug = secrets.token_urlsafe(12)
    while slug.startswith("-"):
        slug = secrets.token_urlsafe(12)
    return slug


def create_study(
    session: Session,
    *,
    name: str,
    mode: str,
    seed: int | None = None,
    settings: dict[str, Any] | None = None,
    owner_id: int | None = None,
    prolific_completion_url: str | None = None,
) -> Study:
    name = (name or "").strip()
    if not name:
        raise StudyError("a study needs a name")
    if mode not in MODES:
        raise StudyError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    merged = dict(settings or {})
    merged["mode"] = mode
    merged["seed"] = seed
    try:
        parsed = StudySettings.from_dict(merged)
    except SettingsError as exc:
        raise StudyError(str(exc)) from exc
    study = Study(
        slug=new_slug(),
        name=name,
        mode=mode,
        seed=seed,
        settings=parsed.to_dict(),
        completion_code=new_code(),
        qualification_fail_code=new_code(),
        prolific_completion_url=prolific_completion_url,
        export_salt=secrets.token_hex(16),
        owner_id=owner_id,
        status="draft",
    )
    session.add(study)
    session.flush()
    return study


def study_settings(study: Study) -> StudySettings:
    """Parsed settings; cached by their text, since every worker request needs them and they rarely
    change (the protocol only while a draft, recruitment at any time: a change is a new text, so
    never a stale entry). StudySettings is frozen, so sharing one is safe."""
    return settings_from_text(json.dumps(study.settings, sort_keys=True))


@lru_cache(maxsize=256)
def settings_from_text(text: str) -> StudySettings:
    """Parsed settings from their JSON text, once per process per text: the answer path reads the stored
    text itself (hype.answer_rows.record_answer_rows), so an edit from any process is a new key."""
    return StudySettings.from_dict(json.loads(text))


def has_started(session: Session, study: Study) -> bool:
    """Whether any worker has entered the study (from then on its protocol is fixed)."""
    return session.scalar(select(Participant.id).where(Participant.study_id == study.id).limit(1)) is not None


def update_settings(session: Session, study: Study, changes: dict[str, Any]) -> list[str]:
    """Lay ``changes`` (nested, partial) over the study's settings; returns the paths that changed.

    Everything can change until the first worker starts; after that, and once the study is closed,
    only the target, the pay and the recruitment settings (hype.settings_form.EDITABLE_WHILE_RUNNING),
    so every evaluator of a study runs one protocol. A published study's pools must still be large
    enough for the new counts. Callers then run hype.recruitment.close_if_complete (a lower target
    can complete the study)."""
    from hype.settings_form import EDITABLE_WHILE_RUNNING, changed_paths, merge

    before = study_settings(study).to_dict()
    after = merge(before, changes)
    after["mode"], after["seed"] = before["mode"], before["seed"]
    try:
        parsed = StudySettings.from_dict(after)
    except SettingsError as exc:
        raise StudyError(str(exc)) from exc
    changed = changed_paths(before, parsed.to_dict())
    if changed and (study.status == "closed" or has_started(session, study)):
        locked = [p for p in changed if p not in EDITABLE_WHILE_RUNNING]
        if locked:
            why = "the study is closed" if study.status == "closed" else "workers have started"
            raise StudyError(
                f"{why}, so only the target and the pay (and how workers are recruited) can change now, not "
                + ", ".join(locked)
            )
    if changed and study.status != "draft":
        real, fakes = pool_ids(session, study)
        try:
            check_pools(parsed, real, fakes)
        except ValueError as exc:
            raise StudyError(f"the pools are too small for these settings: {exc}") from exc
        made = catch_pool_ids(session, study)
        if parsed.catch.n_fake and any(len(made.get(m, ())) < parsed.catch.n_fake for m in fakes):
            raise StudyError("the degraded catch images are made when a study is published, and this one was "
                             f"published with fewer than {parsed.catch.n_fake} per model; set catch trials before "
                             "publishing")
    study.settings = parsed.to_dict()
    return changed


def find_study(session: Session, ref: str | int) -> Study:
    """By numeric id, slug or exact name (CLI convenience); a clear error otherwise."""
    ref_s = str(ref)
    study = None
    if ref_s.isdigit():
        study = session.get(Study, int(ref_s))
    if study is None:
        study = session.scalar(select(Study).where((Study.slug == ref_s) | (Study.name == ref_s)))
    if study is None:
        raise StudyError(f"no study {ref_s!r} (give its id, slug or name; `hype list` shows them)")
    return study


def add_model(session: Session, study: Study, name: str, description: str | None = None) -> GeneratorModel:
    name = (name or "").strip()
    if not name:
        raise StudyError("a model needs a name")
    existing = session.scalar(select(GeneratorModel).where(GeneratorModel.study_id == study.id, GeneratorModel.name == name))
    if existing is not None:
        return existing
    if study.status != "draft":
        raise StudyError(f"study {study.name!r} is {study.status}; models can only be added while it is a draft")
    position = session.scalar(select(func.count()).where(GeneratorModel.study_id == study.id)) or 0
    model = GeneratorModel(study_id=study.id, name=name, position=position, description=description)
    session.add(model)
    session.flush()
    return model


def import_images(
    session: Session,
    config: Config,
    study: Study,
    source: Path | Iterable[RawFile],
    *,
    pool: str,
    model_name: str | None = None,
    resize: tuple[int, int] | None = None,
    progress: bool = False,
) -> ImportSummary:
    """Validate and add a folder / zip (or in-memory files) to a pool. Caller commits the session."""
    if pool not in ("real", "fake"):
        raise StudyError("pool must be 'real' or 'fake'")
    if pool == "fake" and not model_name:
        raise StudyError("fake images belong to a model: give its name")
    if pool == "real" and model_name:
        raise StudyError("real images belong to no model")
    if study.status != "draft":
        raise StudyError(f"study {study.name!r} is {study.status}; images can only be imported while it is a draft")
    limits = ImageLimits(config.max_image_bytes, config.max_image_pixels, resize)
    raw_files = iter_source(Path(source), config.max_image_bytes) if isinstance(source, (str, Path)) else source

    staging = config.staging_dir / uuid.uuid4().hex
    staging.mkdir(parents=True, exist_ok=True)
    moved: list[Path] = []
    try:
        prepared = _prepare_all(session, study, raw_files, limits, staging, progress and (model_name or "real"))
        model = add_model(session, study, model_name) if model_name else None
        for item in prepared:
            session.add(
                Image(
                    study_id=study.id,
                    pool=pool,
                    model_id=model.id if model else None,
                    pixel_sha256=item.pixel_sha256,
                    file_sha256=item.file_sha256,
                    width=item.width,
                    height=item.height,
                    source_name=item.source_name,
                )
            )
        session.flush()
        for item in prepared:
            target = store_path(config.image_store, item.file_sha256)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / item.file_sha256, target)
                moved.append(target)
        first = prepared[0]
        return ImportSummary(pool, model_name, len(prepared), first.width, first.height)
    except BaseException:
        session.rollback()
        for path in moved:
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _prepare_all(
    session: Session,
    study: Study,
    raw_files: Iterable[RawFile],
    limits: ImageLimits,
    staging: Path,
    progress: str | bool,
) -> list[PreparedImage]:
    existing = session.execute(
        select(Image.pixel_sha256, Image.source_name, Image.width, Image.height).where(
            Image.study_id == study.id, Image.pool.in_(("real", "fake"))
        )
    ).all()
    seen: dict[str, str] = {row.pixel_sha256: row.source_name for row in existing}
    size: tuple[int, int] | None = (existing[0].width, existing[0].height) if existing else None
    prepared: list[PreparedImage] = []
    files = raw_files
    if progress:
        from tqdm import tqdm

        files = tqdm(raw_files, desc=f"importing {progress}", unit="img")
    for raw in files:
        item = prepare(raw, limits)
        if item.pixel_sha256 in seen:
            raise ImageImportError(item.source_name, f"duplicate of {seen[item.pixel_sha256]} (same pixels)")
        if size is None:
            size = (item.width, item.height)
        elif (item.width, item.height) != size:
            raise ImageImportError(
                item.source_name,
                f"is {item.width}x{item.height} but the study's images are {size[0]}x{size[1]}; "
                "every pool must share one size (resize them on import: 'Resize to' on the study page, "
                "--resize for hype import-images, resize: in a study file)",
            )
        seen[item.pixel_sha256] = item.source_name
        (staging / item.file_sha256).write_bytes(item.encoded)
        prepared.append(PreparedImage(item.source_name, item.pixel_sha256, item.file_sha256, item.width, item.height, b""))
    if not prepared:
        raise StudyError("no image files found in the source")
    return prepared


def pool_ids(session: Session, study: Study) -> tuple[list[int], dict[int, list[int]]]:
    """Image ids of the real pool and of each model's pool (models without images included, empty)."""
    real = list(session.scalars(select(Image.id).where(Image.study_id == study.id, Image.pool == "real").order_by(Image.id)))
    fakes: dict[int, list[int]] = {m.id: [] for m in study.models}
    rows = session.execute(
        select(Image.model_id, Image.id).where(Image.study_id == study.id, Image.pool == "fake").order_by(Image.id)
    )
    for model_id, image_id in rows:
        fakes.setdefault(model_id, []).append(image_id)
    return real, fakes


def ensure_masks(session: Session, config: Config, study: Study) -> int:
    """Phase-scrambled masks from real pool images, made once per study (docs/protocol.md decision)."""
    have = session.scalar(select(func.count()).where(Image.study_id == study.id, Image.pool == "mask")) or 0
    if have:
        return have
    real = list(session.scalars(select(Image).where(Image.study_id == study.id, Image.pool == "real").order_by(Image.id)))
    if not real:
        raise StudyError("masks are made from the real pool, which is empty")
    rng = np.random.default_rng([study.seed & 0xFFFFFFFF, 0x4D41534B])
    sources = rng.choice(len(real), size=min(N_MASK_IMAGES, len(real)), replace=False)
    for k, idx in enumerate(sources):
        pixels = phase_scrambled_mask(load_pixels(store_path(config.image_store, real[idx].file_sha256)), rng)
        data = encode_png(pixels)
        digest = hashlib.sha256(data).hexdigest()
        write_atomic(store_path(config.image_store, digest), data)
        session.add(
            Image(
                study_id=study.id,
                pool="mask",
                model_id=None,
                pixel_sha256=pixel_hash(pixels),
                file_sha256=digest,
                width=pixels.shape[1],
                height=pixels.shape[0],
                source_name=f"mask-{k:02d}",
            )
        )
    session.flush()
    return len(sources)


def catch_pool_ids(session: Session, study: Study) -> dict[int, list[int]]:
    """Image ids of each model's degraded catch images (docs/protocol.md, Catch trials)."""
    out: dict[int, list[int]] = {}
    rows = session.execute(
        select(Image.model_id, Image.id).where(Image.study_id == study.id, Image.pool == "catch").order_by(Image.id)
    )
    for model_id, image_id in rows:
        out.setdefault(model_id, []).append(image_id)
    return out


def ensure_catch_images(session: Session, config: Config, study: Study) -> int:
    """Each model's degraded catch images, made once per study from its own fakes, stored and served
    like every pool image so that nothing in a URL, a byte count or a response time sets them apart.
    Made from the model's own fakes so that they share its content and colours and differ only by the
    degradation. Deterministic from the study seed."""
    need = study_settings(study).catch.n_fake
    if need == 0:
        return 0
    have = catch_pool_ids(session, study)
    _, fakes = pool_ids(session, study)
    made = 0
    for model_id, ids in sorted(fakes.items()):
        if have.get(model_id):
            continue
        rows = list(session.scalars(select(Image).where(Image.id.in_(ids)).order_by(Image.id)))
        rng = np.random.default_rng([study.seed & 0xFFFFFFFF, 0x43415443, model_id & 0xFFFFFFFF])
        sources = rng.choice(len(rows), size=min(len(rows), max(need, N_CATCH_IMAGES)), replace=False)
        for k, idx in enumerate(sorted(sources)):
            pixels = degraded_catch_image(load_pixels(store_path(config.image_store, rows[idx].file_sha256)), rng)
            data = encode_png(pixels)
            digest = hashlib.sha256(data).hexdigest()
            write_atomic(store_path(config.image_store, digest), data)
            session.add(Image(study_id=study.id, pool="catch", model_id=model_id, pixel_sha256=pixel_hash(pixels),
                              file_sha256=digest, width=pixels.shape[1], height=pixels.shape[0],
                              source_name=f"catch-{model_id}-{k:02d}"))
            made += 1
    session.flush()
    return made


def prepare_served_images(session: Session, config: Config, study: Study) -> int:
    """Make every image's served copy now, before any worker asks for one.

    Made lazily, the first request for each image would be slower than later ones; real images are
    shared by every session and fakes only by one model's, so a cache miss would hint "fake" to a
    script that times image requests (found by tests/hostile/test_cheat_bot.py).
    """
    hashes = session.scalars(select(Image.file_sha256).where(Image.study_id == study.id)).all()
    for digest in hashes:
        served_png(config.image_store, config.served_dir, digest)
    return len(hashes)


def publish_study(session: Session, config: Config, study: Study) -> None:
    if study.status == "published":
        return
    if study.status == "closed":
        raise StudyError("a closed study cannot be published again")
    settings = study_settings(study)
    real, fakes = pool_ids(session, study)
    try:
        check_pools(settings, real, fakes)
    except ValueError as exc:
        raise StudyError(f"cannot publish: {exc}") from exc
    if settings.mode == "hype-time":
        ensure_masks(session, config, study)
    ensure_catch_images(session, config, study)
    prepare_served_images(session, config, study)
    study.status = "published"
    study.published_at = utcnow()


def close_study(study: Study) -> None:
    if study.status != "published":
        raise StudyError(f"only a published study can be closed (this one is {study.status})")
    study.status = "closed"
    study.closed_at = utcnow()


def reopen_study(session: Session, study: Study) -> None:
    """Take new workers again (e.g. after raising the target, or to replace excluded workers). The
    pools are checked as at publishing, so a study imported from results (no images) stays closed."""
    if study.status == "published":
        return
    if study.status != "closed":
        raise StudyError(f"only a closed study can be reopened (this one is {study.status}); publish it instead")
    real, fakes = pool_ids(session, study)
    try:
        check_pools(study_settings(study), real, fakes)
    except ValueError as exc:
        raise StudyError(f"cannot reopen: {exc}") from exc
    study.status = "published"
    study.closed_at = None


def transfer_study(session: Session, study: Study, owner_id: int | None) -> None:
    """Give the study to another researcher (None: to nobody; it then shows in no dashboard)."""
    study.owner_id = owner_id
    session.flush()


def load_study_file(path: Path) -> dict[str, Any]:
    """A YAML or JSON study definition (see README): name, mode, seed, settings, real, models."""
    text = Path(path).read_text()
    try:
        data = json.loads(text) if Path(path).suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise StudyError(f"{path}: not valid {'JSON' if str(path).endswith('.json') else 'YAML'} ({exc})") from exc
    if not isinstance(data, dict):
        raise StudyError(f"{path}: a study file is a mapping with at least name and mode")
    allowed = {"name", "mode", "seed", "settings", "real", "models", "resize", "prolific_completion_url"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise StudyError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    base = Path(path).parent
    if "real" in data:
        data["real"] = str((base / data["real"]).resolve())
    models = data.get("models") or []
    if not isinstance(models, list) or any(not isinstance(m, dict) or "name" not in m for m in models):
        raise StudyError(f"{path}: models is a list of {{name, images}} entries")
    for m in models:
        if "images" in m:
            m["images"] = str((base / m["images"]).resolve())
    if "resize" in data:
        r = data["resize"]
        if not (isinstance(r, list) and len(r) == 2 and all(isinstance(v, int) and v > 0 for v in r)):
            raise StudyError(f"{path}: resize is [width, height] in pixels")
        data["resize"] = (r[0], r[1])
    return data
