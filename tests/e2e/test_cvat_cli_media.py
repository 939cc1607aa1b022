"""Media through the unmodified cvat-cli against a real annota server: ``task create`` from local
images and from a video, ``task frames``, ``task auto-annotate`` with a detection function file
and ``task delete``, on SQLite and on PostgreSQL + Redis with an arq worker."""

from __future__ import annotations

import json
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx2 as httpx
import numpy as np
import pytest

from tests.e2e.conftest import ADMIN, LiveServer

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 96, 64
FRAME_COUNT = {"images": 5, "video": 10}
LABELS = json.dumps([{"name": "car"}, {"name": "person"}])
#: gray background levels stay far below the detection threshold, the rectangle far above it
BRIGHT = 200

DETECTION_FUNCTION = textwrap.dedent(
    """
    import numpy as np
    import cvat_sdk.auto_annotation as cvataa

    spec = cvataa.DetectionFunctionSpec(labels=[cvataa.label_spec("car", 0)])


    def detect(context, image):
        ys, xs = np.nonzero(np.asarray(image.convert("L")) > BRIGHT)
        box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
        return [cvataa.rectangle(0, box)]
    """
).replace("BRIGHT", str(BRIGHT))


@dataclass(frozen=True)
class DrawnFrame:
    gray: int
    #: the white rectangle as x1, y1, x2, y2 (x2, y2 exclusive), as a CVAT rectangle's points
    box: tuple[int, int, int, int]

    def pixels(self) -> np.ndarray:
        image = np.full((HEIGHT, WIDTH, 3), self.gray, dtype=np.uint8)
        x1, y1, x2, y2 = self.box
        image[y1:y2, x1:x2] = 255
        return image


def drawn_frames(count: int) -> list[DrawnFrame]:
    return [
        DrawnFrame(gray=30 + 12 * i, box=(8 + 4 * i, 6 + 2 * i, 40 + 4 * i, 30 + 2 * i)) for i in range(count)
    ]


def write_images(directory: Path, frames: list[DrawnFrame]) -> list[Path]:
    paths = []
    for number, frame in enumerate(frames):
        path = directory / f"{'abcdefghij'[number]}.jpg"
        assert cv2.imwrite(str(path), frame.pixels(), [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return paths


def write_video(directory: Path, frames: list[DrawnFrame]) -> list[Path]:
    path = directory / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame.pixels())
    writer.release()
    return [path]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def listed_ids(server: LiveServer) -> list[int]:
    return [int(line) for line in ok(server.cvat_cli("task", "ls")).split()]


def assert_frame_file(path: Path, frame: DrawnFrame) -> None:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None, f"{path} does not decode"
    assert image.shape == (HEIGHT, WIDTH)
    x1, y1, x2, y2 = frame.box
    inside = image[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2]
    outside = np.ones(image.shape, dtype=bool)
    outside[max(y1 - 3, 0) : y2 + 3, max(x1 - 3, 0) : x2 + 3] = False
    assert abs(float(np.median(image[outside])) - frame.gray) <= 6, path
    assert float(np.median(inside)) >= 245, path


def task_shapes(server: LiveServer, task_id: int) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/tasks/{task_id}/annotations", auth=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    shapes: list[dict[str, Any]] = response.json()["shapes"]
    return sorted(shapes, key=lambda shape: shape["frame"])


def label_ids(server: LiveServer, task_id: int) -> dict[str, int]:
    response = httpx.get(f"{server.url}/api/labels", params={"task_id": task_id}, auth=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    return {label["name"]: label["id"] for label in response.json()["results"]}


def assert_auto_rectangles(server: LiveServer, task_id: int, frames: list[DrawnFrame]) -> None:
    shapes = task_shapes(server, task_id)
    assert [shape["frame"] for shape in shapes] == list(range(len(frames)))
    car = label_ids(server, task_id)["car"]
    for shape, frame in zip(shapes, frames, strict=True):
        assert (shape["type"], shape["source"], shape["label_id"]) == ("rectangle", "auto", car)
        assert shape["points"] == pytest.approx(frame.box, abs=2), shape["frame"]


@pytest.mark.parametrize("kind", ["images", "video"])
def test_cli_creates_serves_annotates_and_deletes_media_tasks(
    live_server: LiveServer, tmp_path: Path, kind: str
) -> None:
    frames = drawn_frames(FRAME_COUNT[kind])
    media_dir = tmp_path / "media"
    media_dir.mkdir()
    media = write_images(media_dir, frames) if kind == "images" else write_video(media_dir, frames)

    created = ok(
        live_server.cvat_cli(
            "task",
            "create",
            f"{kind} task",
            "local",
            *map(str, media),
            "--labels",
            LABELS,
            "--completion_verification_period",
            "0.2",
        )
    )
    task_id = int(created.split()[-1])
    assert task_id in listed_ids(live_server)
    listed = {t["id"]: t for t in json.loads(ok(live_server.cvat_cli("task", "ls", "--json")))}
    assert listed[task_id]["name"] == f"{kind} task"
    assert listed[task_id]["size"] == len(frames)

    last = len(frames) - 1
    for quality in ("original", "compressed"):
        out = tmp_path / quality
        ok(live_server.cvat_cli("task", "frames", str(task_id), "0", "1", str(last), "--outdir", str(out),
               "--quality", quality))  # fmt: skip
        for number in (0, 1, last):
            saved = sorted(out.glob(f"task_{task_id}_frame_{number:06d}.*"))
            assert len(saved) == 1, sorted(p.name for p in out.iterdir())
            assert_frame_file(saved[0], frames[number])

    function = tmp_path / "bright_box.py"
    function.write_text(DETECTION_FUNCTION)
    ok(live_server.cvat_cli("task", "auto-annotate", str(task_id), "--function-file", str(function)))
    assert_auto_rectangles(live_server, task_id, frames)
    ok(live_server.cvat_cli("task", "auto-annotate", str(task_id), "--function-file", str(function),
           "--clear-existing"))  # fmt: skip
    assert_auto_rectangles(live_server, task_id, frames)

    ok(live_server.cvat_cli("task", "delete", str(task_id)))
    assert task_id not in listed_ids(live_server)
    gone = httpx.get(f"{live_server.url}/api/tasks/{task_id}", auth=ADMIN, timeout=30)
    assert gone.status_code == 404, gone.text
