"""``/api/jobs/{id}/annotations`` and ``/api/tasks/{id}/annotations``: read, replace, patch, clear.

Bodies may be large (a job with 100,000 boxes is ~15 MB of JSON), so they are read up to
``max_upload_body_size`` rather than the general JSON limit.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.errors import Gone, ValidationError
from annota.core.schemas.annotations import LabeledData
from annota.core.services import annotations as service
from annota.core.services import jobs as job_service
from annota.core.services import tasks as task_service
from annota.runtime import web

JOB_TAGS = ["jobs"]
TASK_TAGS = ["tasks"]
_ACTION = {"action": "create, update or delete"}


def decode(body: bytes) -> LabeledData:
    """The body as ``LabeledData``; errors name the field, e.g. ``shapes[3].frame``."""
    try:
        return msgspec.json.decode(body.strip() or b"{}", type=LabeledData)
    except msgspec.ValidationError as exc:
        raise ValidationError(web.validation_detail(str(exc))) from exc
    except msgspec.DecodeError:
        pass
    # Python clients write NaN and Infinity, which are not JSON; read them anyway so that the
    # answer names the annotation holding them instead of a position in the text.
    try:
        raw = json.loads(body)
    except ValueError as exc:
        raise ValidationError({"non_field_errors": [f"JSON parse error: {exc}"]}) from exc
    try:
        return msgspec.convert(raw, LabeledData)
    except msgspec.ValidationError as exc:
        raise ValidationError(web.validation_detail(str(exc))) from exc


async def _body(request: Request) -> LabeledData:
    return decode(await web.read_body(request, web.state(request).settings.max_upload_body_size))


def _raw_json(content: bytes) -> Response:
    return Response(content, media_type=web.JSON_MEDIA_TYPE)


Writer = Callable[[AsyncSession, Any, LabeledData], Awaitable[Any]]


async def _write(request: Request, owner: ModuleType, scope: str, write: Writer) -> Any:
    """Authorize on the job or task (``owner`` is its service module), then read the body — only
    an allowed caller gets to upload megabytes — and write in a transaction of its own."""
    async with web.transaction(request) as session:
        target = await owner.get(session, web.path_int(request))
        await web.authorize(request, scope, await owner.resource(session, target))
    data = await _body(request)
    async with web.transaction(request) as session:
        target = await owner.get(session, web.path_int(request))
        return await write(session, target, data)


def _action(request: Request) -> str:
    return request.query_params.get("action", "")


# --- jobs -----------------------------------------------------------------------------------


@web.operation("Get a job's annotations", tags=JOB_TAGS, response=LabeledData)
async def retrieve_job_annotations(request: Request) -> Response:
    async with web.transaction(request) as session:
        job = await job_service.get(session, web.path_int(request))
        await web.authorize(request, "view:annotations", await job_service.resource(session, job))
        content = await service.read_job(session, job)
    return _raw_json(content)


@web.operation("Replace a job's annotations", tags=JOB_TAGS, request=LabeledData, response=LabeledData,
               responses={409: "the annotations changed since the version sent"})  # fmt: skip
async def replace_job_annotations(request: Request) -> Response:
    return _raw_json(await _write(request, job_service, "update:annotations", service.replace_job))


@web.operation("Create, update or delete some of a job's annotations", tags=JOB_TAGS, request=LabeledData,
               response=LabeledData, query=_ACTION)  # fmt: skip
async def patch_job_annotations(request: Request) -> Response:
    action = _action(request)
    result = await _write(
        request,
        job_service,
        "update:annotations",
        lambda s, job, data: service.patch_job(s, job, data, action),
    )
    return web.json_response(result)


@web.operation("Delete all of a job's annotations", tags=JOB_TAGS, status=204)
async def delete_job_annotations(request: Request) -> Response:
    async with web.transaction(request) as session:
        job = await job_service.get(session, web.path_int(request))
        await web.authorize(request, "delete:annotations", await job_service.resource(session, job))
        await service.clear_job(session, job)
    return Response(status_code=204)


# --- tasks ----------------------------------------------------------------------------------


@web.operation("Get a task's annotations (merged over its jobs)", tags=TASK_TAGS, response=LabeledData,
               responses={410: "the removed export API was asked for"})  # fmt: skip
async def retrieve_task_annotations(request: Request) -> Response:
    legacy = [name for name in service.LEGACY_EXPORT_PARAMS if name in request.query_params]
    async with web.transaction(request) as session:
        task = await task_service.get(session, web.path_int(request))
        resource = await task_service.resource(session, task)
        if legacy:
            await web.authorize(request, "view", resource)
            raise Gone(
                f"Exporting annotations with {', '.join(legacy)} here was removed; "
                f"use /api/tasks/{task.id}/dataset/export and /api/requests instead."
            )
        await web.authorize(request, "view:annotations", resource)
        content = await service.read_task(session, task)
    return _raw_json(content)


@web.operation("Replace a task's annotations (split over its jobs)", tags=TASK_TAGS, request=LabeledData,
               response=LabeledData)  # fmt: skip
async def replace_task_annotations(request: Request) -> Response:
    return _raw_json(await _write(request, task_service, "update:annotations", service.replace_task))


@web.operation("Create, update or delete some of a task's annotations", tags=TASK_TAGS, request=LabeledData,
               response=LabeledData, query=_ACTION)  # fmt: skip
async def patch_task_annotations(request: Request) -> Response:
    action = _action(request)
    result = await _write(
        request,
        task_service,
        "update:annotations",
        lambda s, task, data: service.patch_task(s, task, data, action),
    )
    return web.json_response(result)


@web.operation("Delete all of a task's annotations", tags=TASK_TAGS, status=204)
async def delete_task_annotations(request: Request) -> Response:
    async with web.transaction(request) as session:
        task = await task_service.get(session, web.path_int(request))
        await web.authorize(request, "delete:annotations", await task_service.resource(session, task))
        await service.clear_task(session, task)
    return Response(status_code=204)


routes = [
    ("/api/jobs/{id:int}/annotations", retrieve_job_annotations, ["GET"]),
    ("/api/jobs/{id:int}/annotations", replace_job_annotations, ["PUT"]),
    ("/api/jobs/{id:int}/annotations", patch_job_annotations, ["PATCH"]),
    ("/api/jobs/{id:int}/annotations", delete_job_annotations, ["DELETE"]),
    ("/api/tasks/{id:int}/annotations", retrieve_task_annotations, ["GET"]),
    ("/api/tasks/{id:int}/annotations", replace_task_annotations, ["PUT"]),
    ("/api/tasks/{id:int}/annotations", patch_task_annotations, ["PATCH"]),
    ("/api/tasks/{id:int}/annotations", delete_task_annotations, ["DELETE"]),
]
