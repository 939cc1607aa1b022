"""Every path that expands an uploaded archive refuses a zip bomb: task media, task and project
dataset imports, task backups. The request fails fast with a message naming the archive and the
setting, and nothing of the bomb is left behind."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from annota.runtime.settings import Settings, load_settings
from tests.bombs import MiB, zip_of_zeros
from tests.media import make_jpeg, wait_for_request

BOMB_MEBIBYTES = 256
RATIO_SETTING = "max_archive_compression_ratio"


@pytest.fixture
def annota_settings(annota_settings: Settings) -> Settings:
    # the defaults scaled down 128 times: 1 MiB before the ratio applies
    annota_settings.archive_ratio_floor = MiB
    return annota_settings


@pytest.fixture
def bomb(tmp_path: Path) -> bytes:
    """A valid 256 KiB ZIP holding one 256 MiB member."""
    return zip_of_zeros(tmp_path / "bomb.zip", "zeros.jpg", BOMB_MEBIBYTES).read_bytes()


def _leftovers(settings: Settings) -> list[Path]:
    """Files in the data directory bigger than the bomb itself: what expanding it would leave."""
    return [p for p in Path(settings.data_dir).rglob("*") if p.is_file() and p.stat().st_size > MiB]


def _stored(client: Any, run_async: Callable[..., Any]) -> list[str]:
    storage = client.app.state.annota.storage

    async def keys() -> list[str]:
        return [info.key async for info in storage.list("")]

    result: list[str] = run_async(keys)
    return result


def _check_refused(client: Any, response: Any, started: float, settings: Settings) -> None:
    """The upload in ``response`` was accepted as a request that then failed on the bomb, fast."""
    assert response.status_code == 202, response.text
    request = wait_for_request(client, response.json()["rq_id"])
    assert request["status"] == "failed", request
    message = request["message"]
    assert "bomb.zip: " in message and "zeros.jpg" in message and RATIO_SETTING in message, message
    assert time.monotonic() - started < 20
    assert _leftovers(settings) == []


def _task(client: Any) -> int:
    response = client.post("/api/tasks", json={"name": "t", "labels": [{"name": "car"}]})
    assert response.status_code == 201, response.text
    task_id: int = response.json()["id"]
    return task_id


def test_task_media(admin_client: Any, annota_settings: Settings, run_async: Any, bomb: bytes) -> None:
    task_id = _task(admin_client)
    started = time.monotonic()
    response = admin_client.post(
        f"/api/tasks/{task_id}/data",
        data={"image_quality": "70"},
        files={"client_files[0]": ("bomb.zip", bomb)},
    )
    _check_refused(admin_client, response, started, annota_settings)
    assert _stored(admin_client, run_async) == []
    # the ratio applies per archive: a JPEG in an archive is fine
    response = admin_client.post(
        f"/api/tasks/{task_id}/data",
        data={"image_quality": "70"},
        files={"client_files[0]": ("ok.zip", zip_bytes({"a.jpg": make_jpeg()}))},
    )
    assert wait_for_request(admin_client, response.json()["rq_id"])["status"] == "finished"


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_task_dataset_import(
    admin_client: Any, annota_settings: Settings, run_async: Any, bomb: bytes
) -> None:
    task_id = _task(admin_client)
    started = time.monotonic()
    response = admin_client.post(
        f"/api/tasks/{task_id}/annotations",
        params={"format": "COCO 1.0"},
        files={"annotation_file": ("bomb.zip", bomb)},
    )
    _check_refused(admin_client, response, started, annota_settings)
    assert _stored(admin_client, run_async) == []


def test_project_dataset_import(
    admin_client: Any, annota_settings: Settings, run_async: Any, bomb: bytes
) -> None:
    response = admin_client.post("/api/projects", json={"name": "p", "labels": [{"name": "car"}]})
    project_id = response.json()["id"]
    started = time.monotonic()
    response = admin_client.post(
        f"/api/projects/{project_id}/dataset",
        params={"format": "COCO 1.0"},
        files={"dataset_file": ("bomb.zip", bomb)},
    )
    _check_refused(admin_client, response, started, annota_settings)
    assert admin_client.get("/api/tasks").json()["count"] == 0
    assert _stored(admin_client, run_async) == []


def test_task_backup_restore(
    admin_client: Any, annota_settings: Settings, run_async: Any, bomb: bytes
) -> None:
    started = time.monotonic()
    response = admin_client.post("/api/tasks/backup", files={"task_file": ("bomb.zip", bomb)})
    _check_refused(admin_client, response, started, annota_settings)
    assert admin_client.get("/api/tasks").json()["count"] == 0
    assert _stored(admin_client, run_async) == []


def test_project_backup_restore(
    admin_client: Any, annota_settings: Settings, run_async: Any, bomb: bytes
) -> None:
    started = time.monotonic()
    response = admin_client.post("/api/projects/backup", files={"project_file": ("bomb.zip", bomb)})
    _check_refused(admin_client, response, started, annota_settings)
    assert admin_client.get("/api/projects").json()["count"] == 0
    assert _stored(admin_client, run_async) == []


def test_the_settings_come_from_the_environment() -> None:
    settings = load_settings(
        environ={"ANNOTA_MAX_ARCHIVE_COMPRESSION_RATIO": "40", "ANNOTA_ARCHIVE_RATIO_FLOOR": "1000"}
    )
    assert (settings.max_archive_compression_ratio, settings.archive_ratio_floor) == (40, 1000)
