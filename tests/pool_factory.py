"""Synthetic image pools for tests (a module of its own: test folders have their own conftest.py,\nso `from conftest import ...` would be ambiguous)."""

from __future__ import annotations


def make_pool_images(n: int, rng, size: int, *, smooth: bool) -> list:
    """Distinct PNGs; 'fake' ones are smoothed so they look different from the 'real' noise, as a
    generator's images would (tests about labels must not rely on that, but it makes pools honest)."""
    import io

    import numpy as np
    from PIL import Image as PILImage

    from hype.images import RawFile

    files = []
    for k in range(n):
        pixels = rng.integers(0, 256, size=(size, size, 3)).astype(np.float64)
        if smooth:
            pixels = (pixels + np.roll(pixels, 1, 0) + np.roll(pixels, 1, 1) + np.roll(pixels, 1, (0, 1))) / 4
        buf = io.BytesIO()
        PILImage.fromarray(pixels.astype(np.uint8)).save(buf, format="PNG")
        files.append(RawFile(f"img{k:04d}.png", buf.getvalue()))
    return files


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but holds one empty scanline: what a bomb looks like to a
    reader that trusts the header. Built by hand (Pillow would have to allocate the pixels)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1))) + chunk(b"IEND", b"")
