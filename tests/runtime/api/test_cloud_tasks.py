"""Tasks whose media stay in an S3 bucket (moto on 127.0.0.1): created from prefixes and files or
from a manifest, frames and chunks built from the bucket on first read, and the ways a bucket or a
manifest can let the task down."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from annota.runtime.settings import Settings
from tests.media import make_jpeg, wait_for_request
from tests.moto_s3 import AUTH, Moto
from tests.runtime.api.test_cloudstorages import create_storage, put_object

pytest.importorskip("obstore")

SIZES = [(48, 32), (40, 30), (64, 48), (32, 32), (50, 20)]
IMAGES = {f"photos/img_{i}.jpg": make_jpeg(w, h, 30 * i) for i, (w, h) in enumerate(SIZES)}


@pytest.fixture
def annota_settings(annota_settings: Settings) -> Settings:
    annota_settings.cloud_storage_allow_private_endpoints = True
    return annota_settings


@pytest.fixture
def bucket(moto: Moto) -> str:
    name = moto.create_bucket()
    for key, content in IMAGES.items():
        put_object(moto, name, key, content)
    put_object(moto, name, "photos/notes.txt", b"not an image")
    put_object(moto, name, "other/x.jpg", make_jpeg(10, 10))
    return name


def manifest(entries: list[tuple[str, int, int]]) -> bytes:
    lines = [{"version": "1.0"}, {"type": "images"}]
    for name, width, height in entries:
        stem, _, extension = name.rpartition(".")
        lines.append({"name": stem, "extension": "." + extension, "width": width, "height": height,
                      "meta": {"related_images": []}, "checksum": ""})  # fmt: skip
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def start_task(client: Any, cloud_storage_id: int, **options: Any) -> tuple[int, dict[str, Any]]:
    task = client.post(
        "/api/tasks", json={"name": "from bucket", "labels": [{"name": "car"}], "segment_size": 3}
    )
    assert task.status_code == 201, task.text
    task_id: int = task.json()["id"]
    body = {
        "image_quality": 70,
        "cloud_storage_id": cloud_storage_id,
        "use_cache": True,
        "chunk_size": 2,
        **options,
    }
    response = client.post(f"/api/tasks/{task_id}/data/", json=body)
    if response.status_code != 202:
        return task_id, {"status_code": response.status_code, "body": response.json()}
    return task_id, wait_for_request(client, response.json()["rq_id"])


def chunk_names(client: Any, task_id: int, number: int, quality: str = "compressed") -> list[str]:
    response = client.get(
        f"/api/tasks/{task_id}/data", params={"type": "chunk", "number": number, "quality": quality}
    )
    assert response.status_code == 200, response.text
    return zipfile.ZipFile(io.BytesIO(response.content)).namelist()


def test_a_task_from_a_prefix_reads_the_bucket_only_when_frames_are_asked_for(
    user_client: Any, moto: Moto, bucket: str, run_async: Any
) -> None:
    storage_id = create_storage(user_client, moto, bucket)["id"]
    task_id, request = start_task(user_client, storage_id, server_files=["photos/"],
                                  server_files_exclude=["photos/img_4.jpg"])  # fmt: skip
    assert request["status"] == "finished", request
    task = user_client.get(f"/api/tasks/{task_id}").json()
    assert task["size"] == 4 and task["data_cloud_storage_id"] == storage_id
    meta = user_client.get(f"/api/tasks/{task_id}/data/meta").json()
    assert meta["storage"] == "cloud_storage" and meta["cloud_storage_id"] == storage_id
    assert [(f["name"], f["width"], f["height"]) for f in meta["frames"]] == [
        (f"photos/img_{i}.jpg", w, h) for i, (w, h) in enumerate(SIZES[:4])
    ]
    # nothing but the preview and the manifest was stored at creation
    keys = [info.key for info in list_storage(user_client, run_async, f"data/{task['data']}/")]
    assert sorted(k.rsplit("/", 1)[-1] for k in keys) == ["manifest.jsonl", "preview.jpeg"]
    assert chunk_names(user_client, task_id, 1) == ["000002.jpg", "000003.jpg"]
    original = user_client.get(
        f"/api/tasks/{task_id}/data", params={"type": "frame", "number": 3, "quality": "original"}
    )
    assert original.status_code == 200 and original.content == IMAGES["photos/img_3.jpg"]
    # the chunk is kept: the bucket is not read again
    httpx.delete(f"{moto.endpoint}/{bucket}/photos/img_2.jpg", headers={"Authorization": AUTH})
    assert chunk_names(user_client, task_id, 1, "original") == ["000002.jpg", "000003.jpg"]
    # a job whose frames straddle task chunks is served too
    jobs = user_client.get("/api/jobs", params={"task_id": task_id}).json()["results"]
    second = min(jobs, key=lambda j: -j["start_frame"])
    response = user_client.get(f"/api/jobs/{second['id']}/data", params={"type": "chunk", "index": 0})
    assert response.status_code == 200, response.text
    assert user_client.get(f"/api/tasks/{task_id}/preview").status_code == 200


def list_storage(client: Any, run_async: Any, prefix: str) -> list[Any]:
    storage = client.app.state.annota.storage

    async def keys() -> list[Any]:
        return [info async for info in storage.list(prefix)]

    return run_async(keys)  # type: ignore[no-any-return]


def test_a_task_from_a_manifest_reads_no_image_but_the_first(
    user_client: Any, moto: Moto, bucket: str
) -> None:
    entries = [(f"img_{i}.jpg", w, h) for i, (w, h) in enumerate(SIZES)]
    put_object(moto, bucket, "photos/manifest.jsonl", manifest(entries))
    storage_id = create_storage(user_client, moto, bucket, manifests=["photos/manifest.jsonl"])["id"]
    # no server_files: the storage's manifest, as CVAT takes it
    task_id, request = start_task(user_client, storage_id, filename_pattern="img_[0-2].jpg")
    assert request["status"] == "finished", request
    meta = user_client.get(f"/api/tasks/{task_id}/data/meta").json()
    assert [f["name"] for f in meta["frames"]] == [f"photos/img_{i}.jpg" for i in range(3)]
    assert chunk_names(user_client, task_id, 0) == ["000000.jpg", "000001.jpg"]
    frame = user_client.get(
        f"/api/tasks/{task_id}/data", params={"type": "frame", "number": 2, "quality": "original"}
    )
    assert frame.content == IMAGES["photos/img_2.jpg"]
    params = {"manifest_path": "photos/manifest.jsonl", "prefix": "photos/"}
    listed = user_client.get(f"/api/cloudstorages/{storage_id}/content-v2", params=params)
    assert [e["name"] for e in listed.json()["content"]] == [f"img_{i}.jpg" for i in range(5)]


def test_a_manifest_that_lies_fails_naming_the_object(user_client: Any, moto: Moto, bucket: str) -> None:
    put_object(moto, bucket, "photos/missing.jsonl", manifest([("img_0.jpg", 48, 32), ("gone.jpg", 10, 10)]))
    put_object(moto, bucket, "photos/sizes.jsonl", manifest([("img_0.jpg", 48, 32), ("img_1.jpg", 41, 30)]))
    storage_id = create_storage(user_client, moto, bucket)["id"]
    task_id, request = start_task(user_client, storage_id, server_files=["photos/missing.jsonl"])
    assert request["status"] == "failed"
    assert "photos/gone.jpg" in request["message"]
    assert user_client.get(f"/api/tasks/{task_id}").json()["size"] == 0
    # a wrong size is found when the chunk holding the image is built
    task_id, request = start_task(user_client, storage_id, server_files=["photos/sizes.jsonl"], chunk_size=1)
    assert request["status"] == "finished", request
    response = user_client.get(f"/api/tasks/{task_id}/data", params={"type": "chunk", "number": 1})
    assert response.status_code == 400
    assert "photos/img_1.jpg" in response.text and "41x30" in response.text


def test_refusals_before_any_job(make_user: Any, moto: Moto, bucket: str) -> None:
    alice, bob = make_user("alice"), make_user("bobby")
    storage_id = create_storage(alice, moto, bucket)["id"]
    _, refused = start_task(bob, storage_id, server_files=["photos/"])
    assert refused["status_code"] == 403
    _, refused = start_task(alice, 999, server_files=["photos/"])
    assert refused["status_code"] == 400 and "cloud_storage_id" in refused["body"]
    _, refused = start_task(alice, storage_id, server_files=["../photos/"])
    assert refused["status_code"] == 400 and "server_files" in refused["body"]
    _, refused = start_task(alice, storage_id, server_files=["photos/"], filename_pattern="*.jpg")
    assert refused["status_code"] == 400 and "filename_pattern" in refused["body"]
    _, failed = start_task(alice, storage_id, server_files=["photos/absent.jpg"])
    assert failed["status"] == "failed" and "photos/absent.jpg" in failed["message"]


def bucket_object(moto: Moto, bucket: str, key: str) -> bytes:
    response = httpx.get(f"{moto.endpoint}/{bucket}/{key}", headers={"Authorization": AUTH})
    response.raise_for_status()
    return response.content


def test_exports_and_backups_go_to_a_bucket(
    make_user: Any, moto: Moto, bucket: str, make_media_task: Any
) -> None:
    alice, bob = make_user("alice"), make_user("bobby")
    storage_id = create_storage(alice, moto, bucket)["id"]
    task_id, request = start_task(alice, storage_id, server_files=["photos/img_0.jpg", "photos/img_1.jpg"])
    assert request["status"] == "finished", request
    params = {"format": "COCO 1.0", "save_images": "true", "location": "cloud_storage",
              "cloud_storage_id": storage_id, "filename": "exports/coco.zip"}  # fmt: skip
    response = alice.post(f"/api/tasks/{task_id}/dataset/export", params=params)
    assert response.status_code == 202, response.text
    done = wait_for_request(alice, response.json()["rq_id"])
    assert done["status"] == "finished", done
    assert done["result_url"] is None
    archive = zipfile.ZipFile(io.BytesIO(bucket_object(moto, bucket, "exports/coco.zip")))
    assert "annotations/instances_default.json" in archive.namelist()
    # the images of the export were read from the bucket
    assert sorted(n for n in archive.namelist() if n.startswith("images/")) == [
        "images/default/photos/img_0.jpg", "images/default/photos/img_1.jpg"
    ]  # fmt: skip
    # a backup would need the media here: it is refused rather than made without them
    backup = alice.post(f"/api/tasks/{task_id}/backup/export")
    failed = wait_for_request(alice, backup.json()["rq_id"])
    assert failed["status"] == "failed" and "cloud storage" in failed["message"]
    # someone who cannot see the cloud storage cannot send anything to it, nor name it in a task
    assert bob.post("/api/tasks", json={"name": "b"}).status_code == 201
    bobs_task = bob.get("/api/tasks").json()["results"][0]["id"]
    refused = bob.post(f"/api/tasks/{bobs_task}/dataset/export", params=params)
    assert refused.status_code == 403
    in_bucket = {"location": "cloud_storage", "cloud_storage_id": storage_id}
    refused = bob.post("/api/tasks", json={"name": "t", "target_storage": in_bucket})
    assert refused.status_code == 403
    # a read-only access token exports for its user, but writes into no bucket
    token = alice.post("/api/auth/access_tokens", json={"name": "ro", "read_only": True}).json()["value"]
    reader = TestClient(alice.app, base_url="http://testserver", headers={"Authorization": f"Bearer {token}"})
    assert reader.post(f"/api/tasks/{task_id}/dataset/export", params=params).status_code == 403
    local = {"format": "COCO 1.0", "save_images": "true"}
    assert reader.post(f"/api/tasks/{task_id}/dataset/export", params=local).status_code == 202
    # the owner names it as the task's target storage
    task = alice.post("/api/tasks", json={"name": "t", "target_storage": in_bucket})
    assert task.status_code == 201, task.text
    assert task.json()["target_storage"]["cloud_storage_id"] == storage_id
    # a backup of a local task goes to the bucket too
    local = make_media_task(alice, [("a.jpg", make_jpeg(20, 20))])
    response = alice.post(f"/api/tasks/{local}/backup/export", params={"location": "cloud_storage",
                          "cloud_storage_id": storage_id, "filename": "backups/t.zip"})  # fmt: skip
    assert response.status_code == 202, response.text
    assert wait_for_request(alice, response.json()["rq_id"])["status"] == "finished"
    assert "task.json" in zipfile.ZipFile(io.BytesIO(bucket_object(moto, bucket, "backups/t.zip"))).namelist()


def test_annotations_round_trip_through_a_bucket(user_client: Any, moto: Moto, bucket: str) -> None:
    storage_id = create_storage(user_client, moto, bucket)["id"]
    task_id, request = start_task(
        user_client, storage_id, server_files=["photos/img_0.jpg", "photos/img_1.jpg"]
    )
    assert request["status"] == "finished", request
    label = user_client.get("/api/labels", params={"task_id": task_id}).json()["results"][0]["id"]
    shape = {"type": "rectangle", "frame": 1, "label_id": label, "points": [1, 2, 11, 12], "attributes": []}
    saved = user_client.put(
        f"/api/tasks/{task_id}/annotations", json={"shapes": [shape], "tags": [], "tracks": []}
    )
    assert saved.status_code == 200, saved.text
    in_bucket = {"location": "cloud_storage", "cloud_storage_id": storage_id, "format": "COCO 1.0"}
    exported = user_client.post(
        f"/api/tasks/{task_id}/dataset/export", params={**in_bucket, "filename": "a.zip"}
    )
    assert wait_for_request(user_client, exported.json()["rq_id"])["status"] == "finished"
    assert user_client.delete(f"/api/tasks/{task_id}/annotations").status_code == 204
    imported = user_client.post(
        f"/api/tasks/{task_id}/annotations", params={**in_bucket, "filename": "a.zip"}
    )
    assert imported.status_code == 202, imported.text
    assert wait_for_request(user_client, imported.json()["rq_id"])["status"] == "finished"
    shapes = user_client.get(f"/api/tasks/{task_id}/annotations").json()["shapes"]
    assert [(s["frame"], s["points"]) for s in shapes] == [(1, [1, 2, 11, 12])]
    missing = user_client.post(
        f"/api/tasks/{task_id}/annotations", params={**in_bucket, "filename": "gone.zip"}
    )
    failed = wait_for_request(user_client, missing.json()["rq_id"])
    assert failed["status"] == "failed" and "gone.zip" in failed["message"]


def test_a_bucket_that_disappears_is_named(user_client: Any, moto: Moto, bucket: str) -> None:
    storage_id = create_storage(user_client, moto, bucket)["id"]
    task_id, request = start_task(user_client, storage_id, server_files=["other/"])
    assert request["status"] == "finished", request
    for key in [*IMAGES, "photos/notes.txt", "other/x.jpg"]:
        httpx.delete(f"{moto.endpoint}/{bucket}/{key}", headers={"Authorization": AUTH}).raise_for_status()
    httpx.delete(f"{moto.endpoint}/{bucket}", headers={"Authorization": AUTH}).raise_for_status()
    response = user_client.get(f"/api/tasks/{task_id}/data", params={"type": "chunk", "number": 0})
    assert response.status_code == 404
    assert bucket in response.text
