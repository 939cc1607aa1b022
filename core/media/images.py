"""Image probing: the size and format of an image from its header, without decoding pixels.

Task creation needs every image's size up front (for the manifest, the chunk size and the frame
metadata); reading only the header keeps that step cheap even for hundreds of large photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from annota.core.errors import MediaError

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp"}
)

#: Larger images are refused: decoding one would need gigabytes of memory.
MAX_IMAGE_PIXELS = 2**28

#: EXIF orientations that rotate the image by 90 or 270 degrees (the stored width is the shown height).
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION_TAG = 0x0112


def is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def probe_image(path: Path | BinaryIO, name: str) -> ImageInfo:
    """The displayed size of an image (EXIF orientation applied) and its Pillow format name;
    ``path`` may be an open file holding the image's first bytes only."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            image_format = image.format or ""
            if _is_transposed(image):
                width, height = height, width
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise MediaError(f"{name}: the image is too large ({error})") from error
    except (UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise MediaError(f"{name}: not a supported image file") from error
    except OSError as error:
        raise MediaError(f"{name}: the image cannot be read ({error})") from error
    if width <= 0 or height <= 0:
        raise MediaError(f"{name}: the image has an invalid size {width}x{height}")
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(
            f"{name}: the image is too large ({width}x{height} pixels, at most {MAX_IMAGE_PIXELS} allowed)"
        )
    return ImageInfo(width=width, height=height, format=image_format)


def _is_transposed(image: Image.Image) -> bool:
    # A PNG keeps its eXIf chunk wherever it likes; Pillow decodes the pixels to find one placed
    # after the image data, so only a chunk already seen in the header is used.
    if image.format == "PNG" and "exif" not in image.info:
        return False
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION_TAG)
    except (SyntaxError, ValueError, TypeError, OSError, KeyError):
        # Broken EXIF does not make the image unusable; decoders ignore it too.
        return False
    return orientation in _TRANSPOSING_ORIENTATIONS
