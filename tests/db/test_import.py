"""Import of image folders and zips: good inputs land content-addressed and clean; every bad input
gives a clear error naming the file, and leaves the database and the data dir exactly as they were."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from hype import studies
from hype.images import ImageImportError, store_path
from hype.models import Image
from pool_factory import png_header_only

RNG = np.random.default_rng(0)


def _png(path: Path, size=(32, 24), fmt="PNG", seed=None, **save) -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(arr).save(path, format=fmt, **save)
    return path


def _folder(root: Path, n: int, size=(32, 24), start=0) -> Path:
    for i in range(n):
        _png(root / f"img_{i:03d}.png", size=size, seed=start + i)
    return root


def _snapshot(session, config):
    files = sorted(p for p in config.data_dir.rglob("*") if p.is_file() and p.name not in {"secret_key"})
    rows = session.scalar(select(func.count()).select_from(Image))
    return rows, [str(p.relative_to(config.data_dir)) for p in files]


@pytest.fixture
def study(session):
    s = studies.create_study(session, name="t", mode="hype-infinity", seed=1)
    session.commit()
    return s


def test_folder_import_stores_reencoded_images_without_metadata(session, config, study, tmp_path):
    src = tmp_path / "real"
    _folder(src, 5)
    # a JPEG with EXIF must come out as a PNG without it
    exif = PILImage.Exif()
    exif[0x010F] = "SecretCameraMaker"
    _png(src / "camera.jpg", fmt="JPEG", seed=99, exif=exif.tobytes(), quality=95)
    summary = studies.import_images(session, config, study, src, pool="real")
    session.commit()
    assert (summary.added, summary.width, summary.height) == (6, 32, 24)
    images = session.scalars(select(Image).where(Image.study_id == study.id)).all()
    assert len(images) == 6
    for img in images:
        path = store_path(config.image_store, img.file_sha256)
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG")
        assert b"SecretCameraMaker" not in data and b"eXIf" not in data and b"tEXt" not in data
        assert img.source_name not in path.name
        with PILImage.open(path) as reopened:
            assert reopened.info.get("exif") is None


def test_zip_import_and_model_pool(session, config, study, tmp_path):
    archive = tmp_path / "gan.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(4):
            buf = io.BytesIO()
            PILImage.fromarray(RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buf, format="WEBP", lossless=True)
            zf.writestr(f"samples/{i}.webp", buf.getvalue())
        zf.writestr("__MACOSX/._0.webp", b"junk")
    summary = studies.import_images(session, config, study, archive, pool="fake", model_name="GAN")
    session.commit()
    assert summary.added == 4
    assert [m.name for m in study.models] == ["GAN"]
    assert session.scalar(select(func.count()).where(Image.model_id == study.models[0].id)) == 4


def test_declared_resize_makes_mixed_sizes_acceptable(session, config, study, tmp_path):
    src = tmp_path / "mixed"
    _png(src / "a.png", size=(40, 40), seed=1)
    _png(src / "b.png", size=(64, 48), seed=2)
    summary = studies.import_images(session, config, study, src, pool="real", resize=(32, 32))
    assert (summary.added, summary.width, summary.height) == (2, 32, 32)


def _zip_with(tmp_path: Path, name: str, member: str, data: bytes) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        buf = io.BytesIO()
        PILImage.fromarray(RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buf, format="PNG")
        zf.writestr("good.png", buf.getvalue())
        zf.writestr(member, data)
    return path


def _bomb_png(path: Path) -> Path:
    """A tiny file whose header claims 10000 x 5000 pixels (50 MP), as decompression bombs do."""
    img = PILImage.new("1", (10_000, 5_000))
    img.save(path, format="PNG", optimize=True)
    return path


BAD_CASES = {
    "corrupt": (lambda d: (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), "broken.png", "not a readable image"),
    "truncated": (
        lambda d: (d / "cut.png").write_bytes(_png(d / "_tmp" / "whole.png", size=(64, 64), seed=5).read_bytes()[:300]),
        "cut.png",
        "corrupt",
    ),
    "wrong_format": (lambda d: _png(d / "old.gif", fmt="GIF", seed=3), "old.gif", "format GIF not accepted"),
    "not_an_image": (lambda d: (d / "notes.txt").write_text("hello"), "notes.txt", "not a readable image"),
    "oversized": (lambda d: _png(d / "huge.png", size=(400, 400), seed=4), "huge.png", "above the limit of 100,000 bytes"),
    "bomb": (lambda d: _bomb_png(d / "bomb.png"), "bomb.png", "decompression bomb"),
    "mixed_dimensions": (lambda d: _png(d / "odd.png", size=(33, 24), seed=6), "odd.png", "is 33x24 but the study's images are 32x24"),
    "duplicate": (
        lambda d: (d / "zz_copy.png").write_bytes((d / "img_000.png").read_bytes()),
        "zz_copy.png",
        "duplicate of img_000.png",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_folder_input_names_file_and_writes_nothing(session, config, study, tmp_path, case):
    # one good import first, so "as it was" includes existing rows and files
    studies.import_images(session, config, study, _folder(tmp_path / "first", 3, start=100), pool="real")
    session.commit()
    before = _snapshot(session, config)
    make, name, reason = BAD_CASES[case]
    src = _folder(tmp_path / "src", 3)
    make(src)
    if (src / "_tmp").exists():
        import shutil

        shutil.rmtree(src / "_tmp")
    cfg = config.with_overrides(max_image_bytes=100_000) if case == "oversized" else config
    with pytest.raises((ImageImportError, ValueError)) as err:
        studies.import_images(session, cfg, study, src, pool="fake", model_name="M")
    assert name in str(err.value) and reason in str(err.value)
    session.rollback()
    assert _snapshot(session, config) == before
    assert study.models == [] or all(m.name != "M" for m in session.scalars(select(studies.GeneratorModel)))


@pytest.mark.parametrize(
    "member, reason",
    [("../escape.png", "'..' in zip entry path refused"), ("/etc/evil.png", "absolute path in zip archive refused")],
)
def test_zip_slip_entries_are_refused_before_anything_is_written(session, config, study, tmp_path, member, reason):
    before = _snapshot(session, config)
    archive = _zip_with(tmp_path, "evil.zip", member, b"whatever")
    with pytest.raises(ImageImportError) as err:
        studies.import_images(session, config, study, archive, pool="real")
    assert reason in str(err.value) and member in str(err.value)
    session.rollback()
    assert _snapshot(session, config) == before
    assert not (tmp_path / "escape.png").exists()


def test_duplicate_across_pools_is_refused(session, config, study, tmp_path):
    src = _folder(tmp_path / "real", 2)
    studies.import_images(session, config, study, src, pool="real")
    session.commit()
    other = tmp_path / "fake"
    other.mkdir()
    (other / "renamed.png").write_bytes((src / "img_001.png").read_bytes())
    with pytest.raises(ImageImportError, match="renamed.png: duplicate of img_001.png"):
        studies.import_images(session, config, study, other, pool="fake", model_name="copycat")


def test_failure_after_files_moved_removes_only_new_files(session, config, study, tmp_path, monkeypatch):
    studies.import_images(session, config, study, _folder(tmp_path / "a", 2, start=50), pool="real")
    session.commit()
    before = _snapshot(session, config)
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(studies.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        studies.import_images(session, config, study, _folder(tmp_path / "b", 4), pool="real")
    monkeypatch.undo()
    assert _snapshot(session, config) == before


def test_publish_checks_pool_sizes_and_makes_masks_for_time(session, config, tmp_path):
    s = studies.create_study(
        session, name="time", mode="hype-time", seed=3,
        settings={"qualification": {"n_real": 2, "n_fake": 2}, "time": {"trials_per_block": 4, "n_blocks": 2}},
    )
    studies.import_images(session, config, s, _folder(tmp_path / "r", 5), pool="real")
    studies.import_images(session, config, s, _folder(tmp_path / "f", 10, start=500), pool="fake", model_name="g")
    # 2 x 4 coin-flip trials may all be real (the cap, hype.design.coin_cap, is every trial here): 2 + 8.
    with pytest.raises(studies.StudyError, match="real pool has 5 images; each participant needs 10"):
        studies.publish_study(session, config, s)
    studies.import_images(session, config, s, _folder(tmp_path / "r2", 5, start=900), pool="real")
    studies.publish_study(session, config, s)
    session.commit()
    assert s.status == "published"
    masks = session.scalars(select(Image).where(Image.study_id == s.id, Image.pool == "mask")).all()
    assert len(masks) == 10  # one per real image, up to N_MASK_IMAGES
    with pytest.raises(studies.StudyError, match="is published; images can only be imported while it is a draft"):
        studies.import_images(session, config, s, _folder(tmp_path / "r3", 1, start=950), pool="real")


def test_a_20000_pixel_square_bomb_in_a_zip_is_refused_with_the_clear_error(session, config, study, tmp_path):
    """Pillow's own guard (default 89 Mpx, an error above 179 Mpx) fired before hype's check and
    escaped as DecompressionBombError; now Pillow's limit is the configured one and its error is
    turned into the message the README promises."""
    archive = tmp_path / "bombs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("bomb.png", png_header_only(20_000, 20_000))
    with pytest.raises(ImageImportError, match="bomb.png: .*exceeds the limit of 40,000,000 pixels .*decompression bomb"):
        studies.import_images(session, config, study, archive, pool="real")
    from PIL import Image as PILImage

    assert PILImage.MAX_IMAGE_PIXELS == config.max_image_pixels


def test_import_images_cli_refuses_a_bomb_without_a_traceback(session, config, study, tmp_path):
    from click.testing import CliRunner

    from hype.cli import main

    archive = tmp_path / "bombs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("bomb.png", png_header_only(20_000, 20_000))
    session.commit()
    result = CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "import-images", study.name, str(archive), "--real"],
                                env={"HYPE_DATABASE_URL": config.database_url, "HYPE_SECRET_KEY": "x"})
    assert result.exit_code != 0
    assert "decompression bomb" in result.output and "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
