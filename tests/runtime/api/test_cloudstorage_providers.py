"""CVAT's Azure and Google cloud storages (``AZURE_CONTAINER``, ``GOOGLE_CLOUD_STORAGE``) served by
the ``azure`` and ``gcs`` plugins: created, listed, checked and used for a task, against Azurite and
fake-gcs-server on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from annota.plugins.storage import azure, gcs
from annota.runtime.settings import Settings
from tests.cloud_emulators import Azurite, FakeGcs
from tests.media import make_jpeg
from tests.runtime.api.test_cloud_tasks import chunk_names, start_task


@pytest.fixture
def annota_settings(annota_settings: Settings) -> Settings:
    # the emulators listen on loopback, which the guard refuses by default
    annota_settings.cloud_storage_allow_private_endpoints = True
    return annota_settings


def fill(run_async: Any, backend: Any, objects: dict[str, bytes]) -> None:
    async def put_all() -> None:
        for key, data in objects.items():
            await backend.put(key, data)
        await backend.close()

    run_async(put_all)


def use_storage(client: Any, body: dict[str, Any], images: dict[str, bytes]) -> None:
    created = client.post("/api/cloudstorages", json={"display_name": "media", **body})
    assert created.status_code == 201, created.text
    storage = created.json()
    assert "connection_string" not in storage and "key_file" not in storage
    storage_id = storage["id"]
    status = client.get(f"/api/cloudstorages/{storage_id}/status")
    assert status.status_code == 200 and status.json() == "AVAILABLE"
    content = client.get(f"/api/cloudstorages/{storage_id}/content-v2", params={"prefix": "photos/"})
    assert content.status_code == 200, content.text
    assert [entry["name"] for entry in content.json()["content"]] == [k.split("/")[1] for k in images]
    task_id, request = start_task(client, storage_id, server_files=["photos/"])
    assert request["status"] == "finished", request
    assert chunk_names(client, task_id, 0) == ["000000.jpg", "000001.jpg"]


IMAGES = {f"photos/img_{i}.jpg": make_jpeg(40 + i, 30) for i in range(3)}


def test_an_azure_container_by_connection_string(user_client: Any, azurite: Azurite, run_async: Any) -> None:
    container = azurite.create_container()
    fill(run_async, azure.create(azure.Config(**azurite.settings(container)), None), IMAGES)
    use_storage(
        user_client,
        {
            "provider_type": "AZURE_CONTAINER",
            "resource": container,
            "credentials_type": "CONNECTION_STRING",
            "connection_string": azurite.connection_string(),
        },
        IMAGES,
    )
    # a credentials type Azure does not take is named
    refused = user_client.post(
        "/api/cloudstorages",
        json={
            "display_name": "media",
            "provider_type": "AZURE_CONTAINER",
            "resource": container,
            "credentials_type": "KEY_FILE_PATH",
        },
    )
    assert refused.status_code == 400 and "credentials" in refused.text


def test_a_missing_azure_container_is_refused(user_client: Any, azurite: Azurite) -> None:
    response = user_client.post(
        "/api/cloudstorages",
        json={
            "display_name": "media",
            "provider_type": "AZURE_CONTAINER",
            "resource": "no-such-container",
            "credentials_type": "CONNECTION_STRING",
            "connection_string": azurite.connection_string(),
        },
    )
    assert response.status_code in (400, 404), response.text
    assert "no-such-container" in response.text


def test_a_connection_string_is_held_to_the_endpoint_guard(
    annota_settings: Settings, user_client: Any, azurite: Azurite
) -> None:
    annota_settings.cloud_storage_allow_private_endpoints = False
    response = user_client.post(
        "/api/cloudstorages",
        json={
            "display_name": "media",
            "provider_type": "AZURE_CONTAINER",
            "resource": azurite.create_container(),
            "credentials_type": "CONNECTION_STRING",
            "connection_string": azurite.connection_string(),
        },
    )
    assert response.status_code == 400, response.text
    assert "127.0.0.1" in response.text


def test_a_public_gcs_bucket(user_client: Any, fake_gcs: FakeGcs, run_async: Any) -> None:
    bucket = fake_gcs.create_bucket()
    fill(run_async, gcs.create(gcs.Config(**fake_gcs.settings(bucket)), None), IMAGES)
    use_storage(
        user_client,
        {
            "provider_type": "GOOGLE_CLOUD_STORAGE",
            "resource": bucket,
            "credentials_type": "ANONYMOUS_ACCESS",
            "specific_attributes": f"endpoint_url={fake_gcs.endpoint}&project=test",
        },
        IMAGES,
    )
    missing = user_client.post(
        "/api/cloudstorages",
        json={
            "display_name": "media",
            "provider_type": "GOOGLE_CLOUD_STORAGE",
            "resource": "no-such-bucket",
            "credentials_type": "ANONYMOUS_ACCESS",
            "specific_attributes": f"endpoint_url={fake_gcs.endpoint}",
        },
    )
    assert missing.status_code in (400, 404) and "no-such-bucket" in missing.text
