"""``/api/guides`` and ``/api/assets``: annotation guides with their images, as CVAT serves them."""

from __future__ import annotations

import io
import zlib
from typing import Any

import cv2
import numpy as np
from cvat_sdk.api_client import Configuration, models
from cvat_sdk.api_client.model_utils import validate_and_convert_types

from tests.runtime.api.conftest import make_jpeg


def check(data: Any, model: type) -> None:
    validate_and_convert_types(data, (model,), ["received_data"], True, True, Configuration())


def png(width: int, height: int) -> bytes:
    ok, encoded = cv2.imencode(".png", np.full((height, width, 3), 90, np.uint8))
    assert ok
    return bytes(encoded)


def upload(client: Any, guide_id: Any, name: str, content: bytes, content_type: str) -> Any:
    return client.post(
        "/api/assets",
        data={"guide_id": str(guide_id)},
        files={"file": (name, io.BytesIO(content), content_type)},
    )


def stored_keys(annota_client: Any, run_async: Any) -> list[str]:
    storage = annota_client.app.state.annota.storage

    async def collect() -> list[str]:
        return [info.key async for info in storage.list("guides/")]

    result: list[str] = run_async(collect)
    return result


def test_a_guide_per_task_or_project_with_its_images(make_user, annota_client, run_async):
    alice = make_user("alice")
    project_id = alice.post("/api/projects", json={"name": "p"}).json()["id"]
    task_id = alice.post("/api/tasks", json={"name": "t", "project_id": project_id}).json()["id"]
    made = alice.post("/api/guides", json={"task_id": task_id, "markdown": "# Boxes\nDraw tight boxes."})
    assert made.status_code == 201, made.text
    guide = made.json()
    check(guide, models.AnnotationGuideRead)
    assert (guide["task_id"], guide["project_id"], guide["markdown"]) == (
        task_id,
        None,
        "# Boxes\nDraw tight boxes.",
    )
    assert alice.get(f"/api/tasks/{task_id}").json()["guide_id"] == guide["id"]
    assert alice.post("/api/guides", json={"task_id": task_id}).status_code == 409
    project_guide = alice.post("/api/guides", json={"project_id": project_id}).json()
    assert alice.get(f"/api/projects/{project_id}").json()["guide_id"] == project_guide["id"]

    big = png(3000, 1500)
    asset = upload(alice, guide["id"], "example.png", big, "image/png")
    assert asset.status_code == 201, asset.text
    body = asset.json()
    check(body, models.AssetRead)
    assert body["filename"] == "example.png" and body["guide_id"] == guide["id"]
    assert body["owner"]["username"] == "alice"
    fetched = alice.get(f"/api/assets/{body['uuid']}")
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    shown = cv2.imdecode(np.frombuffer(fetched.content, np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape[:2] == (960, 1920)  # scaled to 1920 on the longer side
    jpeg = make_jpeg(64, 48)
    small = upload(alice, guide["id"], "small.jpg", jpeg, "image/jpeg").json()
    assert alice.get(f"/api/assets/{small['uuid']}").content == jpeg

    # the markdown keeps the assets it names; the others go, from the storage too
    markdown = f"![example](/api/assets/{body['uuid']})"
    changed = alice.patch(f"/api/guides/{guide['id']}", json={"markdown": markdown})
    assert changed.status_code == 200 and changed.json()["markdown"] == markdown
    assert alice.get(f"/api/assets/{small['uuid']}").status_code == 404
    assert len(stored_keys(annota_client, run_async)) == 1
    # naming another guide's asset copies it
    copied = alice.patch(f"/api/guides/{project_guide['id']}", json={"markdown": markdown}).json()["markdown"]
    assert copied != markdown and copied.startswith("![example](/api/assets/")
    copy_uuid = copied.split("/api/assets/")[1].rstrip(")")
    assert zlib.crc32(alice.get(f"/api/assets/{copy_uuid}").content) == zlib.crc32(fetched.content)
    assert alice.get(f"/api/assets/{body['uuid']}").status_code == 200

    assert alice.delete(f"/api/assets/{copy_uuid}").status_code == 204
    assert alice.get(f"/api/assets/{copy_uuid}").status_code == 404
    assert alice.delete(f"/api/guides/{guide['id']}").status_code == 204
    assert alice.get(f"/api/guides/{guide['id']}").status_code == 404
    assert alice.get(f"/api/assets/{body['uuid']}").status_code == 404
    assert alice.get(f"/api/tasks/{task_id}").json()["guide_id"] is None
    # deleting the project takes its guide's files along
    upload(alice, project_guide["id"], "again.png", png(10, 10), "image/png")
    assert stored_keys(annota_client, run_async)
    assert alice.delete(f"/api/projects/{project_id}").status_code == 204
    assert stored_keys(annota_client, run_async) == []


def test_jobs_show_the_guide_of_their_project_else_their_task(make_user, add_jobs):
    alice = make_user("alice")
    alone = alice.post("/api/tasks", json={"name": "alone"}).json()["id"]
    (job_id,) = add_jobs(alone, [(0, 1)])
    assert alice.get(f"/api/jobs/{job_id}").json()["guide_id"] is None
    guide_id = alice.post("/api/guides", json={"task_id": alone}).json()["id"]
    assert alice.get(f"/api/jobs/{job_id}").json()["guide_id"] == guide_id
    project_id = alice.post("/api/projects", json={"name": "p"}).json()["id"]
    inside = alice.post("/api/tasks", json={"name": "in", "project_id": project_id}).json()["id"]
    (inner_job,) = add_jobs(inside, [(0, 1)])
    alice.post("/api/guides", json={"task_id": inside})
    project_guide = alice.post("/api/guides", json={"project_id": project_id}).json()["id"]
    assert alice.get(f"/api/jobs/{inner_job}").json()["guide_id"] == project_guide


def test_bad_guides_and_assets_are_refused(make_user):
    alice = make_user("alice")
    task_id = alice.post("/api/tasks", json={"name": "t"}).json()["id"]
    project_id = alice.post("/api/projects", json={"name": "p"}).json()["id"]
    for body, field in (
        ({"markdown": "x"}, "task_id"),
        ({"task_id": task_id, "project_id": project_id}, "task_id"),
        ({"task_id": 9999}, "task_id"),
        ({"project_id": 9999}, "project_id"),
        ({"task_id": task_id, "colour": 1}, "colour"),
    ):
        refused = alice.post("/api/guides", json=body)
        assert refused.status_code == 400 and field in str(refused.json()), (body, refused.text)
    guide_id = alice.post("/api/guides", json={"task_id": task_id}).json()["id"]
    moved = alice.patch(f"/api/guides/{guide_id}", json={"task_id": task_id + 1})
    assert moved.status_code == 400 and "task_id" in moved.json()
    for name, content, content_type, words in (
        ("a.txt", b"text", "text/plain", "not supported"),
        ("a.png", make_jpeg(8, 8), "image/jpeg", "extension"),
        ("a.png", b"not an image", "image/png", "readable"),
        ("a.pdf", b"", "application/pdf", "empty"),
        ("a.pdf", b"%PDF" + b"0" * (10 * 1024 * 1024), "application/pdf", "10 MB"),
    ):
        refused = upload(alice, guide_id, name, content, content_type)
        assert refused.status_code in (400, 413), (name, refused.text)
        assert words in refused.text, (name, refused.text)
    assert upload(alice, 9999, "a.png", png(4, 4), "image/png").status_code == 404
    no_file = alice.post("/api/assets", data={"guide_id": str(guide_id)})
    assert no_file.status_code == 400 and "file" in no_file.json()
    assert alice.get("/api/assets/not-a-uuid").status_code == 404


def test_who_reads_and_writes_guides(make_user, add_jobs):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    task_id = alice.post("/api/tasks", json={"name": "t"}).json()["id"]
    (job_id,) = add_jobs(task_id, [(0, 1)])
    guide_id = alice.post("/api/guides", json={"task_id": task_id, "markdown": "read me"}).json()["id"]
    asset = upload(alice, guide_id, "a.png", png(4, 4), "image/png").json()["uuid"]
    alice.patch(f"/api/guides/{guide_id}", json={"markdown": f"![a](/api/assets/{asset})"})
    for outsider in (bob, carol):
        assert outsider.get(f"/api/guides/{guide_id}").status_code == 403
        assert outsider.get(f"/api/assets/{asset}").status_code == 403
    assert (
        bob.post(
            "/api/guides", json={"project_id": bob.post("/api/projects", json={"name": "b"}).json()["id"]}
        ).status_code
        == 201
    )
    assert bob.post("/api/guides", json={"task_id": task_id}).status_code in (403, 409)
    # an annotator of one of the task's jobs reads the guide, and cannot change it
    alice.patch(f"/api/jobs/{job_id}", json={"assignee": carol.user_id})
    assert carol.get(f"/api/guides/{guide_id}").status_code == 200
    assert carol.get(f"/api/assets/{asset}").status_code == 200
    assert carol.patch(f"/api/guides/{guide_id}", json={"markdown": "mine"}).status_code == 403
    assert upload(carol, guide_id, "b.png", png(4, 4), "image/png").status_code == 403
    assert carol.delete(f"/api/assets/{asset}").status_code == 403
    assert carol.delete(f"/api/guides/{guide_id}").status_code == 403
    assert make_user("dave").get(f"/api/guides/{guide_id}").status_code == 403
