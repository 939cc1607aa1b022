"""A task's life with ``storage = "azure"`` (Azurite) and ``storage = "gcs"`` (fake-gcs-server),
both on 127.0.0.1: media upload, frames and chunks read back from the container, a dataset export,
deletion; and a start-up error naming the extra when the backend's client is not installed."""

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
from annota.core.storage import StorageBackend
from annota.runtime.app import create_app
from annota.runtime.settings import Settings, finalize
from tests.media import make_jpeg, wait_for_request

FILES = [(f"img_{i}.jpg", make_jpeg(48, 32, 40 * i)) for i in range(4)]


class Cloud:
    """One backend's plugin settings for a fresh container, and a direct view of that container."""

    def __init__(
        self, name: str, settings: dict[str, Any], create: Callable[..., StorageBackend], config: Any
    ):
        self.name = name
        self.settings = settings
        self.create = create
        self.config = config

    def keys(self) -> list[str]:
        async def scenario() -> list[str]:
            plain = {k: v for k, v in self.settings.items() if k != "prefix"}
            storage = self.create(self.config(**plain), None)
            return [info.key async for info in storage.list()]

        return asyncio.run(scenario())


@pytest.fixture(params=["azure", "gcs"])
def cloud(request: pytest.FixtureRequest) -> Cloud:
    if request.param == "azure":
        from annota.plugins.storage import azure

        azurite = request.getfixturevalue("azurite")
        settings = azurite.settings(azurite.create_container(), prefix="server-1")
        return Cloud("azure", settings, azure.create, azure.Config)
    from annota.plugins.storage import gcs

    fake_gcs = request.getfixturevalue("fake_gcs")
    settings = fake_gcs.settings(fake_gcs.create_bucket(), prefix="server-1")
    return Cloud("gcs", settings, gcs.create, gcs.Config)


@pytest.fixture
def annota_settings(annota_settings: Settings, cloud: Cloud) -> Settings:
    annota_settings.storage = cloud.name
    annota_settings.plugin_settings = {cloud.name: cloud.settings}
    return annota_settings


def test_a_task_lives_and_dies_in_the_container(
    admin_client: Any, make_media_task: Callable[..., int], cloud: Cloud
) -> None:
    assert admin_client.get("/api/server/health").json()["checks"]["storage"] == "ok"
    task_id = make_media_task(admin_client, FILES, segment_size=2, chunk_size=2)
    data_id = admin_client.get(f"/api/tasks/{task_id}").json()["data"]
    assert any(key.startswith(f"server-1/data/{data_id}/") for key in cloud.keys()), cloud.keys()
    assert all(key.startswith("server-1/") for key in cloud.keys())

    frame = admin_client.get(f"/api/tasks/{task_id}/data?type=frame&number=2&quality=original")
    assert frame.status_code == 200 and frame.content == FILES[2][1]
    chunk = admin_client.get(f"/api/tasks/{task_id}/data?type=chunk&number=1&quality=compressed")
    assert chunk.status_code == 200, chunk.text
    with zipfile.ZipFile(io.BytesIO(chunk.content)) as archive:
        assert len(archive.namelist()) == 2

    response = admin_client.post(
        f"/api/tasks/{task_id}/dataset/export",
        params={"format": "COCO 1.0", "location": "local", "save_images": "true"},
    )
    assert response.status_code == 202, response.text
    request = wait_for_request(admin_client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    with zipfile.ZipFile(io.BytesIO(admin_client.get(request["result_url"]).content)) as archive:
        assert len([name for name in archive.namelist() if name.endswith(".jpg")]) == len(FILES)

    assert admin_client.delete(f"/api/tasks/{task_id}").status_code == 204
    assert [key for key in cloud.keys() if key.startswith(f"server-1/data/{data_id}/")] == []


@pytest.mark.parametrize(
    ("backend", "modules", "extra"),
    [
        ("azure", ["obstore", "obstore.exceptions", "obstore.store"], "azure"),
        ("gcs", ["google.cloud.storage"], "gcs"),
    ],
)
def test_a_backend_without_its_client_is_a_start_up_error_naming_the_extra(
    tmp_path: Any,
    sqlite_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    modules: list[str],
    extra: str,
) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    settings = finalize(
        Settings(data_dir=str(tmp_path), database_url=sqlite_database_url, secret_key="test-secret")
    )
    settings.storage = backend
    if backend == "gcs":
        settings.plugin_settings = {"gcs": {"bucket": "b", "bearer_token": "t"}}
    else:
        settings.plugin_settings = {"azure": {"container": "c", "account_name": "a"}}
    with pytest.raises(ConfigError, match=rf"storage = '{backend}' needs .*pip install 'annota\[{extra}\]'"):
        with TestClient(create_app(settings)):
            pass


def test_the_cloud_extras_are_declared() -> None:
    extras = set(metadata("annota").get_all("Provides-Extra") or [])
    assert {"s3", "azure", "gcs", "cloud"} <= extras
    requirements = metadata("annota").get_all("Requires-Dist") or []
    assert any(req.startswith("obstore") and 'extra == "azure"' in req for req in requirements)
    assert any(req.startswith("google-cloud-storage") and 'extra == "gcs"' in req for req in requirements)
    cloud = [req for req in requirements if 'extra == "cloud"' in req]
    assert cloud and all(name in cloud[0] for name in ("s3", "azure", "gcs"))
