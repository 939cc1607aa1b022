"""Zip bombs: the expanded-size and compression-ratio limits stop extraction while it streams,
name the archive and the setting, and leave nothing behind; real datasets are not refused."""

from __future__ import annotations

import io
import json
import os
import random
import re
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from annota.core.errors import MediaError
from annota.core.media.archives import ArchiveLimits, extract_archive
from annota.runtime.settings import Settings
from tests.bombs import MiB, zip_of_zeros

GiB = 1024 * MiB
#: the server's defaults
DEFAULTS = ArchiveLimits.from_settings(Settings())
#: the defaults scaled down a thousandfold, so that small archives show the behaviour
SCALED = ArchiveLimits(max_total_size=64 * MiB, max_members=100, max_ratio=100, ratio_floor=MiB)


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def test_defaults_bound_size_and_ratio() -> None:
    assert DEFAULTS.max_total_size == 8 * GiB
    assert DEFAULTS.max_ratio == 100
    assert DEFAULTS.ratio_floor == 128 * MiB


def test_a_realistic_one_gibibyte_bomb_is_refused_fast_by_default(tmp_path: Path, dest: Path) -> None:
    bomb = zip_of_zeros(tmp_path / "bomb.zip", "frames/zeros.jpg", 1024)
    assert bomb.stat().st_size < 2 * MiB  # about 1000x
    started = time.monotonic()
    with pytest.raises(MediaError) as refused:
        extract_archive(bomb, "bomb.zip", dest, DEFAULTS)
    elapsed = time.monotonic() - started
    message = str(refused.value.detail)
    assert message.startswith("bomb.zip: ") and "max_archive_compression_ratio" in message, message
    assert "100 times" in message and "frames/zeros.jpg" in message
    # it stopped at the ratio floor (128 MiB written), not at 1 GiB: well under the 40 s of a full expansion
    assert elapsed < 10, elapsed
    assert _files(dest) == [] and list(dest.iterdir()) == []


def test_the_ratio_stops_extraction_while_streaming(tmp_path: Path, dest: Path) -> None:
    bomb = zip_of_zeros(tmp_path / "bomb.zip", "zeros.bin", 1024)
    limits = ArchiveLimits(max_total_size=8 * GiB, max_members=10, max_ratio=100, ratio_floor=MiB)
    with pytest.raises(MediaError) as refused:
        extract_archive(bomb, "bomb.zip", dest, limits)
    pattern = (
        r"member 'zeros.bin' .* compressed size \((\d+) bytes out of (\d+); max_archive_compression_ratio\)"
    )
    found = re.search(pattern, str(refused.value.detail))
    assert found, refused.value.detail
    # stopped a few MiB into the 1 GiB member, after reading well under the member's 1 MB of data
    expanded, compressed = int(found[1]), int(found[2])
    assert expanded < 64 * MiB and compressed < 512 * 1024, (expanded, compressed)
    assert _files(dest) == []


