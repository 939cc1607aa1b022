"""Running requests are leased: a request whose worker died is taken up again once its lease
lapsed, by one worker only; an attempt that lost its lease records nothing; and what a dead or
failed attempt left behind is removed by the retry or the end of the request, not a day later."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from annota.core import leftovers
from annota.core.db.tables import BackgroundRequest
from annota.core.db.types import utcnow
from annota.core.services import requests as request_service
from annota.runtime.queues import execute
from annota.runtime.settings import Settings, finalize
from annota.runtime.state import AppState
from tests.runtime import jobs_plugin
from tests.runtime.background import request_path

LEASE = dt.timedelta(seconds=30)


@pytest.fixture
def annota_plugins() -> dict[str, Any]:
    return {jobs_plugin.NAME: jobs_plugin}


@pytest.fixture
def annota_settings(tmp_path: Path, annota_database_url: str) -> Settings:
    return finalize(
        Settings(data_dir=str(tmp_path / "data"), database_url=annota_database_url, secret_key="test-secret")
    )


def app_state(client: TestClient) -> AppState:
    state: AppState = client.app.state.annota  # type: ignore[attr-defined]
    return state


def add_request(client: TestClient, run_async: Callable[..., Any], number: int, **kwargs: Any) -> str:
    """A queued request that no queue has been told of, as if its enqueue were lost."""
    rq_id = request_service.make_request_id("create", "task", number)

    async def insert() -> None:
        async with app_state(client).sessionmaker.begin() as session:
            await request_service.create(
                session, request_id=rq_id, action="create", target="task", queue="utils",
                job_name="jobs-test.leave", job_kwargs=kwargs,
                owner_id=client.user_id,  # type: ignore[attr-defined]
            )  # fmt: skip

    run_async(insert)
    return rq_id


def claim(client: TestClient, run_async: Callable[..., Any], rq_id: str) -> int | None:
    async def go() -> int | None:
        async with app_state(client).sessionmaker.begin() as session:
            claimed = await request_service.claim(session, rq_id, LEASE)
        return None if claimed is None else claimed[2]

    result: int | None = run_async(go)
    return result


def lapse(client: TestClient, run_async: Callable[..., Any], rq_id: str) -> None:
    """What time does to the lease of a worker that died."""

    async def go() -> None:
        async with app_state(client).sessionmaker.begin() as session:
            await session.execute(
                update(BackgroundRequest)
                .where(BackgroundRequest.id == rq_id)
                .values(lease_expires=utcnow() - dt.timedelta(seconds=1))
            )

    run_async(go)


def die_after_leaving(
    client: TestClient, run_async: Callable[..., Any], rq_id: str, attempt: int, key: str
) -> Path:
    """What an attempt killed half-way leaves: a scratch directory and a stored object, noted."""
    state = app_state(client)
    workspace = Path(state.settings.data_dir) / "tmp" / f"leave-dead{attempt}"
    workspace.mkdir(parents=True)
    (workspace / "part").write_bytes(b"half")

    async def go() -> None:
        async with state.sessionmaker.begin() as session:
            await request_service.add_leftover(session, rq_id, attempt, leftovers.SCRATCH, workspace.name)
            await request_service.add_leftover(session, rq_id, attempt, leftovers.STORAGE, key)
        await state.storage.put(key, b"partial")

    run_async(go)
    return workspace


def test_a_request_under_a_live_lease_is_not_taken_up_again(user_client, run_async):
    rq_id = add_request(user_client, run_async, 1, key="results/1")
    assert claim(user_client, run_async, rq_id) == 1
    assert claim(user_client, run_async, rq_id) is None
    assert run_async(execute, app_state(user_client), rq_id) == "skipped"
    assert user_client.get(request_path(rq_id)).json()["status"] == "started"


def test_the_sweep_releases_only_lapsed_requests_and_once(user_client, run_async):
    live = add_request(user_client, run_async, 1, key="results/1")
    dead = add_request(user_client, run_async, 2, key="results/2")
    waiting = add_request(user_client, run_async, 3, key="results/3")
    claim(user_client, run_async, live)
    claim(user_client, run_async, dead)
    lapse(user_client, run_async, dead)

    async def sweep() -> list[tuple[str, str]]:
        async with app_state(user_client).sessionmaker.begin() as session:
            return await request_service.release_lapsed(session)

    assert run_async(sweep) == [(dead, "utils")]
    assert run_async(sweep) == []
    statuses = {rq: user_client.get(request_path(rq)).json()["status"] for rq in (live, dead, waiting)}
    assert statuses == {live: "started", dead: "queued", waiting: "queued"}


def test_an_attempt_that_lost_its_lease_records_nothing(user_client, run_async):
    rq_id = add_request(user_client, run_async, 1, key="results/1")
    assert claim(user_client, run_async, rq_id) == 1
    lapse(user_client, run_async, rq_id)
    assert claim(user_client, run_async, rq_id) == 2

    async def late_outcome() -> tuple[bool, bool]:
        async with app_state(user_client).sessionmaker.begin() as session:
            await request_service.set_progress(session, rq_id, 0.9, "from the past", attempt=1)
            renewed = await request_service.renew_lease(session, rq_id, 1, LEASE)
            finished = await request_service.finish(session, rq_id, failed=True, message="late", attempt=1)
        return renewed, finished

    assert run_async(late_outcome) == (False, False)
    body = user_client.get(request_path(rq_id)).json()
    assert (body["status"], body["message"], body["progress"]) == ("started", "", None)


def test_a_retry_removes_what_the_dead_attempt_left(user_client, run_async, tmp_path):
    state = app_state(user_client)
    log = tmp_path / "attempts.log"
    rq_id = add_request(user_client, run_async, 1, key="results/1", log=str(log))
    assert claim(user_client, run_async, rq_id) == 1
    workspace = die_after_leaving(user_client, run_async, rq_id, 1, "results/1")
    lapse(user_client, run_async, rq_id)

    assert run_async(execute, state, rq_id) == "finished"
    assert not workspace.exists()
    # the second attempt began with nothing of the first: no scratch directory, no stored object
    assert log.read_text().splitlines() == ["attempt 2 found [] and False"]
    # the finished attempt's object is its result, kept
    assert run_async(state.storage.read, "results/1") == b"result"
    assert list((Path(state.settings.data_dir) / "tmp").iterdir()) == []


def test_a_retry_abandons_unfinished_writes_and_keeps_finished_objects(user_client, run_async):
    """Exports are shared by requests asking for the same data: what a killed ``put`` left goes,
    a finished object under the same key stays."""
    state = app_state(user_client)
    rq_id = add_request(user_client, run_async, 1, key="results/1")
    assert claim(user_client, run_async, rq_id) == 1
    run_async(state.storage.put, "exports/tasks/1/shared.zip", b"finished by another request")
    unfinished = state.storage.root / "exports" / "tasks" / "1" / f".shared.zip.{'d' * 32}.tmp"
    unfinished.write_bytes(b"half")

    async def note() -> None:
        async with state.sessionmaker.begin() as session:
            await request_service.add_leftover(
                session, rq_id, 1, leftovers.PARTIAL, "exports/tasks/1/shared.zip"
            )

    run_async(note)
    lapse(user_client, run_async, rq_id)
    assert run_async(execute, state, rq_id) == "finished"
    assert not unfinished.exists()
    assert run_async(state.storage.read, "exports/tasks/1/shared.zip") == b"finished by another request"


def test_a_request_that_ends_without_finishing_leaves_nothing(user_client, run_async):
    state = app_state(user_client)
    scratch = Path(state.settings.data_dir) / "tmp"
    failing = add_request(user_client, run_async, 1, key="results/1", fail=True)
    assert run_async(execute, state, failing) == "failed"
    assert user_client.get(request_path(failing)).json()["message"] == "failed after leaving things"
    assert not run_async(state.storage.exists, "results/1")
    assert list(scratch.iterdir()) == []

    # a request whose workers all died (max_tries is 2) fails, and what they left goes
    dying = add_request(user_client, run_async, 2, key="results/2")
    for attempt in (1, 2):
        assert claim(user_client, run_async, dying) == attempt
        die_after_leaving(user_client, run_async, dying, attempt, "results/2")
        lapse(user_client, run_async, dying)
    assert run_async(execute, state, dying) == "failed"
    body = user_client.get(request_path(dying)).json()
    assert body["message"] == "The worker running this request stopped 2 times; it is not tried again."
    assert not run_async(state.storage.exists, "results/2")
    assert list(scratch.iterdir()) == []


def test_an_attempt_that_lost_its_lease_stops(user_client, run_async, tmp_path):
    """A worker too slow to renew (its event loop blocked): once another worker took the request
    up, the slow one's job is stopped rather than left to run beside the new attempt."""
    state = app_state(user_client)
    state.settings.request_lease = 0.3
    gate, log = tmp_path / "never", tmp_path / "started.log"
    rq_id = request_service.make_request_id("create", "task", 1)

    async def insert() -> None:
        async with state.sessionmaker.begin() as session:
            await request_service.create(
                session, request_id=rq_id, action="create", target="task", queue="import",
                job_name="jobs-test.wait", job_kwargs={"path": str(gate), "log": str(log)},
                owner_id=user_client.user_id,
            )  # fmt: skip

    async def scenario() -> str:
        await insert()
        running = asyncio.create_task(execute(state, rq_id))
        while not log.exists():
            await asyncio.sleep(0.01)
        async with state.sessionmaker.begin() as session:
            await session.execute(
                update(BackgroundRequest)
                .where(BackgroundRequest.id == rq_id)
                .values(lease_expires=utcnow() - dt.timedelta(seconds=1))
            )
            assert await request_service.claim(session, rq_id, LEASE) is not None
        return await asyncio.wait_for(running, 5)

    assert run_async(scenario) == "skipped"
    body = user_client.get(request_path(rq_id)).json()
    assert (body["status"], body["progress"]) == ("started", None)
