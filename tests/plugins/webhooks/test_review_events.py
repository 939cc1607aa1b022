"""Review issues and comments reach project and organization webhooks: every change, with the
issue or comment as the API shows it."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.plugins.webhooks import helpers
from tests.plugins.webhooks.receiver import Received, Receiver
from tests.runtime.api.conftest import add_jobs

__all__ = ["add_jobs"]

REVIEW_EVENTS = [
    f"{action}:{resource}" for resource in ("issue", "comment") for action in ("create", "update", "delete")
]


@pytest.mark.parametrize("webhook_type", ["project", "organization", "server"])
def test_review_events_are_offered(admin_client: TestClient, webhook_type: str) -> None:
    keys = admin_client.get("/api/webhooks/events", params={"type": webhook_type}).json()["events"]
    offered = {item["key"]: item["group"]["display_name"] for item in keys}
    assert set(REVIEW_EVENTS) <= set(offered)
    assert offered["update:issue"] == "Issue" and offered["delete:comment"] == "Comment"


def test_a_project_webhook_hears_its_issues_and_comments(
    admin_client: TestClient, receiver: Receiver, add_jobs: Any
) -> None:
    project_id = helpers.project(admin_client)
    hook = helpers.webhook(admin_client, receiver.url, project_id, events=REVIEW_EVENTS)
    assert hook["events"] == REVIEW_EVENTS
    task = admin_client.post("/api/tasks", json={"name": "t", "project_id": project_id}).json()["id"]
    (job,) = add_jobs(task, ((0, 4),))
    # an issue outside the project is none of the webhook's business
    elsewhere = admin_client.post("/api/tasks", json={"name": "other"}).json()["id"]
    (other_job,) = add_jobs(elsewhere, ((0, 4),))
    body = {"frame": 2, "position": [1, 1, 5, 5], "message": "blurry"}
    assert admin_client.post("/api/issues", json={**body, "job": other_job}).status_code == 201

    created = admin_client.post("/api/issues", json={**body, "job": job})
    assert created.status_code == 201, created.text
    issue = created.json()
    # deliveries to one webhook may overlap: received in any order
    got = by_event(receiver.wait_for(2))
    assert set(got) == {"create:issue", "create:comment"}
    assert got["create:issue"].signed is True and got["create:issue"].payload["webhook_id"] == hook["id"]
    assert (
        got["create:issue"].payload["issue"] == issue == admin_client.get(f"/api/issues/{issue['id']}").json()
    )
    assert got["create:issue"].payload["sender"]["username"] == "admin"
    (comment,) = admin_client.get("/api/comments", params={"issue_id": issue["id"]}).json()["results"]
    assert got["create:comment"].payload["comment"] == comment

    resolved = admin_client.patch(f"/api/issues/{issue['id']}", json={"resolved": True}).json()
    edited = admin_client.patch(f"/api/comments/{comment['id']}", json={"message": "very blurry"}).json()
    got = by_event(receiver.wait_for(4))
    assert got["update:issue"].payload["issue"] == resolved
    assert got["update:issue"].payload["changes"] == {"resolved": {"from": False, "to": True}}
    assert got["update:comment"].payload["comment"] == edited
    assert got["update:comment"].payload["before_update"] == {"message": "blurry"}

    assert admin_client.delete(f"/api/issues/{issue['id']}").status_code == 204
    got = by_event(receiver.wait_for(6))
    assert got["delete:comment"].payload["comment"] == edited
    assert got["delete:issue"].payload["issue"] == resolved
    assert len(receiver.quiet_for(0.3)) == 6


def by_event(received: list[Received]) -> dict[str, Received]:
    """The requests received, by event key (each key once)."""
    found = {item.payload["event"]: item for item in received}
    assert len(found) == len(received), [item.payload["event"] for item in received]
    return found
