"""A plugin written the way a third-party package would write one: background jobs and a route that
starts them. The background request tests use it in-process (``annota_plugins`` fixture) and in
``annota worker`` subprocesses, where it is found through an ``annota`` entry point.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from annota.core import hookimpl, leftovers
from annota.core.db.tables import Project
from annota.core.errors import StorageError
from annota.core.queue import JobContext, JobResult
from annota.core.services import job_files
from annota.runtime import web

NAME = "jobs-test"
START_PATH = "/api/jobs-test/start"


def _log(path: str | None, line: str) -> None:
    if path:
        with open(path, "a") as handle:
            handle.write(line + "\n")


async def build_project(
    ctx: JobContext, name: str, owner_id: int | None = None, hold: float = 0, log: str | None = None
) -> JobResult:
    """Create project ``name`` once however often the job runs (a retried job must not repeat its
    effect), reporting progress. On the first attempt it can ``hold`` after the effect, so that a
    test can stop its worker there."""
    _log(log, f"attempt {ctx.attempt}")
    for step in range(4):
        await ctx.set_progress(step / 8)
        await asyncio.sleep(0.01)
    async with ctx.sessionmaker.begin() as session:
        project_id = await session.scalar(select(Project.id).where(Project.name == name))
        if project_id is None:
            project = Project(name=name, owner_id=owner_id)
            session.add(project)
            await session.flush()
            project_id = project.id
    if hold and ctx.attempt == 1:
        await ctx.set_progress(0.75, "holding")
        await asyncio.sleep(hold)
    return JobResult(result_id=project_id)


async def wait_for_file(ctx: JobContext, path: str, log: str | None = None) -> JobResult:
    """Report half-way progress, then wait until ``path`` exists (a test releases it)."""
    _log(log, f"started {ctx.request_id}")
    await ctx.set_progress(0.5)
    while not Path(path).exists():
        await asyncio.sleep(0.02)
    return JobResult(result_id=7, message="released")


async def fail(ctx: JobContext, message: str) -> None:
    await ctx.set_progress(0.25)
    raise RuntimeError(message)


async def storage_fail(ctx: JobContext, message: str) -> None:
    raise StorageError(message)


async def sleep(ctx: JobContext, seconds: float) -> None:
    await asyncio.sleep(seconds)


async def leave_things(ctx: JobContext, key: str, fail: bool = False, log: str | None = None) -> JobResult:
    """Make a scratch directory and a stored object, noted as leftovers until the job is done; the
    log says what was there when the attempt began."""
    root = Path(ctx.settings.data_dir) / "tmp"
    before = sorted(path.name for path in root.iterdir()) if root.exists() else []
    _log(log, f"attempt {ctx.attempt} found {before} and {await ctx.storage.exists(key)}")
    workspace = await job_files.scratch(ctx, "leave-")
    (workspace / "part").write_bytes(b"half")
    await ctx.leave(leftovers.STORAGE, key)
    await ctx.storage.put(key, b"result")
    if fail:
        raise RuntimeError("failed after leaving things")
    shutil.rmtree(workspace)
    return JobResult(result_file=key)


@hookimpl
def register_jobs(register: Any) -> None:
    register("jobs-test.build", build_project, queue="import", timeout=6 * 3600, max_tries=3)
    register("jobs-test.wait", wait_for_file, queue="import", timeout=60, max_tries=1)
    register("jobs-test.fail", fail, queue="export", timeout=30, max_tries=3)
    register("jobs-test.storage-fail", storage_fail, queue="export", timeout=30, max_tries=1)
    register("jobs-test.sleep", sleep, queue="annotation", timeout=0.3, max_tries=1)
    register("jobs-test.leave", leave_things, queue="utils", timeout=30, max_tries=2)


class StartBody(msgspec.Struct, forbid_unknown_fields=True):
    job: str
    target_id: int | str
    kwargs: dict[str, Any] = {}
    action: str = "create"
    target: str = "task"
    format: str | None = None


async def start(request: Request) -> Response:
    body = await web.read_json(request, StartBody)
    rq_id = await web.start_request(
        request,
        action=body.action,
        target=body.target,
        target_id=body.target_id,
        job_name=body.job,
        kwargs=body.kwargs,
        format=body.format,
        task_id=body.target_id if isinstance(body.target_id, int) else None,
    )
    return web.json_response({"rq_id": rq_id}, status_code=202)


@hookimpl
def register_routes(register: Any) -> None:
    register(START_PATH, start, methods=["POST"])
