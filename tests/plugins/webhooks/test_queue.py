"""The delivery queue: events told twice are delivered once, webhooks are picked by scope, a
claim is a lease that a dead worker loses, and deactivated webhooks drop what was queued."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient

from annota.core.db.tables import Organization, Webhook, WebhookDelivery, WebhookJob
from annota.core.db.types import utcnow
from annota.core.events import Event
from annota.plugins.webhooks import delivery, fanout
from annota.plugins.webhooks.config import Config
from tests.plugins.webhooks import helpers
from tests.plugins.webhooks.conftest import SECRET
from tests.plugins.webhooks.receiver import Receiver


def _event(type: str = "create:task", **scope: Any) -> Event:
    return Event(
        id=str(uuid.uuid4()), type=type, resource="task", resource_id=1, created_date=utcnow(),
        payload={"event": type, "task": {"id": 1}}, **scope,
    )  # fmt: skip


def _sessionmaker(client: TestClient) -> Any:
    return client.app.state.annota.sessionmaker  # type: ignore[attr-defined]


def test_an_event_told_twice_is_delivered_once(
    admin_client: TestClient, receiver: Receiver, run_async: Callable[..., Any]
) -> None:
    hook = helpers.webhook(admin_client, receiver.url, events=["create:task"])
    event = _event()

    async def fan_out() -> int:
        async with _sessionmaker(admin_client).begin() as session:
            queued: int = await fanout.fan_out(session, [event])
            return queued

    assert run_async(fan_out) == 1
    assert run_async(fan_out) == 0  # still queued
    (request,) = receiver.wait_for(1)
    assert request.payload == {**event.payload, "webhook_id": hook["id"]} and request.signed is True
    assert request.headers["X-Webhook-Event-Id"] == event.id
    assert request.headers["X-Webhook-Delivery-Id"] == fanout.delivery_uuid(event.id, hook["id"])
    deadline = time.monotonic() + 5
    while not helpers.deliveries(admin_client, hook["id"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run_async(fan_out) == 0  # delivered already
    assert len(receiver.quiet_for(0.7)) == 1


def test_webhooks_are_picked_by_scope(
    admin_client: TestClient, receiver: Receiver, run_async: Callable[..., Any]
) -> None:
    project_a = helpers.project(admin_client, "a")
    project_b = helpers.project(admin_client, "b")

    async def setup() -> dict[str, int]:
        async with _sessionmaker(admin_client).begin() as session:
            orgs = [Organization(slug=slug, name=slug) for slug in ("org1", "org2")]
            session.add_all(orgs)
            await session.flush()
            hooks = {
                "org1": Webhook(type="organization", organization_id=orgs[0].id),
                "org2": Webhook(type="organization", organization_id=orgs[1].id),
                "project_a": Webhook(type="project", project_id=project_a),
                "server": Webhook(type="server"),
                "other_event": Webhook(type="server", events=json.dumps(["delete:task"])),
            }
            for webhook in hooks.values():
                webhook.target_url = receiver.url
                webhook.secret = SECRET
                webhook.events = webhook.events or json.dumps(["create:task"])
                session.add(webhook)
            await session.flush()
            return {"org1_id": orgs[0].id, **{name: webhook.id for name, webhook in hooks.items()}}

    ids = run_async(setup)
    names = {value: key for key, value in ids.items() if key != "org1_id"}

    def targets_of(event: Event) -> set[str]:
        async def fan_out() -> list[int]:
            async with _sessionmaker(admin_client).begin() as session:
                await fanout.fan_out(session, [event])
                rows = await session.execute(
                    select(WebhookJob.webhook_id).where(WebhookJob.event_uuid == event.id)
                )
                return list(rows.scalars())

        return {names[webhook_id] for webhook_id in run_async(fan_out)}

    assert targets_of(_event(org_id=ids["org1_id"], project_id=project_a)) == {"org1", "project_a", "server"}
    assert targets_of(_event(project_id=project_b)) == {"server"}
    assert targets_of(_event(org_id=ids["org1_id"])) == {"org1", "server"}
    assert targets_of(_event("delete:task")) == {"other_event"}
    # every queued delivery arrives, each to its webhook
    received = receiver.wait_for(7)
    assert sorted(names[item.payload["webhook_id"]] for item in received) == sorted(
        ["org1", "project_a", "server", "server", "org1", "server", "other_event"]
    )
    assert len(receiver.quiet_for(0.6)) == 7


def test_a_claim_is_a_lease(
    admin_client: TestClient, receiver: Receiver, run_async: Callable[..., Any]
) -> None:
    hook = helpers.webhook(admin_client, receiver.url, events=["create:task"])
    later = utcnow() + dt.timedelta(hours=1)
    config = Config(lease=60)

    async def queue() -> None:
        async with _sessionmaker(admin_client).begin() as session:
            session.add(
                WebhookJob(
                    webhook_id=hook["id"], event="create:task", event_uuid=None,
                    delivery_uuid=str(uuid.uuid4()), payload="{}", due_date=later,
                )
            )  # fmt: skip

    def claim(now: dt.datetime) -> list[int]:
        async def run() -> list[int]:
            return [job.id for job in await delivery.claim(_sessionmaker(admin_client), config, now)]

        result: list[int] = run_async(run)
        return result

    run_async(queue)
    assert claim(later - dt.timedelta(seconds=1)) == []  # not due yet
    (job_id,) = claim(later + dt.timedelta(seconds=1))
    assert claim(later + dt.timedelta(seconds=2)) == []  # another worker holds it
    # the worker died: once its lease is over, the next run takes the job again
    assert claim(later + dt.timedelta(seconds=62)) == [job_id]


def test_deactivating_drops_queued_deliveries(
    admin_client: TestClient, receiver: Receiver, run_async: Callable[..., Any]
) -> None:
    receiver.default = 500
    hook = helpers.webhook(admin_client, receiver.url, events=["create:project"])
    helpers.project(admin_client)
    receiver.wait_for(1)
    patched = admin_client.patch(f"/api/webhooks/{hook['id']}", json={"is_active": False})
    assert patched.status_code == 200

    async def count(table: Any) -> int:
        async with _sessionmaker(admin_client)() as session:
            value: int = await session.scalar(select(func.count()).select_from(table)) or 0
            return value

    # the retry due after 0.2 s finds the webhook inactive and forgets the job
    deadline = time.monotonic() + 5
    while run_async(count, WebhookJob) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run_async(count, WebhookJob) == 0
    assert len(receiver.quiet_for(0.3)) == run_async(count, WebhookDelivery)
