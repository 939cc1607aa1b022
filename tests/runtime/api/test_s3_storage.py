"""A task's whole life with ``storage = "s3"`` (moto on 127.0.0.1): media upload, frames and
chunks, a dataset export, a backup and deletion, with every object in the bucket; and a bucket
that cannot be reached shows in ``/api/server/health``."""

from __future__ import annotations

import asyncio
import io
import sys
import zipfile
from collections.abc import Callable
from importlib.metadata import metadata
from typing import Any

import pytest
from starlette.testclient import TestClient

from annota.core.errors import ConfigError
from annota.plugins.storage.s3 import Config, S3Storage, create
from annota.runtime.app import create_app
from annota.runtime.settings import Settings
from tests.media import make_jpeg, wait_for_request
from tests.moto_s3 import Moto

pytest.importorskip("obstore")

FILES = [(f"img_{i}.jpg", make_jpeg(48, 32, 40 * i)) for i in range(4)]


@pytest.fixture
def bucket(moto: Moto) -> str:
    return moto.create_bucket()


@pytest.fixture
def annota_settings(annota_settings: Settings, moto: Moto, bucket: str) -> Settings:
    annota_settings.storage = "s3"
    annota_settings.plugin_settings = {"s3": moto.settings(bucket, prefix="server-1")}
    return annota_settings


def bucket_keys(moto: Moto, bucket: str) -> list[str]:
    async def scenario() -> list[str]:
        storage = create(Config(**moto.settings(bucket)), None)
        return [info.key async for info in storage.list()]

    return asyncio.run(scenario())


def test_a_task_lives_and_dies_in_the_bucket(
    admin_client: Any,
    make_media_task: Callable[..., int],
    moto: Moto,
    bucket: str,
) -> None:
    assert isinstance(admin_client.app.state.annota.storage, S3Storage)
    task_id = make_media_task(admin_client, FILES, segment_size=2, chunk_size=2)
    data_id = admin_client.get(f"/api/tasks/{task_id}").json()["data"]
    media = [key for key in bucket_keys(moto, bucket) if key.startswith(f"server-1/data/{data_id}/")]
    assert media, bucket_keys(moto, bucket)
    assert all(key.startswith("server-1/") for key in bucket_keys(moto, bucket))

    # frames and chunks are read back from S3
    frame = admin_client.get(f"/api/tasks/{task_id}/data?type=frame&number=2&quality=original")
    assert frame.status_code == 200 and frame.content == FILES[2][1]
    chunk = admin_client.get(f"/api/tasks/{task_id}/data?type=chunk&number=1&quality=compressed")
    assert chunk.status_code == 200, chunk.text
    with zipfile.ZipFile(io.BytesIO(chunk.content)) as archive:
        assert len(archive.namelist()) == 2

    # a dataset export with its images, and a backup, are made from and into the bucket
    response = admin_client.post(
        f"/api/tasks/{task_id}/dataset/export",
        params={"format": "COCO 1.0", "location": "local", "save_images": "true"},
    )
    assert response.status_code == 202, response.text
    request = wait_for_request(admin_client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    download = admin_client.get(request["result_url"])
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        images = [name for name in archive.namelist() if name.endswith(".jpg")]
        assert len(images) == len(FILES)

    response = admin_client.post(f"/api/tasks/{task_id}/backup/export?location=local")
    assert response.status_code == 202, response.text
    request = wait_for_request(admin_client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    backup = admin_client.get(request["result_url"])
    assert backup.status_code == 200
    with zipfile.ZipFile(io.BytesIO(backup.content)) as archive:
        assert [archive.read(f"data/{name}") for name, _ in FILES] == [content for _, content in FILES]

    # deleting the task removes its media from the bucket
    assert admin_client.delete(f"/api/tasks/{task_id}").status_code == 204
    left = [key for key in bucket_keys(moto, bucket) if key.startswith(f"server-1/data/{data_id}/")]
    assert left == []


def test_health_shows_a_missing_bucket(annota_settings: Settings, moto: Moto) -> None:
    annota_settings.plugin_settings = {"s3": moto.settings("not-a-bucket")}
    with TestClient(create_app(annota_settings)) as client:
        response = client.get("/api/server/health")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"] == "error: BucketNotFound"
    assert response.json()["checks"]["database"] == "ok"


def test_health_shows_a_bucket_that_works(annota_client: TestClient) -> None:
    response = annota_client.get("/api/server/health")
    assert response.json()["checks"]["storage"] == "ok"


def test_s3_without_a_bucket_is_a_start_up_error(annota_settings: Settings) -> None:
    annota_settings.plugin_settings = {"s3": {}}
    with pytest.raises(ConfigError, match="needs a bucket name"):
        with TestClient(create_app(annota_settings)):
            pass


def test_s3_without_obstore_installed_is_a_start_up_error_naming_the_extra(
    annota_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("obstore", "obstore.exceptions", "obstore.store"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigError, match=r"storage = 's3' needs .*pip install 'annota\[s3\]'"):
        with TestClient(create_app(annota_settings)):
            pass


def test_the_s3_and_cloud_extras_are_declared() -> None:
    extras = metadata("annota").get_all("Provides-Extra") or []
    assert {"s3", "cloud"} <= set(extras)
    requirements = metadata("annota").get_all("Requires-Dist") or []
    assert any(req.startswith("obstore") and 'extra == "s3"' in req for req in requirements)
