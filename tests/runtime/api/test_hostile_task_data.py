"""Hostile media (``tests/data/hostile/media`` and ``archives``) sent as a task's data through every
upload path CVAT's clients use: the one-shot form, ``Upload-Multiple`` and TUS. Each must be refused
with a 4xx or a failed request whose message names the file, and leave no row and no file behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from annota.runtime.settings import Settings
from tests.runtime.api.hostile import (
    corpus,
    hostile_settings,
    outcome,
    refused,
    snapshot,
    tus_metadata,
    unexpected_errors,
)

MEDIA = {**corpus("media"), **corpus("archives")}
#: a few inputs of each kind for PostgreSQL; SQLite takes them all
ON_POSTGRES = ("bomb.png", "not_a_video.mp4", "traversal.zip", "bomb.zip")


@pytest.fixture
def annota_settings(tmp_path: Path, annota_database_url: str) -> Settings:
    return hostile_settings(tmp_path, annota_database_url)


def new_task(client: Any) -> int:
    response = client.post("/api/tasks", json={"name": "hostile", "labels": [{"name": "car"}]})
    assert response.status_code == 201, response.text
    task_id: int = response.json()["id"]
    return task_id


def one_shot(client: Any, task_id: int, name: str, content: bytes) -> Any:
    return client.post(
        f"/api/tasks/{task_id}/data",
        data={"image_quality": "70"},
        files=[("client_files[0]", (name, content))],
    )


def upload_multiple(client: Any, task_id: int, name: str, content: bytes) -> Any:
    path = f"/api/tasks/{task_id}/data/"
    client.post(path, headers={"Upload-Start": ""})
    response = client.post(
        path, headers={"Upload-Multiple": ""}, files=[("client_files[0]", (name, content))]
    )
    if response.status_code != 200:
        return response
    return client.post(path, headers={"Upload-Finish": ""}, json={"image_quality": 70})


def tus(client: Any, task_id: int, name: str, content: bytes) -> Any:
    path = f"/api/tasks/{task_id}/data/"
    client.post(path, headers={"Upload-Start": ""})
    headers = {
        "Tus-Resumable": "1.0.0",
        "Upload-Length": str(len(content)),
        "Upload-Metadata": tus_metadata(name),
    }
    response = client.post(path, headers=headers)
    if response.status_code != 201:
        return response
    if content:
        response = client.patch(
            response.headers["Location"],
            headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                     "Content-Type": "application/offset+octet-stream"},
            content=content,
        )  # fmt: skip
        if response.status_code != 204:
            return response
    return client.post(path, headers={"Upload-Finish": ""}, json={"image_quality": 70})


TRANSPORTS: dict[str, Callable[[Any, int, str, bytes], Any]] = {
    "one-shot form": one_shot,
    "Upload-Multiple": upload_multiple,
    "TUS": tus,
}


def params() -> list[Any]:
    chosen = []
    for transport in TRANSPORTS:
        chosen.append(pytest.param("sqlite", transport, sorted(MEDIA), id=f"sqlite-{transport}"))
        chosen.append(
            pytest.param(
                "postgres", transport, ON_POSTGRES, id=f"postgres-{transport}", marks=pytest.mark.postgres
            )
        )
    return chosen


@pytest.mark.parametrize(
    ("annota_database_url", "transport", "names"), params(), indirect=["annota_database_url"]
)
def test_hostile_media_is_refused_and_leaves_nothing(
    admin_client: Any, run_async: Callable[..., Any], caplog: pytest.LogCaptureFixture, transport: str,
    names: list[str],
) -> None:  # fmt: skip
    send = TRANSPORTS[transport]
    problems = []
    for name in names:
        task_id = new_task(admin_client)
        before = snapshot(admin_client, run_async)
        status, message = outcome(admin_client, send(admin_client, task_id, name, MEDIA[name]))
        why = refused(status, message, [name])
        if why:
            problems.append(f"{name}: {why}")
        problems += [f"{name}: {change}" for change in before.changes(snapshot(admin_client, run_async))]
        problems += [f"{name}: unexpected error {error}" for error in unexpected_errors(caplog)]
        task = admin_client.get(f"/api/tasks/{task_id}").json()
        if task["size"] or task.get("data"):
            problems.append(f"{name}: the task kept data: size {task['size']}, data {task.get('data')}")
    assert not problems, "\n".join(problems)
