"""With workers (Redis configured), servers only record events and workers dispatch them: every
committed event reaches the subscribers in batches, in commit order, once, however many workers
poll side by side."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from annota.core import event_dispatch, hookimpl
from annota.core.db.tables import EventRecord
from annota.core.events import Event
from annota.core.queue import JobContext
from annota.core.services import events as event_service
from annota.runtime.settings import Settings, finalize

pytestmark = pytest.mark.redis


class BatchRecorder:
    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        #: how long each batch keeps its subscriber busy
        self.pause = 0.0

    @hookimpl
    async def on_events(self, events: list[Event]) -> None:
        self.batches.append(events)
        await asyncio.sleep(self.pause)

    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]


@pytest.fixture
def recorder() -> BatchRecorder:
    return BatchRecorder()


@pytest.fixture
def annota_plugins(recorder: BatchRecorder) -> dict[str, Any]:
    return {"recorder": recorder}


@pytest.fixture
def annota_settings(tmp_path: Path, annota_database_url: str, redis_url: str) -> Settings:
    return finalize(
        Settings(
            data_dir=str(tmp_path / "data"), database_url=annota_database_url, redis_url=redis_url,
            queue_prefix=f"annota-test-{uuid.uuid4().hex[:12]}", secret_key="test-secret",
        )
    )  # fmt: skip


def _context(client: TestClient) -> JobContext:
    state = client.app.state.annota  # type: ignore[attr-defined]
    return JobContext("annota.events.dispatch", state.sessionmaker, state.settings, state.plugins)


def _undispatched(client: TestClient, run_async: Callable[..., Any]) -> list[str]:
    async def query() -> list[str]:
        async with _context(client).sessionmaker() as session:
            rows = await session.scalars(
                select(EventRecord.type).where(EventRecord.dispatched.is_(False)).order_by(EventRecord.id)
            )
            return list(rows)

    result: list[str] = run_async(query)
    return result


def test_servers_record_and_workers_dispatch(
    make_user: Callable[..., TestClient], recorder: BatchRecorder, run_async: Callable[..., Any]
) -> None:
    admin = make_user("admin", superuser=True)
    state = admin.app.state.annota  # type: ignore[attr-defined]
    assert state.events is None
    job = state.jobs.periodic["annota.events.dispatch"]
    assert job.queue == "utils" and job.every == event_dispatch.POLL_INTERVAL
    assert "annota.events.sweep" not in state.jobs.periodic

    body = {"name": "p1", "labels": [{"name": "car"}, {"name": "person"}]}
    project_id = admin.post("/api/projects", json=body).json()["id"]
    assert admin.patch(f"/api/projects/{project_id}", json={"name": "p2"}).status_code == 200
    expected = ["create:project", "create:label", "create:label", "update:project"]
    assert _undispatched(admin, run_async) == expected

    run_async(event_dispatch.dispatch_all, _context(admin))
    assert len(recorder.batches) == 1
    assert [event.type for event in recorder.events()] == expected
    assert recorder.events()[-1].payload["changes"] == {"name": {"from": "p1", "to": "p2"}}
    assert _undispatched(admin, run_async) == []
    run_async(event_dispatch.dispatch_all, _context(admin))
    assert len(recorder.batches) == 1


@pytest.mark.parametrize("annota_database_url", ["postgres"], indirect=True)
def test_workers_polling_side_by_side_take_different_events(
    annota_client: TestClient, recorder: BatchRecorder, run_async: Callable[..., Any]
) -> None:
    context = _context(annota_client)

    async def record(count: int) -> None:
        async with context.sessionmaker.begin() as session:
            for number in range(count):
                await event_service.record(
                    session, "update:task", "task", {"id": number}, resource_id=number, task_id=number
                )

    async def two_workers() -> list[int]:
        # the first batch holds its rows while its subscriber works; the other worker skips them
        recorder.pause = 0.3
        poll = event_dispatch.dispatch_committed(context.sessionmaker, context.plugins, dt.timedelta(0))
        again = event_dispatch.dispatch_committed(context.sessionmaker, context.plugins, dt.timedelta(0))
        return list(await asyncio.gather(poll, again))

    run_async(record, 700)
    counts = run_async(two_workers)
    ids = [event.id for event in recorder.events()]
    # each takes at most a batch, both take some, and no event is told twice
    assert sum(counts) == 700 and max(counts) <= event_service.BATCH_LIMIT
    assert len(ids) == len(set(ids)) == 700
    assert _undispatched(annota_client, run_async) == []
