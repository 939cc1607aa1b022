"""Deleting a project or organization: its webhooks hear the deletion, the API shows them no more,
and they are pruned once nothing is left to deliver to them."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.testclient import TestClient

from annota.core import event_dispatch
from annota.core.db.tables import EventRecord, Project, Webhook, WebhookDelivery, WebhookJob
from annota.core.db.types import utcnow
from annota.core.queue import JobContext
from annota.core.services import events as event_service
from annota.plugins.webhooks.orphans import prune_orphans
from tests.plugins.webhooks import helpers
from tests.plugins.webhooks.conftest import SECRET
from tests.plugins.webhooks.receiver import Receiver

Run = Callable[..., Any]


@dataclass
class Rows:
    """What the database holds of one webhook."""

    exists: bool
    deliveries: list[int]
    jobs: int


def _state(client: TestClient) -> Any:
    return client.app.state.annota  # type: ignore[attr-defined]


def _rows(run_async: Run, client: TestClient, webhook_id: int) -> Rows:
    async def read() -> Rows:
        async with _state(client).sessionmaker() as session:
            exists = await session.get(Webhook, webhook_id) is not None
            deliveries = await session.scalars(
                select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook_id)
            )
            jobs = await session.scalar(select(func.count()).where(WebhookJob.webhook_id == webhook_id))
            return Rows(exists, list(deliveries), jobs or 0)

    result: Rows = run_async(read)
    return result


def _settled(run_async: Run, client: TestClient, webhook_id: int, deliveries: int) -> Rows:
    """The webhook's rows once ``deliveries`` attempts are logged, none is left queued and every
    event is dispatched (the log row is written after the receiver answered)."""

    async def undispatched() -> int:
        async with _state(client).sessionmaker() as session:
            count = await session.scalar(select(func.count()).where(EventRecord.dispatched.is_(False)))
            return count or 0

    deadline = time.monotonic() + 8
    while True:
        rows = _rows(run_async, client, webhook_id)
        if (len(rows.deliveries) >= deliveries and rows.jobs == 0 and run_async(undispatched) == 0) or (
            time.monotonic() > deadline
        ):
            assert len(rows.deliveries) == deliveries and rows.jobs == 0, rows
            return rows
        time.sleep(0.05)


def _prune(run_async: Run, client: TestClient) -> None:
    state = _state(client)
    run_async(prune_orphans, JobContext("prune", state.sessionmaker, state.settings, state.plugins))


def _listed(client: TestClient) -> set[int]:
    response = client.get("/api/webhooks", params={"page_size": 100})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["results"]}


def _hidden(client: TestClient, webhook_id: int, url: str, delivery_id: int | None = None) -> None:
    """Every endpoint answers 404 for the webhook, and the list leaves it out."""
    base = f"/api/webhooks/{webhook_id}"
    body = {"target_url": url, "type": "project", "events": ["delete:project"]}
    answers = {
        "get": client.get(base),
        "put": client.put(base, json=body),
        "patch": client.patch(base, json={"description": "still here?"}),
        "delete": client.delete(base),
        "ping": client.post(f"{base}/ping"),
        "deliveries": client.get(f"{base}/deliveries"),
    }
    if delivery_id is not None:
        answers["delivery"] = client.get(f"{base}/deliveries/{delivery_id}")
        answers["redelivery"] = client.post(f"{base}/deliveries/{delivery_id}/redelivery")
    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(answers, 404)
    assert webhook_id not in _listed(client)


def test_project_webhook_hears_its_project_deleted(
    admin_client: TestClient, receiver: Receiver, run_async: Run
) -> None:
    doomed = helpers.project(admin_client, "doomed")
    kept = helpers.project(admin_client, "kept")
    hook = helpers.webhook(admin_client, receiver.url, doomed, events=["delete:project", "update:project"])
    other = helpers.webhook(admin_client, receiver.base + "/kept", kept, events=["delete:project"])
    snapshot = admin_client.get(f"/api/projects/{doomed}").json()

    assert admin_client.delete(f"/api/projects/{doomed}").status_code == 204
    # gone for the API at once, though its deletion event is still on its way
    assert admin_client.get(f"/api/webhooks/{hook['id']}").status_code == 404
    assert _listed(admin_client) == {other["id"]}

    (request,) = receiver.wait_for(1)
    assert request.path == "/hook" and request.signed is True
    payload = request.payload
    assert payload["event"] == "delete:project" and payload["webhook_id"] == hook["id"]
    assert payload["project"] == snapshot
    assert payload["sender"]["username"] == "admin"
    assert request.headers["X-Webhook-Event-Id"]

    (delivery_id,) = _settled(run_async, admin_client, hook["id"], 1).deliveries
    _hidden(admin_client, hook["id"], receiver.url, delivery_id)
    # none of the 404s above sent or queued anything
    assert len(receiver.quiet_for(0.6)) == 1
    assert _rows(run_async, admin_client, hook["id"]) == Rows(True, [delivery_id], 0)

    _prune(run_async, admin_client)
    assert _rows(run_async, admin_client, hook["id"]) == Rows(False, [], 0)
    # the other project's webhook is no orphan: it stays
    assert admin_client.get(f"/api/webhooks/{other['id']}").status_code == 200
    assert _rows(run_async, admin_client, other["id"]).exists


def test_an_orphan_is_pruned_only_once_nothing_is_owed_to_it(
    admin_client: TestClient, receiver: Receiver, run_async: Run
) -> None:
    project_id = helpers.project(admin_client, "doomed")
    hook = helpers.webhook(admin_client, receiver.url, project_id, events=["delete:project"])
    snapshot = admin_client.get(f"/api/projects/{project_id}").json()
    state = _state(admin_client)
    # a session without the dispatcher: the deletion commits, its event waits for this test to
    # dispatch it (dated ahead, the periodic sweep leaves it alone)
    bare = async_sessionmaker(state.engine, expire_on_commit=False)

    async def delete_project() -> str:
        async with bare.begin() as session:
            event_id = await event_service.record(
                session, "delete:project", "project", snapshot, resource_id=project_id,
                project_id=project_id,
            )  # fmt: skip
            await session.execute(delete(Project).where(Project.id == project_id))
        async with bare.begin() as session:
            ahead = utcnow() + dt.timedelta(hours=1)
            await session.execute(
                update(EventRecord).where(EventRecord.uuid == event_id).values(created_date=ahead)
            )
        return event_id

    event_id = run_async(delete_project)
    assert admin_client.get(f"/api/webhooks/{hook['id']}").status_code == 404
    # the deletion is not fanned out yet: the webhook must stay to hear it
    _prune(run_async, admin_client)
    assert _rows(run_async, admin_client, hook["id"]) == Rows(True, [], 0)

    run_async(event_dispatch.dispatch, state.sessionmaker, state.plugins, [event_id])
    (request,) = receiver.wait_for(1)
    assert request.payload["event"] == "delete:project" and request.payload["webhook_id"] == hook["id"]
    assert request.payload["project"] == snapshot and request.headers["X-Webhook-Event-Id"] == event_id
    (first,) = _settled(run_async, admin_client, hook["id"], 1).deliveries

    # a retry not yet due: still owed
    async def queue(due: dt.datetime) -> None:
        async with state.sessionmaker.begin() as session:
            session.add(
                WebhookJob(
                    webhook_id=hook["id"], event="delete:project", event_uuid=event_id,
                    delivery_uuid=str(uuid.uuid4()), payload=request.body.decode(), changed_fields="",
                    redelivery=True, attempt=1, due_date=due, claimed_until=None,
                )
            )  # fmt: skip

    run_async(queue, utcnow() + dt.timedelta(hours=1))
    _prune(run_async, admin_client)
    assert _rows(run_async, admin_client, hook["id"]) == Rows(True, [first], 1)

    # once due it is still sent to the orphan, and then nothing is owed any more
    async def make_due() -> None:
        async with state.sessionmaker.begin() as session:
            await session.execute(
                update(WebhookJob).where(WebhookJob.webhook_id == hook["id"]).values(due_date=utcnow())
            )

    run_async(make_due)
    _, again = receiver.wait_for(2)
    assert again.signed is True and again.payload["webhook_id"] == hook["id"]
    assert len(_settled(run_async, admin_client, hook["id"], 2).deliveries) == 2
    _prune(run_async, admin_client)
    assert _rows(run_async, admin_client, hook["id"]) == Rows(False, [], 0)


def _person(make_user: Callable[..., TestClient], name: str) -> TestClient:
    return make_user(name, email=f"{name}@example.com")


def test_organization_webhooks_hear_their_organization_deleted(
    make_user: Callable[..., TestClient], admin_client: TestClient, receiver: Receiver, run_async: Run
) -> None:
    alice = _person(make_user, "alice")
    created = alice.post("/api/organizations", json={"slug": "acme", "name": "Acme"})
    assert created.status_code == 201, created.text
    org_id = created.json()["id"]
    in_acme = {"X-Organization": "acme"}
    project = alice.post("/api/projects", json={"name": "p"}, headers=in_acme)
    assert project.status_code == 201, project.text
    hooks = {}
    for name, fields in {
        "org": {"type": "organization", "events": ["delete:organization", "update:organization"]},
        "project": {"type": "project", "project_id": project.json()["id"], "events": ["update:project"]},
    }.items():
        body = {"target_url": receiver.base + f"/{name}", "secret": SECRET, **fields}
        response = alice.post("/api/webhooks", json=body, headers=in_acme)
        assert response.status_code == 201, response.text
        hooks[name] = response.json()["id"]
    snapshot = alice.get(f"/api/organizations/{org_id}").json()

    assert alice.delete(f"/api/organizations/{org_id}").status_code == 204
    for webhook_id in hooks.values():
        assert alice.get(f"/api/webhooks/{webhook_id}").status_code == 404
    assert not set(hooks.values()) & _listed(admin_client)

    (request,) = receiver.wait_for(1)
    assert request.path == "/org" and request.signed is True
    payload = request.payload
    assert payload["event"] == "delete:organization" and payload["webhook_id"] == hooks["org"]
    assert payload["organization"] == snapshot
    assert payload["sender"]["username"] == "alice"

    (delivery_id,) = _settled(run_async, admin_client, hooks["org"], 1).deliveries
    _hidden(admin_client, hooks["org"], receiver.url, delivery_id)
    _hidden(admin_client, hooks["project"], receiver.url)
    # the project webhook heard nothing: deleting the organization told only the organization's
    assert len(receiver.quiet_for(0.6)) == 1

    _prune(run_async, admin_client)
    assert _rows(run_async, admin_client, hooks["org"]) == Rows(False, [], 0)
    assert _rows(run_async, admin_client, hooks["project"]) == Rows(False, [], 0)
