"""The in-process runner (embedded default): requests run, report progress, fail, time out, are
cancelled, survive a restart, and expired ones are cleaned up; plus the job registry's rules."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from annota.core.db.tables import BackgroundRequest, Project, Session
from annota.core.db.types import utcnow
from annota.core.errors import ConfigError
from annota.core.queue import JobRegistry, effective_timeout
from annota.core.services import requests as request_service
from annota.runtime.app import create_app
from annota.runtime.queues import execute
from annota.runtime.settings import Settings, finalize
from tests.runtime import jobs_plugin
from tests.runtime.background import request_path, start, status_is, wait_for

REQUEST_TTL = 600


@pytest.fixture
def annota_plugins() -> dict[str, Any]:
    return {jobs_plugin.NAME: jobs_plugin}


@pytest.fixture
def annota_settings(tmp_path: Path, annota_database_url: str) -> Settings:
    # one job at a time per queue, so a second request on a busy queue stays queued
    return finalize(
        Settings(
            data_dir=str(tmp_path / "data"),
            database_url=annota_database_url,
            secret_key="test-secret",
            inprocess_concurrency=1,
            request_ttl=REQUEST_TTL,
        )
    )


def test_request_goes_queued_started_finished_with_progress(user_client: TestClient, tmp_path: Path) -> None:
    first_gate, second_gate = tmp_path / "first", tmp_path / "second"
    first = start(user_client, "jobs-test.wait", 1, path=str(first_gate))
    running = wait_for(user_client, first, lambda body: body["progress"] == 0.5)
    assert running["status"] == "started"
    assert running["started_date"] is not None and running["finished_date"] is None
    assert running["message"] == ""

    second = start(user_client, "jobs-test.wait", 2, path=str(second_gate))
    queued = user_client.get(request_path(second)).json()
    assert queued["status"] == "queued"
    assert queued["progress"] is None and queued["started_date"] is None
    assert queued["operation"]["type"] == "create:task"
    assert queued["operation"]["task_id"] == 2
    assert queued["owner"] == {"id": user_client.user_id, "username": "user1"}  # type: ignore[attr-defined]

    first_gate.touch()
    done = wait_for(user_client, first, status_is("finished"))
    assert done["progress"] == 1.0
    assert done["result_id"] == 7
    assert done["message"] == "released"
    finished = dt.datetime.fromisoformat(done["finished_date"])
    assert dt.datetime.fromisoformat(done["expiry_date"]) - finished == dt.timedelta(seconds=REQUEST_TTL)
    wait_for(user_client, second, status_is("started"))
    second_gate.touch()
    wait_for(user_client, second, status_is("finished"))


def test_failing_job_ends_failed_with_its_message(user_client: TestClient) -> None:
    rq_id = start(user_client, "jobs-test.fail", message="the model file is missing")
    body = wait_for(user_client, rq_id, status_is("failed", "finished"))
    assert body["status"] == "failed"
    assert body["message"] == "the model file is missing"
    assert body["progress"] == 0.25
    assert body["finished_date"] is not None and body["expiry_date"] is not None


def test_job_past_its_timeout_fails(user_client: TestClient) -> None:
    rq_id = start(user_client, "jobs-test.sleep", seconds=30)
    body = wait_for(user_client, rq_id, status_is("failed", "finished"))
    assert body["status"] == "failed"
    assert body["message"] == "The request did not finish within its time limit of 0.3 seconds."


def test_cancel_a_queued_request(user_client: TestClient, tmp_path: Path) -> None:
    gate, log = tmp_path / "gate", tmp_path / "log"
    running = start(user_client, "jobs-test.wait", 1, path=str(gate), log=str(log))
    wait_for(user_client, running, status_is("started"))
    waiting = start(user_client, "jobs-test.wait", 2, path=str(gate), log=str(log))

    response = user_client.post(request_path(waiting) + "/cancel")
    assert response.status_code == 200, response.text
    assert user_client.get(request_path(waiting)).status_code == 404
    again = user_client.post(request_path(waiting) + "/cancel")
    assert again.status_code == 404

    refused = user_client.post(request_path(running) + "/cancel")
    assert refused.status_code == 409
    assert refused.json() == {"detail": "Only queued requests can be cancelled; this one is started."}

    gate.touch()
    wait_for(user_client, running, status_is("finished"))
    # the cancelled request never ran, though its id was still in the runner's queue
    assert log.read_text().splitlines() == [f"started {running}"]


def test_the_same_request_cannot_run_twice_at_once(user_client: TestClient, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    rq_id = start(user_client, "jobs-test.wait", 5, path=str(gate))
    duplicate = user_client.post(
        jobs_plugin.START_PATH, json={"job": "jobs-test.wait", "target_id": 5, "kwargs": {"path": str(gate)}}
    )
    assert duplicate.status_code == 409
    gate.touch()
    wait_for(user_client, rq_id, status_is("finished"))
    # once over, the same operation may be started again (the old request is replaced)
    assert start(user_client, "jobs-test.wait", 5, path=str(gate)) == rq_id
    wait_for(user_client, rq_id, status_is("finished"))


def test_restart_fails_interrupted_requests_and_runs_queued_ones(
    user_client: TestClient,
    run_async: Callable[..., Any],
    annota_settings: Settings,
    annota_plugins: dict[str, Any],
) -> None:
    owner_id = user_client.user_id  # type: ignore[attr-defined]
    sessionmaker = user_client.app.state.annota.sessionmaker  # type: ignore[attr-defined]
    interrupted_id, queued_id = (request_service.make_request_id("create", "task", n) for n in (1, 2))

    async def leave_rows() -> None:
        # what a server that died leaves behind: one request running, one never picked up
        async with sessionmaker.begin() as session:
            for rq_id, name in ((interrupted_id, "restarted-1"), (queued_id, "restarted-2")):
                await request_service.create(
                    session,
                    request_id=rq_id,
                    action="create",
                    target="task",
                    queue="import",
                    job_name="jobs-test.build",
                    job_kwargs={"name": name, "owner_id": owner_id},
                    owner_id=owner_id,
                )
            await session.execute(
                update(BackgroundRequest)
                .where(BackgroundRequest.id == interrupted_id)
                .values(status="started", attempts=1)
            )

    run_async(leave_rows)
    with TestClient(create_app(annota_settings, extra_plugins=annota_plugins)) as restarted:
        restarted.auth = user_client.auth
        interrupted = wait_for(restarted, interrupted_id, status_is("failed"))
        assert interrupted["message"] == (
            "The server restarted while this request was running; please start it again."
        )
        assert interrupted["expiry_date"] is not None
        resumed = wait_for(restarted, queued_id, status_is("finished"))

    async def projects() -> list[tuple[int, str]]:
        async with sessionmaker() as session:
            return [tuple(row) for row in (await session.execute(select(Project.id, Project.name))).all()]

    assert run_async(projects) == [(resumed["result_id"], "restarted-2")]


def test_retried_request_gives_up_after_max_tries(
    user_client: TestClient, run_async: Callable[..., Any]
) -> None:
    state = user_client.app.state.annota  # type: ignore[attr-defined]
    rq_id = request_service.make_request_id("create", "task", 9)

    async def run_after_two_lost_attempts() -> str:
        async with state.sessionmaker.begin() as session:
            await request_service.create(
                session,
                request_id=rq_id,
                action="create",
                target="task",
                queue="export",
                job_name="jobs-test.fail",
                job_kwargs={"message": "never raised"},
                owner_id=user_client.user_id,  # type: ignore[attr-defined]
            )
            # jobs-test.fail allows 3 tries; two workers died running it, a third one did too
            await session.execute(
                update(BackgroundRequest)
                .where(BackgroundRequest.id == rq_id)
                .values(status="started", attempts=3)
            )
        return await execute(state, rq_id)

    assert run_async(run_after_two_lost_attempts) == "failed"
    body = user_client.get(request_path(rq_id)).json()
    assert body["status"] == "failed"
    assert body["message"] == "The worker running this request stopped 3 times; it is not tried again."


def test_run_request_skips_cancelled_and_finished_requests(
    user_client: TestClient, run_async: Callable[..., Any]
) -> None:
    state = user_client.app.state.annota  # type: ignore[attr-defined]
    rq_id = start(user_client, "jobs-test.fail", 3, message="boom")
    wait_for(user_client, rq_id, status_is("failed"))
    assert run_async(execute, state, rq_id) == "skipped"
    assert run_async(execute, state, "action=create&target=task&target_id=404") == "skipped"


def test_expired_requests_and_sessions_are_cleaned_up_at_start(
    user_client: TestClient,
    run_async: Callable[..., Any],
    annota_settings: Settings,
    annota_plugins: dict[str, Any],
) -> None:
    state = user_client.app.state.annota  # type: ignore[attr-defined]
    user_id = user_client.user_id  # type: ignore[attr-defined]
    expired = start(user_client, "jobs-test.fail", 1, message="old")
    kept = start(user_client, "jobs-test.fail", 2, message="recent")
    for rq_id in (expired, kept):
        wait_for(user_client, rq_id, status_is("failed"))

    async def age_rows() -> None:
        past = utcnow() - dt.timedelta(minutes=1)
        async with state.sessionmaker.begin() as session:
            await session.execute(
                update(BackgroundRequest).where(BackgroundRequest.id == expired).values(expiry_date=past)
            )
            session.add(Session(key_digest="old", user_id=user_id, expires=past))
            session.add(Session(key_digest="new", user_id=user_id, expires=utcnow() + dt.timedelta(days=1)))

    async def session_keys() -> list[str]:
        async with state.sessionmaker() as session:
            return sorted((await session.execute(select(Session.key_digest))).scalars())

    run_async(age_rows)
    with TestClient(create_app(annota_settings, extra_plugins=annota_plugins)) as restarted:
        restarted.auth = user_client.auth
        deadline = time.monotonic() + 10
        while restarted.get(request_path(expired)).status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert restarted.get(request_path(expired)).status_code == 404
        assert restarted.get(request_path(kept)).status_code == 200
    assert run_async(session_keys) == ["new"]


def test_housekeeping_is_a_job_too(user_client: TestClient) -> None:
    rq_id = start(user_client, "annota.housekeeping", "all")
    body = wait_for(user_client, rq_id, status_is("finished", "failed"))
    assert body["status"] == "finished"
    assert body["message"] == "Removed 0 expired requests."


def test_health_reports_the_runner(annota_client: TestClient) -> None:
    body = annota_client.get("/api/server/health").json()
    assert body["checks"]["queue"] == "ok"


# --- the registry ---------------------------------------------------------------------------


async def _job(ctx: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"queue": "nightly"}, "plugin p: job 'j' names unknown queue 'nightly'"),
        ({"timeout": 0}, "plugin p: job 'j' needs a positive timeout, got 0"),
        ({"max_tries": 0}, "plugin p: job 'j' needs max_tries >= 1, got 0"),
    ],
)
def test_registry_refuses_bad_jobs(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        JobRegistry().register("p", "j", _job, **kwargs)
    assert caught.value.detail == error


def test_registry_refuses_a_second_job_of_the_same_name() -> None:
    registry = JobRegistry()
    registry.register("first", "j", _job)
    with pytest.raises(ConfigError, match="job 'j' is already registered by plugin first"):
        registry.register("second", "j", _job)


def test_effective_timeout_is_lowered_by_the_limit() -> None:
    registry = JobRegistry()
    registry.register("p", "j", _job, timeout=100)
    definition = registry.get("j")
    assert effective_timeout(definition) == 100
    assert effective_timeout(definition, 5) == 5
    assert effective_timeout(definition, 500) == 100
    assert [d.name for d in registry.on_queue("utils")] == ["j"]
