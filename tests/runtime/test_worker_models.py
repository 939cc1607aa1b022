"""Auto-annotation on real ``annota worker`` processes: a request whose worker is killed midway
runs again on another worker and writes its annotations exactly once."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np
import pytest
from starlette.testclient import TestClient

from annota.runtime.settings import Settings, finalize
from tests.models_media import astronaut_image, iou
from tests.runtime.test_worker import (  # noqa: F401 (fixtures)
    REQUEST_LEASE,
    SWEEP_INTERVAL,
    Workers,
    annota_database_url,
    queue_prefix,
    workers,
)

#: three steps of the job (it reports progress and checks for cancellation every 16 frames)
FRAMES = 48
#: the face on astronaut.png at the half size frames have here
FACE = [86.5, 33.0, 137.0, 90.5]
MODELS = '[[models]]\nname = "faces"\nkind = "opencv-haar"\nlabels = ["person"]\n'


@pytest.fixture
def annota_settings(tmp_path: Path, annota_database_url: str, redis_url: str, queue_prefix: str) -> Settings:  # noqa: F811
    return finalize(
        Settings(
            data_dir=str(tmp_path / "data"), database_url=annota_database_url, redis_url=redis_url,
            queue_prefix=queue_prefix, request_lease=REQUEST_LEASE, sweep_interval=SWEEP_INTERVAL,
            secret_key="test-secret", models=[{"name": "faces", "kind": "opencv-haar", "labels": ["person"]}],
        )
    )  # fmt: skip


def _astronaut_video(path: Path) -> bytes:
    # half size: OpenCV's cascade takes 0.15 s a frame then, on two busy cores
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (256, 256))
    frame = cv2.resize(astronaut_image(), (256, 256), interpolation=cv2.INTER_AREA)
    for _ in range(FRAMES):
        writer.write(np.ascontiguousarray(frame))
    writer.release()
    return path.read_bytes()


def _progress(client: TestClient, rq_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/lambda/requests/{quote(rq_id, safe='')}").json()
    return body


@pytest.mark.redis
@pytest.mark.postgres
def test_a_killed_workers_request_writes_its_annotations_once(
    user_client: TestClient,
    make_media_task: Any,
    workers: Workers,  # noqa: F811
    tmp_path: Path,
) -> None:
    config = tmp_path / "annota.toml"
    config.write_text(MODELS)
    workers.env["ANNOTA_CONFIG"] = str(config)
    first = workers.start()
    video = _astronaut_video(tmp_path / "astronaut.avi")
    task_id = make_media_task(user_client, [("astronaut.avi", video)], labels=[{"name": "person"}])
    call = user_client.post("/api/lambda/requests", json={"function": "faces", "task": task_id}).json()
    # the model is running on the first worker when it dies: some frames are done, not all
    deadline = time.monotonic() + 60
    while not 0 < _progress(user_client, call["id"])["progress"] < 100:
        assert time.monotonic() < deadline, workers.logs()
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    workers.start()
    deadline = time.monotonic() + 60
    while (done := _progress(user_client, call["id"]))["status"] not in ("finished", "failed"):
        assert time.monotonic() < deadline, (done, workers.logs()[-4000:])
        time.sleep(0.1)
    assert done["status"] == "finished", (done, workers.logs()[-4000:])
    assert "its worker stopped renewing its lease; queueing it again" in workers.logs()
    shapes = user_client.get(f"/api/tasks/{task_id}/annotations").json()["shapes"]
    # one face on every frame: the dead attempt wrote nothing, the second wrote everything once
    assert sorted(shape["frame"] for shape in shapes) == list(range(FRAMES))
    assert all(iou(shape["points"], FACE) > 0.5 for shape in shapes)