def test_one_bomb_member_among_incompressible_media_is_refused(tmp_path: Path, dest: Path) -> None:
    """The archive as a whole compresses little (its JPEG-like data does not compress), but one
    member expands far more than any real file."""
    path = tmp_path / "mixed.zip"
    noise = random.Random(1).randbytes(8 * MiB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.jpg", noise)
        archive.writestr("b.jpg", bytes(16 * MiB))
    limits = ArchiveLimits(max_total_size=GiB, max_members=10, max_ratio=100, ratio_floor=2 * MiB)
    with pytest.raises(MediaError, match=r"mixed.zip: member 'b.jpg' expands to more than 100 times"):
        extract_archive(path, "mixed.zip", dest, limits)
    assert _files(dest) == []


def test_a_tar_gz_bomb_is_refused(tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "bomb.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("zeros.png")
        info.size = 48 * MiB
        archive.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(MediaError, match="bomb.tar.gz: .*100 times.*max_archive_compression_ratio"):
        extract_archive(path, "bomb.tar.gz", dest, SCALED)
    assert _files(dest) == []


def test_a_bomb_split_over_many_members_is_refused_by_the_archive_ratio(tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(40):
            archive.writestr(f"{index}.bin", bytes(MiB // 2))  # each member stays under the floor
    with pytest.raises(MediaError, match=r"many.zip: the archive expands to more than 100 times its size"):
        extract_archive(path, "many.zip", dest, SCALED)
    assert _files(dest) == []


def test_an_archive_declaring_more_than_the_limit_is_refused_before_writing(
    tmp_path: Path, dest: Path
) -> None:
    bomb = zip_of_zeros(tmp_path / "big.zip", "zeros.bin", 80)
    started = time.monotonic()
    with pytest.raises(MediaError, match=r"big.zip: the archive declares 83886080 expanded bytes, more than "
                       r"the limit of 67108864 bytes \(max_archive_expanded_size\)"):  # fmt: skip
        extract_archive(bomb, "big.zip", dest, SCALED)
    assert time.monotonic() - started < 0.5
    assert list(dest.iterdir()) == []


def test_the_total_size_limit_names_its_setting(tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "noise.tar"
    with tarfile.open(path, "w") as archive:
        for index in range(3):
            data = random.Random(index).randbytes(MiB)
            info = tarfile.TarInfo(f"{index}.jpg")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    limits = ArchiveLimits(max_total_size=2 * MiB, max_members=10)
    with pytest.raises(MediaError, match=r"noise.tar: the archive expands to more than 2097152 bytes "
                       r"\(max_archive_expanded_size\), at member '2.jpg'"):  # fmt: skip
        extract_archive(path, "noise.tar", dest, limits)
    assert _files(dest) == []


def _annotations_json(count: int) -> bytes:
    """COCO-like annotations of near-identical boxes: about as repetitive as real exports get."""
    rows = [
        {"id": i, "image_id": i // 5, "category_id": 1, "segmentation": [], "area": 2000.0,
         "bbox": [0, 0, 50, 40], "iscrowd": 0, "attributes": {"occluded": False}}
        for i in range(count)
    ]  # fmt: skip
    return json.dumps({"annotations": rows}).encode()


def test_datasets_with_large_repetitive_annotation_files_are_accepted(tmp_path: Path, dest: Path) -> None:
    """A dataset of (incompressible) images and one big annotation file that compresses ~50x:
    above the floor, and still under the ratio."""
    content = _annotations_json(200_000)
    path = tmp_path / "dataset.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("annotations/instances_default.json", content)
        for index in range(4):
            archive.writestr(f"images/{index}.jpg", os.urandom(256 * 1024))
    ratio = len(content) / archive.getinfo("annotations/instances_default.json").compress_size
    assert 20 < ratio < 100, ratio
    limits = ArchiveLimits(max_total_size=GiB, max_members=10, max_ratio=100, ratio_floor=8 * MiB)
    assert len(content) > limits.ratio_floor
    extracted = extract_archive(path, "dataset.zip", dest, limits)
    assert extracted[0] == "annotations/instances_default.json" and len(extracted) == 5
    assert (dest / extracted[0]).read_bytes() == content


def test_small_files_are_never_refused_for_their_ratio(tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "masks.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("empty_mask.bmp", bytes(MiB // 2))
    assert extract_archive(path, "masks.zip", dest, SCALED) == ["empty_mask.bmp"]


def test_a_zero_ratio_turns_the_ratio_check_off(tmp_path: Path, dest: Path) -> None:
    bomb = zip_of_zeros(tmp_path / "bomb.zip", "zeros.bin", 4)
    limits = ArchiveLimits(max_total_size=64 * MiB, max_members=10, max_ratio=0, ratio_floor=0)
    assert extract_archive(bomb, "bomb.zip", dest, limits) == ["zeros.bin"]
