"""tests/browser/make_screenshots.py and make_researcher_screenshots.py produce the README's screenshots (into a tmp dir here)."""

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


def test_make_researcher_screenshots_writes_the_four_pages(browser, tmp_path) -> None:
    """The README's researcher screenshots come from a script (simulated evaluators answering through the
    session service, metrics on CPU): run small here so that it cannot rot."""
    pytest.importorskip("skimage", reason="the demo photographs come from scikit-image (dev extra)")
    pytest.importorskip("transformers", reason="the stand-in encoder is a tiny DINOv2 (metrics extra)")
    import make_researcher_screenshots

    small = {"qualification": {"n_real": 4, "n_fake": 4}, "infinity": {"n_real": 4, "n_fake": 4}}
    paths = make_researcher_screenshots.main(tmp_path / "shots", browser=browser, evaluators=6, n_boot=2,
                                             images_per_pool=16, settings=small)
    assert [p.name for p in paths] == list(make_researcher_screenshots.NAMES)
    for path in paths:
        with Image.open(path) as img:
            assert img.size[0] >= 1200 and img.size[1] >= 900, (path, img.size)
            assert len(img.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50, path
