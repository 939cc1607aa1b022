"""``/api/requests``: percent-encoded ids, listing and filtering, who may see and cancel what."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from annota.core.services import requests as request_service
from tests.runtime import jobs_plugin
from tests.runtime.background import request_path, start, status_is, wait_for


@pytest.fixture
def annota_plugins() -> dict[str, Any]:
    return {jobs_plugin.NAME: jobs_plugin}


def _insert(client: TestClient, run_async: Callable[..., Any], rq_id: str, owner_id: int | None) -> None:
    """A queued request row with exactly this id (nothing runs it: it is never enqueued)."""

    async def insert() -> None:
        async with client.app.state.annota.sessionmaker.begin() as session:  # type: ignore[attr-defined]
            await request_service.create(
                session,
                request_id=rq_id,
                action="export",
                target="task",
                queue="export",
                job_name="jobs-test.fail",
                job_kwargs={"message": "not run"},
                owner_id=owner_id,
            )

    run_async(insert)


def test_get_by_percent_encoded_id(user_client: TestClient) -> None:
    rq_id = start(user_client, "jobs-test.fail", 42, message="x")
    assert rq_id == "action=create&target=task&target_id=42"
    # exactly what cvat-sdk sends
    response = user_client.get("/api/requests/action%3Dcreate%26target%3Dtask%26target_id%3D42")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == rq_id
    # unencoded and with a trailing slash work too
    assert user_client.get(f"/api/requests/{rq_id}").json()["id"] == rq_id
    assert user_client.get(f"/api/requests/{rq_id}/").json()["id"] == rq_id


@pytest.mark.parametrize(
    "rq_id",
    [
        "action=export&target=task&target_id=1&subresource=dataset&format=COCO_1~0&user_id=1",
        "action=export&target=task&target_id=1&format=My Format 2",
        "action=import&target=task&target_id=a/b&subresource=backup",
        "plain-id_with~sorts+of=chars!$(),;:@",
    ],
)
def test_ids_round_trip(user_client: TestClient, run_async: Callable[..., Any], rq_id: str) -> None:
    _insert(user_client, run_async, rq_id, user_client.user_id)  # type: ignore[attr-defined]
    response = user_client.get(request_path(rq_id))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == rq_id
    assert [item["id"] for item in user_client.get("/api/requests").json()["results"]] == [rq_id]
    # the cancel route is not taken for part of the id, nor the id for part of the cancel route
    assert user_client.post(request_path(rq_id) + "/cancel").status_code == 200
    assert user_client.get(request_path(rq_id)).status_code == 404


def test_export_ids_name_the_format_and_user(user_client: TestClient) -> None:
    response = user_client.post(
        jobs_plugin.START_PATH,
        json={
            "job": "jobs-test.fail",
            "target_id": 3,
            "action": "export",
            "format": "COCO 1.0",
            "kwargs": {"message": "x"},
        },
    )
    rq_id = response.json()["rq_id"]
    user_id = user_client.user_id  # type: ignore[attr-defined]
    assert rq_id == f"action=export&target=task&target_id=3&format=COCO_1~0&user_id={user_id}"
    body = wait_for(user_client, rq_id, status_is("failed"))
    assert body["operation"]["type"] == "export:task"
    assert body["operation"]["format"] == "COCO 1.0"


@pytest.mark.parametrize(
    ("legacy", "current"),
    [
        ("create:task-7", "action=create&target=task&target_id=7"),
        ("import:task-7-annotations", "action=import&target=task&target_id=7&subresource=annotations"),
        ("import:project-3-dataset", "action=import&target=project&target_id=3&subresource=dataset"),
        (
            "export:task-7-dataset-in-COCO_1@0-format-by-{user}",
            "action=export&target=task&target_id=7&subresource=dataset&format=COCO_1~0&user_id={user}",
        ),
        (
            "export:job-2-annotations-in-CVAT_for_images_1.1-format-by-{user}",
            "action=export&target=job&target_id=2&subresource=annotations&format=CVAT_for_images_1~1&user_id={user}",
        ),
        (
            "export:project-3-backup-by-{user}",
            "action=export&target=project&target_id=3&subresource=backup&user_id={user}",
        ),
    ],
)  # fmt: skip
def test_cvat_2_ids_name_the_same_requests(
    user_client: TestClient, run_async: Callable[..., Any], legacy: str, current: str
) -> None:
    user = user_client.user_id  # type: ignore[attr-defined]
    legacy, current = legacy.format(user=user), current.format(user=user)
    _insert(user_client, run_async, current, user)
    response = user_client.get(request_path(legacy))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == current
    assert user_client.post(request_path(legacy) + "/cancel").status_code == 200
    assert user_client.get(request_path(current)).status_code == 404


def test_ids_like_cvat_2_ids_that_name_nothing_are_404(user_client: TestClient) -> None:
    for rq_id in (
        "create:task-1",
        "create:task-1-dataset",
        "import:task-1-annotations-by-3",
        "export:task-x",
    ):
        assert user_client.get(request_path(rq_id)).status_code == 404, rq_id


def test_unknown_request_is_404(user_client: TestClient) -> None:
    response = user_client.get(request_path("action=create&target=task&target_id=999"))
    assert response.status_code == 404
    assert response.json() == {"detail": "Request 'action=create&target=task&target_id=999' not found."}
    assert user_client.post(request_path("nope") + "/cancel").status_code == 404


def test_only_the_owner_sees_and_cancels(
    make_user: Callable[..., TestClient], admin_client: TestClient, run_async: Callable[..., Any]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    rq_id = "action=export&target=task&target_id=1&user_id=alice"
    _insert(alice, run_async, rq_id, alice.user_id)  # type: ignore[attr-defined]

    assert bob.get(request_path(rq_id)).status_code == 403
    assert bob.post(request_path(rq_id) + "/cancel").status_code == 403
    assert bob.get("/api/requests").json() == {"count": 0, "next": None, "previous": None, "results": []}

    listed = alice.get("/api/requests").json()
    assert [item["id"] for item in listed["results"]] == [rq_id]
    assert listed["results"][0]["owner"] == {"id": alice.user_id, "username": "alice"}  # type: ignore[attr-defined]
    assert admin_client.get(request_path(rq_id)).status_code == 200
    assert admin_client.get("/api/requests").json()["count"] == 1
    assert alice.post(request_path(rq_id) + "/cancel").status_code == 200


def test_requests_without_owner_are_not_shown(
    admin_client: TestClient, run_async: Callable[..., Any]
) -> None:
    # the owner's account was deleted: nobody's request, and CVAT's clients cannot read one without owner
    _insert(admin_client, run_async, "action=create&target=task&target_id=1", None)
    assert admin_client.get("/api/requests").json()["count"] == 0
    assert admin_client.get(request_path("action=create&target=task&target_id=1")).status_code == 404


def test_anonymous_is_401(annota_client: TestClient) -> None:
    assert annota_client.get("/api/requests").status_code == 401
    assert annota_client.get(request_path("action=create&target=task&target_id=1")).status_code == 401
    assert (
        annota_client.post(jobs_plugin.START_PATH, json={"job": "jobs-test.fail", "target_id": 1}).status_code
        == 401
    )


def test_list_filters_sorts_and_pages(user_client: TestClient, tmp_path: Path) -> None:
    failed = [start(user_client, "jobs-test.fail", n, message=f"m{n}") for n in (1, 2)]
    gate = tmp_path / "gate"
    waiting = start(user_client, "jobs-test.wait", 3, path=str(gate))
    for rq_id in failed:
        wait_for(user_client, rq_id, status_is("failed"))
    wait_for(user_client, waiting, status_is("started"))

    def ids(**params: Any) -> list[str]:
        response = user_client.get("/api/requests", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["results"]]

    assert ids() == [waiting, *reversed(failed)]
    assert ids(sort="created_date") == [*failed, waiting]
    assert ids(status="failed", sort="id") == failed
    assert ids(task_id=3) == [waiting]
    assert ids(filter='{"==":[{"var":"status"},"started"]}') == [waiting]
    page = user_client.get("/api/requests", params={"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert user_client.get("/api/requests", params={"status": "bogus"}).json()["count"] == 0
    assert user_client.get("/api/requests", params={"sort": "owner"}).status_code == 400
    gate.touch()
    wait_for(user_client, waiting, status_is("finished"))


def test_unknown_job_is_a_server_error_not_a_queued_request(user_client: TestClient) -> None:
    response = user_client.post(jobs_plugin.START_PATH, json={"job": "jobs-test.nope", "target_id": 1})
    assert response.status_code == 500
    assert user_client.get("/api/requests").json()["count"] == 0
