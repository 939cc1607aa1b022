"""``POST /api/tasks/{id}/data``: CVAT's upload protocol (Upload-Start, Upload-Multiple, TUS,
Upload-Finish and the one-shot upload) and the checks made before processing starts."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from annota.core.media import layout
from annota.core.services import uploads
from annota.runtime.settings import Settings, finalize

TUS_LIMIT = 10_000


@pytest.fixture
def share_dir(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.jpg").write_bytes(b"a")
    (tmp_path / "outside.jpg").write_bytes(b"o")
    return root


@pytest.fixture
def annota_settings(tmp_path: Path, annota_database_url: str, share_dir: Path) -> Settings:
    return finalize(
        Settings(
            data_dir=str(tmp_path / "data"),
            database_url=annota_database_url,
            secret_key="test-secret",
            share_dir=str(share_dir),
            max_tus_upload_size=TUS_LIMIT,
        )
    )


def new_task(client: Any) -> int:
    response = client.post("/api/tasks", json={"name": "t", "labels": [{"name": "car"}]})
    assert response.status_code == 201, response.text
    task_id: int = response.json()["id"]
    return task_id


def stored_names(annota_client: Any, run_async: Any, task_id: int) -> list[str]:
    storage = annota_client.app.state.annota.storage
    names: list[str] = run_async(uploads.uploaded_names, storage, task_id)
    return names


def stored_bytes(annota_client: Any, run_async: Any, task_id: int, name: str) -> bytes:
    storage = annota_client.app.state.annota.storage
    content: bytes = run_async(storage.read, layout.upload_file(task_id, name))
    return content


def upload_multiple(client: Any, task_id: int, files: list[tuple[str, bytes]], **form: str) -> Any:
    return client.post(
        f"/api/tasks/{task_id}/data/",
        headers={"Upload-Multiple": ""},
        data=form,
        files=[(f"client_files[{i}]", (name, content)) for i, (name, content) in enumerate(files)],
    )


def tus_create(client: Any, task_id: int, filename: str | None, length: int) -> Any:
    headers = {"Tus-Resumable": "1.0.0", "Upload-Length": str(length)}
    if filename is not None:
        encoded = base64.b64encode(filename.encode()).decode()
        headers["Upload-Metadata"] = f"filename {encoded},filetype {base64.b64encode(b'video/mp4').decode()}"
    return client.post(f"/api/tasks/{task_id}/data/", headers=headers)


def patch(
    client: Any,
    location: str,
    offset: int,
    body: bytes,
    content_type: str = "application/offset+octet-stream",
) -> Any:
    headers = {"Tus-Resumable": "1.0.0", "Upload-Offset": str(offset), "Content-Type": content_type}
    return client.patch(location, headers=headers, content=body)


# --- Upload-Start and Upload-Multiple ---------------------------------------------------------


def test_upload_multiple_stores_basenames_across_batches(user_client, annota_client, run_async):
    task_id = new_task(user_client)
    response = user_client.post(f"/api/tasks/{task_id}/data/", headers={"Upload-Start": ""})
    assert response.status_code == 202 and response.content == b""
    response = upload_multiple(
        user_client,
        task_id,
        [("/home/u/pics/b.jpg", b"bb"), ("C:\\Users\\u\\a.jpg", b"a")],
        image_quality="70",
    )
    assert response.status_code == 200, response.text
    # every batch restarts the field index at 0
    assert upload_multiple(user_client, task_id, [("/home/u/c.jpg", b"c")]).status_code == 200
    assert stored_names(annota_client, run_async, task_id) == ["a.jpg", "b.jpg", "c.jpg"]
    assert stored_bytes(annota_client, run_async, task_id, "b.jpg") == b"bb"


def test_upload_start_forgets_an_earlier_upload(user_client, annota_client, run_async):
    task_id = new_task(user_client)
    assert upload_multiple(user_client, task_id, [("a.jpg", b"a")]).status_code == 200
    assert user_client.post(f"/api/tasks/{task_id}/data", headers={"Upload-Start": ""}).status_code == 202
    assert stored_names(annota_client, run_async, task_id) == []


def test_duplicate_and_empty_files_are_refused_and_leave_nothing_staged(
    user_client, annota_client, run_async
):
    task_id = new_task(user_client)
    assert upload_multiple(user_client, task_id, [("/x/a.jpg", b"a")]).status_code == 200
    response = upload_multiple(user_client, task_id, [("/y/a.jpg", b"other")])
    assert response.status_code == 400
    assert response.json() == {"client_files": [f"a.jpg was already uploaded to task {task_id}."]}
    assert stored_names(annota_client, run_async, task_id) == []
    response = upload_multiple(user_client, task_id, [("/y/b.jpg", b"b"), ("/y/empty.jpg", b"")])
    assert response.status_code == 400
    assert response.json() == {"client_files": ["empty.jpg is empty."]}
    assert stored_names(annota_client, run_async, task_id) == []


def test_a_refused_one_shot_upload_can_be_repeated(user_client, annota_client, run_async):
    task_id = new_task(user_client)
    twice = [("client_files[0]", ("/a/x.png", b"1")), ("client_files[1]", ("/b/x.png", b"2"))]
    for _ in range(2):
        response = user_client.post(f"/api/tasks/{task_id}/data", data={"image_quality": "70"}, files=twice)
        assert response.status_code == 400
        assert response.json() == {"client_files": [f"x.png was already uploaded to task {task_id}."]}
        assert stored_names(annota_client, run_async, task_id) == []
    response = user_client.post(f"/api/tasks/{task_id}/data", data={"image_quality": "70"}, files=twice[:1])
    assert_started(response, task_id)


def test_an_upload_the_queue_refused_can_be_repeated(user_client, annota_client, run_async, monkeypatch):
    """The sequence of cvat-sdk (Upload-Start, Upload-Multiple, TUS, Upload-Finish) refused with
    503 when the queue is away leaves nothing staged, and succeeds when repeated."""
    task_id = new_task(user_client)
    queue = annota_client.app.state.annota.queue

    async def unreachable(request_id: str, queue_name: str) -> None:
        raise ConnectionError("Redis is away")

    def upload_all() -> Any:
        assert user_client.post(f"/api/tasks/{task_id}/data", headers={"Upload-Start": ""}).status_code == 202
        assert upload_multiple(user_client, task_id, [("/u/a.jpg", b"a")]).status_code == 200
        location = tus_create(user_client, task_id, "/u/b.mp4", 3).headers["Location"]
        assert patch(user_client, location, 0, b"bbb").status_code == 204
        return finish(user_client, task_id, {"image_quality": 70})

    with monkeypatch.context() as patched:
        patched.setattr(queue, "enqueue", unreachable)
        response = upload_all()
        assert response.status_code == 503
        assert stored_names(annota_client, run_async, task_id) == []
    assert_started(upload_all(), task_id)


def test_upload_multiple_needs_a_form(user_client):
    task_id = new_task(user_client)
    response = user_client.post(f"/api/tasks/{task_id}/data", headers={"Upload-Multiple": ""}, json={})
    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["detail"]


# --- TUS --------------------------------------------------------------------------------------


def test_tus_upload_in_two_parts(user_client, annota_client, run_async):
    content = bytes(range(256)) * 20
    task_id = new_task(user_client)
    response = tus_create(user_client, task_id, "/home/u/video clip.mp4", len(content))
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    file_id = location.rsplit("/", 1)[1]
    assert location == f"http://testserver/api/tasks/{task_id}/data/{file_id}"
    assert file_id.startswith(f"{user_client.user_id}_")
    assert response.headers["Upload-Filename"] == "video clip.mp4"
    assert response.headers["Tus-Resumable"] == "1.0.0" and response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Max-Size"] == str(TUS_LIMIT)
    assert response.headers["Upload-Offset"] == "0"

    head = user_client.head(location)
    assert head.status_code == 200
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("0", str(len(content)))
    assert head.headers["Cache-Control"] == "no-store" and head.headers["Tus-Resumable"] == "1.0.0"

    response = patch(user_client, location, 0, content[:3000])
    assert response.status_code == 204, response.text
    assert response.headers["Upload-Offset"] == "3000" and response.headers["Tus-Resumable"] == "1.0.0"
    assert user_client.head(location).headers["Upload-Offset"] == "3000"
    assert stored_names(annota_client, run_async, task_id) == []

    response = patch(user_client, location, 3000, content[3000:])
    assert response.status_code == 204, response.text
    assert response.headers["Upload-Offset"] == str(len(content))
    assert stored_names(annota_client, run_async, task_id) == ["video clip.mp4"]
    assert stored_bytes(annota_client, run_async, task_id, "video clip.mp4") == content
    # the same name cannot be uploaded twice
    assert tus_create(user_client, task_id, "video clip.mp4", 10).status_code == 409


def test_tus_refusals(user_client, make_user):
    task_id = new_task(user_client)
    location = tus_create(user_client, task_id, "a.mp4", 100).headers["Location"]
    assert patch(user_client, location, 0, b"x" * 10).status_code == 204

    # a client out of step is told so and re-syncs with HEAD
    response = patch(user_client, location, 0, b"y")
    assert response.status_code == 409
    assert "current offset 10" in response.json()["detail"]
    response = patch(user_client, location, 10, b"z" * 91)
    assert response.status_code == 413
    response = patch(user_client, location, 10, b"z", content_type="application/octet-stream")
    assert response.status_code == 415
    assert user_client.head(location).headers["Upload-Offset"] == "10"

    # someone else's upload does not exist for them, even where they may upload
    other = make_user("bob", privilege="admin")
    assert other.head(location).status_code == 404
    assert patch(other, location, 10, b"z").status_code == 404
    unknown = location.rsplit("/", 1)[0] + f"/{user_client.user_id}_{'0' * 32}"
    assert user_client.head(unknown).status_code == 404
    assert patch(user_client, unknown, 0, b"z").status_code == 404


def test_tus_creation_checks_length_and_file_name(user_client):
    task_id = new_task(user_client)
    response = tus_create(user_client, task_id, "big.mp4", TUS_LIMIT + 1)
    assert response.status_code == 413
    assert str(TUS_LIMIT) in response.json()["detail"]
    response = tus_create(user_client, task_id, None, 10)
    assert response.status_code == 400
    assert response.json() == {"Upload-Metadata": ["The filename is required."]}
    response = user_client.post(
        f"/api/tasks/{task_id}/data/", headers={"Upload-Length": "10", "Upload-Metadata": "filename ***"}
    )
    assert response.status_code == 400 and "filename" in response.json()["Upload-Metadata"][0]


# --- who may upload, and when -----------------------------------------------------------------


def test_a_task_with_data_takes_no_more(user_client, add_jobs):
    task_id = new_task(user_client)
    add_jobs(task_id)
    response = upload_multiple(user_client, task_id, [("a.jpg", b"a")])
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"Task {task_id} already has data: adding more data is not supported."
    }
    assert tus_create(user_client, task_id, "a.mp4", 10).status_code == 400


def test_only_people_who_may_change_the_task_upload(user_client, make_user, annota_client):
    task_id = new_task(user_client)
    stranger = make_user("stranger")
    assert stranger.post(f"/api/tasks/{task_id}/data", headers={"Upload-Start": ""}).status_code == 403
    assert upload_multiple(stranger, task_id, [("a.jpg", b"a")]).status_code == 403
    assert annota_client.post(f"/api/tasks/{task_id}/data", headers={"Upload-Start": ""}).status_code == 401
    assert user_client.post("/api/tasks/9999/data", headers={"Upload-Start": ""}).status_code == 404


# --- Upload-Finish: what is refused before processing -----------------------------------------


def finish(client: Any, task_id: int, body: dict[str, Any]) -> Any:
    return client.post(f"/api/tasks/{task_id}/data/", headers={"Upload-Finish": ""}, json=body)


def test_finish_without_files_is_accepted(user_client):
    # as in CVAT: the request starts, and fails in the background (see test_task_data_lifecycle)
    task_id = new_task(user_client)
    response = finish(user_client, task_id, {"image_quality": 70})
    assert response.status_code == 202, response.text
    assert response.json() == {"rq_id": f"action=create&target=task&target_id={task_id}"}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"cloud_storage_id": 1, "server_files": ["images"]},
            "cloud_storage_id",
            "The specified cloud storage 1 does not exist.",
        ),
        ({"validation_params": {"mode": "gt"}}, "validation_params", "not supported"),
        (
            {"remote_files": ["ftp://example.com/a.jpg"]},
            "remote_files",
            "'ftp://example.com/a.jpg' is not an http",
        ),
        ({"server_files": ["../outside.jpg"]}, "server_files", "'../outside.jpg' is outside the share."),
        (
            {"server_files": ["images/nope.jpg"]},
            "server_files",
            "'images/nope.jpg' does not exist in the share.",
        ),
        ({"server_files": ["/images"], "upload_file_order": ["a.jpg"]}, "upload_file_order", "predefined"),
        ({"image_quality": 0, "server_files": ["images"]}, "image_quality", ">= 1"),
    ],
)
def test_finish_refuses_unsupported_or_bad_options(user_client, body, field, message):
    task_id = new_task(user_client)
    response = finish(user_client, task_id, {"image_quality": 70, **body})
    assert response.status_code == 400
    assert message in response.json()[field][0]


def test_finish_refuses_two_sources(user_client):
    task_id = new_task(user_client)
    assert upload_multiple(user_client, task_id, [("a.jpg", b"a")]).status_code == 200
    response = finish(
        user_client, task_id, {"image_quality": 70, "remote_files": ["http://example.com/b.jpg"]}
    )
    assert response.status_code == 400
    assert "client_files and remote_files" in response.json()["detail"]


def test_finish_refuses_an_order_naming_files_not_uploaded(user_client):
    task_id = new_task(user_client)
    assert upload_multiple(user_client, task_id, [("a.jpg", b"a")]).status_code == 200
    body = {"image_quality": 70, "sorting_method": "predefined", "upload_file_order": ["a.jpg", "b.jpg"]}
    response = finish(user_client, task_id, body)
    assert response.status_code == 400
    assert response.json() == {"upload_file_order": ["b.jpg was not uploaded."]}


def test_server_files_need_a_share(user_client, annota_client):
    annota_client.app.state.annota.settings.share_dir = ""
    task_id = new_task(user_client)
    response = finish(user_client, task_id, {"image_quality": 70, "server_files": ["images/a.jpg"]})
    assert response.status_code == 400
    assert response.json() == {"server_files": ["This server has no share directory configured."]}


def test_one_shot_form_values_are_validated_by_field(user_client, annota_client, run_async):
    task_id = new_task(user_client)
    response = user_client.post(
        f"/api/tasks/{task_id}/data",
        data={"image_quality": "high"},
        files=[("client_files[0]", ("/tmp/a.jpg", b"a"))],
    )
    assert response.status_code == 400
    assert list(response.json()) == ["image_quality"]
    response = user_client.post(
        f"/api/tasks/{task_id}/data/",
        headers={"Upload-Finish": ""},
        data={"image_quality": "70", "job_file_mapping": "[["},
    )
    assert response.status_code == 400
    assert list(response.json()) == ["job_file_mapping"]


def test_multipart_bodies_past_the_upload_limit_are_refused(user_client, annota_client, run_async):
    annota_client.app.state.annota.settings.max_upload_body_size = 1000
    task_id = new_task(user_client)
    response = upload_multiple(user_client, task_id, [("a.jpg", b"a" * 2000)])
    assert response.status_code == 413
    location = tus_create(user_client, task_id, "b.mp4", 5000).headers["Location"]
    assert patch(user_client, location, 0, b"b" * 2000).status_code == 413
    assert user_client.head(location).headers["Upload-Offset"] == "0"
    assert stored_names(annota_client, run_async, task_id) == []


# --- Upload-Finish: processing starts ---------------------------------------------------------


def assert_started(response: Any, task_id: int) -> None:
    assert response.status_code == 202, response.text
    assert response.json() == {"rq_id": f"action=create&target=task&target_id={task_id}"}


def test_finish_after_upload_multiple_starts_processing(user_client):
    task_id = new_task(user_client)
    assert upload_multiple(user_client, task_id, [("/u/a.jpg", b"a"), ("/u/b.jpg", b"b")]).status_code == 200
    body = {"image_quality": 70, "sorting_method": "predefined", "upload_file_order": ["b.jpg", "a.jpg"]}
    assert_started(finish(user_client, task_id, body), task_id)


def test_one_shot_upload_starts_processing(user_client, annota_client, run_async):
    task_id = new_task(user_client)
    response = user_client.post(
        f"/api/tasks/{task_id}/data",
        data={"image_quality": "70", "use_cache": "true", "chunk_size": "", "upload_file_order[0]": "a.jpg"},
        files=[("client_files[0]", ("/tmp/a.jpg", b"a"))],
    )
    # upload_file_order without predefined sorting: refused, and the files are forgotten
    assert response.status_code == 400
    assert stored_names(annota_client, run_async, task_id) == []
    response = user_client.post(
        f"/api/tasks/{task_id}/data",
        data={
            "image_quality": "70",
            "use_cache": "true",
            "sorting_method": "predefined",
            "upload_file_order[1]": "b.jpg",
            "upload_file_order[0]": "a.jpg",
        },  # fmt: skip
        files=[("client_files[0]", ("/tmp/a.jpg", b"a")), ("client_files[1]", ("/tmp/b.jpg", b"b"))],
    )
    assert_started(response, task_id)


def test_server_and_remote_files_start_processing(user_client):
    task_id = new_task(user_client)
    assert_started(finish(user_client, task_id, {"image_quality": 70, "server_files": ["/images/"]}), task_id)
    task_id = new_task(user_client)
    body = {"image_quality": 70, "remote_files": ["https://example.com/a.jpg"]}
    assert_started(finish(user_client, task_id, body), task_id)
