"""``/api/webhooks``: create, read, change, delete, list; what is refused and why."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.plugins.webhooks import helpers
from tests.plugins.webhooks.receiver import Receiver

READ_FIELDS = {
    "id", "url", "target_url", "description", "type", "content_type", "is_active", "enable_ssl",
    "created_date", "updated_date", "owner", "project_id", "organization", "events", "headers",
}  # fmt: skip


def test_create_read_update_delete(admin_client: TestClient, receiver: Receiver) -> None:
    project_id = helpers.project(admin_client)
    created = helpers.webhook(
        admin_client, receiver.url, project_id, description="ci", headers={"Authorization": "Bearer abc"}
    )
    assert set(created) == READ_FIELDS  # no delivery yet: no last_status / last_delivery_date
    assert created["type"] == "project" and created["project_id"] == project_id
    assert created["owner"]["username"] == "admin" and created["organization"] is None
    assert created["events"] == ["update:project", "create:task"]
    assert created["headers"] == {"Authorization": "***"}
    assert "secret" not in created and "Bearer abc" not in str(created)
    webhook_id = created["id"]
    assert created["url"] == f"http://testserver/api/webhooks/{webhook_id}"

    fetched = admin_client.get(f"/api/webhooks/{webhook_id}")
    assert fetched.status_code == 200 and fetched.json() == created

    patched = admin_client.patch(
        f"/api/webhooks/{webhook_id}",
        json={"description": "changed", "events": ["delete:task"], "is_active": False},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "changed" and patched.json()["events"] == ["delete:task"]
    assert patched.json()["is_active"] is False and patched.json()["target_url"] == receiver.url

    replaced = admin_client.put(
        f"/api/webhooks/{webhook_id}",
        json={"target_url": receiver.url + "/v2", "type": "project", "events": ["update:task"]},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["target_url"] == receiver.url + "/v2" and replaced.json()["events"] == [
        "update:task"
    ]

    # type and project are write-once
    moved = admin_client.patch(f"/api/webhooks/{webhook_id}", json={"type": "server"})
    assert moved.status_code == 400 and "type" in moved.json()
    other = helpers.project(admin_client, "p2")
    moved = admin_client.patch(f"/api/webhooks/{webhook_id}", json={"project_id": other})
    assert moved.status_code == 400 and "project_id" in moved.json()

    assert admin_client.delete(f"/api/webhooks/{webhook_id}").status_code == 204
    assert admin_client.get(f"/api/webhooks/{webhook_id}").status_code == 404


def test_list_filters_and_visibility(admin_client: TestClient, make_user: Any, receiver: Receiver) -> None:
    alice = make_user("alice")
    bob = make_user("bob")
    alice_project = helpers.project(alice, "alice's")
    bob_project = helpers.project(bob, "bob's")
    mine = helpers.webhook(alice, receiver.url, alice_project)
    theirs = helpers.webhook(bob, receiver.url, bob_project)
    server = helpers.webhook(admin_client, receiver.url, events=["create:project"])

    def ids(client: TestClient, **params: Any) -> list[int]:
        response = client.get("/api/webhooks", params={"sort": "id", **params})
        assert response.status_code == 200, response.text
        assert response.json()["count"] == len(response.json()["results"])
        return [item["id"] for item in response.json()["results"]]

    assert ids(alice) == [mine["id"]]
    assert ids(bob) == [theirs["id"]]
    assert ids(admin_client) == [mine["id"], theirs["id"], server["id"]]
    assert ids(admin_client, type="server") == [server["id"]]
    assert ids(admin_client, project_id=bob_project) == [theirs["id"]]
    assert ids(admin_client, owner="alice") == [mine["id"]]
    # another user's webhook: neither readable nor changeable
    assert alice.get(f"/api/webhooks/{theirs['id']}").status_code == 403
    assert alice.patch(f"/api/webhooks/{theirs['id']}", json={"is_active": False}).status_code == 403
    assert alice.delete(f"/api/webhooks/{theirs['id']}").status_code == 403
    assert alice.get(f"/api/webhooks/{theirs['id']}/deliveries").status_code == 403
    assert alice.post(f"/api/webhooks/{theirs['id']}/ping").status_code == 403
    assert admin_client.get(f"/api/webhooks/{theirs['id']}").status_code == 200


def test_a_project_owner_manages_the_projects_webhooks(
    admin_client: TestClient, make_user: Any, receiver: Receiver
) -> None:
    alice = make_user("alice")
    bob = make_user("bob")
    project_id = helpers.project(alice, "alice's")
    # added by an administrator, on alice's project
    hook = helpers.webhook(admin_client, receiver.url, project_id)
    path = f"/api/webhooks/{hook['id']}"
    assert [item["id"] for item in alice.get("/api/webhooks").json()["results"]] == [hook["id"]]
    assert alice.get(path).json()["owner"]["username"] == "admin"
    assert alice.get(f"{path}/deliveries").status_code == 200
    changed = alice.patch(path, json={"description": "watched by alice"})
    assert changed.status_code == 200 and changed.json()["description"] == "watched by alice"
    # nobody else's business
    assert bob.get("/api/webhooks").json()["count"] == 0
    assert bob.get(path).status_code == 403 and bob.delete(path).status_code == 403
    assert alice.delete(path).status_code == 204
    assert admin_client.get(path).status_code == 404


def test_project_webhooks_need_the_project(
    admin_client: TestClient, make_user: Any, receiver: Receiver
) -> None:
    alice = make_user("alice")
    admins_project = helpers.project(admin_client)
    body = {"target_url": receiver.url, "type": "project", "events": ["update:project"]}
    hidden = alice.post("/api/webhooks", json={**body, "project_id": admins_project})
    assert hidden.status_code == 404, hidden.text
    missing = alice.post("/api/webhooks", json={**body, "project_id": 99999})
    # an invisible project looks exactly like a missing one
    assert missing.status_code == 404
    assert hidden.json()["detail"].replace(str(admins_project), "N") == missing.json()["detail"].replace(
        "99999", "N"
    )
    # server webhooks are for admins, organization webhooks need an organization
    refused = alice.post("/api/webhooks", json={**body, "type": "server"})
    assert refused.status_code == 403
    no_org = alice.post("/api/webhooks", json={**body, "type": "organization"})
    assert no_org.status_code == 400 and "type" in no_org.json()
    assert alice.get("/api/webhooks").json()["count"] == 0
    anonymous = TestClient(admin_client.app, base_url="http://testserver")
    assert anonymous.get("/api/webhooks").status_code == 401
    assert anonymous.post("/api/webhooks", json={**body, "type": "server"}).status_code == 401


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"target_url": "ftp://example.com/hook"}, "target_url"),
    ({"target_url": "http:///no-host"}, "target_url"),
    ({"target_url": "example.com/hook"}, "target_url"),
    ({"target_url": "http://example.com:99999/"}, "target_url"),
    ({"content_type": "application/x-www-form-urlencoded"}, "content_type"),
    ({"events": ["create:project"]}, "events"),  # not for project webhooks
    ({"events": ["explode:task"]}, "events"),
    ({"events": []}, "events"),
    ({"secret": "s" * 65}, "secret"),
    ({"description": "d" * 129}, "description"),
    ({"type": "galaxy"}, "type"),
    ({"project_id": None}, "project_id"),
    ({"headers": {"X-Signature-256": "sha256=forged"}}, "headers"),
    ({"headers": {"content-type": "text/plain"}}, "headers"),
    ({"headers": {"Connection": "close"}}, "headers"),
    ({"headers": {"Bad Name": "x"}}, "headers"),
    ({"headers": {"X-Ok": "line\r\nInjected: yes"}}, "headers"),
    ({"headers": {"X-Token": "a", "x-token": "b"}}, "headers"),
    ({"is_active": "yes"}, "is_active"),
    ({"unknown": 1}, "non_field_errors"),  # "Object contains unknown field `unknown`"
]


def test_bad_input(admin_client: TestClient, receiver: Receiver) -> None:
    project_id = helpers.project(admin_client)
    body = {
        "target_url": receiver.url,
        "type": "project",
        "project_id": project_id,
        "events": ["update:task"],
    }
    created = helpers.webhook(admin_client, receiver.url, project_id)
    for change, field in BAD_INPUT:
        response = admin_client.post("/api/webhooks", json={**body, **change})
        assert response.status_code == 400, (change, response.text)
        assert field in response.json(), (change, response.text)
        # the same checks apply to changes (type and project are refused as write-once there)
        patched = admin_client.patch(f"/api/webhooks/{created['id']}", json=change)
        assert patched.status_code == 400 and field in patched.json(), (change, patched.text)
    assert admin_client.get("/api/webhooks").json()["count"] == 1
    assert admin_client.get(f"/api/webhooks/{created['id']}").json() == created
    # exactly at the limits is fine
    limits = {"secret": "s" * 64, "description": "d" * 128}
    assert admin_client.post("/api/webhooks", json={**body, **limits}).status_code == 201


def test_custom_header_values_are_kept_when_written_back(
    admin_client: TestClient, receiver: Receiver
) -> None:
    created = helpers.webhook(admin_client, receiver.url, headers={"Authorization": "Bearer one"})
    # a client that PUTs back what it read keeps the secret value
    read = admin_client.get(f"/api/webhooks/{created['id']}").json()
    fields = {key: read[key] for key in ("target_url", "type", "events", "headers")}
    assert admin_client.put(f"/api/webhooks/{created['id']}", json=fields).status_code == 200
    ping = admin_client.post(f"/api/webhooks/{created['id']}/ping")
    assert ping.status_code == 200, ping.text
    (request,) = receiver.wait_for(1)
    assert request.headers["Authorization"] == "Bearer one"


@pytest.mark.parametrize("webhook_type", ["project", "organization", "server"])
def test_events_per_type(admin_client: TestClient, webhook_type: str) -> None:
    response = admin_client.get("/api/webhooks/events", params={"type": webhook_type})
    assert response.status_code == 200
    body = response.json()
    assert body["webhook_type"] == webhook_type
    keys = [item["key"] for item in body["events"]]
    groups = {item["key"]: item["group"]["display_name"] for item in body["events"]}
    assert {"create:task", "update:job", "delete:label", "update:project"} <= set(keys)
    assert (
        "completed:request[export:dataset]" in keys
        and groups["completed:request[export:dataset]"] == "Request"
    )
    assert groups["update:task"] == "Task"
    if webhook_type == "project":
        assert "create:project" not in keys and "create:organization" not in keys
    else:
        assert {"create:project", "create:membership", "update:organization"} <= set(keys)


def test_events_without_a_type_are_all_events(admin_client: TestClient) -> None:
    organization = admin_client.get("/api/webhooks/events", params={"type": "organization"}).json()
    for params in ({}, {"type": "all"}):
        response = admin_client.get("/api/webhooks/events", params=params)
        assert response.status_code == 200, response.text
        assert response.json() == organization
    keys = {item["key"] for item in organization["events"]}
    project = admin_client.get("/api/webhooks/events", params={"type": "project"}).json()["events"]
    assert {item["key"] for item in project} < keys and "create:organization" in keys


def test_events_needs_a_valid_type(admin_client: TestClient) -> None:
    response = admin_client.get("/api/webhooks/events", params={"type": "galaxy"})
    assert response.status_code == 400 and "type" in response.json()


def test_responses_as_cvat_sdk_reads_them(admin_client: TestClient, receiver: Receiver) -> None:
    from cvat_sdk.api_client import Configuration
    from cvat_sdk.api_client.model.paginated_webhook_delivery_read_list import (
        PaginatedWebhookDeliveryReadList,
    )
    from cvat_sdk.api_client.model.paginated_webhook_read_list import PaginatedWebhookReadList
    from cvat_sdk.api_client.model_utils import validate_and_convert_types

    def parse(body: Any, model: Any) -> Any:
        return validate_and_convert_types(
            body, (model,), ["received_data"], True, True, configuration=Configuration()
        )

    project_id = helpers.project(admin_client)
    created = helpers.webhook(admin_client, receiver.url, project_id)
    webhooks = parse(admin_client.get("/api/webhooks").json(), PaginatedWebhookReadList)
    assert webhooks.results[0].id == created["id"] and webhooks.results[0].type.value == "project"
    ping = admin_client.post(f"/api/webhooks/{created['id']}/ping")
    assert ping.status_code == 200
    webhooks = parse(admin_client.get("/api/webhooks").json(), PaginatedWebhookReadList)
    assert webhooks.results[0].last_status == 200
    deliveries = parse(
        admin_client.get(f"/api/webhooks/{created['id']}/deliveries").json(), PaginatedWebhookDeliveryReadList
    )
    assert deliveries.results[0].event == "ping" and deliveries.results[0].status_code == 200
