"""Writes the hostile-input corpus next to this file: ``python tests/data/hostile/make_corpus.py``.

The files are committed (each well under 50 KB); this script is how they were made, so that one can
be changed or added with its intent in plain sight. Folders name what a file attacks:

- ``media/``: uploaded as a task's images or video (truncated and corrupt images, headers declaring
  absurd dimensions, an empty file, text posing as a video);
- ``archives/``: uploaded as a task's media, an annotation file or a backup (members escaping with
  ``../`` or absolute names, links, duplicate names, an archive in an archive, a truncated zip, a
  zip expanding far past its size);
- ``datasets/``: put in place of the files a dataset format reads (XML with entity expansion or an
  external entity, malformed CVAT XML, COCO JSON with wrong types, missing keys, huge numbers and
  NaN, YOLO lines of garbage, text that is not UTF-8, empty files);
- ``requests.json``: headers and query strings of the upload and import endpoints.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent


def jpeg(width: int = 16, height: int = 16) -> bytes:
    """A tiny valid baseline JPEG (gray), written without any imaging library."""
    import cv2
    import numpy as np

    ok, encoded = cv2.imencode(".jpg", np.full((height, width, 3), 128, dtype=np.uint8))
    assert ok
    return bytes(encoded.tobytes())


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` over a few bytes of pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) is rewritten to declare ``width`` x ``height``."""
    data = bytearray(jpeg())
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def zipped(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = method
            archive.writestr(info, content)
    return buffer.getvalue()


def tarred(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, content = member
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(content), 1577836800
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime = kind, target, 1577836800
    return info


def duplicates() -> bytes:
    # rename b.jpg to a.jpg in both headers: two members, one name
    return zipped([("a.jpg", jpeg()), ("b.jpg", jpeg())]).replace(b"b.jpg", b"a.jpg")


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">\n' for n in range(1, 10)
    )
    + "]>\n<annotations><version>1.1</version><meta><task><name>&lol9;</name></task></meta></annotations>\n"
)

EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE annotations [\n <!ENTITY secret SYSTEM "file:///etc/passwd">\n]>\n'
    "<annotations><version>1.1</version>\n"
    '<image id="0" name="&secret;" width="16" height="16"/></annotations>\n'
)

CVAT_MALFORMED = (
    '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>\n'
    '<image id="0" name="a.jpg" width="16" height="16">\n<box label="car" xtl="1" ytl="1"'
)

CVAT_WRONG_TYPES = (
    '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>\n'
    '<image id="zero" name="a.jpg" width="wide" height="-16">\n'
    '<box label="car" xtl="nan" ytl="inf" xbr="1e999" ybr="x" occluded="maybe" z_order="high"/>\n'
    '<polygon label="car" points="1,2;3;;4,x" occluded="0"/>\n'
    "</image></annotations>\n"
)

COCO_IMAGES = [{"id": 1, "file_name": "a.jpg", "width": 16, "height": 16}]
COCO_CATEGORIES = [{"id": 1, "name": "car", "supercategory": ""}]

DATASET_FILES: dict[str, Callable[[], bytes] | bytes] = {
    "billion_laughs.xml": BILLION_LAUGHS.encode(),
    "external_entity.xml": EXTERNAL_ENTITY.encode(),
    "cvat_malformed.xml": CVAT_MALFORMED.encode(),
    "cvat_wrong_types.xml": CVAT_WRONG_TYPES.encode(),
    "coco_wrong_types.json": json.dumps(
        {
            "images": {"id": "one"},
            "annotations": [{"id": "x", "image_id": [1], "category_id": None, "bbox": "1,2,3,4"}],
            "categories": "car",
        }
    ).encode(),
    "coco_missing_keys.json": json.dumps(
        {"images": [{"file_name": "a.jpg"}], "annotations": [{"bbox": [1, 2, 3, 4]}], "categories": [{}]}
    ).encode(),
    "coco_huge_numbers.json": json.dumps(
        {
            "images": [{"id": 10**30, "file_name": "a.jpg", "width": 10**40, "height": -(10**40)}],
            "annotations": [
                {
                    "id": 1,
                    "image_id": 10**30,
                    "category_id": 1,
                    "bbox": [1e308, 1e308, 1e308, 1e308],
                    "area": 1e308,
                    "iscrowd": 0,
                    "segmentation": [[1e308, 0, 0, 1e308, 1, 1]],
                }
            ],
            "categories": COCO_CATEGORIES,
        }
    ).encode(),
    # the NaN and Infinity literals Python's json writes and strict JSON has not
    "coco_nan.json": json.dumps(
        {
            "images": COCO_IMAGES,
            "annotations": [
                {
                    "id": 1,
                    "image_id": 1,
                    "category_id": 1,
                    "bbox": [float("nan"), 1, float("inf"), 2],
                    "area": float("nan"),
                    "iscrowd": 0,
                    "segmentation": [[float("nan"), 0, 1, 1, 2, 2]],
                }
            ],
            "categories": COCO_CATEGORIES,
        }
    ).encode(),
    "not_json.json": b'{"images": [ {"id": 1,, ]',
    "yolo_garbage.txt": b"0 0.5 0.5\nbanana 1 2 3 4\n0 nan inf -1 1e999\n\x00\x01\x02 0.1 0.1 0.1 0.1\n"
    + b"7 0.5 0.5 0.2 0.2 0.9 0.9\n",
    "yaml_bomb.yaml": b'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
    + b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    + b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nnames: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
    "yaml_python_tag.yaml": b"names: !!python/object/apply:os.system ['echo owned']\npath: .\n",
    "non_utf8.txt": "caf\xe9 \xff\xfe car\n0 0.5 0.5 0.1 0.1\n".encode("latin-1"),
    "non_utf8.json": '{"name": "caf\xe9"}'.encode("latin-1"),
    "non_utf8.xml": '<?xml version="1.0" encoding="utf-8"?>\n<annotations>caf\xe9\xff</annotations>\n'.encode(
        "latin-1"
    ),
    "empty.json": b"",
    "empty.xml": b"",
    "empty.txt": b"",
}

