"""``serve_media_by_redirect``: chunks, previews and original image frames are answered, after
authorization, with a 307 to the storage backend's presigned URL, which a plain HTTP client then
follows to the bucket (moto's S3 and Azurite on 127.0.0.1); bodies made on the fly, and backends
without presigned URLs, are served as before."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from annota.runtime.settings import Settings
from tests.media import make_jpeg

FILES = [(f"img_{i}.jpg", make_jpeg(48, 32, 40 * i)) for i in range(4)]


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def annota_settings(annota_settings: Settings, backend: str, request: pytest.FixtureRequest) -> Settings:
    annota_settings.serve_media_by_redirect = True
    if backend == "local":
        return annota_settings  # a backend without presigned URLs
    if backend == "s3":
        moto = request.getfixturevalue("moto")
        plugin = moto.settings(moto.create_bucket())
    else:
        azurite = request.getfixturevalue("azurite")
        plugin = azurite.settings(azurite.create_container())
    annota_settings.storage = backend
    annota_settings.plugin_settings = {backend: plugin}
    return annota_settings


def follow(response: Any) -> httpx.Response:
    assert response.status_code == 307, response.text
    location = response.headers["location"]
    assert location.startswith("http://127.0.0.1:") and "sig" in location.lower()
    assert "private" in response.headers["cache-control"]
    target = httpx.get(location)
    assert target.status_code == 200
    return target


@pytest.mark.parametrize("backend", ["s3", "azure"], indirect=True)
def test_media_is_served_by_redirect_to_the_bucket(
    admin_client: Any, user_client: Any, make_media_task: Callable[..., int]
) -> None:
    task_id = make_media_task(admin_client, FILES, segment_size=2, chunk_size=2)
    data = f"/api/tasks/{task_id}/data"

    frame = admin_client.get(f"{data}?type=frame&number=2&quality=original", follow_redirects=False)
    assert follow(frame).content == FILES[2][1]

    chunk = admin_client.get(f"{data}?type=chunk&index=1&quality=compressed", follow_redirects=False)
    with zipfile.ZipFile(io.BytesIO(follow(chunk).content)) as archive:
        assert len(archive.namelist()) == 2

    preview = admin_client.get(f"/api/tasks/{task_id}/preview", follow_redirects=False)
    assert follow(preview).content[:2] == b"\xff\xd8"

    # a compressed frame is cut out of its chunk by the server: it has no object of its own
    compressed = admin_client.get(f"{data}?type=frame&number=2&quality=compressed", follow_redirects=False)
    assert compressed.status_code == 200 and compressed.content[:2] == b"\xff\xd8"

    # nobody is sent to the bucket before being authorized
    refused = user_client.get(f"{data}?type=frame&number=2&quality=original", follow_redirects=False)
    assert refused.status_code == 403 and "location" not in refused.headers
    missing = admin_client.get(f"{data}?type=frame&number=99&quality=original", follow_redirects=False)
    assert missing.status_code == 400


@pytest.mark.parametrize("backend", ["local"], indirect=True)
def test_without_presigned_urls_media_is_served_directly(
    admin_client: Any, make_media_task: Callable[..., int]
) -> None:
    task_id = make_media_task(admin_client, FILES, segment_size=2, chunk_size=2)
    data = f"/api/tasks/{task_id}/data"
    frame = admin_client.get(f"{data}?type=frame&number=1&quality=original", follow_redirects=False)
    assert frame.status_code == 200 and frame.content == FILES[1][1]
    chunk = admin_client.get(f"{data}?type=chunk&index=0&quality=compressed", follow_redirects=False)
    assert chunk.status_code == 200 and chunk.headers["content-type"] == "application/zip"
