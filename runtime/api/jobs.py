"""``/api/jobs``: listing, reading, workflow changes, and a task's ground-truth job made and removed.

A change is an ``update:job`` event, plus ``update:task`` when it moves the task's status along; a
ground-truth job made or removed is a ``create:job`` or ``delete:job`` event. (Annotation endpoints
come with their feature.)
"""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import Resource
from annota.core.bounds import INT4_MAX
from annota.core.db.tables import Job, Task
from annota.core.errors import ValidationError
from annota.core.schemas.common import Paginated
from annota.core.schemas.jobs import JobRead, JobUpdate, JobWrite
from annota.core.services import events as event_service
from annota.core.services import ground_truth
from annota.core.services import jobs as service
from annota.core.services import tasks as task_service
from annota.runtime import web
from annota.runtime.api import request_body

TAGS = ["jobs"]


@web.operation("List jobs", tags=TAGS, response=Paginated[JobRead], paginated=True,
               query={name: "equality filter" for name in service.LIST_SPEC.equality})  # fmt: skip
async def list_jobs(request: Request) -> Response:
    query = select(Job).where(await web.visible(request, "jobs", service.POLICY_FIELDS))
    base_url = web.base_url(request)
    return await web.list_response(
        request, query, service.LIST_SPEC, lambda session, rows: service.read_many(session, rows, base_url)
    )


@web.operation("Get a job", tags=TAGS, response=JobRead)
async def retrieve_job(request: Request) -> Response:
    async with web.transaction(request) as session:
        job = await service.get(session, web.path_int(request))
        await web.authorize(request, "view", await service.resource(session, job))
        (result,) = await service.read_many(session, [job], web.base_url(request))
    return web.json_response(result)


@web.operation("Change a job's stage, state or assignee", tags=TAGS, request=JobUpdate, response=JobRead)
async def update_job(request: Request) -> Response:
    body = await request_body.read(request)
    async with web.transaction(request) as session:
        job = await service.get(session, web.path_int(request))
        resource = await service.resource(session, job)
        for scope in service.update_scopes(body.fields):
            await web.authorize(request, scope, resource)
        data = body.decode(JobUpdate)
        base_url = web.base_url(request)
        task = await task_service.get(session, job.task_id)
        (before,) = await service.read_many(session, [job], base_url)
        # a new stage or state may change the task's status (and its job counts) too
        workflow = data.stage is not msgspec.UNSET or data.state is not msgspec.UNSET
        task_before = (await task_service.read_many(session, [task], base_url))[0] if workflow else None
        job = await service.update(session, job, data)
        (result,) = await service.read_many(session, [job], base_url)
        ids = {"org_id": task.organization_id, "project_id": task.project_id, "task_id": task.id}
        if event_service.changes(before, result):
            await web.record_event(
                request, session, "update:job", "job", result, resource_id=job.id, job_id=job.id,
                before=before, **ids,
            )  # fmt: skip
        if task_before is not None and task.updated_date != task_before.updated_date:
            (task_after,) = await task_service.read_many(session, [task], base_url)
            await web.record_event(
                request, session, "update:task", "task", task_after, resource_id=task.id,
                before=task_before, **ids,
            )  # fmt: skip
    return web.json_response(result)


def _ids(task: Task, job_id: int) -> dict[str, int | None]:
    return {
        "org_id": task.organization_id,
        "project_id": task.project_id,
        "task_id": task.id,
        "job_id": job_id,
    }


@web.operation("Create a ground-truth job", tags=TAGS, request=JobWrite, response=JobRead, status=201)
async def create_job(request: Request) -> Response:
    body = await request_body.read(request)
    web.require_user(request)
    async with web.transaction(request) as session:
        task_id = body.integer("task_id")
        if task_id is None or not 0 <= task_id <= INT4_MAX:
            body.decode(JobWrite)  # names what is wrong with task_id
            raise ValidationError.for_field("task_id", "This field is required.")
        task = await ground_truth.task_of_request(session, task_id)
        project = await task_service.project_of(session, task)
        await web.authorize(
            request, "create", Resource("jobs", ground_truth.creation_resource(task, project))
        )
        data = body.decode(JobWrite)
        ground_truth.check_request(data)
        job = await ground_truth.create(session, task, data)
        (result,) = await service.read_many(session, [job], web.base_url(request))
        await web.record_event(
            request, session, "create:job", "job", result, resource_id=job.id, **_ids(task, job.id)
        )
    return web.json_response(result, status_code=201)


@web.operation("Delete a ground-truth job with its annotations", tags=TAGS, status=204)
async def delete_job(request: Request) -> Response:
    async with web.transaction(request) as session:
        job = await service.get(session, web.path_int(request))
        await web.authorize(request, "delete", await service.resource(session, job))
        task = await task_service.get(session, job.task_id)
        (snapshot,) = await service.read_many(session, [job], web.base_url(request))
        job_id = job.id
        leftovers = await ground_truth.remove(session, job)
        await web.record_event(
            request, session, "delete:job", "job", snapshot, resource_id=job_id, **_ids(task, job_id)
        )
    await web.remove_objects(request, leftovers)
    return Response(status_code=204)


routes = [
    ("/api/jobs", list_jobs, ["GET"]),
    ("/api/jobs", create_job, ["POST"]),
    ("/api/jobs/{id:int}", delete_job, ["DELETE"]),
    ("/api/jobs/{id:int}", retrieve_job, ["GET"]),
    ("/api/jobs/{id:int}", update_job, ["PATCH"]),
]
