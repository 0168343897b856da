"""A real demo from data shipped with scikit-image, no network.

Real images are crops of scikit-image's bundled colour photographs; each demo "model" degrades other
crops of the same photographs with one strength knob (blur + sensor noise + JPEG compression), so the
expected order of realism is known: a good metric and a careful person should rank the models
mild > moderate > strong > severe.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from PIL import Image as PILImage
from PIL import ImageFilter
from sqlalchemy import select
from sqlalchemy.orm import Session

from hype import studies
from hype.accounts import create_researcher
from hype.config import Config
from hype.images import RawFile
from hype.models import Researcher, Study

DEMO_SEED = 2019
CROP = 128
MIN_CROP_STD = 12.0
DEMO_EMAIL = "demo@hype.local"
# name -> strength in [0, 1]; the knob below maps it to blur, noise and JPEG quality
DEMO_MODELS: dict[str, float] = {"mild": 0.2, "moderate": 0.45, "strong": 0.7, "severe": 1.0}
_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")

INFINITY_NAME = "Demo: HYPE-∞ on degraded photographs"
TIME_NAME = "Demo: HYPE-time (short) on degraded photographs"
TIME_SHORT_SETTINGS = {
    "qualification": {"n_real": 10, "n_fake": 10},
    "time": {"trials_per_block": 20},
}


@dataclass
class DemoInfo:
    studies: list[Study]
    email: str
    password: str | None

    def describe(self, base_url: str) -> list[str]:
        lines = []
        for s in self.studies:
            lines.append(f"{s.name}")
            lines.append(f"  worker link:       {base_url}/s/{s.slug}")
        lines.append(f"researcher login:    {base_url}/login  {self.email} / {self.password or '(set earlier)'}")
        return lines


def _photos() -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in _PHOTOS:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= CROP:
            out.append(img.astype(np.uint8))
    return out


def random_crops(n: int, rng: np.random.Generator, photos: list[np.ndarray] | None = None) -> list[np.ndarray]:
    photos = photos if photos is not None else _photos()
    crops: list[np.ndarray] = []
    seen: set[bytes] = set()
    while len(crops) < n:
        img = photos[int(rng.integers(len(photos)))]
        y = int(rng.integers(0, img.shape[0] - CROP + 1))
        x = int(rng.integers(0, img.shape[1] - CROP + 1))
        crop = img[y : y + CROP, x : x + CROP]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = np.ascontiguousarray(crop)
        # Flat crops (the retina photo's black surround) say nothing and repeat exactly: skip them.
        key = crop.tobytes()
        if crop.std() < MIN_CROP_STD or key in seen:
            continue
        seen.add(key)
        crops.append(crop)
    return crops


def degrade(pixels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """One knob: blur radius, noise level and JPEG loss all grow with strength."""
    img = PILImage.fromarray(pixels)
    img = img.filter(ImageFilter.GaussianBlur(radius=0.3 + 2.7 * strength))
    arr = np.asarray(img, dtype=np.float64)
    arr = arr + rng.normal(0.0, 2.0 + 14.0 * strength, size=arr.shape)
    img = PILImage.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(round(85 - 75 * strength)))
    with PILImage.open(io.BytesIO(buf.getvalue())) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8)


def demo_pools(images_per_pool: int, seed: int = DEMO_SEED) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    photos = _photos()
    real = random_crops(images_per_pool, rng, photos)
    fakes = {}
    for name, strength in DEMO_MODELS.items():
        fakes[name] = [degrade(c, strength, rng) for c in random_crops(images_per_pool, rng, photos)]
    return real, fakes


def _as_files(prefix: str, arrays: list[np.ndarray]) -> Iterator[RawFile]:
    for i, arr in enumerate(arrays):
        buf = io.BytesIO()
        PILImage.fromarray(arr).save(buf, format="PNG")
        yield RawFile(f"{prefix}/{i:04d}.png", buf.getvalue())


def build_demo(session: Session, config: Config, *, images_per_pool: int = 200, progress: bool = False) -> DemoInfo:
    """Create (once) the demo researcher and the two demo studies, published; idempotent."""
    password = _demo_researcher(session, config)
    existing = {s.name: s for s in session.scalars(select(Study).where(Study.name.in_([INFINITY_NAME, TIME_NAME])))}
    built = []
    pools = None
    for name, mode, settings in ((INFINITY_NAME, "hype-infinity", {}), (TIME_NAME, "hype-time", TIME_SHORT_SETTINGS)):
        if name in existing:
            built.append(existing[name])
            continue
        if pools is None:
            pools = demo_pools(images_per_pool)
        real, fakes = pools
        owner = session.scalar(select(Researcher.id).where(Researcher.email == DEMO_EMAIL))
        study = studies.create_study(session, name=name, mode=mode, seed=DEMO_SEED, settings=settings, owner_id=owner)
        studies.import_images(session, config, study, _as_files("real", real), pool="real", progress=progress)
        for model_name, arrays in fakes.items():
            studies.import_images(session, config, study, _as_files(model_name, arrays), pool="fake", model_name=model_name, progress=progress)
        studies.publish_study(session, config, study)
        session.flush()
        built.append(study)
    return DemoInfo(built, DEMO_EMAIL, password)


def _demo_researcher(session: Session, config: Config) -> str | None:
    path = config.data_dir / "demo_password"
    if session.scalar(select(Researcher).where(Researcher.email == DEMO_EMAIL)) is not None:
        return path.read_text().strip() if path.exists() else None
    password = secrets.token_urlsafe(9)
    create_researcher(session, DEMO_EMAIL, password)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password
