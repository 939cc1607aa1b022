from __future__ import annotations

import io
from pathlib import Path

import numpy
import pytest
from PIL import Image

from annota.core.errors import MediaError
from annota.core.media.images import ImageInfo, is_image_name, probe_image


def _save(path: Path, image: Image.Image, format: str, **options: object) -> Path:
    image.save(path, format=format, **options)
    return path


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def test_is_image_name_by_extension_ignoring_case() -> None:
    assert is_image_name("dir/a.JPG")
    assert is_image_name("b.webp")
    assert is_image_name("c.Tiff")
    assert not is_image_name("video.mp4")
    assert not is_image_name("jpg")


@pytest.mark.parametrize(
    ("format", "suffix"),
    [("JPEG", ".jpg"), ("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif"), ("WEBP", ".webp")],
)
def test_probe_reports_size_and_format(tmp_path: Path, format: str, suffix: str) -> None:
    path = _save(tmp_path / f"a{suffix}", Image.new("RGB", (64, 48), (10, 20, 30)), format)
    assert probe_image(path, "a") == ImageInfo(64, 48, format)


@pytest.mark.parametrize(
    ("orientation", "size"), [(1, (64, 48)), (3, (64, 48)), (6, (48, 64)), (8, (48, 64))]
)
def test_probe_applies_exif_orientation(tmp_path: Path, orientation: int, size: tuple[int, int]) -> None:
    path = _save(tmp_path / "a.jpg", Image.new("RGB", (64, 48)), "JPEG", exif=_exif(orientation))
    info = probe_image(path, "a.jpg")
    assert (info.width, info.height) == size


def test_probe_does_not_decode_pixels(tmp_path: Path) -> None:
    # the header is intact but the pixel data is cut off: a header-only probe still succeeds
    data = io.BytesIO()
    Image.fromarray(numpy.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=numpy.uint8)).save(
        data, "JPEG"
    )
    path = tmp_path / "cut.jpg"
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    assert probe_image(path, "cut.jpg") == ImageInfo(64, 48, "JPEG")


def test_probe_refuses_non_images_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(b"this is not an image")
    with pytest.raises(MediaError, match=r"photos/x\.jpg"):
        probe_image(path, "photos/x.jpg")


def test_probe_refuses_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(MediaError, match="empty.png"):
        probe_image(path, "empty.png")


def test_probe_refuses_huge_images(tmp_path: Path) -> None:
    # a 1-bit PNG of 20000x20000 is small on disk but 4e8 pixels
    path = _save(tmp_path / "bomb.png", Image.new("1", (20000, 20000)), "PNG")
    with pytest.raises(MediaError, match="bomb.png.*too large"):
        probe_image(path, "bomb.png")
