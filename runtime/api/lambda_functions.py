"""``/api/lambda/*``: CVAT's lambda API over the declared models (reference §3.3).

A model is a ``detector`` function whose id is its name. ``POST /api/lambda/functions/{id}`` runs
it on one frame and answers the detections as the frame's unsaved annotations (``LabeledData``
with the task's label and attribute ids, labels mapped by name unless a mapping says otherwise); ``POST
/api/lambda/requests`` runs it over a task or job on the ``annotation`` queue as a background
request (``autoannotate:task`` in ``/api/requests``), which writes every annotation at its end.

Who may do what: the ``lambda`` policy (list and view for everyone signed in; ``call:online`` and
``call:offline`` for workers and up), plus ``update:annotations`` on the task or job; requests are
read and cancelled as the ``requests`` policy says (their owner).
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import Resource
from annota.core.db.tables import BackgroundRequest
from annota.core.errors import NotFound, ValidationError
from annota.core.models import annotate
from annota.core.models.host import ModelHost
from annota.core.models.mapping import labels_v2
from annota.core.models.registry import DeclaredModel
from annota.core.models.runner import ModelError
from annota.core.schemas.annotations import LabeledData
from annota.core.schemas.common import Detail
from annota.core.schemas.lambda_functions import (
    FunctionCall,
    FunctionCallParams,
    FunctionCallRequest,
    LambdaFunction,
    OnlineFunctionCall,
)
from annota.core.services import jobs as job_service
from annota.core.services import requests as request_service
from annota.core.services import tasks as task_service
from annota.runtime import web

TAGS = ["lambda"]
ACTION = "autoannotate"
_kwargs_decoder = msgspec.json.Decoder(dict[str, Any])


def _host(request: Request) -> ModelHost:
    host: ModelHost = web.state(request).models
    return host


def _resource(name: str | None = None) -> Resource:
    return Resource("lambda", {"id": name} if name is not None else None)


async def _function(host: ModelHost, model: DeclaredModel, *, strict: bool) -> dict[str, Any]:
    declaration = model.declaration
    try:
        labels = labels_v2((await host.load(model.name)).labels)
    except ModelError:
        if strict:
            raise
        # the list still shows a model that cannot load; calling it says why
        labels = [
            {"id": i, "name": n, "type": "any", "attributes": []}
            for i, n in enumerate(declaration.labels or [])
        ]
    described: dict[str, Any] = msgspec.to_builtins(
        LambdaFunction(
            id=model.name,
            kind="detector",
            labels_v2=msgspec.convert(labels, list[Any]),
            name=model.name,
            description=declaration.description,
            version=1,
            framework=declaration.kind,
        )
    )
    return described


@web.operation("List the auto-annotation models", tags=TAGS, response=list[LambdaFunction])
async def list_functions(request: Request) -> Response:
    await web.authorize(request, "list", _resource())
    host = _host(request)
    return web.json_response(
        [await _function(host, model, strict=False) for model in host.registry.models.values()]
    )


@web.operation(
    "Get an auto-annotation model", tags=TAGS, response=LambdaFunction, responses={400: Detail, 404: Detail}
)
async def retrieve_function(request: Request) -> Response:
    name = request.path_params["func_id"]
    await web.authorize(request, "view", _resource(name))
    host = _host(request)
    return web.json_response(await _function(host, host.registry.get(name), strict=True))


async def _authorized_target(
    request: Request, session: AsyncSession, task_id: int | None, job_id: int | None
) -> annotate.Target:
    """The task or job of a call, once the caller may change its annotations."""
    if job_id is not None:
        job = await job_service.get(session, job_id)
        await web.authorize(request, "update:annotations", await job_service.resource(session, job))
    elif task_id is not None:
        task = await task_service.get(session, task_id)
        await web.authorize(request, "update:annotations", await task_service.resource(session, task))
    return await annotate.target(session, task_id, job_id)


def _refuse_roi(roi: list[int] | None) -> None:
    # answering whole-frame detections to a region's request would put shapes where none was asked
    if roi is not None:
        raise ValidationError.for_field(
            "roi", "A region of interest is supported on one frame (the online call) only."
        )


@web.operation(
    "Run a model on one frame of a task or job",
    tags=TAGS,
    request=OnlineFunctionCall,
    response=LabeledData,
    responses={400: Detail, 403: Detail, 404: Detail},
)
async def call_function(request: Request) -> Response:
    name = request.path_params["func_id"]
    data = await web.read_json(request, OnlineFunctionCall)
    host = _host(request)
    host.registry.get(name)
    await web.authorize(request, "call:online", _resource(name))
    async with web.transaction(request) as session:
        where = await _authorized_target(request, session, data.task, data.job)
    detections = await annotate.online(
        host, web.state(request).storage, model=name, where=where, frame=data.frame, threshold=data.threshold,
        mapping=data.mapping, conv_mask_to_poly=data.conv_mask_to_poly, roi=data.roi,
    )  # fmt: skip
    return web.json_response(detections)


# --- requests ----------------------------------------------------------------------------------


def _call(row: BackgroundRequest) -> FunctionCall:
    kwargs = _kwargs_decoder.decode(row.job_kwargs)
    return FunctionCall(
        id=row.id,
        function=FunctionCallParams(
            id=row.function_id,
            task=row.task_id,
            threshold=kwargs.get("threshold"),
            job=row.job_id if row.job_id is not None else msgspec.UNSET,
        ),
        status=row.status,
        progress=round((row.progress or 0) * 100),
        enqueued=row.created_date,
        started=row.started_date,
        ended=row.finished_date,
        exc_info=row.message if row.status == "failed" else None,
    )


@web.operation(
    "Auto-annotate a task or job with a model (a background request)",
    tags=TAGS,
    request=FunctionCallRequest,
    response=FunctionCall,
    responses={400: Detail, 403: Detail, 404: Detail, 409: Detail},
)
async def create_request(request: Request) -> Response:
    data = await web.read_json(request, FunctionCallRequest)
    _refuse_roi(data.roi)
    host = _host(request)
    if data.function not in host.registry.models:
        raise ValidationError.for_field("function", f"There is no model named {data.function!r}.")
    await web.authorize(request, "call:offline", _resource(data.function))
    async with web.transaction(request) as session:
        where = await _authorized_target(request, session, data.task, data.job)
    # a mapping that names what the task or model lacks is refused now, not by the worker
    await annotate.label_map(host, data.function, where, data.mapping, data.conv_mask_to_poly)
    rq_id = await web.start_request(
        request,
        action=ACTION,
        target="task",
        target_id=where.task.id,
        job_name=annotate.JOB_NAME,
        kwargs={
            "function": data.function,
            "task": where.task.id,
            "job": where.job.id if where.job is not None else None,
            "threshold": data.threshold,
            "mapping": msgspec.to_builtins(data.mapping) if data.mapping is not None else None,
            "cleanup": data.cleanup,
            "conv_mask_to_poly": data.conv_mask_to_poly,
        },
        project_id=where.task.project_id,
        task_id=where.task.id,
        job_id=where.job.id if where.job is not None else None,
        function_id=data.function,
    )
    async with web.transaction(request) as session:
        row = await request_service.get(session, rq_id)
        return web.json_response(_call(row))


@web.operation("List the caller's auto-annotation requests", tags=TAGS, response=list[FunctionCall])
async def list_requests(request: Request) -> Response:
    condition = await web.visible(request, "requests", request_service.POLICY_FIELDS)
    async with web.transaction(request) as session:
        rows = await session.scalars(
            select(BackgroundRequest)
            .where(condition, BackgroundRequest.action == ACTION, BackgroundRequest.owner_id.is_not(None))
            .order_by(BackgroundRequest.created_date.desc())
        )
        return web.json_response([_call(row) for row in rows])


async def _own_request(request: Request, session: AsyncSession, scope: str) -> BackgroundRequest:
    web.require_user(request)
    row = await request_service.get(session, request.path_params["rq_id"].removesuffix("/"))
    if row.action != ACTION:
        raise NotFound(f"Request {row.id!r} is not an auto-annotation request.")
    await web.authorize(request, scope, request_service.resource(row))
    return row


@web.operation("Get an auto-annotation request", tags=TAGS, response=FunctionCall, responses={404: Detail})
async def retrieve_request(request: Request) -> Response:
    async with web.transaction(request) as session:
        return web.json_response(_call(await _own_request(request, session, "view")))


@web.operation(
    "Cancel an auto-annotation request (queued or running: nothing is written)",
    tags=TAGS,
    status=204,
    responses={204: None, 404: Detail},
)
async def delete_request(request: Request) -> Response:
    async with web.transaction(request) as session:
        row = await _own_request(request, session, "cancel")
        rq_id, queue = row.id, row.queue
        # a running job sees its row gone at its next step (or lease renewal) and writes nothing
        await session.delete(row)
    await web.state(request).queue.cancel(rq_id, queue)
    return Response(status_code=204)


routes = [
    ("/api/lambda/functions", list_functions, ["GET"]),
    ("/api/lambda/functions/{func_id}", retrieve_function, ["GET"]),
    ("/api/lambda/functions/{func_id}", call_function, ["POST"]),
    ("/api/lambda/requests", list_requests, ["GET"]),
    ("/api/lambda/requests", create_request, ["POST"]),
    ("/api/lambda/requests/{rq_id:path}", retrieve_request, ["GET"]),
    ("/api/lambda/requests/{rq_id:path}", delete_request, ["DELETE"]),
]
