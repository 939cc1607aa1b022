"""Exports of video tasks with their images: CVAT names a video's frames by their number in the
video, so a frame step skips numbers and every frame gets a file of its own."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.media import wait_for_request


def _video(path: Path, frames: int = 6) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for number in range(frames):
        writer.write(np.full((48, 64, 3), number * 40, dtype=np.uint8))
    writer.release()
    return path.read_bytes()


def _export(client: Any, task_id: int, format_name: str) -> zipfile.ZipFile:
    response = client.post(
        f"/api/tasks/{task_id}/dataset/export",
        params={"format": format_name, "location": "local", "save_images": "true"},
    )
    assert response.status_code == 202, response.text
    request = wait_for_request(client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    return zipfile.ZipFile(io.BytesIO(client.get(request["result_url"]).content))


@pytest.mark.parametrize("format_name", ["CVAT for video 1.1", "CVAT for images 1.1"])
def test_video_with_a_frame_step_exports_one_image_per_frame(
    user_client, make_media_task, tmp_path, format_name
):
    content = _video(tmp_path / "clip.avi")
    task_id = make_media_task(user_client, [("clip.avi", content)], start_frame=1, frame_filter="step=2")
    (label,) = user_client.get("/api/labels", params={"task_id": task_id}).json()["results"]
    box = {"type": "rectangle", "frame": 1, "label_id": label["id"], "points": [1, 2, 10, 20]}
    assert user_client.put(f"/api/tasks/{task_id}/annotations", json={"shapes": [box]}).status_code == 200
    archive = _export(user_client, task_id, format_name)
    images = sorted(name for name in archive.namelist() if name.startswith("images/"))
    assert images == ["images/frame_000001.jpg", "images/frame_000003.jpg", "images/frame_000005.jpg"]
    assert all(archive.read(name)[:2] == b"\xff\xd8" for name in images)
    if format_name == "CVAT for images 1.1":
        assert '<image id="1" name="frame_000003"' in archive.read("annotations.xml").decode()
    # the export imports back onto the frames it came from
    user_client.delete(f"/api/tasks/{task_id}/annotations")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as again:
        again.writestr("annotations.xml", archive.read("annotations.xml"))
    response = user_client.post(
        f"/api/tasks/{task_id}/annotations",
        params={"format": "CVAT 1.1"},
        files={"annotation_file": ("a.zip", buffer.getvalue())},
    )
    assert response.status_code == 202, response.text
    assert wait_for_request(user_client, response.json()["rq_id"])["status"] == "finished"
    annotations = user_client.get(f"/api/tasks/{task_id}/annotations").json()
    frames = [s["frame"] for s in annotations["shapes"]] + [
        shape["frame"] for track in annotations["tracks"] for shape in track["shapes"] if not shape["outside"]
    ]
    assert frames == [1]
