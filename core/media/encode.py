"""Pixels: decoding uploaded images and encoding the JPEGs of compressed chunks and previews.

Everything is one OpenCV call on the bytes already in memory, so a large task spends its time in
the codecs and not in conversions between libraries.
"""

from __future__ import annotations

import cv2
import numpy

from annota.core.errors import MediaError

PREVIEW_QUALITY = 80

_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: The IEND chunk: zero length, type, and its fixed CRC.
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def decode_image(data: bytes, name: str) -> numpy.ndarray:
    """An image as BGR ``uint8`` HxWx3, EXIF orientation applied; ``name`` is used in messages.

    ``IMREAD_COLOR`` already converts grayscale and alpha images to three channels and 16-bit
    images to 8 bits, and rotates JPEGs by their EXIF orientation.
    """
    if is_truncated(data, _sniff_format(data)):
        raise MediaError(f"{name}: the image file is truncated")
    buffer = numpy.frombuffer(data, dtype=numpy.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error as error:
        raise MediaError(f"{name}: the image cannot be decoded ({error.msg})") from error
    if image is None or image.size == 0:
        raise MediaError(f"{name}: the image cannot be decoded")
    if image.dtype != numpy.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    return image


def encode_jpeg(image: numpy.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MediaError(f"an image of shape {image.shape} cannot be encoded as JPEG")
    return buffer.tobytes()


def make_preview(image: numpy.ndarray, max_side: int = 256) -> bytes:
    """A JPEG no larger than ``max_side`` on its longer side, same aspect ratio, never upscaled."""
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest > max_side:
        scale = max_side / longest
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return encode_jpeg(image, PREVIEW_QUALITY)


def is_truncated(data: bytes, format: str) -> bool:
    """Whether a JPEG or PNG file lacks its end marker (other formats are not checked).

    OpenCV decodes a truncated JPEG with a mere warning, filling the rest with gray; the end
    marker is the cheap way to notice an upload cut short.
    """
    kind = format.upper()
    if kind in ("JPEG", "JPG", "MPO"):
        return not _ends_with(data, _JPEG_END)
    if kind == "PNG":
        return not _ends_with(data, _PNG_END)
    return False


def _ends_with(data: bytes, marker: bytes) -> bool:
    if data.endswith(marker):
        return True
    # some writers pad files with zeros up to a block size
    return data.rstrip(b"\x00").endswith(marker)


def _sniff_format(data: bytes) -> str:
    if data.startswith(_JPEG_MAGIC):
        return "JPEG"
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    return ""
