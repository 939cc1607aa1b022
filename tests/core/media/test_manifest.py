from __future__ import annotations

import json

from annota.core.media.manifest import ManifestImage, images_manifest, video_manifest


def _lines(data: bytes) -> list[object]:
    assert data.endswith(b"\n")
    text = data.decode()
    assert ": " not in text and ", " not in text  # compact JSON
    return [json.loads(line) for line in text.splitlines()]


def test_images_manifest() -> None:
    data = images_manifest(
        [
            ManifestImage("dir/a", ".jpg", 64, 48, "0" * 32),
            ManifestImage("b", ".png", 10, 20, "f" * 32),
        ]
    )
    assert _lines(data) == [
        {"version": "1.1"},
        {"type": "images"},
        {
            "name": "dir/a",
            "extension": ".jpg",
            "width": 64,
            "height": 48,
            "meta": {"related_images": []},
            "checksum": "0" * 32,
        },
        {
            "name": "b",
            "extension": ".png",
            "width": 10,
            "height": 20,
            "meta": {"related_images": []},
            "checksum": "f" * 32,
        },
    ]
    assert data.splitlines()[2].startswith(b'{"name":"dir/a","extension":".jpg","width":64')


def test_empty_images_manifest_has_its_header() -> None:
    assert _lines(images_manifest([])) == [{"version": "1.1"}, {"type": "images"}]


def test_video_manifest() -> None:
    data = video_manifest("clip.mp4", 64, 48, 20, [(0, "a" * 32), (10, "b" * 32)])
    assert _lines(data) == [
        {"version": "1.0"},
        {"type": "video"},
        {"properties": {"name": "clip.mp4", "resolution": [64, 48], "length": 20}},
        {"number": 0, "pts": 0, "checksum": "a" * 32},
        {"number": 10, "pts": 10, "checksum": "b" * 32},
    ]
