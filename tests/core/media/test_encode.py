from __future__ import annotations

import io

import cv2
import numpy
import pytest
from PIL import Image

from annota.core.errors import MediaError
from annota.core.media.encode import decode_image, encode_jpeg, is_truncated, make_preview


def _pil_bytes(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def _png(array: numpy.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", array)
    assert ok
    return buffer.tobytes()


def test_decode_png_keeps_pixels_in_bgr() -> None:
    image = numpy.zeros((48, 64, 3), numpy.uint8)
    image[:, :] = (255, 0, 0)  # blue in BGR
    decoded = decode_image(_png(image), "a.png")
    assert decoded.shape == (48, 64, 3) and decoded.dtype == numpy.uint8
    assert (decoded == image).all()


def test_decode_converts_gray_alpha_and_16_bit() -> None:
    gray = numpy.full((48, 64), 77, numpy.uint8)
    assert decode_image(_png(gray), "g.png").shape == (48, 64, 3)
    rgba = numpy.full((48, 64, 4), 120, numpy.uint8)
    assert decode_image(_png(rgba), "a.png").shape == (48, 64, 3)
    deep = numpy.full((48, 64, 3), 65535, numpy.uint16)
    decoded = decode_image(_png(deep), "d.png")
    assert decoded.dtype == numpy.uint8 and decoded.shape == (48, 64, 3)
    assert decoded.min() == 255


def test_decode_applies_jpeg_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _pil_bytes(Image.new("RGB", (64, 48)), "JPEG", exif=exif)
    assert decode_image(data, "r.jpg").shape == (64, 48, 3)


def test_decode_refuses_garbage_and_truncated_files() -> None:
    with pytest.raises(MediaError, match="x.jpg"):
        decode_image(b"not an image at all", "x.jpg")
    jpeg = encode_jpeg(numpy.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=numpy.uint8), 90)
    with pytest.raises(MediaError, match="cut.jpg.*truncated"):
        decode_image(jpeg[: len(jpeg) // 2], "cut.jpg")
    png = _png(numpy.zeros((48, 64, 3), numpy.uint8))
    with pytest.raises(MediaError, match="cut.png"):
        decode_image(png[:-20], "cut.png")


def test_is_truncated() -> None:
    jpeg = encode_jpeg(numpy.zeros((8, 8, 3), numpy.uint8), 80)
    assert not is_truncated(jpeg, "JPEG")
    assert not is_truncated(jpeg + b"\x00" * 100, "JPEG")
    assert is_truncated(jpeg[:-1], "JPEG")
    png = _png(numpy.zeros((8, 8, 3), numpy.uint8))
    assert not is_truncated(png, "PNG")
    assert is_truncated(png[:-12], "PNG")
    assert not is_truncated(b"BM...", "BMP")


def test_encode_jpeg_round_trips_within_quality_loss() -> None:
    image = numpy.full((48, 64, 3), (30, 120, 200), numpy.uint8)
    data = encode_jpeg(image, 95)
    assert data[:3] == b"\xff\xd8\xff"
    decoded = decode_image(data, "a.jpg")
    assert numpy.abs(decoded.astype(int) - image.astype(int)).max() <= 3
    assert len(
        encode_jpeg(numpy.random.default_rng(2).integers(0, 255, (48, 64, 3), dtype=numpy.uint8), 10)
    ) < len(encode_jpeg(numpy.random.default_rng(2).integers(0, 255, (48, 64, 3), dtype=numpy.uint8), 95))


@pytest.mark.parametrize(
    ("shape", "expected"), [((1000, 500), (256, 128)), ((300, 600), (128, 256)), ((48, 64), (48, 64))]
)
def test_preview_keeps_aspect_and_never_upscales(shape: tuple[int, int], expected: tuple[int, int]) -> None:
    preview = make_preview(numpy.zeros((*shape, 3), numpy.uint8))
    assert decode_image(preview, "p.jpg").shape[:2] == expected
