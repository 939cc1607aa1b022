"""Deliveries to a real receiver on loopback: payloads, signatures, retries, ping, redelivery,
scoping, and what is never sent."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from tests.plugins.webhooks import helpers
from tests.plugins.webhooks.conftest import SCHEDULE, SECRET
from tests.plugins.webhooks.receiver import SLOW, Receiver, self_signed, serve


def _settled(client: TestClient, webhook_id: int, count: int) -> list[dict[str, Any]]:
    """The delivery log once it holds ``count`` attempts (the log is written after each answer)."""
    deadline = time.monotonic() + 8
    while True:
        found = helpers.deliveries(client, webhook_id)
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, found
            return found
        time.sleep(0.05)


def test_project_update_is_delivered_signed(admin_client: TestClient, receiver: Receiver) -> None:
    project_id = helpers.project(admin_client, "before")
    hook = helpers.webhook(admin_client, receiver.url, project_id, headers={"Authorization": "Bearer xyz"})
    unsigned = helpers.webhook(
        admin_client, receiver.base + "/unsigned", events=["update:project"], secret=""
    )
    assert admin_client.patch(f"/api/projects/{project_id}", json={"name": "after"}).status_code == 200

    receiver.wait_for(2)
    (request,) = receiver.to("/hook")
    assert request.signed is True
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer xyz"
    payload = request.payload
    assert payload["event"] == "update:project" and payload["webhook_id"] == hook["id"]
    assert payload["project"] == admin_client.get(f"/api/projects/{project_id}").json()
    assert payload["sender"]["username"] == "admin"
    assert payload["sender"]["id"] == admin_client.user_id  # type: ignore[attr-defined]
    assert payload["changes"] == {"name": {"from": "before", "to": "after"}}
    assert payload["before_update"] == {"name": "before"}
    uuid.UUID(request.headers["X-Webhook-Event-Id"])

    (delivery,) = _settled(admin_client, hook["id"], 1)
    assert delivery["status_code"] == 200 and delivery["attempt"] == 1 and delivery["redelivery"] is False
    assert delivery["event"] == "update:project" and delivery["changed_fields"] == "name"
    assert delivery["request"] == payload and delivery["response"] == '{"answer": 200}'
    assert delivery["delivery_uuid"] == request.headers["X-Webhook-Delivery-Id"]
    assert delivery["event_uuid"] == request.headers["X-Webhook-Event-Id"]
    assert delivery["request_duration"] >= 0
    detail = admin_client.get(f"/api/webhooks/{hook['id']}/deliveries/{delivery['id']}")
    assert detail.status_code == 200 and detail.json() == delivery
    read = admin_client.get(f"/api/webhooks/{hook['id']}").json()
    assert read["last_status"] == 200 and read["last_delivery_date"] == delivery["updated_date"]

    # a webhook without a secret sends the same event unsigned, to its own URL, with its own id
    (plain,) = receiver.to("/unsigned")
    assert "X-Signature-256" not in plain.headers and plain.payload["webhook_id"] == unsigned["id"]
    assert plain.headers["X-Webhook-Event-Id"] == request.headers["X-Webhook-Event-Id"]
    assert plain.headers["X-Webhook-Delivery-Id"] != request.headers["X-Webhook-Delivery-Id"]
    assert SECRET not in plain.body.decode()


def test_task_creation_in_the_project_is_delivered(admin_client: TestClient, receiver: Receiver) -> None:
    project_id = helpers.project(admin_client)
    helpers.webhook(admin_client, receiver.url, project_id, events=["create:task"])
    created = admin_client.post("/api/tasks", json={"name": "t1", "project_id": project_id})
    assert created.status_code == 201, created.text
    (request,) = receiver.wait_for(1)
    assert request.signed is True
    assert request.payload["event"] == "create:task"
    assert request.payload["task"]["id"] == created.json()["id"]
    assert request.payload["task"]["project_id"] == project_id


def test_retries(admin_client: TestClient, receiver: Receiver) -> None:
    """5xx, 429, timeouts and refused connections are retried along the schedule, then given up;
    other 4xx are final. The delivery log matches what the receiver saw."""
    receiver.scripts = {"/flaky": [500, 429], "/slow": [SLOW]}

    def hook(path: str) -> int:
        webhook_id: int = helpers.webhook(admin_client, receiver.base + path, events=["create:project"])["id"]
        return webhook_id

    flaky, failing, missing, slow = hook("/flaky"), hook("/always/503"), hook("/always/404"), hook("/slow")
    closed = helpers.webhook(admin_client, "http://127.0.0.1:9/hook", events=["create:project"])["id"]
    counted_before = _counted()
    helpers.project(admin_client)

    attempts = len(SCHEDULE) + 1
    log = {webhook_id: _settled(admin_client, webhook_id, count) for webhook_id, count in (
        (flaky, 3), (failing, attempts), (missing, 1), (slow, 2), (closed, attempts)
    )}  # fmt: skip
    assert [(d["attempt"], d["status_code"]) for d in log[flaky]] == [(1, 500), (2, 429), (3, 200)]
    assert [(d["attempt"], d["status_code"]) for d in log[failing]] == [(1, 503), (2, 503), (3, 503)]
    assert [d["status_code"] for d in log[missing]] == [404]
    assert [d["status_code"] for d in log[slow]] == [504, 200] and "Timed out" in log[slow][0]["response"]
    assert {d["status_code"] for d in log[closed]} == {502} and "Connection failed" in log[closed][0][
        "response"
    ]
    # nothing more arrives: the last attempts were final
    time.sleep(0.6)
    assert len(receiver.to("/always/503")) == attempts and len(receiver.to("/always/404")) == 1
    assert [len(helpers.deliveries(admin_client, hook_id)) for hook_id in log] == [
        3,
        attempts,
        1,
        2,
        attempts,
    ]

    first, second, third = receiver.to("/flaky")
    assert [item.answered for item in (first, second, third)] == [500, 429, 200]
    assert first.body == second.body == third.body and all(item.signed for item in (first, second, third))
    (delivery_id,) = {item.headers["X-Webhook-Delivery-Id"] for item in (first, second, third)}
    assert {d["delivery_uuid"] for d in log[flaky]} == {delivery_id}
    # each retry waits its turn of the schedule
    assert second.at - first.at >= SCHEDULE[0] - 0.05 and third.at - second.at >= SCHEDULE[1] - 0.05
    timed_out, answered = receiver.to("/slow")
    assert timed_out.body == answered.body and answered.payload["webhook_id"] == slow
    # what /metrics shows: every attempt by outcome, and the deliveries given up on after retries
    # (the 404 was final at once, not given up on)
    counted = {key: value - counted_before[key] for key, value in _counted().items()}
    assert counted == {"delivered": 2, "failed": 2 + attempts + 1 + 1 + attempts, "abandoned": 2}


def _counted() -> dict[str, float]:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"event": "create:project", **labels}) or 0.0

    return {
        "delivered": sample("annota_webhook_deliveries_total", outcome="delivered"),
        "failed": sample("annota_webhook_deliveries_total", outcome="failed"),
        "abandoned": sample("annota_webhook_deliveries_abandoned_total"),
    }


def test_ping_and_redelivery(admin_client: TestClient, receiver: Receiver) -> None:
    receiver.scripts = {"/hook": [500]}
    hook = helpers.webhook(admin_client, receiver.url)
    ping = admin_client.post(f"/api/webhooks/{hook['id']}/ping")
    assert ping.status_code == 200, ping.text
    # synchronous: the receiver has it already, the answer is the delivery
    (request,) = receiver.received
    assert request.signed is True
    body = request.payload
    assert body["event"] == "ping" and body["sender"]["username"] == "admin" and "webhook_id" not in body
    assert body["webhook"]["id"] == hook["id"] and body["webhook"]["target_url"] == receiver.url
    delivery = ping.json()
    assert delivery["event"] == "ping" and delivery["status_code"] == 500 and delivery["request"] == body
    assert helpers.deliveries(admin_client, hook["id"]) == [delivery]

    again = admin_client.post(f"/api/webhooks/{hook['id']}/deliveries/{delivery['id']}/redelivery")
    assert again.status_code == 200 and again.json() == {}
    _, redelivered = receiver.wait_for(2)
    assert redelivered.body == request.body and redelivered.signed is True
    log = _settled(admin_client, hook["id"], 2)
    assert log[1]["redelivery"] is True and log[1]["status_code"] == 200 and log[1]["event"] == "ping"
    missing = admin_client.post(f"/api/webhooks/{hook['id']}/deliveries/999999/redelivery")
    assert missing.status_code == 404


def test_project_webhook_hears_only_its_project(admin_client: TestClient, receiver: Receiver) -> None:
    mine = helpers.project(admin_client, "mine")
    other = helpers.project(admin_client, "other")
    hook = helpers.webhook(admin_client, receiver.url, mine, events=["update:project"])
    inactive = helpers.webhook(admin_client, receiver.url, mine, events=["update:project"], is_active=False)
    server = helpers.webhook(admin_client, receiver.url, events=["update:project"])
    assert admin_client.patch(f"/api/projects/{other}", json={"name": "other2"}).status_code == 200
    assert admin_client.patch(f"/api/projects/{mine}", json={"name": "mine2"}).status_code == 200
    received = receiver.wait_for(3)
    assert len(receiver.quiet_for(0.6)) == 3
    by_hook: dict[int, list[int]] = {}
    for item in received:
        by_hook.setdefault(item.payload["webhook_id"], []).append(item.payload["project"]["id"])
    assert by_hook[hook["id"]] == [mine]
    assert sorted(by_hook[server["id"]]) == sorted([mine, other])
    # a deactivated webhook gets nothing
    assert inactive["id"] not in by_hook and helpers.deliveries(admin_client, inactive["id"]) == []


def test_rolled_back_change_is_not_delivered(admin_client: TestClient, receiver: Receiver) -> None:
    project_id = helpers.project(admin_client, "kept")
    helpers.webhook(admin_client, receiver.url, project_id)
    # the change is refused after the project row was touched: its transaction rolls back
    refused = admin_client.patch(f"/api/projects/{project_id}", json={"name": "lost", "owner_id": 999})
    assert refused.status_code == 400
    assert admin_client.patch(f"/api/projects/{project_id}", json={"name": "saved"}).status_code == 200
    (request,) = receiver.wait_for(1)
    assert request.payload["changes"] == {"name": {"from": "kept", "to": "saved"}}
    assert len(receiver.quiet_for(0.6)) == 1


def test_certificates_are_checked_unless_enable_ssl_is_off(admin_client: TestClient, tmp_path: Path) -> None:
    receiver = Receiver(secret=SECRET)
    server, thread = serve(receiver, self_signed(tmp_path))
    try:
        checked = helpers.webhook(admin_client, receiver.url)
        refused = admin_client.post(f"/api/webhooks/{checked['id']}/ping").json()
        # a certificate no authority vouches for: nothing is sent, the attempt is logged as CVAT does
        assert refused["status_code"] == 502 and "certificate" in refused["response"].lower(), refused
        assert receiver.received == []
        unchecked = helpers.webhook(admin_client, receiver.url, enable_ssl=False)
        answered = admin_client.post(f"/api/webhooks/{unchecked['id']}/ping").json()
        assert answered["status_code"] == 200, answered
        (request,) = receiver.received
        assert request.signed is True and request.payload["webhook"]["id"] == unchecked["id"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
