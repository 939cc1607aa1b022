"""Small API helpers shared by the webhooks tests."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.plugins.webhooks.conftest import SECRET


def project(client: TestClient, name: str = "p1") -> int:
    response = client.post("/api/projects", json={"name": name})
    assert response.status_code == 201, response.text
    project_id: int = response.json()["id"]
    return project_id


def webhook(client: TestClient, url: str, project_id: int | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "target_url": url,
        "type": "project" if project_id is not None else "server",
        "events": ["update:project", "create:task"],
        "secret": SECRET,
        **fields,
    }
    if project_id is not None:
        body["project_id"] = project_id
    response = client.post("/api/webhooks", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def deliveries(client: TestClient, webhook_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/webhooks/{webhook_id}/deliveries", params={"sort": "id"})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results
