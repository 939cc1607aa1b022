"""``GET /api/tasks/{id}/validation_layout`` and ``GET /api/jobs/{id}/validation_layout``.

A task with a ground-truth job answers CVAT's ``gt`` mode with that job's frames as its validation
frames; any other task answers as a CVAT task without validation (``{"mode": null}``). annota makes
no honeypots, so every job answers as a job without them (``{}``). The web UI reads both when it
opens a task or a job.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from annota.core.schemas.validation import JobValidationLayoutRead, TaskValidationLayoutRead
from annota.core.services import ground_truth
from annota.core.services import jobs as job_service
from annota.core.services import tasks as task_service
from annota.runtime import web


@web.operation("Get a task's validation layout", tags=["tasks"], response=TaskValidationLayoutRead)
async def task_layout(request: Request) -> Response:
    async with web.transaction(request) as session:
        task = await task_service.get(session, web.path_int(request))
        await web.authorize(request, "view:validation_layout", await task_service.resource(session, task))
        frames = await ground_truth.frames_of(session, task.id)
    if frames is None:
        return web.json_response(TaskValidationLayoutRead(mode=None))
    return web.json_response(
        TaskValidationLayoutRead(
            mode=ground_truth.VALIDATION_MODE, validation_frames=frames, disabled_frames=[]
        )
    )


@web.operation("Get a job's validation layout", tags=["jobs"], response=JobValidationLayoutRead)
async def job_layout(request: Request) -> Response:
    async with web.transaction(request) as session:
        job = await job_service.get(session, web.path_int(request))
        await web.authorize(request, "view:validation_layout", await job_service.resource(session, job))
    return web.json_response(JobValidationLayoutRead())


routes = [
    ("/api/tasks/{id:int}/validation_layout", task_layout, ["GET"]),
    ("/api/jobs/{id:int}/validation_layout", job_layout, ["GET"]),
]
