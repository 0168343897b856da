"""tests/browser/make_screenshots.py produces the README's six screenshots (into a tmp dir here)."""

from __future__ import annotations

import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def test_make_screenshots_writes_six_pngs(browser, tmp_path) -> None:
    pytest.importorskip("skimage", reason="the demo photographs come from scikit-image (dev extra)")
    import make_screenshots

    paths = make_screenshots.main(tmp_path / "shots", browser=browser)
    assert [p.name for p in paths] == list(make_screenshots.NAMES)
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000, path
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.size == make_screenshots.VIEWPORT, (path, img.size)
            # Not a blank page: a screenshot of real content has many distinct colours.
            assert len(img.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50, path
