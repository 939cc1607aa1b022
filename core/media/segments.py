"""How a task's frames are split into jobs (segments) and chunks, the way CVAT does it.

Clients compute frame and chunk numbers from these values, so the arithmetic follows CVAT's
``_generate_segment_params`` exactly rather than anything tidier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from annota.core.errors import ValidationError

#: Frames per chunk of a video task when the client does not choose.
VIDEO_CHUNK_SIZE = 36

_REFERENCE_PIXELS = 36 * 1920 * 1080
_INTERPOLATION_OVERLAP = 5


def default_chunk_size(width: int, height: int) -> int:
    """Frames per chunk of an image task whose first image is ``width`` x ``height``: about as
    many pixels as 36 Full HD frames, between 2 and 72 frames."""
    if width <= 0 or height <= 0:
        raise ValueError(f"an image size must be positive, got {width}x{height}")
    return max(2, min(72, _REFERENCE_PIXELS // (width * height)))


def segment_ranges(
    size: int, segment_size: int, overlap: int | None, mode: Literal["annotation", "interpolation"]
) -> list[tuple[int, int]]:
    """Inclusive ``(start, stop)`` relative frame ranges of the jobs of a task with ``size`` frames."""
    if size < 1:
        raise ValueError(f"a task needs at least one frame, got {size}")
    if segment_size < 0:
        raise ValueError(f"segment_size must not be negative, got {segment_size}")
    if overlap is not None and overlap < 0:
        raise ValueError(f"overlap must not be negative, got {overlap}")
    if segment_size == 0 or segment_size > size:
        segment_size = size
    if overlap is None:
        overlap = _INTERPOLATION_OVERLAP if mode == "interpolation" and segment_size < size else 0
    overlap = min(overlap, segment_size // 2)
    if size - overlap <= 0:
        return [(0, size - 1)]
    return [
        (start, min(start + segment_size - 1, size - 1))
        for start in range(0, size - overlap, segment_size - overlap)
    ]


def file_mapping_ranges(counts: Sequence[int]) -> list[tuple[int, int]]:
    """Inclusive frame ranges of jobs made of ``counts[i]`` consecutive frames each
    (``job_file_mapping``)."""
    ranges: list[tuple[int, int]] = []
    start = 0
    for index, count in enumerate(counts):
        if count < 1:
            raise ValidationError.for_field("job_file_mapping", f"Job {index} has no files")
        ranges.append((start, start + count - 1))
        start += count
    return ranges
