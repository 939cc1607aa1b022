"""A task's ``data`` row over its upload, as CVAT clients see it: made by the upload's first
request, kept by the media once created, removed again by a refused, failed or abandoned upload;
empty uploads and previews of tasks without media."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from annota.core.db.tables import Data, Task
from annota.core.media import layout
from annota.core.services.task_data import prune_leftovers
from tests.media import make_jpeg, wait_for_request
from tests.runtime.api.hostile import snapshot


@pytest.fixture
def alice(make_user: Any) -> Any:
    return make_user("alice")


def new_task(client: Any) -> int:
    response = client.post("/api/tasks", json={"name": "t", "labels": [{"name": "car"}]})
    assert response.status_code == 201, response.text
    task_id: int = response.json()["id"]
    return task_id


def data_of(client: Any, task_id: int) -> Any:
    return client.get(f"/api/tasks/{task_id}").json()["data"]


def data_rows(client: Any, run_async: Any) -> list[int]:
    async def ids() -> list[int]:
        async with client.app.state.annota.sessionmaker() as session:
            return list(await session.scalars(select(Data.id)))

    result: list[int] = run_async(ids)
    return result


def multiple(client: Any, task_id: int, files: list[tuple[str, bytes]]) -> Any:
    return client.post(
        f"/api/tasks/{task_id}/data/",
        headers={"Upload-Multiple": ""},
        files=[(f"client_files[{i}]", (name, content)) for i, (name, content) in enumerate(files)],
    )


def finish(client: Any, task_id: int) -> dict[str, Any]:
    response = client.post(
        f"/api/tasks/{task_id}/data/", headers={"Upload-Finish": ""}, json={"image_quality": 70}
    )
    assert response.status_code == 202, response.text
    return wait_for_request(client, response.json()["rq_id"])


def test_the_data_id_is_set_when_the_upload_starts_and_kept(alice, run_async):
    task_id = new_task(alice)
    assert data_of(alice, task_id) is None
    assert alice.post(f"/api/tasks/{task_id}/data/", headers={"Upload-Start": ""}).status_code == 202
    data_id = data_of(alice, task_id)
    assert isinstance(data_id, int) and data_rows(alice, run_async) == [data_id]
    task = alice.get(f"/api/tasks/{task_id}").json()
    assert task["size"] == 0 and task["media_type"] == ""
    # a task whose upload has started but holds no media still has no preview, meta or frames
    assert alice.get(f"/api/tasks/{task_id}/preview").status_code == 404
    assert alice.get(f"/api/tasks/{task_id}/data/meta").status_code == 404
    # a second Upload-Start, a batch and the finish keep the same row, which receives the media
    assert alice.post(f"/api/tasks/{task_id}/data/", headers={"Upload-Start": ""}).status_code == 202
    assert (
        multiple(alice, task_id, [("a.jpg", make_jpeg()), ("b.jpg", make_jpeg(value=90))]).status_code == 200
    )
    assert data_of(alice, task_id) == data_id
    request = finish(alice, task_id)
    assert request["status"] == "finished", request["message"]
    task = alice.get(f"/api/tasks/{task_id}").json()
    assert task["data"] == data_id and task["size"] == 2 and task["media_type"] == "image"
    assert data_rows(alice, run_async) == [data_id]
    assert alice.get(f"/api/tasks/{task_id}/preview").status_code == 200


def test_the_first_tus_or_batch_request_also_makes_the_data_row(alice):
    tus_task, batch_task = new_task(alice), new_task(alice)
    response = alice.post(
        f"/api/tasks/{tus_task}/data/",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "3", "Upload-Metadata": "filename YS5qcGc="},
    )
    assert response.status_code == 201, response.text
    assert isinstance(data_of(alice, tus_task), int)
    assert multiple(alice, batch_task, [("a.jpg", make_jpeg())]).status_code == 200
    assert isinstance(data_of(alice, batch_task), int)


def test_a_refused_upload_leaves_no_data_row(alice, run_async):
    task_id = new_task(alice)
    before = snapshot(alice, run_async)
    assert alice.post(f"/api/tasks/{task_id}/data/", headers={"Upload-Start": ""}).status_code == 202
    assert multiple(alice, task_id, [("a.jpg", make_jpeg())]).status_code == 200
    # the same file twice is refused: the upload is forgotten, data row included
    response = multiple(alice, task_id, [("a.jpg", make_jpeg())])
    assert response.status_code == 400, response.text
    assert data_of(alice, task_id) is None
    assert not before.changes(snapshot(alice, run_async))


def test_a_failed_creation_leaves_no_data_row(alice, run_async):
    task_id = new_task(alice)
    before = snapshot(alice, run_async)
    assert alice.post(f"/api/tasks/{task_id}/data/", headers={"Upload-Start": ""}).status_code == 202
    assert multiple(alice, task_id, [("a.jpg", b"not an image")]).status_code == 200
    assert isinstance(data_of(alice, task_id), int)
    request = finish(alice, task_id)
    assert request["status"] == "failed" and "a.jpg" in request["message"]
    assert data_of(alice, task_id) is None
    assert not before.changes(snapshot(alice, run_async))
    # the client can start over
    assert multiple(alice, task_id, [("a.jpg", make_jpeg())]).status_code == 200
    request = finish(alice, task_id)
    assert request["status"] == "finished", request["message"]
    assert alice.get(f"/api/tasks/{task_id}").json()["size"] == 1


@pytest.mark.parametrize("how", ["Upload-Finish", "one-shot"])
def test_an_empty_upload_is_accepted_and_fails_as_in_cvat(alice, run_async, how):
    task_id = new_task(alice)
    before = snapshot(alice, run_async)
    if how == "Upload-Finish":
        assert alice.post(f"/api/tasks/{task_id}/data/", headers={"Upload-Start": ""}).status_code == 202
        response = alice.post(
            f"/api/tasks/{task_id}/data/", headers={"Upload-Finish": ""}, json={"image_quality": 70}
        )
    else:
        response = alice.post(f"/api/tasks/{task_id}/data/", data={"image_quality": "70"})
    assert response.status_code == 202, response.text
    assert response.json() == {"rq_id": f"action=create&target=task&target_id={task_id}"}
    request = wait_for_request(alice, response.json()["rq_id"])
    assert request["status"] == "failed" and request["message"] == "No media data found"
    task = alice.get(f"/api/tasks/{task_id}").json()
    assert task["data"] is None and task["size"] == 0
    assert not before.changes(snapshot(alice, run_async))


def test_an_abandoned_upload_loses_its_data_row_after_a_day(alice, run_async):
    task_id = new_task(alice)
    assert multiple(alice, task_id, [("a.jpg", make_jpeg())]).status_code == 200
    data_id = data_of(alice, task_id)
    state = alice.app.state.annota

    async def prune(age: dt.timedelta) -> int:
        return await prune_leftovers(state.sessionmaker, state.storage, age)

    async def put_object() -> None:
        await state.storage.put(layout.preview(data_id), b"x", content_type="image/jpeg")

    run_async(put_object)
    run_async(prune, dt.timedelta(days=1))
    assert data_of(alice, task_id) == data_id  # still recent

    async def age_it() -> None:
        async with state.sessionmaker.begin() as session:
            old = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
            await session.execute(update(Data).where(Data.id == data_id).values(created_date=old))

    run_async(age_it)
    run_async(prune, dt.timedelta(seconds=0))
    assert data_of(alice, task_id) is None and data_rows(alice, run_async) == []

    async def task_row() -> Task | None:
        async with state.sessionmaker() as session:
            return await session.get(Task, task_id)

    assert run_async(task_row) is not None
    assert not run_async(state.storage.exists, layout.preview(data_id))


def test_previews_of_a_task_and_project_without_media(alice):
    project = alice.post("/api/projects", json={"name": "p", "labels": [{"name": "car"}]}).json()["id"]
    task_id = alice.post("/api/tasks", json={"name": "t", "project_id": project}).json()["id"]
    response = alice.get(f"/api/tasks/{task_id}/preview")
    assert response.status_code == 404 and response.json() == {"detail": "Task image preview not found"}
    response = alice.get(f"/api/projects/{project}/preview")
    assert response.status_code == 404 and response.json() == {"detail": "Project image preview not found"}
