"""Video: counting the frames of an uploaded video and decoding the ones a task keeps.

Containers often declare a frame count that the stream does not deliver (a cut upload, a broken
index), so frames are counted by decoding, and reading stops with an error naming the first
frame that is missing instead of producing a short task.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy

from annota.core.errors import MediaError

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg"}
)


def is_video_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoInfo:
    frame_count: int
    width: int
    height: int
    fps: float


def probe_video(path: Path, name: str) -> VideoInfo:
    """The number of frames that decode, the frame size (of the first frame) and the frame rate."""
    capture = _open(path, name)
    try:
        ok, first = capture.read()
        if not ok or first is None:
            raise MediaError(f"{name}: the video has no decodable frame")
        height, width = first.shape[:2]
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count = 1
        while capture.grab():
            count += 1
    finally:
        capture.release()
    return VideoInfo(frame_count=count, width=width, height=height, fps=fps)


def read_video_frames(
    path: Path, name: str, frames: Sequence[int]
) -> Generator[tuple[int, numpy.ndarray], None, None]:
    """``(frame number, BGR image)`` for each of ``frames``: ascending source frame numbers.

    Closing the generator early releases the video.
    """
    _check_ascending(frames)
    if not frames:
        return
    capture = _open(path, name)
    try:
        position = 0  # the number of the frame the next grab() decodes
        for wanted in frames:
            while position < wanted:
                if not capture.grab():
                    raise _ended(name, position, wanted)
                position += 1
            ok, image = capture.read()
            if not ok or image is None:
                raise _ended(name, position, wanted)
            position += 1
            yield wanted, image
    finally:
        capture.release()


def _open(path: Path, name: str) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise MediaError(f"{name}: the file cannot be opened as a video")
    return capture


def _ended(name: str, decoded: int, wanted: int) -> MediaError:
    if decoded == 0:
        return MediaError(f"{name}: the video has no decodable frame; frame {wanted} could not be decoded")
    return MediaError(f"{name}: the video ends at frame {decoded - 1}; frame {wanted} could not be decoded")


def _check_ascending(frames: Sequence[int]) -> None:
    previous = -1
    for frame in frames:
        if frame <= previous:
            raise ValueError(f"frame numbers must be ascending and non-negative, got {list(frames)[:10]}...")
        previous = frame
