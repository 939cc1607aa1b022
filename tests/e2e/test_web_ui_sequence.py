"""The request sequence CVAT's web UI sends, replayed as plain HTTP against ``annota serve``: sign in,
list tasks, open a task and its job, move to another frame, draw and save a rectangle, reload it,
open an issue with a comment, comment again, resolve it, sign out. The UI signs in with cookies and
proves unsafe requests with ``X-CSRFToken`` and its own ``Origin``, as a browser does."""

from __future__ import annotations

import json
import time
from typing import Any

import cv2
import httpx2 as httpx
import numpy as np
import pytest

from tests.e2e.conftest import ADMIN, LiveServer

pytestmark = pytest.mark.slow

# The UI adds ``org=`` (the personal workspace) to almost every call.
ORG = {"org": ""}
PAGE_ALL = {"org": "", "page_size": "500", "page": "1"}


def _jpeg(shade: int) -> bytes:
    ok, encoded = cv2.imencode(".jpg", np.full((60, 80, 3), shade, np.uint8))
    assert ok
    return bytes(encoded)


def _seed_task(ui: Browser) -> int:
    """A project with labels and a three-frame task, created the way the UI's create-task page does."""
    project = ui.call(
        "POST", "/api/projects", ORG, json={"name": "ui", "labels": [{"name": "car"}, {"name": "person"}]}
    )
    assert project.status_code == 201, project.text
    task = ui.call("POST", "/api/tasks", ORG, json={"name": "ui task", "project_id": project.json()["id"]})
    assert task.status_code == 201, task.text
    task_id = int(task.json()["id"])
    files = [("client_files[]", (f"frame{i}.jpg", _jpeg(40 * i), "image/jpeg")) for i in range(3)]
    upload = ui.call(
        "POST",
        f"/api/tasks/{task_id}/data",
        ORG,
        data={"image_quality": "70", "sorting_method": "lexicographical"},
        files=files,
    )
    assert upload.status_code == 202, upload.text
    rq_id = upload.json()["rq_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = ui.get(f"/api/requests/{rq_id}", ORG)["status"]
        if status in ("finished", "failed"):
            assert status == "finished"
            return task_id
        time.sleep(0.2)
    raise AssertionError("task data was not created in time")


class Browser:
    """Records every answer so the test can assert that nothing but the sign-in probe failed."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, headers={"Origin": url}, timeout=30)
        self.failures: list[str] = []

    def call(
        self, method: str, path: str, params: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        token = self.client.cookies.get("csrftoken")
        headers = {"X-CSRFToken": token} if token and method not in ("GET", "HEAD") else {}
        response = self.client.request(method, path, params=params, headers=headers, **kwargs)
        if response.status_code >= 400:
            self.failures.append(f"{response.status_code} {method} {path} {params}: {response.text[:200]}")
        return response

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = self.call("GET", path, params)
        return (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )


def _app_start(ui: Browser) -> None:
    """What every full page load asks for before the route's own calls."""
    ui.get("/api/server/health/", {"format": "json", "org": ""})
    ui.get("/api/schema/", {"scheme": "json", "org": ""})
    ui.get("/api/user-agreements", ORG)
    ui.get("/api/server/about", ORG)


def _signed_in_start(ui: Browser, user_id: int) -> None:
    ui.get("/api/users/self", ORG)
    pending = {"and": [{"==": [{"var": "user_id"}, str(user_id)]}, {"==": [{"var": "accepted"}, False]}]}
    ui.get("/api/invitations", {"filter": json.dumps(pending)})
    ui.get("/api/server/annotation/formats", ORG)
    ui.get("/api/server/plugins", ORG)
    ui.get("/api/requests", PAGE_ALL)
    ui.get("/api/organizations", {"org": "", "page_size": "10", "sort": "slug"})


def _open_job(ui: Browser, job_id: int, task_id: int) -> dict[str, Any]:
    job = ui.get(f"/api/jobs/{job_id}")
    ui.get("/api/labels", {"job_id": str(job_id), **PAGE_ALL})
    ui.get("/api/jobs", {"org": "", "task_id": str(task_id), "type": "ground_truth"})
    meta = ui.get(f"/api/jobs/{job_id}/data/meta", ORG)
    assert meta["size"] == 3 and len(meta["frames"]) == 3
    chunk = ui.call(
        "GET", f"/api/jobs/{job_id}/data", {"org": "", "quality": "compressed", "type": "chunk", "index": "0"}
    )
    assert chunk.status_code == 200 and chunk.content
    annotations: dict[str, Any] = ui.get(f"/api/jobs/{job_id}/annotations", ORG)
    ui.get("/api/issues", {"job_id": str(job_id), **PAGE_ALL})
    ui.get("/api/comments", {"job_id": str(job_id), **PAGE_ALL})
    ui.call("POST", "/api/events", ORG, json={"events": [], "previous_event": None, "timestamp": _now()})
    assert job["task_id"] == task_id
    return annotations


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def test_web_ui_request_sequence_succeeds(live_server: LiveServer) -> None:
    ui = Browser(live_server.url)

    # Sign-in page: the user probe is the one call expected to fail.
    _app_start(ui)
    assert ui.call("GET", "/api/users/self", ORG).status_code == 401
    assert ui.failures and ui.failures[0].startswith("401 GET /api/users/self")
    ui.failures.clear()
    login = ui.call("POST", "/api/auth/login", ORG, json={"username": ADMIN[0], "password": ADMIN[1]})
    assert login.status_code == 200 and "csrftoken" in ui.client.cookies
    user_id = int(ui.get("/api/users/self", ORG)["id"])
    task_id = _seed_task(ui)

    # Tasks list.
    _signed_in_start(ui, user_id)
    tasks = ui.get("/api/tasks", {"org": "", "page": "1", "page_size": "10"})
    assert [t["id"] for t in tasks["results"]] == [task_id]
    assert ui.call("GET", f"/api/tasks/{task_id}/preview", ORG).status_code == 200

    # Task page.
    task = ui.get(f"/api/tasks/{task_id}")
    ui.get("/api/labels", {"task_id": str(task_id), **PAGE_ALL})
    jobs = ui.get("/api/jobs", {"task_id": str(task_id), **PAGE_ALL})["results"]
    ui.get(f"/api/tasks/{task_id}/data/meta", ORG)
    ui.get(f"/api/projects/{task['project_id']}")
    ui.get("/api/users", {"limit": "10", "is_active": "true"})
    labels = ui.get("/api/labels", {"project_id": str(task["project_id"]), **PAGE_ALL})["results"]
    schemas = ui.get("/api/schema/", {"scheme": "json", "org": ""})["components"]["schemas"]
    assert schemas["QualitySettings"]["properties"] and schemas["ConsensusSettings"]["properties"]
    ui.get("/api/quality/settings", {"task_id": str(task_id), **ORG})
    ui.get("/api/consensus/settings", {"task_id": str(task_id), **ORG})
    ui.get(f"/api/tasks/{task_id}/validation_layout", ORG)

    # Annotation view, then the next frame's chunk (all three frames share chunk 0 here).
    job_id = int(jobs[0]["id"])
    annotations = _open_job(ui, job_id, task_id)
    assert annotations["shapes"] == []
    chunk = ui.call(
        "GET", f"/api/jobs/{job_id}/data", {"org": "", "quality": "compressed", "type": "chunk", "index": "0"}
    )
    assert chunk.status_code == 200

    # Draw a rectangle on frame 1 and save it (Ctrl+S).
    car = next(label["id"] for label in labels if label["name"] == "car")
    rectangle = {
        "type": "rectangle",
        "occluded": False,
        "outside": False,
        "z_order": 0,
        "rotation": 0,
        "points": [10.5, 12.0, 50.25, 40.0],
        "attributes": [],
        "elements": [],
        "frame": 1,
        "label_id": car,
        "group": 0,
        "source": "manual",
    }
    saved = ui.call(
        "PATCH",
        f"/api/jobs/{job_id}/annotations",
        {"org": "", "action": "create"},
        json={"shapes": [rectangle], "tracks": [], "tags": [], "version": annotations["version"]},
    )
    assert saved.status_code == 200, saved.text
    assert [s["points"] for s in saved.json()["shapes"]] == [rectangle["points"]]

    # Reload: a full page load, then the job again; the rectangle is there.
    _app_start(ui)
    _signed_in_start(ui, user_id)
    reloaded = _open_job(ui, job_id, task_id)
    assert [(s["frame"], s["points"]) for s in reloaded["shapes"]] == [(1, rectangle["points"])]

    # Review mode: open an issue with its first comment, comment again, resolve it.
    issue = ui.call(
        "POST",
        "/api/issues",
        ORG,
        json={"job": job_id, "position": [20.0, 20.0, 30.0, 30.0], "frame": 1, "message": "wrong box"},
    )
    assert issue.status_code == 201, issue.text
    issue_id = issue.json()["id"]
    first = ui.get("/api/comments", {"issue_id": str(issue_id), **PAGE_ALL})["results"]
    assert [c["message"] for c in first] == ["wrong box"]
    comment = ui.call("POST", "/api/comments", ORG, json={"message": "fixed it", "issue": issue_id})
    assert comment.status_code == 201, comment.text
    resolved = ui.call("PATCH", f"/api/issues/{issue_id}", json={"resolved": True})
    assert resolved.status_code == 200 and resolved.json()["resolved"] is True
    issues = ui.get("/api/issues", {"job_id": str(job_id), **PAGE_ALL})["results"]
    assert [(i["id"], i["resolved"]) for i in issues] == [(issue_id, True)]
    comments = ui.get("/api/comments", {"job_id": str(job_id), **PAGE_ALL})["results"]
    assert sorted(c["message"] for c in comments) == ["fixed it", "wrong box"]

    # Sign out: the session is gone.
    assert ui.call("POST", "/api/auth/logout", ORG).status_code == 200
    assert ui.failures == []
    assert ui.call("GET", "/api/users/self", ORG).status_code == 401
