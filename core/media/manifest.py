"""The task's ``manifest.jsonl`` in CVAT's format: one JSON object a line describing the media,
so sizes and frame order are known without opening the media again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from annota.core.errors import MediaError

IMAGES_MANIFEST_VERSION = "1.1"
VIDEO_MANIFEST_VERSION = "1.0"

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class ManifestImage:
    name: str
    """The path relative to the upload, without its extension."""
    extension: str
    """With its dot, e.g. ``.jpg``."""
    width: int
    height: int
    checksum: str
    """MD5 (hex) of the file's bytes."""


def images_manifest(images: Sequence[ManifestImage]) -> bytes:
    lines: list[Any] = [{"version": IMAGES_MANIFEST_VERSION}, {"type": "images"}]
    lines.extend(
        {
            "name": image.name,
            "extension": image.extension,
            "width": image.width,
            "height": image.height,
            "meta": {"related_images": []},
            "checksum": image.checksum,
        }
        for image in images
    )
    return _jsonl(lines)


def video_manifest(
    name: str, width: int, height: int, frame_count: int, frames: Sequence[tuple[int, str]]
) -> bytes:
    """``frames``: ``(frame number, MD5 of the decoded frame's bytes)`` of the indexed frames."""
    lines: list[Any] = [
        {"version": VIDEO_MANIFEST_VERSION},
        {"type": "video"},
        {"properties": {"name": name, "resolution": [width, height], "length": frame_count}},
    ]
    lines.extend({"number": number, "pts": number, "checksum": checksum} for number, checksum in frames)
    return _jsonl(lines)


def _jsonl(lines: list[Any]) -> bytes:
    return b"".join(_encoder.encode(line) + b"\n" for line in lines)


class _ImageLine(msgspec.Struct):
    name: str
    extension: str = ""
    width: int = 0
    height: int = 0
    checksum: str = ""


_image_line = msgspec.json.Decoder(_ImageLine)
_header_line = msgspec.json.Decoder(dict[str, Any])


def read_images_manifest(content: bytes, where: str) -> list[ManifestImage]:
    """The images a CVAT images manifest lists, in its order; ``MediaError`` names ``where`` and
    the line of anything malformed. Sizes must be given: they are what a manifest is for."""
    lines = [(number, line) for number, line in enumerate(content.splitlines(), 1) if line.strip()]
    headers: dict[str, Any] = {}
    images: list[ManifestImage] = []
    for number, line in lines:
        try:
            if len(headers) < 2 and not images:
                value = _header_line.decode(line)
                if "name" not in value:
                    headers.update(value)
                    continue
            item = _image_line.decode(line)
        except msgspec.DecodeError as exc:
            raise MediaError(f"{where}, line {number}: not a manifest line ({exc})") from None
        if headers.get("type", "images") != "images":
            raise MediaError(
                f"{where}: a {headers.get('type')} manifest; only image manifests are supported here"
            )
        if not item.name or item.width <= 0 or item.height <= 0:
            raise MediaError(f"{where}, line {number}: an image needs a name, a width and a height")
        extension = (
            item.extension if not item.extension or item.extension.startswith(".") else "." + item.extension
        )
        images.append(ManifestImage(item.name, extension, item.width, item.height, item.checksum))
    if headers.get("type") != "images":
        raise MediaError(
            f'{where}: not a CVAT images manifest (its second line must be {{"type": "images"}})'
        )
    return images
