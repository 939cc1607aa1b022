from __future__ import annotations

import itertools
from typing import Literal

import pytest

from annota.core.errors import ValidationError
from annota.core.media.segments import default_chunk_size, file_mapping_ranges, segment_ranges


def _cvat_segments(size: int, segment_size: int, overlap: int | None, mode: str) -> list[tuple[int, int]]:
    """CVAT's ``_generate_segment_params`` as written there."""
    if segment_size == 0 or segment_size > size:
        segment_size = size
    overlap = min(overlap if overlap is not None else 5 if mode == "interpolation" else 0, segment_size // 2)
    return [
        (start, min(start + segment_size - 1, size - 1))
        for start in range(0, size - overlap, segment_size - overlap)
    ]


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(1920, 1080, 36), (64, 48, 72), (3840, 2160, 9), (10000, 10000, 2), (1280, 720, 72), (2000, 1500, 24)],
)
def test_default_chunk_size(width: int, height: int, expected: int) -> None:
    assert default_chunk_size(width, height) == expected


def test_examples() -> None:
    assert segment_ranges(10, 0, None, "annotation") == [(0, 9)]
    assert segment_ranges(10, 4, None, "annotation") == [(0, 3), (4, 7), (8, 9)]
    assert segment_ranges(10, 4, 1, "annotation") == [(0, 3), (3, 6), (6, 9)]
    assert segment_ranges(20, 10, None, "interpolation") == [(0, 9), (5, 14), (10, 19)]
    assert segment_ranges(10, 10, None, "interpolation") == [(0, 9)]
    assert segment_ranges(1, 1, None, "interpolation") == [(0, 0)]
    assert segment_ranges(5, 1, 3, "annotation") == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]
    assert segment_ranges(10, 4, 100, "annotation") == [(0, 3), (2, 5), (4, 7), (6, 9)]


def test_matches_cvat_for_many_combinations() -> None:
    modes: tuple[Literal["annotation", "interpolation"], ...] = ("annotation", "interpolation")
    for size, segment_size, overlap, mode in itertools.product(
        range(1, 40), range(45), (None, 0, 1, 2, 3, 5, 7, 20, 100), modes
    ):
        ranges = segment_ranges(size, segment_size, overlap, mode)
        assert ranges == _cvat_segments(size, segment_size, overlap, mode), (
            size,
            segment_size,
            overlap,
            mode,
        )
        assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
        covered = {frame for start, stop in ranges for frame in range(start, stop + 1)}
        assert covered == set(range(size))


def test_refuses_impossible_input() -> None:
    with pytest.raises(ValueError):
        segment_ranges(0, 0, None, "annotation")
    with pytest.raises(ValueError):
        default_chunk_size(0, 10)


def test_file_mapping_ranges() -> None:
    assert file_mapping_ranges([3, 1, 2]) == [(0, 2), (3, 3), (4, 5)]
    assert file_mapping_ranges([]) == []
    with pytest.raises(ValidationError) as raised:
        file_mapping_ranges([2, 0])
    assert "job_file_mapping" in raised.value.detail
