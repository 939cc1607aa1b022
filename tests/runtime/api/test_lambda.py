"""CVAT's lambda API end to end through the app, with OpenCV's face detector as the model."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np
import pytest
from cvat_sdk.api_client import Configuration
from cvat_sdk.api_client.model.function_call import FunctionCall
from cvat_sdk.api_client.model_utils import validate_and_convert_types
from starlette.testclient import TestClient

from annota.core import hookimpl
from annota.core.formats.model import LabelSpec, Shape, Tag
from annota.core.models.runner import DetectOptions, Image, LoadedModel
from annota.runtime.settings import Settings
from tests.media import wait_for_request
from tests.models_media import astronaut, blank_png, iou

FACE = [173.0, 66.0, 274.0, 181.0]
MODELS = [
    {"name": "faces", "kind": "opencv-haar", "description": "OpenCV's frontal face cascade"},
    {"name": "gate", "kind": "gate"},
    {"name": "picky", "kind": "picky"},
    {"name": "broken", "kind": "opencv-haar", "labels": ["face"], "options": {"cascade": "nope.xml"}},
]


class Gate:
    """A runner kind whose ``detect`` waits until the test opens the gate: a request that is
    certainly running while the test cancels it."""

    entered = threading.Event()
    opened = threading.Event()

    class Model(LoadedModel):
        def detect(self, frames: Sequence[Image], options: DetectOptions) -> list[list[Tag | Shape]]:
            Gate.entered.set()
            assert Gate.opened.wait(30)
            return [[Shape(type="rectangle", label="face", points=[0, 0, 5, 5], score=1.0)] for _ in frames]

    class Picky(LoadedModel):
        """Finds a face on every frame but light ones, which it cannot take."""

        def detect(self, frames: Sequence[Image], options: DetectOptions) -> list[list[Tag | Shape]]:
            if any(frame.mean() > 150 for frame in frames):
                raise ValueError("the input is overexposed")
            return [[Shape(type="rectangle", label="face", points=[1, 1, 9, 9], score=1.0)] for _ in frames]

    @staticmethod
    @hookimpl
    def register_model_runners(register: Any) -> None:
        face = [LabelSpec(name="face", type="rectangle")]
        register("gate", lambda declaration: Gate.Model(declaration, face))
        register("picky", lambda declaration: Gate.Picky(declaration, face))


@pytest.fixture
def annota_plugins() -> dict[str, Any]:
    Gate.entered.clear()
    Gate.opened.clear()
    return {"gate-runner": Gate}


@pytest.fixture
def annota_settings(annota_settings: Settings) -> Settings:
    annota_settings.models = [dict(model) for model in MODELS]
    return annota_settings


LABELS = [
    {
        "name": "person",
        "attributes": [{"name": "kind", "input_type": "text", "mutable": False, "values": [""]}],
    },
    {"name": "car"},
]


@pytest.fixture
def task_id(user_client: TestClient, make_media_task: Any) -> int:
    files = [("a.png", astronaut()), ("b.png", blank_png()), ("c.png", astronaut())]
    return int(make_media_task(user_client, files, labels=LABELS))


def _shapes(client: TestClient, task_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/tasks/{task_id}/annotations")
    assert response.status_code == 200, response.text
    shapes: list[dict[str, Any]] = response.json()["shapes"]
    return sorted(shapes, key=lambda shape: shape["frame"])


def test_functions_are_listed_and_described(user_client: TestClient) -> None:
    listed = user_client.get("/api/lambda/functions")
    assert listed.status_code == 200, listed.text
    assert [function["id"] for function in listed.json()] == ["faces", "gate", "picky", "broken"]
    assert user_client.head("/api/lambda/functions").status_code == 200
    face = user_client.get("/api/lambda/functions/faces").json()
    assert face["kind"] == "detector"
    assert face["name"] == "faces" and face["description"] == "OpenCV's frontal face cascade"
    assert face["labels_v2"] == [{"id": 0, "name": "face", "type": "rectangle", "attributes": []}]
    assert isinstance(face["version"], int)
    assert user_client.get("/api/lambda/functions/nope").status_code == 404
    # a model that cannot load is listed with its declared labels; using it says why it fails
    assert listed.json()[3]["labels_v2"] == [{"id": 0, "name": "face", "type": "any", "attributes": []}]
    broken = user_client.get("/api/lambda/functions/broken")
    assert broken.status_code == 400 and "Model 'broken': no cascade file" in broken.text
    assert user_client.get("/api/server/plugins").json()["MODELS"] is True


def test_online_call_finds_the_face_on_one_frame(user_client: TestClient, task_id: int) -> None:
    (job,) = user_client.get("/api/jobs", params={"task_id": task_id}).json()["results"]
    person = _label_id(user_client, task_id, "person")
    # the body CVAT 2.73's AI tools send (tools-control.tsx: the runner's body less cleanup, plus
    # type/frame/job; cvat-core adds task); they read result.tags and result.shapes by label_id
    body = {
        "mapping": {"face": {"name": "person", "attributes": {}}},
        "conv_mask_to_poly": False,
        "threshold": 0.5,
        "type": "annotate_frame",
        "frame": 0,
        "job": job["id"],
        "task": task_id,
    }
    response = user_client.post("/api/lambda/functions/faces", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["tags"] == [] and answer["tracks"] == []
    (found,) = answer["shapes"]
    assert found["label_id"] == person and found["type"] == "rectangle" and found["frame"] == 0
    assert found["source"] == "auto" and found["attributes"] == [] and found["id"] is None
    assert iou(found["points"], FACE) > 0.5
    assert 0.5 <= found["score"] <= 1
    # nothing is saved: the UI adds the shapes to the job itself
    assert user_client.get(f"/api/jobs/{job['id']}/annotations").json()["shapes"] == []
    # nothing on the blank frame; an unmapped model label finds nothing
    assert user_client.post("/api/lambda/functions/faces", json={**body, "frame": 1}).json()["shapes"] == []
    unmapped = user_client.post("/api/lambda/functions/faces", json={"task": task_id, "frame": 0})
    assert unmapped.json()["shapes"] == []
    missing = user_client.post("/api/lambda/functions/faces", json={**body, "frame": 9})
    assert missing.status_code == 400 and "Frame 9" in missing.text
    # the AI tools' "Region of interest" ([xtl, ytl, xbr, ybr]): the model sees that part of the
    # frame only, and its shapes come back in the frame's coordinates
    around = user_client.post("/api/lambda/functions/faces", json={**body, "roi": [120, 20, 330, 240]})
    assert around.status_code == 200, around.text
    (inside,) = around.json()["shapes"]
    assert iou(inside["points"], FACE) > 0.5
    elsewhere = user_client.post("/api/lambda/functions/faces", json={**body, "roi": [0, 250, 200, 500]})
    assert elsewhere.status_code == 200 and elsewhere.json()["shapes"] == []
    for roi in ([5000, 5000, 6000, 6000], [0, 0, 10]):
        refused = user_client.post("/api/lambda/functions/faces", json={**body, "roi": roi})
        assert refused.status_code == 400 and "roi" in refused.json(), refused.text


def _label_id(client: TestClient, task_id: int, name: str) -> int:
    labels = client.get("/api/labels", params={"task_id": task_id}).json()["results"]
    return next(int(label["id"]) for label in labels if label["name"] == name)


def test_a_request_annotates_every_frame_once(user_client: TestClient, task_id: int) -> None:
    body = {"function": "faces", "task": task_id, "mapping": {"face": {"name": "person"}}, "cleanup": True}
    response = user_client.post("/api/lambda/requests", json=body)
    assert response.status_code == 200, response.text
    call = response.json()
    assert call["function"] == {"id": "faces", "task": task_id, "threshold": None}
    request = wait_for_request(user_client, call["id"])
    assert request["status"] == "finished", request["message"]
    assert request["operation"]["type"] == "autoannotate:task"
    assert request["operation"]["function_id"] == "faces"
    shapes = _shapes(user_client, task_id)
    assert [shape["frame"] for shape in shapes] == [0, 2]
    assert all(shape["source"] == "auto" and iou(shape["points"], FACE) > 0.5 for shape in shapes)
    done = user_client.get(f"/api/lambda/requests/{quote(call['id'], safe='')}").json()
    assert done["status"] == "finished" and done["progress"] == 100 and done["exc_info"] is None
    listed = user_client.get("/api/lambda/requests").json()
    assert [item["id"] for item in listed] == [call["id"]]
    # what cvat-sdk makes of the answers, with its type checks
    (sdk_call,) = validate_and_convert_types(
        listed, ([FunctionCall],), ["calls"], True, True, Configuration()
    )
    assert sdk_call.function.task == task_id and sdk_call.progress == 100
    # again, without cleanup: the shapes are added to those there
    again = user_client.post("/api/lambda/requests", json={**body, "cleanup": False}).json()
    assert wait_for_request(user_client, again["id"])["status"] == "finished"
    assert len(_shapes(user_client, task_id)) == 4


def test_mapping_errors_name_the_label(user_client: TestClient, task_id: int) -> None:
    cases = [
        ({"face": {"name": "bus"}}, "'bus'"),
        ({"dog": {"name": "person"}}, "'dog'"),
        ({"face": {"name": "person", "attributes": {"age": "kind"}}}, "'age'"),
    ]
    for mapping, named in cases:
        body = {"function": "faces", "task": task_id, "mapping": mapping}
        response = user_client.post("/api/lambda/requests", json=body)
        assert response.status_code == 400, response.text
        assert named in response.text
        online = user_client.post(
            "/api/lambda/functions/faces", json={"task": task_id, "frame": 0, "mapping": mapping}
        )
        assert online.status_code == 400 and named in online.text
    assert user_client.get("/api/lambda/requests").json() == []
    unknown = user_client.post("/api/lambda/requests", json={"function": "nope", "task": task_id})
    assert unknown.status_code == 400 and "'nope'" in unknown.text
    broken = user_client.post("/api/lambda/requests", json={"function": "broken", "task": task_id})
    assert broken.status_code == 400 and "Model 'broken'" in broken.text
    online = user_client.post("/api/lambda/functions/broken", json={"task": task_id, "frame": 0})
    assert online.status_code == 400 and "Model 'broken'" in online.text


def test_a_cancelled_request_writes_nothing(user_client: TestClient, task_id: int) -> None:
    call = user_client.post("/api/lambda/requests", json={"function": "gate", "task": task_id}).json()
    assert Gate.entered.wait(30)
    path = f"/api/lambda/requests/{quote(call['id'], safe='')}"
    assert user_client.get(path).json()["status"] == "started"
    assert user_client.delete(path).status_code == 204
    Gate.opened.set()
    assert user_client.get(path).status_code == 404
    # the job stops at its next step; then the task can be annotated again
    again = None
    for _ in range(200):
        again = user_client.post("/api/lambda/requests", json={"function": "faces", "task": task_id})
        if again.status_code != 409:
            break
        threading.Event().wait(0.05)
    assert again is not None and again.status_code == 200, again.text
    assert wait_for_request(user_client, again.json()["id"])["status"] == "finished"
    assert all(shape["points"] != [0, 0, 5, 5] for shape in _shapes(user_client, task_id))


def test_someone_without_access_to_the_task_is_refused(
    user_client: TestClient, make_user: Any, task_id: int
) -> None:
    other = make_user("other")
    assert other.get("/api/lambda/functions").status_code == 200
    online = other.post("/api/lambda/functions/faces", json={"task": task_id, "frame": 0})
    assert online.status_code == 403, online.text
    batch = other.post("/api/lambda/requests", json={"function": "faces", "task": task_id})
    assert batch.status_code == 403, batch.text
    call = user_client.post("/api/lambda/requests", json={"function": "faces", "task": task_id}).json()
    path = f"/api/lambda/requests/{quote(call['id'], safe='')}"
    assert other.get(path).status_code == 403
    assert other.delete(path).status_code == 403
    assert other.get("/api/lambda/requests").json() == []
    assert TestClient(user_client.app).get("/api/lambda/functions").status_code == 401


def _video(path: Path, frames: int) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for number in range(frames):
        writer.write(np.full((48, 64, 3), number % 250, dtype=np.uint8))
    writer.release()
    return path.read_bytes()


def test_a_request_on_a_200_frame_video_completes(
    user_client: TestClient, make_media_task: Any, tmp_path: Path
) -> None:
    video_task = make_media_task(
        user_client, [("clip.avi", _video(tmp_path / "clip.avi", 200))], labels=LABELS
    )
    assert user_client.get(f"/api/tasks/{video_task}").json()["size"] == 200
    body = {"function": "faces", "task": video_task, "mapping": {"face": {"name": "person"}}}
    call = user_client.post("/api/lambda/requests", json=body).json()
    request = wait_for_request(user_client, call["id"], timeout=60)
    assert request["status"] == "finished", request["message"]
    assert request["progress"] == 1.0
    assert _shapes(user_client, video_task) == []


def test_a_job_is_annotated_on_its_own(user_client: TestClient, task_id: int) -> None:
    (job,) = user_client.get("/api/jobs", params={"task_id": task_id}).json()["results"]
    mapping = {"face": {"name": "person"}}
    online = user_client.post(
        "/api/lambda/functions/faces", json={"job": job["id"], "frame": 2, "mapping": mapping}
    )
    assert online.status_code == 200
    person = _label_id(user_client, task_id, "person")
    assert [(found["label_id"], found["frame"]) for found in online.json()["shapes"]] == [(person, 2)]
    body = {"function": "faces", "task": task_id, "job": job["id"], "mapping": mapping}
    call = user_client.post("/api/lambda/requests", json=body).json()
    assert call["function"]["job"] == job["id"]
    assert wait_for_request(user_client, call["id"])["status"] == "finished"
    shapes = user_client.get(f"/api/jobs/{job['id']}/annotations").json()["shapes"]
    assert sorted(shape["frame"] for shape in shapes) == [0, 2]
    elsewhere = user_client.post("/api/lambda/requests", json={**body, "task": task_id + 1000})
    assert elsewhere.status_code == 400 and "is not a job of task" in elsewhere.text


def test_bad_bodies_are_refused_naming_the_field(user_client: TestClient, task_id: int) -> None:
    cases = [
        ("/api/lambda/requests", {"function": "faces", "task": task_id, "threshold": 1.5}, "threshold"),
        ("/api/lambda/requests", {"function": "faces", "task": 2**40}, "task"),
        ("/api/lambda/requests", {"function": "faces", "task": task_id, "roi": [0, 0, 5, 5]}, "roi"),
        ("/api/lambda/requests", {"function": "faces", "task": task_id, "mapping": {"face": {}}}, "mapping"),
        ("/api/lambda/functions/faces", {"task": task_id}, "frame"),
        ("/api/lambda/functions/faces", {"frame": 0}, "task"),
    ]
    for path, body, field in cases:
        response = user_client.post(path, json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in response.text
    assert (
        user_client.post("/api/lambda/requests", json={"function": "faces", "task": 999}).status_code == 404
    )


def test_a_frame_the_model_fails_on_fails_the_request_and_writes_nothing(
    user_client: TestClient, task_id: int
) -> None:
    body = {"function": "picky", "task": task_id, "mapping": {"face": {"name": "person"}}}
    call = user_client.post("/api/lambda/requests", json=body).json()
    request = wait_for_request(user_client, call["id"])
    assert request["status"] == "failed"
    assert (
        "Model 'picky' failed on frame 1 (b.png): ValueError: the input is overexposed" in request["message"]
    )
    failed = user_client.get(f"/api/lambda/requests/{quote(call['id'], safe='')}").json()
    assert failed["status"] == "failed" and "frame 1 (b.png)" in failed["exc_info"]
    # frame 0 was done before frame 1 failed: nothing of it is written either
    assert _shapes(user_client, task_id) == []
