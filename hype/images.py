"""Reading, validating and re-encoding pool images, and the per-study backward masks.

Everything a worker's browser receives is produced here, so this is where the integrity rules live:
one output format for every pool (a format difference between real and fake files would leak the
label), no metadata, no file names, identical dimensions across pools. No Flask, no DB.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
SERVED_FORMAT = "PNG"
SERVED_MIMETYPE = "image/png"
_SKIPPED_NAMES = {"__MACOSX", ".DS_Store", "Thumbs.db"}


class ImageImportError(ValueError):
    """A file (named in the message) that cannot join a pool, and why."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    resize: tuple[int, int] | None = None  # declared (width, height); None = keep, must all agree


@dataclass(frozen=True)
class RawFile:
    """A candidate file before validation: its display name (for errors) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class PreparedImage:
    source_name: str
    pixel_sha256: str
    file_sha256: str
    width: int
    height: int
    encoded: bytes  # the bytes that will be stored and served


def iter_source(path: Path, max_bytes: int) -> Iterator[RawFile]:
    """Yield candidate files from a folder (recursively, sorted) or a .zip archive."""
    path = Path(path)
    # Errors name the file or folder, never its path on the server.
    if not path.exists():
        raise ImageImportError(path.name, "no such file or folder")
    if path.is_dir():
        yield from _iter_folder(path, max_bytes)
    elif zipfile.is_zipfile(path):
        yield from _iter_zip(path, max_bytes)
    else:
        raise ImageImportError(path.name, "not a folder or a .zip archive")


def _skipped(parts: tuple[str, ...]) -> bool:
    return any(part in _SKIPPED_NAMES or part.startswith(".") for part in parts)


def _iter_folder(root: Path, max_bytes: int) -> Iterator[RawFile]:
    files = sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
    for p in files:
        rel = p.relative_to(root)
        if _skipped(rel.parts):
            continue
        name = str(rel)
        if p.is_symlink():
            raise ImageImportError(name, "symbolic links are not imported (copy the file instead)")
        size = p.stat().st_size
        if size > max_bytes:
            raise ImageImportError(name, f"file is {size:,} bytes, above the limit of {max_bytes:,} bytes")
        yield RawFile(name, p.read_bytes())


def _iter_zip(archive: Path, max_bytes: int) -> Iterator[RawFile]:
    with zipfile.ZipFile(archive) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        # Refuse unsafe members before reading any of them, so one bad entry never half-imports.
        for info in infos:
            _check_zip_member(archive, info)
        for info in sorted(infos, key=lambda i: i.filename):
            parts = PurePosixPath(info.filename).parts
            if _skipped(parts):
                continue
            name = f"{archive.name}:{info.filename}"
            if info.file_size > max_bytes:
                raise ImageImportError(name, f"file is {info.file_size:,} bytes, above the limit of {max_bytes:,} bytes")
            with zf.open(info) as fh:
                data = fh.read(max_bytes + 1)  # the header's size can lie; never read past the limit
            if len(data) > max_bytes:
                raise ImageImportError(name, f"file is larger than the limit of {max_bytes:,} bytes")
            yield RawFile(name, data)


def _check_zip_member(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")
    where = f"{archive.name}:{info.filename}"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ImageImportError(where, "absolute path in zip archive refused")
    if ".." in PurePosixPath(name).parts:
        raise ImageImportError(where, "'..' in zip entry path refused (zip-slip)")
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        raise ImageImportError(where, "symbolic link in zip archive refused")


def _too_many_pixels(name: str, max_pixels: int, width: int | None = None, height: int | None = None) -> ImageImportError:
    size = f"{width}x{height} = {width * height:,} pixels" if width and height else "the image's size"
    return ImageImportError(name, f"{size} exceeds the limit of {max_pixels:,} pixels (possible decompression bomb)")


def apply_pixel_limit(max_pixels: int) -> None:
    """Pillow's own bomb guard, set from the configured limit (process-wide, as Pillow keeps it).

    Pillow warns above MAX_IMAGE_PIXELS and raises DecompressionBombError above twice that, while
    opening, before hype can look at the size; with its default (89 Mpx) a 20000x20000 PNG escaped
    as an uncaught error. Set to the configured limit, Pillow refuses every bomb hype would refuse
    (prepare turns its error into the same clear message) and never decodes one.
    """
    PILImage.MAX_IMAGE_PIXELS = max_pixels


def prepare(raw: RawFile, limits: ImageLimits) -> PreparedImage:
    """Validate one file and re-encode it; raises ImageImportError naming the file."""
    if len(raw.data) > limits.max_bytes:
        raise ImageImportError(raw.name, f"file is {len(raw.data):,} bytes, above the limit of {limits.max_bytes:,} bytes")
    apply_pixel_limit(limits.max_pixels)
    try:
        with warnings.catch_warnings():
            # Between the limit and twice it Pillow only warns; the size check below refuses those.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(raw.data)) as probe:
                fmt = probe.format
                width, height = probe.size
    except PILImage.DecompressionBombError:  # over twice the limit: Pillow refuses before telling the size
        raise _too_many_pixels(raw.name, limits.max_pixels) from None
    except UnidentifiedImageError:
        raise ImageImportError(raw.name, "not a readable image (PNG, JPEG or WebP expected)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageImportError(raw.name, f"corrupt image header ({exc})") from None
    if fmt not in ALLOWED_FORMATS:
        raise ImageImportError(raw.name, f"format {fmt} not accepted; use PNG, JPEG or WebP")
    if width * height > limits.max_pixels:
        raise _too_many_pixels(raw.name, limits.max_pixels, width, height)
    try:
        with PILImage.open(io.BytesIO(raw.data)) as img:
            img.load()
            rgb = _to_rgb(img)
    except PILImage.DecompressionBombError:
        raise _too_many_pixels(raw.name, limits.max_pixels, width, height) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageImportError(raw.name, f"image data is corrupt or truncated ({exc})") from None
    if limits.resize is not None and rgb.size != limits.resize:
        rgb = rgb.resize(limits.resize, PILImage.Resampling.LANCZOS)
    pixels = np.asarray(rgb, dtype=np.uint8)
    encoded = encode_png(pixels)
    return PreparedImage(
        source_name=raw.name,
        pixel_sha256=pixel_hash(pixels),
        file_sha256=hashlib.sha256(encoded).hexdigest(),
        width=rgb.size[0],
        height=rgb.size[1],
        encoded=encoded,
    )


def _to_rgb(img: PILImage.Image) -> PILImage.Image:
    """RGB without alpha: transparent regions are composited on mid grey, the mask/background tone."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (128, 128, 128, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def pixel_hash(pixels: np.ndarray) -> str:
    """Hash of the decoded picture (shape + RGB bytes): the same photo in two encodings is a duplicate."""
    h = hashlib.sha256()
    h.update(f"{pixels.shape}".encode())
    h.update(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    return h.hexdigest()


def encode_png(pixels: np.ndarray) -> bytes:
    """Deterministic PNG with no ancillary chunks (no EXIF, text, time or ICC)."""
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGB").save(
        buf, format=SERVED_FORMAT, optimize=False, compress_level=6
    )
    return buf.getvalue()


