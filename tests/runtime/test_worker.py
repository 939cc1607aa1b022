"""``annota worker``: arq workers on Redis run what the API queues, against PostgreSQL.

Workers are real ``annota worker`` processes that load the test plugin through an entry point, as a
third-party plugin would be loaded. Each test has its own queue names in Redis (``queue_prefix``),
so test runs sharing one Redis cannot take each other's jobs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from click.testing import CliRunner
from sqlalchemy import update
from starlette.testclient import TestClient

from annota.core.db.tables import BackgroundRequest
from annota.core.db.types import utcnow
from annota.core.services import requests as request_service
from annota.runtime.cli import main
from annota.runtime.queues.arq import ArqQueue
from annota.runtime.settings import Settings, finalize
from annota.runtime.state import load_plugins
from annota.runtime.worker import run_worker
from annota.testing.databases import truncate_postgres
from tests.plugin_site import PluginSite
from tests.runtime import jobs_plugin
from tests.runtime.background import request_path, start, status_is, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: short, so that a killed worker's request is taken up again within about two seconds
REQUEST_LEASE = 1
SWEEP_INTERVAL = 0.5


@pytest.fixture
def annota_plugins() -> dict[str, Any]:
    return {jobs_plugin.NAME: jobs_plugin}


@pytest.fixture
def annota_database_url(postgres_database: str) -> str:
    truncate_postgres(postgres_database)
    return postgres_database


@pytest.fixture
def queue_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"annota-test-{uuid.uuid4().hex[:12]}"
    yield prefix

    async def remove_keys() -> None:
        client = redis.asyncio.from_url(redis_url)
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        keys += [key async for key in client.scan_iter(f"arq:*:{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    asyncio.run(remove_keys())


@pytest.fixture
def annota_settings(tmp_path: Path, annota_database_url: str, redis_url: str, queue_prefix: str) -> Settings:
    return finalize(
        Settings(
            data_dir=str(tmp_path / "data"),
            database_url=annota_database_url,
            redis_url=redis_url,
            queue_prefix=queue_prefix,
            request_lease=REQUEST_LEASE,
            sweep_interval=SWEEP_INTERVAL,
            secret_key="test-secret",
        )
    )


@dataclass
class Workers:
    env: dict[str, str]
    log_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *queues: str) -> subprocess.Popen[bytes]:
        args = [str(BIN / "annota"), "worker", *(f"--queue={queue}" for queue in queues)]
        with open(self.log_dir / f"worker-{len(self.processes)}.log", "wb") as log:
            process = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(path.read_text() for path in sorted(self.log_dir.glob("worker-*.log")))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(annota_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANNOTA_")}
    # the test plugin, installed for the worker processes as a third-party package would be
    site = PluginSite(tmp_path / "site")
    site.add("annota-jobs-test", {}, {jobs_plugin.NAME: jobs_plugin.__name__})
    env.update(
        ANNOTA_DATABASE_URL=annota_settings.database_url,
        ANNOTA_REDIS_URL=annota_settings.redis_url,
        ANNOTA_DATA_DIR=annota_settings.data_dir,
        ANNOTA_QUEUE_PREFIX=annota_settings.queue_prefix,
        ANNOTA_REQUEST_LEASE=str(REQUEST_LEASE),
        ANNOTA_SWEEP_INTERVAL=str(SWEEP_INTERVAL),
        ANNOTA_SECRET_KEY="test-secret",
        PYTHONPATH=os.pathsep.join([str(site.path), str(REPO_ROOT)]),
    )
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    started = Workers(env, log_dir)
    yield started
    started.stop()


def _queued_jobs(redis_url: str, key: str) -> list[str]:
    async def members() -> list[str]:
        client = redis.asyncio.from_url(redis_url)
        try:
            return [member.decode() for member in await client.zrange(key, 0, -1)]
        finally:
            await client.aclose()

    return asyncio.run(members())


def _expired_request(client: TestClient, run_async: Callable[..., Any]) -> str:
    rq_id = request_service.make_request_id("export", "task", 99)
    state = client.app.state.annota  # type: ignore[attr-defined]

    async def insert() -> None:
        async with state.sessionmaker.begin() as session:
            await request_service.create(
                session,
                request_id=rq_id,
                action="export",
                target="task",
                queue="export",
                job_name="jobs-test.fail",
                job_kwargs={},
                owner_id=client.user_id,  # type: ignore[attr-defined]
            )
            past = utcnow() - dt.timedelta(hours=1)
            await session.execute(
                update(BackgroundRequest)
                .where(BackgroundRequest.id == rq_id)
                .values(status="finished", finished_date=past, expiry_date=past)
            )

    run_async(insert)
    return rq_id


@pytest.mark.redis
@pytest.mark.postgres
def test_worker_runs_requests(
    user_client: TestClient,
    workers: Workers,
    run_async: Callable[..., Any],
    queue_prefix: str,
    redis_url: str,
) -> None:
    owner_id = user_client.user_id  # type: ignore[attr-defined]
    expired = _expired_request(user_client, run_async)
    build = start(user_client, "jobs-test.build", 1, name="built by a worker", owner_id=owner_id)
    failing = start(user_client, "jobs-test.fail", 2, message="no such model")
    cancelled = start(user_client, "jobs-test.fail", 3, message="never run")
    assert user_client.get(request_path(build)).json()["status"] == "queued"
    assert user_client.post(request_path(cancelled) + "/cancel").status_code == 200
    # the cancelled request's job left Redis too; the other one waits there
    assert [job.split("#")[0] for job in _queued_jobs(redis_url, f"{queue_prefix}:export")] == [failing]
    assert user_client.get("/api/server/health").json()["checks"]["queue"] == "ok"

    worker = workers.start()
    done = wait_for(user_client, build, status_is("finished", "failed"), timeout=30)
    assert done["status"] == "finished", (done, workers.logs())
    assert done["progress"] == 1.0
    project = user_client.get(f"/api/projects/{done['result_id']}").json()
    assert project["name"] == "built by a worker"
    failed = wait_for(user_client, failing, status_is("finished", "failed"), timeout=30)
    assert failed["status"] == "failed"
    assert failed["message"] == "no such model"
    # the housekeeping the worker runs at start-up removed the expired request
    deadline = time.monotonic() + 20
    while user_client.get(request_path(expired)).status_code != 404:
        assert time.monotonic() < deadline, workers.logs()
        time.sleep(0.1)
    # a graceful stop
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, workers.logs()


@pytest.mark.redis
@pytest.mark.postgres
def test_job_of_a_killed_worker_runs_again_once(
    user_client: TestClient, workers: Workers, tmp_path: Path
) -> None:
    log = tmp_path / "attempts.log"
    first = workers.start("import")
    rq_id = start(
        user_client,
        "jobs-test.build",
        1,
        name="built once",
        owner_id=user_client.user_id,  # type: ignore[attr-defined]
        hold=60,
        log=str(log),
    )
    # the project exists and the job is still running when its worker dies
    wait_for(user_client, rq_id, lambda body: body["message"] == "holding", timeout=30)
    workers.start("import")
    # the second worker is up (starting one takes a while on a busy machine) when the first dies
    deadline = time.monotonic() + 30
    while workers.logs().count("Starting worker") < 2:
        assert time.monotonic() < deadline, workers.logs()
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = time.monotonic()

    # the job's own limit is six hours (and so is arq's hold on its job): the request's lease is what
    # lets another worker take it up
    done = wait_for(user_client, rq_id, status_is("finished", "failed"), timeout=15)
    assert done["status"] == "finished", (done, workers.logs())
    assert time.monotonic() - killed < 5 * (REQUEST_LEASE + SWEEP_INTERVAL)
    assert log.read_text().splitlines() == ["attempt 1", "attempt 2"]
    projects = user_client.get("/api/projects").json()["results"]
    assert [(p["id"], p["name"]) for p in projects] == [(done["result_id"], "built once")]
    assert "its worker stopped renewing its lease; queueing it again" in workers.logs()


@pytest.mark.redis
@pytest.mark.postgres
def test_burst_worker_drains_its_queues_and_returns(
    user_client: TestClient, annota_settings: Settings, annota_plugins: dict[str, Any]
) -> None:
    failing = start(user_client, "jobs-test.fail", 1, message="drained")
    plugins = load_plugins(annota_settings, extra=annota_plugins)
    asyncio.run(
        run_worker(annota_settings, ["export", "utils"], burst=True, handle_signals=False, plugins=plugins)
    )
    body = user_client.get(request_path(failing)).json()
    assert body["status"] == "failed"
    assert body["message"] == "drained"


@pytest.mark.redis
@pytest.mark.postgres
def test_worker_logs_carry_the_id_of_the_request_that_started_the_job(
    user_client: TestClient, workers: Workers
) -> None:
    """With ``log_format = "json"``, the worker's lines about a job carry the ``X-Request-ID`` of the
    HTTP request that started it, on another process."""
    workers.env["ANNOTA_LOG_FORMAT"] = "json"
    owner_id = user_client.user_id  # type: ignore[attr-defined]
    response = user_client.post(
        jobs_plugin.START_PATH,
        json={"job": "jobs-test.build", "target_id": 1, "kwargs": {"name": "traced", "owner_id": owner_id}},
        headers={"X-Request-ID": "import-42"},
    )
    assert response.status_code == 202 and response.headers["X-Request-ID"] == "import-42"
    worker = workers.start()
    done = wait_for(user_client, response.json()["rq_id"], status_is("finished", "failed"), timeout=30)
    assert done["status"] == "finished", workers.logs()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, workers.logs()
    entries = [json.loads(line) for line in workers.logs().splitlines() if line.startswith("{")]
    # every line the worker wrote is JSON
    assert len(entries) == len(workers.logs().splitlines()), workers.logs()
    traced = [entry["message"] for entry in entries if entry.get("request_id") == "import-42"]
    assert any("job jobs-test.build started" in message for message in traced), workers.logs()
    assert any("finished in" in message for message in traced), workers.logs()


# --- requests whose job Redis lost ------------------------------------------------------------


def _lose_jobs(redis_url: str, key: str, rq_id: str) -> None:
    """What a Redis restart without its data does to a queued request: its job is gone."""

    async def remove() -> None:
        client = redis.asyncio.from_url(redis_url)
        try:
            for member in await client.zrange(key, 0, -1):
                if member.decode().startswith(rq_id + "#"):
                    await client.zrem(key, member)
                    await client.delete(b"arq:job:" + member)
        finally:
            await client.aclose()

    asyncio.run(remove())


def _age(client: TestClient, run_async: Callable[..., Any], rq_id: str, seconds: float) -> None:
    state = client.app.state.annota  # type: ignore[attr-defined]

    async def backdate() -> None:
        async with state.sessionmaker.begin() as session:
            await session.execute(
                update(BackgroundRequest)
                .where(BackgroundRequest.id == rq_id)
                .values(created_date=utcnow() - dt.timedelta(seconds=seconds))
            )

    run_async(backdate)


def _arq_queue(client: TestClient) -> ArqQueue:
    queue = client.app.state.annota.queue  # type: ignore[attr-defined]
    assert isinstance(queue, ArqQueue)
    return queue


@pytest.mark.redis
@pytest.mark.postgres
def test_sweep_queues_again_a_request_whose_job_redis_lost(
    user_client: TestClient,
    annota_settings: Settings,
    annota_plugins: dict[str, Any],
    run_async: Callable[..., Any],
    queue_prefix: str,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = f"{queue_prefix}:export"
    lost = start(user_client, "jobs-test.fail", 1, message="run after all")
    _lose_jobs(redis_url, key, lost)
    assert _queued_jobs(redis_url, key) == []
    _age(user_client, run_async, lost, annota_settings.requeue_after + 5)
    queue = _arq_queue(user_client)

    with caplog.at_level("WARNING", logger="annota.runtime.queues.arq"):
        assert run_async(queue.requeue_lost) == [lost]
    assert any(lost in record.getMessage() for record in caplog.records), caplog.text
    assert [job.split("#")[0] for job in _queued_jobs(redis_url, key)] == [lost]
    # its job is back: the next sweep leaves it be
    assert run_async(queue.requeue_lost) == []
    assert len(_queued_jobs(redis_url, key)) == 1

    plugins = load_plugins(annota_settings, extra=annota_plugins)
    asyncio.run(run_worker(annota_settings, ["export"], burst=True, handle_signals=False, plugins=plugins))
    body = user_client.get(request_path(lost)).json()
    assert body["status"] == "failed"
    assert body["message"] == "run after all"


@pytest.mark.redis
@pytest.mark.postgres
def test_sweep_leaves_fresh_and_present_requests_alone(
    user_client: TestClient,
    annota_settings: Settings,
    run_async: Callable[..., Any],
    queue_prefix: str,
    redis_url: str,
) -> None:
    key = f"{queue_prefix}:export"
    fresh = start(user_client, "jobs-test.fail", 1, message="fresh")
    fresh_lost = start(user_client, "jobs-test.fail", 2, message="fresh, job lost")
    old = start(user_client, "jobs-test.fail", 3, message="old, job still there")
    _lose_jobs(redis_url, key, fresh_lost)
    _age(user_client, run_async, old, annota_settings.requeue_after + 5)
    queue = _arq_queue(user_client)

    # within the grace period nothing is queued again, with or without a job in Redis
    assert run_async(queue.requeue_lost) == []
    assert run_async(queue.requeue_lost) == []
    jobs = sorted(job.split("#")[0] for job in _queued_jobs(redis_url, key))
    assert jobs == sorted([fresh, old])


@pytest.mark.redis
@pytest.mark.postgres
def test_worker_start_up_queues_again_a_request_whose_job_redis_lost(
    user_client: TestClient,
    annota_settings: Settings,
    workers: Workers,
    run_async: Callable[..., Any],
    queue_prefix: str,
    redis_url: str,
) -> None:
    lost = start(user_client, "jobs-test.fail", 1, message="found again")
    _lose_jobs(redis_url, f"{queue_prefix}:export", lost)
    _age(user_client, run_async, lost, annota_settings.requeue_after + 5)

    workers.start("export", "utils")
    done = wait_for(user_client, lost, status_is("finished", "failed"), timeout=30)
    assert done["status"] == "failed", (done, workers.logs())
    assert done["message"] == "found again"
    assert f"request {lost} has no job in Redis" in workers.logs()


# --- the command line -----------------------------------------------------------------------


def test_worker_command_needs_redis(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["worker", "--data-dir", str(tmp_path)], env={"ANNOTA_REDIS_URL": None, "ANNOTA_CONFIG": None}
    )
    assert result.exit_code == 1
    assert "annota worker needs Redis: set redis_url in annota.toml or ANNOTA_REDIS_URL" in result.output


def test_worker_command_names_the_queues(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["worker", "--queue", "import", "--queue", "nightly"])
    assert result.exit_code == 2
    assert (
        "unknown queue 'nightly'; the queues are import, export, annotation, webhooks, chunks, utils"
        in result.output
    )
