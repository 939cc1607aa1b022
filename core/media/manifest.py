"""The task's ``manifest.jsonl`` in CVAT's format: one JSON object a line describing the media,
so sizes and frame order are known without opening the media again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

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