def encode_png_stored(pixels: np.ndarray) -> bytes:
    """PNG with zlib level 0 (stored blocks): its length depends only on width and height.

    Workers receive these, not the compressed store files, because a compressed file's size tracks
    image content (a blurred fake compresses better than a sharp photo), and a response size is
    something a cheating script can read without looking at a single pixel.
    """
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGB").save(
        buf, format=SERVED_FORMAT, optimize=False, compress_level=0
    )
    return buf.getvalue()


def served_png(store: Path, served: Path, file_sha256: str) -> bytes:
    """The bytes a worker's browser gets for a stored image, made once and cached beside the store."""
    path = served_path(served, file_sha256)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        data = encode_png_stored(load_pixels(store_path(store, file_sha256)))
        write_atomic(path, data)
        return data


def served_file(store: Path, served: Path, file_sha256: str) -> Path:
    """The served copy's path, made first if missing: what a front server sends by itself."""
    path = served_path(served, file_sha256)
    if not path.is_file():
        served_png(store, served, file_sha256)
    return path


def served_path(served: Path, file_sha256: str) -> Path:
    """served/ab/abcdef....png (hype.proxy.nginx.accel_path names the same file for nginx)."""
    return served / file_sha256[:2] / f"{file_sha256}.png"


def load_pixels(path: Path) -> np.ndarray:
    with PILImage.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def store_path(store: Path, file_sha256: str) -> Path:
    """Content-addressed location: images/ab/abcdef....png."""
    return store / file_sha256[:2] / f"{file_sha256}.png"


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def phase_scrambled_mask(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A backward mask with the image's power spectrum but random phase (docs/protocol.md decision).

    The same random phase field is used for the three channels, which keeps colours plausible;
    the Hermitian symmetry of the FFT of a real noise image keeps the result real.
    """
    img = pixels.astype(np.float64)
    noise_phase = np.angle(np.fft.fft2(rng.random(img.shape[:2])))
    out = np.empty_like(img)
    for c in range(img.shape[2]):
        spectrum = np.fft.fft2(img[..., c])
        scrambled = np.abs(spectrum) * np.exp(1j * (np.angle(spectrum) + noise_phase))
        out[..., c] = np.real(np.fft.ifft2(scrambled))
    # Keep each channel's mean and contrast, clip into the displayable range.
    for c in range(img.shape[2]):
        src, ch = img[..., c], out[..., c]
        ch = (ch - ch.mean()) / (ch.std() + 1e-9) * src.std() + src.mean()
        out[..., c] = ch
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# Catch images (docs/protocol.md, Catch trials): about CATCH_BLOCKS_ACROSS blocks across the shorter side,
# then noise of this SD (in 0-255 units). Strong enough that nobody who looks can call it real, at any
# size a study uses, yet the same size and served the same way as every other image.
CATCH_BLOCKS_ACROSS = 8
CATCH_NOISE_SD = 40.0


def degraded_catch_image(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An obviously degraded copy of a fake: heavy blocking (each block its mean colour) plus Gaussian
    noise. Deterministic for a given rng state, so a study's catch images can be made again."""
    img = pixels.astype(np.float64)
    h, w = img.shape[:2]
    block = max(2, round(min(h, w) / CATCH_BLOCKS_ACROSS))
    out = np.empty_like(img)
    for y in range(0, h, block):
        for x in range(0, w, block):
            out[y:y + block, x:x + block] = img[y:y + block, x:x + block].reshape(-1, img.shape[2]).mean(axis=0)
    out += rng.normal(0.0, CATCH_NOISE_SD, size=out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
