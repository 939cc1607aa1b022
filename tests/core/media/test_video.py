from __future__ import annotations

from pathlib import Path

import cv2
import numpy
import pytest

from annota.core.errors import MediaError
from annota.core.media.video import VideoInfo, is_video_name, probe_video, read_video_frames

WIDTH, HEIGHT, FRAMES = 64, 48, 20


def _level(frame: int) -> int:
    return 10 + (frame * 12) % 240


def _write_video(path: Path, fourcc: str, frames: int = FRAMES) -> bool:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 10.0, (WIDTH, HEIGHT))
    if not writer.isOpened():
        return False
    for frame in range(frames):
        writer.write(numpy.full((HEIGHT, WIDTH, 3), _level(frame), numpy.uint8))
    writer.release()
    return True


@pytest.fixture(params=[("MJPG", ".avi"), ("mp4v", ".mp4")])
def video(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    fourcc, suffix = request.param
    path = tmp_path / f"clip{suffix}"
    if not _write_video(path, fourcc):
        pytest.skip(f"this OpenCV build cannot write {fourcc} {suffix}")
    return path


def test_is_video_name() -> None:
    assert is_video_name("a/b.MP4")
    assert is_video_name("c.mkv")
    assert not is_video_name("d.jpg")


def test_probe_counts_decodable_frames(video: Path) -> None:
    info = probe_video(video, video.name)
    assert info == VideoInfo(frame_count=FRAMES, width=WIDTH, height=HEIGHT, fps=pytest.approx(10.0))


def test_read_yields_requested_frames(video: Path) -> None:
    wanted = [0, 3, 4, 11, FRAMES - 1]
    result = list(read_video_frames(video, video.name, wanted))
    assert [number for number, _ in result] == wanted
    for number, image in result:
        assert image.shape == (HEIGHT, WIDTH, 3)
        assert abs(float(image.mean()) - _level(number)) < 5


def test_read_past_the_end_names_the_frame(video: Path) -> None:
    with pytest.raises(MediaError, match=rf"{video.name}: the video ends at frame {FRAMES - 1}; frame 25"):
        list(read_video_frames(video, video.name, [2, 25]))


def test_read_nothing_requested(video: Path) -> None:
    assert list(read_video_frames(video, video.name, [])) == []


def test_read_refuses_unordered_frames(video: Path) -> None:
    with pytest.raises(ValueError):
        list(read_video_frames(video, video.name, [3, 1]))


def test_generator_closed_early(video: Path) -> None:
    frames = read_video_frames(video, video.name, range(FRAMES))
    assert next(frames)[0] == 0
    frames.close()


def test_truncated_video_has_fewer_frames(tmp_path: Path) -> None:
    path = tmp_path / "cut.avi"
    assert _write_video(path, "MJPG", frames=40)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    info = probe_video(path, "cut.avi")
    assert 0 < info.frame_count < 40
    last = info.frame_count - 1
    assert [n for n, _ in read_video_frames(path, "cut.avi", [last])] == [last]
    with pytest.raises(MediaError, match=rf"cut.avi: the video ends at frame {last}; frame 39 could not"):
        list(read_video_frames(path, "cut.avi", [0, 39]))


def test_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(b"\x00\x01garbage" * 1000)
    with pytest.raises(MediaError, match="garbage.mp4"):
        probe_video(path, "garbage.mp4")
    with pytest.raises(MediaError, match="garbage.mp4"):
        list(read_video_frames(path, "garbage.mp4", [0]))
