"""Source and target storages of projects and tasks: rows with ids, as CVAT's clients expect."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from annota.core.db.tables import Storage

LOCAL = {"location": "local"}
NO_ID = "Cloud storage was selected as location but its id was not specified"
LOCAL_WITH_ID = "It is not allowed to specify 'local' location together with cloud storage id"


def _parse(body: dict[str, Any], model: Any) -> Any:
    from cvat_sdk.api_client import Configuration
    from cvat_sdk.api_client.model_utils import validate_and_convert_types

    return validate_and_convert_types(
        body, (model,), ["received_data"], True, True, configuration=Configuration()
    )


def _storage_rows(client: Any, run_async: Any) -> int:
    async def count() -> int:
        async with client.app.state.annota.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(Storage)) or 0)

    result: int = run_async(count)
    return result


def test_storages_have_ids_the_sdk_accepts(user_client, add_jobs):
    from cvat_sdk.api_client.model.job_read import JobRead
    from cvat_sdk.api_client.model.project_read import ProjectRead
    from cvat_sdk.api_client.model.task_read import TaskRead

    project = user_client.post(
        "/api/projects", json={"name": "p", "source_storage": LOCAL, "target_storage": LOCAL}
    ).json()
    source, target = project["source_storage"], project["target_storage"]
    assert source == {"id": source["id"], "location": "local", "cloud_storage_id": None}
    assert isinstance(source["id"], int) and isinstance(target["id"], int) and source["id"] != target["id"]
    assert (
        _parse(user_client.get(f"/api/projects/{project['id']}").json(), ProjectRead).source_storage.id
        == source["id"]
    )

    task = user_client.post("/api/tasks", json={"name": "t", "target_storage": LOCAL}).json()
    assert task["source_storage"] is None
    assert task["target_storage"]["id"] not in (source["id"], target["id"])
    parsed = _parse(user_client.get(f"/api/tasks/{task['id']}").json(), TaskRead)
    assert parsed.target_storage.id == task["target_storage"]["id"]

    (job_id,) = add_jobs(task["id"])
    job = _parse(user_client.get(f"/api/jobs/{job_id}").json(), JobRead)
    assert (job.target_storage.id, job.source_storage) == (task["target_storage"]["id"], None)


def test_patch_keeps_the_storage_row(user_client, annota_client, run_async):
    task = user_client.post("/api/tasks", json={"name": "t", "source_storage": LOCAL}).json()
    storage_id = task["source_storage"]["id"]
    patched = user_client.patch(f"/api/tasks/{task['id']}", json={"source_storage": LOCAL}).json()
    assert patched["source_storage"] == {"id": storage_id, "location": "local", "cloud_storage_id": None}
    # as in CVAT, null or an empty object leaves the storage alone
    for value in (None, {}):
        patched = user_client.patch(f"/api/tasks/{task['id']}", json={"source_storage": value}).json()
        assert patched["source_storage"]["id"] == storage_id
    # a task without a target storage gets one on its first PATCH
    patched = user_client.patch(f"/api/tasks/{task['id']}", json={"target_storage": LOCAL}).json()
    assert isinstance(patched["target_storage"]["id"], int)
    assert _storage_rows(annota_client, run_async) == 2
    assert user_client.delete(f"/api/tasks/{task['id']}").status_code == 204
    assert _storage_rows(annota_client, run_async) == 0


def test_deleting_a_project_deletes_its_and_its_tasks_storages(user_client, annota_client, run_async):
    project = user_client.post("/api/projects", json={"name": "p", "source_storage": LOCAL}).json()
    user_client.post("/api/tasks", json={"name": "t", "project_id": project["id"], "target_storage": LOCAL})
    assert _storage_rows(annota_client, run_async) == 2
    assert user_client.delete(f"/api/projects/{project['id']}").status_code == 204
    assert _storage_rows(annota_client, run_async) == 0


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        (
            {"location": "cloud_storage"},
            "Cloud storage was selected as location but its id was not specified",
        ),
        (
            {"location": "cloud_storage", "cloud_storage_id": 3},
            "The specified cloud storage 3 does not exist.",
        ),
        ({"location": "local", "cloud_storage_id": 3}, "The specified cloud storage 3 does not exist."),
    ],
)
def test_cloud_storages_that_do_not_exist_are_refused(user_client, storage, message):
    response = user_client.post("/api/projects", json={"name": "p", "target_storage": storage})
    assert response.status_code == 400, response.text
    assert response.json() == {"target_storage": [message]}
    assert user_client.get("/api/projects").json()["count"] == 0


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"location": "local", "cloud_storage_id": 3}, LOCAL_WITH_ID),
        ({"cloud_storage_id": 3}, "The configuration of target_storage is not full"),
        ({"location": "cloud_storage"}, NO_ID),
    ],
)  # fmt: skip
def test_patch_refuses_incomplete_cloud_storage_settings(user_client, storage, message):
    task = user_client.post("/api/tasks", json={"name": "t", "target_storage": LOCAL}).json()
    response = user_client.patch(f"/api/tasks/{task['id']}", json={"target_storage": storage})
    assert response.status_code == 400, response.text
    assert response.json() == {"target_storage": [message]}
    assert user_client.get(f"/api/tasks/{task['id']}").json()["target_storage"] == task["target_storage"]