MEDIA_FILES: dict[str, Callable[[], bytes] | bytes] = {
    "truncated.jpg": lambda: jpeg(64, 64)[:200],
    "corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    "bomb.png": lambda: png_declaring(200_000, 200_000),
    "bomb.jpg": lambda: jpeg_declaring(65_000, 65_000),
    "zero_size.png": lambda: png_declaring(0, 0),
    "empty.jpg": b"",
    "text.jpg": b"this is not an image\n",
    "not_a_video.mp4": b"\x00\x00\x00\x18ftypmp42" + b"not a video at all " * 50,
}

ARCHIVE_FILES: dict[str, Callable[[], bytes] | bytes] = {
    "traversal.zip": lambda: zipped([("a.jpg", jpeg()), ("../../escaped.jpg", jpeg())]),
    "absolute.zip": lambda: zipped([("a.jpg", jpeg()), ("/tmp/annota-absolute.jpg", jpeg())]),
    "duplicates.zip": duplicates,
    "nested.zip": lambda: zipped([("inner.zip", zipped([("a.jpg", jpeg()), ("../escaped.jpg", jpeg())]))]),
    "truncated.zip": lambda: zipped([("a.jpg", jpeg()), ("b.jpg", jpeg())])[:-40],
    "not_a_zip.zip": b"PK\x03\x04 but nothing that follows is a zip archive",
    # 40 MB of zeros deflated to some 40 kilobytes
    "bomb.zip": lambda: zipped([("a.jpg", jpeg()), ("zeros.jpg", b"\0" * 40_000_000)], zipfile.ZIP_DEFLATED),
    "symlink.tar": lambda: tarred([("a.jpg", jpeg()), link("b.jpg", "/etc/passwd", tarfile.SYMTYPE)]),
    "hardlink.tar": lambda: tarred([("a.jpg", jpeg()), link("b.jpg", "/etc/passwd", tarfile.LNKTYPE)]),
    "traversal.tar": lambda: tarred([("a.jpg", jpeg()), ("../../escaped.jpg", jpeg())]),
    "empty.zip": lambda: zipped([]),
}

#: headers and query strings sent to the upload and import endpoints, each to be refused with a 4xx
REQUESTS = {
    "tus_upload_length": ["-1", "1e309", "nan", "0x10", "99999999999999999999999999", ""],
    "tus_upload_metadata": ["filename", "filename !!!notbase64", "filename " + "/" * 8, "=,=,="],
    "import_query": [
        {"format": ""},
        {"format": "COCO 1.0\u0000"},
        {"format": "../../etc/passwd"},
        {"format": "COCO 1.0", "conv_mask_to_poly": "maybe"},
    ],
    # the name of a file uploaded before (TUS), sent with Upload-Finish
    "upload_finish_filename": ["../../etc/passwd", "/etc/passwd", "C:\\Windows\\..\\win.ini", "", "\u0000"],
}


def build() -> dict[str, bytes]:
    """Every corpus file by its path under this folder."""
    files: dict[str, bytes] = {}
    for folder, makers in (("datasets", DATASET_FILES), ("media", MEDIA_FILES), ("archives", ARCHIVE_FILES)):
        for name, content in makers.items():
            files[f"{folder}/{name}"] = content() if callable(content) else content
    files["requests.json"] = (json.dumps(REQUESTS, indent=1, ensure_ascii=True) + "\n").encode()
    return files


def main() -> None:
    for name, data in build().items():
        assert len(data) < 50_000, f"{name} is {len(data)} bytes"
        (HERE / name).parent.mkdir(exist_ok=True)
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
