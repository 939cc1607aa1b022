"""A project or task moved between organizations: the webhooks of the organization it leaves hear
it deleted, those of the organization it enters hear it created."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.plugins.webhooks.conftest import SECRET
from tests.plugins.webhooks.receiver import Receiver

EVENTS = ["create:task", "delete:task", "create:project", "delete:project"]


def _org_webhook(owner: TestClient, slug: str, url: str) -> None:
    response = owner.post(
        "/api/webhooks",
        json={"target_url": url, "secret": SECRET, "type": "organization", "events": EVENTS},
        headers={"X-Organization": slug},
    )
    assert response.status_code == 201, response.text


def test_moves_are_deletions_where_they_leave_and_creations_where_they_arrive(
    make_user, receiver: Receiver
) -> None:
    alice = make_user("alice")
    acme = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]
    beta = alice.post("/api/organizations", json={"slug": "beta"}).json()["id"]
    _org_webhook(alice, "acme", receiver.base + "/acme")
    _org_webhook(alice, "beta", receiver.base + "/beta")
    task = alice.post("/api/tasks", json={"name": "t"}, headers={"X-Organization": "acme"}).json()
    project = alice.post("/api/projects", json={"name": "p"}, headers={"X-Organization": "acme"}).json()
    receiver.wait_for(2)

    moved = alice.patch(
        f"/api/tasks/{task['id']}", json={"organization_id": beta}, headers={"X-Organization": "acme"}
    )
    assert moved.status_code == 200, moved.text
    moved = alice.patch(
        f"/api/projects/{project['id']}", json={"organization_id": beta}, headers={"X-Organization": "acme"}
    )
    assert moved.status_code == 200, moved.text
    receiver.wait_for(6)

    def heard(path: str) -> list[tuple[str, int]]:
        return [
            (item.payload["event"], (item.payload.get("task") or item.payload.get("project"))["organization"])
            for item in receiver.to(path)
        ]

    # deliveries to one webhook may overtake each other: compare what arrived, not in which order
    assert sorted(heard("/acme")) == sorted(
        [("create:task", acme), ("create:project", acme), ("delete:task", acme), ("delete:project", acme)]
    )
    assert sorted(heard("/beta")) == sorted([("create:task", beta), ("create:project", beta)])
